//! Which message a PUBACK/PUBCOMP acknowledges (pure).
//!
//! rumqttc 0.25 tells the application nothing about acks of its own
//! publishes: `AsyncClient::publish` returns once the request is queued.
//! What it does emit, in order, is `Outgoing::Publish(pkid)` when a queued
//! request is written (packet id assigned), `Outgoing::AwaitAck(pkid)` when a
//! request must wait for its packet id to be freed, and `Incoming::PubAck` /
//! `PubComp` with the packet id. Requests are written in the order they were
//! queued, a retransmission after a resumed session keeps its packet id, and a
//! CONNACK without a session drops everything queued. [`AckTracker`] follows
//! exactly that to map packet ids back to messages, and owns the
//! application's ack deadlines and retries.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use crate::clock::Nanos;

/// A message waiting for its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awaiting {
    pub first_sent: Nanos,
    pub attempt: u32,
    pub deadline: Nanos,
}

/// What became of a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry<K> {
    /// Publish again (a retry, `attempt` ≥ 1).
    Retry { key: K, attempt: u32 },
    /// Out of retries: the outcome is `failed`.
    Failed { key: K },
}

/// Packet-id bookkeeping and ack deadlines of one MQTT client.
#[derive(Debug)]
pub struct AckTracker<K> {
    /// Requests queued in rumqttc and not yet written, in order; `None` for
    /// publishes nobody waits for (QoS 0, status messages).
    queued: VecDeque<Option<K>>,
    by_pkid: HashMap<u16, K>,
    /// A request parked by `AwaitAck(pkid)` until that packet id is free.
    parked: Option<(u16, Option<K>)>,
    awaiting: HashMap<K, Awaiting>,
    deadlines: BTreeSet<(Nanos, K)>,
    timeout: Duration,
    retries: u32,
}

impl<K: Copy + Eq + Hash + Ord> AckTracker<K> {
    pub fn new(timeout: Duration, retries: u32) -> Self {
        AckTracker {
            queued: VecDeque::new(),
            by_pkid: HashMap::new(),
            parked: None,
            awaiting: HashMap::new(),
            deadlines: BTreeSet::new(),
            timeout,
            retries,
        }
    }

    /// A publish request was queued in rumqttc (`try_publish` returned Ok).
    /// `await_ack`: the application waits for this message's ack.
    pub fn queued(&mut self, key: K, qos: u8, await_ack: bool, attempt: u32, now: Nanos) {
        let tracked = qos > 0 && await_ack;
        if qos > 0 {
            self.queued.push_back(tracked.then_some(key));
        }
        if tracked {
            self.arm(key, attempt, now);
        }
    }

    /// The client refused a publish (request channel full): nothing is
    /// queued, but the application waits out its ack timeout and retries.
    pub fn refused(&mut self, key: K, attempt: u32, now: Nanos) {
        self.arm(key, attempt, now);
    }

    /// Start (or restart, for a retry) the ack deadline of `key`.
    fn arm(&mut self, key: K, attempt: u32, now: Nanos) {
        let first_sent = self.awaiting.get(&key).map_or(now, |a| a.first_sent);
        if let Some(old) = self.awaiting.get(&key) {
            self.deadlines.remove(&(old.deadline, key));
        }
        let deadline = now.plus(self.timeout);
        self.awaiting.insert(
            key,
            Awaiting {
                first_sent,
                attempt,
                deadline,
            },
        );
        self.deadlines.insert((deadline, key));
    }

    /// A QoS ≥ 1 publish queued by the client for its own purposes (e.g. the
    /// retained `online` status): takes a place in the order, never tracked.
    pub fn queued_untracked(&mut self, qos: u8) {
        if qos > 0 {
            self.queued.push_back(None);
        }
    }

    /// `Outgoing::Publish(pkid)` (pkid 0 is QoS 0 and not queued here).
    pub fn written(&mut self, pkid: u16) {
        if pkid == 0 || self.by_pkid.contains_key(&pkid) {
            return; // QoS 0, or a retransmission keeping its packet id
        }
        let next = match self.parked.take() {
            Some((p, k)) if p == pkid => k,
            other => {
                self.parked = other;
                match self.queued.pop_front() {
                    Some(k) => k,
                    None => return,
                }
            }
        };
        if let Some(k) = next {
            self.by_pkid.insert(pkid, k);
        }
    }

    /// `Outgoing::AwaitAck(pkid)`: the next queued request waits for `pkid`.
    pub fn parked(&mut self, pkid: u16) {
        if let Some(k) = self.queued.pop_front() {
            self.parked = Some((pkid, k));
        }
    }

    /// `Incoming::PubAck(pkid)` (QoS 1) or `Incoming::PubComp(pkid)` (QoS 2).
    /// Returns the message and its bookkeeping if it was still awaited.
    pub fn acked(&mut self, pkid: u16) -> Option<(K, Awaiting)> {
        let key = self.by_pkid.remove(&pkid)?;
        let a = self.awaiting.remove(&key)?;
        self.deadlines.remove(&(a.deadline, key));
        Some((key, a))
    }

    /// CONNACK without a session: rumqttc dropped every in-flight publish
    /// and the first `unwritten` queued requests (those it had moved to its
    /// `pending` when the last connection failed,
    /// [`super::connection::unwritten_pending`]); the requests queued after
    /// that are still in its channel and are written on this connection.
    /// The dropped ones' deadlines stay: the application only learns by
    /// timeout.
    pub fn session_lost(&mut self, unwritten: usize) {
        let n = unwritten.min(self.queued.len());
        self.queued.drain(..n);
        self.by_pkid.clear();
        self.parked = None;
    }

    /// The earliest ack deadline.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Deadlines passed at `now`: a retry when the profile has retries left
    /// (the caller queues it again with [`AckTracker::queued`]), else failed.
    pub fn expire(&mut self, now: Nanos) -> Vec<Expiry<K>> {
        let mut out = Vec::new();
        while let Some(&(t, key)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            let a = self.awaiting[&key];
            if a.attempt < self.retries {
                out.push(Expiry::Retry {
                    key,
                    attempt: a.attempt + 1,
                });
            } else {
                self.awaiting.remove(&key);
                out.push(Expiry::Failed { key });
            }
        }
        out
    }

    /// Messages still waiting for an ack (their outcome is unknown so far).
    pub fn outstanding(&self) -> usize {
        self.awaiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Nanos {
        Nanos(n * 1_000_000)
    }

    #[test]
    fn acks_map_back_to_messages_in_queue_order() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 0);
        for seq in 0..3 {
            t.queued(seq, 1, true, 0, ms(0));
        }
        t.written(1);
        t.written(2);
        t.written(3);
        assert_eq!(t.acked(2).map(|(k, _)| k), Some(1));
        assert_eq!(t.acked(1).map(|(k, _)| k), Some(0));
        assert_eq!(t.acked(3).map(|(k, _)| k), Some(2));
        assert_eq!(
            t.acked(3),
            None,
            "a second ack of one packet id acks nothing"
        );
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn qos0_and_untracked_publishes_keep_the_order_straight() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 0);
        t.queued(0, 0, true, 0, ms(0)); // QoS 0: written as pkid 0, never queued
        t.queued_untracked(1); // status message
        t.queued(1, 1, true, 0, ms(0));
        t.written(0);
        t.written(1);
        t.written(2);
        assert_eq!(t.acked(1), None);
        assert_eq!(t.acked(2).map(|(k, _)| k), Some(1));
    }

    #[test]
    fn a_retransmission_keeps_its_message() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 0);
        t.queued(7, 1, true, 0, ms(0));
        t.queued(8, 1, true, 0, ms(0));
        t.written(1);
        // connection lost, session resumed: pkid 1 written again, then the next one
        t.written(1);
        t.written(2);
        assert_eq!(t.acked(1).map(|(k, _)| k), Some(7));
        assert_eq!(t.acked(2).map(|(k, _)| k), Some(8));
    }

    #[test]
    fn a_parked_request_takes_the_packet_id_it_waited_for() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 0);
        t.queued(1, 1, true, 0, ms(0));
        t.queued(2, 1, true, 0, ms(0));
        t.written(1);
        t.parked(1); // request for seq 2 waits for pkid 1
        assert_eq!(t.acked(1).map(|(k, _)| k), Some(1));
        t.written(1);
        assert_eq!(t.acked(1).map(|(k, _)| k), Some(2));
    }

    #[test]
    fn a_lost_session_forgets_packet_ids_but_keeps_deadlines() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 1);
        t.queued(1, 1, true, 0, ms(0));
        t.written(5);
        t.session_lost(0);
        t.queued(2, 1, true, 0, ms(10));
        t.written(5); // pkid 5 reused for a new message
        assert_eq!(t.acked(5).map(|(k, _)| k), Some(2));
        assert_eq!(t.expire(ms(999)), vec![]);
        assert_eq!(
            t.expire(ms(1000)),
            vec![Expiry::Retry { key: 1, attempt: 1 }]
        );
        t.queued(1, 1, true, 1, ms(1000));
        assert_eq!(t.expire(ms(2000)), vec![Expiry::Failed { key: 1 }]);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_first_connack_without_session_keeps_what_was_queued_before_it() {
        // Publishes queued before the first connection stay in rumqttc's
        // channel and are written after its CONNACK (no session, nothing
        // in `pending`): their acks must still find them.
        let mut t: AckTracker<u64> = AckTracker::new(T, 1);
        for k in 1..=3 {
            t.queued(k, 1, true, 0, ms(0));
        }
        t.session_lost(0);
        for pkid in 1..=3 {
            t.written(pkid);
        }
        for k in 1..=3 {
            assert_eq!(t.acked(k as u16).map(|(m, _)| m), Some(k));
        }
        assert_eq!(t.expire(ms(5000)), vec![]);
    }

    #[test]
    fn a_lost_session_drops_only_what_rumqttc_had_moved_to_pending() {
        // 1 was written (in flight); 2 and 3 were still queued when the
        // connection failed (moved to `pending`); 4 was queued after.
        let mut t: AckTracker<u64> = AckTracker::new(T, 1);
        t.queued(1, 1, true, 0, ms(0));
        t.written(7);
        t.queued(2, 1, true, 0, ms(1));
        t.queued(3, 1, true, 0, ms(2));
        t.queued(4, 1, true, 0, ms(3));
        t.session_lost(2);
        t.written(1); // the first packet id of the new connection
        assert_eq!(t.acked(1).map(|(m, _)| m), Some(4));
        assert_eq!(
            t.acked(7),
            None,
            "an ack of the old session matches nothing"
        );
        // 1, 2 and 3 learn of their loss by timeout and are retried.
        let retried: Vec<_> = t.expire(ms(1010)).into_iter().collect();
        assert_eq!(
            retried,
            vec![
                Expiry::Retry { key: 1, attempt: 1 },
                Expiry::Retry { key: 2, attempt: 1 },
                Expiry::Retry { key: 3, attempt: 1 },
            ]
        );
    }

    #[test]
    fn ack_latency_counts_from_the_first_hand_over() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 3);
        t.queued(1, 1, true, 0, ms(0));
        t.written(1);
        assert_eq!(
            t.expire(ms(1000)),
            vec![Expiry::Retry { key: 1, attempt: 1 }]
        );
        t.queued(1, 1, true, 1, ms(1000));
        t.written(2);
        let (_, a) = t.acked(2).unwrap();
        assert_eq!(a.first_sent, ms(0));
        assert_eq!(a.attempt, 1);
    }

    #[test]
    fn fire_and_forget_is_never_awaited() {
        let mut t: AckTracker<u64> = AckTracker::new(T, 0);
        t.queued(1, 1, false, 0, ms(0));
        t.written(1);
        assert_eq!(t.acked(1), None);
        assert_eq!(t.next_deadline(), None);
    }
}

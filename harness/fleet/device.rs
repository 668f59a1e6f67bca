//! One simulated device: a rumqttc client driven so that its profile means
//! what it says.
//!
//! rumqttc 0.25 (measured) has no ping timeout, no backoff, never
//! resubscribes, drops queued publishes on a CONNACK without session, never
//! sets DUP on replays, and `set_keep_alive` panics below 1 s. So this driver
//! enforces the ping timeout (PINGREQ seen, no PINGRESP in time → drop the
//! connection), owns the backoff, resubscribes when the session was not
//! resumed, republishes the retained `online` status, and waits for acks with
//! timeout and retries — or fires and forgets — as the profile says.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::acks::{AckTracker, Expiry};
use super::backoff::Backoff;
use super::connection::{self, Command};
use super::mqtt::{Client, Wire};
use crate::clock::{Nanos, RunClock};
use crate::history::{DeviceEvent, DeviceId, Event as HEvent, LossCause, PublishOutcome, StreamId};
use crate::payload;
use crate::plan::DevicePlan;
use crate::scenario::Profile;

/// Capacity of rumqttc's request channel: what an application can queue
/// while the client is disconnected before `try_publish` fails.
pub const REQUEST_CHANNEL: usize = 256;

/// What every device shares.
#[derive(Clone)]
pub struct Shared {
    pub clock: RunClock,
    pub events: mpsc::Sender<HEvent>,
    /// Publishing stops at this time (the scenario's duration).
    pub publish_until: Nanos,
    pub seed: u64,
}

/// Sequence counters of one device, kept across crashes so `seq` stays
/// gapless per (device, stream).
#[derive(Debug, Default)]
pub struct Sequences {
    next: Vec<AtomicU64>,
}

impl Sequences {
    pub fn new(streams: usize) -> Arc<Sequences> {
        Arc::new(Sequences {
            next: (0..streams).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn take(&self, stream: usize) -> u64 {
        self.next[stream].fetch_add(1, Ordering::Relaxed)
    }
}

/// Phases the runner moves every device through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Run,
    /// Disconnect cleanly (DISCONNECT sent) and end.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// Waiting for the next attempt (`None`: never again).
    Down(Option<Nanos>),
    Connecting(u64),
    Up(u64),
}

/// Run one device until `phase` says stop (or the task is aborted: a crash).
pub async fn run(
    device: DevicePlan,
    profile: Profile,
    addr: SocketAddr,
    shared: Shared,
    seqs: Arc<Sequences>,
    mut phase: watch::Receiver<Phase>,
    first_connect_at: Nanos,
) {
    let id = device.id;
    let (client, eventloop) = super::mqtt::client(
        &device,
        &profile,
        addr.ip().to_string(),
        addr.port(),
        REQUEST_CHANNEL,
    );
    let mut poller = connection::spawn(eventloop);
    let mut rng =
        ChaCha8Rng::seed_from_u64(shared.seed ^ (u64::from(device.global) << 32) ^ 0x6d71_7463);
    let mut backoff = profile.reconnect.clone().map(Backoff::new);
    let mut tracker: AckTracker<Key> = AckTracker::new(profile.ack.timeout, profile.ack.retries);
    let clock = shared.clock;
    let out = Emitter {
        tx: shared.events.clone(),
        clock,
        id,
    };
    let mut epoch = 0u64;

    // Fixed-rate schedules: slot k of stream s is at phase_s + k / rate.
    let periods: Vec<Duration> = device
        .streams
        .iter()
        .map(|s| Duration::from_secs_f64(1.0 / s.rate))
        .collect();
    let mut slots: Vec<Nanos> = periods
        .iter()
        .map(|p| first_connect_at.plus(p.mul_f64(rand::Rng::random_range(&mut rng, 0.0..1.0))))
        .collect();
    let mut conn = Conn::Down(Some(first_connect_at));
    let mut ping_sent: Option<Nanos> = None;
    let mut subscribed_once = false;
    let mut sub_pkid: Option<u16> = None;
    let mut pending_sub = false;

    loop {
        let next_slot = slots
            .iter()
            .copied()
            .filter(|t| *t < shared.publish_until)
            .min();
        let ping_deadline = match (conn, ping_sent, profile.ping_timeout) {
            (Conn::Up(_), Some(t), Some(pt)) => Some(t.plus(pt)),
            _ => None,
        };
        let attempt_at = match conn {
            Conn::Down(at) => at,
            _ => None,
        };
        let wake = [
            next_slot,
            ping_deadline,
            tracker.next_deadline(),
            attempt_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let wake_instant = wake
            .map(|t| Instant::from_std(clock.instant(t)))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));

        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Stop {
                    if matches!(conn, Conn::Up(_)) {
                        let _ = client.try_disconnect();
                        // Let the poller write the DISCONNECT (bounded).
                        let deadline = Instant::now() + Duration::from_secs(1);
                        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, poller.events.recv()).await {
                            if matches!(*p.event, Ok(Wire::DisconnectSent) | Err(_)) {
                                break;
                            }
                        }
                    }
                    return;
                }
            }
            polled = poller.events.recv() => {
                let Some(polled) = polled else { return };
                let current = match conn {
                    Conn::Connecting(e) | Conn::Up(e) => e,
                    Conn::Down(_) => continue,
                };
                if polled.epoch != current {
                    continue; // a connection already given up on
                }
                match *polled.event {
                    Ok(Wire::ConnAck { session_present }) => {
                        conn = Conn::Up(current);
                        ping_sent = None;
                        if let Some(b) = backoff.as_mut() {
                            b.reset();
                        }
                        out.emit(DeviceEvent::Connected { session_present }).await;
                        if !session_present {
                            tracker.session_lost(polled.unwritten_pending);
                        }
                        let must_subscribe = !device.commands.is_empty()
                            && (!subscribed_once || (!session_present && profile.resubscribe));
                        if must_subscribe {
                            let filters: Vec<(String, u8)> =
                                device.commands.iter().map(|c| (c.topic.clone(), c.sub_qos)).collect();
                            if client.try_subscribe_many(&filters).is_ok() {
                                subscribed_once = true;
                                pending_sub = true;
                            }
                        }
                        if profile.online_republish {
                            if let Some(w) = &device.will {
                                if client.try_publish(&w.topic, w.qos, true, "online").is_ok() {
                                    tracker.queued_untracked(w.qos);
                                }
                            }
                        }
                    }
                    Ok(Wire::Written(pkid)) => tracker.written(pkid),
                    Ok(Wire::Parked(pkid)) => tracker.parked(pkid),
                    Ok(Wire::SubscribeSent(pkid)) => {
                        if pending_sub {
                            sub_pkid = Some(pkid);
                            pending_sub = false;
                        }
                    }
                    Ok(Wire::PingReq) => {
                        if ping_sent.is_none() {
                            ping_sent = Some(clock.now());
                        }
                    }
                    Ok(Wire::PingResp) => ping_sent = None,
                    Ok(Wire::Acked { pkid, packet, reason }) => {
                        acked(&mut tracker, pkid, packet, reason, &out).await;
                    }
                    Ok(Wire::SubAck { pkid, granted }) => {
                        if sub_pkid == Some(pkid) {
                            for (k, granted) in granted.into_iter().enumerate() {
                                let asked = device.commands.get(k).map_or(0, |c| c.sub_qos);
                                out.emit(DeviceEvent::Subscribed { stream: k as StreamId, asked, granted }).await;
                            }
                        }
                    }
                    Ok(Wire::Message { payload: body, qos, dup }) => {
                        if let Some(h) = payload::decode(&body) {
                            if let Some(k) = device.commands.iter().position(|c| c.name == h.stream) {
                                out.emit(DeviceEvent::CommandReceived {
                                    stream: k as StreamId,
                                    seq: h.seq,
                                    t_intended: h.t_intended,
                                    qos,
                                    dup,
                                }).await;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let was_up = matches!(conn, Conn::Up(_));
                        if was_up {
                            out.emit(DeviceEvent::ConnectionLost { cause: e.cause }).await;
                        } else {
                            out.emit(DeviceEvent::ConnectFailed { reason: e.message }).await;
                        }
                        conn = Conn::Down(next_attempt(&mut backoff, &mut rng, clock.now()));
                    }
                }
            }
            _ = sleep_until(wake_instant) => {
                let now = clock.now();
                // Ping timeout: the connection is dead to us.
                if let Some(d) = ping_deadline {
                    if now >= d {
                        let _ = poller.commands.send(Command::Drop);
                        out.emit(DeviceEvent::ConnectionLost { cause: LossCause::PingTimeout }).await;
                        conn = Conn::Down(next_attempt(&mut backoff, &mut rng, now));
                        ping_sent = None;
                    }
                }
                // Reconnect attempt.
                if let Conn::Down(Some(at)) = conn {
                    if now >= at {
                        out.emit(DeviceEvent::ConnectAttempt).await;
                        let _ = poller.commands.send(Command::Connect);
                        epoch += 1;
                        conn = Conn::Connecting(epoch);
                    }
                }
                // Ack deadlines.
                for exp in tracker.expire(now) {
                    match exp {
                        Expiry::Retry { key, attempt } => {
                            publish(&client, &mut tracker, &device, &profile, key, attempt, &out).await;
                        }
                        Expiry::Failed { key: (s, seq, _) } => {
                            out.emit(DeviceEvent::Outcome { stream: s, seq, outcome: PublishOutcome::Failed, ack_latency_ns: None }).await;
                        }
                    }
                }
                // Telemetry slots due now (each with its own t_intended).
                for (k, st) in device.streams.iter().enumerate() {
                    while slots[k] <= now && slots[k] < shared.publish_until {
                        let t_intended = slots[k];
                        let key = (st.id, seqs.take(k), t_intended);
                        publish(&client, &mut tracker, &device, &profile, key, 0, &out).await;
                        slots[k] = t_intended.plus(periods[k]);
                    }
                }
            }
        }
    }
}

/// A telemetry message: (stream, seq, t_intended).
type Key = (StreamId, u64, Nanos);

/// Stamps and sends this device's events.
struct Emitter {
    tx: mpsc::Sender<HEvent>,
    clock: RunClock,
    id: DeviceId,
}

impl Emitter {
    async fn emit(&self, what: DeviceEvent) {
        let ev = HEvent::Device {
            at: self.clock.now(),
            device: self.id,
            what,
        };
        // The aggregator outlives every device; a closed channel means the
        // run is being torn down and nothing more is recorded.
        let _ = self.tx.send(ev).await;
    }
}

/// Hand one message (first attempt or a retry) to the client.
async fn publish(
    client: &Client,
    tracker: &mut AckTracker<Key>,
    device: &DevicePlan,
    profile: &Profile,
    key: Key,
    attempt: u32,
    out: &Emitter,
) {
    let (stream, seq, t_intended) = key;
    let st = &device.streams[stream as usize];
    let body = payload::encode(&device.name, &st.name, seq, t_intended, st.payload_size);
    out.emit(DeviceEvent::Published {
        stream,
        seq,
        t_intended,
        qos: st.qos,
        attempt,
    })
    .await;
    let awaited = st.qos > 0 && profile.ack.wait;
    match client.try_publish(&st.topic, st.qos, false, body) {
        Ok(()) => {
            tracker.queued(key, st.qos, profile.ack.wait, attempt, out.clock.now());
            if !awaited {
                out.emit(DeviceEvent::Outcome {
                    stream,
                    seq,
                    outcome: PublishOutcome::Unawaited,
                    ack_latency_ns: None,
                })
                .await;
            }
        }
        Err(_) if awaited && attempt < profile.ack.retries => {
            // The client refused it (request channel full while
            // disconnected): the application retries after its ack timeout.
            tracker.refused(key, attempt, out.clock.now());
        }
        Err(_) => {
            out.emit(DeviceEvent::Outcome {
                stream,
                seq,
                outcome: PublishOutcome::Failed,
                ack_latency_ns: None,
            })
            .await;
        }
    }
}

/// A PUBACK or PUBCOMP (or a refusing PUBREC) of packet `pkid`. MQTT 5's
/// reason code is recorded when it is not plain success; a failure code
/// (≥ 0x80: not authorized, quota exceeded…) means the broker refused the
/// message, so its outcome is `failed`, not `acked`.
async fn acked(
    tracker: &mut AckTracker<Key>,
    pkid: u16,
    packet: super::mqtt::AckPacket,
    reason: u8,
    out: &Emitter,
) {
    let Some(((stream, seq, _), a)) = tracker.acked(pkid) else {
        return;
    };
    if reason != 0 {
        out.emit(DeviceEvent::AckReason {
            stream,
            seq,
            packet: packet.name().to_string(),
            reason,
        })
        .await;
    }
    let (outcome, ack_latency_ns) = if reason >= 0x80 {
        (PublishOutcome::Failed, None)
    } else {
        (
            PublishOutcome::Acked,
            Some(out.clock.now().saturating_since(a.first_sent).as_nanos() as u64),
        )
    };
    out.emit(DeviceEvent::Outcome {
        stream,
        seq,
        outcome,
        ack_latency_ns,
    })
    .await;
}

fn next_attempt(backoff: &mut Option<Backoff>, rng: &mut ChaCha8Rng, now: Nanos) -> Option<Nanos> {
    backoff.as_mut().map(|b| now.plus(b.next_delay(rng)))
}

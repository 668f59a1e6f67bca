//! How far the collector is behind the broker (pure).
//!
//! A collector that reads more slowly than the fleet publishes makes the
//! broker queue for it, and a broker with a queue limit drops what does not
//! fit: a loss the harness caused, which the ledger would charge to the
//! client as `lost_after_ack`. The age of telemetry (`t_received −
//! t_intended`) cannot tell this apart from a device that buffered through
//! an outage, so the observer measures its own path instead: a separate
//! *prober* connection (nothing else to read, so its PUBACK is prompt)
//! publishes a probe at QoS 1 every [`PROBE_EVERY`] to a topic only the
//! collector subscribes to. Once the broker has acknowledged a probe it has
//! queued it for the collector (Mosquitto and EMQX route before they ack),
//! behind everything queued for the collector already, so
//!
//! `lag = t_probe_received (collector) − t_probe_acked (prober)`
//!
//! is the time the collector is behind the broker's queue for it. A broker
//! that is paused or slow delays the ack as much as the delivery, so a
//! broker fault is not mistaken for collector lag.
//!
//! * lag above [`LAG_BOUND`] → [`Finding::Behind`] (cause `schedule_lag`),
//!   once per episode: the episode ends when the lag is back under half the
//!   bound;
//! * an acknowledged probe not received within [`PROBE_LOST_AFTER`] while
//!   the collector stayed connected → [`Finding::Lost`] (cause
//!   `harness_loss`): the broker dropped what it queued for the collector.
//!
//! A collector (re)connection forgets the outstanding probes: a broker
//! restart may lose them with the session, which is not the collector's
//! doing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::Nanos;

/// How often the prober publishes.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The lag beyond which the collector is behind. A run's latency figures
/// are in milliseconds; a collector two seconds behind the broker already
/// holds back thousands of messages at the rates the harness runs, and on
/// a broker with a queue limit it is close to losing them.
pub const LAG_BOUND: Duration = Duration::from_secs(2);
/// An acknowledged probe not received by then is lost.
pub const PROBE_LOST_AFTER: Duration = Duration::from_secs(15);
/// Probes acked this soon after the collector (re)subscribed are not
/// measured: the broker may have routed them just before the subscription
/// was in place, while their ack reached the prober after the SUBACK.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Something the collector's own path went wrong with.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// The collector received a probe `lag` after the broker acked it.
    Behind { lag: Duration },
    /// `count` acknowledged probes never reached the collector.
    Lost { count: usize },
}

impl Finding {
    /// The harness incident this finding is.
    pub fn cause(&self) -> crate::health::Cause {
        match self {
            Finding::Behind { .. } => crate::health::Cause::ScheduleLag,
            Finding::Lost { .. } => crate::health::Cause::HarnessLoss,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Finding::Behind { lag } => format!(
                "the collector is {:.1} s behind the broker (bound {:.1} s): a probe the \
                 broker acknowledged reached it that late, so messages queued for it may \
                 be dropped by the broker and charged to the client",
                lag.as_secs_f64(),
                LAG_BOUND.as_secs_f64()
            ),
            Finding::Lost { count } => format!(
                "{count} probe(s) the broker acknowledged never reached the collector within \
                 {} s: the broker dropped messages queued for the harness's own collector",
                PROBE_LOST_AFTER.as_secs()
            ),
        }
    }
}

/// The probes of one collector and what they showed.
#[derive(Debug, Default)]
pub struct LagMonitor {
    /// Acknowledged probes not yet received: seq → acked at.
    acked: BTreeMap<u64, Nanos>,
    /// Probes received before their ack was known (the broker may deliver
    /// before it acks).
    early: Vec<u64>,
    /// When the collector last (re)connected; probes acked before are
    /// ignored.
    since: Option<Nanos>,
    behind: bool,
    /// The largest lag seen (for the log).
    pub max_lag: Duration,
}

impl LagMonitor {
    pub fn new() -> LagMonitor {
        LagMonitor::default()
    }

    /// The collector is connected (again) at `at`: outstanding probes are
    /// forgotten.
    pub fn connected(&mut self, at: Nanos) {
        self.acked.clear();
        self.early.clear();
        self.since = Some(at);
    }

    /// The collector's connection is down: nothing is measured until it is
    /// back.
    pub fn disconnected(&mut self) {
        self.acked.clear();
        self.early.clear();
        self.since = None;
    }

    /// The broker acknowledged probe `seq` to the prober at `at`.
    pub fn acked(&mut self, seq: u64, at: Nanos) {
        let Some(since) = self.since else { return };
        if at < since.plus(SETTLE) {
            return;
        }
        if let Some(i) = self.early.iter().position(|s| *s == seq) {
            self.early.swap_remove(i);
            return;
        }
        self.acked.insert(seq, at);
    }

    /// The collector received probe `seq` at `at`.
    pub fn received(&mut self, seq: u64, at: Nanos) -> Option<Finding> {
        self.since?;
        let Some(acked_at) = self.acked.remove(&seq) else {
            // Before its ack (lag 0), or one forgotten by a reconnection.
            if self.early.len() < 64 {
                self.early.push(seq);
            }
            return None;
        };
        let lag = at.saturating_since(acked_at);
        self.max_lag = self.max_lag.max(lag);
        if lag > LAG_BOUND && !self.behind {
            self.behind = true;
            return Some(Finding::Behind { lag });
        }
        if lag < LAG_BOUND / 2 {
            self.behind = false;
        }
        None
    }

    /// Probes acked more than [`PROBE_LOST_AFTER`] before `now` and still
    /// not received are lost (and forgotten).
    pub fn expire(&mut self, now: Nanos) -> Option<Finding> {
        let lost: Vec<u64> = self
            .acked
            .iter()
            .filter(|(_, at)| now.saturating_since(**at) >= PROBE_LOST_AFTER)
            .map(|(s, _)| *s)
            .collect();
        for s in &lost {
            self.acked.remove(s);
        }
        (!lost.is_empty()).then_some(Finding::Lost { count: lost.len() })
    }
}

/// A probe's payload: a marker and its sequence number.
pub fn encode(seq: u64) -> Vec<u8> {
    format!("mqtt-chaos-probe {seq}").into_bytes()
}

/// The sequence number of a probe payload.
pub fn decode(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload)
        .ok()?
        .strip_prefix("mqtt-chaos-probe ")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Nanos {
        Nanos(n * 1_000_000)
    }

    #[test]
    fn a_prompt_collector_finds_nothing() {
        let mut m = LagMonitor::new();
        m.connected(ms(0));
        for s in 1..10 {
            m.acked(s, ms(s * 1000));
            assert_eq!(m.received(s, ms(s * 1000 + 5)), None);
        }
        assert_eq!(m.expire(ms(60_000)), None);
        assert_eq!(m.max_lag, Duration::from_millis(5));
    }

    #[test]
    fn lag_beyond_the_bound_is_reported_once_per_episode() {
        let mut m = LagMonitor::new();
        m.connected(ms(0));
        m.acked(9, ms(499));
        assert_eq!(m.received(9, ms(10_000)), None, "acked while settling");
        m.acked(0, ms(1000));
        assert_eq!(
            m.received(0, ms(3000)),
            None,
            "exactly the bound is not beyond it"
        );
        m.acked(1, ms(2000));
        assert_eq!(
            m.received(1, ms(4001)),
            Some(Finding::Behind {
                lag: Duration::from_millis(2001)
            })
        );
        m.acked(2, ms(3000));
        assert_eq!(m.received(2, ms(8000)), None, "the same episode");
        // Back under half the bound ends the episode; the next one counts.
        m.acked(3, ms(9000));
        assert_eq!(m.received(3, ms(9500)), None);
        m.acked(4, ms(10_000));
        assert_eq!(
            m.received(4, ms(13_000)),
            Some(Finding::Behind {
                lag: Duration::from_secs(3)
            })
        );
        assert_eq!(m.max_lag, Duration::from_secs(5));
        assert_eq!(
            Finding::Behind { lag: m.max_lag }.cause(),
            crate::health::Cause::ScheduleLag
        );
    }

    #[test]
    fn a_probe_delivered_before_its_ack_is_no_lag_and_no_loss() {
        let mut m = LagMonitor::new();
        m.connected(ms(0));
        assert_eq!(m.received(7, ms(1000)), None);
        m.acked(7, ms(1001));
        assert!(m.early.is_empty() && m.acked.is_empty());
        assert_eq!(m.expire(ms(100_000)), None);
    }

    #[test]
    fn acked_probes_never_received_are_lost_after_the_bound() {
        let mut m = LagMonitor::new();
        m.connected(ms(0));
        m.acked(0, ms(1000));
        m.acked(1, ms(2000));
        m.acked(2, ms(3000));
        assert_eq!(m.received(1, ms(2010)), None);
        assert_eq!(m.expire(ms(15_999)), None);
        assert_eq!(m.expire(ms(16_000)), Some(Finding::Lost { count: 1 }));
        assert_eq!(m.expire(ms(18_000)), Some(Finding::Lost { count: 1 }));
        assert_eq!(m.expire(ms(60_000)), None, "each lost probe counts once");
        assert_eq!(
            Finding::Lost { count: 1 }.cause(),
            crate::health::Cause::HarnessLoss
        );
    }

    #[test]
    fn a_reconnection_forgets_outstanding_probes() {
        let mut m = LagMonitor::new();
        m.connected(ms(0));
        m.acked(0, ms(1000));
        m.disconnected();
        m.acked(1, ms(1500)); // while down: not measured
        m.connected(ms(2000));
        m.acked(2, ms(1900)); // acked before the reconnection: stale
        m.acked(3, ms(2499)); // maybe routed before the subscription
        assert_eq!(m.received(0, ms(30_000)), None);
        assert_eq!(m.expire(ms(100_000)), None);
    }

    #[test]
    fn probes_round_trip_and_telemetry_is_no_probe() {
        assert_eq!(decode(&encode(42)), Some(42));
        assert_eq!(decode(b"mqtt-chaos-probe x"), None);
        assert_eq!(decode(b"\x01\x02"), None);
    }
}

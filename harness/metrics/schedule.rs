//! Whether the harness kept its own publish schedule (pure).
//!
//! Every message has its intended time (`t_intended`, METRICS.md): the
//! fixed-rate slot of a device's stream, or of the observer's command
//! stream. The publisher stamps its `Published` event when it hands the
//! message to the client, so
//!
//! `behind = t_published − t_intended`
//!
//! is how late the harness itself was (a starved runtime, a blocked event
//! channel), not the client or the network: a disconnected client takes the
//! message into its queue at once. A harness behind its schedule publishes
//! in bursts the scenario never asked for and its latency figures measure
//! the harness, so beyond [`BEHIND_BOUND`] the run is an error (cause
//! `schedule_lag`), once per episode; an episode ends when a first attempt
//! is published within half the bound again. Retries are published at
//! their ack timeout by design and are not measured.

use std::time::Duration;

use crate::clock::Nanos;

/// How far behind its schedule the harness may publish. Slots are
/// milliseconds apart at the rates a run uses; a publisher a second behind
/// has already bunched many of them together, while a loaded two-core
/// machine stalls a task for some hundreds of milliseconds now and then.
pub const BEHIND_BOUND: Duration = Duration::from_secs(1);

/// One publisher's (the fleet's or the observer's) schedule.
#[derive(Debug, Default)]
pub struct ScheduleMonitor {
    behind: bool,
    /// The largest delay seen.
    pub max: Duration,
}

/// The harness fell behind its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    /// When it was seen (the late publish).
    pub at: Nanos,
    pub by: Duration,
}

impl ScheduleMonitor {
    pub fn new() -> ScheduleMonitor {
        ScheduleMonitor::default()
    }

    /// A first attempt intended for `t_intended` was published at `at`.
    pub fn published(&mut self, at: Nanos, t_intended: Nanos) -> Option<Behind> {
        let by = at.saturating_since(t_intended);
        self.max = self.max.max(by);
        if by > BEHIND_BOUND {
            if !self.behind {
                self.behind = true;
                return Some(Behind { at, by });
            }
        } else if by <= BEHIND_BOUND / 2 {
            self.behind = false;
        }
        None
    }
}

impl Behind {
    /// The incident's text; `who` names the publisher.
    pub fn message(&self, who: &str) -> String {
        format!(
            "{who} published {:.2} s after the message's intended time (bound {:.1} s): the \
             harness fell behind its own schedule, so the latency figures and the load are \
             not the scenario's",
            self.by.as_secs_f64(),
            BEHIND_BOUND.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Nanos {
        Nanos::ZERO.plus(Duration::from_millis(v))
    }

    #[test]
    fn on_time_and_slightly_late_publishes_are_fine() {
        let mut m = ScheduleMonitor::new();
        assert_eq!(m.published(ms(1000), ms(1000)), None);
        assert_eq!(m.published(ms(1500), ms(1000)), None);
        assert_eq!(m.published(ms(2000), ms(1000)), None);
        assert_eq!(m.max, Duration::from_secs(1));
    }

    #[test]
    fn one_incident_per_episode() {
        let mut m = ScheduleMonitor::new();
        let f = m.published(ms(3001), ms(2000)).expect("behind");
        assert_eq!((f.at, f.by), (ms(3001), Duration::from_millis(1001)));
        assert!(f.message("device dev-0001").contains("1.00 s after"));
        // Still behind, or back but not under half the bound: same episode.
        assert_eq!(m.published(ms(5000), ms(2100)), None);
        assert_eq!(m.published(ms(5000), ms(4200)), None);
        assert_eq!(m.published(ms(6000), ms(4000)), None);
        // Under half the bound: the episode ends, the next one is reported.
        assert_eq!(m.published(ms(6000), ms(5600)), None);
        assert!(m.published(ms(9000), ms(7000)).is_some());
    }

    #[test]
    fn a_publish_before_its_slot_is_not_behind() {
        let mut m = ScheduleMonitor::new();
        assert_eq!(m.published(ms(1000), ms(5000)), None);
        assert_eq!(m.max, Duration::ZERO);
    }

    proptest! {
        /// The number of incidents is the number of episodes: a rise above
        /// the bound after being under half of it (or at the start).
        #[test]
        fn incidents_are_episodes(delays in proptest::collection::vec(0u64..3000, 0..200)) {
            let mut m = ScheduleMonitor::new();
            let mut expected = 0;
            let mut behind = false;
            let mut got = 0;
            for (i, d) in delays.iter().enumerate() {
                let t = ms(10_000 + i as u64 * 10);
                if m.published(t.plus(Duration::from_millis(*d)), t).is_some() {
                    got += 1;
                }
                if *d > 1000 && !behind { behind = true; expected += 1; }
                else if *d <= 500 { behind = false; }
            }
            prop_assert_eq!(got, expected);
        }
    }
}

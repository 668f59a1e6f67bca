//! The run's one monotonic clock.
//!
//! Every timeline the harness keeps (ground truth, client belief, observer
//! belief) is stamped in nanoseconds since the run started, from one
//! `Instant`, so the three views can be compared without wall-clock skew.
//! Wall-clock time is kept only for display (`started_at`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Nanoseconds since the run started.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Nanos(pub u64);

impl Nanos {
    pub const ZERO: Nanos = Nanos(0);

    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(d.as_nanos().min(u64::MAX as u128) as u64)
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// `self - earlier`, or zero when `earlier` is later (clock values from
    /// different tasks may be stamped a hair out of order).
    pub fn saturating_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Duration) -> Nanos {
        Nanos(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl std::ops::Add for Nanos {
    type Output = Nanos;
    fn add(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub for Nanos {
    type Output = Nanos;
    /// Saturates at zero.
    fn sub(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(rhs.0))
    }
}

/// The clock of one run. Cheap to copy into every task.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
}

impl RunClock {
    pub fn start() -> RunClock {
        RunClock {
            start: Instant::now(),
        }
    }

    /// A clock whose zero is the given instant.
    pub fn starting_at(start: Instant) -> RunClock {
        RunClock { start }
    }

    pub fn now(&self) -> Nanos {
        Nanos::from_duration(self.start.elapsed())
    }

    /// The instant a run-relative time stands for (for `sleep_until`).
    pub fn instant(&self, at: Nanos) -> Instant {
        self.start + at.as_duration()
    }

    pub fn origin(&self) -> Instant {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_since_never_goes_negative() {
        assert_eq!(Nanos(5).saturating_since(Nanos(9)), Duration::ZERO);
        assert_eq!(Nanos(9).saturating_since(Nanos(5)), Duration::from_nanos(4));
    }

    #[test]
    fn clock_instant_round_trips() {
        let c = RunClock::start();
        let at = Nanos(1_500_000_000);
        assert_eq!(c.instant(at) - c.origin(), Duration::from_millis(1500));
    }
}

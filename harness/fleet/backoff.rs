//! Reconnect backoff (pure): rumqttc has none of its own — polling again
//! after an error reconnects at once — so the driver owns it.

use std::time::Duration;

use rand::Rng;

use crate::scenario::Reconnect;

/// Exponential backoff with a cap and symmetric jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Reconnect,
    /// Failed attempts since the last success.
    failures: u32,
}

impl Backoff {
    pub fn new(policy: Reconnect) -> Backoff {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// The wait before the next attempt: `initial × 2^failures`, capped at
    /// `max`, then spread by ± `jitter` (never below zero, never above max).
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let base = self
            .policy
            .initial
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.policy.max);
        self.failures = self.failures.saturating_add(1);
        if self.policy.jitter <= 0.0 {
            return base;
        }
        let spread: f64 = rng.random_range(-self.policy.jitter..=self.policy.jitter);
        base.mul_f64((1.0 + spread).max(0.0)).min(self.policy.max)
    }

    /// A connection succeeded: the next loss starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn policy(jitter: f64) -> Reconnect {
        Reconnect {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            jitter,
        }
    }

    #[test]
    fn doubles_from_initial_up_to_max() {
        let mut b = Backoff::new(policy(0.0));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let got: Vec<u64> = (0..6)
            .map(|_| b.next_delay(&mut rng).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(&mut rng), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let mut b = Backoff::new(policy(0.5));
            let d = b.next_delay(&mut rng);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
                "{d:?}"
            );
        }
        let mut b = Backoff::new(policy(0.5));
        for _ in 0..10 {
            assert!(b.next_delay(&mut rng) <= Duration::from_millis(1000));
        }
    }
}

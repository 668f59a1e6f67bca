//! Shares with their uncertainty: the 95 % Wilson score interval of a
//! binomial proportion, which the false-offline rate carries (METRICS.md).
//!
//! Wilson's interval rather than the normal approximation: it stays inside
//! [0, 1], is not empty at 0 of n or n of n, and holds its coverage for the
//! small counts a short run gives (0.17 % of a few hundred reports).

use serde::{Deserialize, Serialize};

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A confidence interval of a share, both ends in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// The confidence level (0.95).
    pub confidence: f64,
}

/// The 95 % Wilson score interval of `k` successes in `n` trials; `None`
/// for `n = 0` (nothing to estimate).
pub fn wilson95(k: u64, n: u64) -> Option<Interval> {
    wilson(k, n, Z95).map(|(low, high)| Interval {
        low,
        high,
        confidence: 0.95,
    })
}

/// The Wilson score interval for `z`.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // The exact ends at k = 0 and k = n (rounding would leave 1e-17).
    let low = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let high = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((low, high))
}

/// A share as a percentage with two significant digits, never rounded to a
/// whole percent: `0.17 %`, `5.3 %`, `0 %`, `100 %`.
pub fn percent(share: f64) -> String {
    let v = share * 100.0;
    if v == 0.0 || !v.is_finite() {
        return format!("{v} %");
    }
    let decimals = if v.abs() >= 10.0 {
        0
    } else {
        // 1 − floor(log10 v) decimals leave two significant digits.
        (1 - v.abs().log10().floor() as i32).clamp(0, 12) as usize
    };
    let text = format!("{v:.decimals$}");
    // 9.96 → "10.0": one digit too many after the carry.
    let text = if decimals > 0 && text.starts_with("10") && v.abs() < 10.0 {
        format!("{v:.0}")
    } else {
        text
    };
    format!("{text} %")
}

/// A share with its interval: `0.17 % (95 % CI 0.080–0.36 %)`.
pub fn percent_with(share: f64, interval: Option<&Interval>) -> String {
    match interval {
        Some(i) => format!(
            "{} ({:.0} % CI {}–{})",
            percent(share),
            i.confidence * 100.0,
            percent(i.low).trim_end_matches(" %"),
            percent(i.high)
        ),
        None => percent(share),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // 1 of 10: the textbook interval [0.0179, 0.4042].
        let (lo, hi) = wilson(1, 10, Z95).unwrap();
        assert!((lo - 0.017_875).abs() < 1e-5, "{lo}");
        assert!((hi - 0.404_149).abs() < 1e-5, "{hi}");
        // 0 of 100: [0, 0.037].
        let (lo, hi) = wilson(0, 100, Z95).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.036_995).abs() < 1e-5, "{hi}");
        // n of n reaches 1 exactly.
        assert_eq!(wilson(7, 7, Z95).unwrap().1, 1.0);
        assert_eq!(wilson(0, 0, Z95), None);
        assert_eq!(wilson(3, 2, Z95), None);
        assert_eq!(wilson95(1, 10).unwrap().confidence, 0.95);
    }

    #[test]
    fn percentages_keep_two_significant_digits() {
        assert_eq!(percent(0.0017), "0.17 %");
        assert_eq!(percent(0.053), "5.3 %");
        assert_eq!(percent(0.5), "50 %");
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(0.000_012_3), "0.0012 %");
        assert_eq!(percent(0.0999), "10 %");
        assert_eq!(percent(0.099_6), "10 %");
        assert_eq!(percent(0.005), "0.50 %");
        let i = wilson95(1, 10).unwrap();
        assert_eq!(percent_with(0.1, Some(&i)), "10 % (95 % CI 1.8–40 %)");
    }

    proptest! {
        #[test]
        fn the_interval_holds_the_share_and_stays_in_the_unit_range(
            n in 1u64..100_000,
            k_frac in 0.0f64..=1.0,
        ) {
            let k = ((n as f64) * k_frac).round() as u64;
            let (lo, hi) = wilson(k, n, Z95).unwrap();
            let p = k as f64 / n as f64;
            prop_assert!(0.0 <= lo && lo <= p + 1e-12 && p <= hi + 1e-12 && hi <= 1.0);
            // More trials, same share: a narrower interval.
            let (lo4, hi4) = wilson(4 * k, 4 * n, Z95).unwrap();
            prop_assert!(hi4 - lo4 <= hi - lo + 1e-12);
        }
    }
}

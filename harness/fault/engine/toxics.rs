//! The arithmetic of each toxic, as pure functions of their attributes and a
//! seeded random source, so it can be tested without sockets or clocks.
//!
//! The stage logic that uses them (when to wait, drop, cut or close) is in
//! [`super::pipeline`]; the formulas follow Toxiproxy 2.12's `toxics/*.go`.

use std::time::Duration;

use rand::Rng;

/// Whether a toxic with this `toxicity` applies to one connection: rolled
/// once per (connection, toxic) pair, as Toxiproxy's `ToxicStub.Run` does.
pub(crate) fn rolls(rng: &mut impl Rng, toxicity: f32) -> bool {
    rng.random::<f32>() < toxicity
}

/// The delay of one chunk under `latency` ± `jitter` milliseconds, never
/// negative.
pub(crate) fn latency_delay(rng: &mut impl Rng, latency_ms: u64, jitter_ms: u64) -> Duration {
    let mut ms = i128::from(latency_ms);
    if jitter_ms > 0 {
        let j = i128::from(jitter_ms);
        ms += rng.random_range(-j..=j);
    }
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
}

/// The largest slice the bandwidth toxic sends at once: what `rate` KB/s
/// carries in 100 ms (Toxiproxy splits larger chunks the same way), at
/// least one byte.
pub(crate) fn bandwidth_slice(rate_kb_s: u64) -> usize {
    usize::try_from(rate_kb_s.saturating_mul(100))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// How long `len` bytes take at `rate` KB/s (1 KB = 1000 bytes, as in
/// Toxiproxy: `len * 1ms / rate`). A rate of 0 means no limit.
pub(crate) fn bandwidth_time(len: usize, rate_kb_s: u64) -> Duration {
    if rate_kb_s == 0 {
        return Duration::ZERO;
    }
    let nanos = (len as u128) * 1_000_000 / u128::from(rate_kb_s);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The sizes the slicer cuts a chunk of `len` bytes into: Toxiproxy's
/// `SlicerToxic.chunk`, which halves the chunk (the cut moved by up to
/// ± `size_variation`) until a piece is within `average_size +
/// size_variation`. Sizes are never zero and always sum to `len`. An
/// `average_size` of 0 is taken as 1 (Toxiproxy would recurse forever).
pub(crate) fn slice_plan(
    rng: &mut impl Rng,
    len: usize,
    average_size: u64,
    size_variation: u64,
) -> Vec<usize> {
    let avg = usize::try_from(average_size.max(1)).unwrap_or(usize::MAX);
    let var = usize::try_from(size_variation).unwrap_or(usize::MAX);
    let mut sizes = Vec::new();
    cut(rng, 0, len, avg, var, &mut sizes);
    sizes
}

fn cut(rng: &mut impl Rng, start: usize, end: usize, avg: usize, var: usize, out: &mut Vec<usize>) {
    let size = end - start;
    if size.saturating_sub(avg) <= var {
        if size > 0 {
            out.push(size);
        }
        return;
    }
    // Here size > avg + var >= 1, so there is room for a cut inside.
    let mut mid = start + size / 2;
    if var > 0 {
        let shift = rng.random_range(0..var.saturating_mul(2)) as i128 - var as i128;
        let moved = (mid as i128 + shift).clamp(start as i128 + 1, end as i128 - 1);
        mid = moved as usize;
    }
    cut(rng, start, mid, avg, var, out);
    cut(rng, mid, end, avg, var, out);
}

/// What `limit_data` does with a chunk of `len` bytes when `sent` of its
/// `bytes` have passed: how many bytes to forward, and whether the
/// connection closes after them (Toxiproxy closes once nothing remains).
pub(crate) fn limit_take(len: usize, bytes: u64, sent: u64) -> (usize, bool) {
    let remaining = bytes.saturating_sub(sent);
    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(len);
    let close = remaining - take as u64 == 0;
    (take, close)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn a_toxicity_of_one_always_applies_and_zero_never_does() {
        let mut r = rng(1);
        assert!((0..1000).all(|_| rolls(&mut r, 1.0)));
        assert!((0..1000).all(|_| !rolls(&mut r, 0.0)));
    }

    #[test]
    fn a_toxicity_of_one_half_applies_to_about_half_the_connections() {
        let mut r = rng(2);
        let hits = (0..10_000).filter(|_| rolls(&mut r, 0.5)).count();
        assert!((4_700..=5_300).contains(&hits), "{hits}");
    }

    #[test]
    fn the_same_seed_rolls_the_same_way() {
        let a: Vec<bool> = {
            let mut r = rng(7);
            (0..64).map(|_| rolls(&mut r, 0.3)).collect()
        };
        let b: Vec<bool> = {
            let mut r = rng(7);
            (0..64).map(|_| rolls(&mut r, 0.3)).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn latency_without_jitter_is_exact() {
        let mut r = rng(3);
        assert_eq!(latency_delay(&mut r, 300, 0), Duration::from_millis(300));
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_reaches_both_sides() {
        let mut r = rng(4);
        let ds: Vec<u128> = (0..2000)
            .map(|_| latency_delay(&mut r, 100, 20).as_millis())
            .collect();
        assert!(ds.iter().all(|d| (80..=120).contains(d)));
        assert!(ds.iter().any(|d| *d < 90) && ds.iter().any(|d| *d > 110));
    }

    #[test]
    fn jitter_larger_than_latency_never_gives_a_negative_delay() {
        let mut r = rng(5);
        for _ in 0..1000 {
            assert!(latency_delay(&mut r, 5, 50) <= Duration::from_millis(55));
        }
    }

    #[test]
    fn bandwidth_time_is_bytes_over_rate_in_kilobytes_per_second() {
        assert_eq!(bandwidth_time(5_000, 5), Duration::from_secs(1));
        assert_eq!(bandwidth_time(1, 1000), Duration::from_micros(1));
        assert_eq!(bandwidth_time(123, 0), Duration::ZERO);
        assert_eq!(bandwidth_slice(5), 500);
        assert_eq!(bandwidth_slice(0), 1);
    }

    #[test]
    fn slices_are_never_empty_and_sum_to_the_chunk() {
        let mut r = rng(6);
        for len in [0usize, 1, 2, 9, 10, 15, 16, 218, 1000, 32 * 1024] {
            for (avg, var) in [(10, 5), (64, 32), (1, 0), (0, 0), (100, 0), (3, 50)] {
                let plan = slice_plan(&mut r, len, avg, var);
                assert_eq!(
                    plan.iter().sum::<usize>(),
                    len,
                    "len {len} avg {avg} var {var}"
                );
                assert!(plan.iter().all(|s| *s > 0));
            }
        }
    }

    #[test]
    fn slices_stay_near_the_average_size() {
        let mut r = rng(8);
        let plan = slice_plan(&mut r, 218, 10, 5);
        // Toxiproxy measured 19 and 21 slices of 4..=15 bytes for this case.
        assert!((14..=30).contains(&plan.len()), "{plan:?}");
        assert!(plan.iter().all(|s| *s <= 15), "{plan:?}");
    }

    #[test]
    fn a_chunk_within_the_average_is_one_slice() {
        let mut r = rng(9);
        assert_eq!(slice_plan(&mut r, 2, 10, 5), vec![2]);
    }

    #[test]
    fn limit_data_forwards_exactly_the_remaining_bytes_then_closes() {
        assert_eq!(limit_take(56, 100, 0), (56, false));
        assert_eq!(limit_take(30, 100, 86), (14, true));
        assert_eq!(limit_take(44, 100, 56), (44, true));
        assert_eq!(limit_take(10, 0, 0), (0, true));
    }
}

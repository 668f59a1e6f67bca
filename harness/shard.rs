//! Shards: one fleet split across processes or machines (pure).
//!
//! A run with `--shard i/N` resolves the whole plan, as every shard does
//! from the same scenario and seed, and keeps the devices of global index
//! `k` with `k mod N = i` ([`Plan::shard`]): every fleet and profile is
//! spread evenly, and the slices of `0/N … N−1/N` are disjoint and cover
//! the fleet. Every shard applies the link faults and device faults of its
//! own devices; shard 0, the designated one, applies the broker faults,
//! which the others follow (they open the fault's window at its scheduled
//! time and close it when the broker answers again after the scheduled
//! heal). Each shard writes a run directory of its own, whose `run.json`
//! names the shard and the digest of the whole plan ([`ShardInfo`]);
//! `mqtt-chaos merge` folds the directories of `0/N … N−1/N` into one run
//! and refuses shards of different scenarios, seeds or plans.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// Most shards a run may be split into.
pub const MAX_SHARDS: u32 = 256;

/// The slice `index/count` of a fleet (0-based: `0/3`, `1/3`, `2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole fleet: `0/1`.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/N` with `0 ≤ I < N ≤` [`MAX_SHARDS`], or `slot=K/N` with
    /// `1 ≤ K ≤ N`, which is shard `K−1` (Docker Swarm's `{{.Task.Slot}}`
    /// counts from 1; a Kubernetes Indexed Job's completion index from 0).
    pub fn parse(s: &str) -> Result<Shard, String> {
        if let Some(slot) = s.trim().strip_prefix("slot=") {
            let Shard { index, count } =
                Shard::parse_plain(slot, 1).map_err(|e| format!("\"{s}\": {e}"))?;
            return Ok(Shard {
                index: index - 1,
                count,
            });
        }
        Shard::parse_plain(s, 0)
    }

    /// `I/N` with `base ≤ I < N + base`.
    fn parse_plain(s: &str, base: u32) -> Result<Shard, String> {
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("\"{s}\" is not I/N (e.g. 0/3, the first of three shards)"))?;
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("\"{s}\": {what} \"{v}\" is not a whole number"))
        };
        let (index, count) = (num(i, "the index")?, num(n, "the count")?);
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "\"{s}\": the count must be between 1 and {MAX_SHARDS}"
            ));
        }
        if base == 1 && (index == 0 || index > count) {
            return Err(format!(
                "\"{s}\": a slot counts from 1, so it must be between 1 and {count}"
            ));
        }
        if base == 0 && index >= count {
            return Err(format!(
                "\"{s}\": the index counts from 0, so it must be below {count}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the device of global index `k` (its place in the whole plan)
    /// is in this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count as usize == self.index as usize
    }

    /// The shard that applies broker faults.
    pub fn is_designated(&self) -> bool {
        self.index == 0
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--out` of a shard: `{shard}` in it becomes the shard's index, so the
/// replicas of one service (one argument list) write directories of their own.
pub fn out_dir(out: &std::path::Path, shard: Shard) -> std::path::PathBuf {
    let s = out.to_string_lossy();
    if s.contains("{shard}") {
        std::path::PathBuf::from(s.replace("{shard}", &shard.index.to_string()))
    } else {
        out.to_path_buf()
    }
}

/// `--start-at`: Unix time in ms, or `+DURATION` after `now`.
pub fn parse_start_at(s: &str, now: std::time::SystemTime) -> Result<u64, String> {
    let s = s.trim();
    let unix_ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    if let Some(rel) = s.strip_prefix('+') {
        let d = crate::scenario::duration::parse(rel)?;
        if d > MAX_START_DELAY {
            return Err(format!("\"{s}\" is more than an hour away"));
        }
        return Ok(unix_ms(now + d));
    }
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("\"{s}\" is neither Unix time in ms nor +DURATION (e.g. +20s)"))?;
    let now_ms = unix_ms(now);
    if ms > now_ms + MAX_START_DELAY.as_millis() as u64 {
        return Err(format!(
            "{ms} is more than an hour after now ({now_ms}): is it in ms?"
        ));
    }
    Ok(ms)
}

/// How far ahead a common start instant may lie.
pub const MAX_START_DELAY: std::time::Duration = std::time::Duration::from_secs(3600);

/// With a common start instant (`--start-at`), the devices make their
/// first attempts from this point of the run clock (or as soon as the
/// observer is subscribed, if later): a device's schedule then does not
/// depend on how long its process took to subscribe.
pub const FLEET_LEAD: std::time::Duration = std::time::Duration::from_secs(1);

/// How late after the common start instant a shard may begin measuring:
/// later, its schedule would lag the others'.
pub const START_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(1);

/// What `run.json` says of a shard's run, for `merge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// [`plan_digest`] of the whole (unsharded) plan.
    pub plan_digest: String,
    /// The common start instant of the shards (Unix time, ms).
    pub start_unix_ms: u64,
}

impl ShardInfo {
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

/// A digest of a whole plan (every device, topic, client id and scheduled
/// fault, with the seed): shards whose digests differ ran different plans.
/// FNV-1a (64 bit) over the plan's debug form, as 16 hex digits.
pub fn plan_digest(plan: &Plan) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{}",
        plan.devices, plan.groups, plan.faults, plan.drain, plan.seed
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_takes_i_of_n_and_says_what_is_wrong() {
        assert_eq!(Shard::parse("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse(" 2/3 "), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("3/3").unwrap_err().contains("below 3"));
        assert!(Shard::parse("1/0").unwrap_err().contains("between 1"));
        assert!(Shard::parse("1").unwrap_err().contains("not I/N"));
        assert!(Shard::parse("a/2").unwrap_err().contains("\"a\""));
        assert_eq!(Shard::parse("1/3").unwrap().to_string(), "1/3");
        assert_eq!(Shard::parse("slot=1/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse("slot=3/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("slot=0/3")
            .unwrap_err()
            .contains("between 1 and 3"));
        assert!(Shard::parse("slot=4/3")
            .unwrap_err()
            .contains("between 1 and 3"));
    }

    #[test]
    fn start_at_is_unix_ms_or_a_delay_from_now() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_000_000);
        assert_eq!(parse_start_at("+20s", now), Ok(1_020_000));
        assert_eq!(parse_start_at("999000", now), Ok(999_000));
        assert!(parse_start_at("+2h", now).unwrap_err().contains("an hour"));
        assert!(parse_start_at("99999999999", now)
            .unwrap_err()
            .contains("in ms"));
        assert!(parse_start_at("soon", now)
            .unwrap_err()
            .contains("+DURATION"));
    }

    proptest! {
        #[test]
        fn the_slices_are_disjoint_and_cover_the_fleet(n in 1u32..20, devices in 0usize..500) {
            for k in 0..devices {
                let owners = (0..n).filter(|&i| Shard { index: i, count: n }.owns(k)).count();
                prop_assert_eq!(owners, 1);
            }
        }
    }
}

//! The shards' `run.json` files checked against each other and folded
//! into the merged run's (pure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::metrics::interval::{RunInfo, FORMAT};
use crate::shard::ShardInfo;

use super::{MergeError, MergedShard};

/// One shard's `run.json` and where it was read.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub dir: PathBuf,
    pub info: RunInfo,
}

impl ShardRun {
    fn shard(&self) -> Result<&ShardInfo, MergeError> {
        self.info
            .shard
            .as_ref()
            .ok_or_else(|| MergeError::NotAShard {
                dir: self.dir.clone(),
            })
    }
}

/// Check that `runs` are the shards `0/N … N−1/N` of one run (the same
/// plan digest, count, start instant, seed, scenario, resolved scenario,
/// harness version and schema version; interval files of this harness's
/// format; every index once) and return them
/// in index order with the merged run's `run.json`: no `shard`, devices
/// summed (in total and per profile), `merged_from` listing the shards,
/// `started_at` the earliest, the broker's and fault backend's versions
/// those of the shards (distinct ones joined with `, `).
pub fn merge_run_infos(runs: Vec<ShardRun>) -> Result<(Vec<ShardRun>, RunInfo), MergeError> {
    let first = runs.first().ok_or(MergeError::NoShards)?;
    let head = first.shard()?.clone();
    for r in &runs {
        let s = r.shard()?;
        let differs = |field: &'static str, found: String, expected: String| {
            Err(MergeError::Mismatch {
                dir: r.dir.clone(),
                field,
                found,
                first: first.dir.clone(),
                expected,
            })
        };
        if s.count != head.count {
            return differs("shard.count", s.count.to_string(), head.count.to_string());
        }
        if s.plan_digest != head.plan_digest {
            return differs(
                "shard.plan_digest",
                s.plan_digest.clone(),
                head.plan_digest.clone(),
            );
        }
        if s.start_unix_ms != head.start_unix_ms {
            return differs(
                "shard.start_unix_ms",
                s.start_unix_ms.to_string(),
                head.start_unix_ms.to_string(),
            );
        }
        let (a, b) = (&r.info, &first.info);
        if a.intervals_format != FORMAT {
            return Err(MergeError::IntervalsFormat {
                dir: r.dir.clone(),
                found: a.intervals_format,
            });
        }
        if a.schema_version != b.schema_version {
            return differs(
                "schema_version",
                a.schema_version.to_string(),
                b.schema_version.to_string(),
            );
        }
        if a.seed != b.seed {
            return differs("seed", a.seed.to_string(), b.seed.to_string());
        }
        if a.scenario != b.scenario {
            return differs("scenario", a.scenario.clone(), b.scenario.clone());
        }
        if a.versions.harness != b.versions.harness {
            return differs(
                "versions.harness",
                a.versions.harness.clone(),
                b.versions.harness.clone(),
            );
        }
        if a.resolved_scenario != b.resolved_scenario {
            return differs(
                "resolved_scenario",
                "a different scenario".into(),
                "this one (compare the two run.json files)".into(),
            );
        }
    }

    let mut by_index: BTreeMap<u32, ShardRun> = BTreeMap::new();
    for r in runs {
        let index = r.shard()?.index;
        if index >= head.count {
            return Err(MergeError::Mismatch {
                dir: r.dir.clone(),
                field: "shard.index",
                found: index.to_string(),
                first: r.dir.clone(),
                expected: format!("below its count {}", head.count),
            });
        }
        if let Some(other) = by_index.get(&index) {
            return Err(MergeError::DuplicateIndex {
                index,
                count: head.count,
                dirs: (other.dir.clone(), r.dir),
            });
        }
        by_index.insert(index, r);
    }
    let missing: Vec<u32> = (0..head.count)
        .filter(|i| !by_index.contains_key(i))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingIndex {
            missing,
            count: head.count,
        });
    }
    let runs: Vec<ShardRun> = by_index.into_values().collect();

    let mut info = runs[0].info.clone();
    info.shard = None;
    info.devices = runs.iter().map(|r| r.info.devices).sum();
    info.profiles = BTreeMap::new();
    info.histograms = BTreeMap::new();
    for r in &runs {
        for (p, n) in &r.info.profiles {
            *info.profiles.entry(p.clone()).or_default() += n;
        }
        for (f, file) in &r.info.histograms {
            info.histograms.insert(f.clone(), file.clone());
        }
    }
    info.started_at = runs
        .iter()
        .map(|r| r.info.started_at.clone())
        .min()
        .expect("at least one shard");
    let distinct = |v: &dyn Fn(&RunInfo) -> &str| {
        let mut seen: Vec<&str> = Vec::new();
        for r in &runs {
            if !seen.contains(&v(&r.info)) {
                seen.push(v(&r.info));
            }
        }
        seen.join(", ")
    };
    info.versions.broker = distinct(&|i| i.versions.broker.as_str());
    info.versions.faults = distinct(&|i| i.versions.faults.as_str());
    info.merged_from = runs
        .iter()
        .map(|r| MergedShard {
            index: r.info.shard.as_ref().map_or(0, |s| s.index),
            count: head.count,
            dir: display(&r.dir),
            devices: r.info.devices,
        })
        .collect();
    Ok((runs, info))
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

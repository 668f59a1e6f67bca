//! `mqtt-chaos merge`: the run directories of the shards `0/N … N−1/N` of
//! one run (see [`crate::shard`]) folded into one run directory, which is
//! itself a normal one (`run.json`, `intervals.jsonl`, the `.hlog` files,
//! and the reports `mqtt-chaos report` would rebuild from them).
//!
//! * [`runs`]: the shards' `run.json` checked against each other (pure).
//! * [`intervals`]: their interval records merged, figure by figure (pure).
//! * [`merge`]: the shell: read the directories, merge, write, report.
//!
//! Merging is exact: every count of the merged report is the sum of the
//! shards', every histogram their sum bucket for bucket, and the connection
//! and offline figures are computed from the shards' samples added up
//! (the [`LinkFigures`](crate::metrics::LinkFigures) of the episodes that
//! started in each interval, which every interval carries), not from
//! percentiles. Only shards of this harness's interval format are merged
//! (see `metrics::interval`, "Formats").

pub mod intervals;
pub mod runs;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::hlog::{self, IntervalLog, IntervalLogError};
use crate::report::{self, Report};
use crate::runner::{self, exit, RunDir};

use intervals::{merge_intervals, ShardSeries};
use runs::{merge_run_infos, ShardRun};

/// One shard a merged run was folded from (`run.json`'s `merged_from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedShard {
    pub index: u32,
    pub count: u32,
    /// Its run directory, as given to `merge`.
    pub dir: String,
    pub devices: u32,
}

/// Why shards cannot be merged: the directory and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no run directory given")]
    NoShards,
    #[error("{}: not a run directory: {source}", dir.display())]
    NotARun {
        dir: PathBuf,
        source: IntervalLogError,
    },
    #[error("{}: its interval files are of format {found}, written by an older harness: they count a message's fate in the interval where it was decided, not the one it was intended in, so their shards cannot be merged exactly (this harness writes and merges format {})", dir.display(), crate::metrics::interval::FORMAT)]
    IntervalsFormat { dir: PathBuf, found: u32 },
    #[error("{}: run.json has no `shard`: a run of the whole fleet, not a shard (run each shard with --shard I/N)", dir.display())]
    NotAShard { dir: PathBuf },
    #[error("{}: run.json's {field} is {found}, but {}'s is {expected}: not shards of one run", dir.display(), first.display())]
    Mismatch {
        dir: PathBuf,
        field: &'static str,
        found: String,
        first: PathBuf,
        expected: String,
    },
    #[error("shard {index}/{count} is given twice: {} and {}", dirs.0.display(), dirs.1.display())]
    DuplicateIndex {
        index: u32,
        count: u32,
        dirs: (PathBuf, PathBuf),
    },
    #[error("{}: missing, a merge needs every shard of 0/{count} … {}/{count}",
        missing.iter().map(|i| format!("shard {i}/{count}")).collect::<Vec<_>>().join(", "),
        count - 1)]
    MissingIndex { missing: Vec<u32>, count: u32 },
    #[error(transparent)]
    Intervals(IntervalLogError),
    #[error("{}: {message}", path.display())]
    BadIntervals { path: PathBuf, message: String },
    #[error("no shard has a complete interval: nothing to merge")]
    NoIntervals,
    #[error("{}: --out is one of the shards' directories", out.display())]
    OutIsInput { out: PathBuf },
    /// Writing the merged run (not the input's fault).
    #[error("{0}")]
    Output(String),
}

impl MergeError {
    /// 2 for bad input, 3 when the merged run cannot be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            MergeError::Output(_) => exit::ENVIRONMENT,
            _ => exit::USAGE,
        }
    }
}

/// A merged run: its directory and its report (already written there).
#[derive(Debug)]
pub struct Merged {
    pub dir: PathBuf,
    pub report: Report,
}

/// The default output directory: `merged-<scenario>-<UTC start>` beside
/// the first shard's directory (`-2`, `-3`… when it exists).
pub fn default_stem(info: &crate::metrics::interval::RunInfo) -> String {
    let time: String = info
        .started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("merged-{}-{time}", info.scenario)
}

/// Merge the shards in `dirs` into `out` (default: [`default_stem`] beside
/// the first), write its run directory and reports, and return them.
pub fn merge(dirs: &[PathBuf], out: Option<&Path>) -> Result<Merged, MergeError> {
    let mut runs = Vec::new();
    for dir in dirs {
        let info = hlog::read_run_info(dir).map_err(|source| MergeError::NotARun {
            dir: dir.clone(),
            source,
        })?;
        runs.push(ShardRun {
            dir: dir.clone(),
            info,
        });
    }
    let (runs, info) = merge_run_infos(runs)?;
    let mut series = Vec::new();
    for r in &runs {
        let records = hlog::read_intervals(&r.dir).map_err(MergeError::Intervals)?;
        let incomplete = report::incomplete(&r.info, &records);
        series.push(ShardSeries {
            shard: r.info.shard.as_ref().expect("checked").shard(),
            records,
            incomplete,
        });
    }
    let merged = merge_intervals(&series).map_err(|e| MergeError::BadIntervals {
        path: runs[e.shard].dir.join(hlog::INTERVALS_FILE),
        message: e.message,
    })?;
    if merged.is_empty() {
        return Err(MergeError::NoIntervals);
    }

    if let Some(out) = out {
        let same = |d: &Path| match (out.canonicalize(), d.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if dirs.iter().any(|d| same(d)) {
            return Err(MergeError::OutIsInput {
                out: out.to_path_buf(),
            });
        }
    }
    let parent = dirs[0]
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let claimed = RunDir::claim(out, parent, &default_stem(&info))
        .map_err(|e| MergeError::Output(e.to_string()))?;
    let dir = claimed.path().to_path_buf();
    let started = chrono::DateTime::parse_from_rfc3339(&info.started_at)
        .map(std::time::SystemTime::from)
        .unwrap_or(std::time::UNIX_EPOCH);
    let output = |e: IntervalLogError| MergeError::Output(e.to_string());
    hlog::write_run_info(&dir, &info).map_err(output)?;
    let mut log = IntervalLog::create(&dir, started).map_err(output)?;
    for r in &merged {
        log.append(r).map_err(output)?;
    }
    drop(log);
    // The reports exactly as `mqtt-chaos report` rebuilds them.
    let (report, chart) =
        report::rebuild_with_series(&dir, None).map_err(|e| MergeError::Output(e.to_string()))?;
    runner::write_outputs(&report, &chart, &dir).map_err(|e| MergeError::Output(e.to_string()))?;
    Ok(Merged { dir, report })
}

#[cfg(test)]
mod tests;

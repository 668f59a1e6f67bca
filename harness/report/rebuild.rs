//! A report rebuilt from a run's time series alone (`run.json`,
//! `intervals.jsonl`, the `.hlog` files): for the whole run, equal to its
//! `report.json`; for a window, the figures of the intervals inside it; and
//! for a run that was killed, the figures of the intervals it completed.
//!
//! An interval belongs to the window that holds its *start*, so windows
//! that tile a run (`0..1h`, `1h..2h`, …) share out its intervals, each
//! exactly once. See `metrics::interval` for what the sums mean.

use std::path::Path;
use std::time::Duration;

use crate::health::{Cause, Incident};
use crate::metrics::hlog;
use crate::metrics::interval::{report_of, IntervalRecord, RunInfo};
use crate::scenario::duration;

use super::series::{series_of, Series};
use super::{Report, ReportError};

/// Rebuild the report of the run in `run_dir`, or of the intervals starting
/// in `window` (`[from, to)` on the run clock).
pub fn rebuild(
    run_dir: &Path,
    window: Option<(Duration, Duration)>,
) -> Result<Report, ReportError> {
    rebuild_with_series(run_dir, window).map(|(report, _)| report)
}

/// [`rebuild`], with the chart data of the same intervals (for `report.html`).
pub fn rebuild_with_series(
    run_dir: &Path,
    window: Option<(Duration, Duration)>,
) -> Result<(Report, Series), ReportError> {
    let run = hlog::read_run_info(run_dir)?;
    let intervals = hlog::read_intervals(run_dir)?;
    let (earlier, inside) = match window {
        None => (&intervals[..0], &intervals[..]),
        Some((from, to)) => {
            let first = intervals.partition_point(|r| r.start() < from);
            let end = first + intervals[first..].partition_point(|r| r.start() < to);
            (&intervals[..first], &intervals[first..end])
        }
    };
    if inside.is_empty() {
        let what = match window {
            None => "no complete interval".to_string(),
            Some((from, to)) => format!(
                "no interval (of {}) starts in the window {}..{}",
                intervals.len(),
                duration::format(from),
                duration::format(to)
            ),
        };
        return Err(ReportError::NoIntervals {
            dir: run_dir.to_path_buf(),
            what,
        });
    }
    let series = series_of(inside, run.profiles.clone());
    let mut report = report_of(&run, earlier, inside);
    if let Some(cut_short) = incomplete(&run, &intervals) {
        report.push_error(cut_short);
    }
    Ok((report, series))
}

/// A run whose files end without its last interval (the one cut at the
/// run's end) was killed, crashed or lost its machine: what it could not
/// see is said, and the verdict is `error` (METRICS.md, Verdicts).
pub fn incomplete(run: &RunInfo, intervals: &[IntervalRecord]) -> Option<Incident> {
    if intervals.iter().any(|r| r.last) {
        return None;
    }
    let upto = intervals.last().map_or(Duration::ZERO, IntervalRecord::end);
    let sc = &run.resolved_scenario;
    let missing: Vec<String> = sc
        .timeline
        .iter()
        .enumerate()
        .filter(|(_, f)| f.at >= upto)
        .map(|(i, f)| {
            format!(
                "timeline[{i}] {} at {}",
                f.kind.name(),
                duration::format(f.at)
            )
        })
        .collect();
    Some(Incident::new(
        Some(upto.as_secs_f64()),
        Cause::Incomplete,
        format!(
            "the run stopped without writing its end (killed, crashed or its machine lost): \
             this report is complete up to {} of the scheduled {} (drain not included); \
             what happened after that is not seen{}",
            duration::format(upto),
            duration::format(sc.duration),
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; faults due after it never appear here: {}",
                    missing.join(", ")
                )
            }
        ),
    ))
}

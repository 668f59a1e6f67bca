//! A report rebuilt from a run's time series alone (`run.json`,
//! `intervals.jsonl`, the `.hlog` files): for the whole run, equal to its
//! `report.json`; for a window, the figures of the intervals inside it; and
//! for a run that was killed, the figures of the intervals it completed.
//!
//! An interval belongs to the window that holds its *start*, so windows
//! that tile a run (`0..1h`, `1h..2h`, …) share out its intervals, each
//! exactly once, and with them every message and episode that started in
//! them (a figure counts in the interval where its subject started, see
//! `metrics::interval`): their reports add up to the run's.
//!
//! A run directory of the first interval format (written by an older
//! harness, counting each figure where it was decided) is rebuilt whole as
//! before, but a window of it is refused: its figures cannot be told
//! apart by window exactly. One of a newer format is refused.

use std::path::Path;
use std::time::Duration;

use crate::health::{Cause, Incident};
use crate::metrics::hlog;
use crate::metrics::interval::{report_of, IntervalRecord, RunInfo, FORMAT};
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
    let format = run.intervals_format;
    if format > FORMAT {
        return Err(ReportError::IntervalsFormat {
            dir: run_dir.to_path_buf(),
            what: format!(
                "its interval files are of format {format}, written by a newer harness; this one reads formats 1 to {FORMAT}"
            ),
        });
    }
    if format < 2 && window.is_some() {
        return Err(ReportError::IntervalsFormat {
            dir: run_dir.to_path_buf(),
            what: format!(
                "its interval files are of format {format}, written by an older harness: they count a message's fate in the interval where it was decided (a loss taken back later, in a later interval), so a window's report would not be exact; only the whole run can be rebuilt (without --from/--to)"
            ),
        });
    }
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::metrics::hlog::IntervalLog;
    use crate::metrics::interval::tests::{cut_lines, history, plan, run_info};
    use crate::metrics::interval::{IntervalRecord, ProfileInterval};
    use crate::metrics::LinkSnapshot;

    fn json(r: &Report) -> serde_json::Value {
        serde_json::to_value(r).expect("a report serialises")
    }

    /// The interval tests' run written to a run directory as the runner
    /// writes it (every cut: its amendments, then its interval).
    fn written() -> (tempfile::TempDir, Report) {
        let dir = tempfile::tempdir().unwrap();
        let (cuts, report) = cut_lines(&history(), 5_000, 62_000);
        hlog::write_run_info(dir.path(), &run_info(&plan())).unwrap();
        let mut log = IntervalLog::create(dir.path(), SystemTime::UNIX_EPOCH).unwrap();
        for c in &cuts {
            log.append_cut(c).unwrap();
        }
        (dir, report)
    }

    #[test]
    fn a_run_directory_rebuilds_whole_and_its_windows_add_up() {
        let (dir, report) = written();
        let text = std::fs::read_to_string(dir.path().join(hlog::INTERVALS_FILE)).unwrap();
        assert!(text.lines().any(|l| l.contains("\"amends\"")));
        assert_eq!(json(&rebuild(dir.path(), None).unwrap()), json(&report));
        let s = Duration::from_secs;
        let windows = [(0, 20), (20, 40), (40, 3_600)]
            .map(|(a, b)| rebuild(dir.path(), Some((s(a), s(b)))).unwrap());
        let lost: u64 = windows
            .iter()
            .map(|w| w.totals.telemetry.lost_after_ack)
            .sum();
        assert_eq!(lost, report.totals.telemetry.lost_after_ack);
        let delivered: u64 = windows.iter().map(|w| w.totals.telemetry.delivered).sum();
        assert_eq!(delivered, report.totals.telemetry.delivered);
    }

    #[test]
    fn a_run_killed_before_its_cut_finished_keeps_the_cuts_before() {
        let (dir, _) = written();
        // Killed after the amendments of a cut, before its interval line.
        let path = dir.path().join(hlog::INTERVALS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let cut = lines
            .iter()
            .rposition(|l| l.contains("\"amends\""))
            .expect("an amendment");
        let keep = lines[..=cut].join("\n") + "\n";
        std::fs::write(&path, keep).unwrap();
        let intervals = hlog::read_intervals(dir.path()).unwrap();
        let r = rebuild(dir.path(), None).unwrap();
        assert_eq!(r.verdict, crate::report::Verdict::Error);
        let upto = intervals.last().unwrap().end().as_secs_f64();
        assert!(r
            .errors
            .iter()
            .any(|e| e.cause == Cause::Incomplete && e.at_s == Some(upto)));
    }

    /// A run directory as the first interval format wrote it: no
    /// `intervals_format`, the connection figures cumulative in `link`.
    fn format_1() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut info = serde_json::to_value(run_info(&plan())).unwrap();
        info.as_object_mut().unwrap().remove("intervals_format");
        std::fs::write(
            dir.path().join(hlog::RUN_FILE),
            serde_json::to_string(&info).unwrap(),
        )
        .unwrap();
        let snapshot = |n| LinkSnapshot {
            true_offline: Some(n),
            false_offline: Some(0),
            ..LinkSnapshot::default()
        };
        let mut log = IntervalLog::create(dir.path(), SystemTime::UNIX_EPOCH).unwrap();
        for i in 0..2u64 {
            let mut profiles = std::collections::BTreeMap::new();
            for name in ["good", "weak"] {
                let mut p = ProfileInterval {
                    link: Some(snapshot(i + 1)),
                    connected: Some(2),
                    ..ProfileInterval::default()
                };
                p.telemetry.sent = 10;
                p.telemetry.delivered = 10;
                profiles.insert(name.to_string(), p);
            }
            log.append(&IntervalRecord {
                index: i,
                start_ns: i * 5_000_000_000,
                end_ns: (i + 1) * 5_000_000_000,
                last: i == 1,
                unobserved_ns: 0,
                unknown_device_events: 0,
                errors: vec![],
                faults: vec![],
                profiles,
                link_totals: Some(snapshot(2 * (i + 1))),
            })
            .unwrap();
        }
        dir
    }

    #[test]
    fn a_first_format_run_rebuilds_whole_as_before_but_refuses_a_window() {
        let dir = format_1();
        let r = rebuild(dir.path(), None).unwrap();
        assert_eq!(r.totals.telemetry.sent, 40);
        // The connection figures as of the last cut, cumulative.
        assert_eq!(r.profiles["good"].true_offline, Some(2));
        assert_eq!(r.totals.true_offline, Some(4));
        let e = rebuild(dir.path(), Some((Duration::ZERO, Duration::from_secs(5))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 1"), "{e}");
        assert!(e.contains("only the whole run can be rebuilt"), "{e}");
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let (dir, _) = written();
        let path = dir.path().join(hlog::RUN_FILE);
        let mut info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        info["intervals_format"] = serde_json::json!(FORMAT + 1);
        std::fs::write(&path, info.to_string()).unwrap();
        let e = rebuild(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("written by a newer harness"), "{e}");
    }
}

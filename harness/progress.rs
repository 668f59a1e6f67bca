//! The live display of a run: elapsed and remaining time, devices connected
//! out of the total, telemetry messages per second and the faults active now.
//! On a terminal it is an indicatif bar redrawn in place; elsewhere (CI logs)
//! a plain line every few seconds. `--quiet` shows nothing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One snapshot of a running run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub total: Duration,
    pub connected: u32,
    pub devices: u32,
    /// Telemetry messages delivered so far.
    pub delivered: u64,
    pub faults_active: Vec<String>,
    /// `running`, `draining`…
    pub stage: &'static str,
}

/// How a run shows its progress.
pub enum Progress {
    Bar {
        bar: ProgressBar,
        last_delivered: u64,
        last: Duration,
    },
    Plain {
        every: Duration,
        last_print: Option<Duration>,
        last_delivered: u64,
        last: Duration,
    },
    Quiet,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, total: Duration) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_secs().max(1)),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            Progress::Bar {
                bar,
                last_delivered: 0,
                last: Duration::ZERO,
            }
        } else {
            Progress::Plain {
                every: Duration::from_secs(5),
                last_print: None,
                last_delivered: 0,
                last: Duration::ZERO,
            }
        }
    }

    /// Show a snapshot (call about once a second).
    pub fn update(&mut self, s: &Snapshot) {
        match self {
            Progress::Quiet => {}
            Progress::Bar {
                bar,
                last_delivered,
                last,
            } => {
                let rate = rate(s, *last_delivered, *last);
                *last_delivered = s.delivered;
                *last = s.elapsed;
                bar.set_position(s.elapsed.as_secs());
                bar.set_message(line_body(s, rate));
            }
            Progress::Plain {
                every,
                last_print,
                last_delivered,
                last,
            } => {
                if last_print.is_some_and(|t| s.elapsed < t + *every) {
                    return;
                }
                let rate = rate(s, *last_delivered, *last);
                *last_delivered = s.delivered;
                *last = s.elapsed;
                *last_print = Some(s.elapsed);
                eprintln!(
                    "[{:>6.1}s / {:.0}s] {}",
                    s.elapsed.as_secs_f64(),
                    s.total.as_secs_f64(),
                    line_body(s, rate)
                );
            }
        }
    }

    pub fn finish(&mut self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn rate(s: &Snapshot, last_delivered: u64, last: Duration) -> f64 {
    let dt = s.elapsed.saturating_sub(last).as_secs_f64();
    if dt <= 0.0 {
        0.0
    } else {
        s.delivered.saturating_sub(last_delivered) as f64 / dt
    }
}

/// Faults in force: each by name while few, else counted per name (field
/// weather keeps hundreds in force at once), `none` without any.
fn active_faults(active: &[String]) -> String {
    const LISTED: usize = 6;
    if active.is_empty() {
        return "none".to_string();
    }
    if active.len() <= LISTED {
        return active.join(", ");
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in active {
        *counts.entry(a.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(label, n)| format!("{n} × {label}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of one progress line (pure, tested).
pub fn line_body(s: &Snapshot, msgs_per_s: f64) -> String {
    let remaining = s.total.saturating_sub(s.elapsed);
    let faults = active_faults(&s.faults_active);
    format!(
        "{} | {}/{} devices connected | {:.0} msg/s | remaining {}s | faults: {}",
        s.stage,
        s.connected,
        s.devices,
        msgs_per_s,
        remaining.as_secs(),
        faults
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_faults_in_force_are_counted_per_name() {
        let few: Vec<String> = ["link_down@a", "latency@b"].map(String::from).to_vec();
        assert_eq!(active_faults(&few), "link_down@a, latency@b");
        assert_eq!(active_faults(&[]), "none");
        let mut many: Vec<String> = vec!["link_down@field".to_string(); 5];
        many.extend(vec!["cut@field".to_string(); 3]);
        assert_eq!(active_faults(&many), "3 × cut@field, 5 × link_down@field");
    }

    #[test]
    fn a_line_names_devices_rate_remaining_time_and_faults() {
        let s = Snapshot {
            elapsed: Duration::from_secs(20),
            total: Duration::from_secs(60),
            connected: 48,
            devices: 50,
            delivered: 1000,
            faults_active: vec!["blackhole@group-a".into()],
            stage: "running",
        };
        assert_eq!(
            line_body(&s, 49.6),
            "running | 48/50 devices connected | 50 msg/s | remaining 40s | faults: blackhole@group-a"
        );
    }
}

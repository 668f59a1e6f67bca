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

/// The text of one progress line (pure, tested).
pub fn line_body(s: &Snapshot, msgs_per_s: f64) -> String {
    let remaining = s.total.saturating_sub(s.elapsed);
    let faults = if s.faults_active.is_empty() {
        "none".to_string()
    } else {
        s.faults_active.join(", ")
    };
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

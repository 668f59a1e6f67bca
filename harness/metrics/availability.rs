//! The run's own health, as far as the history shows it (METRICS.md,
//! Verdicts): whether the broker was there when no scheduled fault took it
//! away. Pure: the recorder passes the observer's downtime and the windows
//! of the broker faults, and turns what this returns into incidents.
//!
//! The observer is connected straight to the broker, so its own
//! connection is the harness's view of the broker's health:
//!
//! * A **broker window** runs from a broker fault's request
//!   (`broker_restart`, `broker_kill`, `broker_pause`, `broker_partition`;
//!   its confirmation when no request was recorded) to its heal's
//!   confirmation plus [`OBSERVER_BACK`], the observer's grace to reconnect
//!   (its reconnect delay is 200 ms; the grace leaves room for a loaded
//!   machine and a broker still loading its state). A broker fault that
//!   failed before it was applied closes its window at the failure.
//! * Observer downtime outside every broker window that lasts longer than
//!   [`OBSERVER_DOWN`] → `broker_unavailable` (the broker could not be
//!   reached although nothing scheduled took it away).
//! * Downtime that goes on past a broker window's end (the observer not
//!   back [`OBSERVER_BACK`] after the heal was confirmed) →
//!   `broker_not_back`.
//! * The observer still down at the run's end → `broker_not_back` when the
//!   end falls in the grace after a healed broker fault, nothing more when a
//!   broker fault is still in force (its heal's own lateness is reported),
//!   `broker_unavailable` otherwise.
//!
//! Each down span gives at most one incident.

use std::time::Duration;

use super::connection::{merge, subtract, Span};
use crate::clock::Nanos;
use crate::health::Cause;

/// Longest observer outage outside a broker window that is not an incident.
pub const OBSERVER_DOWN: Duration = Duration::from_secs(5);
/// How long after a broker fault's confirmed heal the observer may take to
/// be back.
pub const OBSERVER_BACK: Duration = Duration::from_secs(5);

/// One broker fault's window as the history shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerWindow {
    pub index: usize,
    /// Request (or confirmation) of the fault.
    pub start: Nanos,
    /// Confirmed heal (or failure before it was applied); `None` while in
    /// force.
    pub healed: Option<Nanos>,
}

impl BrokerWindow {
    /// Where the observer's grace ends; `None` while the fault is in force.
    fn end(&self) -> Option<Nanos> {
        self.healed.map(|h| h.plus(OBSERVER_BACK))
    }
}

/// What one observer down span tells of the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub cause: Cause,
    /// When the broker became unavailable or was due back.
    pub at: Nanos,
    pub message: String,
}

/// The finding on the observer down span `down` as of `now` (the span's
/// open end taken as `now`); `at_end`: the run ends at `now`.
pub fn judge(down: &Span, windows: &[BrokerWindow], now: Nanos, at_end: bool) -> Option<Finding> {
    let (a, b) = (down.start, down.end_or(now));
    let excused = merge(
        windows
            .iter()
            .map(|w| (w.start, w.end().unwrap_or(now.max(b)).max(w.start)))
            .collect(),
    );
    let secs = |t: Nanos| t.as_secs_f64();
    for (p0, p1) in subtract(&[(a, b)], &excused) {
        if let Some(w) = windows.iter().find(|w| w.end() == Some(p0) && w.start <= a) {
            let healed = w.healed.expect("a window with an end healed");
            return Some(Finding {
                cause: Cause::BrokerNotBack,
                at: p0,
                message: format!(
                    "the observer was not back within {} s of timeline[{}]'s heal at {:.3} s (down since {:.3} s{})",
                    OBSERVER_BACK.as_secs_f64(),
                    w.index,
                    secs(healed),
                    secs(a),
                    match down.end {
                        Some(e) => format!(", back at {:.3} s", secs(e)),
                        None => String::new(),
                    }
                ),
            });
        }
        if p1.saturating_since(p0) > OBSERVER_DOWN {
            return Some(Finding {
                cause: Cause::BrokerUnavailable,
                at: p0,
                message: match down.end {
                    Some(e) => format!(
                        "the observer (straight to the broker) was down for {:.3} s from {:.3} s, outside any broker fault (bound {} s)",
                        secs(e) - secs(p0),
                        secs(p0),
                        OBSERVER_DOWN.as_secs_f64()
                    ),
                    None => format!(
                        "the observer (straight to the broker) has been down since {:.3} s, outside any broker fault (bound {} s)",
                        secs(p0),
                        OBSERVER_DOWN.as_secs_f64()
                    ),
                },
            });
        }
    }
    if !at_end || down.end.is_some() {
        return None;
    }
    let covering = windows
        .iter()
        .filter(|w| w.start <= now && w.end().is_none_or(|e| e >= now))
        .max_by_key(|w| w.start);
    match covering {
        Some(w) if w.healed.is_none() => None,
        Some(w) => Some(Finding {
            cause: Cause::BrokerNotBack,
            at: now,
            message: format!(
                "the observer was not back by the run's end, {:.3} s after timeline[{}]'s heal (down since {:.3} s)",
                now.saturating_since(w.healed.unwrap_or(now)).as_secs_f64(),
                w.index,
                secs(a)
            ),
        }),
        None => Some(Finding {
            cause: Cause::BrokerUnavailable,
            at: a,
            message: format!(
                "the observer (straight to the broker) was still down at the run's end ({:.3} s), down since {:.3} s",
                secs(now),
                secs(a)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Nanos {
        Nanos(ms * 1_000_000)
    }

    fn restart(from: u64, healed: Option<u64>) -> BrokerWindow {
        BrokerWindow {
            index: 1,
            start: ms(from),
            healed: healed.map(ms),
        }
    }

    #[test]
    fn an_outage_inside_a_broker_fault_and_its_grace_is_no_finding() {
        let down = Span::closed(ms(20_010), ms(25_500));
        let w = [restart(20_000, Some(22_000))];
        assert_eq!(judge(&down, &w, ms(60_000), true), None);
    }

    #[test]
    fn an_outage_longer_than_the_bound_with_no_broker_fault_is_broker_unavailable() {
        let down = Span::closed(ms(15_000), ms(25_000));
        let f = judge(&down, &[], ms(60_000), true).expect("a finding");
        assert_eq!((f.cause, f.at), (Cause::BrokerUnavailable, ms(15_000)));
        assert!(
            f.message.contains("down for 10.000 s from 15.000 s"),
            "{}",
            f.message
        );
        // A short one is not.
        let blip = Span::closed(ms(15_000), ms(19_000));
        assert_eq!(judge(&blip, &[], ms(60_000), true), None);
    }

    #[test]
    fn an_open_outage_is_judged_as_soon_as_it_outlasts_the_bound() {
        let down = Span::open(ms(15_000));
        assert_eq!(judge(&down, &[], ms(19_000), false), None);
        let f = judge(&down, &[], ms(20_500), false).expect("judged before the end");
        assert_eq!(f.cause, Cause::BrokerUnavailable);
    }

    #[test]
    fn an_observer_not_back_after_the_grace_is_broker_not_back() {
        let down = Span::closed(ms(20_010), ms(28_000));
        let f = judge(&down, &[restart(20_000, Some(22_000))], ms(60_000), true).expect("late");
        assert_eq!((f.cause, f.at), (Cause::BrokerNotBack, ms(27_000)));
    }

    #[test]
    fn down_at_the_end_is_unavailable_or_not_back_or_the_fault_s_own_business() {
        let down = Span::open(ms(58_000));
        let f = judge(&down, &[], ms(60_000), true).expect("down at the end");
        assert_eq!(f.cause, Cause::BrokerUnavailable);
        let f = judge(&down, &[restart(57_000, Some(57_500))], ms(60_000), true).expect("not back");
        assert_eq!(f.cause, Cause::BrokerNotBack);
        assert_eq!(
            judge(&down, &[restart(57_000, None)], ms(60_000), true),
            None
        );
        assert_eq!(judge(&down, &[], ms(60_000), false), None);
    }
}

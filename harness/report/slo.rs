//! Service-level objectives checked against a report's figures.
//!
//! An SLO names a figure (optionally of one profile, optionally one
//! statistic of a duration figure) and a limit. Each is `pass`, `fail` or
//! `unknown`: a figure that is `null` (not measured), a profile or figure
//! that does not exist, or an empty histogram gives `unknown`, and
//! **`unknown` counts as a breach** for the verdict — a run that could not
//! show an objective holds must not pass on it.
//!
//! A duration figure without a statistic is checked on its `max` (every
//! sample must meet the limit). Limits of duration figures are in µs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::figures::{self, FigureKind};
use super::Figures;

pub use crate::scenario::{Slo, SloOp};

/// What checking an SLO gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloStatus {
    Pass,
    Fail,
    /// The figure was not measured (`null`) or does not exist: a breach.
    Unknown,
}

/// One checked SLO, as `report.json` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    pub figure: String,
    pub profile: Option<String>,
    pub stat: Option<String>,
    /// `"<op> <limit>"` for people: `"= 0"`, `"<= 15.00 s"`.
    pub limit: String,
    /// The objective as written in the scenario.
    pub text: String,
    /// The figure's value (µs for durations); `null` when not measured.
    pub observed: Option<f64>,
    /// `null` when unknown.
    pub pass: Option<bool>,
    pub status: SloStatus,
    /// Why an objective holds or is unknown without an observed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the scenario expects of it: `hold` (default), or `breach` for
    /// an SLO on the figure a known-bad profile must fail on.
    #[serde(default)]
    pub expected: Expected,
}

/// The outcome an SLO is expected to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    #[default]
    Hold,
    Breach,
}

impl SloResult {
    /// Fail and unknown both breach.
    pub fn breached(&self) -> bool {
        self.status != SloStatus::Pass
    }

    /// Whether it came out as the scenario expects: an SLO to hold passed,
    /// an SLO to breach was measured and failed (an unknown value shows no
    /// mistake, so it is not the expected failure either).
    pub fn as_expected(&self) -> bool {
        match self.expected {
            Expected::Hold => self.status == SloStatus::Pass,
            Expected::Breach => self.status == SloStatus::Fail,
        }
    }
}

/// Check every SLO against the totals or its profile's figures.
pub fn evaluate(
    slos: &[Slo],
    totals: &Figures,
    profiles: &BTreeMap<String, Figures>,
) -> Vec<SloResult> {
    slos.iter()
        .map(|slo| {
            let figs = match &slo.profile {
                None => Some(totals),
                Some(p) => profiles.get(p),
            };
            let observed = figs.and_then(|f| observe(f, &slo.figure, slo.stat.as_deref()));
            let mut note = None;
            let status = match observed {
                // No offline report at all: none was false. A limit on
                // the rate holds (the count it divides is 0).
                None if slo.figure == "false_offline_rate"
                    && figs.is_some_and(|f| f.false_offline == Some(0))
                    && slo.op.holds(0.0, slo.limit) =>
                {
                    note = Some("no offline report: none was false".to_string());
                    SloStatus::Pass
                }
                None => SloStatus::Unknown,
                Some(v) if slo.op.holds(v, slo.limit) => SloStatus::Pass,
                Some(_) => SloStatus::Fail,
            };
            SloResult {
                figure: slo.figure.clone(),
                profile: slo.profile.clone(),
                stat: slo.stat.clone(),
                limit: format!(
                    "{} {}",
                    slo.op,
                    show_limit(&slo.figure, slo.stat.as_deref(), slo.limit)
                ),
                text: slo.text.clone(),
                observed,
                pass: match status {
                    SloStatus::Pass => Some(true),
                    SloStatus::Fail => Some(false),
                    SloStatus::Unknown => None,
                },
                status,
                note,
                expected: if slo.expect_breach {
                    Expected::Breach
                } else {
                    Expected::Hold
                },
            }
        })
        .collect()
}

/// Whether `figure` is a share in [0, 1] (shown in percent).
fn is_share(figure: &str) -> bool {
    crate::scenario::slo::RATES.contains(&figure)
}

/// A limit of `figure` for people: a share in percent as short as it was
/// written (`0.5 %`), anything else as [`show`] gives it.
pub fn show_limit(figure: &str, stat: Option<&str>, limit: f64) -> String {
    if is_share(figure) {
        // The shortest decimal of the percentage: `"<= 0.5%"` reads back
        // as 0.005, shown `0.5 %`.
        let pct = (limit * 100.0 * 1e9).round() / 1e9;
        return format!("{pct} %");
    }
    show(figure, stat, limit)
}

/// A value with its unit: durations and shares carry theirs already;
/// counts get what they count (`12 messages`, `3.20 flaps per device-hour`).
pub fn show_with_unit(figure: &str, stat: Option<&str>, value: f64) -> String {
    let shown = show(figure, stat, value);
    match unit(figure, stat) {
        Some(u) => format!("{shown} {u}"),
        None => shown,
    }
}

/// What a count figure counts (`None`: the shown value has its unit).
pub fn unit(figure: &str, stat: Option<&str>) -> Option<&'static str> {
    use crate::scenario::slo::{figure_kind, FigureKind};
    let name = figure.strip_prefix("commands.").unwrap_or(figure);
    match figure_kind(figure)? {
        FigureKind::Duration if stat == Some("count") => Some("samples"),
        FigureKind::Duration | FigureKind::Rate => None,
        FigureKind::Count => Some(match name {
            "true_offline" | "false_offline" | "missed_offline" => "offline reports",
            "flaps" => "flaps per device-hour",
            "takeovers" => "takeovers",
            "false_offline_per_device_day" => "false offline reports per device-day",
            "reconnect_attempts" => "reconnect attempts",
            "zombie_undetected" => "zombie episodes never detected",
            _ => "messages",
        }),
    }
}

/// A value of `figure` (with `stat`) for people: durations as `12.3 ms`,
/// shares in percent with two significant digits (`0.17 %`).
pub fn show(figure: &str, stat: Option<&str>, value: f64) -> String {
    let name = figure.strip_prefix("commands.").unwrap_or(figure);
    if is_share(name) && stat.is_none() {
        return crate::metrics::rate::percent(value);
    }
    match figures::kind(name) {
        Some(FigureKind::Duration) if stat != Some("count") && value >= 0.0 => {
            super::markdown::micros(value.round() as u64)
        }
        _ => super::markdown::number(value),
    }
}

/// The value an SLO compares: a count or rate as is; a statistic of a
/// duration figure (default `max`). `None` when null, empty or unknown.
/// `figure` may be `commands.<name>` for the command direction.
pub fn observe(figs: &Figures, figure: &str, stat: Option<&str>) -> Option<f64> {
    let (json, name) = match figure.strip_prefix("commands.") {
        Some(name) => (serde_json::to_value(&figs.commands).ok()?, name),
        None => (serde_json::to_value(figs).ok()?, figure),
    };
    let kind = figures::kind(name)?;
    let value = json.get(name)?;
    match (kind, stat) {
        (FigureKind::Duration, stat) => {
            let key = match stat.unwrap_or("max") {
                "count" => "count".to_string(),
                s @ ("min" | "p50" | "p90" | "p99" | "p999" | "max") => format!("{s}_us"),
                _ => return None,
            };
            value.get(key).and_then(Value::as_f64)
        }
        (FigureKind::Count | FigureKind::Rate, None) => value.as_f64(),
        (FigureKind::Count | FigureKind::Rate, Some(_)) => None,
    }
}

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
}

impl SloResult {
    /// Fail and unknown both breach.
    pub fn breached(&self) -> bool {
        self.status != SloStatus::Pass
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
            let status = match observed {
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
                    show(&slo.figure, slo.stat.as_deref(), slo.limit)
                ),
                text: slo.text.clone(),
                observed,
                pass: match status {
                    SloStatus::Pass => Some(true),
                    SloStatus::Fail => Some(false),
                    SloStatus::Unknown => None,
                },
                status,
            }
        })
        .collect()
}

/// A value of `figure` (with `stat`) for people: durations as `12.3 ms`.
pub fn show(figure: &str, stat: Option<&str>, value: f64) -> String {
    let name = figure.strip_prefix("commands.").unwrap_or(figure);
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

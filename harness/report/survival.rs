//! "Which configuration survives this?": the first table of `report.md`.
//!
//! One row per profile: whether it passed every SLO *stated for it* (a
//! `profile.figure` key of the scenario's `[slo]`), the ones it breached,
//! and the key figures where each common client-configuration mistake
//! shows. An SLO without a profile is checked on the run's totals — all
//! profiles together — and cannot be split between them honestly, so those
//! are listed apart ([`overall`]) and never decide a row.
//!
//! Pure: rows are computed from the [`Report`] alone, so every renderer
//! (Markdown here, the HTML page) shows the same rows.

use serde::Serialize;

use super::{DurationFigure, Expected, Figures, Report, SloResult, SloStatus};

/// Whether a profile survived the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Survival {
    /// Every SLO stated for the profile passed.
    Pass,
    /// One failed or could not be measured (unknown counts as a breach).
    Fail,
    /// No SLO names the profile: the run says nothing about it.
    NoSlo,
}

impl Survival {
    pub fn as_str(self) -> &'static str {
        match self {
            Survival::Pass => "PASS",
            Survival::Fail => "FAIL",
            Survival::NoSlo => "no SLO",
        }
    }
}

/// One statistic of a duration figure, with the episodes it could not
/// include. `None` (the whole value) when the figure was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DurationStat {
    /// µs; `None` when the histogram holds no sample.
    pub us: Option<u64>,
    /// Episodes whose end was never seen (e.g. a blackhole never noticed).
    pub censored: u64,
}

impl DurationStat {
    fn of(d: Option<&DurationFigure>, pick: fn(&DurationFigure) -> Option<u64>) -> Option<Self> {
        d.map(|d| DurationStat {
            us: pick(d),
            censored: d.censored.unwrap_or(0),
        })
    }
}

/// The figures where the common mistakes show, of one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyFigures {
    /// Telemetry acked and never received.
    pub lost_after_ack: u64,
    /// Commands acked by the broker and never received by the device (no
    /// subscription after a clean reconnect).
    pub commands_lost_after_ack: u64,
    /// Fire-and-forget telemetry that never arrived.
    pub silent_loss: u64,
    pub lost_qos0: u64,
    /// Extra receptions, telemetry and commands together.
    pub duplicates: u64,
    /// `zombie_time` max; censored = `zombie_undetected`.
    pub zombie_time_max: Option<DurationStat>,
    pub false_offline: Option<u64>,
    pub missed_offline: Option<u64>,
    pub stale_offline_time_max: Option<DurationStat>,
    /// Per device-hour.
    pub flaps: Option<f64>,
    /// censored: never reconnected.
    pub reconnect_after_heal_p99: Option<DurationStat>,
    /// censored: no attempt by the end of the run.
    pub first_attempt_delay_max: Option<DurationStat>,
    /// p99 of telemetry `ack_latency` (what QoS 2 everywhere costs).
    pub ack_latency_p99_us: Option<u64>,
}

impl KeyFigures {
    pub fn of(f: &Figures) -> KeyFigures {
        KeyFigures {
            lost_after_ack: f.telemetry.lost_after_ack,
            commands_lost_after_ack: f.commands.lost_after_ack,
            silent_loss: f.telemetry.silent_loss,
            lost_qos0: f.telemetry.lost_qos0,
            duplicates: f.telemetry.duplicates + f.commands.duplicates,
            zombie_time_max: f.zombie_time.as_ref().map(|d| DurationStat {
                us: d.max_us,
                censored: f.zombie_undetected.or(d.censored).unwrap_or(0),
            }),
            false_offline: f.false_offline,
            missed_offline: f.missed_offline,
            stale_offline_time_max: DurationStat::of(f.stale_offline_time.as_ref(), |d| d.max_us),
            flaps: f.flaps,
            reconnect_after_heal_p99: DurationStat::of(f.reconnect_after_heal.as_ref(), |d| {
                d.p99_us
            }),
            first_attempt_delay_max: DurationStat::of(f.first_attempt_delay.as_ref(), |d| d.max_us),
            ack_latency_p99_us: f.telemetry.ack_latency.p99_us,
        }
    }
}

/// One row of the survival table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalRow {
    pub profile: String,
    pub survival: Survival,
    /// How many SLOs name this profile.
    pub slos: usize,
    /// The breached ones: `figure[.stat] <limit> (observed …)`, in the
    /// scenario's key order.
    pub breached: Vec<String>,
    /// The figures a known-bad profile is expected to fail on (`figure` or
    /// `figure.stat`, from its SLOs marked `breach`); empty: it is expected
    /// to pass.
    pub expected_fail: Vec<String>,
    /// Every SLO of the profile came out as expected (vacuous without SLOs).
    pub as_expected: bool,
    pub figures: KeyFigures,
}

impl SurvivalRow {
    /// A configuration the run shows fit to ship: expected to pass, it has
    /// SLOs and every one held.
    pub fn safe(&self) -> bool {
        self.expected_fail.is_empty() && self.survival == Survival::Pass
    }

    /// "expected PASS" or "expected FAIL on zombie_undetected".
    pub fn expectation(&self) -> String {
        if self.survival == Survival::NoSlo {
            "no SLO: not judged".into()
        } else if self.expected_fail.is_empty() {
            "PASS".into()
        } else {
            format!("FAIL on {}", self.expected_fail.join(", "))
        }
    }
}

/// One row per profile of the report, in name order.
pub fn survival(r: &Report) -> Vec<SurvivalRow> {
    r.profiles
        .iter()
        .map(|(name, f)| {
            let mine: Vec<&SloResult> = r
                .slo
                .iter()
                .filter(|s| s.profile.as_deref() == Some(name))
                .collect();
            let breached: Vec<String> = mine
                .iter()
                .filter(|s| s.breached())
                .map(|s| describe(s))
                .collect();
            let mut expected_fail: Vec<String> = Vec::new();
            for s in mine.iter().filter(|s| s.expected == Expected::Breach) {
                let n = slo_name(s);
                if !expected_fail.contains(&n) {
                    expected_fail.push(n);
                }
            }
            SurvivalRow {
                profile: name.clone(),
                as_expected: mine.iter().all(|s| s.as_expected()),
                expected_fail,
                survival: match (mine.len(), breached.len()) {
                    (0, _) => Survival::NoSlo,
                    (_, 0) => Survival::Pass,
                    _ => Survival::Fail,
                },
                slos: mine.len(),
                breached,
                figures: KeyFigures::of(f),
            }
        })
        .collect()
}

/// The SLOs no row answers: those on the run's totals (all profiles
/// together) and those naming a profile the report does not have.
pub fn overall(r: &Report) -> Vec<&SloResult> {
    r.slo
        .iter()
        .filter(|s| {
            s.profile
                .as_ref()
                .is_none_or(|p| !r.profiles.contains_key(p))
        })
        .collect()
}

/// `zombie_time.max`, `commands.lost_after_ack`.
pub fn slo_name(s: &SloResult) -> String {
    match &s.stat {
        Some(stat) => format!("{}.{stat}", s.figure),
        None => s.figure.clone(),
    }
}

/// The answer a stakeholder reads first: which configurations the run
/// shows safe to ship, which known-bad ones failed where they should, and
/// what did not behave as expected, in plain sentences (Markdown-free, so
/// every renderer can use them). Empty only for a report without profiles.
pub fn answer(r: &Report) -> Vec<String> {
    answer_lines(r).into_iter().map(|(_, l)| l).collect()
}

/// What one sentence of the [`answer`] says, for a renderer that colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A configuration safe to ship.
    Safe,
    /// Something did not behave as expected: a configuration not safe to
    /// ship, a known-bad one whose mistake did not show, an SLO on all
    /// profiles breached, a run in error.
    Alarm,
    /// A known-bad baseline that failed where it should, or a profile not
    /// judged.
    Neutral,
}

/// The [`answer`]'s sentences with their [`Tone`].
pub fn answer_lines(r: &Report) -> Vec<(Tone, String)> {
    use super::Verdict;
    let rows = survival(r);
    let mut out = Vec::new();
    if r.verdict == Verdict::Error {
        out.push((Tone::Alarm, format!(
            "No configuration can be judged: the run is in error ({} incident{} in the harness or its environment), so its figures cannot vouch for any client configuration.",
            r.errors.len(),
            if r.errors.len() == 1 { "" } else { "s" }
        )));
        return out;
    }
    let names = |v: Vec<&SurvivalRow>| -> String {
        v.iter()
            .map(|r| r.profile.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let safe: Vec<&SurvivalRow> = rows.iter().filter(|r| r.safe()).collect();
    let unsafe_: Vec<&SurvivalRow> = rows
        .iter()
        .filter(|r| r.expected_fail.is_empty() && r.survival == Survival::Fail)
        .collect();
    if !safe.is_empty() {
        out.push((
            Tone::Safe,
            format!("Safe to ship: {} (every SLO held).", names(safe.clone())),
        ));
    }
    for row in &unsafe_ {
        out.push((
            Tone::Alarm,
            format!(
                "Not safe to ship: {} breached {}.",
                row.profile,
                row.breached.join("; ")
            ),
        ));
    }
    if safe.is_empty() && unsafe_.is_empty() {
        out.push((
            Tone::Alarm,
            "No configuration expected to pass was judged: the run names none safe to ship.".into(),
        ));
    }
    for row in rows.iter().filter(|r| !r.expected_fail.is_empty()) {
        if row.as_expected {
            out.push((
                Tone::Neutral,
                format!(
                    "Known-bad, as expected: {} failed on {}.",
                    row.profile,
                    row.expected_fail.join(", ")
                ),
            ));
        } else {
            let held: Vec<String> = r
                .slo
                .iter()
                .filter(|s| s.profile.as_deref() == Some(row.profile.as_str()))
                .filter(|s| !s.as_expected())
                .map(|s| match s.expected {
                    Expected::Breach => {
                        format!("{} did not fail ({})", slo_name(s), describe_observed(s))
                    }
                    Expected::Hold => format!("{} breached too", describe(s)),
                })
                .collect();
            out.push((
                Tone::Alarm,
                format!(
                    "Known-bad, NOT as expected: {} (expected to fail on {}): {}.",
                    row.profile,
                    row.expected_fail.join(", "),
                    held.join("; ")
                ),
            ));
        }
    }
    let unjudged: Vec<&SurvivalRow> = rows
        .iter()
        .filter(|r| r.survival == Survival::NoSlo)
        .collect();
    if !unjudged.is_empty() {
        out.push((
            Tone::Neutral,
            format!(
                "Not judged (no SLO names {}): {}.",
                if unjudged.len() == 1 { "it" } else { "them" },
                names(unjudged)
            ),
        ));
    }
    let overall_bad: Vec<String> = overall(r)
        .into_iter()
        .filter(|s| !s.as_expected())
        .map(describe)
        .collect();
    if !overall_bad.is_empty() {
        out.push((
            Tone::Alarm,
            format!(
                "Breached on all profiles together: {}.",
                overall_bad.join("; ")
            ),
        ));
    }
    out
}

fn describe_observed(s: &SloResult) -> String {
    match (s.status, s.observed) {
        (SloStatus::Unknown, _) | (_, None) => "not measured".to_string(),
        (_, Some(v)) => format!(
            "{} {}, observed {}",
            slo_name(s),
            s.limit,
            super::slo::show_with_unit(&s.figure, s.stat.as_deref(), v)
        ),
    }
}

/// `lost_qos0 = 0 (observed 12)`, `zombie_time.max <= 40.00 s (unknown: not measured)`.
pub fn describe(s: &SloResult) -> String {
    let name = slo_name(s);
    let observed = match (s.status, s.observed) {
        (SloStatus::Unknown, _) | (_, None) => "unknown: not measured".to_string(),
        (_, Some(v)) => format!(
            "observed {}",
            super::slo::show_with_unit(&s.figure, s.stat.as_deref(), v)
        ),
    };
    format!("{name} {} ({observed})", s.limit)
}

/// The table's column names.
pub const COLUMNS: &[&str] = &[
    "profile",
    "expected",
    "survives",
    "breached SLOs",
    "lost_after_ack",
    "commands lost_after_ack",
    "silent_loss",
    "lost_qos0",
    "duplicates",
    "zombie_time max",
    "false offline",
    "missed offline",
    "stale offline max",
    "flaps / device-h",
    "reconnect_after_heal p99",
    "first_attempt_delay max",
    "ack_latency p99",
];

/// A row as the table's cells (plain text; `–` where not measured).
pub fn cells(row: &SurvivalRow) -> Vec<String> {
    let f = &row.figures;
    let count = |c: Option<u64>| c.map_or("–".to_string(), |n| n.to_string());
    vec![
        row.profile.clone(),
        match row.survival {
            Survival::NoSlo => row.expectation(),
            _ if row.as_expected => format!("{}: as expected", row.expectation()),
            _ => format!("{}: NOT as expected", row.expectation()),
        },
        match row.survival {
            Survival::NoSlo => "no SLO".into(),
            s => format!(
                "{} ({} SLO{})",
                s.as_str(),
                row.slos,
                if row.slos == 1 { "" } else { "s" }
            ),
        },
        if row.breached.is_empty() {
            "–".into()
        } else {
            row.breached.join("; ")
        },
        f.lost_after_ack.to_string(),
        f.commands_lost_after_ack.to_string(),
        f.silent_loss.to_string(),
        f.lost_qos0.to_string(),
        f.duplicates.to_string(),
        stat(f.zombie_time_max, "undetected"),
        count(f.false_offline),
        count(f.missed_offline),
        stat(f.stale_offline_time_max, "censored"),
        f.flaps.map_or("–".into(), |x| format!("{x:.2}")),
        stat(f.reconnect_after_heal_p99, "never reconnected"),
        stat(f.first_attempt_delay_max, "never tried"),
        f.ack_latency_p99_us
            .map_or("–".into(), super::markdown::micros),
    ]
}

/// `12.3 ms`, `12.3 ms + 2 undetected`, `2 undetected`, `–`.
fn stat(s: Option<DurationStat>, censored: &str) -> String {
    match s {
        None => "–".into(),
        Some(DurationStat { us, censored: 0 }) => us.map_or("–".into(), super::markdown::micros),
        Some(DurationStat {
            us: None,
            censored: n,
        }) => format!("{n} {censored}"),
        Some(DurationStat {
            us: Some(us),
            censored: n,
        }) => format!("{} + {n} {censored}", super::markdown::micros(us)),
    }
}

#[cfg(test)]
mod tests;

//! `mqtt-chaos compare`: several runs side by side, and the regressions of
//! each later run against the first (the baseline).
//!
//! Every figure of report.json is compared ([`figure`]): the run's own
//! (verdict, unobserved time), then for the totals and for each profile
//! present in every run every count, rate and duration statistic, of both
//! directions (telemetry, `commands.*`). A later run regresses when a figure
//! got worse than its threshold allows ([`threshold`]: by default counts and
//! rates by more than 10 % or at all from 0, durations by more than 20 % and
//! 20 ms, a verdict from pass to fail or any run in error). A figure not measured
//! (`null`) in either run is not compared.
//!
//! Runs of different scenarios, profiles, fleet sizes or offline yardsticks
//! (`min_outage_s`) cannot be compared: [`compare`] refuses them unless told
//! otherwise, and then says so in the output. Different seeds, durations or
//! versions, and runs whose verdict is `error`, are warned of.
//!
//! Rendered as Markdown ([`markdown()`], a CI job summary) or JSON
//! ([`json()`], documented by `docs/compare.schema.json`). Pure: reads only
//! reports.

pub mod figure;
mod json;
mod markdown;
pub mod threshold;

use std::fmt;
use std::path::{Path, PathBuf};

pub use figure::{Better, Figure, Kind, Value};
pub use json::json;
pub use markdown::markdown;
pub use threshold::{Limit, Origin, Rule, Threshold, Thresholds};

use super::{Report, ReportError, Verdict};

/// How to compare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub thresholds: Thresholds,
    /// Compare runs that cannot be compared, with a warning.
    pub allow_different_scenarios: bool,
}

/// Which figures a table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Population {
    /// The run's own figures: verdict, unobserved time.
    Run,
    /// The totals of the fleet.
    Total,
    /// One profile.
    Profile(String),
}

impl Population {
    /// `run`, `total`, `profile weak`.
    pub fn label(&self) -> String {
        match self {
            Population::Run => "run".into(),
            Population::Total => "total".into(),
            Population::Profile(p) => format!("profile {p}"),
        }
    }

    pub fn profile(&self) -> Option<&str> {
        match self {
            Population::Profile(p) => Some(p),
            _ => None,
        }
    }
}

/// A compared run: its label (the path it was read from) and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub label: String,
    pub scenario: String,
    pub seed: u64,
    pub verdict: Verdict,
    pub started_at: String,
    pub duration_s: f64,
    pub devices: u32,
    /// Number of harness errors (any makes the verdict `error`).
    pub errors: usize,
}

/// One figure of a table: its limit and a value per run.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: Figure,
    /// `None`: shown, not judged.
    pub limit: Option<(Limit, Origin)>,
    /// `None` where the run did not measure it.
    pub values: Vec<Option<Value>>,
}

/// One population's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub population: Population,
    pub rows: Vec<Row>,
}

/// A regression of one later run against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Index of the run among those compared (≥ 1; 0 is the baseline).
    pub run: usize,
    pub population: Population,
    pub figure: Figure,
    pub baseline: Value,
    pub later: Value,
    pub limit: Limit,
    pub origin: Origin,
    pub rule: Rule,
}

impl Regression {
    /// `grew by more than 10 %`.
    pub fn describe(&self) -> String {
        self.rule.describe(self.figure.better)
    }
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Runs that cannot be compared, compared anyway.
    DifferentScenarios,
    DifferentSeeds,
    DifferentDurations,
    DifferentVersions,
    /// The baseline's verdict is error: its figures may be wrong.
    BaselineError,
    /// A later run's verdict is error (also flagged as a regression).
    LaterError,
}

impl WarningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::DifferentScenarios => "different_scenarios",
            WarningKind::DifferentSeeds => "different_seeds",
            WarningKind::DifferentDurations => "different_durations",
            WarningKind::DifferentVersions => "different_versions",
            WarningKind::BaselineError => "baseline_error",
            WarningKind::LaterError => "later_error",
        }
    }
}

/// Something the reader of a comparison must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

/// One way runs differ that makes them incomparable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The report.json field: `scenario`, `profiles`, `devices`,
    /// `min_outage_s`, `schema_version`.
    pub field: &'static str,
    /// Each run's value, in words.
    pub message: String,
}

/// Runs that cannot be compared, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomparable(pub Vec<Difference>);

impl fmt::Display for Incomparable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the runs cannot be compared:")?;
        for d in &self.0 {
            writeln!(f, "  {}: {}", d.field, d.message)?;
        }
        write!(
            f,
            "their figures measure different things; pass --allow-different-scenarios to compare them anyway"
        )
    }
}

impl std::error::Error for Incomparable {}

/// Why runs were not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareError {
    /// The runs measure different things.
    Incomparable(Incomparable),
    /// A `--threshold` names a profile no run has.
    UnknownProfile { threshold: String, profile: String },
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareError::Incomparable(i) => i.fmt(f),
            CompareError::UnknownProfile { threshold, profile } => write!(
                f,
                "--threshold {threshold}: no run has a profile `{profile}` (nor a figure of that name)"
            ),
        }
    }
}

impl std::error::Error for CompareError {}

/// The runs side by side and the regressions found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The runs, the baseline first.
    pub runs: Vec<Run>,
    /// `false`: the runs differ in what makes them comparable and were
    /// compared anyway (a [`WarningKind::DifferentScenarios`] says how).
    pub comparable: bool,
    pub warnings: Vec<Warning>,
    /// The run's own figures, the totals, then every profile present in all
    /// runs.
    pub tables: Vec<Table>,
    /// Profiles left out because some run lacks them.
    pub not_in_all: Vec<String>,
    pub regressions: Vec<Regression>,
    /// The thresholds given.
    pub thresholds: Thresholds,
}

/// Compare runs (label, report), the first being the baseline. Refuses runs
/// that cannot be compared unless `opts.allow_different_scenarios`, and a
/// threshold of a profile no run has.
pub fn compare(runs: &[(String, Report)], opts: &Options) -> Result<Comparison, CompareError> {
    let differences = differences(runs);
    if !differences.is_empty() && !opts.allow_different_scenarios {
        return Err(CompareError::Incomparable(Incomparable(differences)));
    }
    for t in &opts.thresholds.0 {
        if let Some(p) = &t.profile {
            if !runs.iter().any(|(_, r)| r.profiles.contains_key(p)) {
                return Err(CompareError::UnknownProfile {
                    threshold: t.to_string(),
                    profile: p.clone(),
                });
            }
        }
    }
    let mut warnings: Vec<Warning> = differences
        .iter()
        .map(|d| Warning {
            kind: WarningKind::DifferentScenarios,
            message: format!(
                "compared anyway (--allow-different-scenarios), but {} differs: {}; \
                 a regression may only mean the runs measured different things",
                d.field, d.message
            ),
        })
        .collect();
    warnings.extend(cautions(runs));

    let (profiles, not_in_all) = profiles(runs);
    let mut tables = vec![table(runs, Population::Run, &opts.thresholds)];
    tables.push(table(runs, Population::Total, &opts.thresholds));
    tables.extend(
        profiles
            .into_iter()
            .map(|p| table(runs, Population::Profile(p), &opts.thresholds)),
    );

    let mut regressions = Vec::new();
    for t in &tables {
        for row in &t.rows {
            let Some((limit, origin)) = row.limit else {
                continue;
            };
            let Some((Some(baseline), later)) = row.values.split_first() else {
                continue;
            };
            for (i, value) in later.iter().enumerate() {
                let Some(value) = *value else { continue };
                if let Some(rule) = threshold::judge(&row.figure, limit, *baseline, value) {
                    regressions.push(Regression {
                        run: i + 1,
                        population: t.population.clone(),
                        figure: row.figure.clone(),
                        baseline: *baseline,
                        later: value,
                        limit,
                        origin,
                        rule,
                    });
                }
            }
        }
    }
    regressions.sort_by_key(|g| g.run);
    Ok(Comparison {
        runs: runs
            .iter()
            .map(|(label, r)| Run {
                label: label.clone(),
                scenario: r.scenario.clone(),
                seed: r.seed,
                verdict: r.verdict,
                started_at: r.started_at.clone(),
                duration_s: r.duration_s,
                devices: r.devices,
                errors: r.errors.len(),
            })
            .collect(),
        comparable: differences.is_empty(),
        warnings,
        tables,
        not_in_all,
        regressions,
        thresholds: opts.thresholds.clone(),
    })
}

/// `a is x, b is y` for a field whose values differ among the runs, or
/// `None` when they agree.
fn differ<T: PartialEq>(
    runs: &[(String, Report)],
    get: impl Fn(&Report) -> T,
    show: impl Fn(&T) -> String,
) -> Option<String> {
    let values: Vec<T> = runs.iter().map(|(_, r)| get(r)).collect();
    let first = values.first()?;
    if values.iter().all(|v| v == first) {
        return None;
    }
    Some(
        runs.iter()
            .zip(&values)
            .map(|((label, _), v)| format!("`{label}` {}", show(v)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// What makes the runs incomparable: their figures would measure different
/// things (another scenario, other profiles, another fleet size, another
/// yardstick of offline reports, another report format).
pub fn differences(runs: &[(String, Report)]) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut check = |field: &'static str, message: Option<String>| {
        if let Some(message) = message {
            out.push(Difference { field, message });
        }
    };
    check(
        "schema_version",
        differ(runs, |r| r.schema_version, |v| format!("has {v}")),
    );
    check(
        "scenario",
        differ(runs, |r| r.scenario.clone(), |s| format!("is `{s}`")),
    );
    check(
        "profiles",
        differ(
            runs,
            |r| r.profiles.keys().cloned().collect::<Vec<_>>(),
            |p| {
                if p.is_empty() {
                    "has none".into()
                } else {
                    format!("has {}", p.join(", "))
                }
            },
        ),
    );
    check(
        "devices",
        differ(runs, |r| r.devices, |n| format!("has {n}")),
    );
    // Unknown in reports written before it was recorded: not a difference.
    if runs.iter().all(|(_, r)| r.min_outage_s.is_some()) {
        check(
            "min_outage_s",
            differ(
                runs,
                |r| r.min_outage_s.map(f64::to_bits),
                |b| format!("is {} s", b.map_or(0.0, f64::from_bits)),
            ),
        );
    }
    out
}

/// What the reader must know though the runs are comparable.
fn cautions(runs: &[(String, Report)]) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(m) = differ(runs, |r| r.seed, |s| format!("has seed {s}")) {
        out.push(Warning {
            kind: WarningKind::DifferentSeeds,
            message: format!("different seeds ({m}): faults fell at other times on other devices"),
        });
    }
    if let Some(m) = differ(
        runs,
        // To the millisecond: a run cut short, or another --duration.
        |r| (r.duration_s * 1e3).round() as i64,
        |ms| format!("ran {} s", *ms as f64 / 1e3),
    ) {
        out.push(Warning {
            kind: WarningKind::DifferentDurations,
            message: format!("different durations ({m}): counts grow with the run's length"),
        });
    }
    for (what, get) in [
        (
            "harness",
            (|r: &Report| r.versions.harness.clone()) as fn(&Report) -> String,
        ),
        ("broker", |r| r.versions.broker.clone()),
        ("fault backend", |r| r.versions.faults.clone()),
    ] {
        if let Some(m) = differ(runs, get, |v| format!("`{v}`")) {
            out.push(Warning {
                kind: WarningKind::DifferentVersions,
                message: format!("different {what} versions: {m}"),
            });
        }
    }
    for (i, (label, r)) in runs.iter().enumerate() {
        if r.verdict != Verdict::Error {
            continue;
        }
        let errors = match r.errors.first() {
            Some(e) if r.errors.len() == 1 => format!("1 harness error: {e}"),
            Some(e) => format!("{} harness errors, the first: {e}", r.errors.len()),
            None => "no error recorded".into(),
        };
        out.push(if i == 0 {
            Warning {
                kind: WarningKind::BaselineError,
                message: format!(
                    "the baseline `{label}` has verdict error ({errors}): it cannot vouch for \
                     its figures, so neither can a comparison against it"
                ),
            }
        } else {
            Warning {
                kind: WarningKind::LaterError,
                message: format!(
                    "`{label}` has verdict error ({errors}): it cannot vouch for its figures; \
                     flagged as a regression"
                ),
            }
        });
    }
    out
}

/// The profiles of every run (sorted), and those some run lacks.
fn profiles(runs: &[(String, Report)]) -> (Vec<String>, Vec<String>) {
    let mut all: Vec<String> = runs
        .iter()
        .flat_map(|(_, r)| r.profiles.keys().cloned())
        .collect();
    all.sort();
    all.dedup();
    all.into_iter()
        .partition(|p| runs.iter().all(|(_, r)| r.profiles.contains_key(p)))
}

fn table(runs: &[(String, Report)], population: Population, thresholds: &Thresholds) -> Table {
    let sets: Vec<serde_json::Value> = runs
        .iter()
        .map(|(_, r)| {
            let set = match &population {
                Population::Run => return serde_json::Value::Null,
                Population::Total => &r.totals,
                Population::Profile(p) => &r.profiles[p],
            };
            serde_json::to_value(set).unwrap_or(serde_json::Value::Null)
        })
        .collect();
    let figures = match population {
        Population::Run => figure::run_figures(),
        _ => figure::figures(&sets),
    };
    let rows = figures
        .into_iter()
        .map(|figure| Row {
            limit: thresholds.limit(&figure, population.profile()),
            values: runs
                .iter()
                .zip(&sets)
                .map(|((_, r), set)| figure.value(r, set))
                .collect(),
            figure,
        })
        .collect();
    Table { population, rows }
}

/// Read a run's report: `path/report.json` for a run directory, or `path`
/// itself when it is a file.
pub fn load(path: &Path) -> Result<Report, ReportError> {
    let file: PathBuf = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    super::read_json(&file)
}

#[cfg(test)]
pub(crate) mod tests;

//! A comparison as JSON (`compare --format json`): the shape
//! `docs/compare.schema.json` documents, `compare_version` 1. Every figure
//! of every population is listed, measured or not (`null`), with its kind,
//! its better direction, its threshold and each run's value; then the
//! regressions with figure, baseline, later value, rule and threshold.

use serde::Serialize;

use super::figure::{Kind, Value};
use super::{Comparison, Population};

/// The shape's version; bump on any incompatible change.
pub const COMPARE_VERSION: u32 = 1;

#[derive(Serialize)]
struct Out<'a> {
    compare_version: u32,
    /// Whether any later run regressed (the exit code 1).
    regressed: bool,
    /// `false`: compared though incomparable (`--allow-different-scenarios`).
    comparable: bool,
    runs: Vec<RunOut<'a>>,
    warnings: Vec<WarningOut<'a>>,
    thresholds: Vec<String>,
    populations: Vec<PopulationOut<'a>>,
    not_in_all: &'a [String],
    regressions: Vec<RegressionOut<'a>>,
}

#[derive(Serialize)]
struct RunOut<'a> {
    label: &'a str,
    baseline: bool,
    scenario: &'a str,
    seed: u64,
    verdict: &'static str,
    started_at: &'a str,
    duration_s: f64,
    devices: u32,
    errors: usize,
}

#[derive(Serialize)]
struct WarningOut<'a> {
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct PopulationOut<'a> {
    /// `run`, `total` or `profile`.
    population: &'static str,
    profile: Option<&'a str>,
    figures: Vec<FigureOut<'a>>,
}

#[derive(Serialize)]
struct FigureOut<'a> {
    figure: &'a str,
    kind: &'static str,
    /// `lower`, `higher`, `neither`; `null` for the verdict.
    better: Option<&'static str>,
    /// `null`: shown, not judged.
    threshold: Option<String>,
    threshold_from: Option<&'static str>,
    values: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct RegressionOut<'a> {
    run: usize,
    label: &'a str,
    population: &'static str,
    profile: Option<&'a str>,
    figure: &'a str,
    kind: &'static str,
    baseline: serde_json::Value,
    later: serde_json::Value,
    rule: &'static str,
    threshold: String,
    threshold_from: &'static str,
    description: String,
}

fn population(p: &Population) -> &'static str {
    match p {
        Population::Run => "run",
        Population::Total => "total",
        Population::Profile(_) => "profile",
    }
}

fn value(v: Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Verdict(v)) => v.as_str().into(),
        Some(Value::Count(n) | Value::Micros(n)) => n.into(),
        Some(Value::Rate(x)) => {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        }
    }
}

/// The comparison as pretty JSON, ending in a newline.
pub fn json(c: &Comparison) -> String {
    let out = Out {
        compare_version: COMPARE_VERSION,
        regressed: !c.regressions.is_empty(),
        comparable: c.comparable,
        runs: c
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| RunOut {
                label: &r.label,
                baseline: i == 0,
                scenario: &r.scenario,
                seed: r.seed,
                verdict: r.verdict.as_str(),
                started_at: &r.started_at,
                duration_s: r.duration_s,
                devices: r.devices,
                errors: r.errors,
            })
            .collect(),
        warnings: c
            .warnings
            .iter()
            .map(|w| WarningOut {
                kind: w.kind.as_str(),
                message: &w.message,
            })
            .collect(),
        thresholds: c.thresholds.0.iter().map(ToString::to_string).collect(),
        populations: c
            .tables
            .iter()
            .map(|t| PopulationOut {
                population: population(&t.population),
                profile: t.population.profile(),
                figures: t
                    .rows
                    .iter()
                    .map(|r| FigureOut {
                        figure: &r.figure.name,
                        kind: r.figure.kind.as_str(),
                        better: (r.figure.kind != Kind::Verdict).then(|| r.figure.better.as_str()),
                        threshold: r.limit.map(|(l, _)| l.to_string()),
                        threshold_from: r.limit.map(|(_, o)| o.as_str()),
                        values: r.values.iter().map(|v| value(*v)).collect(),
                    })
                    .collect(),
            })
            .collect(),
        not_in_all: &c.not_in_all,
        regressions: c
            .regressions
            .iter()
            .map(|g| RegressionOut {
                run: g.run,
                label: &c.runs[g.run].label,
                population: population(&g.population),
                profile: g.population.profile(),
                figure: &g.figure.name,
                kind: g.figure.kind.as_str(),
                baseline: value(Some(g.baseline)),
                later: value(Some(g.later)),
                rule: g.rule.as_str(),
                threshold: g.limit.to_string(),
                threshold_from: g.origin.as_str(),
                description: g.describe(),
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&out).expect("strings and numbers serialise");
    s.push('\n');
    s
}

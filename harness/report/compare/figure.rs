//! The figures `compare` puts side by side: every number a population (the
//! totals or one profile) has in `report.json`, and the run's own figures.
//!
//! The list is built from [`crate::report::figures`] (the one list of
//! METRICS.md names): every count and rate once, every duration figure once
//! per statistic of its histogram object (`e2e_latency.p99`), the message
//! figures again for the command direction (`commands.duplicates`), the
//! report's own additions (`offline_unobserved`, the ends of
//! `false_offline_rate_interval`) and one count per MQTT 5 reason code a
//! run was given (`reason_codes.PUBACK 0x97`). Values are read from the
//! serialised figure set by the figure's keys, so the names are exactly
//! report.json's; a number in a figure set that the list misses is still
//! compared ([`figures`] adds it), and a test walks a fully measured report
//! to keep the list complete.

use serde_json::Value as Json;

use crate::report::figures::{self as names, FigureKind};
use crate::report::{Report, Verdict};

/// What a compared value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The run's verdict.
    Verdict,
    /// A number of messages, episodes or events.
    Count,
    /// A share or a per-device-hour (per-day) number.
    Rate,
    /// A duration statistic, in microseconds.
    Micros,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Verdict => "verdict",
            Kind::Count => "count",
            Kind::Rate => "rate",
            Kind::Micros => "duration_us",
        }
    }
}

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Losses, duplicates, durations, false reports: growth is worse.
    Lower,
    /// Messages sent, acked, delivered; the share of resumed sessions.
    Higher,
    /// Neither way is worse in itself: histogram sample counts, true
    /// offline reports (they follow the faults).
    Neither,
}

impl Better {
    pub fn as_str(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Neither => "neither",
        }
    }
}

/// Where a figure's value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The keys in a serialised figure set: `["commands", "e2e_latency",
    /// "p99_us"]`.
    Keys(Vec<String>),
    /// Keys in a figure set, a missing key counting 0 (reason codes: the
    /// map lists only the codes given).
    KeysOrZero(Vec<String>),
    /// The run's verdict.
    Verdict,
    /// `unobserved_s`, as µs.
    UnobservedTime,
    /// The run's `unobserved`.
    Unobserved,
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// The name, report.json's path below the population with statistics
    /// as SLOs write them (`p99`, not `p99_us`): what `--threshold` takes.
    pub name: String,
    pub kind: Kind,
    pub better: Better,
    source: Source,
}

/// One value of a figure in one run; `None` where it was not measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Verdict(Verdict),
    Count(u64),
    Rate(f64),
    Micros(u64),
}

impl Value {
    /// The value as a number, for the thresholds (`None`: the verdict).
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Verdict(_) => None,
            Value::Count(n) | Value::Micros(n) => Some(n as f64),
            Value::Rate(x) => Some(x),
        }
    }
}

/// The statistics of a duration figure: report.json's key, the name
/// `compare` (and an SLO) gives it, its kind and which way is better.
pub const DURATION_STATS: &[(&str, &str, Kind, Better)] = &[
    ("count", "count", Kind::Count, Better::Neither),
    ("min_us", "min", Kind::Micros, Better::Lower),
    ("p50_us", "p50", Kind::Micros, Better::Lower),
    ("p90_us", "p90", Kind::Micros, Better::Lower),
    ("p99_us", "p99", Kind::Micros, Better::Lower),
    ("p999_us", "p999", Kind::Micros, Better::Lower),
    ("max_us", "max", Kind::Micros, Better::Lower),
    // Episodes that never ended (never reconnected, never noticed).
    ("censored", "censored", Kind::Count, Better::Lower),
];

/// Figures of a figure set that are not in [`names`]: report.json's own
/// additions.
const EXTRA: &[(&str, FigureKind)] = &[("offline_unobserved", FigureKind::Count)];

/// `false_offline_rate_interval`'s ends; its `confidence` is the level
/// (0.95), not a measurement.
const INTERVAL: &str = "false_offline_rate_interval";
const INTERVAL_ENDS: &[&str] = &["low", "high"];

/// Leaves of a figure set that are not figures, with the reason.
pub const NOT_FIGURES: &[(&str, &str)] = &[(
    "false_offline_rate_interval.confidence",
    "the interval's confidence level (0.95), not a measurement",
)];

/// The map of MQTT 5 reason codes; one count per code.
const REASON_CODES: &str = "reason_codes";

/// Figures where more is better, by their name without `commands.`.
const HIGHER_IS_BETTER: &[&str] = &["sent", "acked", "delivered", "session_present"];
/// Figures neither way is worse, by their name without `commands.`.
const NEITHER_IS_BETTER: &[&str] = &["true_offline"];

fn better(name: &str) -> Better {
    if HIGHER_IS_BETTER.contains(&name) {
        Better::Higher
    } else if NEITHER_IS_BETTER.contains(&name) {
        Better::Neither
    } else {
        Better::Lower
    }
}

/// The run's own figures (the `run` table): its verdict, the time its
/// observer could not see and the acked telemetry lost in it.
pub fn run_figures() -> Vec<Figure> {
    vec![
        Figure {
            name: "verdict".into(),
            kind: Kind::Verdict,
            better: Better::Higher,
            source: Source::Verdict,
        },
        Figure {
            name: "unobserved_s".into(),
            kind: Kind::Micros,
            better: Better::Lower,
            source: Source::UnobservedTime,
        },
        Figure {
            name: "unobserved".into(),
            kind: Kind::Count,
            better: Better::Lower,
            source: Source::Unobserved,
        },
    ]
}

fn push(out: &mut Vec<Figure>, prefix: Option<&str>, name: &str, kind: FigureKind) {
    let keys = |last: &[&str]| -> Vec<String> {
        prefix
            .into_iter()
            .chain(std::iter::once(name))
            .chain(last.iter().copied())
            .map(str::to_string)
            .collect()
    };
    let full = |last: &[&str]| keys(last).join(".");
    match kind {
        FigureKind::Count | FigureKind::Rate => out.push(Figure {
            name: full(&[]),
            kind: if kind == FigureKind::Count {
                Kind::Count
            } else {
                Kind::Rate
            },
            better: better(name),
            source: Source::Keys(keys(&[])),
        }),
        FigureKind::Duration => {
            for &(key, stat, kind, better) in DURATION_STATS {
                let mut k = keys(&[]);
                k.push(key.to_string());
                out.push(Figure {
                    name: full(&[stat]),
                    kind,
                    better,
                    source: Source::Keys(k),
                });
            }
        }
    }
}

/// The figures of a population, known before any run is read: telemetry,
/// connection and offline figures, report.json's additions, then the
/// command direction.
pub fn population_figures() -> Vec<Figure> {
    let mut out = Vec::new();
    for &(name, kind) in names::MESSAGE_FIGURES {
        push(&mut out, None, name, kind);
    }
    for &(name, kind) in names::CONNECTION_FIGURES {
        push(&mut out, None, name, kind);
    }
    for &(name, kind) in EXTRA {
        push(&mut out, None, name, kind);
    }
    for end in INTERVAL_ENDS {
        out.push(Figure {
            name: format!("{INTERVAL}.{end}"),
            kind: Kind::Rate,
            better: Better::Lower,
            source: Source::Keys(vec![INTERVAL.into(), (*end).into()]),
        });
    }
    for &(name, kind) in names::MESSAGE_FIGURES {
        push(&mut out, Some("commands"), name, kind);
    }
    out
}

/// Every figure of the populations `sets` (serialised [`Figures`]):
/// [`population_figures`], a count per reason code any of them has, and any
/// number they hold that neither names (compared as a growing-is-worse
/// figure of the kind its value shows).
///
/// [`Figures`]: crate::report::Figures
pub fn figures(sets: &[Json]) -> Vec<Figure> {
    let mut out = population_figures();
    let mut codes: Vec<String> = sets
        .iter()
        .filter_map(|s| s.get(REASON_CODES)?.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    codes.sort();
    codes.dedup();
    for code in codes {
        out.push(Figure {
            name: format!("{REASON_CODES}.{code}"),
            kind: Kind::Count,
            better: Better::Lower,
            source: Source::KeysOrZero(vec![REASON_CODES.into(), code]),
        });
    }
    for set in sets {
        for (keys, leaf) in leaves(set) {
            if !leaf.is_number() || covered(&out, &keys) {
                continue;
            }
            out.push(unlisted(keys, leaf));
        }
    }
    out
}

/// A number the list does not name, compared as what its value shows.
fn unlisted(keys: Vec<String>, leaf: &Json) -> Figure {
    let last = keys.last().map_or("", String::as_str);
    let mut name: Vec<&str> = keys.iter().map(String::as_str).collect();
    let kind = if let Some(stat) = last.strip_suffix("_us") {
        if let Some(n) = name.last_mut() {
            *n = stat;
        }
        Kind::Micros
    } else if leaf.is_u64() {
        Kind::Count
    } else {
        Kind::Rate
    };
    Figure {
        name: name.join("."),
        kind,
        better: Better::Lower,
        source: Source::Keys(keys),
    }
}

/// Whether `keys` (a leaf of a figure set) is a figure of `list`, the
/// parent of some (a `null` duration figure), or no figure at all.
pub fn covered(list: &[Figure], keys: &[String]) -> bool {
    let joined = keys.join(".");
    NOT_FIGURES.iter().any(|(n, _)| *n == joined)
        || list.iter().any(|f| match &f.source {
            Source::Keys(k) | Source::KeysOrZero(k) => k.starts_with(keys),
            _ => false,
        })
}

/// Every leaf of a JSON value (numbers, strings, `null`s, empty objects)
/// with its keys; arrays count as leaves.
pub fn leaves(v: &Json) -> Vec<(Vec<String>, &Json)> {
    fn walk<'a>(v: &'a Json, keys: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Json)>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    keys.push(k.clone());
                    walk(child, keys, out);
                    keys.pop();
                }
            }
            _ => out.push((keys.clone(), v)),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

impl Figure {
    /// The keys of the figure in a serialised figure set; `None` for the
    /// run's own figures.
    pub fn keys(&self) -> Option<&[String]> {
        match &self.source {
            Source::Keys(k) | Source::KeysOrZero(k) => Some(k),
            _ => None,
        }
    }

    /// The figure's value in one population of one run: `set` is the
    /// serialised figure set (unused by the run's own figures).
    pub fn value(&self, report: &Report, set: &Json) -> Option<Value> {
        let lookup = |keys: &[String]| keys.iter().try_fold(set, |v, k| v.get(k));
        let leaf = match &self.source {
            Source::Verdict => return Some(Value::Verdict(report.verdict)),
            Source::UnobservedTime => {
                let s = report.unobserved_s;
                return (s.is_finite() && s >= 0.0)
                    .then(|| Value::Micros((s * 1e6).round() as u64));
            }
            Source::Unobserved => return Some(Value::Count(report.unobserved)),
            Source::Keys(keys) => lookup(keys)?,
            Source::KeysOrZero(keys) => lookup(keys).unwrap_or(&Json::Null),
        };
        match (self.kind, &self.source) {
            (Kind::Count, Source::KeysOrZero(_)) => Some(Value::Count(leaf.as_u64().unwrap_or(0))),
            (Kind::Count, _) => leaf.as_u64().map(Value::Count),
            (Kind::Micros, _) => leaf.as_u64().map(Value::Micros),
            (Kind::Rate, _) => leaf.as_f64().map(Value::Rate),
            (Kind::Verdict, _) => None,
        }
    }

    /// Whether `name` (a `--threshold` figure) names this figure or a
    /// group it belongs to (`e2e_latency`, `commands`, `reason_codes`).
    pub fn named_by(&self, name: &str) -> bool {
        self.name == name
            || (self.name.starts_with(name) && self.name[name.len()..].starts_with('.'))
    }
}

/// Whether `name` names a figure or a group of figures `compare` knows
/// before reading any run (any `reason_codes.<code>` included).
pub fn known(name: &str) -> Vec<Figure> {
    let mut all = run_figures();
    all.extend(population_figures());
    let mut found: Vec<Figure> = all.into_iter().filter(|f| f.named_by(name)).collect();
    if found.is_empty() {
        if let Some(code) = name.strip_prefix("reason_codes.").filter(|c| !c.is_empty()) {
            found.push(Figure {
                name: name.to_string(),
                kind: Kind::Count,
                better: Better::Lower,
                source: Source::KeysOrZero(vec![REASON_CODES.into(), code.into()]),
            });
        } else if name == REASON_CODES {
            found.push(Figure {
                name: format!("{REASON_CODES}.*"),
                kind: Kind::Count,
                better: Better::Lower,
                source: Source::KeysOrZero(vec![REASON_CODES.into()]),
            });
        }
    }
    found
}

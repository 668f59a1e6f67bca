//! When a later run's figure regressed against the baseline's: the default
//! rules, and the thresholds `--threshold FIGURE=LIMIT` sets per figure.
//!
//! A figure is judged in the direction it gets worse ([`Better`]): growth
//! of a loss or a duration, a fall of `delivered` or `session_present`, any
//! change of a figure that is worse neither way. An improvement is never
//! flagged. Defaults, for a figure no threshold names:
//!
//! * counts and rates that are worse when higher: worse by more than 10 %,
//!   or at all from 0;
//! * duration statistics (`min` … `max`): worse by more than 20 % and by
//!   more than 20 ms (a few milliseconds come and go between two runs of
//!   the same seed on one machine: five quickstart runs differed by up to
//!   70 % in their millisecond-scale figures, never by 20 ms);
//! * `session_present`: fell by more than 10 %;
//! * `sent`, `acked`, `delivered` (they scale with the run), histogram
//!   sample counts and `true_offline` (they follow the faults): shown, not
//!   judged;
//! * the verdict: pass → fail, and a later run in error whatever the
//!   baseline (it cannot vouch for its figures). No threshold changes it.
//!
//! A limit is `N%` (worse by more than N % of the baseline; from 0, at
//! all), `+N` (worse by more than N: a count or rate; a duration takes a
//! unit, `+250ms`), `0` (worse at all) or `off` (never flagged). A
//! threshold names a figure (`e2e_latency.p99`) or a group of them
//! (`e2e_latency`, `commands`, `commands.e2e_latency`, `reason_codes`), in
//! every population or, after a profile's name, in that profile's only
//! (`weak.lost_qos0`); a profile's threshold wins over one of every
//! population, then the most specific, then of two naming the same, the
//! last.

use std::fmt;
use std::str::FromStr;

use super::figure::{self, Better, Figure, Kind, Value};
use crate::report::Verdict;

/// Default growth of a count or rate beyond which it regressed (%).
pub const COUNT_PERCENT: f64 = 10.0;
/// Default growth of a duration statistic beyond which it regressed (%).
pub const DURATION_PERCENT: f64 = 20.0;
/// ... and the growth it must exceed too (µs): the noise between runs.
pub const DURATION_FLOOR_US: u64 = 20_000;

/// An amount a figure may get worse by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Of a count or a rate.
    Number(f64),
    /// Of a duration statistic.
    Micros(u64),
}

/// How much worse a figure may get before it regressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Never flagged.
    Off,
    /// Worse by more than this percentage of the baseline (0: worse at
    /// all; from a baseline of 0, worse at all).
    Percent(f64),
    /// Worse by more than this amount.
    Absolute(Amount),
    /// Worse by more than the percentage and by more than the µs (the
    /// default of durations).
    PercentOver(f64, u64),
    /// The verdict's rule: pass → fail, or a later run in error.
    Verdict,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Off => f.write_str("off"),
            Limit::Percent(p) if *p == 0.0 => f.write_str("0"),
            Limit::Percent(p) => write!(f, "{p}%"),
            Limit::Absolute(Amount::Number(n)) => write!(f, "+{n}"),
            Limit::Absolute(Amount::Micros(us)) => write!(
                f,
                "+{}",
                humantime::format_duration(std::time::Duration::from_micros(*us))
            ),
            Limit::PercentOver(p, us) => {
                write!(f, "{p}% and {}", Limit::Absolute(Amount::Micros(*us)))
            }
            Limit::Verdict => f.write_str("pass → fail, error"),
        }
    }
}

/// `--threshold FIGURE=LIMIT`, parsed and checked against the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Only this profile's figures (`weak.lost_qos0`, as an SLO names
    /// them); `None`: every population's.
    pub profile: Option<String>,
    /// A figure or a group of figures (`e2e_latency`, `commands`).
    pub figure: String,
    pub limit: Limit,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.profile {
            write!(f, "{p}.")?;
        }
        write!(f, "{}={}", self.figure, self.limit)
    }
}

impl FromStr for Threshold {
    type Err = String;

    /// `lost_qos0=0`, `e2e_latency.p99=50%`, `duplicates=+100`,
    /// `reconnect_after_heal.max=+2s`, `flaps=off`, `weak.lost_qos0=off`
    /// (one profile: a name that is not a figure, then a figure). The
    /// error names the bad part (the flag is named by the caller).
    fn from_str(s: &str) -> Result<Threshold, String> {
        let Some((name, limit)) = s.split_once('=') else {
            return Err(format!(
                "`{s}` is not FIGURE=LIMIT (e.g. lost_qos0=0, e2e_latency.p99=50%, duplicates=+100)"
            ));
        };
        let (name, text) = (name.trim(), limit.trim());
        if name == "verdict" {
            return Err(
                "`verdict` takes no threshold: a later run regresses when its verdict went from pass to fail or is error".into(),
            );
        }
        let mut figures = figure::known(name);
        let mut profile = None;
        if figures.is_empty() {
            if let Some((p, rest)) = name.split_once('.') {
                let of_profile = figure::known(rest);
                if !of_profile.is_empty() && of_profile.iter().all(|f| f.kind != Kind::Verdict) {
                    figures = of_profile;
                    profile = Some(p.to_string());
                }
            }
        }
        if figures.is_empty() {
            return Err(format!(
                "unknown figure `{name}`: give a report.json figure (lost_qos0, commands.duplicates), \
                 a duration statistic (e2e_latency.p99; count min p50 p90 p99 p999 max censored), \
                 a group (e2e_latency, commands, reason_codes), each optionally after a profile \
                 (weak.lost_qos0)"
            ));
        }
        let figure_name = match &profile {
            Some(p) => &name[p.len() + 1..],
            None => name,
        };
        let durations = figures.iter().filter(|f| f.kind == Kind::Micros).count();
        let limit = parse_limit(text).map_err(|why| format!("`{name}={text}`: {why}"))?;
        match limit {
            Limit::Absolute(Amount::Number(n)) if durations > 0 => Err(format!(
                "`{name}={text}`: `{name}` is a duration: give the growth with a unit, e.g. +{n}ms"
            )),
            Limit::Absolute(Amount::Micros(_)) if durations == 0 => Err(format!(
                "`{name}={text}`: `{name}` is {}: give the growth as a number, e.g. +5",
                if figures.iter().all(|f| f.kind == Kind::Rate) {
                    "a rate"
                } else {
                    "a count"
                }
            )),
            _ => Ok(Threshold {
                profile,
                figure: figure_name.to_string(),
                limit,
            }),
        }
    }
}

fn parse_limit(text: &str) -> Result<Limit, String> {
    const FORMS: &str =
        "write N% (relative growth), +N (absolute: +5, +0.01, +250ms), 0 (any growth) or off";
    let number = |s: &str| -> Result<f64, String> {
        match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            Ok(_) => Err(format!("`{s}` must be a number of 0 or more")),
            Err(_) => Err(format!("`{s}` is not a number; {FORMS}")),
        }
    };
    if text.eq_ignore_ascii_case("off") {
        return Ok(Limit::Off);
    }
    if let Some(p) = text.strip_suffix('%') {
        if let Some(p) = p.strip_prefix('+') {
            return Err(format!(
                "`{text}` is ambiguous: write {p}% for a relative growth, or an absolute one as a number (+0.01 for a rate)"
            ));
        }
        return number(p).map(Limit::Percent);
    }
    if let Some(amount) = text.strip_prefix('+') {
        if amount
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && amount.trim().parse::<f64>().is_err()
        {
            let d = crate::scenario::duration::parse(amount)?;
            let us = u64::try_from(d.as_micros()).map_err(|_| format!("`{text}` is too long"))?;
            return Ok(Limit::Absolute(Amount::Micros(us)));
        }
        return number(amount).map(|n| Limit::Absolute(Amount::Number(n)));
    }
    match number(text) {
        Ok(0.0) => Ok(Limit::Percent(0.0)),
        Ok(x) => Err(format!(
            "`{text}` alone is ambiguous: write {x}% for a relative growth or +{x} for an absolute one"
        )),
        Err(e) => Err(e),
    }
}

/// Where a figure's limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The default rule of its kind.
    Default,
    /// A `--threshold`.
    Flag,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Flag => "flag",
        }
    }
}

/// The thresholds given, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds(pub Vec<Threshold>);

impl Thresholds {
    /// The limit of `f` in the population of `profile` (`None`: the run's
    /// own or the totals) and where it came from; `None`: shown, not judged.
    /// A threshold of the profile wins over one of every population.
    pub fn limit(&self, f: &Figure, profile: Option<&str>) -> Option<(Limit, Origin)> {
        if f.kind == Kind::Verdict {
            return Some((Limit::Verdict, Origin::Default));
        }
        let fits = |t: &&Threshold| match t.limit {
            Limit::Absolute(Amount::Micros(_)) => f.kind == Kind::Micros,
            Limit::Absolute(Amount::Number(_)) => f.kind != Kind::Micros,
            _ => true,
        };
        let chosen = self
            .0
            .iter()
            .filter(|t| f.named_by(&t.figure))
            .filter(|t| t.profile.is_none() || t.profile.as_deref() == profile)
            .filter(fits)
            .enumerate()
            .max_by_key(|(i, t)| (t.profile.is_some(), t.figure.len(), *i))
            .map(|(_, t)| t);
        match chosen {
            Some(t) => Some((t.limit, Origin::Flag)),
            None => default_limit(f).map(|l| (l, Origin::Default)),
        }
    }
}

/// The rule of a figure no threshold names.
pub fn default_limit(f: &Figure) -> Option<Limit> {
    match (f.kind, f.better) {
        (Kind::Verdict, _) => Some(Limit::Verdict),
        (_, Better::Neither) => None,
        // sent, acked, delivered: fewer may only mean a shorter run.
        (Kind::Count, Better::Higher) => None,
        (Kind::Count | Kind::Rate, _) => Some(Limit::Percent(COUNT_PERCENT)),
        (Kind::Micros, _) => Some(Limit::PercentOver(DURATION_PERCENT, DURATION_FLOOR_US)),
    }
}

/// Why a value regressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// The verdict went from pass to fail.
    VerdictFailed,
    /// The later run's verdict is error: it cannot vouch for its figures.
    VerdictError,
    /// Worse at all, from a baseline of 0.
    FromZero,
    /// Worse by more than the percentage.
    Percent(f64),
    /// Worse by more than the amount.
    Absolute(Amount),
    /// Worse by more than the percentage and the µs.
    PercentOver(f64, u64),
}

impl Rule {
    /// The rule's name in `compare --format json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::VerdictFailed => "verdict_failed",
            Rule::VerdictError => "verdict_error",
            Rule::FromZero => "from_zero",
            Rule::Percent(_) | Rule::PercentOver(..) => "percent",
            Rule::Absolute(_) => "absolute",
        }
    }

    /// What happened, in words: `grew by more than 10 %`.
    pub fn describe(self, better: Better) -> String {
        let verb = match better {
            Better::Lower => "grew",
            Better::Higher => "fell",
            Better::Neither => "changed",
        };
        match self {
            Rule::VerdictFailed => "pass → fail".into(),
            Rule::VerdictError => "error: the run cannot vouch for its figures".into(),
            Rule::FromZero => format!("{verb} from 0"),
            Rule::Percent(0.0) => format!("{verb} (threshold 0)"),
            Rule::Percent(p) => format!("{verb} by more than {p} %"),
            Rule::Absolute(a) => format!(
                "{verb} by more than {}",
                Limit::Absolute(a).to_string().trim_start_matches('+')
            ),
            Rule::PercentOver(p, us) => format!(
                "{verb} by more than {p} % and {}",
                Limit::Absolute(Amount::Micros(us))
                    .to_string()
                    .trim_start_matches('+')
            ),
        }
    }
}

/// Whether `later` regressed against `baseline` for `f` under `limit`.
pub fn judge(f: &Figure, limit: Limit, baseline: Value, later: Value) -> Option<Rule> {
    if let (Limit::Verdict, Value::Verdict(b), Value::Verdict(l)) = (limit, baseline, later) {
        return match (b, l) {
            (_, Verdict::Error) => Some(Rule::VerdictError),
            (Verdict::Pass, Verdict::Fail) => Some(Rule::VerdictFailed),
            _ => None,
        };
    }
    let (b, l) = (baseline.number()?, later.number()?);
    let worse = match f.better {
        Better::Lower => l - b,
        Better::Higher => b - l,
        Better::Neither => (l - b).abs(),
    };
    if worse.is_nan() || worse <= 0.0 {
        return None;
    }
    match limit {
        Limit::Off | Limit::Verdict => None,
        Limit::PercentOver(_, floor) if worse <= floor as f64 => None,
        Limit::Percent(_) | Limit::PercentOver(..) if b == 0.0 => Some(Rule::FromZero),
        Limit::PercentOver(p, floor) => {
            (worse * 100.0 > b.abs() * p).then_some(Rule::PercentOver(p, floor))
        }
        // Exact for integers up to 2^53: worse / b > p / 100.
        Limit::Percent(p) => (worse * 100.0 > b.abs() * p).then_some(Rule::Percent(p)),
        Limit::Absolute(a @ Amount::Number(n)) => (worse > n).then_some(Rule::Absolute(a)),
        Limit::Absolute(a @ Amount::Micros(n)) => (worse > n as f64).then_some(Rule::Absolute(a)),
    }
}

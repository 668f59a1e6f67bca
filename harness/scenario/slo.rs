//! Service-level objectives of a scenario's `[slo]` table, parsed.
//!
//! A key is a figure of METRICS.md, optionally prefixed by a profile and,
//! for duration figures, suffixed by a statistic:
//! `lost_after_ack`, `recommended.false_offline_rate`,
//! `"recommended.reconnect_after_heal.p99"`; a message figure of the command
//! direction is `commands.<figure>` (`"recommended.commands.duplicates"`). A limit is an operator and a
//! number, or a human duration for duration figures: `"= 0"`, `"<= 15s"`,
//! `"< 0.01"`, `"< 1%"` (rates). Durations are kept in microseconds, the unit
//! of the report's histograms.

use std::fmt;

use serde::Serialize;

use super::{duration, Scenario};

/// What a figure counts, which decides the limits it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// A number of messages, episodes or events.
    Count,
    /// A share in [0, 1].
    Rate,
    /// A histogram of durations (µs); takes a statistic.
    Duration,
}

/// The counts of METRICS.md.
pub const COUNTS: &[&str] = &[
    "delivered",
    "lost_after_ack",
    "undeliverable",
    "lost_unacked",
    "silent_loss",
    "lost_qos0",
    "duplicates",
    "reordered",
    "downgraded",
    "true_offline",
    "false_offline",
    "missed_offline",
    "flaps",
    "takeovers",
    "false_offline_per_device_day",
    "reconnect_attempts",
    "zombie_undetected",
    "sent",
    "acked",
];

/// The rates of METRICS.md.
pub const RATES: &[&str] = &[
    "false_offline_rate",
    "devices_false_offline",
    "session_present",
];

/// The duration figures of METRICS.md.
pub const DURATIONS: &[&str] = &[
    "e2e_latency",
    "ack_latency",
    "zombie_time",
    "broker_detect_time",
    "reconnect_after_heal",
    "outage_seen_by_client",
    "resume_time",
    "first_attempt_delay",
    "stale_offline_time",
    "false_online_time",
];

/// Statistics of a duration figure.
pub const STATS: &[&str] = &["p50", "p90", "p99", "p999", "max", "min", "count"];

/// The message figures, which commands have too: `commands.<name>`.
pub const COMMAND_FIGURES: &[&str] = &[
    "sent",
    "acked",
    "delivered",
    "lost_after_ack",
    "undeliverable",
    "lost_unacked",
    "silent_loss",
    "lost_qos0",
    "duplicates",
    "reordered",
    "downgraded",
    "e2e_latency",
    "ack_latency",
];

/// The kind of a figure, or `None` for a name METRICS.md does not define.
/// `commands.<name>` is a message figure of the command direction.
pub fn figure_kind(figure: &str) -> Option<FigureKind> {
    if let Some(name) = figure.strip_prefix("commands.") {
        return COMMAND_FIGURES
            .contains(&name)
            .then(|| figure_kind(name))
            .flatten();
    }
    if COUNTS.contains(&figure) {
        Some(FigureKind::Count)
    } else if RATES.contains(&figure) {
        Some(FigureKind::Rate)
    } else if DURATIONS.contains(&figure) {
        Some(FigureKind::Duration)
    } else {
        None
    }
}

/// How an observed value is compared with the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SloOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
}

impl SloOp {
    pub fn symbol(self) -> &'static str {
        match self {
            SloOp::Eq => "=",
            SloOp::Le => "<=",
            SloOp::Lt => "<",
            SloOp::Ge => ">=",
            SloOp::Gt => ">",
        }
    }

    /// Whether `observed op limit` holds.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            SloOp::Eq => observed == limit,
            SloOp::Le => observed <= limit,
            SloOp::Lt => observed < limit,
            SloOp::Ge => observed >= limit,
            SloOp::Gt => observed > limit,
        }
    }
}

impl fmt::Display for SloOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// One objective.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// `None`: the run's totals.
    pub profile: Option<String>,
    pub figure: String,
    /// For duration figures: `p50`, `p90`, `p99`, `p999`, `max`, `min`, `count`.
    pub stat: Option<String>,
    pub op: SloOp,
    /// The limit; durations in µs.
    pub limit: f64,
    /// The limit as written (`"<= 15s"`), for the report.
    pub text: String,
    /// Its profile is a known-bad baseline expected to breach it
    /// ([`super::Expect`]).
    pub expect_breach: bool,
}

impl Slo {
    pub fn kind(&self) -> FigureKind {
        figure_kind(&self.figure).unwrap_or(FigureKind::Count)
    }

    /// Whether the observed value (durations in µs) meets the objective.
    pub fn check(&self, observed: f64) -> bool {
        self.op.holds(observed, self.limit)
    }
}

/// Which half of an `[slo]` entry is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SloError {
    Key(String),
    Limit(String),
}

/// Parse one `[slo]` entry. `profiles` are the scenario's profile names, to
/// tell `recommended.flaps` (a profile's figure) from a misspelt figure.
pub fn parse(key: &str, limit: &str, profiles: &[&str]) -> Result<Slo, SloError> {
    let (profile, figure, stat) = parse_key(key, profiles).map_err(SloError::Key)?;
    let kind = figure_kind(&figure).expect("parse_key returns known figures");
    let (op, limit_value) =
        parse_limit(limit, kind, stat).map_err(|m| SloError::Limit(format!("{key}: {m}")))?;
    Ok(Slo {
        profile: profile.map(str::to_string),
        figure,
        stat: stat.map(str::to_string),
        op,
        limit: limit_value,
        text: limit.trim().to_string(),
        expect_breach: false,
    })
}

/// The objectives of a *validated* scenario, in key order.
pub fn slos(s: &Scenario) -> Vec<Slo> {
    let profiles: Vec<&str> = s.profiles.keys().map(String::as_str).collect();
    s.slo
        .iter()
        .filter_map(|(k, v)| parse(k, v, &profiles).ok())
        .map(|mut o| {
            o.expect_breach = o
                .profile
                .as_ref()
                .and_then(|p| s.profiles.get(p))
                .is_some_and(|p| p.expect.breaches(&o.figure, o.stat.as_deref()));
            o
        })
        .collect()
}

type Key<'k> = (Option<&'k str>, String, Option<&'k str>);

fn parse_key<'k>(key: &'k str, profiles: &[&str]) -> Result<Key<'k>, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let unprefixed = figure_and_stat(&parts);
    if let Ok((figure, stat)) = unprefixed {
        return Ok((None, figure, stat));
    }
    if parts.len() >= 2 && profiles.contains(&parts[0]) {
        let (figure, stat) = figure_and_stat(&parts[1..])?;
        return Ok((Some(parts[0]), figure, stat));
    }
    if parts.len() >= 2 && (parts[1] == "commands" || figure_kind(parts[1]).is_some()) {
        return Err(format!(
            "no profile named \"{}\" (profiles: {})",
            parts[0],
            profiles.join(", ")
        ));
    }
    unprefixed.map(|(f, s)| (None, f, s))
}

fn figure_and_stat<'k>(parts: &[&'k str]) -> Result<(String, Option<&'k str>), String> {
    let (figure, rest) = match parts {
        ["commands", name, rest @ ..] => (format!("commands.{name}"), rest),
        [name, rest @ ..] => (name.to_string(), rest),
        [] => return Err("empty key".into()),
    };
    let Some(kind) = figure_kind(&figure) else {
        return Err(format!(
            "unknown figure \"{figure}\"; figures are those of METRICS.md: {}, {}, {}; \
             commands.<figure> for the command direction of {}",
            COUNTS.join(", "),
            RATES.join(", "),
            DURATIONS.join(", "),
            COMMAND_FIGURES.join(", ")
        ));
    };
    match rest {
        [] => Ok((figure, None)),
        [stat] if kind == FigureKind::Duration && STATS.contains(stat) => {
            Ok((figure, Some(stat)))
        }
        [stat] if kind == FigureKind::Duration => Err(format!(
            "unknown statistic \"{stat}\" of {figure}; one of {}",
            STATS.join(", ")
        )),
        [_] => Err(format!(
            "{figure} is a {} and takes no statistic",
            if kind == FigureKind::Rate {
                "rate"
            } else {
                "count"
            }
        )),
        _ => Err(format!(
            "too many parts: write FIGURE, PROFILE.FIGURE or PROFILE.FIGURE.STAT (e.g. {figure}.p99)"
        )),
    }
}

fn parse_limit(limit: &str, kind: FigureKind, stat: Option<&str>) -> Result<(SloOp, f64), String> {
    let text = limit.trim();
    let (op, rest) = [
        ("<=", SloOp::Le),
        (">=", SloOp::Ge),
        ("<", SloOp::Lt),
        (">", SloOp::Gt),
        ("=", SloOp::Eq),
    ]
    .into_iter()
    .find_map(|(sym, op)| text.strip_prefix(sym).map(|r| (op, r.trim())))
    .ok_or_else(|| {
        format!("limit \"{limit}\" must start with one of =, <=, <, >=, > (e.g. \"<= 15s\")")
    })?;
    if rest.starts_with('=') {
        return Err(format!("limit \"{limit}\": write \"=\", not \"==\""));
    }
    if rest.is_empty() {
        return Err(format!("limit \"{limit}\" has no value after {op}"));
    }
    let number = rest.parse::<f64>().ok().filter(|n| n.is_finite());
    let value = match (kind, stat) {
        (FigureKind::Duration, Some("count")) | (FigureKind::Count, _) => match number {
            Some(n) if n >= 0.0 => n,
            _ => return Err(format!("limit \"{limit}\": expected a number ≥ 0")),
        },
        (FigureKind::Rate, _) => {
            let n = match rest.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().ok().map(|n| n / 100.0),
                None => number,
            };
            match n {
                Some(n) if (0.0..=1.0).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "limit \"{limit}\": a rate is a number in [0, 1] or a percentage (\"< 1%\")"
                    ))
                }
            }
        }
        (FigureKind::Duration, _) => match number {
            Some(0.0) => 0.0,
            Some(_) => {
                return Err(format!(
                    "limit \"{limit}\": a duration needs its unit (e.g. \"{op} {rest}s\" or \"{op} {rest}ms\")"
                ))
            }
            None => duration::parse(rest)
                .map(|d| d.as_secs_f64() * 1e6)
                .map_err(|e| format!("limit \"{limit}\": {e}"))?,
        },
    };
    Ok((op, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILES: &[&str] = &["recommended", "naive"];

    fn ok(key: &str, limit: &str) -> Slo {
        parse(key, limit, PROFILES).unwrap_or_else(|e| panic!("{key} = {limit}: {e:?}"))
    }

    fn key_err(key: &str, limit: &str) -> String {
        match parse(key, limit, PROFILES) {
            Err(SloError::Key(m)) => m,
            other => panic!("{key} = {limit}: expected a key error, got {other:?}"),
        }
    }

    fn limit_err(key: &str, limit: &str) -> String {
        match parse(key, limit, PROFILES) {
            Err(SloError::Limit(m)) => m,
            other => panic!("{key} = {limit}: expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_count_parses_with_every_operator() {
        for (text, op) in [
            ("= 0", SloOp::Eq),
            ("<= 3", SloOp::Le),
            ("< 3", SloOp::Lt),
            (">= 3", SloOp::Ge),
            (">3", SloOp::Gt),
        ] {
            let s = ok("lost_after_ack", text);
            assert_eq!(s.op, op);
            assert_eq!(s.profile, None);
            assert_eq!(s.stat, None);
            assert_eq!(s.text, text);
        }
        assert_eq!(ok("duplicates", "<= 12").limit, 12.0);
    }

    #[test]
    fn a_profile_prefix_and_a_statistic_are_split_off() {
        let s = ok("recommended.reconnect_after_heal.p99", "<= 15s");
        assert_eq!(s.profile.as_deref(), Some("recommended"));
        assert_eq!(s.figure, "reconnect_after_heal");
        assert_eq!(s.stat.as_deref(), Some("p99"));
        assert_eq!(s.limit, 15_000_000.0);
        assert_eq!(s.kind(), FigureKind::Duration);
        let s = ok("naive.flaps", "= 0");
        assert_eq!(s.profile.as_deref(), Some("naive"));
        assert_eq!(s.figure, "flaps");
    }

    #[test]
    fn duration_limits_are_microseconds_and_need_a_unit() {
        assert_eq!(ok("zombie_time.max", "< 500ms").limit, 500_000.0);
        assert_eq!(ok("zombie_time", "= 0").limit, 0.0);
        assert!(limit_err("zombie_time.p99", "<= 15").contains("needs its unit"));
        assert_eq!(ok("zombie_time.count", "<= 4").limit, 4.0);
        assert!(limit_err("zombie_time.count", "<= 4s").contains("number"));
    }

    #[test]
    fn rates_take_fractions_or_percentages_up_to_one() {
        assert_eq!(ok("false_offline_rate", "< 0.01").limit, 0.01);
        assert_eq!(ok("false_offline_rate", "< 1%").limit, 0.01);
        assert!(limit_err("session_present", ">= 1.5").contains("[0, 1]"));
    }

    #[test]
    fn unknown_figures_statistics_and_profiles_are_refused() {
        assert!(key_err("lost", "= 0").contains("unknown figure \"lost\""));
        assert!(key_err("e2e_latency.p95", "< 1s").contains("unknown statistic \"p95\""));
        assert!(key_err("lost_after_ack.p99", "= 0").contains("takes no statistic"));
        assert!(key_err("strict.flaps", "= 0").contains("no profile named \"strict\""));
        assert!(key_err("recommended.e2e_latency.p99.x", "< 1s").contains("too many parts"));
    }

    #[test]
    fn malformed_limits_are_refused() {
        assert!(limit_err("flaps", "0").contains("must start with"));
        assert!(limit_err("flaps", "== 0").contains("not \"==\""));
        assert!(limit_err("flaps", "<=").contains("no value"));
        assert!(limit_err("flaps", "<= -1").contains("≥ 0"));
        assert!(limit_err("e2e_latency.p99", "<= 5 parsecs").contains("invalid duration"));
    }

    #[test]
    fn command_figures_take_the_commands_prefix_after_the_profile() {
        let s = ok("recommended.commands.lost_after_ack", "<= 10");
        assert_eq!(s.profile.as_deref(), Some("recommended"));
        assert_eq!(s.figure, "commands.lost_after_ack");
        assert_eq!(s.kind(), FigureKind::Count);
        let s = ok("commands.e2e_latency.p99", "<= 2s");
        assert_eq!(
            (s.profile, s.figure.as_str()),
            (None, "commands.e2e_latency")
        );
        assert_eq!(s.stat.as_deref(), Some("p99"));
        assert_eq!(s.limit, 2e6);
        // Only message figures have a command direction.
        assert!(
            key_err("naive.commands.flaps", "= 0").contains("unknown figure \"commands.flaps\"")
        );
        assert!(key_err("commands", "= 0").contains("unknown figure \"commands\""));
        assert!(
            key_err("strict.commands.duplicates", "= 0").contains("no profile named \"strict\"")
        );
    }

    #[test]
    fn check_compares_observed_with_the_limit() {
        let s = ok("recommended.reconnect_after_heal.p99", "<= 15s");
        assert!(s.check(15_000_000.0));
        assert!(!s.check(15_000_001.0));
        assert!(ok("lost_after_ack", "= 0").check(0.0));
        assert!(!ok("lost_after_ack", "= 0").check(1.0));
        assert!(!ok("delivered", "> 10").check(10.0));
    }
}

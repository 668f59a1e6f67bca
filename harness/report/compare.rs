//! `mqtt-chaos compare`: several runs side by side, and the regressions of
//! each later run against the first (the baseline).
//!
//! Rows are key figures, columns are runs, one table for the totals and one
//! per profile present in every run. A later run regresses against the
//! baseline when, for the same population:
//!
//! * the verdict went from pass to fail;
//! * a loss, duplicate or offline count grew from 0, or by more than 10 %;
//! * a duration statistic (p99 or max) grew by more than 20 %.
//!
//! `delivered` is shown but never flagged: more is better, and fewer may
//! only mean a shorter run. A figure not measured (`null`, no samples) in
//! either run is shown as `–` and not compared. Pure: reads only reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{DurationFigure, Figures, Report, ReportError, Verdict};

/// Growth of a count, in tenths, beyond which it regressed (> 10 %).
const COUNT_GROWTH_TENTHS: u64 = 11;
/// Growth of a duration statistic, in tenths, beyond which it regressed (> 20 %).
const DURATION_GROWTH_TENTHS: u64 = 12;

/// One row of a comparison table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Verdict,
    Delivered,
    LostAfterAck,
    LostUnacked,
    SilentLoss,
    Duplicates,
    E2eP99,
    ReconnectAfterHealP99,
    ZombieTimeMax,
    FalseOffline,
    MissedOffline,
    StaleOfflineTimeMax,
}

/// Every row, in table order.
pub const ROWS: &[Row] = &[
    Row::Verdict,
    Row::Delivered,
    Row::LostAfterAck,
    Row::LostUnacked,
    Row::SilentLoss,
    Row::Duplicates,
    Row::E2eP99,
    Row::ReconnectAfterHealP99,
    Row::ZombieTimeMax,
    Row::FalseOffline,
    Row::MissedOffline,
    Row::StaleOfflineTimeMax,
];

impl Row {
    /// The row's label: the METRICS.md name, with its statistic.
    pub fn label(self) -> &'static str {
        match self {
            Row::Verdict => "verdict",
            Row::Delivered => "delivered",
            Row::LostAfterAck => "lost_after_ack",
            Row::LostUnacked => "lost_unacked",
            Row::SilentLoss => "silent_loss",
            Row::Duplicates => "duplicates",
            Row::E2eP99 => "e2e_latency p99",
            Row::ReconnectAfterHealP99 => "reconnect_after_heal p99",
            Row::ZombieTimeMax => "zombie_time max",
            Row::FalseOffline => "false_offline",
            Row::MissedOffline => "missed_offline",
            Row::StaleOfflineTimeMax => "stale_offline_time max",
        }
    }

    /// The row's value for one population of one run. The verdict belongs
    /// to the whole run.
    fn value(self, r: &Report, f: &Figures) -> Value {
        let t = &f.telemetry;
        let dur = |d: Option<&DurationFigure>, pick: fn(&DurationFigure) -> Option<u64>| {
            Value::Micros(d.and_then(pick))
        };
        match self {
            Row::Verdict => Value::Verdict(r.verdict),
            Row::Delivered => Value::Count(Some(t.delivered)),
            Row::LostAfterAck => Value::Count(Some(t.lost_after_ack)),
            Row::LostUnacked => Value::Count(Some(t.lost_unacked)),
            Row::SilentLoss => Value::Count(Some(t.silent_loss)),
            Row::Duplicates => Value::Count(Some(t.duplicates)),
            Row::E2eP99 => dur(Some(&t.e2e_latency), |d| d.p99_us),
            Row::ReconnectAfterHealP99 => dur(f.reconnect_after_heal.as_ref(), |d| d.p99_us),
            Row::ZombieTimeMax => dur(f.zombie_time.as_ref(), |d| d.max_us),
            Row::FalseOffline => Value::Count(f.false_offline),
            Row::MissedOffline => Value::Count(f.missed_offline),
            Row::StaleOfflineTimeMax => dur(f.stale_offline_time.as_ref(), |d| d.max_us),
        }
    }
}

/// One cell: `None` where the figure was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Verdict(Verdict),
    Count(Option<u64>),
    Micros(Option<u64>),
}

impl Value {
    fn show(self) -> String {
        match self {
            Value::Verdict(v) => v.as_str().to_string(),
            Value::Count(c) => c.map_or("–".into(), |n| n.to_string()),
            Value::Micros(us) => us.map_or("–".into(), super::markdown::micros),
        }
    }
}

/// Why a value regressed against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The verdict went from pass to fail.
    VerdictFailed,
    /// A count that was 0 is not.
    CountFromZero,
    /// A count grew by more than 10 %.
    CountGrew,
    /// A duration p99 or max grew by more than 20 %.
    DurationGrew,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::VerdictFailed => "pass → fail",
            Rule::CountFromZero => "grew from 0",
            Rule::CountGrew => "grew by more than 10 %",
            Rule::DurationGrew => "grew by more than 20 %",
        }
    }
}

/// Whether `later` regressed against `baseline` for `row`.
pub fn regression(row: Row, baseline: Value, later: Value) -> Option<Rule> {
    match (baseline, later) {
        (Value::Verdict(Verdict::Pass), Value::Verdict(Verdict::Fail)) => Some(Rule::VerdictFailed),
        (Value::Count(Some(_)), Value::Count(Some(_))) if row == Row::Delivered => None,
        (Value::Count(Some(0)), Value::Count(Some(v))) if v > 0 => Some(Rule::CountFromZero),
        (Value::Count(Some(b)), Value::Count(Some(v)))
            if u128::from(v) * 10 > u128::from(b) * u128::from(COUNT_GROWTH_TENTHS) =>
        {
            Some(Rule::CountGrew)
        }
        (Value::Micros(Some(b)), Value::Micros(Some(v)))
            if u128::from(v) * 10 > u128::from(b) * u128::from(DURATION_GROWTH_TENTHS) =>
        {
            Some(Rule::DurationGrew)
        }
        _ => None,
    }
}

/// One population's table: a row per [`ROWS`], a value per run.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `None`: the totals; otherwise the profile.
    pub profile: Option<String>,
    pub rows: Vec<(Row, Vec<Value>)>,
}

/// A regression of one later run against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// Index of the run among those compared (≥ 1; 0 is the baseline).
    pub run: usize,
    /// `None`: the totals; otherwise the profile.
    pub profile: Option<String>,
    pub row: Row,
    pub baseline: Value,
    pub value: Value,
    pub rule: Rule,
}

/// The runs side by side and the regressions found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The runs' labels (their paths), the baseline first.
    pub runs: Vec<String>,
    /// The totals first, then every profile present in all runs.
    pub tables: Vec<Table>,
    /// Profiles left out because some run lacks them.
    pub not_in_all: Vec<String>,
    pub regressions: Vec<Regression>,
}

/// Compare runs (label, report), the first being the baseline.
pub fn compare(runs: &[(String, Report)]) -> Comparison {
    let mut profiles: Vec<String> = Vec::new();
    let mut not_in_all: Vec<String> = Vec::new();
    for (_, r) in runs {
        for name in r.profiles.keys() {
            if profiles.contains(name) || not_in_all.contains(name) {
                continue;
            }
            if runs.iter().all(|(_, o)| o.profiles.contains_key(name)) {
                profiles.push(name.clone());
            } else {
                not_in_all.push(name.clone());
            }
        }
    }
    profiles.sort();
    not_in_all.sort();

    let mut tables = vec![table(runs, None)];
    tables.extend(profiles.into_iter().map(|p| table(runs, Some(p))));

    let mut regressions = Vec::new();
    for t in &tables {
        for (row, values) in &t.rows {
            let Some((&baseline, later)) = values.split_first() else {
                continue;
            };
            for (i, &value) in later.iter().enumerate() {
                if let Some(rule) = regression(*row, baseline, value) {
                    regressions.push(Regression {
                        run: i + 1,
                        profile: t.profile.clone(),
                        row: *row,
                        baseline,
                        value,
                        rule,
                    });
                }
            }
        }
    }
    Comparison {
        runs: runs.iter().map(|(l, _)| l.clone()).collect(),
        tables,
        not_in_all,
        regressions,
    }
}

fn table(runs: &[(String, Report)], profile: Option<String>) -> Table {
    let rows = ROWS
        .iter()
        .filter(|row| profile.is_none() || **row != Row::Verdict)
        .map(|&row| {
            let values = runs
                .iter()
                .map(|(_, r)| {
                    let f = match &profile {
                        None => &r.totals,
                        Some(p) => &r.profiles[p],
                    };
                    row.value(r, f)
                })
                .collect();
            (row, values)
        })
        .collect();
    Table { profile, rows }
}

/// The comparison as Markdown: a table per population, regressions marked
/// in their cells and listed at the end.
pub fn markdown(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# mqtt-chaos compare: {} runs, baseline `{}`\n",
        c.runs.len(),
        c.runs.first().map_or("", String::as_str)
    );
    for t in &c.tables {
        match &t.profile {
            None => {
                let _ = writeln!(o, "## total\n");
            }
            Some(p) => {
                let _ = writeln!(o, "## profile {}\n", cell(p));
            }
        }
        o.push_str("| figure |");
        for (i, run) in c.runs.iter().enumerate() {
            let _ = write!(
                o,
                " {}{} |",
                cell(run),
                if i == 0 { " (baseline)" } else { "" }
            );
        }
        o.push_str("\n| --- |");
        for _ in &c.runs {
            o.push_str(" ---: |");
        }
        o.push('\n');
        for (row, values) in &t.rows {
            let _ = write!(o, "| {} |", row.label());
            for (i, v) in values.iter().enumerate() {
                let regressed = c
                    .regressions
                    .iter()
                    .any(|g| g.run == i && g.profile == t.profile && g.row == *row);
                if regressed {
                    let _ = write!(o, " **{}** ▲ |", v.show());
                } else {
                    let _ = write!(o, " {} |", v.show());
                }
            }
            o.push('\n');
        }
        o.push('\n');
    }
    if !c.not_in_all.is_empty() {
        let _ = writeln!(
            o,
            "Not compared (not in every run): {}.\n",
            c.not_in_all.join(", ")
        );
    }
    if c.regressions.is_empty() {
        let _ = writeln!(o, "No regressions against the baseline.");
    } else {
        let _ = writeln!(o, "## Regressions against the baseline\n");
        for g in &c.regressions {
            let _ = writeln!(
                o,
                "- `{}` {}: {} {} → {} ({})",
                c.runs[g.run],
                g.profile
                    .as_deref()
                    .map_or("total".to_string(), |p| format!("profile {p}")),
                g.row.label(),
                g.baseline.show(),
                g.value.show(),
                g.rule.describe()
            );
        }
    }
    o
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

/// Keep a table cell on one line and its pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{MessageFigureSet, Slo, SloOp, Versions, SCHEMA_VERSION};

    fn duration(p99: u64, max: u64) -> DurationFigure {
        DurationFigure {
            count: 10,
            min_us: Some(1),
            p50_us: Some(p99 / 2),
            p90_us: Some(p99),
            p99_us: Some(p99),
            p999_us: Some(max),
            max_us: Some(max),
            censored: None,
        }
    }

    fn messages(delivered: u64) -> MessageFigureSet {
        MessageFigureSet {
            sent: delivered,
            acked: delivered,
            delivered,
            lost_after_ack: 0,
            undeliverable: 0,
            lost_unacked: 0,
            silent_loss: 0,
            lost_qos0: 0,
            duplicates: 0,
            reordered: 0,
            downgraded: 0,
            unobserved: 0,
            e2e_latency: duration(20_000, 40_000),
            ack_latency: duration(10_000, 20_000),
        }
    }

    /// A figure set with nothing lost and every duration measured.
    pub(crate) fn figures(delivered: u64) -> Figures {
        Figures {
            telemetry: messages(delivered),
            commands: messages(0),
            zombie_time: Some(duration(1_000_000, 2_000_000)),
            zombie_undetected: Some(0),
            broker_detect_time: None,
            reconnect_after_heal: Some(duration(3_000_000, 4_000_000)),
            outage_seen_by_client: None,
            resume_time: None,
            session_present: None,
            reconnect_attempts: None,
            first_attempt_delay: None,
            flaps: None,
            true_offline: Some(2),
            false_offline: Some(0),
            false_offline_rate: None,
            stale_offline_time: Some(duration(500_000, 600_000)),
            missed_offline: Some(0),
            false_online_time: None,
            offline_unobserved: None,
            false_offline_rate_interval: None,
            false_offline_per_device_day: None,
            devices_false_offline: None,
            takeovers: None,
            reason_codes: Default::default(),
        }
    }

    /// A passing run of two profiles, `recommended` and `weak`, with one
    /// SLO (`lost_after_ack = 0` on the totals).
    pub(crate) fn report() -> Report {
        let mut profiles = BTreeMap::new();
        profiles.insert("recommended".to_string(), figures(600));
        profiles.insert("weak".to_string(), figures(400));
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            scenario: "quickstart".into(),
            seed: 7,
            verdict: Verdict::Pass,
            started_at: "2026-11-25T22:00:00Z".into(),
            duration_s: 60.0,
            min_outage_s: Some(30.0),
            versions: Versions {
                harness: "0.1.0".into(),
                broker: "embedded".into(),
                faults: "embedded".into(),
            },
            devices: 10,
            totals: figures(1_000),
            profiles,
            faults: vec![],
            slo: vec![],
            unobserved_s: 0.0,
            unobserved: 0,
            errors: vec![],
        };
        r.check(&[lost_after_ack_is_zero()]);
        r
    }

    pub(crate) fn lost_after_ack_is_zero() -> Slo {
        Slo {
            profile: None,
            figure: "lost_after_ack".into(),
            stat: None,
            op: SloOp::Eq,
            limit: 0.0,
            text: "lost_after_ack = \"= 0\"".into(),
            expect_breach: false,
        }
    }

    fn runs(reports: Vec<Report>) -> Vec<(String, Report)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("run{i}"), r))
            .collect()
    }

    #[test]
    fn identical_runs_have_no_regression() {
        let c = compare(&runs(vec![report(), report(), report()]));
        assert_eq!(c.regressions, vec![]);
        assert_eq!(c.tables.len(), 3, "totals, recommended, weak");
        assert_eq!(c.tables[0].profile, None);
        assert_eq!(c.tables[1].profile.as_deref(), Some("recommended"));
        assert_eq!(c.tables[0].rows.len(), ROWS.len());
        assert_eq!(c.tables[1].rows.len(), ROWS.len() - 1, "no verdict row");
        assert!(markdown(&c).contains("No regressions against the baseline."));
    }

    #[test]
    fn a_verdict_from_pass_to_fail_regresses_and_fail_to_pass_does_not() {
        let mut failed = report();
        failed.totals.telemetry.lost_after_ack = 1;
        failed.check(&[lost_after_ack_is_zero()]);
        assert_eq!(failed.verdict, Verdict::Fail);
        let c = compare(&runs(vec![report(), failed.clone()]));
        let rules: Vec<_> = c.regressions.iter().map(|g| (g.row, g.rule)).collect();
        assert_eq!(
            rules,
            vec![
                (Row::Verdict, Rule::VerdictFailed),
                (Row::LostAfterAck, Rule::CountFromZero)
            ]
        );
        let back = compare(&runs(vec![failed, report()]));
        assert_eq!(back.regressions, vec![]);
    }

    #[test]
    fn a_count_that_grows_from_zero_regresses_even_by_one() {
        let mut later = report();
        later
            .profiles
            .get_mut("weak")
            .expect("weak")
            .telemetry
            .silent_loss = 1;
        let c = compare(&runs(vec![report(), later]));
        assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
        let g = &c.regressions[0];
        assert_eq!(g.run, 1);
        assert_eq!(g.profile.as_deref(), Some("weak"));
        assert_eq!(g.row, Row::SilentLoss);
        assert_eq!(g.rule, Rule::CountFromZero);
        assert_eq!(
            (g.baseline, g.value),
            (Value::Count(Some(0)), Value::Count(Some(1)))
        );
        let md = markdown(&c);
        assert!(
            md.contains("`run1` profile weak: silent_loss 0 → 1 (grew from 0)"),
            "{md}"
        );
        assert!(
            md.contains("| silent_loss | 0 | 0 |"),
            "totals unchanged: {md}"
        );
        assert!(md.contains("| silent_loss | 0 | **1** ▲ |"), "{md}");
    }

    #[test]
    fn a_count_regresses_above_ten_percent_growth_and_not_at_it() {
        let with = |n: u64| {
            let mut r = report();
            r.totals.telemetry.duplicates = n;
            r
        };
        let c = compare(&runs(vec![with(100), with(110), with(111), with(50)]));
        let flagged: Vec<_> = c.regressions.iter().map(|g| (g.run, g.rule)).collect();
        assert_eq!(flagged, vec![(2, Rule::CountGrew)]);
        assert_eq!(c.regressions[0].row, Row::Duplicates);
    }

    #[test]
    fn a_count_of_offline_reports_is_compared_only_when_both_runs_measured_it() {
        let with = |n: Option<u64>| {
            let mut r = report();
            r.totals.false_offline = n;
            r
        };
        let c = compare(&runs(vec![with(None), with(Some(5))]));
        assert_eq!(c.regressions, vec![]);
        let c = compare(&runs(vec![with(Some(0)), with(Some(5)), with(None)]));
        let flagged: Vec<_> = c
            .regressions
            .iter()
            .map(|g| (g.run, g.row, g.rule))
            .collect();
        assert_eq!(flagged, vec![(1, Row::FalseOffline, Rule::CountFromZero)]);
        assert!(markdown(&c).contains("| false_offline | 0 | **5** ▲ | – |"));
    }

    #[test]
    fn fewer_or_more_delivered_messages_is_never_a_regression() {
        let with = |n: u64| {
            let mut r = report();
            r.totals.telemetry.delivered = n;
            r
        };
        let c = compare(&runs(vec![with(1_000), with(10), with(0), with(5_000)]));
        assert_eq!(c.regressions, vec![]);
    }

    #[test]
    fn a_duration_regresses_above_twenty_percent_growth_and_not_at_it() {
        let with = |p99: u64| {
            let mut r = report();
            r.totals.reconnect_after_heal = Some(duration(p99, 4_000_000));
            r
        };
        let c = compare(&runs(vec![
            with(3_000_000),
            with(3_600_000),
            with(3_600_001),
            with(1_000_000),
        ]));
        let flagged: Vec<_> = c
            .regressions
            .iter()
            .map(|g| (g.run, g.row, g.rule))
            .collect();
        assert_eq!(
            flagged,
            vec![(2, Row::ReconnectAfterHealP99, Rule::DurationGrew)]
        );
        let md = markdown(&c);
        assert!(
            md.contains("reconnect_after_heal p99 3.00 s → 3.60 s (grew by more than 20 %)"),
            "{md}"
        );
    }

    #[test]
    fn the_max_of_zombie_and_stale_offline_time_and_the_e2e_p99_are_checked() {
        let mut later = report();
        let weak = later.profiles.get_mut("weak").expect("weak");
        weak.zombie_time = Some(duration(1_000_000, 2_500_000));
        weak.stale_offline_time = Some(duration(500_000, 800_000));
        weak.telemetry.e2e_latency = duration(30_000, 40_000);
        let c = compare(&runs(vec![report(), later]));
        let flagged: Vec<_> = c.regressions.iter().map(|g| (g.row, g.rule)).collect();
        assert_eq!(
            flagged,
            vec![
                (Row::E2eP99, Rule::DurationGrew),
                (Row::ZombieTimeMax, Rule::DurationGrew),
                (Row::StaleOfflineTimeMax, Rule::DurationGrew),
            ]
        );
    }

    #[test]
    fn a_duration_with_no_samples_in_one_run_is_not_compared() {
        let mut empty = report();
        empty.totals.zombie_time = None;
        let c = compare(&runs(vec![empty.clone(), report(), empty]));
        assert_eq!(c.regressions, vec![]);
        assert!(markdown(&c).contains("| zombie_time max | – | 2.00 s | – |"));
    }

    #[test]
    fn only_profiles_present_in_every_run_get_a_table() {
        let mut other = report();
        let weak = other.profiles.remove("weak").expect("weak");
        other.profiles.insert("aggressive".into(), weak);
        let c = compare(&runs(vec![report(), other]));
        let tables: Vec<_> = c.tables.iter().map(|t| t.profile.clone()).collect();
        assert_eq!(tables, vec![None, Some("recommended".to_string())]);
        assert_eq!(
            c.not_in_all,
            vec!["aggressive".to_string(), "weak".to_string()]
        );
        assert!(markdown(&c).contains("Not compared (not in every run): aggressive, weak."));
    }

    #[test]
    fn every_later_run_is_compared_to_the_first_not_to_the_one_before() {
        let with = |n: u64| {
            let mut r = report();
            r.totals.telemetry.lost_unacked = n;
            r
        };
        // 100 → 105 → 115: each step is under 10 %, the last is 15 % over the baseline.
        let c = compare(&runs(vec![with(100), with(105), with(115)]));
        let flagged: Vec<_> = c.regressions.iter().map(|g| (g.run, g.rule)).collect();
        assert_eq!(flagged, vec![(2, Rule::CountGrew)]);
    }

    #[test]
    fn loading_a_run_directory_reads_its_report_and_names_a_missing_file() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        crate::report::write_json(&report(), &dir.join("report.json")).expect("write");
        assert_eq!(load(dir).expect("from the directory"), report());
        assert_eq!(
            load(&dir.join("report.json")).expect("from the file"),
            report()
        );
        let missing = dir.join("nowhere");
        let err = load(&missing).expect_err("no such run").to_string();
        assert!(err.contains("nowhere"), "{err}");
        std::fs::write(dir.join("bad.json"), "{").expect("write");
        let err = load(&dir.join("bad.json"))
            .expect_err("not JSON")
            .to_string();
        assert!(
            err.contains("bad.json") && err.contains("not a report"),
            "{err}"
        );
    }
}

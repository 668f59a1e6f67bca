//! Comparisons of reports built here: every figure present, the default
//! rules and thresholds, the runs that cannot be compared, both renderers.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::figure::{self, Better, Kind, Value};
use super::threshold::{Amount, Limit};
use super::*;
use crate::report::{
    DurationFigure, Figures, Incident, MessageFigureSet, Slo, SloOp, Versions, SCHEMA_VERSION,
};

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

/// A figure set where every figure is measured and not 0: every `Option`
/// set, a censored episode in every duration, a reason code.
fn measured(delivered: u64) -> Figures {
    let d = |p99: u64| duration(p99, 2 * p99).with_censored(1);
    let m = |delivered: u64| MessageFigureSet {
        sent: delivered + 5,
        acked: delivered + 4,
        delivered,
        lost_after_ack: 1,
        undeliverable: 1,
        lost_unacked: 1,
        silent_loss: 1,
        lost_qos0: 1,
        duplicates: 1,
        reordered: 1,
        downgraded: 1,
        unobserved: 1,
        e2e_latency: d(20_000),
        ack_latency: d(10_000),
    };
    Figures {
        telemetry: m(delivered),
        commands: m(delivered / 10),
        zombie_time: Some(d(1_000_000)),
        zombie_undetected: Some(1),
        broker_detect_time: Some(d(2_000_000)),
        reconnect_after_heal: Some(d(3_000_000)),
        outage_seen_by_client: Some(d(4_000_000)),
        resume_time: Some(d(5_000_000)),
        session_present: Some(0.5),
        reconnect_attempts: Some(7),
        first_attempt_delay: Some(d(100_000)),
        flaps: Some(0.25),
        takeovers: Some(1),
        reason_codes: BTreeMap::from([("PUBACK 0x97".to_string(), 2)]),
        true_offline: Some(3),
        false_offline: Some(1),
        false_offline_rate: Some(0.25),
        false_offline_rate_interval: Some(crate::metrics::rate::Interval {
            low: 0.05,
            high: 0.6,
            confidence: 0.95,
        }),
        false_offline_per_device_day: Some(0.1),
        devices_false_offline: Some(0.2),
        stale_offline_time: Some(d(600_000)),
        missed_offline: Some(1),
        false_online_time: Some(d(700_000)),
        offline_unobserved: Some(1),
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

/// [`report`] with every figure measured (the SLO left out: it fails).
fn measured_report() -> Report {
    let mut r = report();
    r.totals = measured(1_000);
    for (i, f) in r.profiles.values_mut().enumerate() {
        *f = measured(400 + 100 * i as u64);
    }
    r.unobserved_s = 1.5;
    r.unobserved = 1;
    r.check(&[]);
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

/// Compared with the defaults; panics on runs that cannot be compared.
fn compared(reports: Vec<Report>) -> Comparison {
    compare(&runs(reports), &Options::default()).expect("comparable")
}

fn with_thresholds(reports: Vec<Report>, thresholds: &[&str]) -> Comparison {
    let opts = Options {
        thresholds: Thresholds(
            thresholds
                .iter()
                .map(|t| t.parse().expect("a good threshold"))
                .collect(),
        ),
        allow_different_scenarios: false,
    };
    compare(&runs(reports), &opts).expect("comparable")
}

/// (run, population, figure, rule) of every regression.
fn flagged(c: &Comparison) -> Vec<(usize, String, String, Rule)> {
    c.regressions
        .iter()
        .map(|g| (g.run, g.population.label(), g.figure.name.clone(), g.rule))
        .collect()
}

fn row<'a>(c: &'a Comparison, population: &str, name: &str) -> &'a Row {
    c.tables
        .iter()
        .find(|t| t.population.label() == population)
        .and_then(|t| t.rows.iter().find(|r| r.figure.name == name))
        .unwrap_or_else(|| panic!("{population} has no row {name}"))
}

// ---- every figure -------------------------------------------------------

#[test]
fn every_leaf_of_every_population_of_a_fully_measured_report_is_a_compared_figure() {
    let r = measured_report();
    let c = compared(vec![r.clone(), r.clone()]);
    let json = serde_json::to_value(&r).expect("serialises");
    let mut sets = vec![("total".to_string(), json["totals"].clone())];
    for (name, set) in json["profiles"].as_object().expect("profiles") {
        sets.push((format!("profile {name}"), set.clone()));
    }
    assert_eq!(sets.len(), 3);
    for (population, set) in sets {
        let table = c
            .tables
            .iter()
            .find(|t| t.population.label() == population)
            .unwrap_or_else(|| panic!("no table {population}"));
        let leaves = figure::leaves(&set);
        assert!(leaves.len() > 120, "{}", leaves.len());
        for (keys, leaf) in leaves {
            let joined = keys.join(".");
            if figure::NOT_FIGURES.iter().any(|(n, _)| *n == joined) {
                continue;
            }
            assert!(
                !leaf.is_null(),
                "{population}.{joined}: the report is not fully measured"
            );
            // Known before any run is read (so listed, `null` or not, with
            // its direction), not only found in this one.
            assert!(
                keys[0] == "reason_codes" || figure::covered(&figure::population_figures(), &keys),
                "{population}: {joined} is in report.json but not in compare's list of figures"
            );
            let row = table
                .rows
                .iter()
                .find(|r| r.figure.keys() == Some(keys.as_slice()))
                .unwrap_or_else(|| {
                    panic!("{population}: {joined} is in report.json, not compared")
                });
            // Read with its type: both runs have the value of the report.
            let expected = match row.figure.kind {
                Kind::Rate => Value::Rate(leaf.as_f64().expect("a number")),
                Kind::Micros => Value::Micros(leaf.as_u64().expect("µs")),
                Kind::Count => Value::Count(leaf.as_u64().expect("a count")),
                Kind::Verdict => panic!("{joined}: a verdict in a figure set"),
            };
            assert_eq!(row.values, vec![Some(expected); 2], "{population}.{joined}");
        }
        // And no compared figure of the list is missing from the report
        // (a name the report does not have would compare nothing).
        for row in &table.rows {
            assert!(
                row.values.iter().all(Option::is_some),
                "{population}.{} is not in a fully measured report",
                row.figure.name
            );
        }
    }
    // Every figure of the one list of names, both directions.
    let total = &c.tables[1];
    for (name, _) in crate::report::figures::all() {
        assert!(
            total.rows.iter().any(|r| r.figure.named_by(name)),
            "{name} not compared"
        );
    }
    for (name, _) in crate::report::figures::MESSAGE_FIGURES {
        let name = format!("commands.{name}");
        assert!(
            total.rows.iter().any(|r| r.figure.named_by(&name)),
            "{name}"
        );
    }
}

#[test]
fn every_top_level_field_of_report_json_is_a_run_figure_a_population_or_the_runs_identity() {
    let json = serde_json::to_value(measured_report()).expect("serialises");
    let c = compared(vec![measured_report(), measured_report()]);
    let run_table: Vec<&str> = c.tables[0]
        .rows
        .iter()
        .map(|r| r.figure.name.as_str())
        .collect();
    assert_eq!(run_table, ["verdict", "unobserved_s", "unobserved"]);
    assert_eq!(
        row(&c, "run", "unobserved_s").values,
        vec![Some(Value::Micros(1_500_000)); 2]
    );
    // What identifies a run (compared for comparability, shown in the runs
    // table) or is not a figure (the fault records, the SLO results, the
    // errors behind an `error` verdict).
    let identity = [
        "schema_version",
        "scenario",
        "seed",
        "started_at",
        "duration_s",
        "min_outage_s",
        "versions",
        "devices",
        "faults",
        "slo",
        "errors",
    ];
    for key in json.as_object().expect("object").keys() {
        let k = key.as_str();
        assert!(
            run_table.contains(&k) || ["totals", "profiles"].contains(&k) || identity.contains(&k),
            "report.json's `{k}` is neither compared nor known to compare"
        );
    }
}

#[test]
fn a_number_the_list_does_not_know_is_still_compared_as_growing_is_worse() {
    let mut sets = vec![serde_json::to_value(figures(1)).expect("serialises")];
    sets[0]["new_count"] = 3.into();
    sets[0]["new_time"] = serde_json::json!({ "p99_us": 5 });
    let list = figure::figures(&sets);
    let find = |n: &str| list.iter().find(|f| f.name == n).expect(n);
    assert_eq!(find("new_count").kind, Kind::Count);
    assert_eq!(find("new_count").better, Better::Lower);
    assert_eq!(find("new_time.p99").kind, Kind::Micros);
}

#[test]
fn reason_codes_are_compared_per_code_a_missing_code_counting_zero() {
    let mut later = report();
    later
        .totals
        .reason_codes
        .insert("DISCONNECT 0x8E".into(), 3);
    let c = compared(vec![report(), later]);
    assert_eq!(
        row(&c, "total", "reason_codes.DISCONNECT 0x8E").values,
        vec![Some(Value::Count(0)), Some(Value::Count(3))]
    );
    assert_eq!(
        flagged(&c),
        vec![(
            1,
            "total".into(),
            "reason_codes.DISCONNECT 0x8E".into(),
            Rule::FromZero
        )]
    );
}

// ---- default rules -----------------------------------------------------

/// The default rule of durations.
const OVER: Rule = Rule::PercentOver(20.0, 20_000);

#[test]
fn identical_runs_have_no_regression() {
    let c = compared(vec![report(), report(), report()]);
    assert_eq!(c.regressions, vec![]);
    let tables: Vec<String> = c.tables.iter().map(|t| t.population.label()).collect();
    assert_eq!(
        tables,
        ["run", "total", "profile recommended", "profile weak"]
    );
    assert_eq!(c.tables[1].rows.len(), figure::population_figures().len());
    assert!(c.comparable);
    assert_eq!(c.warnings, vec![]);
    assert!(markdown(&c).contains("No regressions against the baseline."));
}

#[test]
fn a_verdict_from_pass_to_fail_regresses_and_fail_to_pass_does_not() {
    let mut failed = report();
    failed.totals.telemetry.lost_after_ack = 1;
    failed.check(&[lost_after_ack_is_zero()]);
    assert_eq!(failed.verdict, Verdict::Fail);
    let c = compared(vec![report(), failed.clone()]);
    assert_eq!(
        flagged(&c),
        vec![
            (1, "run".into(), "verdict".into(), Rule::VerdictFailed),
            (1, "total".into(), "lost_after_ack".into(), Rule::FromZero)
        ]
    );
    let back = compared(vec![failed, report()]);
    assert_eq!(back.regressions, vec![]);
}

fn in_error(mut r: Report) -> Report {
    r.push_error(Incident::untimed(
        crate::health::Cause::BrokerExited,
        "the broker exited",
    ));
    r
}

#[test]
fn a_later_run_in_error_is_a_regression_and_a_baseline_in_error_is_warned_of() {
    let c = compared(vec![report(), in_error(report())]);
    assert_eq!(
        flagged(&c),
        vec![(1, "run".into(), "verdict".into(), Rule::VerdictError)]
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].kind, WarningKind::LaterError);
    assert!(c.warnings[0].message.contains("`run1` has verdict error"));
    assert!(c.warnings[0].message.contains("the broker exited"));
    // Even against a baseline in error: the later run cannot vouch.
    let c = compared(vec![in_error(report()), in_error(report())]);
    assert_eq!(c.regressions.len(), 1);
    let kinds: Vec<_> = c.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::BaselineError, WarningKind::LaterError]);
    // A baseline in error and a later pass: nothing flagged, but said.
    let c = compared(vec![in_error(report()), report()]);
    assert_eq!(c.regressions, vec![]);
    let md = markdown(&c);
    assert!(
        md.contains("> **⚠ Warning:** the baseline `run0` has verdict error"),
        "{md}"
    );
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
    let c = compared(vec![report(), later]);
    assert_eq!(
        flagged(&c),
        vec![(
            1,
            "profile weak".into(),
            "silent_loss".into(),
            Rule::FromZero
        )]
    );
    let g = &c.regressions[0];
    assert_eq!((g.baseline, g.later), (Value::Count(0), Value::Count(1)));
    let md = markdown(&c);
    assert!(
        md.contains("- `run1` profile weak: silent_loss 0 → 1 (grew from 0)"),
        "{md}"
    );
    assert!(
        md.contains("| silent_loss | 0 | 0 | 10% |"),
        "totals unchanged: {md}"
    );
    assert!(md.contains("| silent_loss | 0 | **1** ▲ | 10% |"), "{md}");
    assert!(
        md.contains("<details open><summary><b>profile weak</b>: 1 regression</summary>"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary><b>profile recommended</b>: no regression</summary>"),
        "{md}"
    );
}

#[test]
fn a_count_regresses_above_ten_percent_growth_and_not_at_it() {
    let with = |n: u64| {
        let mut r = report();
        r.totals.telemetry.duplicates = n;
        r
    };
    let c = compared(vec![with(100), with(110), with(111), with(50)]);
    assert_eq!(
        flagged(&c),
        vec![(2, "total".into(), "duplicates".into(), Rule::Percent(10.0))]
    );
}

#[test]
fn a_count_of_offline_reports_is_compared_only_when_both_runs_measured_it() {
    let with = |n: Option<u64>| {
        let mut r = report();
        r.totals.false_offline = n;
        r
    };
    let c = compared(vec![with(None), with(Some(5))]);
    assert_eq!(c.regressions, vec![]);
    let c = compared(vec![with(Some(0)), with(Some(5)), with(None)]);
    assert_eq!(
        flagged(&c),
        vec![(1, "total".into(), "false_offline".into(), Rule::FromZero)]
    );
    assert!(markdown(&c).contains("| false_offline | 0 | **5** ▲ | – | 10% |"));
}

#[test]
fn fewer_or_more_delivered_messages_is_not_judged_unless_a_threshold_names_it() {
    let with = |n: u64| {
        let mut r = report();
        r.totals.telemetry.delivered = n;
        r
    };
    let reports = || vec![with(1_000), with(950), with(800), with(5_000)];
    assert_eq!(compared(reports()).regressions, vec![]);
    assert_eq!(row(&compared(reports()), "total", "delivered").limit, None);
    // Named: a fall beyond it regresses, a rise never.
    let c = with_thresholds(reports(), &["delivered=10%"]);
    assert_eq!(
        flagged(&c),
        vec![(2, "total".into(), "delivered".into(), Rule::Percent(10.0))]
    );
    assert_eq!(c.regressions[0].describe(), "fell by more than 10 %");
}

#[test]
fn a_share_of_resumed_sessions_that_falls_regresses_and_one_that_rises_does_not() {
    let with = |share: f64| {
        let mut r = report();
        r.totals.session_present = Some(share);
        r
    };
    let c = compared(vec![with(0.8), with(0.9), with(0.73), with(0.7)]);
    assert_eq!(
        flagged(&c),
        vec![(
            3,
            "total".into(),
            "session_present".into(),
            Rule::Percent(10.0)
        )]
    );
}

#[test]
fn a_duration_regresses_above_twenty_percent_growth_and_not_at_it() {
    let with = |p99: u64| {
        let mut r = report();
        r.totals.reconnect_after_heal = Some(duration(p99, 4_000_000));
        r
    };
    let c = compared(vec![
        with(3_000_000),
        with(3_600_000),
        with(3_600_001),
        with(1_000_000),
    ]);
    // p90 is p99 in these histograms.
    assert_eq!(
        flagged(&c),
        vec![
            (2, "total".into(), "reconnect_after_heal.p90".into(), OVER),
            (2, "total".into(), "reconnect_after_heal.p99".into(), OVER),
        ]
    );
    let md = markdown(&c);
    assert!(
        md.contains("reconnect_after_heal.p99 3.00 s → 3.60 s (grew by more than 20 % and 20ms)"),
        "{md}"
    );
}

#[test]
fn every_statistic_of_a_duration_and_the_censored_episodes_are_compared() {
    let mut later = report();
    let weak = later.profiles.get_mut("weak").expect("weak");
    weak.zombie_time = Some(duration(1_000_000, 2_500_000));
    weak.stale_offline_time = Some(DurationFigure {
        min_us: Some(100_000),
        ..duration(500_000, 600_000)
    });
    weak.telemetry.e2e_latency = duration(80_000, 120_000);
    // 10 → 17.5 ms: 75 % longer, but by less than 20 ms.
    weak.telemetry.ack_latency = duration(17_500, 20_000);
    weak.reconnect_after_heal = Some(duration(3_000_000, 4_000_000).with_censored(1));
    weak.telemetry.e2e_latency.count = 1_000;
    let c = compared(vec![report(), later]);
    let names: Vec<String> = flagged(&c).into_iter().map(|f| f.2).collect();
    assert_eq!(
        names,
        [
            "e2e_latency.p50",
            "e2e_latency.p90",
            "e2e_latency.p99",
            "e2e_latency.p999",
            "e2e_latency.max",
            "zombie_time.p999",
            "zombie_time.max",
            "stale_offline_time.min",
        ],
        "a sample count is not judged; censored is null in the baseline; ack_latency grew by under 20 ms"
    );
    assert_eq!(
        row(&c, "profile weak", "reconnect_after_heal.censored").values,
        vec![None, Some(Value::Count(1))]
    );
}

#[test]
fn a_duration_must_grow_by_more_than_20_ms_too_unless_a_threshold_says_otherwise() {
    let with = |p99: u64| {
        let mut r = report();
        r.totals.broker_detect_time = Some(duration(p99, p99));
        r
    };
    // 4 → 12 ms (3×): run-to-run jitter; 4 → 25 ms: a regression.
    let reports = || vec![with(4_000), with(12_000), with(25_000)];
    let c = compared(reports());
    let runs: Vec<usize> = flagged(&c).into_iter().map(|f| f.0).collect();
    assert_eq!(runs, [2, 2, 2, 2], "p90, p99, p999, max of the third run");
    assert_eq!(
        c.regressions[0].describe(),
        "grew by more than 20 % and 20ms"
    );
    // A percentage given has no floor.
    let c = with_thresholds(reports(), &["broker_detect_time=20%"]);
    let runs: Vec<usize> = flagged(&c).into_iter().map(|f| f.0).collect();
    assert_eq!(runs, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2], "p50 too");
}

#[test]
fn a_duration_with_no_samples_in_one_run_is_not_compared() {
    let mut empty = report();
    empty.totals.zombie_time = None;
    let c = compared(vec![empty.clone(), report(), empty]);
    assert_eq!(c.regressions, vec![]);
    assert!(markdown(&c).contains("| zombie_time.max | – | 2.00 s | – | 20% and +20ms |"));
}

#[test]
fn every_later_run_is_compared_to_the_first_not_to_the_one_before() {
    let with = |n: u64| {
        let mut r = report();
        r.totals.telemetry.lost_unacked = n;
        r
    };
    // 100 → 105 → 115: each step is under 10 %, the last is 15 % over the baseline.
    let c = compared(vec![with(100), with(105), with(115)]);
    assert_eq!(
        flagged(&c),
        vec![(
            2,
            "total".into(),
            "lost_unacked".into(),
            Rule::Percent(10.0)
        )]
    );
}

/// `r` with every number of its populations' judged figures made better
/// (`better`) or worse, through report.json.
fn shifted(r: &Report, better: bool) -> Report {
    fn at<'a>(v: &'a mut Json, keys: &[String]) -> Option<&'a mut Json> {
        keys.iter().try_fold(v, |v, k| v.get_mut(k))
    }
    let mut json = serde_json::to_value(r).expect("serialises");
    let mut populations = vec![vec!["totals".to_string()]];
    populations.extend(
        r.profiles
            .keys()
            .map(|p| vec!["profiles".to_string(), p.clone()]),
    );
    for population in populations {
        let set = at(&mut json, &population).expect("a figure set");
        let list = figure::figures(std::slice::from_ref(set));
        for f in &list {
            let Some(v) = at(&mut *set, f.keys().expect("a population figure")) else {
                continue;
            };
            let up = match f.better {
                Better::Lower => !better,
                Better::Higher => better,
                Better::Neither => continue,
            };
            *v = match (v.as_u64(), v.as_f64()) {
                (Some(n), _) if up && f.kind == Kind::Micros => (3 * n + 1_000_000).into(),
                (Some(n), _) if up => (3 * n + 1).into(),
                (Some(n), _) => (n / 3).into(),
                (None, Some(x)) if up => (3.0 * x + 0.1).into(),
                (None, Some(x)) => (x / 3.0).into(),
                _ => continue,
            };
        }
    }
    serde_json::from_value(json).expect("still a report")
}

#[test]
fn an_improvement_of_every_figure_is_never_flagged_and_a_worsening_of_every_one_always() {
    let base = measured_report();
    let c = compared(vec![base.clone(), shifted(&base, true)]);
    assert_eq!(flagged(&c), vec![]);
    // Every figure a rule judges, in every population, regresses when it
    // gets three times worse.
    let c = compared(vec![base.clone(), shifted(&base, false)]);
    for t in &c.tables[1..] {
        for r in t.rows.iter().filter(|r| r.limit.is_some()) {
            assert!(
                c.regressions
                    .iter()
                    .any(|g| g.population == t.population && g.figure.name == r.figure.name),
                "{} {} got worse and was not flagged",
                t.population.label(),
                r.figure.name
            );
        }
    }
}

// ---- thresholds --------------------------------------------------------

#[test]
fn thresholds_parse_every_form() {
    let t = |s: &str| s.parse::<Threshold>().expect(s);
    assert_eq!(t("lost_qos0=0").limit, Limit::Percent(0.0));
    assert_eq!(t("e2e_latency.p99=50%").limit, Limit::Percent(50.0));
    assert_eq!(t("e2e_latency.p99=12.5%").limit, Limit::Percent(12.5));
    assert_eq!(
        t("duplicates=+100").limit,
        Limit::Absolute(Amount::Number(100.0))
    );
    assert_eq!(
        t("false_offline_rate=+0.01").limit,
        Limit::Absolute(Amount::Number(0.01))
    );
    assert_eq!(
        t("reconnect_after_heal.max=+2s").limit,
        Limit::Absolute(Amount::Micros(2_000_000))
    );
    assert_eq!(
        t("e2e_latency=+250ms").limit,
        Limit::Absolute(Amount::Micros(250_000))
    );
    assert_eq!(t("flaps=off").limit, Limit::Off);
    assert_eq!(t("commands=5%").figure, "commands");
    assert_eq!(
        t("reason_codes.PUBACK 0x97=+2").figure,
        "reason_codes.PUBACK 0x97"
    );
    assert_eq!(t("unobserved_s=+1s").figure, "unobserved_s");
    assert_eq!(t("duplicates=+100").to_string(), "duplicates=+100");
    assert_eq!(
        t("e2e_latency.p99=+250ms").to_string(),
        "e2e_latency.p99=+250ms"
    );
}

#[test]
fn a_bad_threshold_names_its_bad_part() {
    let e = |s: &str| s.parse::<Threshold>().expect_err(s);
    assert!(e("lost_qos0").contains("`lost_qos0` is not FIGURE=LIMIT"));
    assert!(e("lost_qso0=0").contains("unknown figure `lost_qso0`"));
    assert!(e("e2e_latency.p42=10%").contains("unknown figure `e2e_latency.p42`"));
    assert!(e("duplicates=lots").contains("`lots` is not a number"));
    assert!(e("duplicates=-5%").contains("`-5` must be a number of 0 or more"));
    assert!(e("duplicates=5").contains("`5` alone is ambiguous"));
    assert!(e("duplicates=+5%").contains("is ambiguous"));
    assert!(e("duplicates=+5ms").contains("`duplicates` is a count"));
    assert!(e("flaps=+5ms").contains("`flaps` is a rate"));
    assert!(e("e2e_latency.p99=+250").contains("`e2e_latency.p99` is a duration"));
    assert!(e("e2e_latency.p99=+5parsecs").contains("invalid duration"));
    assert!(e("verdict=off").contains("`verdict` takes no threshold"));
}

#[test]
fn a_threshold_changes_what_regresses() {
    let mut later = report();
    let base = {
        let mut r = report();
        r.totals.telemetry.lost_qos0 = 100;
        r.totals.telemetry.e2e_latency = duration(200_000, 400_000);
        r
    };
    later.totals.telemetry.lost_qos0 = 101;
    later.totals.telemetry.duplicates = 50;
    later.totals.telemetry.e2e_latency = duration(280_000, 400_000);
    // Defaults: 1 % more lost_qos0 passes; duplicates from 0 and a 40 %
    // longer e2e p99 (and p90) regress.
    let c = compared(vec![base.clone(), later.clone()]);
    let names: Vec<String> = flagged(&c).into_iter().map(|f| f.2).collect();
    assert_eq!(
        names,
        [
            "duplicates",
            "e2e_latency.p50",
            "e2e_latency.p90",
            "e2e_latency.p99"
        ]
    );
    let c = with_thresholds(
        vec![base.clone(), later.clone()],
        &["lost_qos0=0", "e2e_latency=50%", "duplicates=+100"],
    );
    assert_eq!(
        flagged(&c),
        vec![(1, "total".into(), "lost_qos0".into(), Rule::Percent(0.0))]
    );
    assert_eq!(c.regressions[0].origin, Origin::Flag);
    let md = markdown(&c);
    assert!(
        md.contains("lost_qos0 100 → 101 (grew (threshold 0); --threshold lost_qos0=0)"),
        "{md}"
    );
    assert!(md.contains("| duplicates | 0 | 50 | +100 (flag) |"), "{md}");
    // The most specific threshold wins; of two naming the same, the last.
    let c = with_thresholds(
        vec![base.clone(), later.clone()],
        &[
            "e2e_latency.p99=10%",
            "e2e_latency=50%",
            "duplicates=off",
            "duplicates=+10",
        ],
    );
    let names: Vec<String> = flagged(&c).into_iter().map(|f| f.2).collect();
    assert_eq!(names, ["duplicates", "e2e_latency.p99"]);
    // An absolute duration threshold leaves a group's counts at their
    // defaults.
    let c = with_thresholds(vec![base, later], &["e2e_latency=+1ms"]);
    assert_eq!(
        row(&c, "total", "e2e_latency.count").limit,
        None,
        "a sample count stays unjudged"
    );
    assert_eq!(
        row(&c, "total", "e2e_latency.censored").limit,
        Some((Limit::Percent(10.0), Origin::Default))
    );
    assert_eq!(
        row(&c, "total", "e2e_latency.max").limit,
        Some((Limit::Absolute(Amount::Micros(1_000)), Origin::Flag))
    );
}

#[test]
fn a_threshold_after_a_profiles_name_holds_for_that_profile_only() {
    let t: Threshold = "weak.lost_qos0=off".parse().expect("a profile's threshold");
    assert_eq!(
        (t.profile.as_deref(), t.figure.as_str(), t.limit),
        (Some("weak"), "lost_qos0", Limit::Off)
    );
    assert_eq!(t.to_string(), "weak.lost_qos0=off");
    let mut later = report();
    later.totals.telemetry.lost_qos0 = 25;
    later
        .profiles
        .get_mut("weak")
        .expect("weak")
        .telemetry
        .lost_qos0 = 25;
    later
        .profiles
        .get_mut("recommended")
        .expect("recommended")
        .telemetry
        .lost_qos0 = 1;
    let c = with_thresholds(
        vec![report(), later.clone()],
        &[
            "lost_qos0=+30",
            "weak.lost_qos0=off",
            "recommended.lost_qos0=0",
        ],
    );
    assert_eq!(
        flagged(&c),
        vec![(
            1,
            "profile recommended".into(),
            "lost_qos0".into(),
            Rule::FromZero
        )]
    );
    assert_eq!(
        row(&c, "profile weak", "lost_qos0").limit,
        Some((Limit::Off, Origin::Flag))
    );
    // A profile no run has is a mistake, not a silent no-op.
    let opts = Options {
        thresholds: Thresholds(vec!["wek.lost_qos0=off".parse().expect("parses")]),
        allow_different_scenarios: false,
    };
    let err = compare(&runs(vec![report(), later]), &opts).expect_err("unknown profile");
    assert_eq!(
        err.to_string(),
        "--threshold wek.lost_qos0=off: no run has a profile `wek` (nor a figure of that name)"
    );
    assert!("weak.verdict=off".parse::<Threshold>().is_err());
}

#[test]
fn a_threshold_on_a_figure_neither_way_worse_flags_a_change_either_way() {
    let with = |n: u64| {
        let mut r = report();
        r.totals.true_offline = Some(n);
        r
    };
    let c = with_thresholds(
        vec![with(10), with(12), with(8), with(11)],
        &["true_offline=+1"],
    );
    let runs: Vec<usize> = flagged(&c).into_iter().map(|f| f.0).collect();
    assert_eq!(runs, [1, 2]);
    assert_eq!(c.regressions[0].describe(), "changed by more than 1");
}

// ---- runs that cannot be compared --------------------------------------

#[test]
fn runs_of_different_scenarios_profiles_fleets_or_yardsticks_are_refused() {
    let mut pitfalls = report();
    pitfalls.scenario = "client-config-pitfalls".into();
    let mut other_profiles = report();
    let weak = other_profiles.profiles.remove("weak").expect("weak");
    other_profiles.profiles.insert("aggressive".into(), weak);
    let mut bigger = report();
    bigger.devices = 20;
    let mut yardstick = report();
    yardstick.min_outage_s = Some(10.0);
    for (later, field) in [
        (pitfalls, "scenario"),
        (other_profiles, "profiles"),
        (bigger, "devices"),
        (yardstick, "min_outage_s"),
    ] {
        let Err(CompareError::Incomparable(err)) =
            compare(&runs(vec![report(), later]), &Options::default())
        else {
            panic!("{field}: not refused");
        };
        let fields: Vec<&str> = err.0.iter().map(|d| d.field).collect();
        assert_eq!(fields, [field]);
        let text = err.to_string();
        assert!(text.contains("--allow-different-scenarios"), "{text}");
        assert!(text.contains(&format!("  {field}: `run0` ")), "{text}");
    }
    let mut pitfalls = report();
    pitfalls.scenario = "client-config-pitfalls".into();
    let err = compare(&runs(vec![report(), pitfalls]), &Options::default()).expect_err("refused");
    assert!(
        err.to_string()
            .contains("scenario: `run0` is `quickstart`, `run1` is `client-config-pitfalls`"),
        "{err}"
    );
}

#[test]
fn runs_that_cannot_be_compared_are_compared_when_allowed_and_say_so() {
    let mut other = report();
    other.scenario = "client-config-pitfalls".into();
    let weak = other.profiles.remove("weak").expect("weak");
    other.profiles.insert("aggressive".into(), weak);
    let opts = Options {
        allow_different_scenarios: true,
        ..Options::default()
    };
    let c = compare(&runs(vec![report(), other]), &opts).expect("allowed");
    assert!(!c.comparable);
    let kinds: Vec<_> = c.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::DifferentScenarios; 2]);
    let tables: Vec<String> = c.tables.iter().map(|t| t.population.label()).collect();
    assert_eq!(tables, ["run", "total", "profile recommended"]);
    assert_eq!(c.not_in_all, ["aggressive", "weak"]);
    let md = markdown(&c);
    let first = md.lines().nth(2).expect("a line after the title");
    assert!(
        first.starts_with(
            "> **⚠ Warning:** compared anyway (--allow-different-scenarios), but scenario differs"
        ),
        "{md}"
    );
    assert!(md.contains("Not compared (not in every run): aggressive, weak."));
    let j: Json = serde_json::from_str(&json(&c)).expect("JSON");
    assert_eq!(j["comparable"], false);
    assert_eq!(j["warnings"][0]["kind"], "different_scenarios");
}

#[test]
fn other_seeds_durations_and_versions_are_warned_of_not_refused() {
    let mut later = report();
    later.seed = 8;
    later.duration_s = 30.0;
    later.versions.broker = "mosquitto 2.0.18".into();
    let c = compared(vec![report(), later]);
    assert!(c.comparable);
    let kinds: Vec<_> = c.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        [
            WarningKind::DifferentSeeds,
            WarningKind::DifferentDurations,
            WarningKind::DifferentVersions
        ]
    );
    assert!(c.warnings[1]
        .message
        .contains("`run0` ran 60 s, `run1` ran 30 s"));
    assert!(c.warnings[2]
        .message
        .contains("broker versions: `run0` `embedded`, `run1` `mosquitto 2.0.18`"));
}

// ---- JSON -------------------------------------------------------------

#[test]
fn the_json_lists_every_figure_of_every_population_with_each_runs_value() {
    let mut later = report();
    later.totals.telemetry.lost_after_ack = 2;
    later.check(&[lost_after_ack_is_zero()]);
    let c = with_thresholds(vec![report(), later], &["lost_qos0=0"]);
    let j: Json = serde_json::from_str(&json(&c)).expect("JSON");
    let keys: Vec<&str> = j
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "comparable",
            "compare_version",
            "not_in_all",
            "populations",
            "regressed",
            "regressions",
            "runs",
            "thresholds",
            "warnings",
        ],
        "sorted by serde_json"
    );
    assert_eq!(j["compare_version"], 1);
    assert_eq!(j["regressed"], true);
    assert_eq!(j["thresholds"], serde_json::json!(["lost_qos0=0"]));
    assert_eq!(j["runs"][0]["label"], "run0");
    assert_eq!(j["runs"][0]["baseline"], true);
    assert_eq!(j["runs"][1]["verdict"], "fail");
    let pops = j["populations"].as_array().expect("populations");
    let names: Vec<(&str, &Json)> = pops
        .iter()
        .map(|p| (p["population"].as_str().expect("str"), &p["profile"]))
        .collect();
    assert_eq!(
        names,
        [
            ("run", &Json::Null),
            ("total", &Json::Null),
            ("profile", &Json::from("recommended")),
            ("profile", &Json::from("weak"))
        ]
    );
    let total = pops[1]["figures"].as_array().expect("figures");
    assert_eq!(total.len(), figure::population_figures().len());
    let fig = |name: &str| {
        total
            .iter()
            .find(|f| f["figure"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(
        fig("lost_after_ack"),
        &serde_json::json!({
            "figure": "lost_after_ack", "kind": "count", "better": "lower",
            "threshold": "10%", "threshold_from": "default", "values": [0, 2]
        })
    );
    assert_eq!(fig("lost_qos0")["threshold"], "0");
    assert_eq!(fig("lost_qos0")["threshold_from"], "flag");
    assert_eq!(fig("e2e_latency.p99")["kind"], "duration_us");
    assert_eq!(
        fig("e2e_latency.p99")["values"],
        serde_json::json!([20_000, 20_000])
    );
    assert_eq!(fig("delivered")["threshold"], Json::Null);
    assert_eq!(
        fig("first_attempt_delay.p99")["values"],
        serde_json::json!([null, null])
    );
    assert_eq!(
        fig("commands.lost_qos0")["values"],
        serde_json::json!([0, 0])
    );
    assert_eq!(pops[0]["figures"][0]["better"], Json::Null);
    assert_eq!(
        pops[0]["figures"][0]["values"],
        serde_json::json!(["pass", "fail"])
    );
    assert_eq!(
        j["regressions"],
        serde_json::json!([
            {
                "run": 1, "label": "run1", "population": "run", "profile": null,
                "figure": "verdict", "kind": "verdict", "baseline": "pass", "later": "fail",
                "rule": "verdict_failed", "threshold": "pass → fail, error",
                "threshold_from": "default", "description": "pass → fail"
            },
            {
                "run": 1, "label": "run1", "population": "total", "profile": null,
                "figure": "lost_after_ack", "kind": "count", "baseline": 0, "later": 2,
                "rule": "from_zero", "threshold": "10%", "threshold_from": "default",
                "description": "grew from 0"
            }
        ])
    );
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

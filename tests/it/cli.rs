//! The command line on reports written by the test: `mqtt-chaos compare`
//! (Markdown and JSON, thresholds, runs that cannot be compared).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mqtt_chaos::report::{
    self, DurationFigure, Figures, MessageFigureSet, Report, Slo, SloOp, Verdict, Versions,
};

fn duration(p99: u64) -> DurationFigure {
    DurationFigure {
        count: 4,
        min_us: Some(p99 / 4),
        p50_us: Some(p99 / 2),
        p90_us: Some(p99),
        p99_us: Some(p99),
        p999_us: Some(p99),
        max_us: Some(p99),
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
        e2e_latency: duration(15_000),
        ack_latency: duration(5_000),
    }
}

fn figures(delivered: u64) -> Figures {
    Figures {
        telemetry: messages(delivered),
        commands: messages(0),
        zombie_time: Some(duration(1_000_000)),
        zombie_undetected: Some(0),
        broker_detect_time: None,
        reconnect_after_heal: Some(duration(2_000_000)),
        outage_seen_by_client: None,
        resume_time: None,
        session_present: None,
        reconnect_attempts: None,
        first_attempt_delay: None,
        flaps: None,
        true_offline: Some(1),
        false_offline: Some(0),
        false_offline_rate: None,
        stale_offline_time: None,
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

pub fn slos() -> Vec<Slo> {
    vec![Slo {
        profile: None,
        figure: "lost_after_ack".into(),
        stat: None,
        op: SloOp::Eq,
        limit: 0.0,
        text: "lost_after_ack = \"= 0\"".into(),
        expect_breach: false,
    }]
}

pub fn baseline() -> Report {
    let mut profiles = BTreeMap::new();
    profiles.insert("recommended".to_string(), figures(300));
    let mut r = Report {
        schema_version: report::SCHEMA_VERSION,
        scenario: "compare-cli".into(),
        seed: 1,
        verdict: Verdict::Pass,
        started_at: "2026-11-26T00:00:00Z".into(),
        duration_s: 30.0,
        min_outage_s: Some(30.0),
        versions: Versions::default(),
        devices: 3,
        totals: figures(300),
        profiles,
        faults: vec![],
        slo: vec![],
        unobserved_s: 0.0,
        unobserved: 0,
        errors: vec![],
    };
    r.check(&slos());
    r
}

pub fn write(dir: &Path, name: &str, r: &Report) -> std::path::PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).expect("run dir");
    report::write_json(r, &run.join("report.json")).expect("report.json");
    run
}

fn compare(runs: &[&Path]) -> (Option<i32>, String, String) {
    compare_with(&[], runs)
}

/// `mqtt-chaos compare ARGS... RUNS...`: exit code, stdout, stderr.
fn compare_with(args: &[&str], runs: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-chaos"))
        .arg("compare")
        .args(args)
        .args(runs)
        .output()
        .expect("mqtt-chaos runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_exits_1_and_names_the_regression_when_a_later_run_lost_acked_messages() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = write(tmp.path(), "a", &baseline());
    let mut worse = baseline();
    worse.totals.telemetry.lost_after_ack = 2;
    worse.check(&slos());
    let b = write(tmp.path(), "b", &worse);

    let (code, stdout, stderr) = compare(&[&a, &b]);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("## total"), "{stdout}");
    assert!(
        stdout.contains("<summary><b>profile recommended</b>: no regression</summary>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| verdict | pass | **fail** ▲ |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| lost_after_ack | 0 | **2** ▲ |"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "`{}` total: lost_after_ack 0 → 2 (grew from 0)",
            b.display()
        )),
        "{stdout}"
    );
}

#[test]
fn compare_exits_0_when_nothing_regressed_and_2_naming_an_unreadable_report() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = write(tmp.path(), "a", &baseline());
    let mut better = baseline();
    better.totals.reconnect_after_heal = Some(duration(1_000_000));
    let b = write(tmp.path(), "b", &better);

    let (code, stdout, stderr) = compare(&[&a, &b]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("No regressions against the baseline."),
        "{stdout}"
    );

    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).expect("dir");
    std::fs::write(broken.join("report.json"), "{\"schema_version\": 1").expect("write");
    let (code, stdout, stderr) = compare(&[&a, &broken]);
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(&broken.join("report.json").display().to_string()),
        "{stderr}"
    );
    let missing = tmp.path().join("missing");
    let (code, _, stderr) = compare(&[&missing, &a]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("missing"), "{stderr}");
}

/// The JSON of `compare --format json`, checked against docs/compare.schema.json.
fn compare_json(args: &[&str], runs: &[&Path]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = compare_with(&all, runs);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/compare.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new(), "{json:#}");
    (code, json)
}

/// The name `compare` gives a leaf of a figure set: its keys joined, a
/// duration statistic without `_us`.
fn figure_name(keys: &[String]) -> String {
    let mut name: Vec<&str> = keys.iter().map(String::as_str).collect();
    if let Some(last) = name.last_mut() {
        *last = last.strip_suffix("_us").unwrap_or(last);
    }
    name.join(".")
}

fn leaves(
    v: &serde_json::Value,
    keys: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, serde_json::Value)>,
) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, child) in m {
                keys.push(k.clone());
                leaves(child, keys, out);
                keys.pop();
            }
        }
        _ => out.push((keys.clone(), v.clone())),
    }
}

#[test]
fn compare_as_json_lists_every_figure_of_the_reports_with_each_runs_value() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut first = baseline();
    first.totals.reason_codes.insert("PUBACK 0x97".into(), 1);
    first.totals.first_attempt_delay = Some(duration(700_000));
    first.totals.flaps = Some(0.5);
    let a = write(tmp.path(), "a", &first);
    let mut later = first.clone();
    later.totals.telemetry.lost_qos0 = 3;
    later.totals.commands.duplicates = 4;
    let b = write(tmp.path(), "b", &later);

    let (code, json) = compare_json(&[], &[&a, &b]);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["regressed"], true);
    assert_eq!(json["comparable"], true);
    let names: Vec<&str> = json["regressions"]
        .as_array()
        .expect("regressions")
        .iter()
        .map(|g| g["figure"].as_str().expect("figure"))
        .collect();
    assert_eq!(names, ["lost_qos0", "commands.duplicates"]);

    // Every leaf of every figure set in report.json is a figure of its
    // population, with both runs' values as the reports have them.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("report.json")).expect("read"))
            .expect("JSON");
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("report.json")).expect("read"))
            .expect("JSON");
    let populations = json["populations"].as_array().expect("populations");
    for (population, profile, set, base) in [
        ("total", None, &written["totals"], &before["totals"]),
        (
            "profile",
            Some("recommended"),
            &written["profiles"]["recommended"],
            &before["profiles"]["recommended"],
        ),
    ] {
        let figures = populations
            .iter()
            .find(|p| p["population"] == population && p["profile"].as_str() == profile)
            .and_then(|p| p["figures"].as_array())
            .unwrap_or_else(|| panic!("no population {population} {profile:?}"));
        let mut all = vec![];
        leaves(set, &mut vec![], &mut all);
        assert!(all.len() > 60, "{}", all.len());
        for (keys, value) in all {
            let name = figure_name(&keys);
            if name == "false_offline_rate_interval"
                || name == "false_offline_rate_interval.confidence"
            {
                continue;
            }
            if value.is_null() {
                // A figure not measured: every statistic listed, null in both.
                let stats: Vec<_> = figures
                    .iter()
                    .filter(|f| {
                        f["figure"]
                            .as_str()
                            .is_some_and(|f| f.starts_with(&format!("{name}.")))
                            || f["figure"] == name.as_str()
                    })
                    .collect();
                assert!(
                    !stats.is_empty(),
                    "{population}: {name} (null) is not listed"
                );
                for f in stats {
                    assert_eq!(f["values"], serde_json::json!([null, null]), "{f}");
                }
                continue;
            }
            let f = figures
                .iter()
                .find(|f| f["figure"] == name.as_str())
                .unwrap_or_else(|| {
                    panic!("{population}: {name} is in report.json, not in compare's JSON")
                });
            let earlier = keys.iter().fold(base, |v, k| &v[k]);
            assert_eq!(f["values"], serde_json::json!([earlier, value]), "{name}");
        }
    }
    let run = &populations[0]["figures"];
    assert_eq!(run[0]["figure"], "verdict");
    assert_eq!(run[0]["values"], serde_json::json!(["pass", "pass"]));
}

#[test]
fn compare_refuses_runs_of_different_scenarios_unless_allowed_and_then_warns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = write(tmp.path(), "a", &baseline());
    let mut other = baseline();
    other.scenario = "client-config-pitfalls".into();
    let b = write(tmp.path(), "b", &other);

    let (code, stdout, stderr) = compare(&[&a, &b]);
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&format!(
            "scenario: `{}` is `compare-cli`, `{}` is `client-config-pitfalls`",
            a.display(),
            b.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-different-scenarios"), "{stderr}");

    let (code, stdout, stderr) = compare_with(&["--allow-different-scenarios"], &[&a, &b]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(
            "compare: warning: compared anyway (--allow-different-scenarios), but scenario differs"
        ),
        "{stderr}"
    );
    let third = stdout.lines().nth(2).unwrap_or_default();
    assert!(
        third.starts_with("> **⚠ Warning:** compared anyway"),
        "{stdout}"
    );
    let (code, json) = compare_json(&["--allow-different-scenarios"], &[&a, &b]);
    assert_eq!(code, Some(0));
    assert_eq!(json["comparable"], false);
    assert_eq!(json["warnings"][0]["kind"], "different_scenarios");

    // Another seed is only warned of.
    let mut reseeded = baseline();
    reseeded.seed = 99;
    let c = write(tmp.path(), "c", &reseeded);
    let (code, stdout, stderr) = compare(&[&a, &c]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("different seeds"), "{stderr}");
    assert!(
        stdout.contains("> **⚠ Warning:** different seeds"),
        "{stdout}"
    );
}

#[test]
fn a_threshold_changes_the_outcome_and_a_bad_one_is_a_usage_error_naming_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut first = baseline();
    first.totals.telemetry.duplicates = 100;
    let a = write(tmp.path(), "a", &first);
    let mut later = first.clone();
    later.totals.telemetry.duplicates = 150;
    let b = write(tmp.path(), "b", &later);

    let (code, stdout, _) = compare(&[&a, &b]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("duplicates 100 → 150 (grew by more than 10 %)"),
        "{stdout}"
    );
    let (code, stdout, _) = compare_with(&["--threshold", "duplicates=+100"], &[&a, &b]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("| duplicates | 100 | 150 | +100 (flag) |"),
        "{stdout}"
    );
    let (code, stdout, _) = compare_with(&["--threshold", "duplicates=60%"], &[&a, &b]);
    assert_eq!(code, Some(0), "{stdout}");
    // A threshold can also be stricter than the default.
    let mut slower = first.clone();
    slower.totals.telemetry.e2e_latency = duration(16_000);
    let c = write(tmp.path(), "c", &slower);
    assert_eq!(compare(&[&a, &c]).0, Some(0), "15 → 16 ms is within 20 %");
    let (code, json) = compare_json(&["--threshold", "e2e_latency.p99=+500us"], &[&a, &c]);
    assert_eq!(code, Some(1));
    assert_eq!(json["regressions"][0]["figure"], "e2e_latency.p99");
    assert_eq!(json["regressions"][0]["rule"], "absolute");
    assert_eq!(json["regressions"][0]["threshold"], "+500us");

    for (bad, part) in [
        ("lost_qso0=0", "unknown figure `lost_qso0`"),
        ("duplicates=lots", "`lots` is not a number"),
        ("e2e_latency.p99=+5", "`e2e_latency.p99` is a duration"),
        ("duplicates", "`duplicates` is not FIGURE=LIMIT"),
        ("wek.duplicates=off", "no run has a profile `wek`"),
    ] {
        let (code, stdout, stderr) = compare_with(&["--threshold", bad], &[&a, &b]);
        assert_eq!(code, Some(2), "{bad}: {stdout}{stderr}");
        assert!(stderr.contains("--threshold"), "{bad}: {stderr}");
        assert!(stderr.contains(part), "{bad}: {stderr}");
        assert_eq!(stdout, "");
    }
}

#[test]
fn a_later_run_in_error_is_flagged_and_a_baseline_in_error_is_warned_of() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = write(tmp.path(), "a", &baseline());
    let mut errored = baseline();
    errored.push_error(report::Incident::untimed(
        report::Cause::BrokerExited,
        "the broker exited",
    ));
    let b = write(tmp.path(), "b", &errored);
    let (code, stdout, stderr) = compare(&[&a, &b]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("| verdict | pass | **error** ▲ |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict pass → error (error: the run cannot vouch for its figures)"),
        "{stdout}"
    );
    assert!(stderr.contains("has verdict error"), "{stderr}");
    let (code, stdout, stderr) = compare(&[&b, &a]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stderr.contains("the baseline"), "{stderr}");
    assert!(stdout.contains("> **⚠ Warning:** the baseline"), "{stdout}");
}

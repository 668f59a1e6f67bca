//! The command line on reports written by the test: `mqtt-chaos compare`.

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

fn slos() -> Vec<Slo> {
    vec![Slo {
        profile: None,
        figure: "lost_after_ack".into(),
        stat: None,
        op: SloOp::Eq,
        limit: 0.0,
        text: "lost_after_ack = \"= 0\"".into(),
    }]
}

fn baseline() -> Report {
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

fn write(dir: &Path, name: &str, r: &Report) -> std::path::PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).expect("run dir");
    report::write_json(r, &run.join("report.json")).expect("report.json");
    run
}

fn compare(runs: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-chaos"))
        .arg("compare")
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

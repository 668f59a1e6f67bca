//! `mqtt-chaos merge` on shard directories written with the library's own
//! writers: the merged report adds the shards up, `mqtt-chaos report`
//! rebuilds it unchanged, and the exit codes say pass, fail, error or bad
//! input (naming the directory and the field).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use mqtt_chaos::health::{Cause, Incident};
use mqtt_chaos::ledger::latency_histogram;
use mqtt_chaos::metrics::hlog::{self, IntervalLog};
use mqtt_chaos::metrics::interval::{Histograms, IntervalRecord, ProfileInterval, RunInfo};
use mqtt_chaos::metrics::{LinkFigures, LinkRecord};
use mqtt_chaos::plan::Plan;
use mqtt_chaos::shard::{plan_digest, Shard, ShardInfo};
use serde_json::Value;

const SCENARIO: &str = r#"
name = "merge-cli"
duration = "30s"
seed = 5
interval = "10s"

[profiles.good]
keepalive = "5s"

[profiles.weak]
keepalive = "5s"
ack = { wait = false }

[[fleets]]
name = "a"
count = 3
profile = "good"
group = "ga"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]

[[fleets]]
name = "b"
count = 2
profile = "weak"
group = "gb"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]

[slo]
lost_after_ack = "= 0"
"#;

fn whole() -> Plan {
    let s = mqtt_chaos::scenario::load_str(Path::new("merge-cli.toml"), SCENARIO)
        .expect("scenario parses");
    Plan::resolve(&s, None)
}

fn run_info(shard: Shard) -> RunInfo {
    let whole = whole();
    let plan = whole.shard(shard);
    RunInfo {
        schema_version: 1,
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at: "2026-11-25T22:00:00Z".into(),
        versions: mqtt_chaos::report::Versions {
            harness: "mqtt-chaos test".into(),
            broker: "embedded".into(),
            faults: "embedded".into(),
        },
        devices: plan.devices.len() as u32,
        profiles: plan
            .devices_by_profile()
            .into_iter()
            .map(|(p, ids)| (p.to_string(), ids.len() as u32))
            .collect(),
        histograms: Histograms::NAMES
            .iter()
            .map(|f| (f.to_string(), hlog::hlog_file(f)))
            .collect(),
        resolved_scenario: plan.scenario.clone(),
        intervals_format: mqtt_chaos::metrics::interval::FORMAT,
        shard: Some(ShardInfo {
            index: shard.index,
            count: shard.count,
            plan_digest: plan_digest(&whole),
            start_unix_ms: 1_795_644_000_000,
        }),
        merged_from: Vec::new(),
    }
}

/// Interval `i` of a shard: `sent` telemetry of profile `good`, all
/// delivered but `lost`, latency samples `samples` (µs), a zombie time.
fn interval(i: u64, last: bool, sent: i64, lost: i64, samples: &[u64]) -> IntervalRecord {
    let mut profiles = BTreeMap::new();
    for (name, scale) in [("good", 1), ("weak", 2)] {
        let mut p = ProfileInterval::default();
        p.telemetry.sent = sent * scale;
        p.telemetry.acked = sent * scale;
        p.telemetry.delivered = sent * scale - lost;
        p.telemetry.lost_after_ack = lost;
        p.connected = Some(1);
        let mut h = latency_histogram();
        for s in samples {
            h.record(s * scale as u64).unwrap();
        }
        p.histograms.e2e_latency = h;
        let mut link = LinkFigures::new();
        link.zombie_exposed = true;
        link.zombie.record(1_000_000 * (i + 1)).unwrap();
        p.link_figures = Some(LinkRecord::encode(&link));
        profiles.insert(name.to_string(), p);
    }
    IntervalRecord {
        index: i,
        start_ns: i * 10_000_000_000,
        end_ns: (i + 1) * 10_000_000_000,
        last,
        unobserved_ns: 0,
        unknown_device_events: 0,
        errors: vec![],
        faults: vec![],
        profiles,
        link_totals: None,
    }
}

fn write_shard(dir: &Path, shard: Shard, records: &[IntervalRecord]) -> PathBuf {
    let d = dir.join(format!("shard-{}", shard.index));
    std::fs::create_dir_all(&d).unwrap();
    hlog::write_run_info(&d, &run_info(shard)).unwrap();
    let mut log = IntervalLog::create(
        &d,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_644_000),
    )
    .unwrap();
    for r in records {
        log.append(r).unwrap();
    }
    d
}

/// Two shards: shard 0 with 3 regular intervals and its last, shard 1
/// with one regular interval fewer.
fn two_shards(dir: &Path, lost: i64) -> (PathBuf, PathBuf) {
    let s0 = write_shard(
        dir,
        Shard { index: 0, count: 2 },
        &[
            interval(0, false, 10, 0, &[1_000, 2_000]),
            interval(1, false, 10, 0, &[3_000]),
            interval(2, false, 10, 0, &[]),
            interval(3, true, 5, 0, &[9_000]),
        ],
    );
    let s1 = write_shard(
        dir,
        Shard { index: 1, count: 2 },
        &[
            interval(0, false, 7, 0, &[1_500]),
            interval(1, false, 7, lost, &[2_500, 2_600]),
            interval(2, true, 9, 0, &[50_000]),
        ],
    );
    (s0, s1)
}

fn mqtt_chaos(args: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtt-chaos"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn merge_adds_the_shards_up_and_report_rebuilds_the_same_from_the_merged_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (s0, s1) = two_shards(tmp.path(), 0);
    let out = tmp.path().join("merged");
    let (code, stdout, stderr) =
        mqtt_chaos(&[Path::new("merge"), &s1, &s0, Path::new("--out"), &out]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let r = report(&out);
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["devices"], 5);
    // good: 35 + 23 sent; weak twice that.
    assert_eq!(r["profiles"]["good"]["sent"], 58);
    assert_eq!(r["profiles"]["weak"]["sent"], 116);
    assert_eq!(r["totals"]["sent"], 174);
    assert_eq!(r["totals"]["delivered"], 174);
    // Histograms add: 4 + 4 samples per profile.
    assert_eq!(r["profiles"]["good"]["e2e_latency"]["count"], 8);
    assert_eq!(r["profiles"]["good"]["e2e_latency"]["max_us"], 50_015);
    // Link figures of every interval added: one zombie sample each.
    assert_eq!(r["profiles"]["good"]["zombie_time"]["count"], 7);
    assert_eq!(r["totals"]["zombie_time"]["count"], 14);
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert!(run.get("shard").is_none());
    assert_eq!(run["devices"], 5);
    assert_eq!(run["profiles"]["good"], 3);
    assert_eq!(run["merged_from"].as_array().unwrap().len(), 2);
    for f in [
        "intervals.jsonl",
        "e2e_latency.hlog",
        "report.md",
        "junit.xml",
        "report.html",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The merged directory is a run directory: `report` rebuilds the same.
    let (code, _, stderr) = mqtt_chaos(&[Path::new("report"), &out]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report(&out), r);
}

#[test]
fn merge_exits_1_on_a_breach_and_3_when_a_shard_was_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let (s0, s1) = two_shards(tmp.path(), 2);
    let out = tmp.path().join("m1");
    let (code, _, _) = mqtt_chaos(&[Path::new("merge"), &s0, &s1, Path::new("--out"), &out]);
    assert_eq!(code, Some(1));
    // 2 lost in each profile of shard 1.
    assert_eq!(report(&out)["profiles"]["good"]["lost_after_ack"], 2);
    assert_eq!(report(&out)["totals"]["lost_after_ack"], 4);

    // Shard 1 killed after its first interval, with an incident of its own.
    let tmp = tempfile::tempdir().unwrap();
    let (s0, _) = two_shards(tmp.path(), 0);
    let mut first = interval(0, false, 7, 0, &[1_500]);
    first.errors.push(Incident::new(
        Some(4.0),
        Cause::ScheduleLag,
        "device 1 behind",
    ));
    let s1 = write_shard(tmp.path(), Shard { index: 1, count: 2 }, &[first]);
    let (code, stdout, stderr) = mqtt_chaos(&[Path::new("merge"), &s0, &s1]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    // Default output: merged-<scenario>-<start> beside the first shard.
    let out = tmp.path().join("merged-merge-cli-20261125T220000Z");
    assert!(stdout.contains(&out.display().to_string()), "{stdout}");
    let r = report(&out);
    assert_eq!(r["verdict"], "error");
    let messages: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"shard 1/2: device 1 behind"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("shard 1/2: the run stopped without writing its end")),
        "{messages:?}"
    );
    assert_eq!(r["profiles"]["good"]["sent"], 42);
}

#[test]
fn merge_refuses_with_exit_2_naming_the_directory_and_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (s0, s1) = two_shards(tmp.path(), 0);
    let check = |args: &[&Path], wants: &[&str]| {
        let (code, stdout, stderr) = mqtt_chaos(args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        for w in wants {
            assert!(stderr.contains(w), "{args:?}: wants {w:?} in {stderr}");
        }
    };
    let m = Path::new("merge");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    check(&[m, &s0, &empty], &["empty", "run.json"]);
    check(&[m, &s0], &["shard 1/2: missing"]);
    check(&[m, &s0, &s0], &["shard 0/2 is given twice"]);
    check(
        &[m, &s0, &s1, Path::new("--out"), &s1],
        &["--out is one of the shards"],
    );

    // A run of the whole fleet; another seed.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut info = run_info(Shard { index: 1, count: 2 });
    info.shard = None;
    hlog::write_run_info(&other, &info).unwrap();
    check(&[m, &s0, &other], &["other", "no `shard`"]);
    info = run_info(Shard { index: 1, count: 2 });
    info.seed = 6;
    hlog::write_run_info(&other, &info).unwrap();
    check(&[m, &s0, &other], &["other", "seed is 6"]);

    // A broken intervals.jsonl line.
    let jsonl = s1.join("intervals.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    std::fs::write(&jsonl, format!("{{\"index\": oops}}\n{text}")).unwrap();
    check(&[m, &s0, &s1], &["shard-1", "intervals.jsonl:1:"]);
}

//! Window reports (`mqtt-chaos report --from --to`) of a real run with
//! faults in several windows: the reports of consecutive windows that tile
//! the run add up to the whole run's `report.json`, count figure by count
//! figure (and duration figures' sample counts), and none is negative.
//!
//! Every figure counts in the interval where its subject started (a
//! message at its `t_intended`, an episode at its start), whenever it was
//! decided: the faults here straddle interval ends (5 s intervals, faults
//! at 3.5 s, 13.5 s and 22 s), QoS 1 acks and retries land after the cut,
//! and the QoS 0 losses are only decided after the drain, so the run's
//! files must carry amendments of earlier intervals for the sums to hold.

use std::path::Path;
use std::time::Duration;

use mqtt_chaos::report::{self, figures::additive_counts, Report};
use mqtt_chaos::runner;
use serde_json::Value;

use crate::run::broker;
use crate::support;

fn scenario() -> String {
    r#"
name = "window-reports"
duration = "30s"
drain = "4s"
seed = 5
interval = "5s"
min_outage = "2s"
settle = "2s"

[profiles.acked]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
clean_session = false
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true
ack = { wait = true, timeout = "2s", retries = 2 }

[profiles.fire]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true
ack = { wait = false }

[[fleets]]
name = "a"
count = 3
profile = "acked"
group = "ga"
streams = [{ name = "t", topic = "tele/{device}", qos = 1, rate = 5.0, payload_size = 64 }]
commands = [{ name = "control", topic = "control/{device}", qos = 1, rate = 1.0 }]

[[fleets]]
name = "b"
count = 3
profile = "fire"
group = "gb"
streams = [{ name = "t", topic = "tele/{device}", qos = 0, rate = 5.0, payload_size = 64 }]

# Each fault straddles an interval's end.
[[timeline]]
at = "3500ms"
duration = "3s"
kind = "link_down"
target = "ga"

[[timeline]]
at = "13500ms"
duration = "3s"
kind = "link_down"
target = "gb"

[[timeline]]
at = "22s"
duration = "4s"
kind = "blackhole"
target = "ga"
"#
    .to_string()
}

/// A report as JSON, through text, as `report.json` reads.
fn json_of(r: &Report) -> Value {
    serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap()
}

async fn consecutive_windows_add_up_to_the_whole_run(broker_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario()).unwrap();
    let out = dir.path().join("out");
    let opts = runner::RunOptions {
        broker: Some(broker_name.into()),
        ..support::run_options(path, out.clone())
    };
    let finished = runner::run(&opts).await.expect("the run runs");
    assert!(
        finished.environment_error.is_none(),
        "{:?}",
        finished.environment_error
    );
    let whole: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();

    // The run had what the windows must share out: late fates (amendments
    // of earlier intervals), commands, reconnects, every fault applied.
    assert!(whole["totals"]["commands"]["sent"].as_u64().unwrap() > 0);
    assert!(
        whole["totals"]["reconnect_after_heal"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    let faults = whole["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 3);
    assert!(faults.iter().all(|f| f["applied"] == true), "{faults:?}");
    let text = std::fs::read_to_string(out.join("intervals.jsonl")).unwrap();
    assert!(
        text.lines().any(|l| l.contains("\"amends\"")),
        "no interval was amended by a later cut"
    );

    // The whole run rebuilt from its files alone is its report.
    assert_eq!(json_of(&report::rebuild(&out, None).unwrap()), whole);

    // Windows of 10 s tiling the run (the last one holds the drain).
    let edges = [0u64, 10, 20, 3_600];
    let mut sum = std::collections::BTreeMap::<String, u64>::new();
    let mut lost_qos0 = Vec::new();
    for w in edges.windows(2) {
        let window = (Duration::from_secs(w[0]), Duration::from_secs(w[1]));
        let r = report::rebuild(&out, Some(window))
            .unwrap_or_else(|e| panic!("window {}s..{}s: {e}", w[0], w[1]));
        // No figure of a window sums below zero (it would be shown as 0
        // and named in its errors).
        assert!(
            r.errors.iter().all(|e| !e.message.contains("sums to")),
            "window {}s..{}s: {:?}",
            w[0],
            w[1],
            r.errors
        );
        let j = json_of(&r);
        lost_qos0.push(j["totals"]["lost_qos0"].as_u64().unwrap());
        for (k, v) in additive_counts(&j) {
            *sum.entry(k).or_default() += v;
        }
    }
    let whole_counts = additive_counts(&whole);
    let differ: Vec<String> = whole_counts
        .iter()
        .filter(|(k, v)| sum.get(*k).copied().unwrap_or(0) != **v)
        .map(|(k, v)| {
            format!(
                "{k}: whole {v}, windows {}",
                sum.get(k).copied().unwrap_or(0)
            )
        })
        .chain(
            sum.iter()
                .filter(|(k, _)| !whole_counts.contains_key(*k))
                .map(|(k, v)| format!("{k}: only in the windows ({v})")),
        )
        .collect();
    assert!(differ.is_empty(), "windows do not add up: {differ:#?}");
    // gb's QoS 0 losses (Mosquitto drops what its clients send while their
    // link is down; the embedded path queues it in the client) are those
    // of its outage, 13.5 s – 16.5 s: in the window 10 s – 20 s, though
    // decided only after the drain.
    if whole["totals"]["lost_qos0"].as_u64().unwrap() > 0 {
        assert!(lost_qos0[1] > 0, "{lost_qos0:?}");
    }

    // The command line gives the same window report.
    let status = std::process::Command::new(support::bin())
        .args(["report", "--from", "10s", "--to", "20s"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        matches!(status.status.code(), Some(0) | Some(1)),
        "{}",
        support::said(&status)
    );
    let cli = support::report(&out.join("window-10s-20s"));
    let lib = json_of(
        &report::rebuild(
            &out,
            Some((Duration::from_secs(10), Duration::from_secs(20))),
        )
        .unwrap(),
    );
    assert_eq!(additive_counts(&cli), additive_counts(&lib));
    check_no_negative_interval(&out);
}

/// Every interval, folded with its amendments, has no negative count.
fn check_no_negative_interval(out: &Path) {
    let intervals = mqtt_chaos::metrics::hlog::read_intervals(out).unwrap();
    for r in &intervals {
        for (name, p) in &r.profiles {
            for (dir, c) in [("", p.telemetry), ("commands.", p.commands)] {
                let (_, negative) = c.to_ledger();
                assert!(
                    negative.is_empty(),
                    "interval {} profile {name}: {dir}{negative:?}",
                    r.index
                );
            }
        }
    }
}

on_both_brokers! {
    consecutive_window_reports_add_up_to_the_whole_run => consecutive_windows_add_up_to_the_whole_run;
}

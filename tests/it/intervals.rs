//! The time series of a run (`run.json`, `intervals.jsonl`, one `.hlog` per
//! duration figure): a finished run's report rebuilt from it alone equals
//! its `report.json`, and a run killed with SIGKILL still leaves the
//! intervals it completed, from which a report is rebuilt.
//!
//! `intervals.jsonl` holds interval lines and, before each, the amendments
//! its cut made to earlier intervals (`"amends": k`): the figures of
//! interval `k` are its line's plus those of the amendments of `k` written
//! before the last interval line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use mqtt_chaos::report::{self, Report};
use mqtt_chaos::runner;
use serde_json::Value;

use crate::support;

/// Two profiles, interval 1 s, a link outage on one group.
fn scenario(name: &str, duration: &str) -> String {
    format!(
        r#"
name = "{name}"
duration = "{duration}"
drain = "2s"
seed = 11
interval = "1s"

[profiles.steady]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "1s", jitter = 0.0 }}
clean_session = false
ack = {{ wait = true, timeout = "3s", retries = 3 }}

[profiles.fire]
keepalive = "2s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "1s", jitter = 0.0 }}
ack = {{ wait = false }}

[[fleets]]
name = "s"
count = 2
profile = "steady"
group = "ga"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 10.0
payload_size = 32

[[fleets]]
name = "f"
count = 2
profile = "fire"
group = "gb"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 10.0
payload_size = 32

[[timeline]]
at = "2s"
duration = "1500ms"
kind = "link_down"
target = "ga"

[slo]
lost_after_ack = "= 0"
"#
    )
}

/// A report as JSON, through text, so both sides of a comparison go
/// through the same float parsing.
fn json_of(r: &Report) -> Value {
    serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap()
}

/// Every complete line of `intervals.jsonl`: up to the last interval line
/// (amendments after it belong to a cut that did not finish).
fn all_lines(dir: &Path) -> Vec<Value> {
    let mut all: Vec<Value> = std::fs::read_to_string(dir.join("intervals.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let complete = all
        .iter()
        .rposition(|l| l.get("amends").is_none())
        .map_or(0, |i| i + 1);
    all.truncate(complete);
    all
}

/// The interval lines.
fn lines(dir: &Path) -> Vec<Value> {
    all_lines(dir)
        .into_iter()
        .filter(|l| l.get("amends").is_none())
        .collect()
}

/// The lines about the intervals `inside` (their own and their amendments).
fn about(all: &[Value], inside: &[Value]) -> Vec<Value> {
    let ids: Vec<&Value> = inside.iter().map(|l| &l["index"]).collect();
    all.iter()
        .filter(|l| ids.contains(&l.get("amends").unwrap_or(&l["index"])))
        .cloned()
        .collect()
}

/// Histograms a line writes to each `.hlog`: one per profile it names.
fn histograms_of(lines: &[Value]) -> usize {
    lines
        .iter()
        .map(|l| l["profiles"].as_object().unwrap().len())
        .sum()
}

/// Every histogram of an interval log, read with the crate's own reader:
/// (tag, start, histogram).
fn hlog(path: &Path) -> Vec<(String, Duration, Histogram<u64>)> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let Ok(LogEntry::Interval(h)) = entry else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .unwrap();
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(raw))
            .unwrap();
        out.push((
            h.tag().unwrap().as_str().to_string(),
            h.start_timestamp(),
            hist,
        ));
    }
    out
}

/// Sum of a counter of one profile over lines (an amendment without the
/// profile changed nothing of it).
fn sum(lines: &[Value], profile: &str, path: &[&str]) -> i64 {
    lines
        .iter()
        .filter(|l| l.get("amends").is_none() || l["profiles"].get(profile).is_some())
        .map(|l| {
            let mut v = &l["profiles"][profile];
            for p in path {
                v = &v[*p];
            }
            v.as_i64()
                .unwrap_or_else(|| panic!("{profile}.{path:?} in {l}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_rebuilt_from_the_interval_files_equals_report_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario("rebuilt", "6s")).unwrap();
    let out = dir.path().join("out");
    let opts = support::run_options(path, out.clone());
    let finished = runner::run(&opts).await.expect("the run runs");
    assert!(
        finished.environment_error.is_none(),
        "{:?}",
        finished.environment_error
    );

    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // From the time series alone.
    std::fs::remove_file(out.join("report.json")).unwrap();
    std::fs::remove_file(out.join("report.md")).unwrap();
    let rebuilt = report::rebuild(&out, None).expect("rebuilt");
    assert_eq!(json_of(&rebuilt), written);

    // What the comparison covered: traffic, a loss-free steady profile, a
    // reconnect after the outage, the fault.
    let steady = &rebuilt.profiles["steady"];
    assert!(steady.telemetry.delivered > 50, "{steady:?}");
    assert!(steady.reconnect_after_heal.is_some());
    assert_eq!(rebuilt.faults.len(), 1);

    // One line a second, for 6 s + 2 s drain, and the last one at the end.
    let all = all_lines(&out);
    let ls = lines(&out);
    assert!((8..=11).contains(&ls.len()), "{} intervals", ls.len());
    assert_eq!(ls.iter().filter(|l| l["last"] == true).count(), 1);
    assert_eq!(ls.last().unwrap()["last"], true);

    // Every hlog has one histogram per profile per line, and they add
    // up to the report's histogram.
    for (file, profile, figure) in [
        ("e2e_latency.hlog", "steady", &steady.telemetry.e2e_latency),
        ("ack_latency.hlog", "steady", &steady.telemetry.ack_latency),
    ] {
        let h = hlog(&out.join(file));
        assert_eq!(h.len(), histograms_of(&all), "{file}");
        let mut total = Histogram::<u64>::new(3).unwrap();
        for (_, _, x) in h.iter().filter(|(t, _, _)| t == profile) {
            total.add(x).unwrap();
        }
        assert_eq!(total.len(), figure.count, "{file}");
        assert_eq!(Some(total.max()), figure.max_us, "{file}");
    }

    // A window: the intervals starting in [0, 3 s).
    let window = report::rebuild(&out, Some((Duration::ZERO, Duration::from_secs(3)))).unwrap();
    let inside: Vec<Value> = ls
        .iter()
        .filter(|l| l["start_ns"].as_u64().unwrap() < 3_000_000_000)
        .cloned()
        .collect();
    assert_eq!(inside.len(), 3);
    for figure in ["sent", "acked", "delivered", "lost_after_ack"] {
        assert_eq!(
            json_of(&window)["profiles"]["steady"][figure]
                .as_i64()
                .unwrap(),
            sum(&about(&all, &inside), "steady", &[figure]),
            "{figure}"
        );
    }
    assert!(window.totals.telemetry.sent < rebuilt.totals.telemetry.sent);
}

#[test]
fn a_run_killed_with_sigkill_keeps_its_completed_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario("killed", "30s")).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(support::bin())
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) for two complete intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&out).len() < 2 {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no two intervals within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!out.join("report.json").exists());

    let all = all_lines(&out);
    let ls = lines(&out);
    assert!(ls.len() >= 2);
    assert!(ls.iter().all(|l| l["last"] == false));
    let rebuilt = report::rebuild(&out, None).expect("rebuilt from the files alone");
    let end_ns = ls.last().unwrap()["end_ns"].as_u64().unwrap();
    assert_eq!(
        rebuilt.duration_s,
        Duration::from_nanos(end_ns).as_secs_f64()
    );
    assert!(rebuilt.totals.telemetry.sent > 0);

    let profiles = ["steady", "fire"];
    for p in profiles {
        for figure in [
            "sent",
            "acked",
            "delivered",
            "lost_after_ack",
            "lost_unacked",
            "silent_loss",
            "duplicates",
            "reordered",
        ] {
            let f = &json_of(&rebuilt)["profiles"][p][figure];
            assert_eq!(f.as_i64().unwrap(), sum(&all, p, &[figure]), "{p}.{figure}");
        }
    }
    // The histograms: readable by the crate's reader, one per profile per
    // complete line (a torn trailing one at most), summing to the figure.
    for (file, figure) in [
        ("e2e_latency.hlog", "e2e_latency"),
        ("ack_latency.hlog", "ack_latency"),
    ] {
        let h = hlog(&out.join(file));
        let n = histograms_of(&all);
        assert!(h.len() >= n, "{file}: {} histograms", h.len());
        for p in profiles {
            let mut total = Histogram::<u64>::new(3).unwrap();
            for (tag, start, x) in h.iter().take(n) {
                assert!(start.as_secs() < 30);
                if tag == p {
                    total.add(x).unwrap();
                }
            }
            assert_eq!(
                total.len(),
                samples(&rebuilt.profiles[p], figure),
                "{p}.{figure}"
            );
        }
    }
}

/// The sample count of a telemetry duration figure.
fn samples(f: &report::Figures, figure: &str) -> u64 {
    match figure {
        "e2e_latency" => f.telemetry.e2e_latency.count,
        "ack_latency" => f.telemetry.ack_latency.count,
        other => panic!("no histogram {other}"),
    }
}

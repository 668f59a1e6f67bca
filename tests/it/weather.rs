//! Field weather (`[[weather]]`): every device its own seeded random faults,
//! through a fault proxy of its own. Known answers with exact counts: each
//! blip (shorter than `min_outage`) of a device with a plain will is one
//! false offline report of that device and of no other; each silent drop
//! longer than `min_outage` is one true offline report.

use std::collections::BTreeMap;

use mqtt_chaos::history::{DeviceEvent, Event, FaultEvent};
use serde_json::Value;

use crate::run::{broker, run};

const SCENARIO: &str = r#"
name = "weather"
duration = "56s"
drain = "3s"
seed = 5
min_outage = "10s"

[profiles.p]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "500ms", jitter = 0.0 }
clean_session = false
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true
ack = { wait = true, timeout = "3s", retries = 3 }

[[fleets]]
name = "dev"
count = 4
profile = "p"
group = "field"
[[fleets.streams]]
name = "t"
topic = "tele/{device}"
qos = 1
rate = 2.0

[[weather]]
target = "field"
from = "3s"
blip = { per_hour = 200.0, duration = "2s..3s" }
silent_drop = { per_hour = 60.0, duration = "12s..14s" }
"#;

/// The weather events of report.json: (kind, device, scheduled at).
fn events(report: &Value) -> Vec<(String, String, f64)> {
    report["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["weather"] == 0)
        .map(|f| {
            assert_eq!(f["applied"], true, "{f}");
            let devices = f["devices"].as_array().unwrap();
            assert_eq!(devices.len(), 1, "{f}");
            (
                f["kind"].as_str().unwrap().to_string(),
                devices[0].as_str().unwrap().to_string(),
                f["scheduled_at_s"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_blip_is_one_false_offline_and_each_long_silent_drop_one_true_offline() {
    let Some(b) = broker("mosquitto") else { return };
    let r = run(SCENARIO, b).await;
    let rep = r.report();
    let ev = events(&rep);
    let blips = ev.iter().filter(|e| e.0 == "link_down").count() as u64;
    let drops = ev.iter().filter(|e| e.0 == "blackhole").count() as u64;
    // The seed gives both kinds (the plan is pure: the same every run).
    assert!(blips >= 2 && drops >= 1, "{ev:?}");
    // Per device, its events are apart (one at a time, a second between).
    let mut by_device: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (_, d, at) in &ev {
        by_device.entry(d.as_str()).or_default().push(*at);
    }
    assert!(by_device.len() >= 2, "weather on one device only: {ev:?}");

    // Every event cost its own device exactly one connection, and nobody
    // else any: the faults were per device.
    let names: Vec<String> = (0..4).map(|i| format!("dev-{i:04}")).collect();
    let mut losses: BTreeMap<String, u64> = BTreeMap::new();
    for e in &r.events {
        if let Event::Device {
            device,
            what: DeviceEvent::ConnectionLost { .. },
            ..
        } = e
        {
            *losses.entry(names[*device as usize].clone()).or_default() += 1;
        }
    }
    for name in &names {
        let want = ev.iter().filter(|e| &e.1 == name).count() as u64;
        assert_eq!(
            losses.get(name).copied().unwrap_or(0),
            want,
            "{name}: losses vs its weather {ev:?}"
        );
    }
    // Known answers: blips are false, the long drops true.
    let t = &rep["totals"];
    assert_eq!(t["false_offline"], blips, "{t}");
    assert_eq!(t["true_offline"], drops, "{t}");
    assert_eq!(t["missed_offline"], 0, "{t}");
    assert_eq!(t["lost_after_ack"], 0, "{t}");
    assert_eq!(rep["min_outage_s"], 10.0);
    let rate = t["false_offline_rate"].as_f64().unwrap();
    assert!((rate - blips as f64 / (blips + drops) as f64).abs() < 1e-12);
    let ci = &t["false_offline_rate_interval"];
    assert!(ci["low"].as_f64().unwrap() <= rate && rate <= ci["high"].as_f64().unwrap());
    // Every applied weather fault has its confirmation in the history.
    let applied = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Fault {
                    what: FaultEvent::Applied { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(applied, ev.len());
}

#[test]
fn a_bad_weather_section_names_its_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    let bad = SCENARIO.replace("per_hour = 60.0", "per_hour = -1.0");
    std::fs::write(&p, &bad).unwrap();
    let out = std::process::Command::new(crate::support::bin())
        .arg("validate")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", crate::support::said(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("weather[0].silent_drop.per_hour"), "{err}");
    assert!(err.contains(&format!("{}:", p.display())), "{err}");
}

/// Weather split across two worker processes: each shard applies the
/// events of its own devices only, and the merged run holds every event of
/// the whole fleet's plan, applied, with the same known answers as one
/// process (each blip one false offline, each long drop one true offline).
#[test]
fn weather_split_across_workers_merges_into_every_event_of_the_plan() {
    if crate::support::mosquitto().is_none() {
        return;
    }
    let sc = mqtt_chaos::scenario::load_str(std::path::Path::new("w.toml"), SCENARIO).unwrap();
    let plan = mqtt_chaos::plan::Plan::resolve(&sc, None);
    let mut planned: Vec<(String, String, f64)> = plan
        .faults
        .iter()
        .filter(|f| f.weather.is_some())
        .map(|f| {
            (
                f.kind.name().to_string(),
                plan.devices[f.devices[0] as usize].name.clone(),
                f.at.as_secs_f64(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    std::fs::write(&p, SCENARIO).unwrap();
    let out_dir = dir.path().join("out");
    let out = std::process::Command::new(crate::support::bin())
        .args([
            "run",
            "--workers",
            "2",
            "--broker",
            "mosquitto",
            "--quiet",
            "--out",
        ])
        .arg(&out_dir)
        .arg(&p)
        .output()
        .unwrap();
    let rep = crate::support::report(&out_dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{rep}",
        crate::support::said(&out)
    );
    assert_eq!(rep["errors"], serde_json::json!([]), "{rep}");
    let mut ev = events(&rep);
    let order = |a: &(String, String, f64), b: &(String, String, f64)| {
        (&a.1, a.2).partial_cmp(&(&b.1, b.2)).unwrap()
    };
    ev.sort_by(order);
    planned.sort_by(order);
    assert_eq!(ev.len(), planned.len(), "{ev:?} vs {planned:?}");
    for (got, want) in ev.iter().zip(&planned) {
        assert_eq!((&got.0, &got.1), (&want.0, &want.1));
        assert!((got.2 - want.2).abs() < 1e-3, "{got:?} vs {want:?}");
    }
    // Each shard recorded only the events of the devices it held.
    for i in 0..2 {
        let part = crate::support::report(&out_dir.join(format!("shard-{i}")));
        let held: Vec<String> = (0..4)
            .filter(|k| k % 2 == i)
            .map(|k| format!("dev-{k:04}"))
            .collect();
        for (_, device, _) in events(&part) {
            assert!(
                held.contains(&device),
                "shard {i} applied {device}'s weather"
            );
        }
    }
    let blips = ev.iter().filter(|e| e.0 == "link_down").count() as u64;
    let drops = ev.iter().filter(|e| e.0 == "blackhole").count() as u64;
    let t = &rep["totals"];
    assert_eq!(t["false_offline"], blips, "{t}");
    assert_eq!(t["true_offline"], drops, "{t}");
    assert_eq!(t["missed_offline"], 0, "{t}");
    assert_eq!(t["lost_after_ack"], 0, "{t}");
}

/// `scenarios/seed-claim.toml` shortened for CI: 30 devices per
/// configuration (three of them) for 150 s under ten times the weather. Checks what the
/// full run's table rests on: every weather event applied, the table first,
/// each rate with its exact 95 % Wilson interval, and the orderings the
/// configurations must show (the wrong one's stale offline and zombie time,
/// the recommended one's clean will).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_claim_scenario_shortened_gives_its_table_with_intervals() {
    let Some(b) = broker("mosquitto") else { return };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-claim.toml");
    let full = std::fs::read_to_string(&path).unwrap();
    let text: String = full
        .lines()
        .map(|l| {
            let l = l
                .replace("count = 1000", "count = 30")
                .replace("count = 800", "count = 30")
                .replace("duration = \"20m\"", "duration = \"150s\"");
            // Ten times the weather: `per_hour = X` → `per_hour = 10X`.
            let mut out = String::new();
            let mut rest = l.as_str();
            while let Some(i) = rest.find("per_hour = ") {
                let (head, tail) = rest.split_at(i + "per_hour = ".len());
                out.push_str(head);
                let end = tail
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(tail.len());
                let v: f64 = tail[..end].parse().unwrap();
                out.push_str(&format!("{:?}", v * 10.0));
                rest = &tail[end..];
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect();
    assert_ne!(text, full);
    let r = run(&text, b).await;
    let rep = r.report();
    assert_ne!(rep["verdict"], "error", "{}", rep["errors"]);
    let weather: Vec<&Value> = rep["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["weather"].is_null())
        .collect();
    assert!(weather.len() >= 30, "{} weather events", weather.len());
    assert!(weather.iter().all(|f| f["applied"] == true));

    for name in ["wrong", "recommended"] {
        let p = &rep["profiles"][name];
        let (t, f) = (
            p["true_offline"].as_u64().unwrap(),
            p["false_offline"].as_u64().unwrap(),
        );
        assert!(t + f > 0, "{name}: no offline report");
        let rate = p["false_offline_rate"].as_f64().unwrap();
        assert!((rate - f as f64 / (t + f) as f64).abs() < 1e-12, "{name}");
        let want = mqtt_chaos::metrics::rate::wilson95(f, t + f).unwrap();
        let ci = &p["false_offline_rate_interval"];
        assert!(
            (ci["low"].as_f64().unwrap() - want.low).abs() < 1e-12,
            "{name} {ci}"
        );
        assert!(
            (ci["high"].as_f64().unwrap() - want.high).abs() < 1e-12,
            "{name} {ci}"
        );
        assert!(want.low <= rate && rate <= want.high);
        // Per device-day of the run, its drain (25 s) included.
        let days = |s: f64| 30.0 * s / 86_400.0;
        let per_day = p["false_offline_per_device_day"].as_f64().unwrap();
        let (lo, hi) = (f as f64 / days(185.0), f as f64 / days(174.9));
        assert!(
            lo <= per_day && per_day <= hi,
            "{name}: {per_day} not in [{lo}, {hi}]"
        );
    }
    let (w, rec) = (&rep["profiles"]["wrong"], &rep["profiles"]["recommended"]);
    let max = |p: &Value, fig: &str| p[fig]["max_us"].as_u64().unwrap_or(0);
    // No `online` after a reconnect: the wrong one's devices stay shown
    // offline; the recommended one's never longer than its SLO.
    assert!(max(w, "stale_offline_time") > 15_000_000, "{w}");
    assert!(max(rec, "stale_offline_time") <= 15_000_000, "{rec}");
    // No ping timeout: the wrong one's clients stay blind far longer.
    assert!(
        max(w, "zombie_time") > max(rec, "zombie_time"),
        "{w}\n{rec}"
    );
    assert_eq!(rec["missed_offline"], 0, "{rec}");
    assert_eq!(rec["lost_after_ack"], 0, "{rec}");
    // The template at MQTT 5: its will waits 30 s, so a blip reports
    // nothing, and it has fewer false reports than the 3.1.1 template.
    let v5 = &rep["profiles"]["recommended_mqtt5"];
    assert!(
        v5["false_offline"].as_u64().unwrap() < rec["false_offline"].as_u64().unwrap(),
        "{v5}\n{rec}"
    );
    // Not its missed_offline: Mosquitto 2.0.11 publishes delayed wills
    // late or never once several are pending (README, MQTT 5 profiles;
    // scripts/will-delay-check.py shows it with mosquitto_sub alone), so
    // some deaths go unreported within the window.
    assert_eq!(v5["lost_after_ack"], 0, "{v5}");

    // report.md opens with the table, and says why the wrong rate flatters.
    let md = mqtt_chaos::report::markdown(&r.finished.report);
    let table = md
        .find("## Offline reports under field weather")
        .expect("the table");
    assert!(table < md.find("## Which configuration survives?").unwrap());
    assert!(
        md.contains("**Note:** wrong left devices shown offline"),
        "{md}"
    );
}

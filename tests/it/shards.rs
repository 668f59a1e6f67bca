//! Fleet capacity: devices without link faults connect straight to the
//! broker, a fleet the process cannot hold is refused with the numbers, and
//! a fleet split into shards (by hand with `--shard`, or `--workers`)
//! merges into what one process measures. Every run goes through the real
//! binary against a real Mosquitto.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, report, said, scenario, totals, unix_ms_in, OwnMosquitto};

fn mqtt_chaos(args: &[&str]) -> Output {
    Command::new(support::bin())
        .args(args)
        .output()
        .expect("mqtt-chaos runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn shards_started_by_hand_merge_into_what_one_process_measures() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    let m = OwnMosquitto::start(
        binary,
        "max_queued_messages 0\nmax_inflight_messages 0\n",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", &scenario(""));
    let s = s.to_str().unwrap();
    let broker = m.spec();

    // Given a start instant too, the whole fleet runs each device's
    // schedule as the shards do (shard::FLEET_LEAD): the counts are exact.
    let whole = dir.path().join("whole");
    let o = mqtt_chaos(&[
        "run",
        s,
        "--broker",
        &broker,
        "--quiet",
        "--start-at",
        "+2s",
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));

    // Both shards at once, with one common start instant.
    let at = unix_ms_in(Duration::from_secs(4)).to_string();
    let running: Vec<_> = (0..2)
        .map(|i| {
            Command::new(support::bin())
                .args(["run", s, "--broker", &broker, "--quiet"])
                .args(["--shard", &format!("{i}/2"), "--start-at", &at])
                .arg("--out")
                .arg(dir.path().join(format!("t{i}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in running {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    }
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("t{i}"))).collect();
    let merged = dir.path().join("merged");
    let o = mqtt_chaos(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));

    let (w, mr) = (report(&whole), report(&merged));
    let parts: Vec<Value> = shards.iter().map(|d| report(d)).collect();
    assert_eq!(mr["devices"], 6);
    assert_eq!(mr["devices"], w["devices"]);
    for p in &parts {
        assert_eq!(p["devices"], 3, "each shard holds half the fleet");
        assert_eq!(p["errors"], serde_json::json!([]), "{p}");
    }
    // Every slot of the schedule is published, in one process or in two.
    assert_eq!(totals(&mr, "sent"), totals(&w, "sent"));
    assert_eq!(
        totals(&mr, "sent"),
        parts.iter().map(|p| totals(p, "sent")).sum::<u64>()
    );
    for r in [&w, &mr] {
        assert_eq!(totals(r, "delivered"), totals(r, "sent"), "{r}");
        assert_eq!(totals(r, "lost_after_ack"), 0);
        assert_eq!(r["errors"], serde_json::json!([]), "{r}");
        assert_eq!(r["verdict"], "pass");
    }
    let faults = mr["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["kind"], "link_down");
    assert_eq!(faults[0]["applied"], true);
    // The merged directory is a run directory: its report rebuilds the same.
    let rebuilt = dir.path().join("rebuilt");
    copy_dir(&merged, &rebuilt);
    let o = mqtt_chaos(&["report", rebuilt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    assert_eq!(
        totals(&report(&rebuilt), "delivered"),
        totals(&mr, "delivered")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_workers_run_reads_like_one_run_and_shard_0_applies_the_broker_fault() {
    if support::mosquitto().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        r#"
[[timeline]]
at = "6s"
duration = "1s"
kind = "broker_restart"
"#,
    )
    .replace(
        "[profiles.p]",
        "[broker]\npersistence = true\n\n[profiles.p]",
    );
    let s = write(dir.path(), "s.toml", &text);
    let out = dir.path().join("run");
    let o = mqtt_chaos(&[
        "run",
        s.to_str().unwrap(),
        "--broker",
        "mosquitto",
        "--workers",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(0), "{}\n{r}", said(&o));
    assert_eq!(r["devices"], 6);
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let kinds: Vec<&str> = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["applied"], true, "{f}");
            assert!(f["healed_at_s"].is_number(), "{f}");
            f["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, ["link_down", "broker_restart"]);
    let parts: Vec<Value> = (0..2)
        .map(|i| report(&out.join(format!("shard-{i}"))))
        .collect();
    assert_eq!(
        totals(&r, "sent"),
        parts.iter().map(|p| totals(p, "sent")).sum::<u64>()
    );
    assert_eq!(totals(&r, "lost_after_ack"), 0, "{r}");
    for i in 0..2 {
        let info: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("shard-{i}/run.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(info["shard"]["index"], i);
        assert_eq!(info["shard"]["count"], 2);
    }
}

#[test]
fn shards_are_refused_without_a_common_start_or_a_shared_broker() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", &scenario(""));
    let s = s.to_str().unwrap();
    let o = mqtt_chaos(&["run", s, "--shard", "1/2", "--broker", "tcp://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("--start-at"), "{}", said(&o));
    let o = mqtt_chaos(&["run", s, "--shard", "1/2", "--start-at", "+5s"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("share shard 0's broker"), "{}", said(&o));
    let o = mqtt_chaos(&["run", s, "--shard", "2/2", "--start-at", "+5s"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("below 2"), "{}", said(&o));
    let o = mqtt_chaos(&["run", s, "--workers", "2", "--shard", "0/2"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
}

/// `count` devices in one group; `linked`: with a link fault on it.
fn fleet(count: u32, linked: bool, rate: f64, duration: &str) -> String {
    let fault = if linked {
        "[[timeline]]\nat = \"5s\"\nduration = \"1s\"\nkind = \"latency\"\nlatency = \"10ms\"\n"
    } else {
        ""
    };
    format!(
        r#"
name = "capacity"
duration = "{duration}"
drain = "5s"

[profiles.p]
keepalive = "30s"
ping_timeout = "10s"
connect_timeout = "20s"
reconnect = {{ initial = "1s", max = "5s", jitter = 0.5 }}
ack = {{ wait = true, timeout = "10s", retries = 3 }}

[[fleets]]
name = "d"
count = {count}
profile = "p"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = {rate}

{fault}
"#
    )
}

#[test]
fn a_fleet_the_process_cannot_hold_is_refused_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    // 7 000 devices through the embedded proxy: 3 descriptors each.
    let s = write(dir.path(), "s.toml", &fleet(7000, true, 0.1, "30s"));
    let o = mqtt_chaos(&["validate", s.to_str().unwrap(), "--broker", "mosquitto"]);
    let soft = soft_nofile_after_raise();
    if soft >= 21_100 {
        return; // this machine holds it
    }
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let e = said(&o);
    assert!(e.contains("open files"), "{e}");
    assert!(e.contains("--workers N"), "{e}");
    // The same fleet with no link fault connects straight to the broker.
    let s = write(dir.path(), "s2.toml", &fleet(7000, false, 0.1, "30s"));
    let o = mqtt_chaos(&["validate", s.to_str().unwrap(), "--broker", "mosquitto"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
}

fn soft_nofile_after_raise() -> u64 {
    mqtt_chaos::limits::raise_nofile()
        .map(|(s, _)| s)
        .unwrap_or(0)
}

#[test]
fn ten_thousand_devices_run_without_running_out_of_files() {
    if support::mosquitto().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", &fleet(10_000, false, 0.1, "20s"));
    let out = dir.path().join("run");
    let o = mqtt_chaos(&[
        "run",
        s.to_str().unwrap(),
        "--broker",
        "mosquitto",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = report(&out);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", said(&o), r["errors"]);
    assert_eq!(r["devices"], 10_000);
    assert_eq!(r["errors"], serde_json::json!([]));
    let sent = totals(&r, "sent");
    assert!(sent >= 10_000, "0.1 msg/s for 20 s each: {sent}");
    assert_eq!(totals(&r, "delivered"), sent);
    assert_eq!(totals(&r, "lost_unacked"), 0);
}

/// The embedded proxy opens its upstream connections from the source
/// addresses in turn (each is one more ephemeral port range towards the
/// broker); devices without link faults connect straight, from the
/// kernel's choice. Mosquitto logs the address of every connection.
#[test]
fn proxied_connections_come_from_the_source_addresses_and_nothing_is_lost() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    let m = OwnMosquitto::start(binary, "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", &scenario(""));
    let out = dir.path().join("run");
    let o = mqtt_chaos(&[
        "run",
        s.to_str().unwrap(),
        "--broker",
        &m.spec(),
        "--quiet",
        "--source-addresses",
        "127.0.0.2-127.0.0.3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let r = report(&out);
    assert_eq!(totals(&r, "delivered"), totals(&r, "sent"), "{r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let log = m.log();
    let from = |ip: &str, prefix: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("New client connected from {ip}:")))
            .filter(|l| l.contains(&format!(" as {prefix}")))
            .count()
    };
    // Fleet a (group g1, link fault) through the proxy: three first
    // connections and three after the link_down, from both addresses in
    // turn (exactly 3 and 3 unless a connection was accepted and dropped
    // before its CONNECT, which takes its turn unlogged).
    let (two, three) = (from("127.0.0.2", "a-"), from("127.0.0.3", "a-"));
    assert!(
        two >= 1 && three >= 1 && two + three >= 6,
        "{two} + {three}\n{log}"
    );
    assert_eq!(from("127.0.0.1", "a-"), 0, "{log}");
    // Fleet b (g2, no link fault) straight to the broker.
    assert_eq!(
        from("127.0.0.2", "b-") + from("127.0.0.3", "b-"),
        0,
        "{log}"
    );
    assert!(from("127.0.0.1", "b-") >= 3, "{log}");
}

#[test]
fn proxy_server_refuses_a_source_address_it_cannot_bind() {
    let o = mqtt_chaos(&[
        "proxy-server",
        "--listen",
        "127.0.0.1:0",
        "--source-addresses",
        "192.0.2.1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--source-addresses: cannot open a connection from 192.0.2.1"),
        "{err}"
    );
}

#[test]
fn source_addresses_that_cannot_be_used_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", &scenario(""));
    let s = s.to_str().unwrap();
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding it
    // fails locally, nothing is sent.
    for (addresses, faults, expect) in [
        (
            "192.0.2.1",
            "embedded",
            "cannot open a connection from 192.0.2.1",
        ),
        (
            "127.0.0.2,127.0.0.2",
            "embedded",
            "127.0.0.2 is listed twice",
        ),
        (
            "127.0.0.x",
            "embedded",
            "\"127.0.0.x\" is not an IP address",
        ),
        (
            "127.0.0.2",
            "toxiproxy=http://127.0.0.1:9",
            "apply to the embedded fault engine",
        ),
    ] {
        let o = mqtt_chaos(&[
            "validate",
            s,
            "--faults",
            faults,
            "--source-addresses",
            addresses,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", said(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--source-addresses") && err.contains(expect),
            "{addresses}: {err}"
        );
    }
}

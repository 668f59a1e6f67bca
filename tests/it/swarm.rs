//! A distributed run on an existing engine: Docker Swarm (built into the
//! Docker engine). A broker service, a service of three replicas of the
//! harness image whose task slot is the shard (`MQTT_CHAOS_SHARD=slot=
//! {{.Task.Slot}}/3`), one common start instant, a shared (bind-mounted)
//! directory; then `mqtt-chaos merge` of the three shard directories,
//! checked against the same fleet run by one replica as one process.
//!
//! The services use the host's network (127.0.0.1 only); the swarm is
//! initialised for the test and left again when the test made it. Joining
//! and leaving a swarm rebuilds Docker's networking, which breaks the
//! published ports of containers other tests run at that moment: this is
//! a test binary of its own, and cargo runs test binaries one at a time.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{self, report, said, scenario, totals as telemetry, unix_ms_in};

const HARNESS_IMAGE: &str = "mqtt-chaos/mqtt-chaos:local";
const BROKER_IMAGE: &str = "mqtt-chaos/mosquitto-standin:local";

fn docker(args: &[&str]) -> Result<String, String> {
    let o = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Services to remove and the swarm to leave (if this test made it).
struct Swarm {
    made: bool,
    services: Vec<String>,
}

impl Swarm {
    fn join() -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap();
        let made = state != "active";
        if made {
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]).unwrap();
        }
        Swarm {
            made,
            services: Vec::new(),
        }
    }

    fn service(&mut self, name: &str, args: &[&str]) {
        let mut all = vec!["service", "create", "--detach", "--name", name];
        all.extend_from_slice(args);
        docker(&all).unwrap();
        self.services.push(name.to_string());
    }

    /// Wait until every task of `name` has ended; their final states.
    fn ended(&self, name: &str, replicas: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let states = docker(&[
                "service",
                "ps",
                name,
                "--format",
                "{{.CurrentState}}|{{.Error}}",
            ])
            .unwrap_or_default();
            let states: Vec<String> = states.lines().map(str::to_string).collect();
            let done = |s: &String| {
                ["Complete", "Failed", "Rejected", "Shutdown"]
                    .iter()
                    .any(|k| s.starts_with(k))
            };
            if states.len() >= replicas && states.iter().all(done) {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "service {name} not done within {within:?}: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        for s in &self.services {
            let _ = docker(&["service", "rm", s]);
        }
        if self.made {
            let _ = docker(&["swarm", "leave", "--force"]);
        }
    }
}

#[test]
fn a_three_shard_swarm_service_merges_into_what_one_process_measures() {
    if support::docker().is_none() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("mqtt-chaos-swarm-")
        .tempdir_in("/tmp")
        .unwrap();
    let runs = dir.path();
    std::fs::write(runs.join("s.toml"), scenario("")).unwrap();
    let port = support::free_port();
    std::fs::write(
        runs.join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 0\n"
        ),
    )
    .unwrap();
    let mount = format!("type=bind,src={},dst=/runs", runs.display());
    let tag = format!("mqtt-chaos-swarm-{}", std::process::id());
    let mut swarm = Swarm::join();
    swarm.service(
        &format!("{tag}-broker"),
        &[
            "--network",
            "host",
            "--restart-condition",
            "none",
            "--mount",
            &mount,
            BROKER_IMAGE,
            "-c",
            "/runs/mosquitto.conf",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker service did not listen"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let broker = format!("tcp://127.0.0.1:{port}");

    // Three replicas, one argument list: the slot picks the shard, and
    // `{shard}` in --out its directory.
    let start = unix_ms_in(Duration::from_secs(15));
    let shards = format!("{tag}-shards");
    swarm.service(
        &shards,
        &[
            "--replicas",
            "3",
            "--network",
            "host",
            "--restart-condition",
            "none",
            "--mount",
            &mount,
            "--env",
            "MQTT_CHAOS_SHARD=slot={{.Task.Slot}}/3",
            "--env",
            &format!("MQTT_CHAOS_START_AT={start}"),
            HARNESS_IMAGE,
            "run",
            "/runs/s.toml",
            "--broker",
            &broker,
            "--quiet",
            "--out",
            "/runs/shard-{shard}",
        ],
    );
    let states = swarm.ended(&shards, 3, Duration::from_secs(150));
    assert!(
        states.iter().all(|s| s.starts_with("Complete")),
        "{states:?}"
    );

    // The same fleet in one process, with a start instant of its own (so
    // each device's schedule is the one it has in a shard).
    let whole = format!("{tag}-whole");
    let start = unix_ms_in(Duration::from_secs(10));
    let start_env = format!("MQTT_CHAOS_START_AT={start}");
    swarm.service(
        &whole,
        &[
            "--network",
            "host",
            "--restart-condition",
            "none",
            "--mount",
            &mount,
            "--env",
            &start_env,
            HARNESS_IMAGE,
            "run",
            "/runs/s.toml",
            "--broker",
            &broker,
            "--quiet",
            "--out",
            "/runs/whole",
        ],
    );
    let states = swarm.ended(&whole, 1, Duration::from_secs(120));
    assert!(states[0].starts_with("Complete"), "{states:?}");

    let merged = runs.join("merged");
    let mut args = vec!["merge".to_string()];
    for i in 0..3 {
        args.push(runs.join(format!("shard-{i}")).display().to_string());
    }
    args.extend(["--out".into(), merged.display().to_string()]);
    let o = Command::new(support::bin()).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let (m, w) = (report(&merged), report(&runs.join("whole")));
    assert_eq!(m["devices"], 6);
    assert_eq!(m["devices"], w["devices"]);
    for i in 0..3 {
        let s = report(&runs.join(format!("shard-{i}")));
        assert_eq!(s["devices"], 2, "shard {i}");
    }
    // Exact where the answer is exact (duplicates depend on when each
    // reconnect happened, in any run).
    for f in ["sent", "delivered", "lost_after_ack", "lost_unacked"] {
        assert_eq!(
            telemetry(&m, f),
            telemetry(&w, f),
            "{f}: merged {m}\nwhole {w}"
        );
    }
    assert_eq!(telemetry(&m, "delivered"), telemetry(&m, "sent"));
    assert_eq!(m["errors"], serde_json::json!([]), "{m}");
    assert_eq!(m["verdict"], w["verdict"]);
    assert_eq!(m["faults"][0]["kind"], "link_down");
    assert_eq!(m["faults"][0]["applied"], true);
}

//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Set by `.ci/run`: a test that needs a real broker or Docker must not skip.
pub const REQUIRE_ENV: &str = "MQTT_CHAOS_REQUIRE_BACKENDS";

/// True when skipping a test for want of a backend is a failure.
pub fn skips_fail() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Skip (return `None`) or, under `.ci/run`, fail when `what` is missing.
pub fn skip_or_fail(what: &str) -> Option<()> {
    if skips_fail() {
        panic!("{what} is not available, and {REQUIRE_ENV} says this test must run");
    }
    eprintln!("skipped: {what} is not available (set {REQUIRE_ENV}=1 to make this a failure)");
    None
}

/// The Mosquitto binary, if installed.
pub fn mosquitto() -> Option<PathBuf> {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        let p = PathBuf::from(p);
        if p.exists() {
            return Some(p);
        }
    }
    skip_or_fail("mosquitto")?;
    None
}

/// The mqtt-chaos binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mqtt-chaos"))
}

/// One test per broker for each `name => check`: `check(broker)` runs on the
/// embedded broker and on Mosquitto (skipped, or failed under CI, without
/// it). The calling module has `broker` (from `run`) in scope.
#[allow(unused_macros)]
macro_rules! on_both_brokers {
    ($($name:ident => $check:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_the_embedded_broker() {
                    super::$check("embedded").await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_mosquitto() {
                    if super::broker("mosquitto").is_some() {
                        super::$check("mosquitto").await
                    }
                }
            }
        )*
    };
}

/// Docker with the stand-in images built (once per test process, by
/// `scripts/standin-images.sh` with this build's binary); `None` (a skip)
/// when Docker is absent outside CI, a failure under CI.
pub fn docker() -> Option<()> {
    use std::sync::OnceLock;
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let info = std::process::Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "docker info: {}",
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            Err(e) => return Err(format!("docker: {e}")),
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/standin-images.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(bin())
            .output()
            .map_err(|e| format!("{script}: {e}"))?;
        if !out.status.success() {
            // Docker is there but the images cannot be built: a real failure.
            panic!(
                "{script} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    });
    match ready {
        Ok(()) => Some(()),
        Err(e) => {
            skip_or_fail(&format!("Docker ({e})"))?;
            None
        }
    }
}

/// The stand-in images; [`docker`] built them already (once per process).
pub fn standin_images() {
    docker().expect("the stand-in images are built once Docker answers");
}

/// `docker compose` (the plugin) or `docker-compose` (standalone), whichever
/// answers, as program and leading arguments.
pub fn compose() -> Option<Vec<String>> {
    let works = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&["docker", "compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if works(&["docker-compose", "version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        skip_or_fail("docker compose or docker-compose")?;
        None
    }
}

/// Names of Docker objects (`ps` or `network ls`) matching `filter`.
pub fn docker_names(kind: &[&str], filter: &str) -> Vec<String> {
    let format = if kind == ["ps", "-a"] {
        "{{.Names}}"
    } else {
        "{{.Name}}"
    };
    let out = std::process::Command::new("docker")
        .args(kind)
        .args(["--filter", filter, "--format", format])
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A free TCP port on 127.0.0.1 (closed again; a race is possible but rare).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The options of a quiet test run of `scenario` into `out` on the
/// embedded broker and fault engine, with this build's binary; a test
/// changes what it needs (`RunOptions { history, ..run_options(..) }`).
pub fn run_options(scenario: PathBuf, out: PathBuf) -> mqtt_chaos::runner::RunOptions {
    mqtt_chaos::runner::RunOptions {
        scenario,
        out: Some(out),
        broker: Some("embedded".into()),
        quiet: true,
        exe: bin(),
        ..Default::default()
    }
}

/// Children of a process (all its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(c.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// A Mosquitto child with the given extra config lines; killed on drop.
pub struct OwnMosquitto {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl OwnMosquitto {
    /// Start it and wait (bounded) until it accepts connections.
    pub fn start(binary: PathBuf, extra: &str, files: &[(&str, &str)]) -> OwnMosquitto {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\n{extra}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut m = OwnMosquitto { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("mosquitto exited ({st}): {}", m.log());
            }
            assert!(std::time::Instant::now() < deadline, "{}", m.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        m
    }

    pub fn spec(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for OwnMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shard tests' scenario (tests/it/shards.rs, tests/swarm.rs).
/// Two groups of three devices; `g1` has a link fault, `g2` none; QoS 1
/// waited for and retried, so nothing acknowledged may be lost.
pub fn scenario(timeline_extra: &str) -> String {
    format!(
        r#"
name = "shards"
duration = "10s"
drain = "4s"
seed = 11

[profiles.p]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "1s", jitter = 0.0 }}
clean_session = false
will = {{ topic = "status/{{device}}", qos = 1, retain = true }}
online_republish = true
ack = {{ wait = true, timeout = "3s", retries = 5 }}

[[fleets]]
name = "a"
count = 3
profile = "p"
group = "g1"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 5.0

[[fleets]]
name = "b"
count = 3
profile = "p"
group = "g2"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 5.0

[[timeline]]
at = "3s"
duration = "2s"
kind = "link_down"
target = "g1"
{timeline_extra}
"#
    )
}

/// A run directory's report.json.
pub fn report(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("report.json").display()));
    serde_json::from_str(&text).unwrap()
}

/// What a finished command said, for assertion messages.
pub fn said(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A total telemetry count of a report.json.
pub fn totals(r: &serde_json::Value, field: &str) -> u64 {
    r["totals"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("totals.{field} in {r}"))
}

/// Unix time in ms, `d` from now (a common start instant).
pub fn unix_ms_in(d: std::time::Duration) -> u64 {
    (std::time::SystemTime::now() + d)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

//! A verdict that never lies: each way the harness or its environment can
//! fail a run, reproduced against the real binary, gives verdict `error` in
//! report.json, report.md, report.html and junit.xml, with its cause, and
//! the exit code 3 (130 for a signal) — never a PASS.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::scenario;
use crate::support;

/// The verdict and one cause, the same in all four outputs and the exit code.
fn assert_error_everywhere(out: &Path, code: Option<i32>, want_code: i32, cause: &str) {
    assert_eq!(code, Some(want_code), "exit code");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "error", "{json:#}");
    let errors = json["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["cause"] == cause),
        "no {cause} in {errors:#?}"
    );
    for e in errors {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.lines().next().unwrap().contains("**ERROR**"),
        "report.md: {md}"
    );
    assert!(md.contains(&format!("`{cause}`")), "report.md: {md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("class=\"verdict error\""), "report.html");
    assert!(
        html.contains(&format!("<code>{cause}</code>")),
        "report.html"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!("<error type=\"{cause}\"")),
        "junit.xml: {junit}"
    );
    // The run's errors count at the top and in the harness's own suite
    // (each profile's suite counts its SLOs).
    let top = junit
        .lines()
        .find(|l| l.starts_with("<testsuites "))
        .expect("testsuites");
    assert!(!top.contains("errors=\"0\""), "junit.xml: {junit}");
    let harness = junit
        .lines()
        .find(|l| l.contains(": harness\""))
        .expect("the harness suite");
    assert!(!harness.contains("errors=\"0\""), "junit.xml: {junit}");
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// Start `mqtt-chaos run` on the scenario `text` with `args`; wait until
/// its history shows `needle` (bounded).
fn start_run(dir: &Path, text: &str, args: &[&str], needle: &str) -> Child {
    let p = dir.join("s.toml");
    std::fs::write(&p, text).unwrap();
    let history = dir.join("history.jsonl");
    let child = Command::new(support::bin())
        .args(["run", "--quiet", "--history"])
        .arg(&history)
        .arg("--out")
        .arg(dir.join("out"))
        .args(args)
        .arg(&p)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&history).is_ok_and(|h| h.contains(needle)) {
        assert!(Instant::now() < deadline, "the run never showed {needle}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_broker_killed_from_outside_for_good_makes_the_run_error_and_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario("broker-gone", "", "").replace("duration = \"12s\"", "duration = \"60s\"");
    let mut child = start_run(dir.path(), &text, &[], "\"published\"");
    let pid = child.id();
    let broker = support::children(pid);
    assert_eq!(
        broker.len(),
        1,
        "the embedded broker is the run's one child"
    );
    let killed = Instant::now();
    signal(broker[0], nix::sys::signal::Signal::SIGKILL);
    let status = child.wait().unwrap();
    // The run stops once it sees the broker gone, not after its 60 s.
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "the run went on for {:?}",
        killed.elapsed()
    );
    let out = dir.path().join("out");
    assert_error_everywhere(&out, status.code(), 3, "broker_exited");
}

#[test]
fn a_harness_stopped_mid_run_is_behind_its_schedule_in_every_output() {
    // SIGSTOP for 2.5 s (a starved or suspended harness): every slot due
    // meanwhile is published late, which is the harness's doing, not the
    // client's.
    let dir = tempfile::tempdir().unwrap();
    let text = scenario("stalled", "", "").replace("duration = \"12s\"", "duration = \"8s\"");
    let mut child = start_run(dir.path(), &text, &[], "\"published\"");
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), nix::sys::signal::Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2500));
    signal(child.id(), nix::sys::signal::Signal::SIGCONT);
    let status = child.wait().unwrap();
    let out = dir.path().join("out");
    assert_error_everywhere(&out, status.code(), 3, "schedule_lag");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let lag = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cause"] == "schedule_lag")
        .unwrap();
    assert!(
        lag["message"].as_str().unwrap().starts_with("the fleet"),
        "{lag}"
    );
}

#[test]
fn sigterm_mid_run_is_an_interrupted_run_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario("terminated", "", "");
    let mut child = start_run(dir.path(), &text, &[], "\"published\"");
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_error_everywhere(&dir.path().join("out"), status.code(), 130, "interrupted");
}

#[test]
fn sigint_in_every_phase_is_never_dropped() {
    // At once (while the broker starts), a little later (proxies, the
    // observer), and mid-run: each run ends with 130, never with a verdict
    // of its own after its full time.
    for delay_ms in [0u64, 5, 12, 40, 150, 400] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, scenario("sigint", "", "")).unwrap();
        let mut child = Command::new(support::bin())
            .args(["run", "--quiet", "--out"])
            .arg(dir.path().join("out"))
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The run directory is claimed right after the signal handling is
        // installed and before anything starts: from then on no signal may
        // be lost.
        let claimed = Instant::now() + Duration::from_secs(10);
        while !dir.path().join("out").exists() {
            assert!(
                Instant::now() < claimed,
                "the run never claimed its directory"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let sent = Instant::now();
        signal(child.id(), nix::sys::signal::Signal::SIGINT);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "SIGINT after {delay_ms} ms");
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "SIGINT after {delay_ms} ms took {:?}",
            sent.elapsed()
        );
        if dir.path().join("out/report.json").exists() {
            assert_error_everywhere(&dir.path().join("out"), status.code(), 130, "interrupted");
        }
    }
}

#[test]
fn a_killed_run_rebuilt_from_its_files_says_it_is_partial_and_up_to_when() {
    let dir = tempfile::tempdir().unwrap();
    // Intervals of 1 s, so a few are complete when the run is killed; a
    // fault due after the kill.
    let tl = "[[timeline]]\nat = \"10s\"\nduration = \"1s\"\nkind = \"link_down\"";
    let text = scenario("killed", tl, "").replace("seed = 7", "seed = 7\ninterval = \"1s\"");
    let mut child = start_run(dir.path(), &text, &[], "\"published\"");
    let out = dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Three interval lines (the amendments of earlier ones between them).
    let intervals = |t: String| t.lines().filter(|l| !l.contains("\"amends\"")).count();
    while std::fs::read_to_string(out.join("intervals.jsonl")).map_or(0, intervals) < 3 {
        assert!(Instant::now() < deadline, "no intervals written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let broker = support::children(child.id());
    signal(child.id(), nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    for b in broker {
        // The broker child dies with the harness (its parent-death signal).
        let gone = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(format!("/proc/{b}")).is_ok() && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let rebuilt = Command::new(support::bin())
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert_error_everywhere(&out, rebuilt.status.code(), 3, "incomplete");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let e = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["cause"] == "incomplete")
        .unwrap();
    let upto = e["at_s"].as_f64().unwrap();
    assert!((3.0..10.0).contains(&upto), "complete up to {upto} s");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("timeline[0] link_down at 10s"), "{msg}");
}

#[test]
fn two_runs_started_together_with_the_default_directory_never_share_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.toml");
    std::fs::write(
        &p,
        scenario("same-second", "", "")
            .replace("duration = \"12s\"", "duration = \"2s\"")
            .replace("drain = \"3s\"", "drain = \"1s\""),
    )
    .unwrap();
    let spawn = || {
        Command::new(support::bin())
            .args(["run", "--quiet"])
            .arg(&p)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in dirs {
        let text = std::fs::read_to_string(d.join("intervals.jsonl")).unwrap();
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
        // A rebuild of each reads one run.
        let r = Command::new(support::bin())
            .arg("report")
            .arg(&d)
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

#[test]
fn a_second_run_into_a_busy_out_directory_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut first = start_run(dir.path(), &scenario("busy", "", ""), &[], "\"published\"");
    let p = dir.path().join("s.toml");
    let second = Command::new(support::bin())
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another run") && err.contains(&first.id().to_string()),
        "{err}"
    );
    signal(first.id(), nix::sys::signal::Signal::SIGINT);
    assert_eq!(first.wait().unwrap().code(), Some(130));
}

//! `scripts/nightly.sh` for real, night after night, with a stand-in for
//! `mqtt-chaos run` (it writes a prepared report.json and exits as its
//! verdict says) and the real `mqtt-chaos compare`: the baseline is kept
//! only from a passing run without a regression, and each outcome has its
//! exit code.

use std::path::{Path, PathBuf};
use std::process::Command;

use mqtt_chaos::report::{self, Report};

use crate::cli::{baseline, slos, write};

/// A `mqtt-chaos` whose `run` copies `$FAKE_REPORT` to `--out` (and notes
/// its arguments in `$FAKE_ARGS`), exiting `$FAKE_EXIT`; every other
/// command is the real binary's.
fn fake_bin(dir: &Path) -> PathBuf {
    let path = dir.join("mqtt-chaos");
    let script = format!(
        r##"#!/bin/sh
if [ "$1" = run ]; then
  echo "$@" >"$FAKE_ARGS"
  shift
  out=
  while [ $# -gt 0 ]; do
    case "$1" in --out) out=$2; shift 2 ;; *) shift ;; esac
  done
  if [ -n "$FAKE_REPORT" ]; then
    mkdir -p "$out"
    cp "$FAKE_REPORT" "$out/report.json"
    echo "# the run's report.md" >"$out/report.md"
  fi
  exit "$FAKE_EXIT"
fi
exec '{}' "$@"
"##,
        env!("CARGO_BIN_EXE_mqtt-chaos")
    );
    std::fs::write(&path, script).expect("write the stand-in");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

struct Night {
    code: Option<i32>,
    stderr: String,
    summary: String,
}

/// One night: `report` as the run's (`None`: none written), the run
/// exiting `exit`.
fn night(tmp: &Path, n: u32, report: Option<&Path>, exit: u8, extra: &[&str]) -> Night {
    let summary = tmp.join("summary.md");
    let _ = std::fs::remove_file(&summary);
    let scenario = tmp.join("scenario.toml");
    std::fs::write(&scenario, "# a stand-in: the fake run never reads it\n").expect("scenario");
    let out = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/nightly.sh"))
        .args([
            "--out",
            &tmp.join(format!("night-{n}")).display().to_string(),
        ])
        .args(extra)
        .arg(&scenario)
        .args(["--seed", "5"])
        .env("MQTT_CHAOS_BIN", fake_bin(tmp))
        .env("MQTT_CHAOS_BASELINE_DIR", tmp.join("baseline"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env(
            "FAKE_REPORT",
            report.map(Path::as_os_str).unwrap_or_default(),
        )
        .env("FAKE_EXIT", exit.to_string())
        .env("FAKE_ARGS", tmp.join("args"))
        .output()
        .expect("bash runs");
    Night {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// The seed of the baseline's report (each night's report has its own).
fn baseline_night(tmp: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(tmp.join("baseline/report.json")).ok()?;
    let r: Report = serde_json::from_str(&text).expect("a report");
    Some(r.seed)
}

/// A report of night `n` (its seed), as `f` changes it, written as a file.
fn prepared(tmp: &Path, n: u64, f: impl FnOnce(&mut Report)) -> PathBuf {
    let mut r = baseline();
    r.seed = n;
    f(&mut r);
    r.check(&slos());
    let dir = write(tmp, &format!("prepared-{n}"), &r);
    dir.join("report.json")
}

#[test]
fn the_nightly_keeps_only_a_passing_run_without_regression_as_the_baseline() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let tmp = tmp.path();

    // Night 1: no baseline yet; the passing run becomes it.
    let good = prepared(tmp, 1, |_| {});
    let n = night(tmp, 1, Some(&good), 0, &[]);
    assert_eq!(n.code, Some(0), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(1));
    assert!(
        n.summary
            .contains("## mqtt-chaos nightly: the run passed (no baseline to compare with)"),
        "{}",
        n.summary
    );
    assert!(n.summary.contains("# the run's report.md"), "{}", n.summary);
    let args = std::fs::read_to_string(tmp.join("args")).expect("args");
    assert!(
        args.contains("--seed 5"),
        "run arguments pass through: {args}"
    );
    assert!(!tmp.join("baseline/.mqtt-chaos.lock").exists());

    // Night 2: passes, but more duplicates: a regression, not promoted.
    let worse = prepared(tmp, 2, |r| r.totals.telemetry.duplicates = 7);
    let n = night(tmp, 2, Some(&worse), 0, &[]);
    assert_eq!(n.code, Some(1), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(1));
    assert!(
        n.summary.contains("regressed against the baseline"),
        "{}",
        n.summary
    );
    assert!(
        n.summary.contains("total: duplicates 0 → 7 (grew from 0)"),
        "{}",
        n.summary
    );
    assert!(tmp.join("night-2/compare.json").is_file());
    assert!(tmp.join("night-2/nightly.md").is_file());

    // The same night with a threshold allowing it: promoted.
    let n = night(tmp, 3, Some(&worse), 0, &["--threshold", "duplicates=+10"]);
    assert_eq!(n.code, Some(0), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(2));

    // Night 4: an SLO breached (exit 1 of the run): 3, not promoted.
    let failed = prepared(tmp, 4, |r| r.totals.telemetry.lost_after_ack = 1);
    let n = night(tmp, 4, Some(&failed), 1, &[]);
    assert_eq!(n.code, Some(3), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(2));
    assert!(n.summary.contains("the run failed"), "{}", n.summary);

    // Night 5: a harness error (exit 3 of the run): 4, not promoted.
    let errored = prepared(tmp, 5, |r| {
        r.errors.push(report::Incident::untimed(
            report::Cause::BrokerExited,
            "the broker exited",
        ))
    });
    let n = night(tmp, 5, Some(&errored), 3, &[]);
    assert_eq!(n.code, Some(4), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(2));
    assert!(n.summary.contains("has verdict error"), "{}", n.summary);

    // Night 6: the environment failed before any report: 4.
    let n = night(tmp, 6, None, 3, &[]);
    assert_eq!(n.code, Some(4), "{}", n.stderr);
    assert!(n.summary.contains("No report was written"), "{}", n.summary);
    assert_eq!(baseline_night(tmp), Some(2));

    // Night 7: another scenario: cannot be compared (2) until the baseline
    // is reset deliberately.
    let other = prepared(tmp, 7, |r| r.scenario = "another".into());
    let n = night(tmp, 7, Some(&other), 0, &[]);
    assert_eq!(n.code, Some(2), "{}", n.stderr);
    assert!(
        n.stderr.contains("the runs cannot be compared"),
        "{}",
        n.stderr
    );
    assert_eq!(baseline_night(tmp), Some(2));
    let n = night(tmp, 8, Some(&other), 0, &["--reset-baseline"]);
    assert_eq!(n.code, Some(0), "{}", n.stderr);
    assert_eq!(baseline_night(tmp), Some(7));

    // A bad threshold is refused before anything runs.
    let _ = std::fs::remove_file(tmp.join("args"));
    let n = night(tmp, 9, Some(&good), 0, &["--threshold", "nonsense=1%"]);
    assert_eq!(n.code, Some(2), "{}", n.stderr);
    assert!(
        n.stderr.contains("unknown figure `nonsense`"),
        "{}",
        n.stderr
    );
    assert!(!tmp.join("args").exists(), "the run did not start");
}

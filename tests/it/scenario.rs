//! Integration tests: scenario files — located errors, the `validate`
//! command, and the scenarios shipped in `scenarios/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mqtt_chaos::scenario::{
    error_at, lint, load, load_str, locate, slos, FaultKind, ScenarioError,
};

/// A valid scenario, one line per entry so tests can name line numbers.
const GOOD: &[&str] = &[
    r#"name = "located""#,                                                     // 1
    r#"duration = "60s""#,                                                     // 2
    r#""#,                                                                     // 3
    r#"[profiles.recommended]"#,                                               // 4
    r#"keepalive = "5s""#,                                                     // 5
    r#"ping_timeout = "2s""#,                                                  // 6
    r#"will = { topic = "status/{device}", qos = 1, retain = true }"#,         // 7
    r#"online_republish = true"#,                                              // 8
    r#""#,                                                                     // 9
    r#"[[fleets]]"#,                                                           // 10
    r#"name = "a""#,                                                           // 11
    r#"count = 4"#,                                                            // 12
    r#"profile = "recommended""#,                                              // 13
    r#"streams = [{ name = "telemetry", topic = "t/{device}", rate = 1.0 }]"#, // 14
    r#""#,                                                                     // 15
    r#"[[timeline]]"#,                                                         // 16
    r#"at = "10s""#,                                                           // 17
    r#"duration = "5s""#,                                                      // 18
    r#"kind = "latency""#,                                                     // 19
    r#"latency = "200ms""#,                                                    // 20
    r#""#,                                                                     // 21
    r#"[slo]"#,                                                                // 22
    r#"lost_after_ack = "= 0""#,                                               // 23
];

fn text(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

/// GOOD with line `n` (1-based) replaced.
fn with_line(n: usize, line: &str) -> String {
    let mut v = GOOD.to_vec();
    v[n - 1] = line;
    text(&v)
}

fn errors(text: &str) -> ScenarioError {
    match load_str(Path::new("s.toml"), text) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(e) => e,
    }
}

/// The displayed error, one problem per line.
fn shown(text: &str) -> Vec<String> {
    errors(text)
        .to_string()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_good_scenario_loads() {
    let s = load_str(Path::new("s.toml"), &text(GOOD)).unwrap();
    assert_eq!(s.name, "located");
    assert_eq!(s.fleets[0].count, 4);
    assert!(lint(&s).is_empty(), "{:?}", lint(&s));
}

#[test]
fn ping_timeout_not_shorter_than_keepalive_is_located_at_its_value() {
    assert_eq!(
        shown(&with_line(6, r#"ping_timeout = "5s""#)),
        ["s.toml:6:16: profiles.recommended.ping_timeout: ping_timeout must be shorter than keepalive (ping_timeout 5s, keepalive 5s)"]
    );
}

#[test]
fn a_toml_syntax_error_is_located_and_names_its_key() {
    assert_eq!(
        shown(&with_line(12, "count = = 4"))[0],
        "s.toml:12:9: fleets[0].count: extra `=`, expected nothing"
    );
    let e = errors(&with_line(2, "duration = 60s"));
    let p = &e.problems()[0];
    assert_eq!((p.line, p.column, p.field.as_str()), (2, 12, "duration"));
    let e = errors(&with_line(10, "[[fleets]"));
    let p = &e.problems()[0];
    assert_eq!((p.line, p.field.as_str()), (10, "fleets"));
}

#[test]
fn an_unknown_field_is_located_at_its_key() {
    assert_eq!(
        shown(&with_line(8, "keepalive_timeout = 3")),
        ["s.toml:8:1: profiles.recommended.keepalive_timeout: unknown field `keepalive_timeout`, expected one of `keepalive`, `ping_timeout`, `connect_timeout`, `reconnect`, `clean_session`, `resubscribe`, `client_id`, `will`, `online_republish`, `qos`, `subscribe_qos`, `ack`, `inflight`, `protocol`, `session_expiry`, `receive_maximum`, `expect`"]
    );
    // A key that the entry's fault kind does not take.
    assert_eq!(
        shown(&with_line(20, r#"delay = "200ms""#)),
        ["s.toml:20:1: timeline[0].delay: unknown field `delay`, expected one of `latency`, `jitter`, `stream`, `toxicity`"]
    );
    // Kinds without fields ignore nothing either.
    let mut v = GOOD.to_vec();
    v[18] = r#"kind = "half_open""#;
    v[19] = r#"latency = "200ms""#;
    assert_eq!(
        shown(&text(&v)),
        ["s.toml:20:1: timeline[0].latency: unknown field `latency` for kind `half_open`, expected one of `at`, `duration`, `kind`, `target`"]
    );
}

#[test]
fn a_known_bad_profile_names_the_figures_its_own_slos_check() {
    // Expected to fail on a figure one of its SLOs checks: valid, and that
    // SLO is the one turned around.
    let mut v = GOOD.to_vec();
    v[7] = r#"expect = { fail = ["zombie_time.max"] }"#;
    v.push(r#""recommended.zombie_time.max" = "<= 10s""#);
    v.push(r#""recommended.flaps" = "= 0""#);
    let s = load_str(Path::new("s.toml"), &text(&v)).unwrap();
    let objectives = slos(&s);
    let by = |f: &str| objectives.iter().find(|o| o.figure == f).unwrap();
    assert!(by("zombie_time").expect_breach);
    assert!(!by("flaps").expect_breach && !by("lost_after_ack").expect_breach);
    // Named without a statistic, the figure covers every statistic.
    v[7] = r#"expect = { fail = ["zombie_time"] }"#;
    let s = load_str(Path::new("s.toml"), &text(&v)).unwrap();
    assert!(slos(&s)
        .iter()
        .any(|o| o.figure == "zombie_time" && o.expect_breach));

    // A figure no SLO of the profile checks.
    v[7] = r#"expect = { fail = ["missed_offline"] }"#;
    assert_eq!(
        shown(&text(&v)),
        ["s.toml:8:10: profiles.recommended.expect: recommended is expected to fail on missed_offline, but no SLO of recommended checks it: add [slo] \"recommended.missed_offline\" = \"...\" (the limit the mistake breaks)"]
    );
    // "fail" alone, an empty list, an unknown key.
    assert_eq!(
        shown(&with_line(8, r#"expect = "fail""#)),
        ["s.toml:8:10: profiles.recommended.expect: name the figure(s) the mistake must show: expect = { fail = [\"zombie_undetected\"] }"]
    );
    let e = shown(&with_line(8, r#"expect = { fail = [] }"#));
    assert!(e[0].contains("names no figure"), "{e:?}");
    let e = shown(&with_line(8, r#"expect = { fails = ["flaps"] }"#));
    assert!(e[0].contains("unknown field `fails` of expect"), "{e:?}");
    let e = shown(&with_line(8, r#"expect = "maybe""#));
    assert!(
        e[0].contains(r#"expected "pass" or { fail = ["figure", …] }, found "maybe""#),
        "{e:?}"
    );
}

#[test]
fn a_bad_duration_is_located_at_its_value() {
    let shown_p = shown(&with_line(5, r#"keepalive = "5 parsecs""#));
    assert_eq!(shown_p.len(), 1);
    assert!(
        shown_p[0].starts_with(
            "s.toml:5:13: profiles.recommended.keepalive: invalid duration \"5 parsecs\""
        ),
        "{shown_p:?}"
    );
    // Inside a timeline entry, where serde loses the position.
    let shown_tl = shown(&with_line(20, r#"latency = "2OOms""#));
    assert!(
        shown_tl[0].starts_with("s.toml:20:11: timeline[0].latency: invalid duration \"2OOms\""),
        "{shown_tl:?}"
    );
}

#[test]
fn wrong_types_unknown_kinds_and_missing_fields_are_located() {
    assert_eq!(
        shown(&with_line(12, r#"count = "4""#)),
        ["s.toml:12:9: fleets[0].count: invalid type: string \"4\", expected u32"]
    );
    let shown_kind = shown(&with_line(19, r#"kind = "latensy""#));
    assert!(
        shown_kind[0].starts_with("s.toml:19:8: timeline[0].kind: unknown variant `latensy`"),
        "{shown_kind:?}"
    );
    // A missing field is located at its table's header.
    assert_eq!(
        shown(&with_line(5, "")),
        ["s.toml:4:1: profiles.recommended.keepalive: missing field `keepalive`"]
    );
    assert_eq!(
        shown(&with_line(20, "")),
        ["s.toml:16:1: timeline[0].latency: missing field `latency`"]
    );
    assert_eq!(
        shown(&with_line(23, "lost_after_ack = 0")),
        ["s.toml:23:18: slo.lost_after_ack: invalid type: integer `0`, expected a string"]
    );
    assert_eq!(
        shown(&with_line(1, "")),
        ["s.toml:1:1: name: missing field `name`"]
    );
}

#[test]
fn every_mistake_in_a_file_is_reported_in_file_order() {
    // Three shape errors in three elements, and one at the top.
    let mut v = GOOD.to_vec();
    v[1] = r#"duration = "1 fortnight""#;
    v[4] = "keepalive = 5";
    v[11] = "count = -4";
    v[19] = r#"latency = "soon""#;
    let e = errors(&text(&v));
    let at: Vec<_> = e
        .problems()
        .iter()
        .map(|p| (p.line, p.column, p.field.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (2, 12, "duration"),
            (5, 13, "profiles.recommended.keepalive"),
            (12, 9, "fleets[0].count"),
            (20, 11, "timeline[0].latency"),
        ],
        "{e}"
    );
    assert_eq!(e.to_string().lines().count(), 4);

    // Rule errors: all of them too.
    let mut v = GOOD.to_vec();
    v[5] = r#"ping_timeout = "9s""#;
    v[11] = "count = 0";
    v[16] = r#"at = "58s""#;
    v[22] = r#"lost = "= 0""#;
    let e = errors(&text(&v));
    let at: Vec<_> = e
        .problems()
        .iter()
        .map(|p| (p.line, p.column, p.field.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (6, 16, "profiles.recommended.ping_timeout"),
            (12, 9, "fleets[0].count"),
            (18, 12, "timeline[0].duration"),
            (23, 8, "slo.lost"),
        ],
        "{e}"
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ScenarioError::Unreadable { .. }));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: cannot read the scenario file",
            missing.display()
        )),
        "{msg}"
    );
}

#[test]
fn a_file_on_disk_is_named_in_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, with_line(6, r#"ping_timeout = "7s""#)).unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.problems().len(), 1);
    assert_eq!(e.problems()[0].file, path);
    assert!(e
        .to_string()
        .starts_with(&format!("{}:6:16: ", path.display())));
}

#[test]
fn locate_finds_values_headers_and_quoted_keys() {
    let mut v = GOOD.to_vec();
    v.push(r#""recommended.reconnect_after_heal.p99" = "<= 10s""#); // 24
    let t = text(&v);
    assert_eq!(locate(&t, "profiles.recommended.keepalive"), Some((5, 13)));
    assert_eq!(locate(&t, "profiles.recommended"), Some((4, 1)));
    assert_eq!(locate(&t, "fleets[0]"), Some((10, 1)));
    assert_eq!(locate(&t, "fleets[0].streams[0].topic"), Some((14, 42)));
    assert_eq!(locate(&t, "timeline[0].latency"), Some((20, 11)));
    assert_eq!(
        locate(&t, "slo.\"recommended.reconnect_after_heal.p99\""),
        Some((24, 42))
    );
    // Left to its default, or not there at all.
    assert_eq!(locate(&t, "profiles.recommended.reconnect"), None);
    assert_eq!(locate(&t, "fleets[1]"), None);
    assert_eq!(locate(&t, "not..a path"), None);
}

#[test]
fn error_at_locates_a_runners_check_like_the_loaders_own() {
    let t = text(GOOD);
    let e = error_at(
        Path::new("s.toml"),
        &t,
        "profiles.recommended.keepalive",
        "the embedded broker refuses keepalive 0",
    );
    assert_eq!(
        e.to_string(),
        "s.toml:5:13: profiles.recommended.keepalive: the embedded broker refuses keepalive 0"
    );
    // A field left to its default is located at its table.
    let e = error_at(
        Path::new("s.toml"),
        &t,
        "profiles.recommended.reconnect.max",
        "x",
    );
    assert_eq!(
        e.to_string(),
        "s.toml:4:1: profiles.recommended.reconnect.max: x"
    );
    let joined = ScenarioError::join([
        error_at(Path::new("s.toml"), &t, "fleets[0].count", "b"),
        error_at(Path::new("s.toml"), &t, "name", "a"),
    ])
    .unwrap();
    assert_eq!(
        joined.to_string(),
        "s.toml:1:8: name: a\ns.toml:12:9: fleets[0].count: b"
    );
}

// ------------------------------------------------------- shipped scenarios

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_scenario_loads_and_validates() {
    let files: Vec<PathBuf> = toml_files(&scenarios_dir())
        .into_iter()
        .chain(toml_files(&scenarios_dir().join("faults")))
        .collect();
    assert!(files.len() >= 16, "{files:?}");
    let mut names = BTreeSet::new();
    for f in &files {
        let s = load(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(names.insert(s.name.clone()), "name {} repeats", s.name);
        assert_eq!(
            slos(&s).len(),
            s.slo.len(),
            "{}: every SLO parses",
            f.display()
        );
    }
}

#[test]
fn quickstart_is_a_minute_with_fifty_devices_and_three_faults() {
    let s = load(&scenarios_dir().join("quickstart.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "quickstart");
    assert_eq!(s.duration, Duration::from_secs(60));
    assert_eq!(s.fleets.iter().map(|f| f.count).sum::<u32>(), 50);
    let profiles: BTreeSet<&str> = s.fleets.iter().map(|f| f.profile.as_str()).collect();
    assert_eq!(profiles.len(), 2);
    let kinds: Vec<&str> = s.timeline.iter().map(|f| f.kind.name()).collect();
    assert_eq!(kinds, ["link_down", "latency", "broker_restart"]);
    let partition = &s.timeline[0];
    assert_eq!(partition.duration, Some(Duration::from_secs(10)));
    // The recommended profile is clean; the weak one shows its mistakes.
    let lints = lint(&s);
    assert!(lints.iter().all(|l| l.profile == "weak"), "{lints:?}");
    let figures: BTreeSet<&str> = lints.iter().map(|l| l.figure.as_str()).collect();
    for f in ["zombie_time", "lost_qos0", "silent_loss", "missed_offline"] {
        assert!(figures.contains(f), "{f} not linted: {lints:?}");
    }
    assert!(slos(&s)
        .iter()
        .any(|o| o.figure == "lost_after_ack" && o.profile.is_none()));
}

/// Every kind of `FaultKind` (a new kind fails to compile here until it has
/// a scenario).
fn kind_name(k: &FaultKind) -> &'static str {
    match k {
        FaultKind::Latency { .. } => "latency",
        FaultKind::Bandwidth { .. } => "bandwidth",
        FaultKind::Blackhole { .. } => "blackhole",
        FaultKind::HalfOpen => "half_open",
        FaultKind::Cut => "cut",
        FaultKind::LinkDown => "link_down",
        FaultKind::ResetPeer { .. } => "reset_peer",
        FaultKind::SlowClose { .. } => "slow_close",
        FaultKind::Slicer { .. } => "slicer",
        FaultKind::LimitData { .. } => "limit_data",
        FaultKind::Flapping { .. } => "flapping",
        FaultKind::BrokerRestart => "broker_restart",
        FaultKind::BrokerKill => "broker_kill",
        FaultKind::BrokerPause => "broker_pause",
        FaultKind::BrokerPartition => "broker_partition",
        FaultKind::DeviceCrash { .. } => "device_crash",
        FaultKind::ClientIdConflict { .. } => "client_id_conflict",
    }
}

#[test]
fn each_fault_kind_has_a_small_scenario_of_its_own() {
    let files = toml_files(&scenarios_dir().join("faults"));
    let mut covered = BTreeSet::new();
    for f in &files {
        let s = load(f).unwrap_or_else(|e| panic!("{e}"));
        let stem = f.file_stem().unwrap().to_str().unwrap();
        let first = &s.timeline[0].kind;
        assert_eq!(kind_name(first), stem, "{}", f.display());
        assert_eq!(first.name(), stem);
        assert!(
            s.duration >= Duration::from_secs(20) && s.duration <= Duration::from_secs(30),
            "{}: {:?}",
            f.display(),
            s.duration
        );
        assert!(s.fleets.iter().map(|f| f.count).sum::<u32>() <= 10);
        for p in s.profiles.values() {
            let k = p.keepalive.expect("keepalive on");
            assert!(k >= Duration::from_secs(2) && k <= Duration::from_secs(5));
        }
        covered.insert(stem.to_string());
    }
    assert_eq!(covered.len(), 17, "{covered:?}");
}

// ------------------------------------------------------- the command line

#[test]
fn validate_exits_2_and_prints_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let mut v = GOOD.to_vec();
    v[5] = r#"ping_timeout = "9s""#;
    v[11] = "count = 0";
    std::fs::write(&bad, text(&v)).unwrap();
    let out = Command::new(crate::support::bin())
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with(&format!(
        "{}:6:16: profiles.recommended.ping_timeout: ping_timeout must be shorter than keepalive",
        bad.display()
    )));
    assert!(lines[1].starts_with(&format!("{}:12:9: fleets[0].count:", bad.display())));

    let out = Command::new(crate::support::bin())
        .arg("validate")
        .arg(scenarios_dir().join("quickstart.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

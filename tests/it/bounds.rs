//! Bad input never panics or runs away: the shipped scenarios, mutated
//! (numbers and durations at their extremes, odd and huge strings, lines
//! deleted, duplicated, values swapped), go through load, validate, plan and
//! lint; whatever is refused is refused with file:line:column, briefly and
//! without a password. Then the same through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mqtt_chaos::limits::{self, RunSize};
use mqtt_chaos::plan::Plan;
use mqtt_chaos::scenario::{lint, load_str};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use regex::Regex;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every shipped scenario: (name relative to the repository, text).
fn shipped() -> &'static [(String, String)] {
    static FILES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut v = Vec::new();
        for dir in [scenarios_dir(), scenarios_dir().join("faults")] {
            for e in std::fs::read_dir(&dir).expect("scenarios/") {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "toml") {
                    let text = std::fs::read_to_string(&p).expect("readable");
                    let name = p
                        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                        .unwrap_or(&p)
                        .display()
                        .to_string();
                    v.push((name.trim_start_matches('/').to_string(), text));
                }
            }
        }
        v.sort();
        assert!(v.len() >= 18, "{} scenarios", v.len());
        v
    })
}

/// Values a number is replaced with.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "3",
    "65536",
    "100001",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "1e-300",
    "nan",
    "inf",
    "-0.0",
    "0.0000001",
    "1000.5",
    "\"7\"",
    "true",
];

/// Values a string is replaced with (TOML-escaped when written).
fn strings() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        let mut v: Vec<String> = [
            "18446744073709551615s",
            "18446744073709551616s",
            "584542046091y",
            "2283y",
            "366days",
            "367days",
            "1ns",
            "0s",
            "99ms",
            "off",
            "",
            " ",
            "mosquito",
            "tcp://user:secret@host:1883",
            "toxiproxy=http://admin:secret@h:8474",
            "docker=c@user:secret@h:1883",
            "emqx=",
            "status/+",
            "$SYS/{device}",
            "t/{devise}",
            "t/{device",
            "{device}",
            "é\u{0}\"\\\n",
            "= 0",
            "<= 1ns",
            "recommended",
            "link_down",
            "flapping",
            "broker_kill",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("x".repeat(100_000));
        v.push("{device}".repeat(9_000));
        v.push("é".repeat(70_000));
        v
    })
}

/// One change to a scenario's text. Indices are taken modulo what the
/// text holds, so every mutation applies to every file.
#[derive(Debug, Clone)]
enum Mutation {
    /// The `nth` number of line `line` becomes `NUMBERS[value]`.
    Number {
        line: usize,
        nth: usize,
        value: usize,
    },
    /// The `nth` string of line `line` becomes `strings()[value]`.
    Str {
        line: usize,
        nth: usize,
        value: usize,
    },
    Delete {
        line: usize,
    },
    Duplicate {
        line: usize,
    },
    /// The values of two `key = value` lines trade places.
    Swap {
        a: usize,
        b: usize,
    },
    /// A line of TOML noise inserted before `line`.
    Garble {
        line: usize,
        noise: usize,
    },
}

const NOISE: &[&str] = &[
    "[[fleets]]",
    "[[timeline]]",
    "[profiles.x]",
    "count = = 4",
    "= 3",
    "[broker",
    "name = \"unterminated",
    "duration = 60s",
    "kind = \"flapping\"",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let ix = || any::<usize>();
    prop_oneof![
        4 => (ix(), ix(), 0..NUMBERS.len())
            .prop_map(|(line, nth, value)| Mutation::Number { line, nth, value }),
        4 => (ix(), ix(), 0..strings().len())
            .prop_map(|(line, nth, value)| Mutation::Str { line, nth, value }),
        1 => ix().prop_map(|line| Mutation::Delete { line }),
        1 => ix().prop_map(|line| Mutation::Duplicate { line }),
        2 => (ix(), ix()).prop_map(|(a, b)| Mutation::Swap { a, b }),
        1 => (ix(), 0..NOISE.len()).prop_map(|(line, noise)| Mutation::Garble { line, noise }),
    ]
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Byte ranges of the string literals of a line (basic strings).
fn string_spans(line: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (start, c) {
            (None, '#') => break,
            (None, '"') => start = Some(i),
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(s), '"') if !escaped => {
                spans.push((s, i + 1));
                start = None;
            }
            _ => {}
        }
        escaped = false;
    }
    spans
}

/// Byte ranges of the numbers of a line outside its strings and comments.
fn number_spans(line: &str) -> Vec<(usize, usize)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?:^|[=\[,{ ])\s*(-?[0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)")
            .expect("regex")
    });
    let strings = string_spans(line);
    let code_end = line
        .char_indices()
        .find(|&(i, c)| c == '#' && !strings.iter().any(|&(a, b)| a <= i && i < b))
        .map_or(line.len(), |(i, _)| i);
    re.captures_iter(&line[..code_end])
        .filter_map(|c| c.get(1))
        .map(|m| (m.start(), m.end()))
        .filter(|&(a, _)| !strings.iter().any(|&(s, e)| s <= a && a < e))
        .collect()
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in muts {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match *m {
            Mutation::Number { line, nth, value } => {
                let l = &mut lines[line % n];
                let spans = number_spans(l);
                if let Some(&(a, b)) = spans.get(nth % spans.len().max(1)) {
                    l.replace_range(a..b, NUMBERS[value]);
                }
            }
            Mutation::Str { line, nth, value } => {
                let l = &mut lines[line % n];
                let spans = string_spans(l);
                if let Some(&(a, b)) = spans.get(nth % spans.len().max(1)) {
                    l.replace_range(a..b, &toml_string(&strings()[value]));
                }
            }
            Mutation::Delete { line } => {
                lines.remove(line % n);
            }
            Mutation::Duplicate { line } => {
                let l = lines[line % n].clone();
                lines.insert(line % n, l);
            }
            Mutation::Swap { a, b } => {
                let with_value: Vec<usize> = (0..n)
                    .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains('='))
                    .collect();
                if with_value.len() >= 2 {
                    let i = with_value[a % with_value.len()];
                    let j = with_value[b % with_value.len()];
                    let split = |l: &str| {
                        let (k, v) = l.split_once('=').expect("has =");
                        (k.to_string(), v.to_string())
                    };
                    let (ki, vi) = split(&lines[i]);
                    let (kj, vj) = split(&lines[j]);
                    lines[i] = format!("{ki}={vj}");
                    lines[j] = format!("{kj}={vi}");
                }
            }
            Mutation::Garble { line, noise } => lines.insert(line % (n + 1), NOISE[noise].into()),
        }
    }
    lines.join("\n") + "\n"
}

/// What must hold for any text: no panic (a panic fails the case), an
/// accepted scenario within every bound and resolvable, a refused one with
/// every problem at file:line:column, short and without a password.
fn holds(name: &str, text: &str) -> Result<(), TestCaseError> {
    let path = Path::new(name);
    let lines = text.lines().count().max(1);
    match load_str(path, text) {
        Ok(s) => {
            let size = RunSize::of(&s);
            prop_assert!(size.devices <= limits::MAX_DEVICES, "{size:?}");
            prop_assert!(
                size.messages_per_s <= limits::MAX_MESSAGES_PER_S,
                "{size:?}"
            );
            prop_assert!(size.run_time <= limits::MAX_RUN_TIME, "{size:?}");
            prop_assert!(size.intervals <= limits::MAX_INTERVALS, "{size:?}");
            prop_assert!(size.flap_phases <= limits::MAX_FLAP_PHASES, "{size:?}");
            let _ = lint(&s);
            let plan = Plan::resolve(&s, None);
            prop_assert_eq!(plan.devices.len() as u64, size.devices);
            for f in &plan.faults {
                prop_assert!(f.end() <= s.duration, "{f:?}");
            }
            for d in plan.devices.iter().take(1000) {
                for t in d.streams.iter().chain(&d.commands) {
                    prop_assert!(t.topic.len() <= limits::MAX_TOPIC_BYTES);
                }
            }
        }
        Err(e) => {
            let problems = e.problems();
            prop_assert!(!problems.is_empty(), "{e}");
            for p in problems {
                prop_assert!(p.line >= 1 && p.line <= lines + 1, "{p}");
                prop_assert!(p.column >= 1, "{p}");
                let shown = p.to_string();
                let prefix = format!("{name}:{}:{}: ", p.line, p.column);
                prop_assert!(shown.starts_with(&prefix), "{shown}");
                prop_assert!(
                    shown.len() < 8 * 1024,
                    "{} bytes: {}",
                    shown.len(),
                    &shown[..200]
                );
                prop_assert!(!shown.contains("secret"), "{shown}");
            }
            let all = e.to_string();
            prop_assert!(all.lines().count() <= 101, "{} lines", all.lines().count());
        }
    }
    Ok(())
}

#[test]
fn mutated_scenarios_never_panic_and_every_refusal_is_located() {
    let files = shipped();
    let mut runner = TestRunner::new(Config {
        cases: 3_000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..files.len(), prop::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(file, muts)| {
            let (name, text) = &files[file];
            holds(name, &apply(text, &muts))
        })
        .unwrap();
}

#[test]
fn the_mutations_change_what_they_claim_to() {
    let line = r#"streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 2.0 }] # 3"#;
    assert_eq!(number_spans(line).len(), 2);
    assert_eq!(string_spans(line).len(), 2);
    let out = apply(
        line,
        &[Mutation::Number {
            line: 0,
            nth: 1,
            value: 8,
        }],
    );
    assert!(out.contains("rate = 18446744073709551615 }"), "{out}");
    let out = apply("a = \"x\"\nb = 2\n", &[Mutation::Swap { a: 0, b: 1 }]);
    assert_eq!(out, "a = 2\nb = \"x\"\n");
    assert_eq!(toml_string("a\"\\\u{0}"), r#""a\"\\\u0000""#);
}

#[test]
fn the_findings_of_the_mutation_run_are_refused_with_a_location() {
    // The inputs of issue 9, one by one, on quickstart.toml.
    let (name, text) = shipped()
        .iter()
        .find(|(n, _)| n.ends_with("quickstart.toml"))
        .expect("quickstart");
    let cases: &[(&str, &str, &str)] = &[
        (
            "duration = \"60s\"",
            "duration = \"18446744073709551615s\"",
            "duration",
        ),
        ("drain = \"15s\"", "drain = \"2283y\"", "drain"),
        ("interval = \"10s\"", "interval = \"1ns\"", "interval"),
        ("count = 25", "count = 100001", "fleets[0].count"),
        (
            "backend = \"embedded\"",
            "backend = \"mosquito\"",
            "broker.backend",
        ),
        ("rate = 1.0", "rate = 1e-300", "fleets[0].streams[0].rate"),
        (
            "topic = \"telemetry/{fleet}/{device}\"",
            "topic = \"HUGE\"",
            "fleets[0].streams[0].topic",
        ),
    ];
    for (from, to, field) in cases {
        let to = to.replace("HUGE", &"x".repeat(10_000_000));
        let mutated = text.replacen(from, &to, 1);
        assert_ne!(&mutated, text, "{from}");
        let e = load_str(Path::new(name), &mutated).expect_err(from);
        let p = e
            .problems()
            .iter()
            .find(|p| p.field == *field)
            .unwrap_or_else(|| panic!("no problem at {field}: {e}"));
        let line = text[..text.find(from).unwrap()].lines().count() + 1;
        assert_eq!(p.line, line, "{p}");
        assert!(p.column > 1, "{p}");
        assert!(e.to_string().len() < 4096, "{} bytes", e.to_string().len());
    }
}

// ------------------------------------------------------- the command line

fn mqtt_chaos(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(crate::support::bin())
        .args(args)
        .output()
        .expect("mqtt-chaos runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_refuses_mutated_files_with_exit_2_and_a_location_never_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let quickstart = std::fs::read_to_string(scenarios_dir().join("quickstart.toml")).unwrap();
    let flapping = std::fs::read_to_string(scenarios_dir().join("faults/flapping.toml")).unwrap();
    let big = "x".repeat(10_000_000);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "duration",
            quickstart.replacen(
                "duration = \"60s\"",
                "duration = \"18446744073709551615s\"",
                1,
            ),
            "duration",
        ),
        (
            "backoff",
            quickstart.replacen("max = \"60s\"", "max = \"18446744073709551615s\"", 1),
            "profiles.weak.reconnect.max",
        ),
        (
            "fleets",
            quickstart.replacen("count = 25", "count = 100000", 2),
            "fleets[1].count",
        ),
        (
            "interval",
            quickstart.replacen("interval = \"10s\"", "interval = \"1ns\"", 1),
            "interval",
        ),
        (
            "name",
            quickstart.replacen("name = \"quickstart\"", &format!("name = \"{big}\""), 1),
            "name",
        ),
        (
            "password",
            quickstart.replacen(
                "backend = \"embedded\"",
                "backend = \"tcp://user:secret@host:1883\"",
                1,
            ),
            "broker.backend",
        ),
        (
            "flap",
            flapping.replacen("down = \"2s\"", "down = \"1ns\"", 1),
            "timeline[0].down",
        ),
    ];
    for (what, text, field) in &cases {
        let file = dir.path().join(format!("{what}.toml"));
        std::fs::write(&file, text).unwrap();
        let (code, stdout, stderr) = mqtt_chaos(&["validate".as_ref(), file.as_os_str()]);
        assert_eq!(code, Some(2), "{what}: stdout {stdout}\nstderr {stderr}");
        let located = Regex::new(&format!(
            r"^{}:\d+:\d+: {}",
            regex::escape(&file.display().to_string()),
            regex::escape(field)
        ))
        .unwrap();
        assert!(
            stderr.lines().any(|l| located.is_match(l)),
            "{what}: no line at {field}: {stderr}"
        );
        assert!(stderr.len() < 8 * 1024, "{what}: {} bytes", stderr.len());
        assert!(!stderr.contains("secret"), "{what}: {stderr}");
    }
}

#[test]
fn validate_states_the_size_of_the_run() {
    let file = scenarios_dir().join("quickstart.toml");
    let (code, stdout, stderr) = mqtt_chaos(&["validate".as_ref(), file.as_os_str()]);
    assert_eq!(code, Some(0), "{stderr}");
    let shown = file.display().to_string();
    assert!(
        stdout.contains(&format!(
            "{shown}: valid: 50 devices in 2 groups, 3 faults, 7 SLOs\n\
             {shown}: size: 50 devices in 2 groups, 52 connections, 60 msg/s, 8 intervals, \
             run 1m 15s (1m + drain 15s)\n"
        )),
        "{stdout}"
    );
}

#[test]
fn run_refuses_a_duration_beyond_366_days_with_exit_2() {
    let file = scenarios_dir().join("quickstart.toml");
    let out_dir = tempfile::tempdir().expect("temp dir");
    for d in ["18446744073709551615s", "367days"] {
        let (code, _, stderr) = mqtt_chaos(&[
            "run".as_ref(),
            file.as_os_str(),
            "--duration".as_ref(),
            d.as_ref(),
            "--out".as_ref(),
            out_dir.path().as_os_str(),
        ]);
        assert_eq!(code, Some(2), "{d}: {stderr}");
        assert!(stderr.contains("366 days"), "{stderr}");
    }
}

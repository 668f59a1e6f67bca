//! The report's shape, its JSON round trip and its renderers.

use super::*;
use crate::ledger::latency_histogram;

pub(crate) fn histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = latency_histogram();
    for &v in values {
        crate::ledger::record(&mut h, v);
    }
    h
}

fn messages(sent: u64, delivered: u64, lost_after_ack: u64) -> MessageFigureSet {
    MessageFigureSet {
        sent,
        acked: sent - 1,
        delivered,
        lost_after_ack,
        undeliverable: 0,
        lost_unacked: 1,
        silent_loss: 0,
        lost_qos0: 0,
        duplicates: 2,
        reordered: 0,
        downgraded: 0,
        unobserved: 0,
        e2e_latency: DurationFigure::from_histogram(&histogram(&[1_000, 2_000, 250_000])),
        ack_latency: DurationFigure::from_histogram(&latency_histogram()),
    }
}

pub(crate) fn figures_with(sent: u64, lost_after_ack: u64) -> Figures {
    Figures {
        telemetry: messages(sent, sent - 1 - lost_after_ack, lost_after_ack),
        commands: messages(10, 10, 0),
        zombie_time: None,
        zombie_undetected: None,
        broker_detect_time: None,
        reconnect_after_heal: Some(
            DurationFigure::from_histogram(&histogram(&[1_500_000, 2_500_000])).with_censored(1),
        ),
        outage_seen_by_client: None,
        resume_time: None,
        session_present: Some(0.5),
        reconnect_attempts: Some(7),
        first_attempt_delay: None,
        flaps: Some(0.25),
        true_offline: None,
        false_offline: None,
        false_offline_rate: None,
        stale_offline_time: None,
        missed_offline: None,
        false_online_time: None,
        offline_unobserved: None,
        false_offline_rate_interval: None,
        false_offline_per_device_day: None,
        devices_false_offline: None,
        takeovers: None,
        reason_codes: Default::default(),
    }
}

pub(crate) fn report() -> Report {
    let mut profiles = BTreeMap::new();
    profiles.insert("recommended".to_string(), figures_with(100, 0));
    profiles.insert("weak".to_string(), figures_with(50, 3));
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        scenario: "quickstart".into(),
        seed: 42,
        verdict: Verdict::Pass,
        started_at: rfc3339(DateTime::from_timestamp(1_795_644_000, 0).expect("valid")),
        duration_s: 60.0,
        min_outage_s: Some(30.0),
        versions: Versions {
            harness: "0.1.0".into(),
            broker: "mosquitto 2.0.11".into(),
            faults: "embedded".into(),
        },
        devices: 50,
        totals: figures_with(150, 3),
        profiles,
        faults: vec![
            FaultRecord {
                index: 0,
                kind: crate::scenario::FaultName::Blackhole,
                target: Some("group-a".into()),
                scheduled_at_s: Some(12.0),
                requested_at_s: Some(12.001),
                started_at_s: Some(12.004),
                healed_at_s: Some(42.01),
                applied: true,
                error: None,
                weather: None,
                devices: vec![],
            },
            FaultRecord {
                index: 1,
                kind: crate::scenario::FaultName::BrokerKill,
                target: None,
                scheduled_at_s: Some(30.0),
                requested_at_s: Some(30.0),
                started_at_s: None,
                healed_at_s: None,
                applied: false,
                error: Some("no such process".into()),
                weather: None,
                devices: vec![],
            },
        ],
        slo: vec![],
        unobserved_s: 1.5,
        unobserved: 4,
        errors: vec![],
    };
    r.check(&[
        Slo {
            profile: None,
            figure: "lost_after_ack".into(),
            stat: None,
            op: SloOp::Eq,
            limit: 0.0,
            text: "lost_after_ack = \"= 0\"".into(),
            expect_breach: false,
        },
        Slo {
            profile: Some("recommended".into()),
            figure: "reconnect_after_heal".into(),
            stat: Some("p99".into()),
            op: SloOp::Le,
            limit: 15e6,
            text: "\"recommended.reconnect_after_heal.p99\" = \"<= 15s\"".into(),
            expect_breach: false,
        },
        Slo {
            profile: None,
            figure: "commands.delivered".into(),
            stat: None,
            op: SloOp::Ge,
            limit: 20.0,
            text: "commands.delivered >= 20".into(),
            expect_breach: false,
        },
    ]);
    r
}

#[test]
fn a_duration_figure_summarises_its_histogram_and_is_null_inside_when_empty() {
    let d = DurationFigure::from_histogram(&histogram(&[10, 20, 30, 40, 1_000_000]));
    assert_eq!(d.count, 5);
    assert_eq!(d.min_us, Some(10));
    assert_eq!(d.p50_us, Some(30));
    let max = d.max_us.expect("max");
    assert!((999_500..=1_000_500).contains(&max), "max {max}");
    assert_eq!(d.censored, None);
    let empty = DurationFigure::from_histogram(&latency_histogram());
    assert_eq!(empty.count, 0);
    assert_eq!(
        (empty.min_us, empty.p99_us, empty.max_us),
        (None, None, None)
    );
    let json = serde_json::to_value(&empty).expect("serialises");
    assert!(json["p50_us"].is_null());
    assert!(
        json.get("censored").is_none(),
        "censored only where it applies"
    );
}

#[test]
fn the_json_has_the_contract_shape() {
    let json = serde_json::to_value(report()).expect("serialises");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["started_at"], "2026-11-25T22:00:00Z");
    assert_eq!(json["versions"]["broker"], "mosquitto 2.0.11");
    assert_eq!(json["totals"]["lost_after_ack"], 3);
    assert_eq!(json["totals"]["commands"]["delivered"], 10);
    assert_eq!(json["profiles"]["weak"]["e2e_latency"]["count"], 3);
    assert_eq!(json["totals"]["reconnect_after_heal"]["censored"], 1);
    assert!(json["totals"]["zombie_time"].is_null());
    assert_eq!(json["faults"][0]["started_at_s"], 12.004);
    assert!(json["faults"][1]["started_at_s"].is_null());
    assert_eq!(json["slo"][0]["limit"], "= 0");
    assert_eq!(json["slo"][0]["observed"], 3.0);
    assert_eq!(json["slo"][0]["pass"], false);
    assert_eq!(json["slo"][1]["status"], "pass");
    assert_eq!(json["unobserved_s"], 1.5);
    for (name, _) in figures::all() {
        assert!(json["totals"].get(name).is_some(), "totals lacks {name}");
        for p in ["recommended", "weak"] {
            assert!(json["profiles"][p].get(name).is_some(), "{p} lacks {name}");
        }
    }
}

#[test]
fn slos_on_counts_statistics_and_commands_are_checked() {
    let r = report();
    let status: Vec<SloStatus> = r.slo.iter().map(|s| s.status).collect();
    assert_eq!(status, [SloStatus::Fail, SloStatus::Pass, SloStatus::Fail]);
    assert_eq!(r.slo[2].observed, Some(10.0));
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn a_false_offline_rate_limit_reads_in_percent_and_holds_without_any_report() {
    let mut r = report();
    let slo = |profile: &str, limit: &str| {
        crate::scenario::slo::parse(
            &format!("{profile}.false_offline_rate"),
            limit,
            &["recommended", "weak"],
        )
        .expect("parses")
    };
    // `recommended` had no offline report at all; `weak` 1 false of 600.
    let rec = r.profiles.get_mut("recommended").expect("recommended");
    (rec.true_offline, rec.false_offline, rec.false_offline_rate) = (Some(0), Some(0), None);
    let weak = r.profiles.get_mut("weak").expect("weak");
    (weak.true_offline, weak.false_offline) = (Some(599), Some(1));
    weak.false_offline_rate = Some(1.0 / 600.0);
    r.check(&[
        slo("recommended", "<= 0.5%"),
        slo("weak", "<= 0.5%"),
        slo("weak", "< 0.1%"),
    ]);
    let [none, held, broken] = &r.slo[..] else {
        panic!("three SLOs: {:?}", r.slo)
    };
    assert_eq!(none.status, SloStatus::Pass, "{none:?}");
    assert_eq!(none.observed, None);
    assert_eq!(
        none.note.as_deref(),
        Some("no offline report: none was false")
    );
    assert_eq!(none.limit, "<= 0.5 %");
    assert_eq!(held.status, SloStatus::Pass);
    assert_eq!(broken.status, SloStatus::Fail);
    assert_eq!(broken.limit, "< 0.1 %");
    // Observed shares in percent, two significant digits.
    assert_eq!(
        super::slo::show("false_offline_rate", None, 1.0 / 600.0),
        "0.17 %"
    );
    let md = markdown(&r);
    assert!(
        md.contains("`false_offline_rate < 0.1 %` | weak | 0.17 % |"),
        "{md}"
    );
}

#[test]
fn report_json_round_trips_through_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.json");
    let r = report();
    write_json(&r, &path).expect("written");
    let back = read_json(&path).expect("read back");
    assert_eq!(back, r);
    let mut buf = Vec::new();
    write_json_to(&r, &mut buf).expect("to a writer");
    let file = std::fs::read(&path).expect("file");
    assert_eq!(
        buf,
        file[..file.len() - 1],
        "same JSON, file ends in a newline"
    );
    // And renders the same from the file.
    assert_eq!(markdown(&back), markdown(&r));
}

#[test]
fn reading_a_missing_or_broken_report_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.json");
    let e = read_json(&missing).expect_err("missing");
    assert!(e.to_string().contains("nope.json"), "{e}");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"schema_version\": 1}").expect("write");
    let e = read_json(&broken).expect_err("broken");
    assert!(e.to_string().contains("broken.json"), "{e}");
}

#[test]
fn markdown_puts_the_verdict_first_then_slos_profiles_and_faults() {
    let md = markdown(&report());
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "# mqtt-chaos `quickstart`: **FAIL**");
    for want in [
        "| **FAIL** | `lost_after_ack = 0` | all | 3 |",
        "| pass | `reconnect_after_heal.p99 <= 15.00 s` | recommended | 2.50 s |",
        "| **FAIL** | `commands.delivered >= 20` | all | 10 |",
        "| profile | sent | acked | delivered | lost_after_ack | lost_unacked | silent_loss | lost_qos0 | duplicates | e2e p50 | e2e p99 |",
        "| recommended | 100 | 99 | 99 | 0 | 1 | 0 | 0 | 2 | 2.0 ms | 250.1 ms |",
        "| weak | 50 | 49 | 46 | 3 | 1 | 0 | 0 | 2 | 2.0 ms | 250.1 ms |",
        "| **total** | 150 | 149 | 146 | 3 | 1 | 0 | 0 | 2 | 2.0 ms | 250.1 ms |",
        "| recommended | 1.50 s | 2.50 s | 1 | 50 % | 7 | 0.25 | – |",
        "| 0 | blackhole | group-a | 12.004 s | 42.010 s |  |",
        "| 1 | broker_kill | all | never | – | error: no such process |",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in\n{md}");
    }
    let pos = |s: &str| md.find(s).unwrap_or_else(|| panic!("no {s}"));
    assert!(pos("## SLOs") < pos("## Telemetry per profile"));
    assert!(pos("## Telemetry per profile") < pos("## Commands per profile"));
    assert!(pos("## Commands per profile") < pos("## Faults"));
    assert!(md.contains("4 acked messages published then were never received"));
}

#[test]
fn the_summary_fits_one_screen_and_leads_with_the_verdict() {
    let s = summary(&report());
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines.len() <= 24, "{} lines", lines.len());
    assert!(
        lines[0].starts_with("FAIL — scenario quickstart (seed 42)"),
        "{}",
        lines[0]
    );
    assert!(
        s.contains("total          sent 150 acked 149 delivered 146 | lost_after_ack 3"),
        "{s}"
    );
    assert!(
        s.contains("SLO FAIL    lost_after_ack = 0 (observed 3)"),
        "{s}"
    );
    assert!(
        s.contains("faults: 1 of 2 applied; observer away 1.500 s (4 unobserved)"),
        "{s}"
    );
}

#[test]
fn markdown_and_summary_show_zombie_time_and_offline_reports() {
    let mut r = report();
    let weak = r.profiles.get_mut("weak").expect("weak profile");
    weak.zombie_time =
        Some(DurationFigure::from_histogram(&histogram(&[2_000_000, 3_000_000])).with_censored(1));
    weak.zombie_undetected = Some(1);
    weak.broker_detect_time = Some(DurationFigure::from_histogram(&histogram(&[40_000])));
    weak.true_offline = Some(3);
    weak.false_offline = Some(1);
    weak.false_offline_rate = Some(0.25);
    weak.false_offline_rate_interval = crate::metrics::rate::wilson95(1, 4);
    weak.false_offline_per_device_day = Some(0.48);
    weak.devices_false_offline = Some(0.04);
    weak.takeovers = Some(2);
    weak.stale_offline_time = Some(DurationFigure::from_histogram(&histogram(&[0, 7_500_000])));
    weak.missed_offline = Some(2);
    weak.false_online_time = Some(DurationFigure::from_histogram(&histogram(&[40_000])));
    r.totals.offline_unobserved = Some(2);
    let md = markdown(&r);
    // The rate with its 95 % Wilson interval (1 of 4: 4.6–70 %), two
    // significant digits, never whole percent only.
    let want = "| weak | 2.00 s | 3.00 s | 1 | 40.0 ms | 3 | 1 | 25 % (95 % CI 4.6–70 %) | 0.480 | 4.0 % | 7.50 s | 2 | 40.0 ms |";
    assert!(md.lines().any(|l| l == want), "missing {want:?} in\n{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("| weak |") && l.ends_with("| 2 |")),
        "takeovers in\n{md}"
    );
    assert!(
        md.lines()
            .any(|l| l == "| recommended | – | – | – | – | – | – | – | – | – | – | – | – |"),
        "{md}"
    );
    assert!(
        md.contains("2 device deaths fell while the observer was away"),
        "{md}"
    );
    let s = summary(&r);
    assert!(
        s.contains("zombie max 3.00 s undetected 1 | offline true 3 false 1 missed 2"),
        "{s}"
    );
}

/// `docs/report.schema.json`, the documented shape of `report.json`.
mod schema {
    use super::*;
    use serde_json::{json, Value};

    pub(crate) const SCHEMA: &str = include_str!("../../docs/report.schema.json");

    fn validator() -> jsonschema::Validator {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        jsonschema::draft202012::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("not a draft 2020-12 schema: {e}"));
        jsonschema::draft202012::new(&schema).expect("the schema compiles")
    }

    /// The errors of `v` against the schema, as `path: message` lines.
    fn errors(v: &Value) -> Vec<String> {
        let validator = validator();
        validator
            .iter_errors(v)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    /// Every optional part of a report filled in: each figure measured,
    /// censoring present, a fault with an error, every SLO status.
    fn full_report() -> Report {
        let mut r = report();
        let d = || DurationFigure::from_histogram(&histogram(&[1_000, 2_000])).with_censored(2);
        for f in r
            .profiles
            .values_mut()
            .chain(std::iter::once(&mut r.totals))
        {
            f.zombie_time = Some(d());
            f.zombie_undetected = Some(2);
            f.broker_detect_time = Some(d());
            f.outage_seen_by_client = Some(d());
            f.resume_time = Some(d());
            f.first_attempt_delay = Some(d());
            f.true_offline = Some(3);
            f.false_offline = Some(1);
            f.false_offline_rate = Some(0.25);
            f.false_offline_rate_interval = crate::metrics::rate::wilson95(1, 4);
            f.false_offline_per_device_day = Some(0.5);
            f.devices_false_offline = Some(0.02);
            f.takeovers = Some(1);
            f.reason_codes = [("DISCONNECT 0x8E".to_string(), 1)].into();
            f.stale_offline_time = Some(d());
            f.missed_offline = Some(0);
            f.false_online_time = Some(d());
            f.offline_unobserved = Some(1);
            // The struct writes `censored` wherever it is set.
            for m in [&mut f.telemetry, &mut f.commands] {
                m.e2e_latency.censored = Some(0);
                m.ack_latency.censored = Some(0);
            }
        }
        let rec = r.profiles.get_mut("recommended").expect("recommended");
        (rec.true_offline, rec.false_offline) = (Some(0), Some(0));
        (rec.false_offline_rate, rec.false_offline_rate_interval) = (None, None);
        r.check(&[
            Slo {
                profile: Some("nobody".into()),
                figure: "flaps".into(),
                stat: None,
                op: SloOp::Eq,
                limit: 0.0,
                text: "nobody.flaps = \"= 0\"".into(),
                expect_breach: false,
            },
            Slo {
                profile: Some("weak".into()),
                figure: "zombie_time".into(),
                stat: Some("p99".into()),
                op: SloOp::Le,
                limit: 5e6,
                text: "\"weak.zombie_time.p99\" = \"<= 5s\"".into(),
                expect_breach: false,
            },
            // No offline report of `recommended`: holds, with a note.
            Slo {
                profile: Some("recommended".into()),
                figure: "false_offline_rate".into(),
                stat: None,
                op: SloOp::Le,
                limit: 0.005,
                text: "false_offline_rate = \"<= 0.5%\"".into(),
                expect_breach: false,
            },
        ]);
        r.faults.push(FaultRecord {
            index: 2,
            kind: crate::scenario::FaultName::LinkDown,
            target: Some("group-a".into()),
            scheduled_at_s: Some(20.0),
            requested_at_s: Some(20.001),
            started_at_s: Some(20.002),
            healed_at_s: Some(23.0),
            applied: true,
            error: None,
            weather: Some(0),
            devices: vec!["a-0001".into()],
        });
        r.errors.push(crate::health::Incident::new(
            Some(3.5),
            crate::health::Cause::FaultLate,
            "a harness error",
        ));
        r
    }

    #[test]
    fn the_schema_is_a_draft_2020_12_schema_that_pins_the_version() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            json!(SCHEMA_VERSION)
        );
        validator();
    }

    #[test]
    fn the_unit_test_reports_validate() {
        for r in [report(), full_report()] {
            let v = serde_json::to_value(&r).expect("serialises");
            assert_eq!(errors(&v), Vec::<String>::new(), "{v:#}");
        }
        // A report without profiles, faults or SLOs too.
        let mut r = report();
        r.profiles.clear();
        r.faults.clear();
        r.check(&[]);
        let v = serde_json::to_value(&r).expect("serialises");
        assert_eq!(errors(&v), Vec::<String>::new());
    }

    #[test]
    fn a_field_removed_renamed_or_of_the_wrong_type_is_rejected_by_name() {
        let good = serde_json::to_value(full_report()).expect("serialises");
        type Break = fn(&mut Value);
        let cases: &[(&str, Break)] = &[
            ("", |v| {
                v.as_object_mut().unwrap().remove("seed");
            }),
            ("/totals", |v| {
                v["totals"].as_object_mut().unwrap().remove("zombie_time");
            }),
            ("/profiles/weak/commands", |v| {
                v["profiles"]["weak"]["commands"]
                    .as_object_mut()
                    .unwrap()
                    .remove("lost_after_ack");
            }),
            ("/totals/delivered", |v| {
                v["totals"]["delivered"] = json!("12")
            }),
            ("/totals/flaps", |v| v["totals"]["flaps"] = json!("0.25")),
            ("/profiles/weak/e2e_latency/p99_us", |v| {
                v["profiles"]["weak"]["e2e_latency"]["p99_us"] = json!(1.5)
            }),
            ("/verdict", |v| v["verdict"] = json!("maybe")),
            ("/schema_version", |v| v["schema_version"] = json!(2)),
            ("/slo/0/status", |v| {
                v["slo"][0]["status"] = json!("skipped")
            }),
            ("/faults/0/applied", |v| {
                v["faults"][0]["applied"] = json!(null)
            }),
            ("/started_at", |v| v["started_at"] = json!("yesterday")),
            ("/totals", |v| v["totals"]["lost"] = json!(0)),
            ("/totals/zombie_time", |v| {
                v["totals"]["zombie_time"]["p95_us"] = json!(1)
            }),
        ];
        for (path, spoil) in cases {
            let mut v = good.clone();
            spoil(&mut v);
            let e = errors(&v);
            assert!(
                e.iter().any(|e| e.starts_with(&format!("{path}: "))),
                "{path}: not rejected there: {e:#?}"
            );
        }
    }

    /// Every key path of a JSON value: object keys joined by `/`, map keys of
    /// `profiles` and of `reason_codes` as `*`, array items as `[]`.
    fn instance_paths(v: &Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let map = at == "/profiles" || at.ends_with("/reason_codes");
                    let k = if map { "*" } else { k.as_str() };
                    let p = format!("{at}/{k}");
                    out.insert(p.clone());
                    instance_paths(x, &p, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    instance_paths(x, &format!("{at}[]"), out);
                }
            }
            _ => {}
        }
    }

    /// Every property path the schema describes, following `$ref`, the
    /// non-null branch of `anyOf`, `additionalProperties` (as `*`) and
    /// `items` (as `[]`); each property must carry a description.
    fn schema_paths(
        root: &Value,
        node: &Value,
        at: &str,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").expect("local refs only");
            return schema_paths(root, &root["$defs"][name], at, out);
        }
        if let Some(branches) = node.get("anyOf").and_then(Value::as_array) {
            for b in branches {
                schema_paths(root, b, at, out);
            }
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let path = format!("{at}/{k}");
                assert!(
                    p.get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.is_empty()),
                    "{path} has no description"
                );
                out.insert(path.clone());
                schema_paths(root, p, &path, out);
            }
        }
        if let Some(extra) = node.get("additionalProperties").filter(|x| x.is_object()) {
            let path = format!("{at}/*");
            out.insert(path.clone());
            schema_paths(root, extra, &path, out);
        }
        if let Some(items) = node.get("items") {
            schema_paths(root, items, &format!("{at}[]"), out);
        }
    }

    #[test]
    fn the_schema_describes_exactly_the_fields_the_report_writes() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("JSON");
        let mut described = std::collections::BTreeSet::new();
        schema_paths(&schema, &schema, "", &mut described);
        let mut written = std::collections::BTreeSet::new();
        let v = serde_json::to_value(full_report()).expect("serialises");
        instance_paths(&v, "", &mut written);
        let undescribed: Vec<_> = written.difference(&described).collect();
        let unwritten: Vec<_> = described.difference(&written).collect();
        assert!(
            undescribed.is_empty(),
            "written, not in the schema: {undescribed:#?}"
        );
        assert!(
            unwritten.is_empty(),
            "in the schema, never written: {unwritten:#?}"
        );
        // And every object the schema describes is closed.
        fn closed(node: &Value, at: &str) {
            if let Some(m) = node.as_object() {
                if m.contains_key("properties") {
                    assert_eq!(
                        m.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{at} is not closed"
                    );
                }
                for (k, x) in m {
                    closed(x, &format!("{at}/{k}"));
                }
            }
        }
        closed(&schema, "");
    }
}

#[test]
fn duplicates_are_explained_where_they_are_counted() {
    let mut r = report();
    r.totals.telemetry.duplicates = 0;
    r.totals.commands.duplicates = 0;
    assert!(!markdown(&r).contains("duplicates: receptions of a message already received"));
    r.totals.telemetry.duplicates = 588;
    let series = crate::report::series::series_of(&[], Default::default());
    for page in [markdown(&r), crate::report::html::html(&r, &series)] {
        assert!(page.contains("QoS 1 allows them (at least once)"), "{page}");
    }
}

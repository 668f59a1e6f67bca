//! `docs/report.schema.json` against the report.json of real runs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::run::{run, scenario};

fn validator() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

/// The schema's complaints about `report`, as `path: message` lines.
pub fn errors(report: &Value) -> Vec<String> {
    let v = validator();
    v.iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// `path` (a report.json) follows the schema.
#[track_caller]
pub fn assert_valid(path: &Path) {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(errors(&report), Vec::<String>::new(), "{}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_json_of_a_short_run_with_faults_follows_the_schema() {
    // A blackhole (zombie time, offline reports), a crash (a death), a
    // broker restart (reconnects, unobserved time): most figures measured.
    let timeline = r#"
[[timeline]]
at = "1s"
duration = "3s"
kind = "blackhole"
[[timeline]]
at = "5s"
duration = "2s"
kind = "device_crash"
[[timeline]]
at = "8s"
duration = "1s"
kind = "broker_restart"
[slo]
lost_after_ack = "= 0"
"p.zombie_time.p99" = "<= 10s"
"p.commands.lost_after_ack" = "= 0"
"#;
    let r = run(&scenario("schema", timeline, ""), "embedded").await;
    let path = r.finished.dir.join("report.json");
    assert_valid(&path);
    // Not vacuous: the run measured the optional parts, and a spoiled copy
    // is refused.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["totals"]["zombie_time"].is_object(), "{v:#}");
    assert!(v["totals"]["reconnect_after_heal"]["censored"].is_u64());
    assert_eq!(v["slo"].as_array().map(Vec::len), Some(3));
    v["profiles"]["p"]
        .as_object_mut()
        .unwrap()
        .remove("silent_loss");
    v["faults"][0]["started_at_s"] = Value::from("1.0");
    let e = errors(&v);
    assert!(e.iter().any(|e| e.starts_with("/profiles/p: ")), "{e:#?}");
    assert!(
        e.iter().any(|e| e.starts_with("/faults/0/started_at_s: ")),
        "{e:#?}"
    );
}

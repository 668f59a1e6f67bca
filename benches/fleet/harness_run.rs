//! The harness's run of the same load: a scenario written here (one fleet,
//! one profile with QoS 1 and ack waiting, no faults) run by
//! `mqtt-chaos run SCENARIO --broker tcp://127.0.0.1:PORT --quiet --out DIR`,
//! and the figures read back from its `report.json`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The scenario's drain: what may still arrive after the schedule.
pub const DRAIN: Duration = Duration::from_secs(15);

/// What the harness run is asked to do.
#[derive(Debug, Clone)]
pub struct Load {
    pub devices: u32,
    /// Messages per second per device; `None`: connect and hold (idle).
    pub rate: Option<f64>,
    pub qos: u8,
    pub payload: usize,
    pub keepalive: Duration,
    pub duration: Duration,
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The scenario (pure). The idle fleet has no stream: it connects, keeps
/// its connection alive and publishes nothing.
pub fn scenario_text(load: &Load) -> String {
    let mut s = String::from("# written by the fleet capacity bench (benches/fleet)\n");
    s.push_str("name = \"fleet-capacity\"\n");
    s.push_str(&format!("duration = \"{}\"\n", secs(load.duration)));
    s.push_str(&format!("drain = \"{}\"\n", secs(DRAIN)));
    s.push_str("seed = 1\ninterval = \"10s\"\n\n");
    s.push_str("[profiles.bench]\n");
    s.push_str(&format!("keepalive = \"{}\"\n", secs(load.keepalive)));
    s.push_str("connect_timeout = \"10s\"\n");
    s.push_str("clean_session = true\n");
    s.push_str("ack = { wait = true, timeout = \"30s\", retries = 3 }\n\n");
    s.push_str("[[fleets]]\nname = \"fleet\"\n");
    s.push_str(&format!("count = {}\nprofile = \"bench\"\n", load.devices));
    if let Some(rate) = load.rate {
        s.push_str(&format!(
            "streams = [{{ name = \"telemetry\", topic = \"telemetry/{{device}}\", qos = {}, \
             rate = {rate}, payload_size = {} }}]\n",
            load.qos, load.payload
        ));
        s.push_str("\n[slo]\nlost_after_ack = \"= 0\"\n");
    }
    s
}

/// The figures of one harness run, from its `report.json`.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub verdict: String,
    pub sent: u64,
    pub delivered: u64,
    pub e2e_p99_us: Option<u64>,
    /// The causes of its `errors` (schedule_lag, …), deduplicated.
    pub incidents: Vec<String>,
}

/// Read the figures from a report (pure, on its text).
pub fn parse_report(text: &str) -> Result<Figures, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("report.json: {e}"))?;
    let totals = &v["totals"];
    let mut incidents: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["cause"].as_str().map(str::to_string))
        .collect();
    incidents.dedup();
    Ok(Figures {
        verdict: v["verdict"].as_str().unwrap_or("?").to_string(),
        sent: totals["sent"].as_u64().unwrap_or(0),
        delivered: totals["delivered"].as_u64().unwrap_or(0),
        e2e_p99_us: totals["e2e_latency"]["p99_us"].as_f64().map(|x| x as u64),
        incidents,
    })
}

pub fn read_report(out: &Path) -> Result<Figures, String> {
    let p = out.join("report.json");
    let text =
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    parse_report(&text)
}

/// The steady window's e2e p99: `mqtt-chaos report OUT --from STEADY_FROM
/// --to DURATION` rebuilds the window from the run's own intervals; `None`
/// when the run is too short to have one.
pub fn steady_p99(bin: &Path, out: &Path, duration: Duration) -> Result<Option<u64>, String> {
    let (from, to) = (crate::STEADY_FROM.as_secs(), duration.as_secs());
    if to <= from {
        return Ok(None);
    }
    let status = std::process::Command::new(bin)
        .arg("report")
        .arg(out)
        .arg(format!("--from={from}s"))
        .arg(format!("--to={to}s"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !verdict_exit(status) {
        return Err(format!(
            "mqtt-chaos report --from {from}s --to {to}s: {status}"
        ));
    }
    Ok(read_report(&out.join(format!("window-{from}s-{to}s")))?.e2e_p99_us)
}

/// `mqtt-chaos merge SHARD_DIR… --out OUT`: the shards of one harness run
/// (`--brokers K`) folded into one run directory with its reports.
pub fn merge(bin: &Path, shards: &[std::path::PathBuf], out: &Path) -> Result<(), String> {
    let status = std::process::Command::new(bin)
        .arg("merge")
        .args(shards)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !verdict_exit(status) {
        return Err(format!("mqtt-chaos merge {}: {status}", out.display()));
    }
    Ok(())
}

/// An exit code that is a verdict (pass, fail, error): the reports are
/// written, a failing or an erroneous one (e.g. schedule lag) too.
fn verdict_exit(status: std::process::ExitStatus) -> bool {
    use mqtt_chaos::runner::exit::{BREACH, ENVIRONMENT, PASS};
    status
        .code()
        .is_some_and(|c| [PASS, BREACH, ENVIRONMENT].map(i32::from).contains(&c))
}

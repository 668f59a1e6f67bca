//! Integration test: fault windows against a backend that closes before it
//! answers. `mqtt-chaos proxy-server --answer-delay 5ms` behaves like the
//! measured Toxiproxy 2.12: a disabled proxy's connections are closed, then
//! the answer comes 5 ms later, so every device's loss precedes the fault's
//! confirmation. The figures must come out as on the embedded engine:
//! one `reconnect_after_heal` per device and heal, no flap, no SLO left
//! unknown, verdict pass.
//!
//! `MQTT_CHAOS_WINDOW_RUNS` (default 2) sets how many runs one test makes
//! (`scripts/window-loop.sh` runs it many more times locally).

use std::time::Duration;

use mqtt_chaos::history::{DeviceEvent, Event, FaultEvent};

use crate::run::{broker, run_with, scenario};
use crate::support;

const DEVICES: u64 = 3;

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `proxy-server` in the Toxiproxy-like mode, and its `--faults` value.
async fn toxiproxy_like(delay: &str) -> (Server, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(support::bin())
        .args([
            "proxy-server",
            "--listen",
            "127.0.0.1:0",
            "--answer-delay",
            delay,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("proxy-server starts");
    let stdout = child.stdout.take().expect("piped");
    let server = Server(child);
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        }),
    )
    .await
    .expect("proxy-server prints its address within 10 s")
    .expect("the reader ends")
    .expect("stdout reads");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("proxy-server printed {line:?}"))
        .to_string();
    (server, format!("toxiproxy=http://{addr}"))
}

const TIMELINE: &str = r#"
[slo]
"reconnect_after_heal.p99" = "<= 5s"
flaps = "= 0"

[[timeline]]
at = "2s"
duration = "1500ms"
kind = "link_down"

[[timeline]]
at = "4500ms"
duration = "2s"
kind = "flapping"
down = "500ms"
up = "500ms"

[[timeline]]
at = "8s"
duration = "1s"
kind = "broker_restart"
"#;

async fn link_down_flapping_and_a_restart_through_a_backend_that_closes_first(broker_name: &str) {
    let runs: usize = std::env::var("MQTT_CHAOS_WINDOW_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for n in 0..runs {
        let (_server, faults) = toxiproxy_like("5ms").await;
        let r = run_with(&scenario("window", TIMELINE, ""), broker_name, Some(faults)).await;
        let report = &r.finished.report;
        // The race was there: some device lost its connection after the
        // link_down's request and before its confirmation.
        let (requested, applied) = window_of(&r.events, 0);
        let early = r.events.iter().any(|e| {
            matches!(e, Event::Device { at, what: DeviceEvent::ConnectionLost { .. }, .. }
                if *at >= requested && *at <= applied)
        });
        assert!(early, "run {n}: no loss inside the link_down's window");
        let rah = report
            .totals
            .reconnect_after_heal
            .as_ref()
            .unwrap_or_else(|| panic!("run {n}: reconnect_after_heal measured"));
        assert_eq!(
            (rah.count, rah.censored),
            (DEVICES * 3, Some(0)),
            "run {n}: one reconnect per device and heal; errors {:?}",
            report.errors
        );
        assert_eq!(report.totals.flaps, Some(0.0), "run {n}");
        assert!(
            report.slo.iter().all(|s| s.pass == Some(true)),
            "run {n}: {:?}",
            report.slo
        );
        assert_eq!(report.errors, vec![], "run {n}");
        assert_eq!(report.verdict, mqtt_chaos::report::Verdict::Pass, "run {n}");
        for f in &report.faults {
            assert!(f.applied, "run {n}: {f:?}");
            let (req, start) = (f.requested_at_s.unwrap(), f.started_at_s.unwrap());
            assert!(req <= start, "run {n}: {f:?}");
        }
    }
}

/// The requested and applied moments of fault `index`.
fn window_of(
    events: &[Event],
    index: usize,
) -> (mqtt_chaos::clock::Nanos, mqtt_chaos::clock::Nanos) {
    let find = |want: fn(&FaultEvent, usize) -> bool| {
        events
            .iter()
            .find_map(|e| match e {
                Event::Fault { at, what } if want(what, index) => Some(*at),
                _ => None,
            })
            .expect("the fault's events")
    };
    (
        find(|w, i| matches!(w, FaultEvent::Requested { index } if *index == i)),
        find(|w, i| matches!(w, FaultEvent::Applied { index, .. } if *index == i)),
    )
}

on_both_brokers! {
    through_a_toxiproxy_that_closes_before_it_answers => link_down_flapping_and_a_restart_through_a_backend_that_closes_first;
}

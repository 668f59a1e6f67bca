//! End to end: every fault kind through a whole run, on the embedded broker
//! and on Mosquitto, each asserting the fault's observable effect from the
//! run's own history (`--history`) and report.
//!
//! Every run is short (a few devices, keepalive 2 s, ping timeout 1 s) and
//! picks its own ports; assertions wait for nothing but the run's end and
//! carry explicit tolerances for a loaded 2-core machine.

use std::path::PathBuf;
use std::time::Duration;

use mqtt_chaos::clock::Nanos;
use mqtt_chaos::history::{
    DeviceEvent, DeviceId, Event, FaultEvent, LossCause, ObserverEvent, PublishOutcome,
};
use mqtt_chaos::runner::{self, Finished, RunOptions};

use crate::support;

const KEEPALIVE: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for scheduling on a busy machine.
const TOLERANCE: Duration = Duration::from_millis(1500);

/// A finished run and its history.
pub struct Ran {
    pub finished: Finished,
    pub events: Vec<Event>,
    _dir: tempfile::TempDir,
}

/// The base scenario of these tests, with `timeline` (TOML `[[timeline]]`
/// entries) and extra top-level/profile settings.
pub fn scenario(name: &str, timeline: &str, profile_extra: &str) -> String {
    format!(
        r#"
name = "{name}"
duration = "12s"
drain = "3s"
seed = 7
min_outage = "2s"

[profiles.p]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "1s", jitter = 0.0 }}
clean_session = false
will = {{ topic = "status/{{device}}", qos = 1, retain = true }}
online_republish = true
ack = {{ wait = true, timeout = "3s", retries = 3 }}
{profile_extra}

[[fleets]]
name = "dev"
count = 3
profile = "p"
group = "g"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 5.0
payload_size = 64

{timeline}
"#
    )
}

/// Which broker a test runs on; `None` when Mosquitto is missing outside CI.
pub fn broker(name: &str) -> Option<&'static str> {
    match name {
        "embedded" => Some("embedded"),
        "mosquitto" => support::mosquitto().map(|_| "mosquitto"),
        other => panic!("unknown broker {other}"),
    }
}

/// Run `text` in-process on `broker`.
pub async fn run(text: &str, broker: &str) -> Ran {
    run_with(text, broker, None).await
}

/// Run `text` in-process on `broker` with the fault backend `faults`.
pub async fn run_with(text: &str, broker: &str, faults: Option<String>) -> Ran {
    run_with_proxy(text, broker, faults, Default::default()).await
}

/// As [`run_with`], with the proxies placed by `proxy`; the run must be
/// able to vouch for its figures (no harness error).
pub async fn run_with_proxy(
    text: &str,
    broker: &str,
    faults: Option<String>,
    proxy: runner::ProxyOptions,
) -> Ran {
    let ran = run_unchecked(text, broker, faults, proxy).await;
    assert!(
        ran.finished.environment_error.is_none(),
        "{:?}",
        ran.finished.environment_error
    );
    ran
}

/// As [`run_with_proxy`], whatever the run's health: for tests of the
/// harness errors themselves.
pub async fn run_unchecked(
    text: &str,
    broker: &str,
    faults: Option<String>,
    proxy: runner::ProxyOptions,
) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let history = dir.path().join("history.jsonl");
    let opts = RunOptions {
        broker: Some(broker.into()),
        faults,
        history: Some(history.clone()),
        proxy,
        ..support::run_options(path, dir.path().join("out"))
    };
    let finished = runner::run(&opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let events = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ran {
        finished,
        events,
        _dir: dir,
    }
}

impl Ran {
    pub fn applied(&self, index: usize) -> Nanos {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Fault {
                    at,
                    what: FaultEvent::Applied { index: i, .. },
                } if *i == index => Some(*at),
                _ => None,
            })
            .unwrap_or_else(|| panic!("fault {index} never applied"))
    }

    pub fn healed(&self, index: usize) -> Nanos {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Fault {
                    at,
                    what: FaultEvent::Healed { index: i },
                } if *i == index => Some(*at),
                _ => None,
            })
            .unwrap_or_else(|| panic!("fault {index} never healed"))
    }

    pub fn device(&self, device: DeviceId) -> impl Iterator<Item = (Nanos, &DeviceEvent)> {
        self.events.iter().filter_map(move |e| match e {
            Event::Device {
                at,
                device: d,
                what,
            } if *d == device => Some((*at, what)),
            _ => None,
        })
    }

    /// Connection losses of a device in [from, to).
    pub fn losses(&self, device: DeviceId, from: Nanos, to: Nanos) -> Vec<(Nanos, LossCause)> {
        self.device(device)
            .filter_map(|(at, w)| match w {
                DeviceEvent::ConnectionLost { cause } if at >= from && at < to => {
                    Some((at, cause.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// CONNACKs of a device in [from, to).
    pub fn connects(&self, device: DeviceId, from: Nanos, to: Nanos) -> Vec<Nanos> {
        self.device(device)
            .filter_map(|(at, w)| match w {
                DeviceEvent::Connected { .. } if at >= from && at < to => Some(at),
                _ => None,
            })
            .collect()
    }

    /// Ack latencies of messages acked in [from, to).
    pub fn ack_latencies(&self, device: DeviceId, from: Nanos, to: Nanos) -> Vec<Duration> {
        self.device(device)
            .filter_map(|(at, w)| match w {
                DeviceEvent::Outcome {
                    outcome: PublishOutcome::Acked,
                    ack_latency_ns: Some(l),
                    ..
                } if at >= from && at < to => Some(Duration::from_nanos(*l)),
                _ => None,
            })
            .collect()
    }

    /// Telemetry receptions by the collector of a device in [from, to).
    pub fn received(&self, device: DeviceId, from: Nanos, to: Nanos) -> usize {
        self.events
            .iter()
            .filter(|e| {
                matches!(e, Event::Observer { at, what: ObserverEvent::Received { device: d, .. } }
                    if *d == device && *at >= from && *at < to)
            })
            .count()
    }

    pub fn statuses(&self, device: DeviceId) -> Vec<(Nanos, bool)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Observer {
                    at,
                    what:
                        ObserverEvent::Status {
                            device: d, online, ..
                        },
                } if *d == device => Some((*at, *online)),
                _ => None,
            })
            .collect()
    }

    /// The first device a device fault picked.
    pub fn victim(&self) -> Option<DeviceId> {
        self.events.iter().find_map(|e| match e {
            Event::Fault {
                what: FaultEvent::Applied { devices, .. },
                ..
            } => devices.first().copied(),
            _ => None,
        })
    }

    /// Whether the device's client believed it was connected at `t`.
    pub fn connected_at(&self, device: DeviceId, t: Nanos) -> bool {
        let mut up = false;
        for (at, w) in self.device(device) {
            if at > t {
                break;
            }
            match w {
                DeviceEvent::Connected { .. } => up = true,
                DeviceEvent::ConnectionLost { .. } | DeviceEvent::Crashed => up = false,
                _ => {}
            }
        }
        up
    }

    pub fn report(&self) -> serde_json::Value {
        serde_json::to_value(&self.finished.report).unwrap()
    }
}

pub fn secs(d: Duration) -> Nanos {
    Nanos::from_duration(d)
}

pub const DEVICES: [DeviceId; 3] = [0, 1, 2];
pub const END: Nanos = Nanos(u64::MAX);

/// Every device noticed a dead link within keepalive + ping timeout. With
/// `by_itself`, the client's own keepalive must be what noticed (half_open,
/// a paused broker: nobody else can); otherwise the broker's keepalive close
/// passed on through the blackhole may come first, as with Toxiproxy.
pub fn assert_noticed_by_client(r: &Ran, index: usize, by_itself: bool) {
    let t0 = r.applied(index);
    for d in DEVICES {
        let l = r.losses(d, t0 - secs(EARLY), END);
        let (at, cause) = l
            .first()
            .unwrap_or_else(|| panic!("device {d} never noticed"));
        let took = at.saturating_since(t0);
        assert!(
            took <= KEEPALIVE + PING_TIMEOUT + TOLERANCE,
            "device {d} noticed after {took:?}"
        );
        let own = matches!(cause, LossCause::PingTimeout | LossCause::KeepaliveMissed);
        assert!(
            own || (!by_itself && *cause == LossCause::Closed),
            "device {d}: {cause:?}"
        );
    }
}

/// Every device is connected again within the backoff cap (1 s) and the
/// tolerance after the heal. A device may come back a moment before the heal
/// is stamped (the backend confirms after the change took effect), so this
/// asks for its state, not for a CONNACK after the stamp.
pub fn assert_back_after_heal(r: &Ran, index: usize) {
    let by = r.healed(index) + secs(Duration::from_secs(1) + TOLERANCE + Duration::from_secs(1));
    for d in DEVICES {
        assert!(
            r.connected_at(d, by),
            "device {d} not back {by:?} after the heal"
        );
    }
}

/// A fault acts a moment before its backend confirms it: effects are looked
/// for from this much before the stamp.
pub const EARLY: Duration = Duration::from_millis(300);

/// Likewise a heal: a device may reconnect between the backend's
/// confirmation and its stamp.
pub const HEAL_RACE: Duration = Duration::from_millis(100);

on_both_brokers! {
    blackhole_is_noticed_by_the_client_within_keepalive_and_ping_timeout => blackhole;
    half_open_is_noticed_by_the_client_within_keepalive_and_ping_timeout => half_open;
    link_down_drops_every_connection_and_they_come_back_after_the_heal => link_down;
    latency_delays_every_ack_by_the_toxic => latency;
    bandwidth_limit_slows_delivery_without_losing_acked_messages => bandwidth;
    reset_peer_closes_the_connection_on_the_next_data => reset_peer;
    slow_close_delays_the_close_the_broker_sends => slow_close;
    slicer_delivers_intact_messages_slower => slicer;
    limit_data_cuts_the_connection_after_the_byte_budget => limit_data;
    flapping_link_drops_connections_each_cycle => flapping;
    broker_restart_drops_everyone_and_they_reconnect => broker_restart;
    broker_kill_drops_everyone_and_they_reconnect => broker_kill;
    broker_pause_is_noticed_by_ping_timeout_and_healed_by_resume => broker_pause;
    device_crash_fires_the_will_and_restart_republishes_online => device_crash;
    client_id_conflict_throws_the_device_out => client_id_conflict;
}

async fn blackhole(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "blackhole""#;
    let r = run(&scenario("blackhole", tl, ""), b).await;
    assert_noticed_by_client(&r, 0, false);
    assert_back_after_heal(&r, 0);
    // Nothing got through while the link was black.
    for d in DEVICES {
        let got = r.received(
            d,
            r.applied(0) + secs(Duration::from_millis(300)),
            r.healed(0),
        );
        assert_eq!(got, 0, "device {d}: {got} messages crossed a blackhole");
    }
}

async fn half_open(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "half_open""#;
    let r = run(&scenario("half-open", tl, ""), b).await;
    assert_noticed_by_client(&r, 0, true);
    assert_back_after_heal(&r, 0);
}

pub async fn link_down(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "link_down""#;
    let r = run(&scenario("link-down", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in DEVICES {
        let l = r.losses(d, t0 - secs(EARLY), END);
        let took = l.first().expect("lost").0.saturating_since(t0);
        assert!(
            took <= Duration::from_millis(500),
            "device {d} noticed after {took:?}"
        );
        assert!(
            r.connects(d, t0, t1 - secs(HEAL_RACE)).is_empty(),
            "device {d} connected through a down link"
        );
    }
    assert_back_after_heal(&r, 0);
}

async fn latency(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "latency"
latency = "400ms"
stream = "downstream""#;
    let r = run(&scenario("latency", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in DEVICES {
        let before = r.ack_latencies(d, secs(Duration::from_millis(1500)), t0);
        // Acks just before the heal is stamped were flushed by the removal.
        let during = r.ack_latencies(
            d,
            t0 + secs(Duration::from_millis(500)),
            t1 - secs(Duration::from_millis(500)),
        );
        assert!(
            !before.is_empty() && !during.is_empty(),
            "device {d}: no acks"
        );
        assert!(
            before.iter().all(|l| *l < Duration::from_millis(300)),
            "device {d} before: {before:?}"
        );
        assert!(
            during.iter().all(|l| *l >= Duration::from_millis(390)),
            "device {d} during: {during:?}"
        );
    }
}

async fn bandwidth(b: &str) {
    // 3 devices × 5 msg/s × 2000 B = 30 KB/s asked of a 2 KB/s link.
    let tl = r#"[[timeline]]
at = "3s"
duration = "4s"
kind = "bandwidth"
rate = 2
stream = "upstream""#;
    let text = scenario("bandwidth", tl, "").replace("payload_size = 64", "payload_size = 2000");
    let r = run(&text, b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    // The removal flushes everything queued a moment before the heal is
    // stamped: the window ends before that.
    let (from, to) = (
        t0 + secs(Duration::from_millis(500)),
        t1 - secs(Duration::from_millis(500)),
    );
    let window = to.saturating_since(from).as_secs_f64();
    let got: usize = DEVICES.iter().map(|&d| r.received(d, from, to)).sum();
    // Per connection at most what 2 KB/s carries (plus one buffered burst),
    // far below the 30 KB/s asked.
    assert!(
        (got as f64) < (window * 3.0 + 8.0),
        "{got} messages of 2 KB crossed 3 links of 2 KB/s in {window:.1}s"
    );
    let report = r.report();
    assert_eq!(report["totals"]["lost_after_ack"], 0, "{report:#}");
}

async fn reset_peer(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "reset_peer"
stream = "upstream""#;
    let r = run(&scenario("reset-peer", tl, ""), b).await;
    let t0 = r.applied(0);
    for d in DEVICES {
        // 5 msg/s: the next data comes within 200 ms.
        let l = r.losses(d, t0 - secs(EARLY), END);
        let took = l.first().expect("lost").0.saturating_since(t0);
        assert!(
            took <= Duration::from_millis(200) + TOLERANCE,
            "device {d}: {took:?}"
        );
        assert!(r
            .connects(
                d,
                t0 + secs(Duration::from_millis(100)),
                r.healed(0) - secs(HEAL_RACE)
            )
            .is_empty());
    }
    assert_back_after_heal(&r, 0);
}

async fn slow_close(b: &str) {
    // The broker restarts inside the slow_close window: its close reaches
    // the clients only after the toxic's delay.
    let tl = r#"[[timeline]]
at = "2s"
duration = "6s"
kind = "slow_close"
delay = "1500ms"
stream = "downstream"
[[timeline]]
at = "4s"
duration = "1s"
kind = "broker_restart""#;
    // No ping timeout and a long keepalive: only the close can tell.
    let text = scenario("slow-close", tl, "")
        .replace("ping_timeout = \"1s\"", "ping_timeout = \"off\"")
        .replace("keepalive = \"2s\"", "keepalive = \"10s\"");
    let r = run(&text, b).await;
    let stopped = r.applied(1);
    for d in DEVICES {
        let l = r.losses(d, secs(Duration::from_secs(3)), END);
        let (at, cause) = l.first().expect("lost");
        let took = at.saturating_since(stopped);
        assert!(
            took >= Duration::from_millis(1200) && took <= Duration::from_millis(1500) + TOLERANCE,
            "device {d} saw the close ({cause:?}) after {took:?}"
        );
    }
}

async fn slicer(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "4s"
kind = "slicer"
average_size = 8
size_variation = 2
delay = "10ms"
stream = "upstream""#;
    let r = run(&scenario("slicer", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in DEVICES {
        // Acks just before the heal is stamped were flushed by the removal.
        let during = r.ack_latencies(
            d,
            t0 + secs(Duration::from_millis(500)),
            t1 - secs(Duration::from_millis(500)),
        );
        assert!(!during.is_empty(), "device {d}: no acks while sliced");
        // A 64-byte publish in ~8-byte slices 10 ms apart: ≥ 50 ms.
        assert!(
            during.iter().all(|l| *l >= Duration::from_millis(50)),
            "device {d}: {during:?}"
        );
    }
    let report = r.report();
    assert_eq!(report["totals"]["lost_after_ack"], 0);
    assert_eq!(report["totals"]["lost_unacked"], 0, "{report:#}");
}

async fn limit_data(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "limit_data"
bytes = 600
stream = "upstream""#;
    let r = run(&scenario("limit-data", tl, ""), b).await;
    let t0 = r.applied(0);
    for d in DEVICES {
        // 5 × 66-byte publishes a second: 600 bytes last about 2 s.
        let l = r.losses(
            d,
            t0 - secs(EARLY),
            r.healed(0) + secs(Duration::from_millis(500)),
        );
        assert!(
            !l.is_empty(),
            "device {d} kept its connection past the byte budget"
        );
        assert!(
            matches!(l[0].1, LossCause::Closed | LossCause::Error(_)),
            "{:?}",
            l[0].1
        );
    }
    assert_back_after_heal(&r, 0);
}

async fn flapping(b: &str) {
    let tl = r#"[[timeline]]
at = "2s"
duration = "7s"
kind = "flapping"
down = "1s"
up = "2s""#;
    let r = run(&scenario("flapping", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in DEVICES {
        // Down at 2, 5 and 8 s: three losses.
        let l = r.losses(d, t0 - secs(EARLY), t1 + secs(Duration::from_millis(200)));
        assert_eq!(l.len(), 3, "device {d}: {l:?}");
    }
    assert_back_after_heal(&r, 0);
}

async fn broker_cycle(b: &str, kind: &str) {
    let tl = format!(
        r#"[[timeline]]
at = "3s"
duration = "2s"
kind = "{kind}""#
    );
    let r = run(&scenario(kind, &tl, ""), b).await;
    let t0 = r.applied(0);
    for d in DEVICES {
        let l = r.losses(d, t0 - secs(Duration::from_millis(500)), END);
        assert!(!l.is_empty(), "device {d} never lost the broker");
    }
    assert_back_after_heal(&r, 0);
}

pub async fn broker_restart(b: &str) {
    broker_cycle(b, "broker_restart").await
}

pub async fn broker_kill(b: &str) {
    broker_cycle(b, "broker_kill").await
}

pub async fn broker_pause(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "broker_pause""#;
    let r = run(&scenario("broker-pause", tl, ""), b).await;
    assert_noticed_by_client(&r, 0, true);
    assert_back_after_heal(&r, 0);
}

async fn device_crash(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "device_crash"
devices = 1"#;
    let r = run(&scenario("device-crash", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    let victim = r.victim().expect("a device crashed");
    let st = r.statuses(victim);
    let offline = st
        .iter()
        .find(|(at, on)| !on && *at >= t0 - secs(EARLY))
        .expect("the will never arrived");
    assert!(
        offline.0.saturating_since(t0) <= Duration::from_secs(1),
        "will after {:?}",
        offline.0.saturating_since(t0)
    );
    let online = st
        .iter()
        .find(|(at, on)| *on && *at >= t1)
        .expect("online never republished");
    assert!(online.0.saturating_since(t1) <= TOLERANCE + Duration::from_secs(1));
    // The others never went offline.
    for d in DEVICES.iter().copied().filter(|d| *d != victim) {
        assert!(
            r.statuses(d).iter().all(|(_, on)| *on),
            "device {d} reported offline"
        );
    }
}

async fn client_id_conflict(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "client_id_conflict"
devices = 1"#;
    let r = run(&scenario("client-id-conflict", tl, ""), b).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    let victim = r.victim().expect("a device was picked");
    let l = r.losses(
        victim,
        t0 - secs(EARLY),
        t1 + secs(Duration::from_millis(300)),
    );
    assert!(!l.is_empty(), "the victim was never thrown out");
    // Thrown out and back, in turns with the intruder: connected once it left.
    let by = t1 + secs(Duration::from_secs(1) + TOLERANCE);
    assert!(
        r.connected_at(victim, by),
        "the victim did not come back after the intruder left"
    );
}

/// The exit codes the command line promises, through the real binary.
mod command_line {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_malformed_scenario_exits_2_naming_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(
            &p,
            "name = \"bad\"\nduration = \"10s\"\n[profiles.p]\nkeepalive = \"5s\"\nping_timeout = \"9s\"\n[[fleets]]\nname = \"f\"\ncount = 1\nprofile = \"p\"\n",
        )
        .unwrap();
        let out = Command::new(support::bin())
            .arg("run")
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:5:", p.display());
        assert!(err.contains(&want), "{err}");
        assert!(
            err.contains("ping_timeout must be shorter than keepalive"),
            "{err}"
        );
    }

    #[test]
    fn an_unreachable_external_broker_exits_3_within_the_connect_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, scenario("unreachable", "", "")).unwrap();
        let started = std::time::Instant::now();
        let out = Command::new(support::bin())
            .args(["run", "--quiet", "--broker"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // connect_timeout is 2 s; allow process start-up on a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(2) + Duration::from_secs(4));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    #[test]
    fn ctrl_c_heals_stops_everything_and_writes_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        let tl = "[[timeline]]\nat = \"1s\"\nduration = \"8s\"\nkind = \"blackhole\"";
        std::fs::write(&p, scenario("interrupted", tl, "")).unwrap();
        let history = dir.path().join("history.jsonl");
        let mut child = Command::new(support::bin())
            .args(["run", "--quiet", "--history"])
            .arg(&history)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg(&p)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Wait (bounded) until the fault is in force.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut broker_children = Vec::new();
        loop {
            broker_children = if broker_children.is_empty() {
                crate::support::children(pid)
            } else {
                broker_children
            };
            let applied =
                std::fs::read_to_string(&history).is_ok_and(|h| h.contains("\"applied\""));
            if applied && !broker_children.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the run never applied its fault"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("out/report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["faults"][0]["applied"], true);
        for c in broker_children {
            assert!(!alive(c), "child {c} outlived the harness");
        }
    }

    #[test]
    fn validate_says_the_embedded_broker_refuses_keepalive_off_and_mosquitto_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            scenario("ka0", "", "").replace(
                "keepalive = \"2s\"\nping_timeout = \"1s\"",
                "keepalive = \"off\"",
            ),
        )
        .unwrap();
        let out = Command::new(support::bin())
            .arg("validate")
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("profiles.p.keepalive") && err.contains("refused"),
            "{err}"
        );
        let out = Command::new(support::bin())
            .args(["validate", "--broker", "mosquitto"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn validate_accepts_every_shipped_scenario() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files = Vec::new();
        for dir in [root.clone(), root.join("faults")] {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "toml") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 17, "{files:?}");
        for f in files {
            let out = Command::new(support::bin())
                .arg("validate")
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The Toxiproxy backend drives a whole run over HTTP: here against
/// `mqtt-chaos proxy-server`, the stand-in that speaks Toxiproxy's API.
mod toxiproxy_backend {
    use super::*;

    struct Server(std::process::Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn proxy_server() -> (Server, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(support::bin())
            .args(["proxy-server", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .spawn()
            .unwrap();
        let server = Server(child);
        // Wait (bounded) until the API answers.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "proxy-server never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (server, format!("toxiproxy=http://127.0.0.1:{port}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_link_down_and_a_latency_spike_through_the_toxiproxy_api() {
        let (_server, faults) = proxy_server().await;
        let tl = r#"[[timeline]]
at = "2s"
duration = "2s"
kind = "link_down"
[[timeline]]
at = "6s"
duration = "3s"
kind = "latency"
latency = "400ms"
stream = "downstream""#;
        let r = run_with(&scenario("via-toxiproxy", tl, ""), "embedded", Some(faults)).await;
        assert!(
            r.finished.report.versions.faults.starts_with("toxiproxy "),
            "{:?}",
            r.finished.report.versions
        );
        let (t0, t1) = (r.applied(0), r.healed(0));
        for d in DEVICES {
            assert!(
                !r.losses(d, t0 - secs(EARLY), t1).is_empty(),
                "device {d} kept a down link"
            );
            let during = r.ack_latencies(
                d,
                r.applied(1) + secs(Duration::from_millis(500)),
                r.healed(1) - secs(Duration::from_millis(500)),
            );
            assert!(
                !during.is_empty() && during.iter().all(|l| *l >= Duration::from_millis(390)),
                "device {d}: {during:?}"
            );
        }
        assert_back_after_heal(&r, 0);
        let report = r.report();
        assert_eq!(report["faults"][0]["applied"], true);
        assert_eq!(report["faults"][1]["applied"], true);
    }
}

/// Commands queued for an offline persistent subscriber survive a broker
/// kill only when the broker persists them (Mosquitto).
mod persistence {
    use super::*;
    use mqtt_chaos::history::StreamId;

    fn text(persistence: bool) -> String {
        format!(
            r#"
name = "kill-queued"
duration = "10s"
drain = "4s"
seed = 3
[broker]
persistence = {persistence}
[profiles.p]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "500ms", jitter = 0.0 }}
clean_session = false
resubscribe = true
ack = {{ wait = true, timeout = "3s", retries = 0 }}
[[fleets]]
name = "dev"
count = 1
profile = "p"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = 1
rate = 1.0
[[fleets.commands]]
name = "c"
topic = "cmd/{{device}}"
qos = 1
rate = 5.0
[[timeline]]
at = "2s"
duration = "4s"
kind = "device_crash"
[[timeline]]
at = "4s"
duration = "1s"
kind = "broker_kill"
"#
        )
    }

    /// (acked commands never received, those of them published while the
    /// device was down and before the kill)
    fn lost(r: &Ran) -> (u64, u64) {
        use std::collections::{BTreeMap, BTreeSet};
        let (crash, kill) = (r.applied(0), r.applied(1));
        let mut published: BTreeMap<(StreamId, u64), Nanos> = BTreeMap::new();
        let mut acked = BTreeSet::new();
        let mut received = BTreeSet::new();
        for e in &r.events {
            match e {
                Event::Observer {
                    at,
                    what: ObserverEvent::CommandPublished { stream, seq, .. },
                } => {
                    published.insert((*stream, *seq), *at);
                }
                Event::Observer {
                    what:
                        ObserverEvent::CommandOutcome {
                            stream,
                            seq,
                            outcome: PublishOutcome::Acked,
                            ..
                        },
                    ..
                } => {
                    acked.insert((*stream, *seq));
                }
                Event::Device {
                    what: DeviceEvent::CommandReceived { stream, seq, .. },
                    ..
                } => {
                    received.insert((*stream, *seq));
                }
                _ => {}
            }
        }
        let lost: Vec<_> = acked.iter().filter(|k| !received.contains(k)).collect();
        let queued = lost
            .iter()
            .filter(|k| published[k] >= crash && published[k] < kill)
            .count() as u64;
        (lost.len() as u64, queued)
    }

    fn queued_while_down(r: &Ran) -> u64 {
        let (crash, kill) = (r.applied(0), r.applied(1));
        r.events
            .iter()
            .filter(|e| {
                matches!(e, Event::Observer { at, what: ObserverEvent::CommandPublished { .. } }
                    if *at >= crash && *at < kill)
            })
            .count() as u64
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kill_without_persistence_loses_every_queued_command() {
        let Some(b) = broker("mosquitto") else { return };
        let r = run(&text(false), b).await;
        let (lost, queued_lost) = lost(&r);
        let queued = queued_while_down(&r);
        assert!(
            queued >= 5,
            "only {queued} commands queued while the device was down"
        );
        assert_eq!(
            queued_lost, queued,
            "every command queued before the kill is lost"
        );
        let report = r.report();
        assert_eq!(
            report["totals"]["commands"]["lost_after_ack"], lost,
            "{report:#}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kill_with_persistence_loses_no_queued_command() {
        let Some(b) = broker("mosquitto") else { return };
        let r = run(&text(true), b).await;
        let (lost, _) = lost(&r);
        assert!(queued_while_down(&r) >= 5);
        assert_eq!(lost, 0);
        let report = r.report();
        assert_eq!(
            report["totals"]["commands"]["lost_after_ack"], 0,
            "{report:#}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn persistence_on_the_embedded_broker_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text(true)).unwrap();
        let opts = support::run_options(path.clone(), dir.path().join("out"));
        let e = runner::run(&opts).await.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{}:", path.display())) && msg.contains("broker.persistence"),
            "{msg}"
        );
        assert!(
            !dir.path().join("out").exists(),
            "nothing may be started or written"
        );
    }
}

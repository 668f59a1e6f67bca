//! End to end: the connection and offline figures of METRICS.md in
//! `report.json`, checked against the run's own history (`--history`) with
//! exact counts, and durations against what the history says happened.
//!
//! Runs use the base scenario of `run.rs` (3 devices, keepalive 2 s, ping
//! timeout 1 s, retained will, `online_republish`, `min_outage` 2 s), on the
//! embedded broker and on Mosquitto (skipped where it is missing, outside CI).

use std::time::Duration;

use mqtt_chaos::clock::Nanos;
use mqtt_chaos::history::{DeviceEvent, DeviceId};
use serde_json::Value;

use crate::run::{broker, run, scenario, Ran};

const DEVICES: [DeviceId; 3] = [0, 1, 2];
const KEEPALIVE: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(5);
/// Slack for scheduling on a busy 2-core machine.
const TOLERANCE: Duration = Duration::from_millis(1500);
/// A fault acts a moment before its backend confirms it.
const EARLY: Duration = Duration::from_millis(300);

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// A histogram figure's field as a number (panics on `null`).
fn field(fig: &Value, name: &str) -> u64 {
    fig[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not a number in {fig}"))
}

/// HDR keeps 3 significant digits: a recorded value reads back within 0.1 %.
fn close_to(reported: u64, exact: Duration) -> bool {
    let exact = us(exact) as f64;
    (reported as f64 - exact).abs() <= exact * 0.001 + 1.0
}

/// The first `ConnectionLost` of a device at or after `from`.
fn first_loss(r: &Ran, d: DeviceId, from: Nanos) -> Option<Nanos> {
    r.device(d).find_map(|(at, w)| {
        matches!(w, DeviceEvent::ConnectionLost { .. } if at >= from).then_some(at)
    })
}

/// The first observer `offline` of a device at or after `from`.
fn first_offline(r: &Ran, d: DeviceId, from: Nanos) -> Option<Nanos> {
    r.statuses(d)
        .into_iter()
        .find(|(at, on)| !on && *at >= from)
        .map(|(at, _)| at)
}

/// Offline episodes of a device as the observer saw them: `offline` after
/// not-offline opens one.
fn offline_episodes(r: &Ran, d: DeviceId) -> u64 {
    let mut offline = false;
    let mut n = 0;
    for (_, on) in r.statuses(d) {
        if !on && !offline {
            n += 1;
        }
        offline = !on;
    }
    n
}

on_both_brokers! {
    a_half_open_link_gives_one_zombie_sample_per_device_and_the_will_follows_the_clients_close => half_open_zombies;
    a_crash_is_one_true_offline_episode_reported_at_once => crash_reported;
    a_crash_without_a_will_is_one_missed_offline => crash_without_will;
    a_latency_spike_longer_than_the_keepalive_gives_false_offline_reports => latency_false_offline;
    without_online_republish_the_offline_episode_goes_stale => stale_without_republish;
}

async fn half_open_zombies(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "half_open""#;
    let r = run(&scenario("zombie", tl, ""), b).await;
    let report = r.report();
    let t = &report["totals"];
    let t0 = r.applied(0);

    // One zombie sample per device, each exactly its first loss − t_fault.
    let zombies: Vec<Duration> = DEVICES
        .iter()
        .map(|&d| {
            first_loss(&r, d, t0)
                .expect("every client noticed")
                .saturating_since(t0)
        })
        .collect();
    let zt = &t["zombie_time"];
    assert_eq!(field(zt, "count"), 3, "{zt}");
    assert_eq!(field(zt, "censored"), 0, "{zt}");
    assert_eq!(t["zombie_undetected"], 0);
    let (min, max) = (
        zombies.iter().min().copied().unwrap(),
        zombies.iter().max().copied().unwrap(),
    );
    assert!(close_to(field(zt, "min_us"), min), "{zt} vs {zombies:?}");
    assert!(close_to(field(zt, "max_us"), max), "{zt} vs {zombies:?}");
    // A PINGREQ sent after the fault must time out (≥ ping timeout); one is
    // sent within a keepalive.
    assert!(min + EARLY >= PING_TIMEOUT, "{zombies:?}");
    assert!(max <= KEEPALIVE + PING_TIMEOUT + TOLERANCE, "{zombies:?}");

    // The proxy passes the client's own close on, so the broker publishes
    // the will right after the client gave up — long before its keepalive
    // check (1.5 × keepalive) would have.
    let detect: Vec<Duration> = DEVICES
        .iter()
        .map(|&d| {
            first_offline(&r, d, t0)
                .expect("the will arrived")
                .saturating_since(t0)
        })
        .collect();
    let bd = &t["broker_detect_time"];
    assert_eq!(field(bd, "count"), 3, "{bd}");
    assert_eq!(field(bd, "censored"), 0, "{bd}");
    assert!(close_to(field(bd, "max_us"), *detect.iter().max().unwrap()));
    for (z, d) in zombies.iter().zip(&detect) {
        assert!(
            d >= z && *d <= *z + TOLERANCE,
            "will after {d:?}, client after {z:?}"
        );
    }
    assert!(*detect.iter().max().unwrap() <= KEEPALIVE.mul_f64(1.5) + TOLERANCE);

    // A 5 s outage ≥ min_outage (2 s): every report is true.
    assert_eq!(t["true_offline"], 3, "{t}");
    assert_eq!(t["false_offline"], 0);
    assert_eq!(t["false_offline_rate"], 0.0);
    assert_eq!(t["missed_offline"], 0);
    assert_eq!(t["offline_unobserved"], 0);
    // Shown online while unreachable: from the fault to each will.
    let fo = &t["false_online_time"];
    assert_eq!(field(fo, "count"), 3);
    // (A device may reconnect and republish `online` in the moment between
    // the heal taking effect and its confirmation stamp: that moment counts.)
    assert!(
        field(fo, "max_us") <= us(*detect.iter().max().unwrap()) + 100_000,
        "{fo} vs {detect:?}"
    );
    // Every device is back and republished online within settle.
    assert_eq!(field(&t["stale_offline_time"], "max_us"), 0);
    // One outage seen by each client, from its loss to its CONNACK.
    let os = &t["outage_seen_by_client"];
    assert_eq!((field(os, "count"), field(os, "censored")), (3, 0), "{os}");
    let healed = r.healed(0);
    assert!(field(os, "min_us") >= us(healed.saturating_since(t0) - max - EARLY));
    // Each device tried again after the heal within what was left of an
    // attempt swallowed by the half-open link (connect timeout 2 s) plus
    // the backoff cap (1 s), and its telemetry came back.
    let fa = &t["first_attempt_delay"];
    assert_eq!((field(fa, "count"), field(fa, "censored")), (3, 0), "{fa}");
    let retry = Duration::from_secs(2 + 1);
    assert!(field(fa, "max_us") <= us(retry + TOLERANCE), "{fa}");
    let rt = &t["resume_time"];
    assert_eq!((field(rt, "count"), field(rt, "censored")), (3, 0), "{rt}");
    assert!(
        field(rt, "max_us") <= us(retry + Duration::from_secs(1) + TOLERANCE),
        "{rt}"
    );
    // The one profile holds every device: its figures are the totals'.
    assert_eq!(report["profiles"]["p"]["zombie_time"], *zt);
}

async fn crash_reported(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "device_crash"
devices = 1"#;
    let r = run(&scenario("crash", tl, ""), b).await;
    let t = &r.report()["totals"];
    let victim = r.victim().expect("a device crashed");
    let t0 = r.applied(0);
    assert_eq!(t["true_offline"], 1, "{t}");
    assert_eq!(t["false_offline"], 0);
    assert_eq!(t["false_offline_rate"], 0.0);
    assert_eq!(t["missed_offline"], 0);
    // The socket closes with the process: the will fires at once. The crash
    // is stamped after the abort, so the will may even come first.
    let bd = &t["broker_detect_time"];
    assert_eq!((field(bd, "count"), field(bd, "censored")), (1, 0), "{bd}");
    assert!(field(bd, "max_us") <= us(Duration::from_secs(1)), "{bd}");
    let offline = first_offline(&r, victim, t0 - Nanos::from_duration(EARLY)).expect("will");
    assert!(offline.saturating_since(t0) <= Duration::from_secs(1));
    // Restarted, reconnected, republished online: one episode, not stale.
    let st = &t["stale_offline_time"];
    assert_eq!((field(st, "count"), field(st, "max_us")), (1, 0), "{st}");
    // No link fault: no zombie, no outage figures.
    assert!(t["zombie_time"].is_null() && t["outage_seen_by_client"].is_null());
}

async fn crash_without_will(b: &str) {
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "device_crash"
devices = 1"#;
    let text = scenario("crash-no-will", tl, "")
        .replace(
            "will = { topic = \"status/{device}\", qos = 1, retain = true }\n",
            "",
        )
        .replace("online_republish = true\n", "");
    assert!(!text.contains("will ="), "{text}");
    let r = run(&text, b).await;
    let t = &r.report()["totals"];
    assert_eq!(t["missed_offline"], 1, "{t}");
    // No status topic: nothing the observer could show.
    for fig in [
        "true_offline",
        "false_offline",
        "false_offline_rate",
        "stale_offline_time",
        "false_online_time",
        "broker_detect_time",
    ] {
        assert!(t[fig].is_null(), "{fig} = {}", t[fig]);
    }
}

async fn latency_false_offline(b: &str) {
    // 6 s upstream latency against keepalive 2 s: the broker hears nothing
    // for longer than 1.5 × keepalive, the client's pings go unanswered;
    // the device is alive and its link only degraded. The silence the
    // broker hears is the latency less the gap between two publishes;
    // Mosquitto 2.0 keeps time for keepalives in whole seconds and needs
    // more than 3 of them, so 4 s of latency (a 3.8 s silence) was seen
    // now and then to end before it timed the connection out.
    let tl = r#"[[timeline]]
at = "3s"
duration = "5s"
kind = "latency"
latency = "6s"
stream = "upstream""#;
    let r = run(&scenario("latency-false-offline", tl, ""), b).await;
    let t = &r.report()["totals"];
    let episodes: u64 = DEVICES.iter().map(|&d| offline_episodes(&r, d)).sum();
    assert!(episodes >= 1, "no offline report at all");
    assert_eq!(t["false_offline"], episodes, "{t}");
    assert_eq!(t["true_offline"], 0);
    assert_eq!(t["false_offline_rate"], 1.0);
    // Nobody died: no detection, nothing missed, never wrongly online.
    assert!(t["missed_offline"].is_null() && t["broker_detect_time"].is_null());
    assert_eq!(field(&t["false_online_time"], "max_us"), 0);
    // A degraded link is no blackhole.
    assert!(t["zombie_time"].is_null());
}

async fn stale_without_republish(b: &str) {
    // 3 s dead ≥ min_outage (2 s): the will reports a true outage (the dead
    // span runs from the confirmed kill to the restart, a little under the
    // scheduled duration, so 2 s would be a blip).
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "device_crash"
devices = 1"#;
    let text =
        scenario("stale", tl, "").replace("online_republish = true", "online_republish = false");
    let r = run(&text, b).await;
    let t = &r.report()["totals"];
    let victim = r.victim().expect("a device crashed");
    let back = r
        .connects(victim, r.healed(0), Nanos(u64::MAX))
        .first()
        .copied()
        .expect("the victim came back");
    assert_eq!(t["true_offline"], 1, "{t}");
    // Open from the will to the run's end (after 12 s + 3 s drain), stale
    // from settle after the reconnect.
    let st = &t["stale_offline_time"];
    assert_eq!(field(st, "count"), 1, "{st}");
    let at_least = Duration::from_secs(15).saturating_sub(back.as_duration() + SETTLE);
    let stale = Duration::from_micros(field(st, "max_us"));
    assert!(
        stale + Duration::from_millis(10) >= at_least && stale <= at_least + Duration::from_secs(6),
        "stale {stale:?}, back at {back:?}"
    );
}

/// keepalive "off" (Mosquitto only: rumqttd refuses keepalive 0): nothing
/// notices a half-open link, neither the client nor the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keepalive_off_a_half_open_link_is_never_noticed_and_every_offline_is_missed() {
    let Some(b) = broker("mosquitto") else { return };
    let tl = r#"[[timeline]]
at = "3s"
duration = "7s"
kind = "half_open""#;
    let text = scenario("keepalive-off", tl, "")
        .replace("keepalive = \"2s\"", "keepalive = \"off\"")
        .replace("ping_timeout = \"1s\"\n", "");
    let r = run(&text, b).await;
    let t = &r.report()["totals"];
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in DEVICES {
        assert_eq!(r.losses(d, t0, t1), vec![], "device {d} noticed");
    }
    assert_eq!(t["zombie_undetected"], 3, "{t}");
    let zt = &t["zombie_time"];
    assert_eq!((field(zt, "count"), field(zt, "censored")), (0, 3), "{zt}");
    // 7 s of half-open ≥ 1.5 × 0 + settle: the link was gone long enough
    // that a will was due, and none came.
    assert_eq!(t["missed_offline"], 3);
    let bd = &t["broker_detect_time"];
    assert_eq!((field(bd, "count"), field(bd, "censored")), (0, 3), "{bd}");
    assert_eq!(t["true_offline"], 0);
    // Shown online for the whole outage.
    let fo = &t["false_online_time"];
    let window = us(t1.saturating_since(t0));
    assert!(field(fo, "min_us") as f64 >= window as f64 * 0.999, "{fo}");
}

//! The figures a false-offline sign-off rests on, proven on Mosquitto with
//! exact counts taken from the run's own history: takeovers that fire no
//! will, and commands nobody could receive.

use std::collections::BTreeSet;
use std::time::Duration;

use mqtt_chaos::clock::Nanos;
use mqtt_chaos::history::{DeviceEvent, Event, ObserverEvent, PublishOutcome};

use crate::run::{broker, run, scenario, secs};

/// Mosquitto 2.0.11 fires no will when a persistent MQTT 3.1.1 session is
/// taken over: the conflict shows in no offline figure, only in
/// `takeovers` (and in `flaps`, since no link or broker fault explains it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_of_a_persistent_session_is_counted_though_no_will_fires() {
    let Some(b) = broker("mosquitto") else { return };
    let tl = r#"[[timeline]]
at = "3s"
duration = "4s"
kind = "client_id_conflict"
devices = 1"#;
    let r = run(&scenario("takeover", tl, ""), b).await;
    let victim = r.victim().expect("a device was picked");
    let (t0, t1) = (r.applied(0), r.healed(0));
    // Every loss of the victim while its intruder was there is a takeover
    // (the intruder's CONNACK threw it out); none of the others lost any.
    let losses = r
        .losses(
            victim,
            t0 - secs(Duration::from_millis(300)),
            t1 + secs(Duration::from_millis(300)),
        )
        .len() as u64;
    assert!(losses >= 1, "the victim was never thrown out");
    let all_losses: u64 = (0..3)
        .map(|d| {
            r.losses(
                d,
                Nanos::ZERO,
                Nanos::from_duration(Duration::from_secs(3600)),
            )
            .len() as u64
        })
        .sum();
    assert_eq!(all_losses, losses, "only the victim lost connections");
    let rep = r.report();
    let p = &rep["profiles"]["p"];
    assert_eq!(p["takeovers"], losses, "{p}");
    assert_eq!(rep["totals"]["takeovers"], losses);
    // No will: the observer never showed the victim offline.
    assert!(
        r.statuses(victim).iter().all(|(_, online)| *online),
        "a will fired: {:?}",
        r.statuses(victim)
    );
    assert_eq!(p["false_offline"], 0);
    assert!(p["flaps"].as_f64().unwrap() > 0.0, "{p}");
}

/// Commands queued for a device that crashed for good are `undeliverable`:
/// its persistent session on the broker takes them (PUBACK to the sender),
/// and nobody will ever receive them — not a loss of the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_for_a_device_crashed_for_good_are_undeliverable_not_lost() {
    let Some(b) = broker("mosquitto") else { return };
    let tl = r#"[[fleets.commands]]
name = "c"
topic = "cmd/{device}"
qos = 1
rate = 4.0

[[timeline]]
at = "4s"
kind = "device_crash"
devices = 1"#;
    let r = run(&scenario("undeliverable", tl, ""), b).await;
    let victim = r.victim().expect("a device was picked");
    assert!(
        r.events.iter().any(|e| matches!(
            e,
            Event::Device { device, what: DeviceEvent::Crashed, .. } if *device == victim
        )),
        "the victim never crashed"
    );
    // From the history: acked commands per device, and those received.
    let mut acked = BTreeSet::new();
    let mut received = BTreeSet::new();
    for e in &r.events {
        match e {
            Event::Observer {
                what:
                    ObserverEvent::CommandOutcome {
                        device,
                        stream,
                        seq,
                        outcome: PublishOutcome::Acked,
                    },
                ..
            } => {
                acked.insert((*device, *stream, *seq));
            }
            Event::Device {
                device,
                what: DeviceEvent::CommandReceived { stream, seq, .. },
                ..
            } => {
                received.insert((*device, *stream, *seq));
            }
            _ => {}
        }
    }
    let never: Vec<_> = acked.difference(&received).collect();
    let for_victim = never.iter().filter(|(d, _, _)| *d == victim).count() as u64;
    assert_eq!(
        never.len() as u64,
        for_victim,
        "only the dead device missed commands: {never:?}"
    );
    // 4/s from the crash at 4 s to the end at 12 s: about 32.
    assert!(
        for_victim >= 20,
        "{for_victim} commands for the dead device"
    );
    let c = &r.report()["totals"]["commands"];
    assert_eq!(c["undeliverable"], for_victim, "{c}");
    assert_eq!(c["lost_after_ack"], 0, "{c}");
}

/// A cut cable (`cut`: neither side's close passed on): the client notices
/// first and gives up, but the broker hears nothing until its own
/// keepalive check drops the connection, so the will — and the offline
/// report — come at 1.5 × keepalive plus the broker's check period, not at
/// the client's detection. Mosquitto 2.0.11 closes a client silent for more
/// than keepalive × 3/2 (whole seconds), checked at most every 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_is_one_true_offline_reported_at_the_brokers_keepalive() {
    let Some(b) = broker("mosquitto") else { return };
    let tl = r#"[[timeline]]
at = "1s"
duration = "9s"
kind = "cut""#;
    // Mosquitto reports a cut up to 1.5 × keepalive + its ~6 s check
    // period + 1 s late (measured up to 8.7 s here): a settle of 9 s keeps
    // that inside the detection window (1.5 × keepalive + settle), so a
    // will that works is never judged missed.
    let text = scenario("cut", tl, "").replace(
        "min_outage = \"2s\"",
        "min_outage = \"2s\"\nsettle = \"9s\"",
    );
    let r = run(&text, b).await;
    let t0 = r.applied(0);
    let rep = r.report();
    let t = &rep["totals"];
    // keepalive 2 s: 3 s of silence, then up to one 6 s check period and
    // a second of whole-second rounding; telemetry at 5/s means the last
    // message before the cut came at most 0.2 s before it.
    let keepalive = Duration::from_secs(2);
    let low = keepalive.mul_f64(1.5) - Duration::from_millis(500);
    let high = keepalive.mul_f64(1.5) + Duration::from_secs(7) + Duration::from_millis(1500);
    for d in 0..3 {
        let noticed = r
            .losses(
                d,
                t0 - secs(Duration::from_millis(300)),
                t0 + secs(Duration::from_secs(9)),
            )
            .first()
            .map(|(at, _)| *at)
            .expect("the client noticed the cut");
        let offline = r
            .statuses(d)
            .into_iter()
            .find(|(at, on)| !on && *at >= t0)
            .map(|(at, _)| at)
            .expect("an offline report");
        let detect = offline.saturating_since(t0);
        assert!(
            detect >= low && detect <= high,
            "device {d}: offline {detect:?} after the cut, want [{low:?}, {high:?}]"
        );
        // The client gave up first; its close did not reach the broker.
        assert!(noticed < offline, "device {d}: {noticed:?} vs {offline:?}");
    }
    // One true offline per device (a 9 s outage ≥ min_outage 2 s).
    assert_eq!(t["true_offline"], 3, "{t}");
    assert_eq!(t["false_offline"], 0, "{t}");
    let bd = &t["broker_detect_time"];
    assert_eq!(bd["count"], 3, "{bd}");
    assert_eq!(t["missed_offline"], 0, "{t}");
    let max = Duration::from_micros(bd["max_us"].as_u64().unwrap());
    assert!(max >= low && max <= high, "{bd}");
    eprintln!("measured: cut, keepalive 2 s, Mosquitto: broker_detect_time {bd}");
    assert_eq!(t["lost_after_ack"], 0, "{t}");
}

/// The retained status of every device on `port`, read by a fresh client
/// straight from the broker a while after the run: (online, offline).
async fn retained_statuses(port: u16, devices: usize) -> (usize, usize) {
    use rumqttc::{AsyncClient, Event as MqttEvent, Incoming, MqttOptions, QoS};
    let mut o = MqttOptions::new("status-reader", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(o, 64);
    client
        .subscribe("status/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < devices {
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(Ok(MqttEvent::Incoming(Incoming::Publish(p)))) => {
                seen.insert(p.topic.clone(), p.payload.to_vec());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("status reader: {e}"),
            Err(_) => break,
        }
    }
    let offline = seen.values().filter(|v| v.as_slice() == b"offline").count();
    (seen.len() - offline, offline)
}

/// Every device alive at the end disconnects cleanly: its DISCONNECT
/// reaches the broker through its fault proxy before the proxies go, so no
/// will fires after the run and the retained status stays `online`; a
/// device crashed for good keeps its `offline`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_alive_at_the_end_disconnects_cleanly() {
    let Some(binary) = crate::support::mosquitto() else {
        return;
    };
    let m = crate::support::OwnMosquitto::start(binary, "", &[]);
    let text = scenario(
        "clean-end",
        r#"[[timeline]]
at = "2s"
duration = "2s"
kind = "link_down"

[[timeline]]
at = "6s"
kind = "device_crash"
devices = 1"#,
        "",
    )
    .replace("count = 3", "count = 12");
    let r = run(&text, &m.spec()).await;
    // Wills of unclean ends would fire at once (the connection closed
    // without DISCONNECT); wait a moment for any, then read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (online, offline) = retained_statuses(m.port, 12).await;
    eprintln!("measured: after the run, {online} online, {offline} offline of 12");
    assert_eq!(
        (online, offline),
        (11, 1),
        "one crashed for good, every other disconnected cleanly\n{}",
        m.log()
    );
    assert_eq!(r.report()["totals"]["lost_after_ack"], 0);
}

//! Figures proven against ground truth: each test injects a fault whose
//! answer is known from the run's own history and checks the report's
//! figure equals it, on the embedded broker and on Mosquitto.

use std::collections::BTreeSet;

use mqtt_chaos::clock::Nanos;
use mqtt_chaos::history::{DeviceEvent, DeviceId, Event, ObserverEvent};

use crate::run::{broker, run, Ran};

on_both_brokers! {
    fire_and_forget_loses_silently_what_a_blackhole_swallowed_and_retries_lose_nothing => silent_loss;
    qos2_through_a_flapping_link_delivers_no_duplicate => qos2_flapping;
    two_devices_sharing_a_client_id_flap_and_both_are_counted => shared_id;
}

fn profile(name: &str, extra: &str) -> String {
    format!(
        r#"
[profiles.{name}]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = {{ initial = "200ms", max = "500ms", jitter = 0.0 }}
{extra}
"#
    )
}

fn fleet(name: &str, profile: &str, count: u32, qos: u8) -> String {
    format!(
        r#"
[[fleets]]
name = "{name}"
count = {count}
profile = "{profile}"
[[fleets.streams]]
name = "t"
topic = "tele/{{device}}"
qos = {qos}
rate = 5.0
"#
    )
}

/// Messages of `device` handed to the client and never received.
fn never_received(r: &Ran, device: DeviceId) -> (u64, BTreeSet<u64>) {
    let mut published = BTreeSet::new();
    let mut received = BTreeSet::new();
    for e in &r.events {
        match e {
            Event::Device {
                device: d,
                what:
                    DeviceEvent::Published {
                        seq, attempt: 0, ..
                    },
                ..
            } if *d == device => {
                published.insert(*seq);
            }
            Event::Observer {
                what: ObserverEvent::Received { device: d, seq, .. },
                ..
            } if *d == device => {
                received.insert(*seq);
            }
            _ => {}
        }
    }
    let lost: BTreeSet<u64> = published.difference(&received).copied().collect();
    (lost.len() as u64, lost)
}

/// Telemetry of `device` handed over in [from, to).
fn published_between(r: &Ran, device: DeviceId, from: Nanos, to: Nanos) -> u64 {
    r.device(device)
        .filter(|(at, w)| {
            *at >= from && *at < to && matches!(w, DeviceEvent::Published { attempt: 0, .. })
        })
        .count() as u64
}

async fn silent_loss(b: &str) {
    // Two groups behind one blackhole: `ff` fires and forgets with a clean
    // session, `safe` waits for acks and retries. What a client hands over
    // while it still believes the dead link is up sits unacked in rumqttc's
    // in-flight state; when the client notices, a reconnect without a
    // session drops it (rumqttc), and a fire-and-forget app never learns.
    let text = format!(
        r#"
name = "silent-loss"
duration = "12s"
drain = "6s"
seed = 11
{}
{}
{}
{}
[[timeline]]
at = "3s"
duration = "4s"
kind = "half_open"
"#,
        profile("ff", "clean_session = true\nack = { wait = false }"),
        profile(
            "safe",
            "clean_session = true\nack = { wait = true, timeout = \"2s\", retries = 5 }"
        ),
        fleet("ff", "ff", 2, 1),
        fleet("safe", "safe", 2, 1),
    );
    let r = run(&text, b).await;
    let report = r.report();
    let t0 = r.applied(0);
    let mut expected = 0;
    for d in [0, 1] {
        let (lost, _) = never_received(&r, d);
        let noticed = r.losses(d, t0, Nanos(u64::MAX));
        let (noticed, _) = noticed.first().expect("the client noticed");
        let swallowed = published_between(&r, d, t0, *noticed);
        // Handed over between the blackhole and the client noticing it; at
        // most two more went out between the blackhole taking effect and
        // its confirmation.
        assert!(
            swallowed >= 5,
            "device {d}: only {swallowed} published while blind"
        );
        assert!(
            lost >= swallowed && lost <= swallowed + 2,
            "device {d}: {lost} lost, {swallowed} published while the client was blind"
        );
        expected += lost;
    }
    assert_eq!(
        report["profiles"]["ff"]["silent_loss"], expected,
        "{report:#}"
    );
    assert_eq!(report["profiles"]["ff"]["lost_unacked"], 0);
    assert_eq!(report["profiles"]["safe"]["silent_loss"], 0, "{report:#}");
    assert_eq!(report["profiles"]["safe"]["lost_unacked"], 0, "{report:#}");
    assert_eq!(
        report["profiles"]["safe"]["lost_after_ack"], 0,
        "{report:#}"
    );
}

async fn qos2_flapping(b: &str) {
    let text = format!(
        r#"
name = "qos2-flapping"
duration = "12s"
drain = "4s"
seed = 5
{}
{}
[[timeline]]
at = "2s"
duration = "7s"
kind = "flapping"
down = "1s"
up = "2s"
"#,
        profile(
            "p",
            "clean_session = false\nack = { wait = true, timeout = \"10s\", retries = 0 }"
        ),
        fleet("dev", "p", 3, 2),
    );
    let r = run(&text, b).await;
    for d in [0, 1, 2] {
        let l = r.losses(d, Nanos::ZERO, Nanos(u64::MAX));
        assert_eq!(l.len(), 3, "device {d} flapped {} times", l.len());
    }
    let report = r.report();
    assert!(report["totals"]["sent"].as_u64().unwrap() >= 150);
    assert_eq!(report["totals"]["duplicates"], 0, "{report:#}");
}

async fn shared_id(b: &str) {
    let text = format!(
        r#"
name = "shared-id"
duration = "8s"
drain = "2s"
seed = 2
{}
{}
"#,
        profile(
            "p",
            "clean_session = true\nclient_id = { fixed = \"one-id-for-two\" }"
        ),
        fleet("dev", "p", 2, 1),
    );
    let r = run(&text, b).await;
    let mut losses = 0;
    for d in [0, 1] {
        let l = r.losses(d, Nanos::ZERO, Nanos(u64::MAX)).len();
        assert!(l >= 1, "device {d} was never thrown out");
        losses += l;
    }
    let report = r.report();
    // flaps = disconnects with no fault, per device-hour of the run.
    let end_h = r.events.last().map(|e| e.at()).unwrap().as_secs_f64() / 3600.0;
    let flaps = report["profiles"]["p"]["flaps"].as_f64().unwrap();
    let per_device_hour = losses as f64 / (2.0 * end_h);
    assert!(
        (flaps - per_device_hour).abs() / per_device_hour < 0.1,
        "flaps {flaps} per device-hour, {losses} losses seen"
    );
}

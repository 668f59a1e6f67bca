//! The observer's `$SYS` follower: EMQX 5 client events (payloads as
//! recorded in tests/fixtures/emqx5-sys-client-events.json) published on
//! Mosquitto by a test client, read back as history events. Brokers do not
//! let a client publish under `$SYS` (Mosquitto drops it, rumqttd refuses
//! `$` filters), so the tree is re-rooted at `sys-test/<pid>`; the parser's
//! tests cover the real `$SYS` topics.

use std::time::Duration;

use mqtt_chaos::broker::mosquitto::MosquittoBroker;
use mqtt_chaos::broker::{Broker, BrokerSettings};
use mqtt_chaos::clock::{Nanos, RunClock};
use mqtt_chaos::history::{Event, ObserverEvent};
use mqtt_chaos::observer::Observer;
use mqtt_chaos::plan::Plan;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;

fn fixture(kind: &str, client_id: &str) -> Vec<u8> {
    let text = include_str!("../fixtures/emqx5-sys-client-events.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut ev = v[kind].clone();
    ev["clientid"] = client_id.into();
    serde_json::to_vec(&ev).unwrap()
}

/// Start the observer (with or without `$SYS`), publish one disconnected
/// and one connected event for the first device, one for a stranger and a
/// malformed one, then a telemetry-free marker on the status topic; return
/// the observer's events up to the marker.
async fn observe(sys: bool) -> Option<(Plan, Vec<ObserverEvent>)> {
    let root = format!("sys-test/{}", std::process::id());
    let binary = crate::support::mosquitto()?;
    let text = crate::run::scenario("sys", "", "");
    let sc = mqtt_chaos::scenario::load_str(std::path::Path::new("sys.toml"), &text).unwrap();
    let plan = Plan::resolve(&sc, None);
    let mut broker = MosquittoBroker::new(BrokerSettings::default(), binary).unwrap();
    broker.start().await.unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let observer = Observer::start(
        &plan,
        broker.addr(),
        RunClock::start(),
        tx,
        Nanos::ZERO,
        Duration::from_secs(5),
        sys.then(|| root.clone()),
    )
    .await
    .unwrap();

    let addr = broker.addr();
    let mut o = MqttOptions::new("sys-publisher", addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(o, 16);
    let poll = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let me = plan.devices[0].client_id.clone();
    let node = "emqx@172.17.0.2";
    for (topic, payload) in [
        (
            format!("{root}/brokers/{node}/clients/{me}/disconnected"),
            fixture("disconnected", &me),
        ),
        (
            format!("{root}/brokers/{node}/clients/stranger/disconnected"),
            fixture("disconnected", "stranger"),
        ),
        (
            format!("{root}/brokers/{node}/clients/{me}/connected"),
            b"{not json".to_vec(),
        ),
        (
            format!("{root}/brokers/{node}/clients/{me}/connected"),
            fixture("connected", &me),
        ),
    ] {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    // The marker: the first device's will topic says `online` (ordered after
    // the events above on the same connection and the observer's session).
    let status = plan.devices[0].will.as_ref().unwrap().topic.clone();
    client
        .publish(status, QoS::AtLeastOnce, false, "online")
        .await
        .unwrap();

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the marker arrives")
            .unwrap();
        if let Event::Observer { what, .. } = ev {
            let marker =
                matches!(&what, ObserverEvent::Status { online: true, via, .. } if via == "live");
            if !matches!(what, ObserverEvent::Connected | ObserverEvent::Disconnected) {
                seen.push(what);
            }
            if marker {
                break;
            }
        }
    }
    observer.stop().await;
    poll.abort();
    broker.shutdown().await.unwrap();
    Some((plan, seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emqx_client_events_become_history_and_offline_reports() {
    let Some((plan, seen)) = observe(true).await else {
        return;
    };
    let me = plan.devices[0].client_id.clone();
    assert_eq!(
        seen,
        vec![
            ObserverEvent::Sys {
                client_id: me.clone(),
                device: Some(0),
                online: false,
                reason: Some("tcp_closed".into()),
            },
            ObserverEvent::Status {
                device: 0,
                online: false,
                via: "sys".into(),
            },
            // The malformed payload and the stranger's event are dropped;
            // `connected` is recorded but reports nothing: the retained
            // `online` does.
            ObserverEvent::Sys {
                client_id: me,
                device: Some(0),
                online: true,
                reason: None,
            },
            ObserverEvent::Status {
                device: 0,
                online: true,
                via: "live".into(),
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sys_events_only_the_status_topic_counts() {
    let Some((_, seen)) = observe(false).await else {
        return;
    };
    assert_eq!(
        seen,
        vec![ObserverEvent::Status {
            device: 0,
            online: true,
            via: "live".into(),
        }]
    );
}

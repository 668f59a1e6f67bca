//! What rumqttc 0.25 does with publishes across a lost session, as the ack
//! tracker (fleet::acks) models it, checked against a real Mosquitto: what
//! was queued before a first connection is written after its CONNACK;
//! what was queued before a connection ended is dropped by a CONNACK
//! without a session, exactly `unwritten_pending` of it; what was queued
//! after is written.

use std::time::Duration;

use mqtt_chaos::fleet::connection::poll_counted;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing, QoS};

use crate::support::{self, OwnMosquitto};

/// Poll until `n` PUBACKs arrived (bounded); the packet ids written.
async fn written_and_acked(el: &mut rumqttc::EventLoop, n: usize) -> Vec<u16> {
    let mut written = Vec::new();
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked < n {
        let (r, _) = tokio::time::timeout_at(deadline, poll_counted(el))
            .await
            .expect("the broker answers within 10 s");
        match r.expect("no connection error") {
            Event::Outgoing(Outgoing::Publish(pkid)) => written.push(pkid),
            Event::Incoming(Incoming::PubAck(_)) => acked += 1,
            _ => {}
        }
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_drops_what_was_pending_and_keeps_what_was_queued_after() {
    let Some(binary) = support::mosquitto() else {
        return;
    };
    let m = OwnMosquitto::start(binary, "", &[]);
    let mut o = MqttOptions::new("session-model", "127.0.0.1", m.port);
    o.set_clean_session(true);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(o, 16);
    for i in 0..3u8 {
        client
            .try_publish("t", QoS::AtLeastOnce, false, vec![i])
            .unwrap();
    }
    // A first connection: nothing pending, everything queued is written.
    let (r, unwritten) = poll_counted(&mut el).await;
    assert!(
        matches!(r, Ok(Event::Incoming(Incoming::ConnAck(ref a))) if !a.session_present),
        "{r:?}"
    );
    assert_eq!(unwritten, 0);
    assert_eq!(written_and_acked(&mut el, 3).await.len(), 3);

    // Two queued, then the connection is dropped (as the poller does on a
    // ping timeout): rumqttc moves them to `pending`.
    for i in 3..5u8 {
        client
            .try_publish("t", QoS::AtLeastOnce, false, vec![i])
            .unwrap();
    }
    el.clean();
    // One more queued after: it stays in the client's channel.
    client
        .try_publish("t", QoS::AtLeastOnce, false, vec![5])
        .unwrap();
    let (r, unwritten) = poll_counted(&mut el).await;
    assert!(
        matches!(r, Ok(Event::Incoming(Incoming::ConnAck(ref a))) if !a.session_present),
        "{r:?}"
    );
    assert_eq!(unwritten, 2, "the two moved to pending");
    assert!(
        el.pending.is_empty(),
        "a CONNACK without a session cleared them"
    );
    // Only the one queued after the drop is written.
    assert_eq!(written_and_acked(&mut el, 1).await.len(), 1);
    let nothing_more = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let (Ok(Event::Outgoing(Outgoing::Publish(p))), _) = poll_counted(&mut el).await {
                return p;
            }
        }
    })
    .await;
    assert!(
        nothing_more.is_err(),
        "a dropped publish was written: {nothing_more:?}"
    );
}

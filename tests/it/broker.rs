//! Integration tests: broker backends against real processes on loopback.
//!
//! Every Mosquitto test gets its binary from `support::mosquitto()`, which
//! skips, or fails under `MQTT_CHAOS_REQUIRE_BACKENDS=1`.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use mqtt_chaos::broker::embedded::EmbeddedBroker;
use mqtt_chaos::broker::external::ExternalBroker;
use mqtt_chaos::broker::mosquitto::MosquittoBroker;
use mqtt_chaos::broker::probe::{self, ConnectOptions, ProbeError};
use mqtt_chaos::broker::{Broker, BrokerError, BrokerSettings};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::support;

/// How long a paused broker must stay silent for the test to believe it.
const SILENCE: Duration = Duration::from_millis(500);
/// A generous bound for anything a healthy broker answers at once.
const PROMPT: Duration = Duration::from_secs(5);

/// What the tests need beyond the trait: the child's pid, exit and temp dir.
trait LocalBroker: Broker {
    fn pid(&self) -> Option<u32>;
    fn last_exit(&self) -> Option<ExitStatus>;
    fn dir(&self) -> Option<PathBuf>;
}

impl LocalBroker for EmbeddedBroker {
    fn pid(&self) -> Option<u32> {
        EmbeddedBroker::pid(self)
    }
    fn last_exit(&self) -> Option<ExitStatus> {
        EmbeddedBroker::last_exit(self)
    }
    fn dir(&self) -> Option<PathBuf> {
        EmbeddedBroker::dir(self).map(|p| p.to_path_buf())
    }
}

impl LocalBroker for MosquittoBroker {
    fn pid(&self) -> Option<u32> {
        MosquittoBroker::pid(self)
    }
    fn last_exit(&self) -> Option<ExitStatus> {
        MosquittoBroker::last_exit(self)
    }
    fn dir(&self) -> Option<PathBuf> {
        MosquittoBroker::dir(self).map(|p| p.to_path_buf())
    }
}

fn embedded() -> EmbeddedBroker {
    EmbeddedBroker::new(BrokerSettings::default(), support::bin()).expect("embedded broker")
}

fn mosquitto(persistence: bool) -> Option<MosquittoBroker> {
    let bin = support::mosquitto()?;
    Some(MosquittoBroker::new(BrokerSettings { persistence }, bin).expect("mosquitto broker"))
}

/// A process is gone when `/proc/<pid>` is, or when it is a zombie waiting
/// for a reaper that is not us (PID 1 in a container may never reap it).
fn process_is_gone(pid: u32) -> bool {
    match mqtt_chaos::broker::process::proc_state(pid) {
        None => true,
        Some(state) => state == 'Z' || state == 'X',
    }
}

fn signal_of(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

async fn accepts_mqtt(addr: SocketAddr) -> Result<(), ProbeError> {
    probe::check(addr, PROMPT).await.map(|_| ())
}

// ---------------------------------------------------------------- lifecycle

async fn start_kill_start_shutdown(mut b: impl LocalBroker) {
    let addr = b.addr();
    assert!(addr.ip().is_loopback());
    let began = Instant::now();
    b.start().await.expect("first start");
    let started = began.elapsed();
    accepts_mqtt(addr).await.expect("accepts MQTT after start");
    let first_pid = b.pid().expect("running");

    let began = Instant::now();
    b.kill().await.expect("kill");
    let killed = began.elapsed();
    assert_eq!(b.pid(), None);
    assert_eq!(signal_of(b.last_exit().expect("exit recorded")), Some(9));
    assert!(process_is_gone(first_pid));
    match probe::check(addr, PROMPT).await {
        Err(ProbeError::Connect { source, .. }) => {
            assert_eq!(source.kind(), ErrorKind::ConnectionRefused, "{source}")
        }
        other => panic!("expected a refused connection after kill, got {other:?}"),
    }

    let began = Instant::now();
    b.start().await.expect("start after kill");
    eprintln!(
        "{}: start {started:?}, kill {killed:?}, restart {:?}",
        b.version(),
        began.elapsed()
    );
    assert_eq!(b.addr(), addr, "a restart keeps the port");
    accepts_mqtt(addr).await.expect("accepts MQTT again");
    let second_pid = b.pid().expect("running again");
    assert_ne!(first_pid, second_pid);

    let dir = b.dir().expect("temp dir while alive");
    assert!(dir.exists());
    b.shutdown().await.expect("shutdown");
    assert!(
        process_is_gone(second_pid),
        "pid {second_pid} outlived shutdown"
    );
    assert!(!dir.exists(), "{} outlived shutdown", dir.display());
    assert_eq!(b.dir(), None);
    b.shutdown().await.expect("a second shutdown is harmless");
    assert!(b.start().await.is_err(), "no start after shutdown");
}

#[tokio::test]
async fn embedded_broker_accepts_mqtt_refuses_after_kill_and_comes_back_on_the_same_port() {
    start_kill_start_shutdown(embedded()).await;
}

#[tokio::test]
async fn mosquitto_accepts_mqtt_refuses_after_kill_and_comes_back_on_the_same_port() {
    let Some(b) = mosquitto(false) else { return };
    start_kill_start_shutdown(b).await;
}

async fn pause_silences_new_and_existing_connections(mut b: impl LocalBroker) {
    let addr = b.addr();
    b.start().await.expect("start");
    let mut existing = probe::connect(addr, &ConnectOptions::probe(), PROMPT)
        .await
        .expect("connect before pause");
    probe::ping(&mut existing, PROMPT)
        .await
        .expect("PINGRESP before pause");
    let pid = b.pid().unwrap();

    b.pause().await.expect("pause");
    assert_eq!(mqtt_chaos::broker::process::proc_state(pid), Some('T'));
    match probe::connect(addr, &ConnectOptions::probe(), SILENCE).await {
        Err(ProbeError::Timeout {
            what: "CONNECT", ..
        }) => {}
        other => panic!("a paused broker must accept TCP but not answer CONNECT: {other:?}"),
    }
    match probe::ping(&mut existing, SILENCE).await {
        Err(ProbeError::Timeout { .. }) => {}
        other => panic!("a paused broker must not answer PINGREQ: {other:?}"),
    }

    let resumed = Instant::now();
    b.resume().await.expect("resume");
    // The PINGRESP to the PINGREQ sent while paused comes first, then ours.
    probe::ping(&mut existing, PROMPT)
        .await
        .expect("PINGRESP after resume");
    accepts_mqtt(addr).await.expect("new CONNECT after resume");
    eprintln!(
        "{}: answered {:?} after resume",
        b.version(),
        resumed.elapsed()
    );
    b.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn embedded_broker_when_paused_answers_neither_connect_nor_ping_until_resumed() {
    pause_silences_new_and_existing_connections(embedded()).await;
}

#[tokio::test]
async fn mosquitto_when_paused_answers_neither_connect_nor_ping_until_resumed() {
    let Some(b) = mosquitto(false) else { return };
    pause_silences_new_and_existing_connections(b).await;
}

async fn stop_is_graceful_even_when_paused(mut b: impl LocalBroker) {
    let addr = b.addr();
    b.start().await.expect("start");
    let began = Instant::now();
    b.stop().await.expect("stop");
    let status = b.last_exit().expect("exit recorded");
    assert_eq!(status.code(), Some(0), "SIGTERM ends it cleanly: {status}");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );

    b.start().await.expect("start after stop");
    assert_eq!(b.addr(), addr);
    b.pause().await.expect("pause");
    let began = Instant::now();
    b.stop().await.expect("stop while paused");
    assert_eq!(b.last_exit().unwrap().code(), Some(0));
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );

    b.start().await.expect("start after stop");
    b.pause().await.expect("pause");
    b.kill().await.expect("kill while paused");
    assert_eq!(signal_of(b.last_exit().unwrap()), Some(9));
    b.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn embedded_broker_stops_with_exit_code_zero_even_when_paused() {
    stop_is_graceful_even_when_paused(embedded()).await;
}

#[tokio::test]
async fn mosquitto_stops_with_exit_code_zero_even_when_paused() {
    let Some(b) = mosquitto(false) else { return };
    stop_is_graceful_even_when_paused(b).await;
}

#[tokio::test]
async fn dropping_a_broker_without_shutdown_kills_its_child_and_removes_its_temp_dir() {
    let mut b = embedded();
    b.start().await.expect("start");
    b.pause().await.expect("pause");
    let pid = b.pid().unwrap();
    let dir = b.dir().unwrap().to_path_buf();
    drop(b);
    assert!(process_is_gone(pid), "pid {pid} outlived the drop");
    assert!(!dir.exists(), "{} outlived the drop", dir.display());
}

// ---------------------------------------------------------------- ports

#[tokio::test]
async fn a_first_start_moves_to_a_free_port_when_the_picked_one_was_taken() {
    let mut b = embedded();
    let picked = b.addr();
    let squatter = std::net::TcpListener::bind(picked).expect("take the picked port");
    b.start().await.expect("start on another port");
    assert_ne!(b.addr(), picked);
    accepts_mqtt(b.addr()).await.expect("accepts MQTT");
    drop(squatter);
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_never_moves_the_port_and_names_the_address_when_it_is_taken() {
    let mut b = embedded();
    b.start().await.expect("start");
    let addr = b.addr();
    b.kill().await.expect("kill");
    let squatter = std::net::TcpListener::bind(addr).expect("take the freed port");
    let err = b.start().await.expect_err("the port is taken");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert_eq!(b.addr(), addr);
    drop(squatter);
    b.start().await.expect("start once the port is free again");
    assert_eq!(b.addr(), addr);
    accepts_mqtt(addr).await.expect("accepts MQTT");
    b.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- keepalive 0

#[tokio::test]
async fn embedded_broker_refuses_keepalive_zero_as_its_capabilities_say() {
    let mut b = embedded();
    assert!(!b.capabilities().keepalive_zero);
    b.start().await.expect("start");
    let options = ConnectOptions {
        keepalive_secs: 0,
        ..ConnectOptions::probe()
    };
    match probe::connect(b.addr(), &options, PROMPT).await {
        Err(ProbeError::Closed { .. } | ProbeError::Refused { .. }) => {}
        other => panic!("rumqttd should refuse keepalive 0: {other:?}"),
    }
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn mosquitto_accepts_keepalive_zero_as_its_capabilities_say() {
    let Some(mut b) = mosquitto(false) else {
        return;
    };
    assert!(b.capabilities().keepalive_zero);
    assert!(b.version().starts_with("mosquitto 2."), "{}", b.version());
    b.start().await.expect("start");
    let options = ConnectOptions {
        keepalive_secs: 0,
        ..ConnectOptions::probe()
    };
    let conn = probe::connect(b.addr(), &options, PROMPT)
        .await
        .expect("Mosquitto accepts keepalive 0");
    probe::disconnect(conn).await;
    b.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- persistence

const QUEUED: usize = 20;
const MARKER: &[u8] = b"marker";

/// Drive `eventloop` until `want` matches an event; bounded by `PROMPT`.
async fn until(
    eventloop: &mut rumqttc::EventLoop,
    what: &str,
    mut want: impl FnMut(&Event) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + PROMPT;
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => panic!("no {what} within {PROMPT:?}"),
            Ok(Err(e)) => panic!("connection error while waiting for {what}: {e}"),
            Ok(Ok(event)) => {
                if want(&event) {
                    return event;
                }
            }
        }
    }
}

fn options(id: &str, addr: SocketAddr, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_clean_session(clean)
        .set_keep_alive(Duration::from_secs(5));
    o
}

/// Publish `payloads` at QoS 1 and wait for every PUBACK.
async fn publish_all(addr: SocketAddr, topic: &str, payloads: Vec<Vec<u8>>) {
    let (client, mut eventloop) =
        AsyncClient::new(options(&probe::unique_client_id(), addr, true), 64);
    let n = payloads.len();
    for p in payloads {
        client
            .publish(topic, QoS::AtLeastOnce, false, p)
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < n {
        until(&mut eventloop, "PUBACK", |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_)))
        })
        .await;
        acked += 1;
    }
    client.disconnect().await.unwrap();
    until(&mut eventloop, "DISCONNECT sent", |e| {
        matches!(e, Event::Outgoing(Outgoing::Disconnect))
    })
    .await;
}

/// What a persistent subscriber finds when it comes back.
#[derive(Debug, PartialEq, Eq)]
struct Return {
    session_present: bool,
    received: usize,
}

/// A persistent QoS 1 subscriber subscribes and leaves; `QUEUED` messages
/// are published to it while it is away; then `between` runs (a kill and a
/// start, or nothing); then it comes back with clean_session=false,
/// subscribes again and counts what arrives before a marker published after
/// its SUBACK (so no sleep decides when to stop counting).
async fn offline_messages_after<B: Broker>(b: &mut B, kill_between: bool) -> Return {
    let addr = b.addr();
    let id = probe::unique_client_id();
    let topic = format!("chaos/test/{id}");

    let (client, mut eventloop) = AsyncClient::new(options(&id, addr, false), 16);
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    until(&mut eventloop, "SUBACK", |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_)))
    })
    .await;
    client.disconnect().await.unwrap();
    until(&mut eventloop, "DISCONNECT sent", |e| {
        matches!(e, Event::Outgoing(Outgoing::Disconnect))
    })
    .await;
    drop(eventloop);

    let payloads = (0..QUEUED).map(|i| format!("m{i}").into_bytes()).collect();
    publish_all(addr, &topic, payloads).await;
    // Mosquitto saves its database at the end of the loop iteration that
    // queued the last message, just after its PUBACK: one more exchange
    // makes sure that iteration is over before the kill.
    accepts_mqtt(addr)
        .await
        .expect("round trip after publishing");

    if kill_between {
        b.kill().await.expect("kill");
        b.start().await.expect("start after kill");
    }

    let (client, mut eventloop) = AsyncClient::new(options(&id, addr, false), 16);
    let Event::Incoming(Packet::ConnAck(ack)) = until(&mut eventloop, "CONNACK", |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_)))
    })
    .await
    else {
        unreachable!()
    };
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let mut received = 0;
    let mut marker = None;
    let deadline = tokio::time::Instant::now() + PROMPT * 2;
    loop {
        let event = match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => panic!("the marker never came back ({received} messages before it)"),
            Ok(Err(e)) => panic!("subscriber connection error: {e}"),
            Ok(Ok(e)) => e,
        };
        match event {
            Event::Incoming(Packet::SubAck(_)) if marker.is_none() => {
                let topic = topic.clone();
                marker = Some(tokio::spawn(async move {
                    publish_all(addr, &topic, vec![MARKER.to_vec()]).await
                }));
            }
            Event::Incoming(Packet::Publish(p)) if p.payload.as_ref() == MARKER => break,
            Event::Incoming(Packet::Publish(_)) => received += 1,
            _ => {}
        }
    }
    marker
        .expect("the marker was published")
        .await
        .expect("the marker publisher got its PUBACK");
    client.disconnect().await.unwrap();
    Return {
        session_present: ack.session_present,
        received,
    }
}

#[tokio::test]
async fn mosquitto_without_persistence_forgets_queued_messages_when_killed() {
    let Some(mut b) = mosquitto(false) else {
        return;
    };
    b.start().await.expect("start");
    let got = offline_messages_after(&mut b, true).await;
    assert_eq!(
        got,
        Return {
            session_present: false,
            received: 0
        }
    );
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn mosquitto_with_persistence_delivers_every_queued_message_after_a_kill() {
    let Some(mut b) = mosquitto(true) else { return };
    b.start().await.expect("start");
    let got = offline_messages_after(&mut b, true).await;
    assert_eq!(
        got,
        Return {
            session_present: true,
            received: QUEUED
        }
    );
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn embedded_broker_forgets_queued_messages_when_killed() {
    let mut b = embedded();
    b.start().await.expect("start");
    let got = offline_messages_after(&mut b, true).await;
    assert_eq!(
        got,
        Return {
            session_present: false,
            received: 0
        }
    );
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn embedded_broker_delivers_queued_messages_to_a_persistent_session_that_returns() {
    let mut b = embedded();
    b.start().await.expect("start");
    let got = offline_messages_after(&mut b, false).await;
    eprintln!("rumqttd without a kill: {got:?}");
    assert_eq!(
        got,
        Return {
            session_present: true,
            received: QUEUED
        }
    );
    b.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- external

#[tokio::test]
async fn an_unreachable_external_broker_fails_within_the_connect_timeout_naming_the_address() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let spec = format!("tcp://{closed}");
    let timeout = Duration::from_millis(800);
    let mut b = ExternalBroker::parse(&spec)
        .unwrap()
        .with_connect_timeout(timeout);
    let began = Instant::now();
    let err = b.start().await.expect_err("nothing listens there");
    let took = began.elapsed();
    assert!(matches!(err, BrokerError::NotReady { .. }), "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
    assert!(took <= timeout + Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn an_external_broker_that_answers_nothing_fails_within_the_connect_timeout() {
    // A listener that accepts TCP (the kernel does) but never speaks MQTT.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let timeout = Duration::from_millis(600);
    let mut b = ExternalBroker::new(addr, timeout);
    let began = Instant::now();
    let err = b.start().await.expect_err("no CONNACK");
    let took = began.elapsed();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(
        took >= timeout && took <= timeout + Duration::from_millis(300),
        "{took:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn an_external_broker_claims_keepalive_zero_only_when_it_saw_it_accepted() {
    let mut rumqttd = embedded();
    rumqttd.start().await.expect("start");
    let mut ext = ExternalBroker::new(rumqttd.addr(), PROMPT);
    ext.start().await.expect("reachable");
    assert!(!ext.capabilities().keepalive_zero);
    rumqttd.shutdown().await.unwrap();

    let Some(mut mosq) = mosquitto(false) else {
        return;
    };
    mosq.start().await.expect("start");
    let mut ext = ExternalBroker::parse(&format!("mqtt://{}", mosq.addr()))
        .unwrap()
        .with_connect_timeout(PROMPT);
    ext.start().await.expect("reachable");
    assert!(ext.capabilities().keepalive_zero);
    mosq.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- orphans

const ORPHAN_HELPER_ENV: &str = "MQTT_CHAOS_ORPHAN_HELPER";

/// Not a test on its own: the harness stand-in that
/// `a_sigkilled_harness_leaves_no_broker_behind` runs in a child process and
/// SIGKILLs. It starts a broker, prints its pid and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of a_sigkilled_harness_leaves_no_broker_behind"]
async fn orphan_helper() {
    if std::env::var_os(ORPHAN_HELPER_ENV).is_none() {
        return;
    }
    let mut b = embedded();
    b.start().await.expect("start");
    println!("broker-dir={}", b.dir().unwrap().display());
    println!("broker-pid={}", b.pid().unwrap());
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    // Bounded: the parent kills us long before this ends.
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_sigkilled_harness_leaves_no_broker_behind() {
    use tokio::io::AsyncBufReadExt;
    let test_bin = std::env::current_exe().unwrap();
    let mut helper = tokio::process::Command::new(test_bin)
        .args([
            "--exact",
            "broker::orphan_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ORPHAN_HELPER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the helper");
    let mut lines = tokio::io::BufReader::new(helper.stdout.take().unwrap()).lines();
    let mut dir = None;
    let pid: u32 = tokio::time::timeout(PROMPT * 3, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints `test … ... ` without a newline before these.
            if let Some((_, d)) = line.split_once("broker-dir=") {
                dir = Some(PathBuf::from(d.trim()));
            }
            if let Some((_, pid)) = line.split_once("broker-pid=") {
                return pid.trim().parse().unwrap();
            }
        }
        panic!("the helper ended without starting a broker");
    })
    .await
    .expect("the helper started a broker in time");
    assert!(
        !process_is_gone(pid),
        "the broker runs while the helper does"
    );

    helper.start_kill().unwrap();
    helper.wait().await.unwrap();
    // A SIGKILLed harness cannot remove its temp dir; we do it for it.
    let dir = dir.expect("the helper named its temp dir");
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    std::fs::remove_dir_all(&dir).unwrap();
    let deadline = Instant::now() + PROMPT;
    while !process_is_gone(pid) {
        if Instant::now() >= deadline {
            // Leave nothing behind even when failing.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("broker pid {pid} outlived its SIGKILLed parent");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

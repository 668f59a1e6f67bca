//! Brokers in Docker containers (`--broker mosquitto-container`, the
//! stand-in image built by scripts/standin-images.sh): lifecycle through the
//! Docker API, the same fault figures as the embedded broker, the
//! partition, and that nothing with our labels outlives a test, a panic or
//! a SIGKILLed harness.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mqtt_chaos::broker::container::{ContainerBroker, Flavor};
use mqtt_chaos::broker::probe::{self, ConnectOptions, ProbeError};
use mqtt_chaos::broker::{Broker, BrokerSettings};
use mqtt_chaos::clock::Nanos;
use mqtt_chaos::docker;

use crate::run::{self, scenario, Ran};
use crate::support;

const BROKER: &str = "mosquitto-container";

/// A Mosquitto container broker named after the test.
fn broker(test: &str) -> ContainerBroker {
    ContainerBroker::new(Flavor::Mosquitto, None, BrokerSettings::default())
        .unwrap()
        .with_name(&format!("mqtt-chaos-test-{}-{test}", std::process::id()))
        .with_stop_grace(Duration::from_secs(2))
}

/// What Docker still holds of a container and a network, by name.
async fn still_there(container: &str, network: &str) -> (bool, bool) {
    let d = docker::connect().await.unwrap();
    let mine = docker::owned_by(&d, std::process::id()).await.unwrap();
    (
        mine.containers.iter().any(|c| c == container),
        mine.networks.iter().any(|n| n == network),
    )
}

async fn answers(addr: SocketAddr) -> bool {
    probe::check(addr, Duration::from_secs(2)).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_broker_starts_stops_starts_on_the_same_port_and_is_removed() {
    if support::docker().is_none() {
        return;
    }
    let mut b = broker("lifecycle");
    let began = Instant::now();
    b.start().await.unwrap();
    eprintln!("created and ready in {:?}", began.elapsed());
    let addr = b.addr();
    assert!(addr.ip().is_loopback());
    assert!(answers(addr).await);
    assert_eq!(b.version(), "mqtt-chaos/mosquitto-standin:local");
    assert!(b.capabilities().partition);

    // Our labels, our network with the alias.
    let d = docker::connect().await.unwrap();
    let id = b.id().unwrap();
    let st = docker::state(&d, &id).await.unwrap();
    assert_eq!(st.networks, vec![b.network().to_string()]);
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"mqtt-chaos.owner\"}} {{index .Config.Labels \"mqtt-chaos.pid\"}} {{json .NetworkSettings.Networks}}",
            &id,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("mqtt-chaos {} ", std::process::id())),
        "{text}"
    );
    assert!(text.contains("\"broker\""), "no alias: {text}");

    let t = Instant::now();
    b.stop().await.unwrap();
    eprintln!("stop confirmed in {:?}", t.elapsed());
    assert!(!docker::state(&d, &id).await.unwrap().running);
    assert!(!answers(addr).await);
    let t = Instant::now();
    b.start().await.unwrap();
    eprintln!("start until CONNACK in {:?}", t.elapsed());
    assert_eq!(b.addr(), addr, "the address moved across a restart");
    assert!(answers(addr).await);

    let t = Instant::now();
    b.kill().await.unwrap();
    eprintln!("kill confirmed in {:?}", t.elapsed());
    assert!(!docker::state(&d, &id).await.unwrap().running);
    b.start().await.unwrap();
    assert!(answers(addr).await);

    let (name, network) = (b.name().to_string(), b.network().to_string());
    assert_eq!(still_there(&name, &network).await, (true, true));
    b.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(still_there(&name, &network).await, (false, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pause_freezes_the_broker_until_unpause() {
    if support::docker().is_none() {
        return;
    }
    let mut b = broker("pause");
    b.start().await.unwrap();
    let mut conn = probe::connect(b.addr(), &ConnectOptions::probe(), Duration::from_secs(5))
        .await
        .unwrap();
    probe::ping(&mut conn, Duration::from_secs(2))
        .await
        .unwrap();
    let t = Instant::now();
    b.pause().await.unwrap();
    eprintln!("pause confirmed in {:?}", t.elapsed());
    let d = docker::connect().await.unwrap();
    assert!(docker::state(&d, &b.id().unwrap()).await.unwrap().paused);
    // Frozen: the connection stays open and nothing answers.
    let r = probe::ping(&mut conn, Duration::from_millis(1500)).await;
    assert!(matches!(r, Err(ProbeError::Timeout { .. })), "{r:?}");
    b.resume().await.unwrap();
    // The same connection answers again: the PINGRESP of the frozen ping
    // comes first, then this one's.
    probe::ping(&mut conn, Duration::from_secs(3))
        .await
        .unwrap();
    probe::ping(&mut conn, Duration::from_secs(3))
        .await
        .unwrap();
    b.shutdown().await.unwrap();
}

/// What the module doc of broker::container says a partition does to the
/// published-port path, measured: open connections closed, new ones
/// refused, and after the heal MQTT answers again on the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_closes_connections_through_the_published_port_until_healed() {
    if support::docker().is_none() {
        return;
    }
    let mut b = broker("partition");
    b.start().await.unwrap();
    let addr = b.addr();
    let mut conn = probe::connect(addr, &ConnectOptions::probe(), Duration::from_secs(5))
        .await
        .unwrap();
    let t = Instant::now();
    b.partition().await.unwrap();
    eprintln!("partition confirmed in {:?}", t.elapsed());
    let d = docker::connect().await.unwrap();
    assert!(docker::state(&d, &b.id().unwrap())
        .await
        .unwrap()
        .networks
        .is_empty());
    let r = probe::ping(&mut conn, Duration::from_secs(2)).await;
    assert!(
        matches!(r, Err(ProbeError::Closed { .. } | ProbeError::Io { .. })),
        "the held connection survived: {r:?}"
    );
    assert!(!answers(addr).await, "a new connection got through");
    let t = Instant::now();
    b.heal_partition().await.unwrap();
    eprintln!("heal confirmed in {:?}", t.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(addr).await {
        assert!(
            Instant::now() < deadline,
            "MQTT never came back after the heal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.shutdown().await.unwrap();
}

#[test]
fn a_panic_with_a_container_alive_removes_it() {
    if support::docker().is_none() {
        return;
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let s = seen.clone();
    // A current-thread runtime, as #[tokio::test] makes: the harder case for
    // removal from a destructor.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            let mut b = broker("panic");
            b.start().await.unwrap();
            *s.lock().unwrap() = Some((b.name().to_string(), b.network().to_string()));
            panic!("a test panics with its broker running");
        })
    }));
    assert!(result.is_err());
    drop(rt);
    let (name, network) = seen.lock().unwrap().clone().expect("the broker started");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        rt.block_on(still_there(&name, &network)),
        (false, false),
        "{name} or {network} outlived the panic"
    );
}

/// A scenario file for a child `mqtt-chaos run` that lasts long enough.
fn long_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("s.toml");
    let text = scenario("long", "", "").replace("duration = \"12s\"", "duration = \"60s\"");
    std::fs::write(&p, text).unwrap();
    p
}

/// Wait (bounded) until harness process `pid` has a container.
async fn wait_for_container_of(pid: u32) -> docker::Leftovers {
    let d = docker::connect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owned = docker::owned_by(&d, pid).await.unwrap();
        if !owned.containers.is_empty() && !owned.networks.is_empty() {
            return owned;
        }
        assert!(
            Instant::now() < deadline,
            "the run never created its broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_start_removes_what_a_sigkilled_run_left() {
    if support::docker().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = long_scenario(dir.path());
    let mut child = Command::new(support::bin())
        .args(["run", "--quiet", "--broker", BROKER, "--out"])
        .arg(dir.path().join("out"))
        .arg(&p)
        .spawn()
        .unwrap();
    let pid = child.id();
    let left = wait_for_container_of(pid).await;
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let d = docker::connect().await.unwrap();
    assert_eq!(
        docker::owned_by(&d, pid).await.unwrap(),
        left,
        "nothing was left"
    );
    // The next start (of any run or test) removes it by label.
    let mut b = broker("after-sigkill");
    b.start().await.unwrap();
    let after = docker::owned_by(&d, pid).await.unwrap();
    assert!(after.is_empty(), "left behind: {after:?}");
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_removes_the_container_and_the_network() {
    if support::docker().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = long_scenario(dir.path());
    let mut child = Command::new(support::bin())
        .args(["run", "--quiet", "--broker", BROKER, "--out"])
        .arg(dir.path().join("out"))
        .arg(&p)
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for_container_of(pid).await;
    // Wait until the run is past its start (its report directory has run.json).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("out/run.json").exists() {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let d = docker::connect().await.unwrap();
    let after = docker::owned_by(&d, pid).await.unwrap();
    assert!(after.is_empty(), "left behind: {after:?}");
}

fn skip() -> bool {
    support::docker().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_on_a_container_broker_has_the_embedded_figures() {
    if !skip() {
        run::link_down(BROKER).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_through_docker_drops_everyone_and_they_reconnect() {
    if !skip() {
        run::broker_restart(BROKER).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_pause_through_docker_is_noticed_by_ping_timeout() {
    if !skip() {
        run::broker_pause(BROKER).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_partition_drops_everyone_until_the_heal() {
    if skip() {
        return;
    }
    let tl = r#"[[timeline]]
at = "3s"
duration = "3s"
kind = "broker_partition""#;
    let r: Ran = run::run(&scenario("partition", tl, ""), BROKER).await;
    let (t0, t1) = (r.applied(0), r.healed(0));
    for d in 0..3 {
        let l = r.losses(
            d,
            t0 - Nanos::from_duration(Duration::from_millis(300)),
            Nanos(u64::MAX),
        );
        let took = l.first().expect("lost").0.saturating_since(t0);
        assert!(
            took <= Duration::from_millis(500),
            "device {d} noticed after {took:?}"
        );
        assert!(
            r.connects(d, t0, t1).is_empty(),
            "device {d} connected through the partition"
        );
    }
    let by = t1 + Nanos::from_duration(Duration::from_secs(3) + Duration::from_millis(500));
    for d in 0..3 {
        assert!(r.connected_at(d, by), "device {d} not back after the heal");
    }
}

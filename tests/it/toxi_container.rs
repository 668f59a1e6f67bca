//! Toxiproxy in Docker: started by the harness with testcontainers
//! (`--faults toxiproxy-container=IMAGE`) and through `docker compose` with
//! the stand-in override, each carrying a blackhole and a link down through
//! a whole run, with the same checks as the embedded engine's runs in
//! `run.rs`. Images are the local stand-ins (no registry here); nothing is
//! left behind, checked by label and compose project.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mqtt_chaos::fault::container::{
    ContainerSettings, ToxiproxyContainer, LABEL_OWNER, LABEL_PID, OWNER, PROXY_PORTS,
};
use mqtt_chaos::fault::LinkFaults;
use mqtt_chaos::runner::ProxyOptions;
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::run::{
    assert_back_after_heal, assert_noticed_by_client, run_with_proxy, scenario, secs, Ran, DEVICES,
    EARLY, END, HEAL_RACE,
};
use crate::support;

const TOXIPROXY_STANDIN: &str = "mqtt-chaos/toxiproxy-standin:local";
const MOSQUITTO_STANDIN: (&str, &str) = ("mqtt-chaos/mosquitto-standin", "local");

/// A blackhole (index 0) then a link down (index 1), far enough apart that
/// every device is back from the first (the heal plus 3.5 s, see
/// `assert_back_after_heal`) before the second starts.
const TIMELINE: &str = r#"[[timeline]]
at = "2s"
duration = "4s"
kind = "blackhole"
[[timeline]]
at = "10s"
duration = "2s"
kind = "link_down""#;

/// The scenario of `run.rs`, 16 s long so the link down's recovery check
/// (its heal plus 3.5 s) falls within the run.
fn two_faults(name: &str) -> String {
    let text = scenario(name, TIMELINE, "");
    assert!(text.contains("duration = \"12s\""));
    text.replacen("duration = \"12s\"", "duration = \"16s\"", 1)
}

/// What `run.rs` asserts of a blackhole and of a link down, on one run.
fn assert_blackhole_then_link_down(r: &Ran) {
    assert!(
        r.finished.report.versions.faults.starts_with("toxiproxy "),
        "{:?}",
        r.finished.report.versions
    );
    // The blackhole: noticed within keepalive + ping timeout, nothing
    // crossed it, everyone back after the heal.
    assert_noticed_by_client(r, 0, false);
    assert_back_after_heal(r, 0);
    for d in DEVICES {
        let got = r.received(
            d,
            r.applied(0) + secs(Duration::from_millis(300)),
            r.healed(0),
        );
        assert_eq!(got, 0, "device {d}: {got} messages crossed a blackhole");
    }
    // The link down: every connection dropped at once, none through it.
    let (t0, t1) = (r.applied(1), r.healed(1));
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
    assert_back_after_heal(r, 1);
    let report = r.report();
    assert_eq!(report["faults"][0]["applied"], true);
    assert_eq!(report["faults"][1]["applied"], true);
}

/// The four faults of issue 5's acceptance run: a blackhole (0) and a link
/// down (1) through Toxiproxy, then a broker restart (2) and a broker pause
/// (3) through Docker, each far enough from the next that every device is
/// back (heal + 3.5 s) before it starts.
const FOUR: &str = r#"[[timeline]]
at = "2s"
duration = "4s"
kind = "blackhole"
[[timeline]]
at = "10s"
duration = "2s"
kind = "link_down"
[[timeline]]
at = "16s"
duration = "2s"
kind = "broker_restart"
[[timeline]]
at = "24s"
duration = "4s"
kind = "broker_pause""#;

fn four_faults(name: &str) -> String {
    let text = scenario(name, FOUR, "");
    assert!(text.contains("duration = \"12s\""));
    text.replacen("duration = \"12s\"", "duration = \"34s\"", 1)
}

/// What `run.rs` asserts of each of the four on the embedded default.
fn assert_four(r: &Ran) {
    assert_blackhole_then_link_down(r);
    // The restart: everyone lost the broker, everyone came back.
    let t2 = r.applied(2);
    for d in DEVICES {
        let l = r.losses(d, t2 - secs(Duration::from_millis(500)), END);
        assert!(!l.is_empty(), "device {d} never lost the broker");
    }
    assert_back_after_heal(r, 2);
    // The pause: the hang is noticed by the clients' own ping timeout.
    assert_noticed_by_client(r, 3, true);
    assert_back_after_heal(r, 3);
    let report = r.report();
    for i in 0..4 {
        assert_eq!(report["faults"][i]["applied"], true, "fault {i}");
    }
}

/// `mqtt-chaos validate` of the run scenario with `args`: (exit code, stderr).
fn validate(extra_faults: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let text =
        scenario("v", "", "").replace("\n[profiles.p]", &format!("{extra_faults}\n[profiles.p]"));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(support::bin())
        .arg("validate")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_toxiproxy_container_is_refused_a_broker_on_the_hosts_loopback_before_anything_starts() {
    let (code, err) = validate("", &["--faults", "toxiproxy-container"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("127.0.0.1") && err.contains("embedded broker"),
        "{err}"
    );
    let external = [
        "--broker",
        "tcp://127.0.0.1:1883",
        "--faults",
        "toxiproxy-container",
    ];
    let (code, err) = validate("", &external);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--proxy-upstream"), "{err}");
    let with_upstream = [&external[..], &["--proxy-upstream", "broker:1883"]].concat();
    let (code, err) = validate("", &with_upstream);
    assert_eq!(code, 0, "{err}");
    // The same upstream from the scenario file.
    let (code, err) = validate("[faults]\nupstream = \"broker:1883\"\n", &external);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn proxy_settings_that_cannot_apply_are_refused_naming_the_field() {
    let (code, err) = validate(
        "[faults]\nbackend = \"toxiproxy=http://127.0.0.1:8474\"\nproxy_ports = \"8697-8666\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("proxy_ports") && err.contains("s.toml"),
        "{err}"
    );
    let (code, err) = validate("", &["--proxy-upstream", "emqx:1883"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--proxy-upstream") && err.contains("embedded fault engine"),
        "{err}"
    );
    let (code, err) = validate(
        "",
        &[
            "--faults",
            "toxiproxy=http://127.0.0.1:8474",
            "--docker-network",
            "n",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--docker-network"), "{err}");
}

/// Runs `docker` with `args`; panics with its stderr when it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A labelled network, removed on drop (panics included).
struct Network(String);

impl Network {
    fn create(name: &str) -> Network {
        let pid = std::process::id();
        docker(&[
            "network",
            "create",
            "--label",
            &format!("{LABEL_OWNER}={OWNER}"),
            "--label",
            &format!("{LABEL_PID}={pid}"),
            name,
        ]);
        Network(name.into())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// Bounded wait until `docker_names(kind, filter)` is empty.
fn assert_gone(kind: &[&str], filter: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = support::docker_names(kind, filter);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind ({filter}): {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_answers_on_its_mapped_api_and_is_removed_with_its_network() {
    if support::docker().is_none() {
        return;
    }
    support::standin_images();
    let settings = ContainerSettings {
        image: TOXIPROXY_STANDIN.into(),
        ..ContainerSettings::for_this_process()
    };
    let c = ToxiproxyContainer::start(&settings).await.unwrap();
    let (name, net) = (c.name().to_string(), c.network().to_string());
    let pid = std::process::id().to_string();
    assert_eq!(
        support::docker_names(&["ps", "-a"], &format!("label={LABEL_PID}={pid}"))
            .iter()
            .filter(|n| **n == name)
            .count(),
        1
    );
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{index .Labels \"mqtt-chaos.owner\"}}",
            &net
        ]),
        OWNER
    );
    assert!(c
        .client()
        .version()
        .await
        .unwrap()
        .starts_with("toxiproxy "));
    // Proxy slot 0 listens inside the container; its host port is another.
    let placement = c.placement("somewhere:1883".into());
    let listen = placement.listen(0);
    assert_eq!(
        listen,
        SocketAddr::from(([0, 0, 0, 0], *PROXY_PORTS.start()))
    );
    let info = c
        .client()
        .create_proxy("p0", listen, "somewhere:1883")
        .await
        .unwrap();
    let reach = placement.reach(0, info.listen);
    assert!(reach.ip().is_loopback() && reach.port() != 0, "{reach}");
    // The mapped port is open on the host (Docker's proxy accepts).
    tokio::net::TcpStream::connect(reach).await.unwrap();
    c.shutdown().await.unwrap();
    assert_gone(&["ps", "-a"], &format!("name=^{name}$"));
    assert_gone(&["network", "ls"], &format!("name=^{net}$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_container_is_removed_with_its_network() {
    if support::docker().is_none() {
        return;
    }
    support::standin_images();
    let settings = ContainerSettings {
        image: TOXIPROXY_STANDIN.into(),
        ..ContainerSettings::for_this_process()
    };
    let c = ToxiproxyContainer::start(&settings).await.unwrap();
    let (name, net) = (c.name().to_string(), c.network().to_string());
    drop(c);
    assert_gone(&["ps", "-a"], &format!("name=^{name}$"));
    assert_gone(&["network", "ls"], &format!("name=^{net}$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_and_a_link_down_through_a_toxiproxy_container() {
    if support::docker().is_none() {
        return;
    }
    support::standin_images();
    let pid = std::process::id();
    let net = Network::create(&format!("mqtt-chaos-test-{pid}-toxi-run"));
    // The broker: the Mosquitto stand-in on the same network, published on
    // a free port of 127.0.0.1 for the harness and the observer.
    let broker_name = format!("mqtt-chaos-test-{pid}-toxi-broker");
    let mqtt_port = support::free_port();
    let broker = GenericImage::new(MOSQUITTO_STANDIN.0, MOSQUITTO_STANDIN.1)
        .with_exposed_port(1883.tcp())
        .with_container_name(&broker_name)
        .with_network(&net.0)
        .with_label(LABEL_OWNER, OWNER)
        .with_label(LABEL_PID, pid.to_string())
        .with_host_config_modifier(move |hc: &mut HostConfig| {
            hc.publish_all_ports = Some(false);
            hc.port_bindings = Some(
                [(
                    "1883/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(mqtt_port.to_string()),
                    }]),
                )]
                .into(),
            );
        })
        .start()
        .await
        .unwrap();
    wait_for_mqtt(mqtt_port).await;
    let proxy = ProxyOptions {
        upstream: Some(format!("{broker_name}:1883")),
        ports: None,
        network: Some(net.0.clone()),
        sources: None,
    };
    let r = run_with_proxy(
        &two_faults("via-toxiproxy-container"),
        &format!("tcp://127.0.0.1:{mqtt_port}"),
        Some(format!("toxiproxy-container={TOXIPROXY_STANDIN}")),
        proxy,
    )
    .await;
    assert_blackhole_then_link_down(&r);
    // The harness removed its Toxiproxy; only the test's broker is left.
    let left = support::docker_names(&["ps", "-a"], &format!("label={LABEL_PID}={pid}"));
    assert!(
        left.iter()
            .all(|n| !n.starts_with(&format!("mqtt-chaos-{pid}-toxiproxy"))),
        "{left:?}"
    );
    broker.rm().await.unwrap();
    drop(net);
    assert_gone(&["ps", "-a"], &format!("name=^{broker_name}$"));
    assert_gone(
        &["network", "ls"],
        &format!("name=^mqtt-chaos-test-{pid}-toxi-run$"),
    );
}

/// Bounded wait until a broker answers MQTT on `127.0.0.1:port` (a port
/// Docker publishes accepts TCP before the broker inside listens).
async fn wait_for_mqtt(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = mqtt_chaos::broker::probe::check(addr, Duration::from_secs(1)).await {
        assert!(Instant::now() < deadline, "no broker at {addr}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `compose down -v` on drop, panics included.
struct ComposeProject {
    compose: Vec<String>,
    project: String,
    files: Vec<PathBuf>,
}

impl ComposeProject {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.compose[0]);
        c.args(&self.compose[1..]).args(["-p", &self.project]);
        for f in &self.files {
            c.arg("-f").arg(f);
        }
        c
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["down", "-v", "--remove-orphans", "-t", "2"])
            .output();
    }
}

/// Two consecutive free ports (bounded tries).
fn free_pair() -> (u16, u16) {
    for _ in 0..50 {
        let a = support::free_port();
        if a < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", a + 1)).is_ok() {
            return (a, a + 1);
        }
    }
    panic!("no two consecutive free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_link_down_broker_restart_and_pause_through_docker_compose_with_the_stand_ins() {
    if support::docker().is_none() {
        return;
    }
    let Some(compose) = support::compose() else {
        return;
    };
    support::standin_images();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let project = format!("mqttchaos{}compose", std::process::id());
    let (first, last) = free_pair();
    let (mqtt, api, dashboard) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let up = ComposeProject {
        compose,
        project: project.clone(),
        files: vec![
            root.join("docker-compose.yml"),
            root.join("docker-compose.standin.yml"),
        ],
    };
    let out = up
        .command()
        .args(["up", "-d"])
        .env("MQTT_CHAOS_MQTT_PORT", mqtt.to_string())
        .env("MQTT_CHAOS_DASHBOARD_PORT", dashboard.to_string())
        .env("MQTT_CHAOS_TOXIPROXY_PORT", api.to_string())
        .env("MQTT_CHAOS_PROXY_PORTS", format!("{first}-{last}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compose up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The API answers once the stand-in listens (bounded).
    let client = mqtt_chaos::fault::toxiproxy::Toxiproxy::with_timeout(
        &format!("http://127.0.0.1:{api}"),
        Duration::from_secs(2),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.version().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the compose Toxiproxy never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_mqtt(mqtt).await;
    let proxy = ProxyOptions {
        upstream: Some("emqx:1883".into()),
        ports: Some(format!("{first}-{last}")),
        network: None,
        sources: None,
    };
    // The broker's restart and pause go through Docker on the compose
    // service's container.
    let ps = up.command().args(["ps", "-q", "emqx"]).output().unwrap();
    let emqx = String::from_utf8_lossy(&ps.stdout).trim().to_string();
    assert!(!emqx.is_empty(), "compose ps -q emqx: no container");
    let r = run_with_proxy(
        &four_faults("via-compose"),
        &format!("docker={emqx}@127.0.0.1:{mqtt}"),
        Some(format!("toxiproxy=http://127.0.0.1:{api}")),
        proxy,
    )
    .await;
    assert_four(&r);
    drop(up);
    let filter = format!("label=com.docker.compose.project={project}");
    assert_gone(&["ps", "-a"], &filter);
    assert_gone(&["network", "ls"], &filter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_link_down_broker_restart_and_pause_with_both_containers_started_by_the_harness()
{
    if support::docker().is_none() {
        return;
    }
    support::standin_images();
    // (Removal at the end of a run, Ctrl-C and panics included, is checked
    // in containers.rs and above.)
    // The Toxiproxy container joins the broker container's network and
    // reaches it by its alias: no proxy option needed.
    let r = run_with_proxy(
        &four_faults("both-containers"),
        "mosquitto-container",
        Some(format!("toxiproxy-container={TOXIPROXY_STANDIN}")),
        ProxyOptions::default(),
    )
    .await;
    assert_four(&r);
    assert!(
        r.finished
            .report
            .versions
            .broker
            .contains("mosquitto-standin"),
        "{:?}",
        r.finished.report.versions
    );
}

//! Brokers in Docker containers: one the harness creates
//! ([`ContainerBroker`], EMQX or Mosquitto, through testcontainers) and one
//! somebody else runs ([`AttachedContainer`], `docker compose` users).
//!
//! A created broker joins a network made for the run (alias `broker`, so a
//! containerized Toxiproxy reaches it as `broker:1883`) and publishes 1883 on
//! a fixed free port of 127.0.0.1 picked by the harness, so the address
//! clients reconnect to survives `docker stop`/`start`. Lifecycle faults go
//! through the Docker API and return on confirmation:
//!
//! * restart: `docker stop` (SIGTERM, SIGKILL after the grace) until Docker
//!   reports it stopped; the heal is `docker start` until MQTT answers.
//! * kill: SIGKILL until Docker reports it stopped; heal as restart.
//! * pause: `docker pause` (cgroup freezer) until Docker reports it paused:
//!   connections stay open and nothing is answered.
//! * partition: `docker network disconnect` from the run network until Docker
//!   no longer lists it; heal: `connect` with the alias again. Measured on
//!   Docker 20.10 with its default userland proxy: the disconnect also takes
//!   the published port away (the `docker-proxy` for it exits), so every
//!   connection through 127.0.0.1 is closed with FIN at once and new ones are
//!   refused until the heal, while the broker itself notices nothing until
//!   its keepalive runs out. A daemon run with `"userland-proxy": false`
//!   forwards published ports with iptables instead, and there the cut is
//!   silent. Traffic inside the run network (a containerized Toxiproxy)
//!   loses its route to the broker.
//!
//! The container and the network are removed by [`Broker::shutdown`], by
//! `Drop` (panics included), and, when the harness was SIGKILLed, by the next
//! start's leftover removal (see `crate::docker`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::bollard::Docker;
use testcontainers::core::{AccessMode, IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::process::pick_port;
use super::{probe, Broker, BrokerError, BrokerSettings, Capabilities};
use crate::docker::{self as docker_ops, ContainerError};

/// The EMQX image `--broker emqx` runs (the last Apache-2.0 release line).
pub const DEFAULT_EMQX_IMAGE: &str = "emqx/emqx:5.8.6";
/// The image `--broker mosquitto-container` runs: the stand-in built by
/// `scripts/standin-images.sh`.
pub const DEFAULT_MOSQUITTO_IMAGE: &str = "mqtt-chaos/mosquitto-standin:local";
/// The network alias of the broker on the run network.
pub const ALIAS: &str = "broker";
/// MQTT inside the container.
pub const MQTT_PORT: u16 = 1883;
/// EMQX's HTTP API and dashboard inside the container.
pub const EMQX_API_PORT: u16 = 18083;
/// EMQX's node name, pinned: the default is derived from the container's
/// address, and EMQX keeps its state under the node name.
pub const EMQX_NODE_NAME: &str = "emqx@127.0.0.1";
/// `mqtt.keepalive_multiplier` when the scenario does not say (EMQX's own
/// default, written out so the report's setup is explicit).
pub const DEFAULT_KEEPALIVE_MULTIPLIER: f64 = 1.5;

/// Which broker runs in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Emqx,
    Mosquitto,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Emqx => "emqx",
            Flavor::Mosquitto => "mosquitto-container",
        }
    }

    fn default_image(self) -> &'static str {
        match self {
            Flavor::Emqx => DEFAULT_EMQX_IMAGE,
            Flavor::Mosquitto => DEFAULT_MOSQUITTO_IMAGE,
        }
    }

    /// EMQX boots an Erlang node: give it longer.
    fn default_start_timeout(self) -> Duration {
        match self {
            Flavor::Emqx => Duration::from_secs(90),
            Flavor::Mosquitto => Duration::from_secs(20),
        }
    }
}

/// `IMAGE[:TAG]` → name and tag (`latest` when none); a `:` inside a
/// registry host (`host:5000/x`) is not a tag (pure).
pub fn split_image(image: &str) -> Result<(String, String), String> {
    let image = image.trim();
    if image.is_empty() || image.contains(char::is_whitespace) {
        return Err(format!("{image:?} is not an image name"));
    }
    if image.contains('@') {
        return Err(format!(
            "{image:?}: digests are not supported, name a tag (IMAGE:TAG)"
        ));
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            if name.is_empty() || tag.is_empty() {
                return Err(format!("{image:?} is not IMAGE:TAG"));
            }
            Ok((name.to_string(), tag.to_string()))
        }
        _ => Ok((image.to_string(), "latest".to_string())),
    }
}

/// What the EMQX container is told through its environment (pure).
///
/// * `EMQX_NODE__NAME`: pinned (see [`EMQX_NODE_NAME`]).
/// * `EMQX_MQTT__KEEPALIVE_MULTIPLIER`: explicit.
/// * `EMQX_MQTT__MAX_QOS_ALLOWED=2`: QoS 2 is what profiles may ask for.
/// * `EMQX_AUTHORIZATION__NO_MATCH=allow`: a topic no ACL rule names is
///   allowed (EMQX's default, written out).
/// * `EMQX_AUTHORIZATION__SOURCES`: the file source reads our
///   [`emqx_acl`], mounted at `/opt/emqx/etc/acl.conf`.
pub fn emqx_env(keepalive_multiplier: f64) -> Vec<(String, String)> {
    vec![
        ("EMQX_NODE__NAME".into(), EMQX_NODE_NAME.into()),
        (
            "EMQX_MQTT__KEEPALIVE_MULTIPLIER".into(),
            format_multiplier(keepalive_multiplier),
        ),
        ("EMQX_MQTT__MAX_QOS_ALLOWED".into(), "2".into()),
        ("EMQX_AUTHORIZATION__NO_MATCH".into(), "allow".into()),
        (
            "EMQX_AUTHORIZATION__SOURCES".into(),
            r#"[{type = file, enable = true, path = "/opt/emqx/etc/acl.conf"}]"#.into(),
        ),
    ]
}

fn format_multiplier(m: f64) -> String {
    let s = format!("{m}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// The ACL file mounted into EMQX (pure). EMQX's default `acl.conf` denies
/// `$SYS/#` (and `#`) to every client but those connecting from 127.0.0.1
/// *inside* the container; ours come through the published port, from the
/// Docker gateway's address. The first rule lets the observer (client ids
/// `mqtt-chaos-observer-…`) subscribe to `$SYS/#` for the client
/// connected/disconnected events; the rest is EMQX's default unchanged.
pub fn emqx_acl() -> String {
    let mut a = String::from(
        "%% written by mqtt-chaos (broker/container.rs: emqx_acl); \
         compose/emqx-acl.conf is this text, kept equal by a test\n",
    );
    a.push_str("{allow, {clientid, {re, \"^mqtt-chaos-observer-\"}}, subscribe, [\"$SYS/#\"]}.\n");
    a.push_str("{allow, {username, {re, \"^dashboard$\"}}, subscribe, [\"$SYS/#\"]}.\n");
    a.push_str("{allow, {ipaddr, \"127.0.0.1\"}, all, [\"$SYS/#\", \"#\"]}.\n");
    a.push_str("{deny, all, subscribe, [\"$SYS/#\", {eq, \"#\"}, {eq, \"+/#\"}]}.\n");
    a.push_str("{allow, all}.\n");
    a
}

/// The `emqx.conf` mounted when the scenario asks for persistence (pure):
/// EMQX 5.8's shipped base file plus `durable_sessions.enable`, which EMQX
/// reads from the configuration file only (not from the API or the CLI).
/// Durable sessions keep the sessions of clients with a session expiry (MQTT
/// 3.1.1: `clean_session = false`) and their messages on disk across a
/// restart or a kill; regular sessions live in memory and are lost.
pub fn emqx_conf(durable_sessions: bool) -> String {
    let mut c = String::from("# written by mqtt-chaos\n");
    c.push_str(&format!(
        "node {{\n  name = \"{EMQX_NODE_NAME}\"\n  cookie = \"emqxsecretcookie\"\n  data_dir = \"data\"\n}}\n"
    ));
    c.push_str("cluster {\n  name = emqxcl\n  discovery_strategy = manual\n}\n");
    c.push_str("dashboard {\n  listeners.http {\n    bind = 18083\n  }\n}\n");
    if durable_sessions {
        c.push_str("durable_sessions {\n  enable = true\n}\n");
    }
    c
}

/// The Mosquitto config mounted at `/mosquitto/config/mosquitto.conf`
/// (pure); as the local Mosquitto backend's, with the database in
/// `/mosquitto/data/` (inside the container, so it survives stop/start and
/// kill/start of the same container).
pub fn mosquitto_conf(persistence: bool) -> String {
    let mut c = String::from("# written by mqtt-chaos\n");
    c.push_str(&format!("listener {MQTT_PORT} 0.0.0.0\n"));
    c.push_str("allow_anonymous true\n");
    c.push_str("log_dest stderr\n");
    c.push_str(super::mosquitto::QUEUE_LIMITS);
    if persistence {
        c.push_str("persistence true\n");
        c.push_str("persistence_location /mosquitto/data/\n");
        c.push_str("autosave_interval 1\n");
        c.push_str("autosave_on_changes true\n");
    } else {
        c.push_str("persistence false\n");
    }
    c
}

/// EMQX's `GET /api/v5/status?format=json` body → `emqx 5.8.6` when it
/// names its release (pure).
pub fn emqx_version_from_status(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let rel = v.get("rel_vsn")?.as_str()?;
    Some(format!("emqx {rel}"))
}

/// Poll `url` until it answers 200 (EMQX answers 503 while it boots), with a
/// short back-off, never longer than until `deadline`. Returns the body of
/// the 200, or the last thing seen.
pub async fn wait_status(
    client: &reqwest::Client,
    url: &str,
    deadline: Instant,
) -> Result<String, String> {
    let mut delay = Duration::from_millis(50);
    let mut last = String::from("no answer yet");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last);
        }
        match tokio::time::timeout(left, client.get(url).send()).await {
            Ok(Ok(resp)) if resp.status() == reqwest::StatusCode::OK => {
                return Ok(resp.text().await.unwrap_or_default());
            }
            Ok(Ok(resp)) => last = format!("HTTP {}", resp.status()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => return Err(last),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Poll an MQTT CONNECT until CONNACK 0, bounded by `deadline`; between
/// tries, `alive` may say the container is gone, which ends the wait.
async fn wait_mqtt(
    addr: SocketAddr,
    deadline: Instant,
    docker: &Docker,
    id: &str,
) -> Result<(), String> {
    let mut delay = Duration::from_millis(20);
    let mut last = String::from("no probe yet");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last);
        }
        match probe::check(addr, left.min(Duration::from_secs(2))).await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        if let Ok(s) = docker_ops::state(docker, id).await {
            if !s.running {
                return Err(format!("the container stopped (last probe: {last})"));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

fn control(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Control {
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl From<ContainerError> for BrokerError {
    fn from(e: ContainerError) -> Self {
        BrokerError::Control {
            what: "container".into(),
            message: e.to_string(),
        }
    }
}

/// What a created container broker can do.
pub fn capabilities(flavor: Flavor, settings: &BrokerSettings) -> Capabilities {
    Capabilities {
        restart: true,
        kill: true,
        pause: true,
        // EMQX keeps sessions only with durable sessions, which are switched
        // on exactly when the scenario asks for persistence.
        persistence: match flavor {
            Flavor::Emqx => settings.persistence,
            Flavor::Mosquitto => true,
        },
        keepalive_zero: true,
        partition: true,
        mqtt5: true,
    }
}

/// A broker container the harness creates, controls and removes.
pub struct ContainerBroker {
    flavor: Flavor,
    image: String,
    tag: String,
    settings: BrokerSettings,
    keepalive_multiplier: f64,
    name: String,
    host_port: u16,
    api_port: Option<u16>,
    /// The run network: given (shared with the fault backend) or our own.
    network: String,
    own_network: bool,
    network_created: bool,
    files: Option<tempfile::TempDir>,
    docker: Option<Docker>,
    container: Option<ContainerAsync<GenericImage>>,
    paused: bool,
    partitioned: bool,
    status_version: Option<String>,
    start_timeout: Duration,
    stop_grace: Duration,
    shut_down: bool,
}

impl std::fmt::Debug for ContainerBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerBroker")
            .field("flavor", &self.flavor)
            .field("image", &format!("{}:{}", self.image, self.tag))
            .field("name", &self.name)
            .field("host_port", &self.host_port)
            .field("network", &self.network)
            .finish()
    }
}

impl ContainerBroker {
    /// A broker of `flavor` from `image` (`IMAGE[:TAG]`, the flavor's default
    /// when `None`); the host port and the names are picked now, nothing runs
    /// until [`Broker::start`].
    pub fn new(
        flavor: Flavor,
        image: Option<&str>,
        settings: BrokerSettings,
    ) -> Result<ContainerBroker, BrokerError> {
        let (image, tag) = split_image(image.unwrap_or(flavor.default_image())).map_err(|m| {
            BrokerError::Start {
                what: format!("--broker {}", flavor.name()),
                message: m,
            }
        })?;
        let port = |what: &str| {
            pick_port().map_err(|e| BrokerError::Start {
                what: format!("{} container", flavor.name()),
                message: format!("cannot pick a free port on 127.0.0.1 for {what}: {e}"),
            })
        };
        let host_port = port("MQTT")?;
        let api_port = match flavor {
            Flavor::Emqx => Some(port("the EMQX API")?),
            Flavor::Mosquitto => None,
        };
        Ok(ContainerBroker {
            flavor,
            image,
            tag,
            settings,
            keepalive_multiplier: DEFAULT_KEEPALIVE_MULTIPLIER,
            name: docker_ops::container_name("broker"),
            host_port,
            api_port,
            network: docker_ops::run_network_name(),
            own_network: true,
            network_created: false,
            files: None,
            docker: None,
            container: None,
            paused: false,
            partitioned: false,
            status_version: None,
            start_timeout: flavor.default_start_timeout(),
            stop_grace: Duration::from_secs(5),
            shut_down: false,
        })
    }

    /// Join a network somebody else (the runner) created and removes.
    pub fn with_network(mut self, network: &str) -> ContainerBroker {
        self.network = network.to_string();
        self.own_network = false;
        self
    }

    /// The container's name (a test can derive one from its own name).
    pub fn with_name(mut self, name: &str) -> ContainerBroker {
        self.name = name.to_string();
        self
    }

    /// EMQX's `mqtt.keepalive_multiplier`.
    pub fn with_keepalive_multiplier(mut self, m: f64) -> ContainerBroker {
        self.keepalive_multiplier = m;
        self
    }

    pub fn with_start_timeout(mut self, d: Duration) -> ContainerBroker {
        self.start_timeout = d;
        self
    }

    /// `docker stop -t` (whole seconds, at least 1).
    pub fn with_stop_grace(mut self, d: Duration) -> ContainerBroker {
        self.stop_grace = d;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run network the container is on.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Where containers on the run network reach MQTT.
    pub fn network_addr(&self) -> String {
        format!("{ALIAS}:{MQTT_PORT}")
    }

    /// The container id once created.
    pub fn id(&self) -> Option<String> {
        self.container.as_ref().map(|c| c.id().to_string())
    }

    fn what(&self) -> String {
        format!(
            "{} container {} ({}:{}) at {}",
            self.flavor.name(),
            self.name,
            self.image,
            self.tag,
            self.addr()
        )
    }

    fn ids(&self) -> Result<(Docker, String), BrokerError> {
        match (&self.docker, &self.container) {
            (Some(d), Some(c)) => Ok((d.clone(), c.id().to_string())),
            _ => Err(control(&self.what(), "not started")),
        }
    }

    /// Write the files the container mounts; returns the mounts.
    fn write_files(&mut self) -> Result<Vec<Mount>, BrokerError> {
        let dir = tempfile::Builder::new()
            .prefix("mqtt-chaos-container-")
            .tempdir()
            .map_err(|e| BrokerError::Start {
                what: self.what(),
                message: format!("cannot create a temp dir: {e}"),
            })?;
        let files: Vec<(&str, String, &str)> = match self.flavor {
            Flavor::Emqx => {
                let mut f = vec![("acl.conf", emqx_acl(), "/opt/emqx/etc/acl.conf")];
                if self.settings.persistence {
                    f.push(("emqx.conf", emqx_conf(true), "/opt/emqx/etc/emqx.conf"));
                }
                f
            }
            Flavor::Mosquitto => vec![(
                "mosquitto.conf",
                mosquitto_conf(self.settings.persistence),
                "/mosquitto/config/mosquitto.conf",
            )],
        };
        let mut mounts = Vec::new();
        for (file, text, target) in files {
            let path = dir.path().join(file);
            write_readable(&path, &text).map_err(|e| BrokerError::Start {
                what: self.what(),
                message: format!("cannot write {}: {e}", path.display()),
            })?;
            mounts.push(
                Mount::bind_mount(path.display().to_string(), target)
                    .with_access_mode(AccessMode::ReadOnly),
            );
        }
        self.files = Some(dir);
        Ok(mounts)
    }

    fn request(&self, mounts: Vec<Mount>) -> testcontainers::ContainerRequest<GenericImage> {
        let mut ports = vec![(MQTT_PORT, self.host_port)];
        if let Some(api) = self.api_port {
            ports.push((EMQX_API_PORT, api));
        }
        let bindings = ports.clone();
        let mut req = GenericImage::new(&self.image, &self.tag)
            .with_container_name(&self.name)
            .with_network(&self.network)
            .with_labels(docker_ops::labels())
            .with_mapped_port(self.host_port, MQTT_PORT.tcp());
        if let Some(api) = self.api_port {
            req = req.with_mapped_port(api, EMQX_API_PORT.tcp());
        }
        if self.flavor == Flavor::Emqx {
            for (k, v) in emqx_env(self.keepalive_multiplier) {
                req = req.with_env_var(k, v);
            }
        }
        for m in mounts {
            req = req.with_mount(m);
        }
        // Published on 127.0.0.1 only (testcontainers binds every address).
        req.with_host_config_modifier(move |hc: &mut HostConfig| {
            hc.port_bindings = Some(
                bindings
                    .iter()
                    .map(|(inside, host)| {
                        (
                            format!("{inside}/tcp"),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(host.to_string()),
                            }]),
                        )
                    })
                    .collect::<HashMap<_, _>>(),
            );
        })
    }

    /// First start: leftovers, network, files, container, alias, readiness.
    async fn create(&mut self) -> Result<(), BrokerError> {
        let what = self.what();
        let docker = docker_ops::connect()
            .await
            .map_err(|e| BrokerError::Start {
                what: what.clone(),
                message: e.to_string(),
            })?;
        let start_err = |message: String| BrokerError::Start {
            what: what.clone(),
            message,
        };
        let removed = docker_ops::remove_leftovers(&docker)
            .await
            .map_err(|e| start_err(e.to_string()))?;
        if !removed.is_empty() {
            tracing::info!(?removed, "removed leftovers of dead mqtt-chaos processes");
        }
        let descriptor = format!("{}:{}", self.image, self.tag);
        if !docker_ops::image_present(&docker, &descriptor)
            .await
            .map_err(|e| start_err(e.to_string()))?
        {
            let hint = if descriptor == DEFAULT_MOSQUITTO_IMAGE {
                "build it with scripts/standin-images.sh".to_string()
            } else {
                format!("pull it first (docker pull {descriptor})")
            };
            return Err(start_err(format!(
                "image {descriptor} is not present locally and is never pulled by the harness: {hint}"
            )));
        }
        self.docker = Some(docker.clone());
        if self.own_network {
            docker_ops::create_network(&docker, &self.network)
                .await
                .map_err(|e| start_err(e.to_string()))?;
            self.network_created = true;
        }
        let mounts = self.write_files()?;
        let deadline = Instant::now() + self.start_timeout;
        let container =
            match tokio::time::timeout(self.start_timeout, self.request(mounts).start()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(start_err(e.to_string())),
                Err(_) => {
                    return Err(start_err(format!(
                        "Docker did not create and start it within {:?}",
                        self.start_timeout
                    )))
                }
            };
        let id = container.id().to_string();
        self.container = Some(container);
        // testcontainers joins the network without an alias: join again with it.
        docker_ops::disconnect(&docker, &self.network, &id)
            .await
            .map_err(|e| start_err(e.to_string()))?;
        docker_ops::connect_network(&docker, &self.network, &id, &[ALIAS])
            .await
            .map_err(|e| start_err(e.to_string()))?;
        self.wait_ready(deadline).await
    }

    /// EMQX: the status API answers 200, then MQTT; Mosquitto: MQTT.
    async fn wait_ready(&mut self, deadline: Instant) -> Result<(), BrokerError> {
        let (docker, id) = self.ids()?;
        let began = Instant::now();
        if let Some(api) = self.api_port {
            let url = format!("http://127.0.0.1:{api}/api/v5/status?format=json");
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| control(&self.what(), e))?;
            match wait_status(&client, &url, deadline).await {
                Ok(body) => {
                    if let Some(v) = emqx_version_from_status(&body) {
                        self.status_version = Some(v);
                    }
                }
                Err(last) => {
                    return Err(BrokerError::NotReady {
                        addr: url,
                        waited: began.elapsed(),
                        message: format!(
                            "EMQX's status API never answered 200 (last: {last}); its log ends: {}",
                            self.log_tail().await
                        ),
                    })
                }
            }
        }
        if let Err(last) = wait_mqtt(self.addr(), deadline, &docker, &id).await {
            return Err(BrokerError::NotReady {
                addr: self.addr().to_string(),
                waited: began.elapsed(),
                message: format!(
                    "{} never answered CONNECT ({last}); its log ends: {}",
                    self.what(),
                    self.log_tail().await
                ),
            });
        }
        Ok(())
    }

    /// The last lines of the container's output, for error messages.
    async fn log_tail(&self) -> String {
        let Some(c) = &self.container else {
            return String::new();
        };
        let mut out = c.stdout_to_vec().await.unwrap_or_default();
        out.extend(c.stderr_to_vec().await.unwrap_or_default());
        let text = String::from_utf8_lossy(&out);
        let start = text.len().saturating_sub(2048);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].trim().to_string()
    }

    /// `docker network disconnect` from the run network (see the module doc).
    async fn do_partition(&mut self) -> Result<(), BrokerError> {
        let (docker, id) = self.ids()?;
        docker_ops::disconnect(&docker, &self.network, &id).await?;
        self.partitioned = true;
        Ok(())
    }

    async fn do_heal_partition(&mut self) -> Result<(), BrokerError> {
        if !self.partitioned {
            return Ok(());
        }
        let (docker, id) = self.ids()?;
        docker_ops::connect_network(&docker, &self.network, &id, &[ALIAS]).await?;
        self.partitioned = false;
        Ok(())
    }
}

/// Write a file the container's user can read (EMQX runs as uid 1000).
fn write_readable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    if let Some(dir) = path.parent() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[async_trait]
impl Broker for ContainerBroker {
    fn version(&self) -> String {
        let image = format!("{}:{}", self.image, self.tag);
        match &self.status_version {
            Some(v) => format!("{v} ({image})"),
            None => image,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.host_port))
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(self.flavor, &self.settings)
    }

    /// EMQX 5 publishes client events on `$SYS` (the ACL lets the observer
    /// read them).
    fn sys_client_events(&self) -> bool {
        self.flavor == Flavor::Emqx
    }

    fn docker_network(&self) -> Option<(String, String)> {
        Some((self.network.clone(), self.network_addr()))
    }

    /// First time: create everything and wait until ready. After a stop or
    /// kill: `docker start` and wait until MQTT answers. Running: nothing.
    async fn start(&mut self) -> Result<(), BrokerError> {
        if self.shut_down {
            return Err(control(&self.what(), "start: already shut down"));
        }
        if self.container.is_none() {
            return self.create().await;
        }
        let (docker, id) = self.ids()?;
        if docker_ops::state(&docker, &id).await?.running {
            return Ok(());
        }
        let deadline = Instant::now() + self.start_timeout;
        docker_ops::start(&docker, &id).await?;
        self.paused = false;
        self.wait_ready(deadline).await
    }

    async fn stop(&mut self) -> Result<(), BrokerError> {
        let (docker, id) = self.ids()?;
        docker_ops::stop(&docker, &id, self.stop_grace).await?;
        self.paused = false;
        Ok(())
    }

    async fn kill(&mut self) -> Result<(), BrokerError> {
        let (docker, id) = self.ids()?;
        docker_ops::kill(&docker, &id).await?;
        self.paused = false;
        Ok(())
    }

    async fn pause(&mut self) -> Result<(), BrokerError> {
        let (docker, id) = self.ids()?;
        docker_ops::pause(&docker, &id).await?;
        self.paused = true;
        Ok(())
    }

    async fn resume(&mut self) -> Result<(), BrokerError> {
        if !self.paused {
            return Ok(());
        }
        let (docker, id) = self.ids()?;
        docker_ops::unpause(&docker, &id).await?;
        self.paused = false;
        Ok(())
    }

    async fn partition(&mut self) -> Result<(), BrokerError> {
        self.do_partition().await
    }

    async fn heal_partition(&mut self) -> Result<(), BrokerError> {
        self.do_heal_partition().await
    }

    /// Remove the container, our network and the mounted files.
    async fn shutdown(&mut self) -> Result<(), BrokerError> {
        self.shut_down = true;
        let mut first_error = None;
        if let Some(c) = self.container.take() {
            if let Err(e) = c.rm().await {
                first_error.get_or_insert(control(&self.what(), format!("remove: {e}")));
            }
        }
        if self.network_created {
            if let Some(docker) = &self.docker {
                if let Err(e) = docker_ops::remove_network(docker, &self.network).await {
                    first_error.get_or_insert(e.into());
                }
            }
            self.network_created = false;
        }
        self.files = None;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for ContainerBroker {
    /// Never leave the container behind: inside a runtime testcontainers'
    /// own drop removes it; outside one (a runtime already gone, a panic
    /// unwinding past it) it is removed on a cleanup thread. Our network goes
    /// after it.
    fn drop(&mut self) {
        let network = self.network_created.then(|| self.network.clone());
        self.network_created = false;
        let container = self.container.take();
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        match container {
            Some(c) if in_runtime => {
                drop(c);
                docker_ops::remove_aside(None, network);
            }
            Some(c) => {
                let id = c.id().to_string();
                // Its own drop needs a runtime; we remove it ourselves.
                std::mem::forget(c);
                docker_ops::remove_aside(Some(id), network);
            }
            None => docker_ops::remove_aside(None, network),
        }
    }
}

/// `CONTAINER@HOST:PORT` → the container and the MQTT address (pure).
pub fn parse_attached(spec: &str) -> Result<(String, String, u16), String> {
    let (container, addr) = spec
        .split_once('@')
        .ok_or_else(|| format!("{spec:?}: expected CONTAINER@HOST:PORT"))?;
    if container.is_empty()
        || !container
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!("{container:?} is not a container name or id"));
    }
    let (host, port) = super::external::parse_spec(&format!("tcp://{addr}"))?;
    if !addr.contains(':') || addr.ends_with(']') {
        return Err(format!("{addr:?}: name the MQTT port (HOST:PORT)"));
    }
    Ok((container.to_string(), host, port))
}

/// A broker container somebody else runs (`docker compose`): MQTT at
/// HOST:PORT, lifecycle faults through the Docker API on the container;
/// nothing is created or removed.
#[derive(Debug)]
pub struct AttachedContainer {
    container: String,
    addr: SocketAddr,
    docker: Option<Docker>,
    image: String,
    paused: bool,
    start_timeout: Duration,
    stop_grace: Duration,
}

impl AttachedContainer {
    /// Parse `CONTAINER@HOST:PORT` and resolve the host.
    pub fn parse(spec: &str) -> Result<AttachedContainer, BrokerError> {
        use std::net::ToSocketAddrs;
        let bad = |message: String| BrokerError::Start {
            what: format!("--broker docker={spec}"),
            message,
        };
        let (container, host, port) = parse_attached(spec).map_err(bad)?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| bad(format!("{host} resolves to no address")))?;
        Ok(AttachedContainer {
            container,
            addr,
            docker: None,
            image: String::new(),
            paused: false,
            start_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
        })
    }

    pub fn with_start_timeout(mut self, d: Duration) -> AttachedContainer {
        self.start_timeout = d;
        self
    }

    fn what(&self) -> String {
        format!("container {} at {}", self.container, self.addr)
    }

    fn docker(&self) -> Result<Docker, BrokerError> {
        self.docker
            .clone()
            .ok_or_else(|| control(&self.what(), "not started"))
    }
}

/// What an attached container can do: its lifecycle; whether sessions
/// survive is its own configuration, which the harness cannot see.
pub const ATTACHED_CAPABILITIES: Capabilities = Capabilities {
    restart: true,
    kill: true,
    pause: true,
    persistence: true,
    keepalive_zero: true,
    partition: false,
    mqtt5: true,
};

#[async_trait]
impl Broker for AttachedContainer {
    fn version(&self) -> String {
        if self.image.is_empty() {
            format!("container {}", self.container)
        } else {
            format!("{} (container {})", self.image, self.container)
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn capabilities(&self) -> Capabilities {
        ATTACHED_CAPABILITIES
    }

    /// An EMQX container (by its image's name) publishes client events on
    /// `$SYS`; whether the observer may read them is its ACL's business.
    fn sys_client_events(&self) -> bool {
        self.image.contains("emqx")
    }

    /// Find the container, start it when stopped, wait until MQTT answers.
    async fn start(&mut self) -> Result<(), BrokerError> {
        let what = self.what();
        let start_err = |message: String| BrokerError::Start {
            what: what.clone(),
            message,
        };
        if self.docker.is_none() {
            self.docker = Some(
                docker_ops::connect()
                    .await
                    .map_err(|e| start_err(e.to_string()))?,
            );
        }
        let docker = self.docker()?;
        let st = docker_ops::state(&docker, &self.container)
            .await
            .map_err(|e| start_err(e.to_string()))?;
        self.image = st.image.clone();
        let deadline = Instant::now() + self.start_timeout;
        if st.paused {
            docker_ops::unpause(&docker, &self.container).await?;
        }
        if !st.running {
            docker_ops::start(&docker, &self.container).await?;
        }
        self.paused = false;
        wait_mqtt(self.addr, deadline, &docker, &self.container)
            .await
            .map_err(|last| BrokerError::NotReady {
                addr: self.addr.to_string(),
                waited: self.start_timeout,
                message: format!("{} never answered CONNECT ({last})", self.what()),
            })
    }

    async fn stop(&mut self) -> Result<(), BrokerError> {
        docker_ops::stop(&self.docker()?, &self.container, self.stop_grace).await?;
        Ok(())
    }

    async fn kill(&mut self) -> Result<(), BrokerError> {
        docker_ops::kill(&self.docker()?, &self.container).await?;
        Ok(())
    }

    async fn pause(&mut self) -> Result<(), BrokerError> {
        docker_ops::pause(&self.docker()?, &self.container).await?;
        self.paused = true;
        Ok(())
    }

    async fn resume(&mut self) -> Result<(), BrokerError> {
        if !self.paused {
            return Ok(());
        }
        docker_ops::unpause(&self.docker()?, &self.container).await?;
        self.paused = false;
        Ok(())
    }

    /// Somebody else's container: left running as the run found it.
    async fn shutdown(&mut self) -> Result<(), BrokerError> {
        if self.paused {
            if let Ok(d) = self.docker() {
                let _ = docker_ops::unpause(&d, &self.container).await;
            }
            self.paused = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_into_name_and_tag() {
        assert_eq!(
            split_image("emqx/emqx:5.8.6"),
            Ok(("emqx/emqx".into(), "5.8.6".into()))
        );
        assert_eq!(
            split_image("emqx/emqx"),
            Ok(("emqx/emqx".into(), "latest".into()))
        );
        assert_eq!(
            split_image("registry:5000/emqx"),
            Ok(("registry:5000/emqx".into(), "latest".into()))
        );
        assert_eq!(
            split_image("registry:5000/emqx:5.8"),
            Ok(("registry:5000/emqx".into(), "5.8".into()))
        );
        assert!(split_image("").is_err());
        assert!(split_image("emqx:").is_err());
        assert!(split_image("a b").is_err());
        assert!(split_image("emqx@sha256:abc").is_err());
    }

    #[test]
    fn the_emqx_environment_pins_the_node_and_states_every_setting() {
        let env: HashMap<String, String> = emqx_env(1.5).into_iter().collect();
        assert_eq!(env["EMQX_NODE__NAME"], "emqx@127.0.0.1");
        assert_eq!(env["EMQX_MQTT__KEEPALIVE_MULTIPLIER"], "1.5");
        assert_eq!(env["EMQX_MQTT__MAX_QOS_ALLOWED"], "2");
        assert_eq!(env["EMQX_AUTHORIZATION__NO_MATCH"], "allow");
        assert!(env["EMQX_AUTHORIZATION__SOURCES"].contains("/opt/emqx/etc/acl.conf"));
        assert_eq!(env.len(), 5);
        let env: HashMap<String, String> = emqx_env(2.0).into_iter().collect();
        assert_eq!(env["EMQX_MQTT__KEEPALIVE_MULTIPLIER"], "2.0");
    }

    #[test]
    fn the_acl_lets_the_observer_read_sys_before_the_default_deny() {
        let acl = emqx_acl();
        let lines: Vec<&str> = acl.lines().filter(|l| l.starts_with('{')).collect();
        assert!(lines[0].contains("^mqtt-chaos-observer-") && lines[0].contains("$SYS/#"));
        let deny = lines.iter().position(|l| l.starts_with("{deny")).unwrap();
        assert!(deny > 0);
        assert_eq!(lines.last(), Some(&"{allow, all}."));
        // Every rule is an Erlang term ending with a dot.
        assert!(lines.iter().all(|l| l.ends_with("}.")));
    }

    #[test]
    fn the_compose_file_mounts_the_same_acl_and_reads_it() {
        let root = env!("CARGO_MANIFEST_DIR");
        let file = std::fs::read_to_string(format!("{root}/compose/emqx-acl.conf")).unwrap();
        assert_eq!(
            file,
            emqx_acl(),
            "compose/emqx-acl.conf differs from emqx_acl()"
        );
        let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
        assert!(
            compose.contains("- ./compose/emqx-acl.conf:/opt/emqx/etc/acl.conf:ro"),
            "docker-compose.yml does not mount the ACL"
        );
        let env: HashMap<String, String> = emqx_env(1.5).into_iter().collect();
        let sources = format!(
            "EMQX_AUTHORIZATION__SOURCES: '{}'",
            env["EMQX_AUTHORIZATION__SOURCES"]
        );
        assert!(
            compose.contains(&sources),
            "docker-compose.yml lacks {sources}"
        );
        assert!(compose.contains("EMQX_AUTHORIZATION__NO_MATCH: allow"));
    }

    #[test]
    fn durable_sessions_are_in_the_config_file_only_when_asked() {
        assert!(emqx_conf(true).contains("durable_sessions {\n  enable = true\n}"));
        assert!(!emqx_conf(false).contains("durable_sessions"));
        assert!(emqx_conf(true).contains("name = \"emqx@127.0.0.1\""));
    }

    #[test]
    fn the_mosquitto_config_listens_everywhere_in_the_container() {
        let c = mosquitto_conf(true);
        assert!(c.contains("listener 1883 0.0.0.0\n"));
        assert!(c.contains("persistence_location /mosquitto/data/\n"));
        assert!(c.contains("autosave_on_changes true\n"));
        assert!(mosquitto_conf(false).contains("persistence false\n"));
        assert!(c.contains(crate::broker::mosquitto::QUEUE_LIMITS));
    }

    #[test]
    fn emqx_names_its_release_in_the_json_status() {
        let body = r#"{"rel_vsn":"5.8.6","node_name":"emqx@127.0.0.1","broker_status":"started","app_status":"running"}"#;
        assert_eq!(
            emqx_version_from_status(body).as_deref(),
            Some("emqx 5.8.6")
        );
        assert_eq!(
            emqx_version_from_status("Node emqx@127.0.0.1 is started"),
            None
        );
    }

    #[test]
    fn attached_specs_name_a_container_and_an_mqtt_address() {
        assert_eq!(
            parse_attached("compose-emqx-1@127.0.0.1:1883"),
            Ok(("compose-emqx-1".into(), "127.0.0.1".into(), 1883))
        );
        assert_eq!(
            parse_attached("b@[::1]:1884"),
            Ok(("b".into(), "::1".into(), 1884))
        );
        assert!(parse_attached("b")
            .unwrap_err()
            .contains("CONTAINER@HOST:PORT"));
        assert!(parse_attached("@h:1").is_err());
        assert!(parse_attached("b/c@h:1").is_err());
        assert!(parse_attached("b@h").unwrap_err().contains("port"));
        assert!(parse_attached("b@h:0").is_err());
    }

    #[test]
    fn emqx_keeps_sessions_only_with_durable_sessions() {
        let on = BrokerSettings { persistence: true };
        let off = BrokerSettings { persistence: false };
        assert!(capabilities(Flavor::Emqx, &on).persistence);
        assert!(!capabilities(Flavor::Emqx, &off).persistence);
        assert!(capabilities(Flavor::Mosquitto, &off).persistence);
        let c = capabilities(Flavor::Emqx, &off);
        assert!(c.restart && c.kill && c.pause && c.keepalive_zero && c.partition);
    }

    /// A tiny HTTP server: answers `503` `unready` times, then `200` with a
    /// body; counts the requests.
    async fn status_server(
        unready: usize,
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let n = c.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let (status, body) = if n < unready {
                    ("503 Service Unavailable", "starting".to_string())
                } else {
                    ("200 OK", r#"{"rel_vsn":"5.8.6"}"#.to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        (addr, count)
    }

    #[tokio::test]
    async fn the_status_wait_polls_through_503s_until_200() {
        let (addr, count) = status_server(3).await;
        let client = reqwest::Client::new();
        let body = wait_status(
            &client,
            &format!("http://{addr}/api/v5/status?format=json"),
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            emqx_version_from_status(&body).as_deref(),
            Some("emqx 5.8.6")
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_status_wait_gives_up_at_its_deadline_naming_the_last_answer() {
        let (addr, _) = status_server(usize::MAX).await;
        let client = reqwest::Client::new();
        let began = Instant::now();
        let err = wait_status(
            &client,
            &format!("http://{addr}/"),
            Instant::now() + Duration::from_millis(600),
        )
        .await
        .unwrap_err();
        assert!(err.contains("503"), "{err}");
        let took = began.elapsed();
        assert!(
            took >= Duration::from_millis(600) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}

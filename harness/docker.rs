//! Docker plumbing shared by the containerized backends (the broker in
//! `broker::container`, Toxiproxy in `fault::container`): the labels every
//! object we create carries, the Docker connection, the run's network, the
//! lifecycle operations on a container, and the removal of what a dead
//! harness left behind.
//!
//! Every container, network and volume the harness creates carries
//! `mqtt-chaos.owner=mqtt-chaos` and `mqtt-chaos.pid=<harness pid>`. At
//! start, [`remove_leftovers`] removes those whose pid names a process that
//! no longer exists (a harness that was SIGKILLed, or crashed hard enough
//! that no destructor ran). A living harness's objects are never touched, so
//! runs and test processes can share one Docker daemon.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use testcontainers::bollard::models::{EndpointSettings, NetworkConnectRequest};
use testcontainers::bollard::models::{NetworkCreateRequest, NetworkDisconnectRequest};
use testcontainers::bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

/// `mqtt-chaos.owner`: marks what the harness created.
pub const OWNER_LABEL: &str = "mqtt-chaos.owner";
/// The value of [`OWNER_LABEL`].
pub const OWNER: &str = "mqtt-chaos";
/// `mqtt-chaos.pid`: the harness process that created it.
pub const PID_LABEL: &str = "mqtt-chaos.pid";
/// How long one Docker API call may take before we call Docker unavailable.
pub const API_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an operation waits for Docker to report the state it asked for.
const CONFIRM: Duration = Duration::from_secs(10);

/// A failure of Docker (the environment).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("Docker is not available: {0}")]
    Unavailable(String),
    #[error("Docker: {what}: {message}")]
    Docker { what: String, message: String },
}

fn docker_err(what: impl Into<String>, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Docker {
        what: what.into(),
        message: e.to_string(),
    }
}

/// The labels of an object this process creates.
pub fn labels() -> HashMap<String, String> {
    labels_for(std::process::id())
}

/// The labels of an object created by harness process `pid` (pure).
pub fn labels_for(pid: u32) -> HashMap<String, String> {
    HashMap::from([
        (OWNER_LABEL.to_string(), OWNER.to_string()),
        (PID_LABEL.to_string(), pid.to_string()),
    ])
}

/// The Docker filter that selects every object we ever created.
fn owner_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{OWNER_LABEL}={OWNER}")])])
}

/// Whether a process with this pid exists (signal 0; `EPERM` means it
/// exists but is not ours to signal).
pub fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Whether an object with these labels is a leftover: ours, and its pid
/// label names no living process (pure but for the liveness check given).
pub fn is_leftover(labels: &HashMap<String, String>, alive: impl Fn(i32) -> bool) -> bool {
    if labels.get(OWNER_LABEL).map(String::as_str) != Some(OWNER) {
        return false;
    }
    match labels.get(PID_LABEL).and_then(|p| p.parse::<i32>().ok()) {
        Some(pid) if pid > 0 => !alive(pid),
        // Ours but with no readable pid: nobody can be using it.
        _ => true,
    }
}

/// Connect to the Docker daemon (`DOCKER_HOST` or the local socket, as
/// testcontainers does) and check it answers.
pub async fn connect() -> Result<Docker, ContainerError> {
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| ContainerError::Unavailable(e.to_string()))?;
    ping(&docker).await?;
    Ok(docker)
}

/// A fresh client of its own, for use on a runtime made only to clean up.
pub fn connect_fresh() -> Result<Docker, ContainerError> {
    Docker::connect_with_defaults().map_err(|e| ContainerError::Unavailable(e.to_string()))
}

async fn ping(docker: &Docker) -> Result<(), ContainerError> {
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ContainerError::Unavailable(e.to_string())),
        Err(_) => Err(ContainerError::Unavailable(
            "the daemon did not answer /_ping within 5 s".into(),
        )),
    }
}

/// Whether a Docker daemon answers here.
pub async fn available() -> bool {
    connect().await.is_ok()
}

/// What [`remove_leftovers`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

/// Remove the containers, then the networks and volumes, that carry our
/// labels and whose harness process is gone. Containers first: a network
/// with a container attached cannot be removed.
pub async fn remove_leftovers(docker: &Docker) -> Result<Leftovers, ContainerError> {
    let mut removed = Leftovers::default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(owner_filter()),
            ..Default::default()
        }))
        .await
        .map_err(|e| docker_err("list containers", e))?;
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        if !is_leftover(&labels, process_alive) {
            continue;
        }
        let Some(id) = c.id else { continue };
        remove_container(docker, &id).await?;
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or(id);
        removed.containers.push(name);
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(owner_filter()),
        }))
        .await
        .map_err(|e| docker_err("list networks", e))?;
    for n in networks {
        let labels = n.labels.unwrap_or_default();
        if !is_leftover(&labels, process_alive) {
            continue;
        }
        let Some(name) = n.name else { continue };
        match docker.remove_network(&name).await {
            Ok(()) => removed.networks.push(name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(docker_err(format!("remove network {name}"), e)),
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(owner_filter()),
        }))
        .await
        .map_err(|e| docker_err("list volumes", e))?;
    for v in volumes.volumes.unwrap_or_default() {
        if !is_leftover(&v.labels, process_alive) {
            continue;
        }
        match docker
            .remove_volume(&v.name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => removed.volumes.push(v.name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(docker_err(format!("remove volume {}", v.name), e)),
        }
    }
    Ok(removed)
}

/// The containers and networks (by name) that harness process `pid`
/// created and that still exist.
pub async fn owned_by(docker: &Docker, pid: u32) -> Result<Leftovers, ContainerError> {
    let filter = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{OWNER_LABEL}={OWNER}"),
            format!("{PID_LABEL}={pid}"),
        ],
    )]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filter.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| docker_err("list containers", e))?
        .into_iter()
        .filter_map(|c| c.names.and_then(|n| n.first().cloned()))
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter),
        }))
        .await
        .map_err(|e| docker_err("list networks", e))?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    Ok(Leftovers {
        containers,
        networks,
        volumes: Vec::new(),
    })
}

fn is_not_found(e: &testcontainers::bollard::errors::Error) -> bool {
    matches!(
        e,
        testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A name for this run's network, unique on the machine: several runs (and
/// test runs) of one process each get their own.
pub fn run_network_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "mqtt-chaos-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A container name unique on the machine for `role` (`broker`, `toxiproxy`).
pub fn container_name(role: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "mqtt-chaos-{role}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Create a user-defined bridge network with our labels.
pub async fn create_network(docker: &Docker, name: &str) -> Result<(), ContainerError> {
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels()),
            ..Default::default()
        })
        .await
        .map_err(|e| docker_err(format!("create network {name}"), e))?;
    Ok(())
}

/// Remove a network; one already gone is fine.
pub async fn remove_network(docker: &Docker, name: &str) -> Result<(), ContainerError> {
    match docker.remove_network(name).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(docker_err(format!("remove network {name}"), e)),
    }
}

/// Force-remove a container and its anonymous volumes; one already gone is
/// fine.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(docker_err(format!("remove container {id}"), e)),
    }
}

/// What Docker says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub running: bool,
    pub paused: bool,
    /// The networks it is attached to.
    pub networks: Vec<String>,
    pub image: String,
}

/// Inspect a container.
pub async fn state(docker: &Docker, id: &str) -> Result<State, ContainerError> {
    let info = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| docker_err(format!("inspect container {id}"), e))?;
    let st = info.state.unwrap_or_default();
    let mut networks: Vec<String> = info
        .network_settings
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().collect())
        .unwrap_or_default();
    networks.sort();
    Ok(State {
        running: st.running.unwrap_or(false),
        paused: st.paused.unwrap_or(false),
        networks,
        image: info.config.and_then(|c| c.image).unwrap_or_default(),
    })
}

/// Poll Docker (bounded) until `ok` holds for the container's state.
async fn confirm(
    docker: &Docker,
    id: &str,
    what: &str,
    ok: impl Fn(&State) -> bool,
) -> Result<(), ContainerError> {
    let began = Instant::now();
    let mut delay = Duration::from_millis(10);
    loop {
        let s = state(docker, id).await?;
        if ok(&s) {
            return Ok(());
        }
        if began.elapsed() > CONFIRM {
            return Err(docker_err(
                format!("{what} {id}"),
                format!("not confirmed after {CONFIRM:?}: Docker reports {s:?}"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// `docker stop -t GRACE`: SIGTERM, SIGKILL after the grace; returns once
/// Docker reports the container not running.
pub async fn stop(docker: &Docker, id: &str, grace: Duration) -> Result<(), ContainerError> {
    let t = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
    let opts = StopContainerOptionsBuilder::new().t(t).build();
    match docker.stop_container(id, Some(opts)).await {
        Ok(()) => {}
        // 304: already stopped.
        Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }) => {}
        Err(e) => return Err(docker_err(format!("stop container {id}"), e)),
    }
    confirm(docker, id, "stop container", |s| !s.running).await
}

/// `docker kill` (SIGKILL); returns once Docker reports it not running.
pub async fn kill(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    docker
        .kill_container(id, Some(opts))
        .await
        .map_err(|e| docker_err(format!("kill container {id}"), e))?;
    confirm(docker, id, "kill container", |s| !s.running).await
}

/// `docker start`; returns once Docker reports it running (the service in
/// it may not answer yet).
pub async fn start(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    match docker
        .start_container(id, None::<StartContainerOptions>)
        .await
    {
        Ok(()) => {}
        // 304: already started.
        Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }) => {}
        Err(e) => return Err(docker_err(format!("start container {id}"), e)),
    }
    confirm(docker, id, "start container", |s| s.running).await
}

/// `docker pause` (the cgroup freezer): confirmed by Docker's state.
pub async fn pause(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    docker
        .pause_container(id)
        .await
        .map_err(|e| docker_err(format!("pause container {id}"), e))?;
    confirm(docker, id, "pause container", |s| s.paused).await
}

/// `docker unpause`: confirmed by Docker's state.
pub async fn unpause(docker: &Docker, id: &str) -> Result<(), ContainerError> {
    docker
        .unpause_container(id)
        .await
        .map_err(|e| docker_err(format!("unpause container {id}"), e))?;
    confirm(docker, id, "unpause container", |s| !s.paused).await
}

/// `docker network disconnect -f NETWORK ID`: confirmed when Docker no
/// longer lists the network on the container.
pub async fn disconnect(docker: &Docker, network: &str, id: &str) -> Result<(), ContainerError> {
    docker
        .disconnect_network(
            network,
            NetworkDisconnectRequest {
                container: id.to_string(),
                force: Some(true),
            },
        )
        .await
        .map_err(|e| docker_err(format!("disconnect {id} from network {network}"), e))?;
    confirm(docker, id, "network disconnect", |s| {
        !s.networks.iter().any(|n| n == network)
    })
    .await
}

/// `docker network connect --alias ALIAS… NETWORK ID`: confirmed when Docker
/// lists the network on the container.
pub async fn connect_network(
    docker: &Docker,
    network: &str,
    id: &str,
    aliases: &[&str],
) -> Result<(), ContainerError> {
    docker
        .connect_network(
            network,
            NetworkConnectRequest {
                container: id.to_string(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
                    ..Default::default()
                }),
            },
        )
        .await
        .map_err(|e| docker_err(format!("connect {id} to network {network}"), e))?;
    confirm(docker, id, "network connect", |s| {
        s.networks.iter().any(|n| n == network)
    })
    .await
}

/// Whether an image is present locally (nothing is pulled).
pub async fn image_present(docker: &Docker, image: &str) -> Result<bool, ContainerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(docker_err(format!("inspect image {image}"), e)),
    }
}

/// Run `f` to completion on a runtime of its own, on a thread of its own,
/// and wait for it: cleanup that must work from a destructor, inside a
/// runtime or outside one, during a panic included.
pub fn block_on_aside<F>(f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let worker = std::thread::Builder::new()
        .name("mqtt-chaos-cleanup".into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(f);
            }
        });
    if let Ok(w) = worker {
        let _ = w.join();
    }
}

/// Remove a container and (when given) a network from a destructor: on a
/// fresh client, on a thread of its own, bounded by [`API_TIMEOUT`].
pub fn remove_aside(container: Option<String>, network: Option<String>) {
    if container.is_none() && network.is_none() {
        return;
    }
    block_on_aside(async move {
        let Ok(docker) = connect_fresh() else { return };
        let work = async {
            if let Some(id) = &container {
                let _ = remove_container(&docker, id).await;
            }
            if let Some(n) = &network {
                let _ = remove_network(&docker, n).await;
            }
        };
        let _ = tokio::time::timeout(API_TIMEOUT, work).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_labels_name_the_owner_and_the_pid() {
        let l = labels_for(4242);
        assert_eq!(
            l.get("mqtt-chaos.owner").map(String::as_str),
            Some("mqtt-chaos")
        );
        assert_eq!(l.get("mqtt-chaos.pid").map(String::as_str), Some("4242"));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn a_leftover_is_ours_and_its_process_is_gone() {
        let dead = |_| false;
        let alive = |_| true;
        assert!(is_leftover(&labels_for(7), dead));
        assert!(!is_leftover(&labels_for(7), alive));
        // Somebody else's object is never a leftover of ours.
        let foreign = HashMap::from([(PID_LABEL.to_string(), "7".to_string())]);
        assert!(!is_leftover(&foreign, dead));
        // Ours without a usable pid: nobody can be using it.
        let mut no_pid = labels_for(7);
        no_pid.insert(PID_LABEL.into(), "x".into());
        assert!(is_leftover(&no_pid, alive));
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn network_and_container_names_are_unique_in_a_process() {
        assert_ne!(run_network_name(), run_network_name());
        let a = container_name("broker");
        assert!(a.starts_with(&format!("mqtt-chaos-broker-{}-", std::process::id())));
        assert_ne!(a, container_name("broker"));
    }
}

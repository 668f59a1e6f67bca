//! Toxiproxy in a container, started for one run with testcontainers.
//!
//! Toxiproxy proxies are created after the container starts, but Docker maps
//! ports only when a container is created: so a range of proxy ports
//! ([`PROXY_PORTS`], the 8666–8697 of testcontainers-java) is exposed up
//! front, each mapped to a free port Docker picks on `127.0.0.1`, beside the
//! API port 8474. A proxy then listens on `0.0.0.0:<one of them>` inside the
//! container and devices connect to its mapped host port ([`Placement`]).
//!
//! The container joins a Docker network so it can reach a broker container
//! by name; the broker is never reached through the host's loopback (a
//! container's `127.0.0.1` is its own). Everything created here carries the
//! labels of [`crate::docker`] (so a leftover of a crashed run is removed
//! by the next start), and
//! is removed by [`ToxiproxyContainer::shutdown`], or when dropped (a panic,
//! an early return): testcontainers removes a container on drop, and the
//! network guard removes what this module created.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::placement::{Placement, Slot};
use super::toxiproxy::Toxiproxy;
use super::LinkFaults;

/// The image `--faults toxiproxy-container` runs.
pub const DEFAULT_IMAGE: &str = "ghcr.io/shopify/toxiproxy:2.12.0";
/// Toxiproxy's API port inside the container.
pub const API_PORT: u16 = 8474;
/// The proxy ports exposed when the container is created (one per device
/// group), outside the ephemeral range, as testcontainers-java does.
pub const PROXY_PORTS: RangeInclusive<u16> = 8666..=8697;
pub use crate::docker::{labels, OWNER, OWNER_LABEL as LABEL_OWNER, PID_LABEL as LABEL_PID};
/// How long the container may take until `GET /version` answers.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A failure to start or stop the container (the environment).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("docker ({what}): {message}")]
    Docker { what: String, message: String },
    #[error("image \"{0}\" is not NAME:TAG")]
    Image(String),
    #[error(
        "toxiproxy container {name}: the API at {api} did not answer within {waited:?}: {message}"
    )]
    NotReady {
        name: String,
        api: String,
        waited: Duration,
        message: String,
    },
}

fn docker(what: impl Into<String>) -> impl FnOnce(String) -> ContainerError {
    let what = what.into();
    move |message| ContainerError::Docker { what, message }
}

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSettings {
    /// `NAME:TAG`.
    pub image: String,
    /// An existing network to join (a compose network, the run's network);
    /// `None`: a network is created for this container and removed with it.
    pub network: Option<String>,
    /// The container's name, unique on the Docker host.
    pub name: String,
}

impl ContainerSettings {
    /// The default image, a new network, a name unique on this host: this
    /// process's pid and a count (several runs may share a process).
    pub fn for_this_process() -> ContainerSettings {
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ContainerSettings {
            image: DEFAULT_IMAGE.into(),
            network: None,
            name: format!("mqtt-chaos-{}-toxiproxy-{n}", std::process::id()),
        }
    }
}

/// Split `NAME:TAG`; the tag is after the last `:` that follows the last `/`
/// (a registry may carry a port: `host:5000/toxiproxy:2.12.0`).
pub fn split_image(image: &str) -> Result<(&str, &str), ContainerError> {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) if i > 0 && slash + i + 1 < image.len() => {
            Ok((&image[..slash + i], &image[slash + i + 1..]))
        }
        _ => Err(ContainerError::Image(image.into())),
    }
}

/// A network this module created; removed when dropped.
struct OwnedNetwork {
    name: String,
    docker: Docker,
    removed: bool,
}

impl OwnedNetwork {
    async fn create(docker: &Docker, name: &str) -> Result<OwnedNetwork, ContainerError> {
        crate::docker::create_network(docker, name)
            .await
            .map_err(|e| match e {
                crate::docker::ContainerError::Docker { what, message } => {
                    ContainerError::Docker { what, message }
                }
                other => ContainerError::Docker {
                    what: format!("create network {name}"),
                    message: other.to_string(),
                },
            })?;
        Ok(OwnedNetwork {
            name: name.to_string(),
            docker: docker.clone(),
            removed: false,
        })
    }

    async fn remove(mut self) -> Result<(), ContainerError> {
        self.removed = true;
        self.docker
            .remove_network(&self.name)
            .await
            .map_err(|e| docker_err(format!("remove network {}", self.name), e))
    }
}

impl Drop for OwnedNetwork {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let (docker, name) = (self.docker.clone(), self.name.clone());
        // Drop may run outside a runtime (a panic unwinding): remove on a
        // thread of its own, and wait for it so nothing is left behind.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    // The container may still be detaching: a few tries.
                    for _ in 0..20 {
                        if docker.remove_network(&name).await.is_ok() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
        })
        .join();
    }
}

fn docker_err(what: String, e: testcontainers::bollard::errors::Error) -> ContainerError {
    ContainerError::Docker {
        what,
        message: e.to_string(),
    }
}

/// A Toxiproxy running in a container, with its proxy ports mapped.
pub struct ToxiproxyContainer {
    // Field order is drop order: the container goes before its network.
    container: Option<ContainerAsync<GenericImage>>,
    network: Option<OwnedNetwork>,
    network_name: String,
    name: String,
    client: Toxiproxy,
    slots: Vec<Slot>,
}

impl ToxiproxyContainer {
    /// Start the container and wait until its API answers `GET /version`.
    pub async fn start(settings: &ContainerSettings) -> Result<ToxiproxyContainer, ContainerError> {
        let (image, tag) = split_image(&settings.image)?;
        let client = Docker::connect_with_local_defaults()
            .map_err(|e| docker_err("connect".into(), e))?
            .negotiate_version()
            .await
            .map_err(|e| docker_err("negotiate the API version".into(), e))?;
        // What a crashed run left (a broker container's start does the same).
        let removed = crate::docker::remove_leftovers(&client)
            .await
            .map_err(|e| ContainerError::Docker {
                what: "remove leftovers".into(),
                message: e.to_string(),
            })?;
        if !removed.is_empty() {
            tracing::info!(?removed, "removed leftovers of dead mqtt-chaos processes");
        }
        let (network, network_name) = match &settings.network {
            Some(n) => (None, n.clone()),
            None => {
                let name = format!("{}-net", settings.name);
                (Some(OwnedNetwork::create(&client, &name).await?), name)
            }
        };
        let ports: Vec<u16> = std::iter::once(API_PORT).chain(PROXY_PORTS).collect();
        let mut request = GenericImage::new(image, tag).with_wait_for(WaitFor::Nothing);
        for p in &ports {
            request = request.with_exposed_port(p.tcp());
        }
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
            .iter()
            .map(|p| {
                (
                    format!("{p}/tcp"),
                    // An empty host port: Docker picks a free one.
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect();
        let request = request
            .with_container_name(&settings.name)
            .with_network(&network_name)
            .with_labels(labels())
            .with_startup_timeout(STARTUP_TIMEOUT)
            .with_host_config_modifier(move |hc: &mut HostConfig| {
                hc.publish_all_ports = Some(false);
                hc.port_bindings = Some(bindings.clone());
            });
        let container = request.start().await.map_err(|e| ContainerError::Docker {
            what: format!("start {} as {}", settings.image, settings.name),
            message: e.to_string(),
        })?;
        let mapped = container
            .ports()
            .await
            .map_err(|e| ContainerError::Docker {
                what: format!("inspect the ports of {}", settings.name),
                message: e.to_string(),
            })?;
        let host = |p: u16| {
            mapped
                .map_to_host_port_ipv4(p.tcp())
                .map(|hp| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), hp))
                .ok_or_else(|| ContainerError::Docker {
                    what: format!("inspect the ports of {}", settings.name),
                    message: format!("port {p}/tcp is not mapped"),
                })
        };
        let api = host(API_PORT)?;
        let slots = PROXY_PORTS
            .map(|p| {
                host(p).map(|reach| Slot {
                    listen_port: p,
                    reach,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let api_client = |timeout| {
            Toxiproxy::with_timeout(&format!("http://{api}"), timeout)
                .map_err(|e| docker(format!("API address of {}", settings.name))(e.to_string()))
        };
        let client = api_client(Duration::from_secs(5))?;
        let me = ToxiproxyContainer {
            container: Some(container),
            network,
            network_name,
            name: settings.name.clone(),
            client,
            slots,
        };
        me.wait_ready(api).await?;
        // Calls during the run may wait on a stalled link (see
        // toxiproxy::DEFAULT_TIMEOUT); only readiness polls are short.
        let client = api_client(super::toxiproxy::DEFAULT_TIMEOUT)?;
        Ok(ToxiproxyContainer { client, ..me })
    }

    /// Poll `GET /version` until it answers; a port mapped by Docker accepts
    /// connections before the server inside listens, so a TCP connect proves
    /// nothing.
    async fn wait_ready(&self, api: SocketAddr) -> Result<(), ContainerError> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < STARTUP_TIMEOUT {
            match self.client.version().await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ContainerError::NotReady {
            name: self.name.clone(),
            api: api.to_string(),
            waited: STARTUP_TIMEOUT,
            message: last,
        })
    }

    /// The client of the container's API.
    pub fn client(&self) -> &Toxiproxy {
        &self.client
    }

    /// The container's name (a DNS name on its network).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Docker network the container is on.
    pub fn network(&self) -> &str {
        &self.network_name
    }

    /// Where proxies listen and devices reach them; `upstream` is the broker
    /// as seen from the container's network.
    pub fn placement(&self, upstream: String) -> Placement {
        Placement::published(self.slots.clone()).with_upstream(Some(upstream))
    }

    /// Remove the container, then the network if this module created it.
    pub async fn shutdown(mut self) -> Result<(), ContainerError> {
        let result = match self.container.take() {
            Some(c) => c.rm().await.map_err(|e| ContainerError::Docker {
                what: format!("remove {}", self.name),
                message: e.to_string(),
            }),
            None => Ok(()),
        };
        if let Some(net) = self.network.take() {
            let r = net.remove().await;
            result?;
            return r;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(
            split_image("ghcr.io/shopify/toxiproxy:2.12.0").unwrap(),
            ("ghcr.io/shopify/toxiproxy", "2.12.0")
        );
        assert_eq!(
            split_image("localhost:5000/toxiproxy:2").unwrap(),
            ("localhost:5000/toxiproxy", "2")
        );
        assert!(split_image("localhost:5000/toxiproxy").is_err());
        assert!(split_image("toxiproxy:").is_err());
        assert!(split_image(":1").is_err());
    }

    #[test]
    fn there_are_32_proxy_ports_outside_the_ephemeral_range() {
        assert_eq!(PROXY_PORTS.count(), 32);
        assert!(*PROXY_PORTS.end() < 32768);
        assert!(!PROXY_PORTS.contains(&API_PORT));
    }
}

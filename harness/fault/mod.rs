//! Network faults: the backends that put a fault proxy between devices and
//! broker, in Toxiproxy's vocabulary.
//!
//! * [`toxic`]: the typed Toxiproxy vocabulary (toxic types, attributes,
//!   streams, toxicity) shared by every backend.
//! * [`engine`]: the embedded fault engine, a tokio relay with a toxic
//!   pipeline per direction; the zero-setup default.
//! * [`toxiproxy`]: a real Toxiproxy 2.x over its HTTP API.
//! * [`container`]: a Toxiproxy started in a container for one run
//!   (testcontainers), with its proxy ports published up front.
//! * [`placement`]: where proxies listen, where devices reach them and where
//!   they forward to, for a backend on the host or in a container (pure).
//!
//! The runner talks to either through [`LinkFaults`]; one proxy per device
//! group, so a fault can hit a subset of the fleet.

pub mod container;
pub mod engine;
pub mod placement;
pub mod toxic;
pub mod toxiproxy;

use std::net::SocketAddr;

use async_trait::async_trait;

pub use placement::Placement;
pub use toxic::{Stream, Toxic, ToxicKind};

/// A failure of the fault backend itself (never of the system under test).
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The backend answered with an error: `endpoint` names the call
    /// (e.g. `POST http://127.0.0.1:8474/proxies/group-a/toxics`).
    #[error("fault backend {endpoint} answered {status}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// The backend could not be reached.
    #[error("fault backend {endpoint} unreachable: {message}")]
    Unreachable { endpoint: String, message: String },
    /// `at`: the call and the backend's answer, for a backend over HTTP.
    #[error("no proxy named {proxy}{}", answered(.at))]
    NoSuchProxy { proxy: String, at: Option<Refusal> },
    #[error("proxy {proxy} already exists{}", answered(.at))]
    ProxyExists { proxy: String, at: Option<Refusal> },
    #[error("no toxic named {toxic} on proxy {proxy}{}", answered(.at))]
    NoSuchToxic {
        proxy: String,
        toxic: String,
        at: Option<Refusal>,
    },
    #[error("toxic {toxic} already exists on proxy {proxy}{}", answered(.at))]
    ToxicExists {
        proxy: String,
        toxic: String,
        at: Option<Refusal>,
    },
    #[error("invalid toxic: {0}")]
    InvalidToxic(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    /// The backend has no such capability (e.g. `half_open` on Toxiproxy).
    #[error("{backend} does not support {what}")]
    Unsupported { backend: String, what: String },
}

/// A backend's "no" over its API: the call (`METHOD URL`), the status and
/// the backend's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub endpoint: String,
    pub status: u16,
    pub message: String,
}

/// ` (fault backend … answered …: …)` after a typed error, when it came
/// from an API.
fn answered(at: &Option<Refusal>) -> String {
    match at {
        Some(r) => format!(
            " (fault backend {} answered {}: {})",
            r.endpoint, r.status, r.message
        ),
        None => String::new(),
    }
}

impl FaultError {
    /// No proxy `name` (in-process: no call to name).
    pub fn no_such_proxy(name: &str) -> FaultError {
        FaultError::NoSuchProxy {
            proxy: name.to_owned(),
            at: None,
        }
    }

    /// No toxic `toxic` on `proxy` (in-process).
    pub fn no_such_toxic(proxy: &str, toxic: &str) -> FaultError {
        FaultError::NoSuchToxic {
            proxy: proxy.to_owned(),
            toxic: toxic.to_owned(),
            at: None,
        }
    }
}

/// What a proxy looks like to its users.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyInfo {
    pub name: String,
    /// The address devices connect to.
    pub listen: SocketAddr,
    /// `host:port` of the broker, as the backend reaches it.
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<Toxic>,
}

/// Bytes one proxy relayed in one direction, for every connection that
/// started with these addresses: Toxiproxy's
/// `toxiproxy_proxy_received_bytes_total` (read from the source) and
/// `toxiproxy_proxy_sent_bytes_total` (written to the destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyBytes {
    pub proxy: String,
    pub direction: Stream,
    /// The proxy's listen address when the connections started.
    pub listener: String,
    /// Its upstream then.
    pub upstream: String,
    /// `None` until something was counted.
    pub received: Option<u64>,
    pub sent: Option<u64>,
}

/// A backend that can put faults between devices and broker.
///
/// Each call returns once the backend has *confirmed* the change, so the
/// caller stamps fault start and end at that moment.
#[async_trait]
pub trait LinkFaults: Send + Sync {
    /// A short description with the backend's version, for the report.
    async fn version(&self) -> Result<String, FaultError>;
    /// Create a proxy. `listen` may have port 0; the returned info carries
    /// the address actually bound.
    async fn create_proxy(
        &self,
        name: &str,
        listen: SocketAddr,
        upstream: &str,
    ) -> Result<ProxyInfo, FaultError>;
    async fn delete_proxy(&self, name: &str) -> Result<(), FaultError>;
    async fn proxy(&self, name: &str) -> Result<ProxyInfo, FaultError>;
    /// Disable: close every open connection (FIN to both sides) and refuse new
    /// ones. Enable: listen again on the same address.
    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), FaultError>;
    /// Add a toxic; it applies at once to every open connection, on exactly
    /// its stream, and to every later one.
    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultError>;
    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError>;
    /// Remove all toxics and enable all proxies (Toxiproxy `POST /reset`).
    async fn reset(&self) -> Result<(), FaultError>;
    /// The `half_open` mode of this harness (not Toxiproxy's): every byte in
    /// both directions is dropped and a close from the broker is *not* passed
    /// on to the client, so only the client's own keepalive can notice.
    /// Turning it off closes the client side of connections whose broker side
    /// was closed meanwhile.
    async fn set_half_open(&self, proxy: &str, on: bool) -> Result<(), FaultError> {
        let _ = (proxy, on);
        Err(FaultError::Unsupported {
            backend: "this fault backend".into(),
            what: "the half_open mode".into(),
        })
    }
    /// Wait, at most `deadline`, until `proxy` holds no connection: what
    /// its clients sent before they closed (a DISCONNECT) has been relayed
    /// and both sides are closed. Returns whether it is idle. A backend that
    /// cannot tell (Toxiproxy counts no connections without its metrics)
    /// gives its relays a short grace instead.
    async fn wait_idle(
        &self,
        proxy: &str,
        deadline: std::time::Duration,
    ) -> Result<bool, FaultError> {
        let _ = proxy;
        tokio::time::sleep(deadline.min(std::time::Duration::from_millis(500))).await;
        Ok(false)
    }

    /// The `cut` mode of this harness (a cable cut; not Toxiproxy's): as
    /// `half_open`, and the client's own close is not passed on to the
    /// broker either, so only keepalives on each side can notice. Turning
    /// it off closes the other side of connections one side of which was
    /// closed meanwhile (what a repaired cable does to a stale connection).
    async fn set_cut(&self, proxy: &str, on: bool) -> Result<(), FaultError> {
        let _ = (proxy, on);
        Err(FaultError::Unsupported {
            backend: "this fault backend".into(),
            what: "the cut mode".into(),
        })
    }
}

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
    #[error("no proxy named {0}")]
    NoSuchProxy(String),
    #[error("proxy {0} already exists")]
    ProxyExists(String),
    #[error("no toxic named {toxic} on proxy {proxy}")]
    NoSuchToxic { proxy: String, toxic: String },
    #[error("toxic {toxic} already exists on proxy {proxy}")]
    ToxicExists { proxy: String, toxic: String },
    #[error("invalid toxic: {0}")]
    InvalidToxic(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    /// The backend has no such capability (e.g. `half_open` on Toxiproxy).
    #[error("{backend} does not support {what}")]
    Unsupported { backend: String, what: String },
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
}

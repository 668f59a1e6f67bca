//! Brokers under test and their lifecycle faults.
//!
//! * [`embedded`]: rumqttd, run as a child process of this same binary
//!   (`mqtt-chaos broker-serve`), so it can be stopped, killed and paused for
//!   real; the zero-setup default.
//! * [`mosquitto`]: a local Mosquitto process the harness configures, starts
//!   and controls.
//! * [`external`]: a broker somebody else runs (`tcp://HOST:PORT`); nothing
//!   is started and lifecycle faults are refused up front.
//! * [`container`]: EMQX or Mosquitto in a Docker container the harness
//!   creates (testcontainers), or a container somebody else runs; lifecycle
//!   faults and the network partition through the Docker API.
//! * [`process`]: the child-process control the two local backends share
//!   (fixed port, readiness, signals, cleanup).
//! * [`probe`]: a raw MQTT 3.1.1 CONNECT/CONNACK and PINGREQ/PINGRESP, the
//!   readiness check of every backend.
//!
//! Every operation returns once the change is confirmed (the process is gone,
//! stopped, or accepting MQTT connections again), so fault times are stamped
//! on confirmation.

pub mod container;
pub mod embedded;
pub mod external;
pub mod mosquitto;
pub mod probe;
pub mod process;

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

/// A failure of the broker backend (the environment), not of the system
/// under test.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot start {what}: {message}")]
    Start { what: String, message: String },
    #[error("broker at {addr} not ready after {waited:?}: {message}")]
    NotReady {
        addr: String,
        waited: Duration,
        message: String,
    },
    #[error("broker {what} failed: {message}")]
    Control { what: String, message: String },
    #[error("{backend} cannot {operation}")]
    Unsupported { backend: String, operation: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a broker backend can do, checked before a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub restart: bool,
    pub kill: bool,
    pub pause: bool,
    /// Sessions and queued messages survive a restart or kill.
    pub persistence: bool,
    /// Accepts keepalive 0 (rumqttd refuses it).
    pub keepalive_zero: bool,
    /// Can be cut off its network (`broker_partition`).
    pub partition: bool,
    /// Speaks MQTT 5 on the address the devices reach.
    pub mqtt5: bool,
}

/// How the harness wants the broker set up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerSettings {
    /// Keep sessions and queued messages on disk across restarts and kills.
    pub persistence: bool,
}

/// One broker the harness talks to.
#[async_trait]
pub trait Broker: Send {
    /// `mosquitto 2.0.11`, `rumqttd 0.20.0`, `external`…
    fn version(&self) -> String;
    /// Where MQTT clients connect (loopback for the local backends).
    fn addr(&self) -> SocketAddr;
    fn capabilities(&self) -> Capabilities;
    /// Publishes EMQX 5 client events on `$SYS` that the observer may read.
    fn sys_client_events(&self) -> bool {
        false
    }
    /// A container on a Docker network the harness created: the network's
    /// name and the broker's address on it (where a Toxiproxy container on
    /// the same network reaches it).
    fn docker_network(&self) -> Option<(String, String)> {
        None
    }
    /// The broker ended by itself while it should run (a process that
    /// exited, a container that stopped): what happened, reported once.
    /// `None` while it runs, and while the harness itself stopped it.
    fn exited(&mut self) -> Option<String> {
        None
    }
    /// Start and wait until it accepts MQTT connections.
    async fn start(&mut self) -> Result<(), BrokerError>;
    /// Graceful stop (SIGTERM), wait for exit.
    async fn stop(&mut self) -> Result<(), BrokerError>;
    /// SIGKILL, wait for exit.
    async fn kill(&mut self) -> Result<(), BrokerError>;
    /// Freeze (SIGSTOP): connections stay open, nothing is answered.
    async fn pause(&mut self) -> Result<(), BrokerError>;
    /// Thaw (SIGCONT).
    async fn resume(&mut self) -> Result<(), BrokerError>;
    /// Cut the broker off the network (`docker network disconnect`).
    async fn partition(&mut self) -> Result<(), BrokerError> {
        Err(BrokerError::Unsupported {
            backend: self.version(),
            operation: "partition".into(),
        })
    }
    /// Undo [`Broker::partition`]; nothing to do when it is not cut off.
    async fn heal_partition(&mut self) -> Result<(), BrokerError> {
        Ok(())
    }
    /// Stop everything and remove what was created; safe to call twice.
    async fn shutdown(&mut self) -> Result<(), BrokerError>;
}

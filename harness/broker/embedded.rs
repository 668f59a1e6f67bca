//! The embedded broker: rumqttd in a child process of this binary.
use std::net::SocketAddr;

use super::BrokerError;

/// Run rumqttd on `listen` in this process until killed
/// (the hidden `mqtt-chaos broker-serve` subcommand).
pub fn serve(listen: SocketAddr) -> Result<(), BrokerError> {
    let _ = listen;
    Err(BrokerError::Unsupported {
        backend: "embedded".into(),
        operation: "serve (not built yet)".into(),
    })
}

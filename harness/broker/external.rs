//! A broker somebody else runs (`tcp://HOST:PORT` or `mqtt://HOST:PORT`).
//!
//! Nothing is started: `start` only checks that the broker answers an MQTT
//! CONNECT within the connect timeout. Lifecycle faults are refused, and the
//! only capability claimed is one `start` has seen for itself (keepalive 0).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::probe::{self, ConnectOptions, ProbeError};
use super::{Broker, BrokerError, Capabilities};

/// The MQTT port when the spec names none.
pub const DEFAULT_PORT: u16 = 1883;
/// How long `start` waits for a CONNACK unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A broker the harness only connects to.
#[derive(Debug, Clone)]
pub struct ExternalBroker {
    /// As the user wrote it, for messages.
    spec: String,
    addr: SocketAddr,
    connect_timeout: Duration,
    /// Seen by `start`: `Some(true)` once a keepalive-0 CONNECT was accepted.
    keepalive_zero: Option<bool>,
}

/// `tcp://HOST[:PORT]` / `mqtt://HOST[:PORT]` → host and port (pure; IPv6
/// hosts in brackets: `tcp://[::1]:1883`).
pub fn parse_spec(spec: &str) -> Result<(String, u16), String> {
    let rest = spec
        .strip_prefix("tcp://")
        .or_else(|| spec.strip_prefix("mqtt://"))
        .ok_or_else(|| "expected tcp://HOST:PORT or mqtt://HOST:PORT".to_string())?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| "an IPv6 host needs its closing `]`".to_string())?;
        let port = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {t:?} after the host"))?,
            ),
        };
        (host, port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.contains(['/', '@', '?', '#']) {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{p:?} is not a port (1-65535)")),
            Ok(n) => n,
        },
    };
    Ok((host.to_string(), port))
}

impl ExternalBroker {
    /// An external broker at `addr`; `start` waits at most `connect_timeout`.
    pub fn new(addr: SocketAddr, connect_timeout: Duration) -> ExternalBroker {
        ExternalBroker {
            spec: format!("tcp://{addr}"),
            addr,
            connect_timeout,
            keepalive_zero: None,
        }
    }

    /// Parse `tcp://HOST:PORT` or `mqtt://HOST:PORT` (port 1883 by default)
    /// and resolve the host; the connect timeout is
    /// [`DEFAULT_CONNECT_TIMEOUT`] until [`Self::with_connect_timeout`].
    pub fn parse(spec: &str) -> Result<ExternalBroker, BrokerError> {
        let bad = |message: String| BrokerError::Start {
            what: format!("external broker {spec:?}"),
            message,
        };
        let (host, port) = parse_spec(spec).map_err(bad)?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| bad(format!("{host} resolves to no address")))?;
        Ok(ExternalBroker {
            spec: spec.to_string(),
            addr,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keepalive_zero: None,
        })
    }

    pub fn with_connect_timeout(mut self, d: Duration) -> ExternalBroker {
        self.connect_timeout = d;
        self
    }

    fn unsupported(&self, operation: &str) -> BrokerError {
        BrokerError::Unsupported {
            backend: format!("external broker {}", self.spec),
            operation: operation.into(),
        }
    }

    fn where_(&self) -> String {
        if self.spec == format!("tcp://{}", self.addr) {
            self.spec.clone()
        } else {
            format!("{} ({})", self.spec, self.addr)
        }
    }
}

#[async_trait]
impl Broker for ExternalBroker {
    fn version(&self) -> String {
        "external".into()
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            restart: false,
            kill: false,
            pause: false,
            persistence: false,
            keepalive_zero: self.keepalive_zero == Some(true),
            partition: false,
            // Not probed: a broker that refuses MQTT 5 refuses the
            // devices' CONNECT, which the run reports as connect failures.
            mqtt5: true,
        }
    }

    /// Check the broker answers CONNECT with CONNACK 0 within the connect
    /// timeout; then, within what is left of it, whether it accepts
    /// keepalive 0.
    async fn start(&mut self) -> Result<(), BrokerError> {
        let began = Instant::now();
        let deadline = began + self.connect_timeout;
        if let Err(e) = probe::check(self.addr, self.connect_timeout).await {
            return Err(BrokerError::NotReady {
                addr: self.where_(),
                waited: began.elapsed(),
                message: e.to_string(),
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let options = ConnectOptions {
            keepalive_secs: 0,
            ..ConnectOptions::probe()
        };
        self.keepalive_zero = match probe::connect(self.addr, &options, left).await {
            Ok(conn) => {
                probe::disconnect(conn).await;
                Some(true)
            }
            Err(ProbeError::Refused { .. } | ProbeError::Closed { .. }) => Some(false),
            Err(_) => None,
        };
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), BrokerError> {
        Err(self.unsupported("stop"))
    }

    async fn kill(&mut self) -> Result<(), BrokerError> {
        Err(self.unsupported("kill"))
    }

    async fn pause(&mut self) -> Result<(), BrokerError> {
        Err(self.unsupported("pause"))
    }

    async fn resume(&mut self) -> Result<(), BrokerError> {
        Err(self.unsupported("resume"))
    }

    /// Nothing was created, so nothing to remove.
    async fn shutdown(&mut self) -> Result<(), BrokerError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_host_and_a_port_that_defaults_to_1883() {
        assert_eq!(
            parse_spec("tcp://127.0.0.1:1884"),
            Ok(("127.0.0.1".into(), 1884))
        );
        assert_eq!(
            parse_spec("mqtt://localhost"),
            Ok(("localhost".into(), 1883))
        );
        assert_eq!(
            parse_spec("mqtt://localhost/"),
            Ok(("localhost".into(), 1883))
        );
        assert_eq!(parse_spec("tcp://[::1]:1885"), Ok(("::1".into(), 1885)));
        assert_eq!(parse_spec("tcp://[::1]"), Ok(("::1".into(), 1883)));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        assert!(parse_spec("ssl://h:8883").unwrap_err().contains("tcp://"));
        assert!(parse_spec("127.0.0.1:1883").is_err());
        assert!(parse_spec("tcp://:1883").unwrap_err().contains("no host"));
        assert!(parse_spec("tcp://h:0").unwrap_err().contains("port"));
        assert!(parse_spec("tcp://h:99999").unwrap_err().contains("port"));
        assert!(parse_spec("tcp://h:x").unwrap_err().contains("port"));
        assert!(parse_spec("tcp://[::1:1883").unwrap_err().contains("]"));
        assert!(parse_spec("tcp://u@h:1883").is_err());
    }

    #[test]
    fn a_parse_error_names_the_spec() {
        let e = ExternalBroker::parse("ssl://h:8883")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl://h:8883"), "{e}");
    }

    #[tokio::test]
    async fn lifecycle_faults_are_refused_and_nothing_is_claimed() {
        let mut b = ExternalBroker::parse("tcp://127.0.0.1:1883").unwrap();
        assert_eq!(b.addr(), "127.0.0.1:1883".parse().unwrap());
        let caps = b.capabilities();
        assert!(!caps.restart && !caps.kill && !caps.pause && !caps.persistence);
        assert!(!caps.keepalive_zero);
        for r in [
            b.stop().await,
            b.kill().await,
            b.pause().await,
            b.resume().await,
        ] {
            assert!(matches!(r, Err(BrokerError::Unsupported { .. })), "{r:?}");
        }
        b.shutdown().await.unwrap();
    }
}

//! A raw MQTT 3.1.1 probe: just enough of the protocol to ask a broker
//! "do you accept MQTT connections?" without trusting a client library.
//!
//! The packet bytes are built and parsed by pure functions; only
//! [`connect`], [`ping`] and [`disconnect`] touch a socket. Readiness checks
//! of every backend use this, and so do the tests that check a paused broker
//! really stops answering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at};

/// Why a probe did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("TCP connect to {addr} failed: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} did not answer {what} within {waited:?}")]
    Timeout {
        addr: SocketAddr,
        what: &'static str,
        waited: Duration,
    },
    #[error("{addr} closed the connection while we waited for {what}")]
    Closed {
        addr: SocketAddr,
        what: &'static str,
    },
    #[error("{addr} answered {what} with unexpected bytes {bytes:02x?}")]
    BadReply {
        addr: SocketAddr,
        what: &'static str,
        bytes: Vec<u8>,
    },
    #[error("{addr} refused the MQTT connection with CONNACK return code {code}")]
    Refused { addr: SocketAddr, code: u8 },
    #[error("I/O with {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The fixed bytes of a CONNACK, PINGREQ, PINGRESP and DISCONNECT.
const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: [u8; 2] = [0xD0, 0x00];
const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// A client id no other probe in this process (or, by the pid, in another
/// process) uses at the same time; at most 23 characters so even strict
/// MQTT 3.1.1 brokers accept it.
pub fn unique_client_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("mcprobe-{:x}-{:x}", std::process::id(), n)
}

/// The bytes of an MQTT 3.1.1 CONNECT with no will, user or password.
pub fn connect_packet(client_id: &str, clean_session: bool, keepalive_secs: u16) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id_len = u16::try_from(id.len()).expect("client id longer than 65535 bytes");
    let mut body = Vec::with_capacity(12 + id.len());
    body.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04]);
    body.push(if clean_session { 0x02 } else { 0x00 });
    body.extend_from_slice(&keepalive_secs.to_be_bytes());
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(id);
    let mut packet = vec![0x10];
    encode_remaining_length(body.len(), &mut packet);
    packet.extend_from_slice(&body);
    packet
}

fn encode_remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// What a 4-byte CONNACK says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: u8,
}

/// Parse the 4 bytes of an MQTT 3.1.1 CONNACK; `None` if they are not one.
pub fn parse_connack(bytes: [u8; 4]) -> Option<ConnAck> {
    if bytes[0] != 0x20 || bytes[1] != 0x02 || bytes[2] & 0xFE != 0 {
        return None;
    }
    Some(ConnAck {
        session_present: bytes[2] & 0x01 == 1,
        code: bytes[3],
    })
}

/// How a probe connects.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub client_id: String,
    pub clean_session: bool,
    pub keepalive_secs: u16,
}

impl ConnectOptions {
    /// A clean session with a fresh unique id and a 10 s keepalive (rumqttd
    /// refuses keepalive 0).
    pub fn probe() -> ConnectOptions {
        ConnectOptions {
            client_id: unique_client_id(),
            clean_session: true,
            keepalive_secs: 10,
        }
    }
}

/// An MQTT connection the probe opened and the broker accepted.
#[derive(Debug)]
pub struct ProbeConnection {
    pub addr: SocketAddr,
    pub stream: TcpStream,
    pub connack: ConnAck,
}

/// TCP connect, send CONNECT, wait for a CONNACK with return code 0; the
/// whole exchange bounded by `within`. A refusal (return code ≠ 0) is
/// [`ProbeError::Refused`].
pub async fn connect(
    addr: SocketAddr,
    options: &ConnectOptions,
    within: Duration,
) -> Result<ProbeConnection, ProbeError> {
    // One deadline for the whole exchange, so a caller's bound is the bound.
    let deadline = tokio::time::Instant::now() + within;
    let mut stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(ProbeError::Timeout {
                addr,
                what: "TCP connect",
                waited: within,
            })
        }
        Ok(Err(source)) => return Err(ProbeError::Connect { addr, source }),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let packet = connect_packet(
        &options.client_id,
        options.clean_session,
        options.keepalive_secs,
    );
    let exchange = async {
        stream
            .write_all(&packet)
            .await
            .map_err(|source| ProbeError::Io { addr, source })?;
        let mut reply = [0u8; 4];
        read_exact(&mut stream, &mut reply, addr, "CONNECT").await?;
        Ok::<_, ProbeError>(reply)
    };
    let reply = match timeout_at(deadline, exchange).await {
        Err(_) => {
            return Err(ProbeError::Timeout {
                addr,
                what: "CONNECT",
                waited: within,
            })
        }
        Ok(r) => r?,
    };
    let connack = parse_connack(reply).ok_or(ProbeError::BadReply {
        addr,
        what: "CONNECT",
        bytes: reply.to_vec(),
    })?;
    if connack.code != 0 {
        return Err(ProbeError::Refused {
            addr,
            code: connack.code,
        });
    }
    Ok(ProbeConnection {
        addr,
        stream,
        connack,
    })
}

/// Send PINGREQ and wait (bounded) for PINGRESP.
pub async fn ping(conn: &mut ProbeConnection, within: Duration) -> Result<(), ProbeError> {
    let addr = conn.addr;
    let exchange = async {
        conn.stream
            .write_all(&PINGREQ)
            .await
            .map_err(|source| ProbeError::Io { addr, source })?;
        let mut reply = [0u8; 2];
        read_exact(&mut conn.stream, &mut reply, addr, "PINGREQ").await?;
        Ok::<_, ProbeError>(reply)
    };
    let reply = match timeout(within, exchange).await {
        Err(_) => {
            return Err(ProbeError::Timeout {
                addr,
                what: "PINGREQ",
                waited: within,
            })
        }
        Ok(r) => r?,
    };
    if reply != PINGRESP {
        return Err(ProbeError::BadReply {
            addr,
            what: "PINGREQ",
            bytes: reply.to_vec(),
        });
    }
    Ok(())
}

/// Send DISCONNECT and close; errors are ignored (the broker may be gone).
pub async fn disconnect(mut conn: ProbeConnection) {
    let _ = conn.stream.write_all(&DISCONNECT).await;
    let _ = conn.stream.shutdown().await;
}

/// Connect with a fresh clean session and disconnect at once: "the broker
/// accepts MQTT at `addr`".
pub async fn check(addr: SocketAddr, within: Duration) -> Result<ConnAck, ProbeError> {
    let conn = connect(addr, &ConnectOptions::probe(), within).await?;
    let connack = conn.connack;
    disconnect(conn).await;
    Ok(connack)
}

async fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    addr: SocketAddr,
    what: &'static str,
) -> Result<(), ProbeError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ProbeError::Closed { addr, what })
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Err(ProbeError::Closed { addr, what })
        }
        Err(source) => Err(ProbeError::Io { addr, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_packet_is_mqtt_3_1_1_with_the_given_flags() {
        let p = connect_packet("ab", true, 10);
        assert_eq!(
            p,
            vec![
                0x10, 14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 10, 0x00, 0x02,
                b'a', b'b'
            ]
        );
        let p = connect_packet("ab", false, 0);
        assert_eq!(p[9], 0x00);
        assert_eq!(&p[10..12], &[0, 0]);
    }

    #[test]
    fn a_long_client_id_gets_a_two_byte_remaining_length() {
        let id = "x".repeat(200);
        let p = connect_packet(&id, true, 10);
        // 12 bytes of header and id length + 200 = 212 = 0xD4 0x01.
        assert_eq!(&p[1..3], &[0xD4, 0x01]);
        assert_eq!(p.len(), 3 + 212);
    }

    #[test]
    fn connack_bytes_parse_into_session_present_and_code() {
        assert_eq!(
            parse_connack([0x20, 0x02, 0x01, 0x00]),
            Some(ConnAck {
                session_present: true,
                code: 0
            })
        );
        assert_eq!(
            parse_connack([0x20, 0x02, 0x00, 0x05]),
            Some(ConnAck {
                session_present: false,
                code: 5
            })
        );
        assert_eq!(parse_connack([0x10, 0x02, 0x00, 0x00]), None);
        assert_eq!(parse_connack([0x20, 0x03, 0x00, 0x00]), None);
        assert_eq!(parse_connack([0x20, 0x02, 0x02, 0x00]), None);
    }

    #[test]
    fn probe_client_ids_are_unique_and_short() {
        let a = unique_client_id();
        let b = unique_client_id();
        assert_ne!(a, b);
        assert!(a.len() <= 23, "{a}");
    }
}

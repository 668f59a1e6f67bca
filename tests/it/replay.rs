//! Integration test: every one of the 111 exchanges recorded from a real
//! Toxiproxy 2.12 (`tests/fixtures/toxiproxy-2.12-api-transcript.json`),
//! replayed in order over HTTP against the `mqtt-chaos proxy-server`
//! process, comparing status, content type and body.
//!
//! The recording used two servers: exchanges 0–106 went to a Toxiproxy
//! started without metrics, 107–110 (`[server2 …]`) to a second one started
//! with `-proxy-metrics`. So do we: two processes, the second with
//! `--proxy-metrics`.
//!
//! What depends on the machine the recording was made on is mapped, each
//! the same way in requests and in expected answers:
//!
//! * **listen ports**: every `127.0.0.1:260xx` the recording used is a port
//!   of this machine that was free when the test started (the clash of
//!   exchange 9 and the move of exchange 22 still happen, on those ports);
//! * **the broker**: the recording's `127.0.0.1:1883` is an embedded broker
//!   (rumqttd) this test starts on a free port. Only exchange 109 sends
//!   traffic to it; elsewhere the upstream is just a string;
//! * **the version**: `GET /version` names the build that answers, so the
//!   recorded `2.12.0-69-gf48fd7f` is this engine's version string (the
//!   body is otherwise compared byte for byte);
//! * **the traffic before exchange 109**: the recording ran one
//!   `mosquitto_pub` (QoS 1, 5-byte payload) through proxy `m1`. This test
//!   sends the same MQTT 3.1.1 packets through `m1` (see [`mosquitto_pub`]),
//!   so the byte counters must come out at the recorded 62 and 8.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mqtt_chaos::broker::embedded::EmbeddedBroker;
use mqtt_chaos::broker::{Broker, BrokerSettings};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

/// Upper bound on any single wait (a process starting, an answer).
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Exchange {
    step: String,
    method: String,
    path: String,
    request_headers: BTreeMap<String, String>,
    request_body: Option<String>,
    status: u16,
    response_body: String,
    response_content_type: Option<String>,
}

/// `mqtt-chaos proxy-server` on a port of its choosing, killed on drop.
struct ProxyServer {
    child: Child,
    base: String,
}

impl ProxyServer {
    /// Start it and wait for the `listening on ADDR` line it prints once
    /// the API accepts connections.
    fn start(extra: &[&str]) -> ProxyServer {
        let mut child = Command::new(support::bin())
            .args(["proxy-server", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("proxy-server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = ProxyServer {
            child,
            base: String::new(),
        };
        let line = match rx.recv_timeout(WAIT) {
            Ok(Some(Ok(line))) => line,
            other => panic!("proxy-server printed no address within {WAIT:?}: {other:?}"),
        };
        let addr: SocketAddr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("proxy-server printed {line:?}"));
        server.base = format!("http://{addr}");
        server
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The recording's addresses and version, and what they are here.
struct Mapping {
    /// `127.0.0.1:PORT` of the recording → of this machine.
    ports: BTreeMap<u16, u16>,
    version: (String, String),
}

impl Mapping {
    fn new(transcript: &[Exchange], broker: SocketAddr) -> Mapping {
        let mut ports = BTreeMap::new();
        for e in transcript {
            for text in [e.request_body.as_deref().unwrap_or(""), &e.response_body] {
                for port in loopback_ports(text) {
                    if (26000..27000).contains(&port) {
                        ports.entry(port).or_insert_with(crate::support::free_port);
                    }
                }
            }
        }
        assert_eq!(broker.ip().to_string(), "127.0.0.1");
        ports.insert(1883, broker.port());
        Mapping {
            ports,
            version: (
                "2.12.0-69-gf48fd7f".into(),
                format!(
                    "mqtt-chaos embedded fault engine {}",
                    env!("CARGO_PKG_VERSION")
                ),
            ),
        }
    }

    /// `text` with every mapped `127.0.0.1:PORT` replaced, in one pass (so
    /// a replacement is never mapped again), and the version.
    fn apply(&self, text: &str) -> String {
        const HOST: &str = "127.0.0.1:";
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(HOST) {
            let after = &rest[i + HOST.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            out.push_str(&rest[..i + HOST.len()]);
            let port: Option<u16> = after[..digits].parse().ok();
            match port.and_then(|p| self.ports.get(&p)) {
                Some(to) => out.push_str(&to.to_string()),
                None => out.push_str(&after[..digits]),
            }
            rest = &after[digits..];
        }
        out.push_str(rest);
        out.replace(&self.version.0, &self.version.1)
    }
}

/// Every port written as `127.0.0.1:PORT` in `text`.
fn loopback_ports(text: &str) -> Vec<u16> {
    text.match_indices("127.0.0.1:")
        .filter_map(|(i, m)| {
            let after = &text[i + m.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            after[..digits].parse().ok()
        })
        .collect()
}

/// What `mosquitto_pub -q 1` sends for a 5-byte message, as MQTT 3.1.1
/// packets, through `proxy` to the broker behind it: CONNECT, (CONNACK),
/// PUBLISH QoS 1, (PUBACK), DISCONNECT, close. Its client id has 23 bytes
/// (`mosq-` and 18 random characters); the recorded 62 bytes upstream then
/// leave 12 for the topic. The broker answers 4 + 4 bytes.
async fn mosquitto_pub(proxy: SocketAddr) -> (usize, usize) {
    let client_id = b"mosq-Rplay0123456789abc";
    let topic = b"metrics/demo";
    assert_eq!((client_id.len(), topic.len()), (23, 12));
    let mut connect = vec![
        0x10, 35, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 23,
    ];
    connect.extend_from_slice(client_id);
    let mut publish = vec![0x32, 21, 0, 12];
    publish.extend_from_slice(topic);
    publish.extend_from_slice(&[0, 1]);
    publish.extend_from_slice(b"hello");
    let disconnect = [0xE0, 0];

    let mut s = TcpStream::connect(proxy).await.expect("m1 accepts");
    let mut answer = [0u8; 4];
    let mut read = 0;
    s.write_all(&connect).await.unwrap();
    tokio::time::timeout(WAIT, s.read_exact(&mut answer))
        .await
        .expect("CONNACK in time")
        .expect("CONNACK");
    assert_eq!(answer, [0x20, 2, 0, 0], "CONNACK, accepted");
    read += answer.len();
    s.write_all(&publish).await.unwrap();
    tokio::time::timeout(WAIT, s.read_exact(&mut answer))
        .await
        .expect("PUBACK in time")
        .expect("PUBACK");
    assert_eq!(answer, [0x40, 2, 0, 1], "PUBACK of packet 1");
    read += answer.len();
    s.write_all(&disconnect).await.unwrap();
    s.shutdown().await.unwrap();
    // The proxy closes our side once both directions are done: every byte
    // has been relayed (and counted) by then.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("the proxy closes the connection in time")
        .expect("a clean close");
    assert!(rest.is_empty(), "nothing after PUBACK: {rest:?}");
    (connect.len() + publish.len() + disconnect.len(), read)
}

/// Send one recorded request (mapped) and compare the answer with the
/// recorded one (mapped).
async fn replay_one(http: &reqwest::Client, base: &str, e: &Exchange, map: &Mapping) {
    let name = &e.step;
    let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{base}{}", e.path));
    for (k, v) in &e.request_headers {
        req = req.header(k, v);
    }
    if let Some(body) = &e.request_body {
        req = req.body(map.apply(body));
    }
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer within {WAIT:?}"))
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.text().await.unwrap();

    assert_eq!(status, e.status, "{name}: status; body {body:?}");
    assert_eq!(
        ctype.as_deref(),
        e.response_content_type.as_deref(),
        "{name}: content type"
    );
    let want = map.apply(&e.response_body);
    match serde_json::from_str::<Value>(&want) {
        Ok(want_v) => {
            let got_v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|err| panic!("{name}: not JSON ({err}): {body:?}"));
            assert_eq!(got_v, want_v, "{name}: body");
            // Go's http.Error ends its body with a newline, json.Marshal not.
            assert_eq!(
                body.ends_with('\n'),
                want.ends_with('\n'),
                "{name}: newline"
            );
        }
        Err(_) => assert_eq!(body, want, "{name}: body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_server_answers_all_111_recorded_exchanges_as_toxiproxy_did() {
    let transcript: Vec<Exchange> = serde_json::from_str(include_str!(
        "../fixtures/toxiproxy-2.12-api-transcript.json"
    ))
    .expect("the transcript parses");
    assert_eq!(transcript.len(), 111);

    let mut broker =
        EmbeddedBroker::new(BrokerSettings::default(), support::bin()).expect("embedded broker");
    broker.start().await.expect("the embedded broker starts");
    let map = Mapping::new(&transcript, broker.addr());

    let plain = ProxyServer::start(&[]);
    let with_metrics = ProxyServer::start(&["--proxy-metrics"]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut compared = 0;
    for e in &transcript {
        let server2 = e.step.starts_with("[server2 ");
        if server2 && e.step.contains("GET /metrics after one mosquitto_pub") {
            let m1 = map.ports[&26090];
            let (sent, received) = mosquitto_pub(([127, 0, 0, 1], m1).into()).await;
            assert_eq!((sent, received), (62, 8));
        }
        let base = if server2 {
            &with_metrics.base
        } else {
            &plain.base
        };
        replay_one(&http, base, e, &map).await;
        compared += 1;
    }
    eprintln!("compared {compared} recorded exchanges");
    assert_eq!(compared, 111);

    drop((plain, with_metrics));
    broker.shutdown().await.expect("the broker stops");
}

#[test]
fn the_mapping_replaces_each_address_once_and_the_version() {
    let map = Mapping {
        ports: BTreeMap::from([(26001, 26013), (26013, 40000), (1883, 41000)]),
        version: ("2.12.0".into(), "ours 1".into()),
    };
    assert_eq!(
        map.apply(r#"{"listen":"127.0.0.1:26001","upstream":"127.0.0.1:1883","x":"127.0.0.1:1884","v":"2.12.0"}"#),
        r#"{"listen":"127.0.0.1:26013","upstream":"127.0.0.1:41000","x":"127.0.0.1:1884","v":"ours 1"}"#
    );
    assert_eq!(
        loopback_ports("a 127.0.0.1:1 b 127.0.0.1:26090,"),
        [1, 26090]
    );
}

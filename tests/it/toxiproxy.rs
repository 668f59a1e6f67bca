//! Integration tests: the Toxiproxy HTTP backend against a replay of a real
//! Toxiproxy 2.12.
//!
//! `tests/fixtures/toxiproxy-2.12-api-transcript.json` holds 111 exchanges
//! recorded from a real server. A tiny HTTP/1.1 server on 127.0.0.1:0 serves
//! the recorded answers (status, body, content type, byte for byte); each
//! test checks that the client sent the recorded method and path, a body
//! Toxiproxy accepted (compared as JSON values), and that it turned the
//! answer into the right value or typed error.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mqtt_chaos::fault::toxiproxy::{ProxySpec, ProxyUpdate, Toxiproxy};
use mqtt_chaos::fault::{FaultError, LinkFaults, ProxyBytes, Refusal, Stream, Toxic, ToxicKind};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Upper bound on any wait for the replay server.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The recorded transcript
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Exchange {
    step: String,
    method: String,
    path: String,
    request_body: Option<String>,
    status: u16,
    response_body: String,
    response_content_type: Option<String>,
}

fn transcript() -> &'static [Exchange] {
    static T: OnceLock<Vec<Exchange>> = OnceLock::new();
    T.get_or_init(|| {
        let t: Vec<Exchange> = serde_json::from_str(include_str!(
            "../fixtures/toxiproxy-2.12-api-transcript.json"
        ))
        .expect("the transcript parses");
        assert_eq!(t.len(), 111, "the transcript has 111 exchanges");
        t
    })
}

/// Exchange `i`, checked to be the recorded call the test thinks it is.
fn ex(i: usize, method: &str, path: &str) -> &'static Exchange {
    let e = &transcript()[i];
    assert_eq!(
        (e.method.as_str(), e.path.as_str()),
        (method, path),
        "transcript step {i} is {:?}",
        e.step
    );
    e
}

fn recorded_request(e: &Exchange) -> Value {
    serde_json::from_str(e.request_body.as_deref().expect("a request body"))
        .expect("recorded request is JSON")
}

fn recorded_response(e: &Exchange) -> Value {
    serde_json::from_str(&e.response_body).expect("recorded response is JSON")
}

// ---------------------------------------------------------------------------
// The replay server
// ---------------------------------------------------------------------------

/// One answer the replay server gives.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    content_type: Option<String>,
}

impl From<&Exchange> for Answer {
    fn from(e: &Exchange) -> Answer {
        Answer {
            status: e.status,
            body: e.response_body.clone(),
            content_type: e.response_content_type.clone(),
        }
    }
}

/// A request as the replay server received it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        assert_eq!(
            self.headers.get("content-type").map(String::as_str),
            Some("application/json"),
            "{} {} sends JSON",
            self.method,
            self.path
        );
        serde_json::from_slice(&self.body).expect("the client sent JSON")
    }

    /// The request was the recorded exchange's method and path.
    fn assert_route(&self, e: &Exchange) {
        assert_eq!(
            (self.method.as_str(), self.path.as_str()),
            (e.method.as_str(), e.path.as_str()),
            "route of recorded step {:?}",
            e.step
        );
        let ua = self.headers.get("user-agent").map(String::as_str);
        assert!(
            ua.is_some_and(|ua| ua.starts_with("mqtt-chaos/")),
            "user agent {ua:?} (Toxiproxy refuses Mozilla/*)"
        );
    }
}

/// An HTTP/1.1 server on 127.0.0.1:0 that answers each request, in order,
/// with the next scripted answer, and reports every request it received.
struct Replay {
    base: String,
    requests: mpsc::UnboundedReceiver<Request>,
    _server: JoinSet<()>,
}

impl Replay {
    async fn serve(answers: impl IntoIterator<Item = Answer>) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answers = Arc::new(Mutex::new(answers.into_iter().collect::<VecDeque<_>>()));
        let (tx, requests) = mpsc::unbounded_channel();
        let mut server = JoinSet::new();
        server.spawn(async move {
            // Dropping this set (with the Replay) aborts every connection.
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve_conn(sock, answers.clone(), tx.clone()));
            }
        });
        Replay {
            base: format!("http://{addr}/"),
            requests,
            _server: server,
        }
    }

    async fn serve_steps(steps: &[usize]) -> Replay {
        Replay::serve(steps.iter().map(|&i| Answer::from(&transcript()[i]))).await
    }

    fn client(&self) -> Toxiproxy {
        Toxiproxy::with_timeout(self.base.trim_end_matches('/'), Duration::from_secs(5)).unwrap()
    }

    /// `METHOD base/path`, as an error's endpoint names it.
    fn endpoint(&self, method: &str, path: &str) -> String {
        format!("{method} {}{}", self.base, path.trim_start_matches('/'))
    }

    async fn request(&mut self) -> Request {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("the client sent a request in time")
            .expect("the replay server is running")
    }
}

async fn serve_conn(
    mut sock: TcpStream,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    tx: mpsc::UnboundedSender<Request>,
) {
    let mut buf = Vec::new();
    // One request per iteration; the client may keep the connection alive.
    for _ in 0..1000 {
        let Some(req) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let answer = answers.lock().unwrap().pop_front().unwrap_or(Answer {
            status: 599,
            body: "replay: no answer left".into(),
            content_type: None,
        });
        let _ = tx.send(req);
        let reason = reqwest::StatusCode::from_u16(answer.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Whatever");
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
        if let Some(ct) = &answer.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if answer.status != 204 {
            head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if answer.status != 204 {
            out.extend_from_slice(answer.body.as_bytes());
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Read one request (head and `Content-Length` body); `None` at EOF.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    const MAX: usize = 1 << 20;
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX || !read_more(sock, buf).await {
            return None;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("an ASCII request head");
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().expect("a numeric Content-Length"));
    while buf.len() < head_end + len {
        if buf.len() > MAX || !read_more(sock, buf).await {
            return None;
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn read_more(sock: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match sock.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers on Toxiproxy's JSON
// ---------------------------------------------------------------------------

/// A toxic create body as Toxiproxy reads it: name `<type>_<stream>`,
/// stream `downstream`, toxicity 1 and attributes 0 when absent (steps 59
/// and 60 of the transcript show the defaults Toxiproxy fills in).
fn with_toxic_defaults(mut v: Value) -> Value {
    let m = v.as_object_mut().expect("a toxic is an object");
    let attrs: &[&str] = match m["type"].as_str().unwrap() {
        "latency" => &["latency", "jitter"],
        "bandwidth" => &["rate"],
        "slow_close" => &["delay"],
        "timeout" | "reset_peer" => &["timeout"],
        "slicer" => &["average_size", "size_variation", "delay"],
        "limit_data" => &["bytes"],
        other => panic!("unknown toxic type {other}"),
    };
    let a = m
        .entry("attributes")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .expect("attributes are an object");
    for k in attrs {
        a.entry(*k).or_insert_with(|| 0.into());
    }
    m.entry("stream").or_insert_with(|| "downstream".into());
    m.entry("toxicity").or_insert_with(|| 1.into());
    let default_name = format!(
        "{}_{}",
        m["type"].as_str().unwrap(),
        m["stream"].as_str().unwrap()
    );
    m.entry("name").or_insert_with(|| default_name.into());
    v
}

/// A proxy create body as Toxiproxy reads it: `enabled` true when absent.
fn with_proxy_defaults(mut v: Value) -> Value {
    v.as_object_mut()
        .expect("a proxy is an object")
        .entry("enabled")
        .or_insert_with(|| true.into());
    v
}

fn kinds() -> [ToxicKind; 7] {
    [
        ToxicKind::Latency {
            latency: 1000,
            jitter: 100,
        },
        ToxicKind::Bandwidth { rate: 10 },
        ToxicKind::SlowClose { delay: 500 },
        ToxicKind::Timeout { timeout: 3000 },
        ToxicKind::ResetPeer { timeout: 0 },
        ToxicKind::Slicer {
            average_size: 16,
            size_variation: 4,
            delay: 1000,
        },
        ToxicKind::LimitData { bytes: 100 },
    ]
}

// ---------------------------------------------------------------------------
// Success shapes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn version_reports_toxiproxy_and_the_recorded_version() {
    let e = ex(0, "GET", "/version");
    let mut replay = Replay::serve_steps(&[0]).await;
    let v = replay.client().version().await.unwrap();
    assert_eq!(v, "toxiproxy 2.12.0-69-gf48fd7f");
    replay.request().await.assert_route(e);
}

#[tokio::test]
async fn create_proxy_sends_what_toxiproxy_accepts_and_parses_the_201() {
    let e = ex(4, "POST", "/proxies");
    let mut replay = Replay::serve_steps(&[4]).await;
    let listen: SocketAddr = "127.0.0.1:26003".parse().unwrap();
    let info = replay
        .client()
        .create_proxy("mqtt_c", listen, "127.0.0.1:1883")
        .await
        .unwrap();
    assert_eq!(info.name, "mqtt_c");
    assert_eq!(info.listen, listen);
    assert_eq!(info.upstream, "127.0.0.1:1883");
    assert!(info.enabled);
    assert!(info.toxics.is_empty());
    let req = replay.request().await;
    req.assert_route(e);
    assert_eq!(req.json(), recorded_request(e));
}

#[tokio::test]
async fn create_proxy_on_port_zero_returns_the_port_toxiproxy_bound() {
    let e = ex(2, "POST", "/proxies");
    let mut replay = Replay::serve_steps(&[2]).await;
    let info = replay
        .client()
        .create_proxy("mqtt_a", "127.0.0.1:0".parse().unwrap(), "127.0.0.1:1883")
        .await
        .unwrap();
    assert_eq!(info.listen, "127.0.0.1:26001".parse().unwrap());
    let req = replay.request().await;
    req.assert_route(e);
    assert_eq!(req.json()["listen"], "127.0.0.1:0");
}

#[tokio::test]
async fn proxy_parses_recorded_proxies_and_ignores_the_logger_field() {
    let (a, b, many) = (
        ex(11, "GET", "/proxies/mqtt_a"),
        ex(12, "GET", "/proxies/mqtt_b"),
        ex(87, "GET", "/proxies/mqtt_a"),
    );
    assert!(a.response_body.contains("\"Logger\":{}"));
    let mut replay = Replay::serve_steps(&[11, 12, 87]).await;
    let client = replay.client();

    let info = client.proxy("mqtt_a").await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.enabled, info.toxics.len()),
        ("mqtt_a", true, 0)
    );
    replay.request().await.assert_route(a);

    let info = client.proxy("mqtt_b").await.unwrap();
    assert_eq!(info.listen, "127.0.0.1:26002".parse().unwrap());
    assert!(!info.enabled, "mqtt_b was recorded disabled");
    replay.request().await.assert_route(b);

    let info = client.proxy("mqtt_a").await.unwrap();
    let want: Vec<Toxic> =
        serde_json::from_value(recorded_response(many)["toxics"].clone()).unwrap();
    assert_eq!(
        info.toxics.len(),
        27,
        "every recorded toxic but the deleted one"
    );
    assert_eq!(info.toxics, want);
    replay.request().await.assert_route(many);
}

#[tokio::test]
async fn proxies_lists_every_recorded_proxy_sorted_by_name() {
    let (empty, three, reset) = (
        ex(1, "GET", "/proxies"),
        ex(10, "GET", "/proxies"),
        ex(90, "GET", "/proxies"),
    );
    let mut replay = Replay::serve_steps(&[1, 10, 90]).await;
    let client = replay.client();

    assert!(client.proxies().await.unwrap().is_empty());
    replay.request().await.assert_route(empty);

    let names: Vec<String> = client
        .proxies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["mqtt_a", "mqtt_b", "mqtt_c"]);
    replay.request().await.assert_route(three);

    let after_reset = client.proxies().await.unwrap();
    let want = recorded_response(reset).as_object().unwrap().len();
    assert_eq!(after_reset.len(), want);
    assert!(after_reset.iter().all(|p| p.enabled && p.toxics.is_empty()));
    replay.request().await.assert_route(reset);
}

#[tokio::test]
async fn set_enabled_patches_enabled_as_recorded() {
    let (off, on) = (
        ex(18, "PATCH", "/proxies/mqtt_a"),
        ex(19, "PATCH", "/proxies/mqtt_a"),
    );
    let mut replay = Replay::serve_steps(&[18, 19]).await;
    let client = replay.client();
    client.set_enabled("mqtt_a", false).await.unwrap();
    let req = replay.request().await;
    req.assert_route(off);
    assert_eq!(req.json(), recorded_request(off));
    client.set_enabled("mqtt_a", true).await.unwrap();
    let req = replay.request().await;
    req.assert_route(on);
    assert_eq!(req.json(), recorded_request(on));
}

#[tokio::test]
async fn set_enabled_fails_when_the_answer_shows_the_other_state() {
    // Asked to disable, answered with the recorded *enabled* proxy.
    let mut replay = Replay::serve_steps(&[19]).await;
    let err = replay
        .client()
        .set_enabled("mqtt_a", false)
        .await
        .unwrap_err();
    match err {
        FaultError::Api {
            endpoint,
            status,
            message,
        } => {
            assert_eq!(endpoint, replay.endpoint("PATCH", "/proxies/mqtt_a"));
            assert_eq!(status, 200);
            assert!(message.contains("enabled=true"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let req = replay.request().await;
    req.assert_route(ex(18, "PATCH", "/proxies/mqtt_a"));
    assert_eq!(req.json(), recorded_request(&transcript()[18]));
}

#[tokio::test]
async fn add_toxic_of_every_type_and_variant_matches_the_recorded_exchange() {
    // Steps 31..=58: seven types × (no name, toxicity omitted | no name, 0.5 |
    // name, 0.5 | name, toxicity omitted), upstream and downstream in turn.
    let steps: Vec<usize> = (31..=58).collect();
    let mut replay = Replay::serve_steps(&steps).await;
    let client = replay.client();
    for (k, kind) in kinds().into_iter().enumerate() {
        let ty = kind.type_name();
        let toxics = [
            // An empty name lets Toxiproxy pick `<type>_<stream>`.
            Toxic::new(kind.clone(), Stream::Upstream).named(""),
            // Our own default name is the same as Toxiproxy's.
            Toxic::new(kind.clone(), Stream::Downstream).with_toxicity(0.5),
            Toxic::new(kind.clone(), Stream::Upstream)
                .named(format!("my_{ty}_up"))
                .with_toxicity(0.5),
            Toxic::new(kind.clone(), Stream::Downstream).named(format!("my_{ty}_down")),
        ];
        for (v, toxic) in toxics.into_iter().enumerate() {
            let e = ex(31 + 4 * k + v, "POST", "/proxies/mqtt_a/toxics");
            let got = client.add_toxic("mqtt_a", &toxic).await.unwrap();
            let want: Toxic = serde_json::from_str(&e.response_body).unwrap();
            assert_eq!(got, want, "step {:?}", e.step);
            let name = if toxic.name.is_empty() {
                format!("{ty}_{}", toxic.stream.as_str())
            } else {
                toxic.name.clone()
            };
            assert_eq!(got.name, name, "step {:?}", e.step);
            assert_eq!(got.kind, toxic.kind);
            assert_eq!(got.stream, toxic.stream);
            assert_eq!(got.toxicity, toxic.toxicity);

            let req = replay.request().await;
            req.assert_route(e);
            let sent = req.json();
            if v == 2 {
                assert_eq!(sent, recorded_request(e), "step {:?}", e.step);
            }
            assert_eq!(
                with_toxic_defaults(sent),
                with_toxic_defaults(recorded_request(e)),
                "step {:?}",
                e.step
            );
        }
    }
}

#[tokio::test]
async fn toxics_and_toxic_parse_the_recorded_lists_in_order() {
    let (empty, list, one, sliced, upper) = (
        ex(30, "GET", "/proxies/mqtt_a/toxics"),
        ex(64, "GET", "/proxies/mqtt_a/toxics"),
        ex(65, "GET", "/proxies/mqtt_a/toxics/latency_upstream"),
        ex(66, "GET", "/proxies/mqtt_a/toxics/my_slicer_down"),
        ex(60, "POST", "/proxies/mqtt_c/toxics"),
    );
    let mut replay = Replay::serve([
        Answer::from(empty),
        Answer::from(list),
        Answer::from(one),
        Answer::from(sliced),
        // A toxic created by someone else with `"stream":"UPSTREAM"`.
        Answer::from(upper),
    ])
    .await;
    let client = replay.client();

    assert!(client.toxics("mqtt_a").await.unwrap().is_empty());
    replay.request().await.assert_route(empty);

    let got = client.toxics("mqtt_a").await.unwrap();
    let want: Vec<String> = recorded_response(list)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), 28);
    assert_eq!(got.iter().map(|t| t.name.clone()).collect::<Vec<_>>(), want);
    let ups = got
        .iter()
        .take_while(|t| t.stream == Stream::Upstream)
        .count();
    assert_eq!(ups, 14, "upstream chain first, then downstream");
    replay.request().await.assert_route(list);

    let t = client.toxic("mqtt_a", "latency_upstream").await.unwrap();
    assert_eq!(
        t,
        Toxic::new(
            ToxicKind::Latency {
                latency: 1000,
                jitter: 100
            },
            Stream::Upstream
        )
    );
    replay.request().await.assert_route(one);

    let t = client.toxic("mqtt_a", "my_slicer_down").await.unwrap();
    assert_eq!(
        t.kind,
        ToxicKind::Slicer {
            average_size: 16,
            size_variation: 4,
            delay: 1000
        }
    );
    replay.request().await.assert_route(sliced);

    let t = client.toxic("mqtt_c", "latency_UPSTREAM").await.unwrap();
    assert_eq!(
        (t.name.as_str(), t.stream),
        ("latency_UPSTREAM", Stream::Upstream)
    );
    replay.request().await;
}

#[tokio::test]
async fn update_toxic_sends_only_attributes_and_toxicity() {
    let (patch, tox, ignored) = (
        ex(68, "PATCH", "/proxies/mqtt_a/toxics/latency_upstream"),
        ex(70, "PATCH", "/proxies/mqtt_a/toxics/latency_upstream"),
        ex(71, "PATCH", "/proxies/mqtt_a/toxics/latency_upstream"),
    );
    let mut replay = Replay::serve_steps(&[68, 70, 71]).await;
    let client = replay.client();
    let latency =
        |latency, jitter| Toxic::new(ToxicKind::Latency { latency, jitter }, Stream::Upstream);
    for (e, toxic) in [
        (patch, latency(2000, 100)),
        (tox, latency(2000, 0)),
        (ignored, latency(3000, 0)),
    ] {
        let got = client.update_toxic("mqtt_a", &toxic).await.unwrap();
        assert_eq!(got, toxic, "step {:?}", e.step);
        let req = replay.request().await;
        req.assert_route(e);
        let sent = req.json();
        let keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["attributes", "toxicity"]);
        // Every attribute Toxiproxy was given in the recording, we send alike.
        let recorded = recorded_request(e);
        for (k, v) in recorded["attributes"].as_object().into_iter().flatten() {
            assert_eq!(&sent["attributes"][k], v, "step {:?} attribute {k}", e.step);
        }
        if let Some(t) = recorded.get("toxicity") {
            assert_eq!(&sent["toxicity"], t);
        }
    }
}

#[tokio::test]
async fn remove_toxic_delete_proxy_and_reset_take_the_204() {
    let (toxic, proxy, reset) = (
        ex(75, "DELETE", "/proxies/mqtt_a/toxics/latency_upstream"),
        ex(99, "DELETE", "/proxies/mqtt_b"),
        ex(89, "POST", "/reset"),
    );
    assert_eq!((toxic.status, proxy.status, reset.status), (204, 204, 204));
    let mut replay = Replay::serve_steps(&[75, 99, 89]).await;
    let client = replay.client();
    client
        .remove_toxic("mqtt_a", "latency_upstream")
        .await
        .unwrap();
    replay.request().await.assert_route(toxic);
    client.delete_proxy("mqtt_b").await.unwrap();
    replay.request().await.assert_route(proxy);
    client.reset().await.unwrap();
    let req = replay.request().await;
    req.assert_route(reset);
    assert!(req.body.is_empty());
}

#[tokio::test]
async fn populate_sends_an_array_toxiproxy_accepts_and_parses_the_201() {
    let e = ex(25, "POST", "/populate");
    let mut replay = Replay::serve_steps(&[25]).await;
    let specs = [
        ProxySpec {
            name: "pop_one".into(),
            listen: "127.0.0.1:26020".parse().unwrap(),
            upstream: "127.0.0.1:1883".into(),
            enabled: true,
        },
        ProxySpec {
            name: "pop_two".into(),
            listen: "127.0.0.1:26021".parse().unwrap(),
            upstream: "127.0.0.1:1883".into(),
            enabled: false,
        },
    ];
    let got = replay.client().populate(&specs).await.unwrap();
    let summary: Vec<(&str, bool)> = got.iter().map(|p| (p.name.as_str(), p.enabled)).collect();
    assert_eq!(summary, [("pop_one", true), ("pop_two", false)]);
    let req = replay.request().await;
    req.assert_route(e);
    let sent: Vec<Value> = req
        .json()
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(with_proxy_defaults)
        .collect();
    let recorded: Vec<Value> = recorded_request(e)
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(with_proxy_defaults)
        .collect();
    assert_eq!(sent, recorded);
}

#[tokio::test]
async fn create_can_leave_a_proxy_disabled_as_recorded() {
    let e = ex(3, "POST", "/proxies");
    let mut replay = Replay::serve_steps(&[3]).await;
    let spec = ProxySpec {
        name: "mqtt_b".into(),
        listen: "127.0.0.1:26002".parse().unwrap(),
        upstream: "127.0.0.1:1883".into(),
        enabled: false,
    };
    let info = replay.client().create(&spec).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.listen, info.enabled),
        ("mqtt_b", spec.listen, false)
    );
    let req = replay.request().await;
    req.assert_route(e);
    assert_eq!(req.json(), recorded_request(e));
}

#[tokio::test]
async fn update_proxy_moves_upstream_and_listen_sending_only_what_changes() {
    let (away, back, moved) = (
        ex(20, "PATCH", "/proxies/mqtt_c"),
        ex(21, "PATCH", "/proxies/mqtt_c"),
        ex(22, "PATCH", "/proxies/mqtt_c"),
    );
    let mut replay = Replay::serve_steps(&[20, 21, 22]).await;
    let c = replay.client();
    let upstream = |u: &str| ProxyUpdate {
        upstream: Some(u.into()),
        ..ProxyUpdate::default()
    };
    for (e, update) in [
        (away, upstream("127.0.0.1:1884")),
        (back, upstream("127.0.0.1:1883")),
        (
            moved,
            ProxyUpdate {
                listen: Some("127.0.0.1:26013".parse().unwrap()),
                ..ProxyUpdate::default()
            },
        ),
    ] {
        let info = c.update_proxy("mqtt_c", &update).await.unwrap();
        let recorded = recorded_response(e);
        assert_eq!(info.upstream, recorded["upstream"], "step {:?}", e.step);
        assert_eq!(
            info.listen.to_string(),
            recorded["listen"],
            "step {:?}",
            e.step
        );
        let req = replay.request().await;
        req.assert_route(e);
        assert_eq!(req.json(), recorded_request(e), "step {:?}", e.step);
    }
}

#[tokio::test]
async fn update_proxy_fails_when_the_answer_does_not_show_the_change() {
    // Asked to move upstream to :1884, answered with the proxy on :1883.
    let mut replay = Replay::serve_steps(&[21]).await;
    let update = ProxyUpdate {
        upstream: Some("127.0.0.1:1884".into()),
        ..ProxyUpdate::default()
    };
    let err = replay
        .client()
        .update_proxy("mqtt_c", &update)
        .await
        .unwrap_err();
    assert_api(
        err,
        &replay.endpoint("PATCH", "/proxies/mqtt_c"),
        200,
        "asked for upstream=127.0.0.1:1884, the proxy reports upstream=127.0.0.1:1883",
    );
    replay.request().await;
}

#[tokio::test]
async fn proxy_bytes_reads_the_recorded_metrics_pages() {
    let (before, after, without) = (
        ex(107, "GET", "/metrics"),
        ex(109, "GET", "/metrics"),
        ex(94, "GET", "/metrics"),
    );
    let mut replay = Replay::serve_steps(&[107, 109, 94]).await;
    let c = replay.client();

    assert!(c.proxy_bytes().await.unwrap().is_empty());
    replay.request().await.assert_route(before);

    let m1 = |direction, bytes| ProxyBytes {
        proxy: "m1".into(),
        direction,
        listener: "127.0.0.1:26090".into(),
        upstream: "127.0.0.1:1883".into(),
        received: Some(bytes),
        sent: Some(bytes),
    };
    // One QoS 1 publish: CONNECT, PUBLISH, DISCONNECT up; CONNACK, PUBACK down.
    assert_eq!(
        c.proxy_bytes().await.unwrap(),
        [m1(Stream::Downstream, 8), m1(Stream::Upstream, 62)]
    );
    replay.request().await.assert_route(after);

    // A Toxiproxy started without -proxy-metrics has no such route.
    let err = c.proxy_bytes().await.unwrap_err();
    assert_api(
        err,
        &replay.endpoint("GET", "/metrics"),
        404,
        "404 page not found",
    );
    replay.request().await.assert_route(without);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

fn assert_api(err: FaultError, endpoint: &str, status: u16, message: &str) {
    match err {
        FaultError::Api {
            endpoint: got_endpoint,
            status: got_status,
            message: got_message,
        } => {
            assert_eq!(got_endpoint, endpoint);
            assert_eq!(got_status, status);
            assert_eq!(got_message, message);
        }
        other => panic!("expected an API error {status} {message:?}, got {other:?}"),
    }
}

/// The call and Toxiproxy's answer a typed error carries, checked against
/// the recorded exchange it came from; its message names both.
fn assert_refusal(err: &FaultError, at: &Option<Refusal>, replay: &Replay, e: &Exchange) {
    let at = at
        .as_ref()
        .unwrap_or_else(|| panic!("{err:?} names no call"));
    let endpoint = replay.endpoint(&e.method, &e.path);
    let recorded: Value = recorded_response(e);
    assert_eq!(
        (at.endpoint.as_str(), at.status, at.message.as_str()),
        (
            endpoint.as_str(),
            e.status,
            recorded["error"].as_str().unwrap()
        ),
        "step {:?}",
        e.step
    );
    let shown = err.to_string();
    assert!(
        shown.contains(&endpoint) && shown.contains(&at.message),
        "{shown}"
    );
}

#[tokio::test]
async fn an_unknown_proxy_is_no_such_proxy_on_every_route() {
    // 13 GET, 23 PATCH, 100 DELETE, 85 POST toxics, 86 GET toxics.
    for e in [13, 23, 100, 85, 86] {
        assert!(transcript()[e].response_body.contains("proxy not found"));
        assert_eq!(
            transcript()[e].response_content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
    let mut replay = Replay::serve_steps(&[13, 23, 100, 85, 86]).await;
    let c = replay.client();
    let toxic = Toxic::new(
        ToxicKind::Latency {
            latency: 1,
            jitter: 0,
        },
        Stream::Downstream,
    );
    let results: Vec<(usize, &str, Result<(), FaultError>)> = vec![
        (
            13,
            "does_not_exist",
            c.proxy("does_not_exist").await.map(|_| ()),
        ),
        (
            23,
            "does_not_exist",
            c.set_enabled("does_not_exist", false).await,
        ),
        (100, "mqtt_b", c.delete_proxy("mqtt_b").await),
        (
            85,
            "does_not_exist",
            c.add_toxic("does_not_exist", &toxic).await.map(|_| ()),
        ),
        (
            86,
            "does_not_exist",
            c.toxics("does_not_exist").await.map(|_| ()),
        ),
    ];
    for (step, name, result) in results {
        let e = &transcript()[step];
        replay.request().await.assert_route(e);
        match result {
            Err(ref err @ FaultError::NoSuchProxy { ref proxy, ref at }) => {
                assert_eq!(proxy, name);
                assert_refusal(err, at, &replay, e);
            }
            other => panic!("step {step}: expected NoSuchProxy, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unknown_toxic_is_no_such_toxic() {
    let (get, patch, delete) = (
        ex(67, "GET", "/proxies/mqtt_a/toxics/nope"),
        ex(72, "PATCH", "/proxies/mqtt_a/toxics/nope"),
        ex(77, "DELETE", "/proxies/mqtt_a/toxics/never_existed"),
    );
    let mut replay = Replay::serve_steps(&[67, 72, 77]).await;
    let c = replay.client();
    let update = Toxic::new(
        ToxicKind::Latency {
            latency: 1,
            jitter: 0,
        },
        Stream::Downstream,
    )
    .named("nope");
    let results = [
        (get, "nope", c.toxic("mqtt_a", "nope").await.map(|_| ())),
        (
            patch,
            "nope",
            c.update_toxic("mqtt_a", &update).await.map(|_| ()),
        ),
        (
            delete,
            "never_existed",
            c.remove_toxic("mqtt_a", "never_existed").await,
        ),
    ];
    for (e, name, result) in results {
        replay.request().await.assert_route(e);
        match result {
            Err(
                ref err @ FaultError::NoSuchToxic {
                    ref proxy,
                    ref toxic,
                    ref at,
                },
            ) => {
                assert_eq!((proxy.as_str(), toxic.as_str()), ("mqtt_a", name));
                assert_refusal(err, at, &replay, e);
            }
            other => panic!("step {:?}: expected NoSuchToxic, got {other:?}", e.step),
        }
    }
}

#[tokio::test]
async fn a_taken_name_is_proxy_exists_or_toxic_exists() {
    let mut replay = Replay::serve_steps(&[5, 82, 83, 84]).await;
    let c = replay.client();
    let result = c
        .create_proxy(
            "mqtt_a",
            "127.0.0.1:26004".parse().unwrap(),
            "127.0.0.1:1883",
        )
        .await;
    let req = replay.request().await;
    let e = ex(5, "POST", "/proxies");
    req.assert_route(e);
    assert_eq!(req.json(), with_proxy_defaults(recorded_request(e)));
    match result {
        Err(ref err @ FaultError::ProxyExists { ref proxy, ref at }) => {
            assert_eq!(proxy, "mqtt_a");
            assert_refusal(err, at, &replay, e);
        }
        other => panic!("{other:?}"),
    }

    let named = Toxic::new(
        ToxicKind::Latency {
            latency: 1,
            jitter: 0,
        },
        Stream::Upstream,
    )
    .named("my_latency_up");
    // Unnamed: the error names the default Toxiproxy gave it.
    let unnamed = Toxic::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Downstream).named("");
    let other_type =
        Toxic::new(ToxicKind::Timeout { timeout: 1 }, Stream::Downstream).named("my_latency_up");
    for (step, toxic, name) in [
        (82, named, "my_latency_up"),
        (83, unnamed, "bandwidth_downstream"),
        (84, other_type, "my_latency_up"),
    ] {
        let result = c.add_toxic("mqtt_a", &toxic).await;
        let e = ex(step, "POST", "/proxies/mqtt_a/toxics");
        let req = replay.request().await;
        req.assert_route(e);
        assert_eq!(
            with_toxic_defaults(req.json()),
            with_toxic_defaults(recorded_request(e))
        );
        match result {
            Err(
                ref err @ FaultError::ToxicExists {
                    ref proxy,
                    ref toxic,
                    ref at,
                },
            ) => {
                assert_eq!((proxy.as_str(), toxic.as_str()), ("mqtt_a", name));
                assert_refusal(err, at, &replay, e);
            }
            other => panic!("step {step}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn other_errors_are_api_errors_with_endpoint_and_toxiproxy_message() {
    // Recorded bodies served as recorded (JSON as text/plain, populate's JSON
    // with "proxies":null, the bare 404 of an unknown route, an empty 405).
    let mut replay = Replay::serve_steps(&[6, 9, 63, 27, 94, 92, 98]).await;
    let c = replay.client();
    let proxies = replay.endpoint("POST", "/proxies");

    let err = c
        .create_proxy("mqtt_noup", "127.0.0.1:26005".parse().unwrap(), "")
        .await
        .unwrap_err();
    assert_api(err, &proxies, 400, "missing required field: upstream");
    replay
        .request()
        .await
        .assert_route(ex(6, "POST", "/proxies"));

    let err = c
        .create_proxy(
            "mqtt_clash",
            "127.0.0.1:26001".parse().unwrap(),
            "127.0.0.1:1883",
        )
        .await
        .unwrap_err();
    assert_api(
        err,
        &proxies,
        500,
        "listen tcp 127.0.0.1:26001: bind: address already in use",
    );
    replay
        .request()
        .await
        .assert_route(ex(9, "POST", "/proxies"));

    let toxic = Toxic::new(
        ToxicKind::Latency {
            latency: 5,
            jitter: 0,
        },
        Stream::Downstream,
    )
    .named("bad_attr");
    let err = c.add_toxic("mqtt_c", &toxic).await.unwrap_err();
    assert_api(
        err,
        &replay.endpoint("POST", "/proxies/mqtt_c/toxics"),
        400,
        "bad request body: json: cannot unmarshal string into Go struct field \
         LatencyToxic.attributes.latency of type int64",
    );
    replay
        .request()
        .await
        .assert_route(ex(63, "POST", "/proxies/mqtt_c/toxics"));

    let spec = ProxySpec {
        name: "pop_four".into(),
        listen: "127.0.0.1:26023".parse().unwrap(),
        upstream: String::new(),
        enabled: true,
    };
    let err = c.populate(&[spec]).await.unwrap_err();
    assert_eq!(
        transcript()[27].response_content_type.as_deref(),
        Some("application/json")
    );
    assert_api(
        err,
        &replay.endpoint("POST", "/populate"),
        400,
        "missing required field: upstream at proxy 2",
    );
    replay.request().await;

    // An unknown route's 404 is not "no such proxy".
    let err = c.proxy("mqtt_a").await.unwrap_err();
    assert_api(
        err,
        &replay.endpoint("GET", "/proxies/mqtt_a"),
        404,
        "404 page not found",
    );
    replay.request().await;

    let err = c.version().await.unwrap_err();
    assert_api(
        err,
        &replay.endpoint("GET", "/version"),
        403,
        "User agent not allowed",
    );
    replay.request().await;

    let err = c.reset().await.unwrap_err();
    assert_api(err, &replay.endpoint("POST", "/reset"), 405, "(empty body)");
    replay.request().await;
}

#[tokio::test]
async fn a_blocked_toxic_removal_answering_503_is_an_api_error() {
    // Measured, not in the transcript: Toxiproxy's http.TimeoutHandler
    // answers 503 with this page after 25 s when a DELETE is blocked.
    let page = "<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>";
    let mut replay = Replay::serve([Answer {
        status: 503,
        body: page.into(),
        content_type: Some("text/html; charset=utf-8".into()),
    }])
    .await;
    let err = replay
        .client()
        .remove_toxic("mqtt_a", "latency_downstream")
        .await
        .unwrap_err();
    assert_api(
        err,
        &replay.endpoint("DELETE", "/proxies/mqtt_a/toxics/latency_downstream"),
        503,
        page,
    );
    replay.request().await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable_naming_the_endpoint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = Toxiproxy::with_timeout(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    match c.version().await {
        Err(FaultError::Unreachable { endpoint, message }) => {
            assert_eq!(endpoint, format!("GET http://{addr}/version"));
            assert!(message.to_lowercase().contains("refused"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_never_answers_is_unreachable_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (held_tx, mut held) = mpsc::unbounded_channel();
    let silent = tokio::spawn(async move {
        // Accept and hold the connection without a word.
        if let Ok((sock, _)) = listener.accept().await {
            let _ = held_tx.send(sock);
        }
    });
    let timeout = Duration::from_millis(300);
    let c = Toxiproxy::with_timeout(&format!("http://{addr}"), timeout).unwrap();
    let started = Instant::now();
    let result = c.reset().await;
    let took = started.elapsed();
    match result {
        Err(FaultError::Unreachable { endpoint, message }) => {
            assert_eq!(endpoint, format!("POST http://{addr}/reset"));
            assert_eq!(message, "no answer within 300ms");
        }
        other => panic!("{other:?}"),
    }
    assert!(took >= timeout, "gave up after {took:?}");
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
    assert!(
        held.recv().await.is_some(),
        "the request did reach the server"
    );
    silent.abort();
}

#[tokio::test]
async fn set_half_open_is_unsupported_on_toxiproxy() {
    let c = Toxiproxy::new("http://127.0.0.1:8474").unwrap();
    // No request is made: half_open is this harness's mode, not Toxiproxy's.
    assert!(matches!(
        c.set_half_open("mqtt_a", true).await,
        Err(FaultError::Unsupported { .. })
    ));
}

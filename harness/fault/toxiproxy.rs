//! A real Toxiproxy 2.x over its HTTP API.
//!
//! [`Toxiproxy`] is a thin I/O shell: it builds the request, sends it with a
//! bounded timeout and hands status and body to pure functions that decode
//! the answer (`decode` of the wire types below) or turn it into a typed
//! [`FaultError`] (`classify`). Routes and status codes are Toxiproxy's
//! `api.go`, as recorded from a real 2.12 in
//! `tests/fixtures/toxiproxy-2.12-api-transcript.json`:
//!
//! * proxy create and `/populate` answer 201, toxic create answers **200**,
//!   `DELETE` and `/reset` answer 204 with an empty body;
//! * errors are `{"error":"…","status":N}\n` served as `text/plain`, so the
//!   body is parsed whatever the `Content-Type` says;
//! * proxy JSON carries a stray `"Logger":{}`, which is ignored.
//!
//! Besides [`LinkFaults`], the client covers the rest of the API: proxies
//! created disabled ([`Toxiproxy::create`]), moved to another listen address
//! or upstream ([`Toxiproxy::update_proxy`]), created in bulk
//! ([`Toxiproxy::populate`]), listed, and the byte counters of a Toxiproxy
//! started with `-proxy-metrics` ([`Toxiproxy::proxy_bytes`]).
//!
//! Toxiproxy has no `half_open` mode (that one is ours), so
//! [`LinkFaults::set_half_open`] keeps its "unsupported" default here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{FaultError, LinkFaults, ProxyBytes, ProxyInfo, Refusal, Stream, Toxic};

/// How long one API call may take before it counts as unreachable.
///
/// Toxiproxy itself gives up after 25 s when a toxic removal is blocked by a
/// stalled writer, and answers 503; 30 s leaves room for that answer to
/// arrive so it surfaces as an [`FaultError::Api`] error, not a timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Error bodies longer than this are cut (an HTML error page, say), so an
/// error message stays one readable line.
const MAX_MESSAGE_CHARS: usize = 300;

/// A client of one Toxiproxy server's HTTP API.
#[derive(Debug, Clone)]
pub struct Toxiproxy {
    base: Url,
    http: reqwest::Client,
    timeout: Duration,
}

/// A proxy to create with [`Toxiproxy::populate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    pub name: String,
    /// May have port 0; Toxiproxy then reports the port it bound.
    pub listen: SocketAddr,
    /// `host:port` of the broker, as Toxiproxy reaches it.
    pub upstream: String,
    pub enabled: bool,
}

/// What [`Toxiproxy::update_proxy`] changes; `None` keeps the current value.
/// A new listen address or upstream restarts the proxy (its connections
/// close), as Toxiproxy does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyUpdate {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

impl Toxiproxy {
    /// A client of the Toxiproxy at `base_url`, which must be
    /// `http://HOST:PORT` (a trailing `/` is allowed; no TLS, no path),
    /// with [`DEFAULT_TIMEOUT`] per call.
    pub fn new(base_url: &str) -> Result<Toxiproxy, FaultError> {
        Toxiproxy::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// As [`Toxiproxy::new`], with every call bounded by `timeout`.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Toxiproxy, FaultError> {
        let base = parse_base_url(base_url)?;
        let http = reqwest::Client::builder()
            // Toxiproxy answers 403 to any User-Agent starting with `Mozilla/`.
            .user_agent(concat!("mqtt-chaos/", env!("CARGO_PKG_VERSION")))
            // The API is on loopback or a lab host: never go through an
            // HTTP proxy taken from the environment.
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(|e| FaultError::Unreachable {
                endpoint: base_url.to_string(),
                message: format!("cannot build an HTTP client: {}", chain(&e)),
            })?;
        Ok(Toxiproxy {
            base,
            http,
            timeout,
        })
    }

    /// The server's base URL, `http://HOST:PORT/`.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Every proxy on the server, sorted by name (`GET /proxies`).
    pub async fn proxies(&self) -> Result<Vec<ProxyInfo>, FaultError> {
        let (endpoint, status, body) = self
            .call(Method::GET, &["proxies"], None, Op::Other)
            .await?;
        let wire: BTreeMap<String, ProxyWire> = decode(&endpoint, status, &body)?;
        wire.into_values()
            .map(|p| p.into_info(&endpoint, status))
            .collect()
    }

    /// The toxics of one proxy, upstream chain first, each in creation order
    /// (`GET /proxies/{proxy}/toxics`).
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultError> {
        let (endpoint, status, body) = self
            .call(
                Method::GET,
                &["proxies", proxy, "toxics"],
                None,
                Op::Proxy(proxy),
            )
            .await?;
        let wire: Vec<Value> = decode(&endpoint, status, &body)?;
        wire.into_iter()
            .map(|t| toxic_from_value(t, &endpoint, status))
            .collect()
    }

    /// One toxic (`GET /proxies/{proxy}/toxics/{toxic}`).
    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<Toxic, FaultError> {
        let (endpoint, status, body) = self
            .call(
                Method::GET,
                &["proxies", proxy, "toxics", toxic],
                None,
                Op::Toxic { proxy, toxic },
            )
            .await?;
        toxic_from_value(decode(&endpoint, status, &body)?, &endpoint, status)
    }

    /// Change the attributes and toxicity of the toxic named `toxic.name`,
    /// live on every connection (`PATCH /proxies/{proxy}/toxics/{name}`).
    /// Toxiproxy ignores `type` and `stream` in an update, so only
    /// `attributes` and `toxicity` are sent; the answer is the toxic as it
    /// now is.
    pub async fn update_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultError> {
        let body = update_body(toxic);
        let name = toxic.name.as_str();
        let (endpoint, status, body) = self
            .call(
                Method::PATCH,
                &["proxies", proxy, "toxics", name],
                Some(body),
                Op::Toxic { proxy, toxic: name },
            )
            .await?;
        toxic_from_value(decode(&endpoint, status, &body)?, &endpoint, status)
    }

    /// Create a proxy, listening at once or (`enabled` false) only once
    /// enabled (`POST /proxies`). Port 0 binds a free port, reported in the
    /// answer.
    pub async fn create(&self, spec: &ProxySpec) -> Result<ProxyInfo, FaultError> {
        let body = serde_json::json!({
            "name": spec.name,
            "listen": spec.listen.to_string(),
            "upstream": spec.upstream,
            "enabled": spec.enabled,
        });
        let (endpoint, status, body) = self
            .call(
                Method::POST,
                &["proxies"],
                Some(body),
                Op::CreateProxy(&spec.name),
            )
            .await?;
        let wire: ProxyWire = decode(&endpoint, status, &body)?;
        wire.into_info(&endpoint, status)
    }

    /// Change a proxy's listen address, upstream and/or enabled state
    /// (`PATCH /proxies/{proxy}` with only the fields given); the answer is
    /// the proxy as it now is, checked to show every change asked for.
    pub async fn update_proxy(
        &self,
        name: &str,
        update: &ProxyUpdate,
    ) -> Result<ProxyInfo, FaultError> {
        let mut body = serde_json::Map::new();
        if let Some(l) = update.listen {
            body.insert("listen".into(), l.to_string().into());
        }
        if let Some(u) = &update.upstream {
            body.insert("upstream".into(), u.clone().into());
        }
        if let Some(e) = update.enabled {
            body.insert("enabled".into(), e.into());
        }
        let (endpoint, status, body) = self
            .call(
                Method::PATCH,
                &["proxies", name],
                Some(Value::Object(body)),
                Op::Proxy(name),
            )
            .await?;
        let wire: ProxyWire = decode(&endpoint, status, &body)?;
        let info = wire.into_info(&endpoint, status)?;
        let mismatch = |what: &str, asked: &dyn std::fmt::Display, got: &dyn std::fmt::Display| {
            FaultError::Api {
                endpoint: endpoint.clone(),
                status: status.as_u16(),
                message: format!("asked for {what}={asked}, the proxy reports {what}={got}"),
            }
        };
        // Port 0 asks for any port; anything else must be what was asked.
        if let Some(l) = update.listen {
            if l != info.listen && !(l.port() == 0 && l.ip() == info.listen.ip()) {
                return Err(mismatch("listen", &l, &info.listen));
            }
        }
        if let Some(u) = &update.upstream {
            if *u != info.upstream {
                return Err(mismatch("upstream", u, &info.upstream));
            }
        }
        if let Some(e) = update.enabled {
            if e != info.enabled {
                return Err(mismatch("enabled", &e, &info.enabled));
            }
        }
        Ok(info)
    }

    /// The byte counters of a Toxiproxy started with `-proxy-metrics`
    /// (`GET /metrics`, Prometheus text), one entry per proxy, direction,
    /// listen address and upstream, in the server's order. Without the flag
    /// the server answers 404, an [`FaultError::Api`] error.
    pub async fn proxy_bytes(&self) -> Result<Vec<ProxyBytes>, FaultError> {
        let (endpoint, status, body) = self
            .call(Method::GET, &["metrics"], None, Op::Other)
            .await?;
        let text = String::from_utf8_lossy(&body);
        parse_proxy_bytes(&text).map_err(|message| FaultError::Api {
            endpoint,
            status: status.as_u16(),
            message,
        })
    }

    /// Create several proxies at once (`POST /populate`). A proxy whose
    /// name exists with the same configuration is returned unchanged; if one
    /// entry is invalid, none is created.
    pub async fn populate(&self, proxies: &[ProxySpec]) -> Result<Vec<ProxyInfo>, FaultError> {
        let body = Value::Array(
            proxies
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "listen": p.listen.to_string(),
                        "upstream": p.upstream,
                        "enabled": p.enabled,
                    })
                })
                .collect(),
        );
        let (endpoint, status, body) = self
            .call(Method::POST, &["populate"], Some(body), Op::Other)
            .await?;
        let wire: PopulateWire = decode(&endpoint, status, &body)?;
        wire.proxies
            .into_iter()
            .map(|p| p.into_info(&endpoint, status))
            .collect()
    }

    /// Send one request and return `(endpoint, status, body)` of a 2xx
    /// answer; anything else becomes the [`FaultError`] `op` calls for.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
        op: Op<'_>,
    ) -> Result<(String, StatusCode, bytes::Bytes), FaultError> {
        let url = self.url(segments);
        let endpoint = format!("{method} {url}");
        let mut request = self.http.request(method, url);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| FaultError::Unreachable {
            endpoint: endpoint.clone(),
            message: if e.is_timeout() {
                format!("no answer within {:?}", self.timeout)
            } else {
                chain(&e)
            },
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            Ok((endpoint, status, body))
        } else {
            Err(classify(op, endpoint, status.as_u16(), &body))
        }
    }

    /// `base/seg/seg…`, each segment percent-encoded (a proxy name is free
    /// text to Toxiproxy).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http:// URL has path segments")
            .clear()
            .extend(segments);
        url
    }
}

#[async_trait]
impl LinkFaults for Toxiproxy {
    async fn version(&self) -> Result<String, FaultError> {
        let (endpoint, status, body) = self
            .call(Method::GET, &["version"], None, Op::Other)
            .await?;
        let v: VersionWire = decode(&endpoint, status, &body)?;
        Ok(format!("toxiproxy {}", v.version))
    }

    async fn create_proxy(
        &self,
        name: &str,
        listen: SocketAddr,
        upstream: &str,
    ) -> Result<ProxyInfo, FaultError> {
        self.create(&ProxySpec {
            name: name.to_owned(),
            listen,
            upstream: upstream.to_owned(),
            enabled: true,
        })
        .await
    }

    async fn delete_proxy(&self, name: &str) -> Result<(), FaultError> {
        self.call(Method::DELETE, &["proxies", name], None, Op::Proxy(name))
            .await?;
        Ok(())
    }

    async fn proxy(&self, name: &str) -> Result<ProxyInfo, FaultError> {
        let (endpoint, status, body) = self
            .call(Method::GET, &["proxies", name], None, Op::Proxy(name))
            .await?;
        let wire: ProxyWire = decode(&endpoint, status, &body)?;
        wire.into_info(&endpoint, status)
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), FaultError> {
        let body = serde_json::json!({ "enabled": enabled });
        let (endpoint, status, body) = self
            .call(
                Method::PATCH,
                &["proxies", name],
                Some(body),
                Op::Proxy(name),
            )
            .await?;
        // The caller stamps the fault at our return: make sure the server
        // really is in the state asked for.
        let wire: ProxyWire = decode(&endpoint, status, &body)?;
        if wire.enabled != enabled {
            return Err(FaultError::Api {
                endpoint,
                status: status.as_u16(),
                message: format!(
                    "asked for enabled={enabled}, the proxy reports enabled={}",
                    wire.enabled
                ),
            });
        }
        Ok(())
    }

    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, FaultError> {
        let name = effective_name(toxic);
        let (endpoint, status, body) = self
            .call(
                Method::POST,
                &["proxies", proxy, "toxics"],
                Some(create_body(toxic)),
                Op::CreateToxic {
                    proxy,
                    toxic: &name,
                },
            )
            .await?;
        toxic_from_value(decode(&endpoint, status, &body)?, &endpoint, status)
    }

    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        self.call(
            Method::DELETE,
            &["proxies", proxy, "toxics", toxic],
            None,
            Op::Toxic { proxy, toxic },
        )
        .await?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), FaultError> {
        self.call(Method::POST, &["reset"], None, Op::Other).await?;
        Ok(())
    }
}

/// Accept exactly `http://HOST:PORT` with an optional trailing `/`.
fn parse_base_url(raw: &str) -> Result<Url, FaultError> {
    let invalid = |why: &str| FaultError::Unreachable {
        endpoint: raw.to_string(),
        message: format!("not a Toxiproxy API address ({why}); expected http://HOST:PORT"),
    };
    let rest = raw
        .strip_prefix("http://")
        .ok_or_else(|| invalid("the scheme must be http://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(invalid("no path, query, fragment or user allowed"));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| invalid("the port is missing"))?;
    if host.is_empty() {
        return Err(invalid("the host is missing"));
    }
    // A bare IPv6 address (`http://::1:8474`) splits here too; Url rejects it.
    match port.parse::<u16>() {
        Ok(p) if p != 0 => {}
        _ => return Err(invalid("the port must be a number from 1 to 65535")),
    }
    let url = Url::parse(&format!("http://{authority}/")).map_err(|e| invalid(&e.to_string()))?;
    if url.port().is_none() && port != "80" {
        return Err(invalid("the port is missing"));
    }
    Ok(url)
}

/// What a request was about, so an error status maps to the right variant.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    /// A route under `/proxies/{name}` that is not a toxic.
    Proxy(&'a str),
    CreateProxy(&'a str),
    /// A route under `/proxies/{proxy}/toxics/{toxic}`.
    Toxic {
        proxy: &'a str,
        toxic: &'a str,
    },
    CreateToxic {
        proxy: &'a str,
        toxic: &'a str,
    },
    Other,
}

impl<'a> Op<'a> {
    /// The proxy the route is under, if any.
    fn proxy(self) -> Option<&'a str> {
        match self {
            Op::Proxy(p) | Op::CreateProxy(p) => Some(p),
            Op::Toxic { proxy, .. } | Op::CreateToxic { proxy, .. } => Some(proxy),
            Op::Other => None,
        }
    }
}

/// Turn a non-2xx answer into a typed error that names the call and keeps
/// Toxiproxy's message. Toxiproxy's messages decide between "proxy not
/// found" and "toxic not found"; a 404 with any other body (`404 page not
/// found` of an unknown route) stays an API error.
fn classify(op: Op<'_>, endpoint: String, status: u16, body: &[u8]) -> FaultError {
    let message = error_message(body);
    let kind = match (status, message.as_str(), op) {
        (404, "proxy not found", op) => op.proxy().map(|p| (p, None, false)),
        (404, "toxic not found", Op::Toxic { proxy, toxic }) => Some((proxy, Some(toxic), false)),
        (409, _, Op::CreateProxy(name)) => Some((name, None, true)),
        (409, _, Op::CreateToxic { proxy, toxic }) => Some((proxy, Some(toxic), true)),
        _ => None,
    };
    let Some((proxy, toxic, exists)) = kind else {
        return FaultError::Api {
            endpoint,
            status,
            message,
        };
    };
    let at = Some(Refusal {
        endpoint,
        status,
        message,
    });
    let proxy = proxy.to_string();
    match (toxic, exists) {
        (None, false) => FaultError::NoSuchProxy { proxy, at },
        (None, true) => FaultError::ProxyExists { proxy, at },
        (Some(t), false) => FaultError::NoSuchToxic {
            proxy,
            toxic: t.to_string(),
            at,
        },
        (Some(t), true) => FaultError::ToxicExists {
            proxy,
            toxic: t.to_string(),
            at,
        },
    }
}

/// The `error` of a Toxiproxy error body, or the body itself (trimmed and
/// bounded) when it is not that JSON: `404 page not found`, an HTML page.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorWire {
        error: String,
    }
    if let Ok(e) = serde_json::from_slice::<ErrorWire>(body) {
        return e.error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Decode a 2xx body; a body that is not what Toxiproxy sends is an API
/// error naming the call.
fn decode<T: DeserializeOwned>(
    endpoint: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, FaultError> {
    serde_json::from_slice(body).map_err(|e| FaultError::Api {
        endpoint: endpoint.to_string(),
        status: status.as_u16(),
        message: format!(
            "unexpected answer ({e}): {}",
            error_message(body).replace('\n', " ")
        ),
    })
}

/// A toxic from Toxiproxy's JSON. Toxiproxy accepts and echoes `stream` in
/// any case (`"UPSTREAM"`), so it is lower-cased before typed decoding.
fn toxic_from_value(mut v: Value, endpoint: &str, status: StatusCode) -> Result<Toxic, FaultError> {
    if let Some(Value::String(s)) = v.get_mut("stream") {
        *s = s.to_ascii_lowercase();
    }
    let shown = v.to_string();
    serde_json::from_value(v).map_err(|e| FaultError::Api {
        endpoint: endpoint.to_string(),
        status: status.as_u16(),
        message: format!("unexpected toxic ({e}): {shown}"),
    })
}

/// The name Toxiproxy gives the toxic: its own, or `<type>_<stream>`.
fn effective_name(toxic: &Toxic) -> String {
    if toxic.name.is_empty() {
        format!("{}_{}", toxic.kind.type_name(), toxic.stream.as_str())
    } else {
        toxic.name.clone()
    }
}

/// The body of a toxic create: the toxic's own JSON, without an empty name
/// so that Toxiproxy picks its default.
fn create_body(toxic: &Toxic) -> Value {
    let mut v = serde_json::to_value(toxic).expect("a toxic always serialises");
    if toxic.name.is_empty() {
        if let Value::Object(map) = &mut v {
            map.remove("name");
        }
    }
    v
}

/// The body of a toxic update: only what Toxiproxy reads.
fn update_body(toxic: &Toxic) -> Value {
    let v = serde_json::to_value(toxic).expect("a toxic always serialises");
    serde_json::json!({
        "attributes": v.get("attributes").cloned().unwrap_or(Value::Null),
        "toxicity": v.get("toxicity").cloned().unwrap_or(Value::Null),
    })
}

/// An error and its causes on one line: reqwest's own message alone
/// ("error sending request") does not say *why*.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// The `toxiproxy_proxy_{received,sent}_bytes_total` samples of a
/// Prometheus text page, merged per label set; other metrics are skipped.
fn parse_proxy_bytes(text: &str) -> Result<Vec<ProxyBytes>, String> {
    const RECEIVED: &str = "toxiproxy_proxy_received_bytes_total{";
    const SENT: &str = "toxiproxy_proxy_sent_bytes_total{";
    let mut out: Vec<ProxyBytes> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (received, rest) = if let Some(r) = line.strip_prefix(RECEIVED) {
            (true, r)
        } else if let Some(r) = line.strip_prefix(SENT) {
            (false, r)
        } else {
            continue;
        };
        let bad = |why: &str| format!("metrics line {}: {why}: {line}", n + 1);
        let (labels, value) = parse_labels(rest).ok_or_else(|| bad("bad labels"))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| bad("the value is not a number"))?;
        if !(value >= 0.0 && value.fract() == 0.0) {
            return Err(bad("a byte count must be a whole number"));
        }
        let label = |k: &str| {
            labels
                .get(k)
                .cloned()
                .ok_or_else(|| bad(&format!("no {k} label")))
        };
        let direction = match label("direction")?.as_str() {
            "upstream" => Stream::Upstream,
            "downstream" => Stream::Downstream,
            other => return Err(bad(&format!("unknown direction {other:?}"))),
        };
        let key = (
            label("proxy")?,
            direction,
            label("listener")?,
            label("upstream")?,
        );
        let i = match out.iter().position(|b| {
            (&b.proxy, b.direction, &b.listener, &b.upstream) == (&key.0, key.1, &key.2, &key.3)
        }) {
            Some(i) => i,
            None => {
                out.push(ProxyBytes {
                    proxy: key.0,
                    direction: key.1,
                    listener: key.2,
                    upstream: key.3,
                    received: None,
                    sent: None,
                });
                out.len() - 1
            }
        };
        let slot = if received {
            &mut out[i].received
        } else {
            &mut out[i].sent
        };
        *slot = Some(value as u64);
    }
    Ok(out)
}

/// `k="v",…}` and what follows the closing brace; label values unescaped.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

#[derive(Deserialize)]
struct VersionWire {
    version: String,
}

/// A proxy as Toxiproxy sends it; unknown fields (`Logger`) are ignored.
#[derive(Deserialize)]
struct ProxyWire {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    #[serde(default)]
    toxics: Vec<Value>,
}

impl ProxyWire {
    fn into_info(self, endpoint: &str, status: StatusCode) -> Result<ProxyInfo, FaultError> {
        let listen = self.listen.parse().map_err(|e| FaultError::Api {
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
            message: format!(
                "proxy {}: listen {:?} is not an address ({e})",
                self.name, self.listen
            ),
        })?;
        let toxics = self
            .toxics
            .into_iter()
            .map(|t| toxic_from_value(t, endpoint, status))
            .collect::<Result<_, _>>()?;
        Ok(ProxyInfo {
            name: self.name,
            listen,
            upstream: self.upstream,
            enabled: self.enabled,
            toxics,
        })
    }
}

#[derive(Deserialize)]
struct PopulateWire {
    proxies: Vec<ProxyWire>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Stream, ToxicKind};

    #[test]
    fn base_url_must_be_http_host_port() {
        for ok in [
            "http://127.0.0.1:8474",
            "http://127.0.0.1:8474/",
            "http://localhost:8474",
            "http://[::1]:8474",
        ] {
            let t = Toxiproxy::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(t.base_url().ends_with(":8474/"), "{ok} -> {}", t.base_url());
        }
        for bad in [
            "https://127.0.0.1:8474",
            "127.0.0.1:8474",
            "http://127.0.0.1",
            "http://127.0.0.1:",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:8474/api",
            "http://u@127.0.0.1:8474",
            "http://:8474",
            "http://::1:8474",
            "",
        ] {
            match Toxiproxy::new(bad) {
                Err(FaultError::Unreachable { endpoint, message }) => {
                    assert_eq!(endpoint, bad);
                    assert!(message.contains("http://HOST:PORT"), "{message}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn urls_percent_encode_names() {
        let t = Toxiproxy::new("http://127.0.0.1:8474").unwrap();
        let url = t.url(&["proxies", "a b/c", "toxics"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8474/proxies/a%20b%2Fc/toxics"
        );
    }

    #[test]
    fn error_message_reads_json_whatever_the_content_type() {
        assert_eq!(
            error_message(b"{\"error\":\"proxy not found\",\"status\":404}\n"),
            "proxy not found"
        );
        assert_eq!(error_message(b"404 page not found\n"), "404 page not found");
        assert_eq!(error_message(b""), "(empty body)");
        let long = "x".repeat(1000);
        let m = error_message(long.as_bytes());
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn a_404_maps_by_message_and_by_route() {
        let proxy_gone = b"{\"error\":\"proxy not found\",\"status\":404}\n";
        let toxic_gone = b"{\"error\":\"toxic not found\",\"status\":404}\n";
        let toxic = Op::Toxic {
            proxy: "p",
            toxic: "t",
        };
        assert!(matches!(
            classify(toxic, "E".into(), 404, proxy_gone),
            FaultError::NoSuchProxy { proxy, at: Some(at) } if proxy == "p" && at.message == "proxy not found"
        ));
        assert!(matches!(
            classify(toxic, "E".into(), 404, toxic_gone),
            FaultError::NoSuchToxic { proxy, toxic, .. } if proxy == "p" && toxic == "t"
        ));
        assert!(matches!(
            classify(Op::Proxy("p"), "E".into(), 404, b"404 page not found\n"),
            FaultError::Api { status: 404, message, .. } if message == "404 page not found"
        ));
        assert!(matches!(
            classify(Op::Other, "E".into(), 404, proxy_gone),
            FaultError::Api { status: 404, .. }
        ));
    }

    #[test]
    fn a_409_names_what_already_exists() {
        let body = b"{\"error\":\"toxic already exists\",\"status\":409}\n";
        assert!(matches!(
            classify(Op::CreateProxy("a"), "E".into(), 409, body),
            FaultError::ProxyExists { proxy, .. } if proxy == "a"
        ));
        assert!(matches!(
            classify(Op::CreateToxic { proxy: "a", toxic: "t" }, "E".into(), 409, body),
            FaultError::ToxicExists { proxy, toxic, .. } if proxy == "a" && toxic == "t"
        ));
    }

    #[test]
    fn an_unnamed_toxic_is_sent_without_a_name_and_known_by_the_default() {
        let t = Toxic::new(ToxicKind::Bandwidth { rate: 10 }, Stream::Upstream).named("");
        assert_eq!(effective_name(&t), "bandwidth_upstream");
        assert_eq!(
            create_body(&t),
            serde_json::json!({"type":"bandwidth","stream":"upstream","toxicity":1,"attributes":{"rate":10}})
        );
    }

    #[test]
    fn byte_counters_are_read_from_prometheus_text() {
        let page = "# HELP x\n\
            promhttp_metric_handler_errors_total{cause=\"encoding\"} 0\n\
            toxiproxy_proxy_received_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:1\",proxy=\"a\\\"b\",upstream=\"h:2\"} 1.5e+06\n\
            toxiproxy_proxy_sent_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:1\",proxy=\"a\\\"b\",upstream=\"h:2\"} 62\n";
        let got = parse_proxy_bytes(page).unwrap();
        assert_eq!(
            got,
            [ProxyBytes {
                proxy: "a\"b".into(),
                direction: Stream::Upstream,
                listener: "127.0.0.1:1".into(),
                upstream: "h:2".into(),
                received: Some(1_500_000),
                sent: Some(62),
            }]
        );
        let err = parse_proxy_bytes(
            "toxiproxy_proxy_sent_bytes_total{direction=\"sideways\",listener=\"l\",proxy=\"p\",upstream=\"u\"} 1",
        )
        .unwrap_err();
        assert!(
            err.starts_with("metrics line 1: unknown direction"),
            "{err}"
        );
        assert!(parse_proxy_bytes("toxiproxy_proxy_sent_bytes_total{direction=\"up").is_err());
    }

    #[test]
    fn an_upper_case_stream_from_toxiproxy_still_parses() {
        let v: Value = serde_json::from_str(
            r#"{"attributes":{"latency":5,"jitter":0},"name":"latency_UPSTREAM","type":"latency","stream":"UPSTREAM","toxicity":1}"#,
        )
        .unwrap();
        let t = toxic_from_value(v, "E", StatusCode::OK).unwrap();
        assert_eq!(t.stream, Stream::Upstream);
        assert_eq!(t.name, "latency_UPSTREAM");
    }
}

//! Toxiproxy 2.12's HTTP API over the engine, so tools written for
//! Toxiproxy (its CLI, client libraries, our own Toxiproxy backend) can drive
//! the embedded engine: `mqtt-chaos proxy-server --listen ADDR`.
//!
//! The answers follow the recorded transcript
//! (`shared/fixtures/toxiproxy-2.12-api-transcript.json`): status codes,
//! content types, error bodies `{"error":…,"status":…}` plus a newline as
//! `text/plain`, the stray `"Logger":{}` in proxy JSON, the stream spelled
//! as the client spelled it, Go's messages for bad JSON. `/metrics` is
//! served as by Toxiproxy started with `-proxy-metrics` when
//! [`ApiServer::proxy_metrics`] is on (`proxy-server --proxy-metrics`), and
//! is a 404 otherwise, as without the flag; Go's runtime metrics
//! (`-runtime-metrics`) are not. `GET /version` names this engine, not a
//! Toxiproxy build.
//!
//! With [`ApiServer::answer_delay`] (`proxy-server --answer-delay 5ms`) it
//! behaves like the measured Toxiproxy 2.12 (`toxiproxy-2.12-behaviour.md`):
//! disabling or deleting a proxy closes its connections *before* the HTTP
//! answer is sent (the engine waits until none is left), and the answer
//! comes the given delay later, so a fault's effects reach the devices well
//! before the harness hears the fault confirmed. Other answers are not
//! delayed.
//!
//! A small HTTP/1.1 server (keep-alive, `Content-Length` bodies) is enough
//! for Toxiproxy clients; requests are parsed by [`parse_head`] and answered
//! by [`Api::handle`], which does no socket I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Engine;
use crate::fault::{FaultError, LinkFaults, ProxyInfo, Stream, Toxic, ToxicKind};

/// How long a disable waits for its proxy's connections to close before it
/// answers anyway (in `answer_delay` mode).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Largest request head and body accepted.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Serve Toxiproxy's HTTP API for `engine` on `listen` until the task is
/// dropped.
pub async fn serve_api(engine: Engine, listen: SocketAddr) -> Result<(), FaultError> {
    ApiServer::bind(engine, listen).await?.serve().await;
    Ok(())
}

/// A bound API server (bind first to learn the port, then serve).
pub struct ApiServer {
    listener: TcpListener,
    api: Arc<Api>,
}

impl ApiServer {
    pub async fn bind(engine: Engine, listen: SocketAddr) -> Result<ApiServer, FaultError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| FaultError::Listen {
                addr: listen.to_string(),
                message: e.to_string(),
            })?;
        Ok(ApiServer {
            listener,
            api: Arc::new(Api::new(engine)),
        })
    }

    /// Serve `/metrics` (the proxies' byte counters), as Toxiproxy does
    /// when started with `-proxy-metrics`.
    pub fn proxy_metrics(mut self, on: bool) -> ApiServer {
        Arc::get_mut(&mut self.api)
            .expect("the API is shared only once it serves")
            .proxy_metrics = on;
        self
    }

    /// Answer a disable or delete of a proxy only once its connections are
    /// closed, and `delay` after that (`None`: at once, as before).
    pub fn answer_delay(mut self, delay: Option<Duration>) -> ApiServer {
        Arc::get_mut(&mut self.api)
            .expect("the API is shared only once it serves")
            .answer_delay = delay;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Accept and answer requests forever.
    pub async fn serve(self) {
        loop {
            match self.listener.accept().await {
                Ok((sock, _)) => {
                    tokio::spawn(serve_connection(sock, self.api.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: String,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    fn json(status: u16, v: &Value) -> Response {
        Response {
            status,
            content_type: Some(JSON),
            body: v.to_string(),
        }
    }

    /// Go's `http.Error` with Toxiproxy's JSON body.
    fn error(status: u16, message: &str) -> Response {
        Response {
            status,
            content_type: Some(TEXT),
            body: format!("{}\n", json!({"error": message, "status": status})),
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            body: String::new(),
        }
    }

    fn not_found() -> Response {
        Response {
            status: 404,
            content_type: Some(TEXT),
            body: "404 page not found\n".into(),
        }
    }
}

/// The request head: method, path and headers, and where the body starts.
pub fn parse_head(buf: &[u8]) -> Option<(Request, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    Some((
        Request {
            method,
            path,
            headers,
            body: Vec::new(),
        },
        end,
    ))
}

async fn serve_connection(mut sock: TcpStream, api: Arc<Api>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let (mut req, start) = loop {
            if let Some(parsed) = parse_head(&buf) {
                break parsed;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if len > MAX_BODY {
            return;
        }
        while buf.len() < start + len {
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        req.body = buf[start..start + len].to_vec();
        buf.drain(..start + len);
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let resp = api.handle(&req).await;
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        if let Some(ct) = resp.content_type {
            out.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&resp.body);
        if sock.write_all(out.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Internal Server Error",
    }
}

/// The API's state: the engine, and how each toxic's stream was spelled
/// (Toxiproxy echoes `"UPSTREAM"` as given).
pub struct Api {
    engine: Engine,
    spelling: Mutex<HashMap<(String, String), String>>,
    proxy_metrics: bool,
    answer_delay: Option<Duration>,
}

/// Go's message for a body that is not valid JSON.
fn bad_body(body: &[u8], e: &serde_json::Error) -> String {
    let what = if body.iter().all(u8::is_ascii_whitespace) {
        "EOF".to_owned()
    } else if e.is_eof() {
        "unexpected EOF".to_owned()
    } else {
        e.to_string()
    };
    format!("bad request body: {what}")
}

/// Go's name for a JSON value's kind in unmarshal errors.
fn go_kind(v: &Value) -> String {
    match v {
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
        Value::Number(n) => format!("number {n}"),
        Value::Null => "null".into(),
    }
}

fn go_struct(type_name: &str) -> &'static str {
    match type_name {
        "latency" => "LatencyToxic",
        "bandwidth" => "BandwidthToxic",
        "slow_close" => "SlowCloseToxic",
        "timeout" => "TimeoutToxic",
        "reset_peer" => "ResetToxic",
        "slicer" => "SlicerToxic",
        _ => "LimitDataToxic",
    }
}

/// `base` with the known keys of `attrs` applied (unknown keys ignored,
/// `null` keeps the value), or Go's unmarshal error.
fn merge_attributes(base: &ToxicKind, attrs: Option<&Value>) -> Result<ToxicKind, String> {
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    let type_name = base.type_name();
    if let (Some(Value::Object(given)), Some(Value::Object(known))) =
        (attrs, v.get_mut("attributes"))
    {
        for (k, val) in given {
            if !known.contains_key(k) || val.is_null() {
                continue;
            }
            if val.as_u64().is_none() {
                return Err(format!(
                    "bad request body: json: cannot unmarshal {} into Go struct field {}.attributes.{k} of type int64",
                    go_kind(val),
                    go_struct(type_name)
                ));
            }
            known.insert(k.clone(), val.clone());
        }
    } else if let Some(a) = attrs.filter(|a| !a.is_null() && !a.is_object()) {
        return Err(format!(
            "bad request body: json: cannot unmarshal {} into Go value of type {}",
            go_kind(a),
            go_struct(type_name)
        ));
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn toxicity_of(v: &Map<String, Value>) -> Result<Option<f32>, String> {
    match v.get("toxicity") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(1.0) as f32)),
        Some(other) => Err(format!(
            "bad request body: json: cannot unmarshal {} into Go struct field ToxicWrapper.toxicity of type float32",
            go_kind(other)
        )),
    }
}

impl Api {
    pub fn new(engine: Engine) -> Api {
        Api {
            engine,
            spelling: Mutex::new(HashMap::new()),
            proxy_metrics: false,
            answer_delay: None,
        }
    }

    /// In `answer_delay` mode, after a proxy was disabled: wait until its
    /// connections are closed (bounded), then the delay. A deleted proxy's
    /// connections are closed by the engine's disable before it is gone.
    async fn closed_then_delay(&self, proxy: Option<&str>) {
        let Some(delay) = self.answer_delay else {
            return;
        };
        if let Some(p) = proxy {
            let _ = tokio::time::timeout(CLOSE_WAIT, self.engine.wait_for_connections(p, 0)).await;
        }
        tokio::time::sleep(delay).await;
    }

    fn spellings(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.spelling.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn toxic_json(&self, proxy: &str, t: &Toxic) -> Value {
        let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
        if let Some(s) = self.spellings().get(&(proxy.to_owned(), t.name.clone())) {
            v["stream"] = Value::String(s.clone());
        }
        v
    }

    fn proxy_json(&self, p: &ProxyInfo) -> Value {
        let toxics: Vec<Value> = p
            .toxics
            .iter()
            .map(|t| self.toxic_json(&p.name, t))
            .collect();
        json!({
            "name": p.name,
            "listen": p.listen.to_string(),
            "upstream": p.upstream,
            "enabled": p.enabled,
            "Logger": {},
            "toxics": toxics,
        })
    }

    /// Answer one request.
    pub async fn handle(&self, req: &Request) -> Response {
        if req
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("Mozilla/"))
        {
            return Response {
                status: 403,
                content_type: Some(TEXT),
                body: "User agent not allowed\n".into(),
            };
        }
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let m = req.method.as_str();
        match parts.as_slice() {
            ["version"] => match m {
                "GET" => {
                    let v = self.engine.version().await.unwrap_or_default();
                    Response {
                        status: 200,
                        content_type: Some("application/json;charset=utf-8"),
                        body: format!("{{\"version\": {}}}\n", Value::String(v)),
                    }
                }
                _ => Response::empty(405),
            },
            ["reset"] => match m {
                "POST" => {
                    if let Err(e) = self.engine.reset().await {
                        return Response::error(500, &e.to_string());
                    }
                    self.spellings().clear();
                    Response::empty(204)
                }
                _ => Response::empty(405),
            },
            // promhttp's handler, routed for every method.
            ["metrics"] if self.proxy_metrics => Response {
                status: 200,
                content_type: Some("text/plain; version=0.0.4; charset=utf-8"),
                body: super::counters::render(&self.engine.proxy_bytes()),
            },
            ["populate"] => match m {
                "POST" => self.populate(&req.body).await,
                _ => Response::empty(405),
            },
            ["proxies"] => match m {
                "GET" => {
                    let map: Map<String, Value> = self
                        .engine
                        .proxies_info()
                        .iter()
                        .map(|p| (p.name.clone(), self.proxy_json(p)))
                        .collect();
                    Response::json(200, &Value::Object(map))
                }
                "POST" => self.create_proxy(&req.body).await,
                _ => Response::empty(405),
            },
            ["proxies", name] => match m {
                "GET" => match self.engine.proxy(name).await {
                    Ok(p) => Response::json(200, &self.proxy_json(&p)),
                    Err(_) => Response::error(404, "proxy not found"),
                },
                "POST" | "PATCH" => self.update_proxy(name, &req.body).await,
                "DELETE" => match self.engine.delete_proxy(name).await {
                    Ok(()) => {
                        self.spellings().retain(|(p, _), _| p != name);
                        self.closed_then_delay(None).await;
                        Response::empty(204)
                    }
                    Err(_) => Response::error(404, "proxy not found"),
                },
                _ => Response::empty(405),
            },
            ["proxies", name, "toxics"] => match m {
                "GET" => match self.engine.proxy(name).await {
                    Ok(p) => {
                        let v: Vec<Value> =
                            p.toxics.iter().map(|t| self.toxic_json(name, t)).collect();
                        Response::json(200, &Value::Array(v))
                    }
                    Err(_) => Response::error(404, "proxy not found"),
                },
                "POST" => self.create_toxic(name, &req.body).await,
                _ => Response::empty(405),
            },
            ["proxies", name, "toxics", toxic] => match m {
                "GET" => match self.engine.proxy(name).await {
                    Err(_) => Response::error(404, "proxy not found"),
                    Ok(_) => match self.engine.toxic(name, toxic) {
                        Ok(t) => Response::json(200, &self.toxic_json(name, &t)),
                        Err(_) => Response::error(404, "toxic not found"),
                    },
                },
                "POST" | "PATCH" => self.update_toxic(name, toxic, &req.body).await,
                "DELETE" => match self.engine.remove_toxic(name, toxic).await {
                    Ok(()) => {
                        self.spellings()
                            .remove(&((*name).to_owned(), (*toxic).to_owned()));
                        Response::empty(204)
                    }
                    Err(FaultError::NoSuchProxy { .. }) => Response::error(404, "proxy not found"),
                    Err(_) => Response::error(404, "toxic not found"),
                },
                _ => Response::empty(405),
            },
            _ => Response::not_found(),
        }
    }

    /// A proxy description from JSON: name, listen, upstream, enabled.
    fn proxy_spec(v: &Value) -> Result<(String, SocketAddr, String, bool), String> {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err("missing required field: name".into());
        }
        let upstream = v.get("upstream").and_then(Value::as_str).unwrap_or("");
        if upstream.is_empty() {
            return Err("missing required field: upstream".into());
        }
        let listen = v
            .get("listen")
            .and_then(Value::as_str)
            .unwrap_or("127.0.0.1:0");
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| format!("listen address {listen} is not ip:port"))?;
        let enabled = v.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        Ok((name.to_owned(), listen, upstream.to_owned(), enabled))
    }

    async fn create_proxy(&self, body: &[u8]) -> Response {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Response::error(400, &bad_body(body, &e)),
        };
        let (name, listen, upstream, enabled) = match Self::proxy_spec(&v) {
            Ok(s) => s,
            Err(msg) => return Response::error(400, &msg),
        };
        match self
            .engine
            .create_proxy_with(&name, listen, &upstream, enabled)
            .await
        {
            Ok(p) => Response::json(201, &self.proxy_json(&p)),
            Err(e) => fault_response(e),
        }
    }

    async fn update_proxy(&self, name: &str, body: &[u8]) -> Response {
        if self.engine.proxy(name).await.is_err() {
            return Response::error(404, "proxy not found");
        }
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Response::error(400, &bad_body(body, &e)),
        };
        let listen = match v.get("listen").and_then(Value::as_str) {
            Some(l) => match l.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    return Response::error(400, &format!("listen address {l} is not ip:port"))
                }
            },
            None => None,
        };
        let upstream = v
            .get("upstream")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        let enabled = v.get("enabled").and_then(Value::as_bool);
        match self
            .engine
            .update_proxy(name, listen, upstream, enabled)
            .await
        {
            Ok(p) => {
                if enabled == Some(false) {
                    self.closed_then_delay(Some(name)).await;
                }
                Response::json(200, &self.proxy_json(&p))
            }
            Err(e) => fault_response(e),
        }
    }

    async fn populate(&self, body: &[u8]) -> Response {
        // Populate's errors are JSON with "proxies":null and no newline.
        let fail = |status: u16, msg: &str| Response {
            status,
            content_type: Some(JSON),
            body: json!({"error": msg, "status": status, "proxies": null}).to_string(),
        };
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return fail(400, &bad_body(body, &e)),
        };
        let Some(list) = v.as_array() else {
            return fail(
                400,
                &format!(
                    "bad request body: json: cannot unmarshal {} into Go value of type []struct {{ toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }}",
                    go_kind(&v)
                ),
            );
        };
        let mut specs = Vec::new();
        for (i, p) in list.iter().enumerate() {
            match Self::proxy_spec(p) {
                Ok(s) => specs.push(s),
                Err(msg) => return fail(400, &format!("{msg} at proxy {}", i + 1)),
            }
        }
        let mut out = Vec::new();
        for (name, listen, upstream, enabled) in specs {
            if let Ok(old) = self.engine.proxy(&name).await {
                let same = old.upstream == upstream
                    && (old.listen == listen || listen.port() == 0)
                    && old.enabled == enabled;
                if same {
                    out.push(self.proxy_json(&old));
                    continue;
                }
                let _ = self.engine.delete_proxy(&name).await;
                self.spellings().retain(|(p, _), _| *p != name);
            }
            match self
                .engine
                .create_proxy_with(&name, listen, &upstream, enabled)
                .await
            {
                Ok(p) => out.push(self.proxy_json(&p)),
                Err(e) => {
                    let r = fault_response(e);
                    return fail(r.status, &error_message(&r));
                }
            }
        }
        Response::json(201, &json!({ "proxies": out }))
    }

    async fn create_toxic(&self, proxy: &str, body: &[u8]) -> Response {
        if self.engine.proxy(proxy).await.is_err() {
            return Response::error(404, "proxy not found");
        }
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Response::error(400, &bad_body(body, &e)),
        };
        let Some(obj) = v.as_object() else {
            return Response::error(
                400,
                &format!(
                    "bad request body: json: cannot unmarshal {} into Go value of type toxics.ToxicWrapper",
                    go_kind(&v)
                ),
            );
        };
        let spelled = obj
            .get("stream")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("downstream")
            .to_owned();
        let Some(stream) = Stream::parse(&spelled) else {
            return Response::error(
                400,
                "stream was invalid, can be either upstream or downstream",
            );
        };
        let type_name = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let Ok(base) =
            serde_json::from_value::<ToxicKind>(json!({"type": type_name, "attributes": {}}))
        else {
            return Response::error(400, "invalid toxic type");
        };
        let kind = match merge_attributes(&base, obj.get("attributes")) {
            Ok(k) => k,
            Err(msg) => return Response::error(400, &msg),
        };
        let toxicity = match toxicity_of(obj) {
            Ok(t) => t.unwrap_or(1.0),
            Err(msg) => return Response::error(400, &msg),
        };
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{type_name}_{spelled}"));
        let toxic = Toxic::new(kind, stream)
            .named(name.clone())
            .with_toxicity(toxicity);
        match self.engine.add_toxic(proxy, &toxic).await {
            Ok(t) => {
                if spelled != stream.as_str() {
                    self.spellings().insert((proxy.to_owned(), name), spelled);
                }
                Response::json(200, &self.toxic_json(proxy, &t))
            }
            Err(FaultError::ToxicExists { .. }) => Response::error(409, "toxic already exists"),
            Err(e) => fault_response(e),
        }
    }

    async fn update_toxic(&self, proxy: &str, name: &str, body: &[u8]) -> Response {
        if self.engine.proxy(proxy).await.is_err() {
            return Response::error(404, "proxy not found");
        }
        let Ok(old) = self.engine.toxic(proxy, name) else {
            return Response::error(404, "toxic not found");
        };
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Response::error(400, &bad_body(body, &e)),
        };
        let empty = Map::new();
        let obj = v.as_object().unwrap_or(&empty);
        let kind = match merge_attributes(&old.kind, obj.get("attributes")) {
            Ok(k) => k,
            Err(msg) => return Response::error(400, &msg),
        };
        let toxicity = match toxicity_of(obj) {
            Ok(t) => t.unwrap_or(old.toxicity),
            Err(msg) => return Response::error(400, &msg),
        };
        match self.engine.update_toxic(proxy, name, kind, toxicity).await {
            Ok(t) => Response::json(200, &self.toxic_json(proxy, &t)),
            Err(FaultError::NoSuchToxic { .. }) => Response::error(404, "toxic not found"),
            Err(e) => fault_response(e),
        }
    }
}

/// The message inside an error response.
fn error_message(r: &Response) -> String {
    serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// An engine error as Toxiproxy words it.
fn fault_response(e: FaultError) -> Response {
    match e {
        FaultError::NoSuchProxy { .. } => Response::error(404, "proxy not found"),
        FaultError::ProxyExists { .. } => Response::error(409, "proxy already exists"),
        FaultError::NoSuchToxic { .. } => Response::error(404, "toxic not found"),
        FaultError::ToxicExists { .. } => Response::error(409, "toxic already exists"),
        FaultError::InvalidToxic(m) => Response::error(400, &m),
        FaultError::Listen { addr, message } => {
            // Go: "listen tcp 127.0.0.1:26001: bind: address already in use".
            let msg = message
                .split(" (os error")
                .next()
                .unwrap_or(&message)
                .to_lowercase();
            Response::error(500, &format!("listen tcp {addr}: bind: {msg}"))
        }
        FaultError::Api {
            status, message, ..
        } => Response::error(status, &message),
        other => Response::error(500, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_parsed_with_its_headers() {
        let raw = b"PATCH /proxies/a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
        let (req, start) = parse_head(raw).unwrap();
        assert_eq!(req.method, "PATCH");
        assert_eq!(req.path, "/proxies/a");
        assert_eq!(req.header("content-length"), Some("2"));
        assert_eq!(&raw[start..], b"{}");
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n").is_none());
    }

    #[test]
    fn bad_json_is_worded_as_go_words_it() {
        let e = serde_json::from_slice::<Value>(b"{\"a\": ").unwrap_err();
        assert_eq!(
            bad_body(b"{\"a\": ", &e),
            "bad request body: unexpected EOF"
        );
        let e = serde_json::from_slice::<Value>(b"").unwrap_err();
        assert_eq!(bad_body(b"", &e), "bad request body: EOF");
    }

    #[test]
    fn attributes_merge_keeps_omitted_keys_and_rejects_wrong_types() {
        let base = ToxicKind::Latency {
            latency: 1000,
            jitter: 100,
        };
        let merged = merge_attributes(&base, Some(&json!({"latency": 2000, "bogus": 1}))).unwrap();
        assert_eq!(
            merged,
            ToxicKind::Latency {
                latency: 2000,
                jitter: 100
            }
        );
        let e = merge_attributes(&base, Some(&json!({"latency": "5"}))).unwrap_err();
        assert_eq!(e, "bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64");
    }
}

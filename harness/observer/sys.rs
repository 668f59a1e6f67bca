//! EMQX 5 client events on `$SYS`: the observer's second source of
//! offline/online reports (METRICS.md, "observer belief"), next to the
//! status topic. Pure parser; the observer subscribes to [`SUBSCRIPTIONS`]
//! and turns each event into a status of the device with that client id.
//!
//! Topics: `$SYS/brokers/<node>/clients/<clientid>/connected` and
//! `.../disconnected` (the client id is everything between `clients/` and
//! the last level, so one containing `/` still parses).
//!
//! Payloads, as recorded in `tests/fixtures/emqx5-sys-client-events.json`:
//!
//! * The EMQX documentation's examples carry `connack` (connected) and no
//!   `protocol`; the 5.0–5.8 code (`emqx_sys.erl`) sends no `connack`, adds
//!   `protocol` to both events and `connected_at` to `disconnected`. 5.9 adds
//!   `conn_props`, `receive_maximum`, `disconn_props`, `client_attrs`.
//!   So: `clientid` and `ts` are required in both, `connected_at` in
//!   `connected`, `reason` and `disconnected_at` in `disconnected`; every
//!   other documented field is optional, unknown fields are ignored, and
//!   key order does not matter (jiffy encodes an unordered map).
//! * `username` is `"undefined"` (the atom) when the client sent none:
//!   read as `None`.
//! * Times are milliseconds of the broker's wall clock (`ts`,
//!   `connected_at`, `disconnected_at`): for display and ordering on one
//!   node, never mixed with the run clock.
//!
//! Whether a disconnect publishes the will ([`DisconnectReason::will`]),
//! from `emqx_channel:maybe_publish_will_msg/2` (v5.8.9): `discarded`
//! (another connection with `clean_start = true`) and `kicked` publish it at
//! once even with a Will Delay Interval; `takenover` (`clean_start = false`)
//! publishes it only when the delay is 0 — always for MQTT 3.1.1, which has
//! no delay — and otherwise drops it; `tcp_closed` and `keepalive_timeout`
//! publish it at once when the delay is 0, else after the delay; `normal`
//! (a DISCONNECT) does not.

use std::time::Duration;

use serde::Deserialize;

/// What the observer subscribes to on EMQX.
pub const SUBSCRIPTIONS: [&str; 2] = [
    "$SYS/brokers/+/clients/+/connected",
    "$SYS/brokers/+/clients/+/disconnected",
];

/// The root of EMQX's system topics. Brokers refuse clients publishing
/// there (Mosquitto drops it, rumqttd refuses `$` filters), so the tests of
/// the observer's wiring use the same tree under another root.
pub const ROOT: &str = "$SYS";

/// [`SUBSCRIPTIONS`] under `root`.
pub fn subscriptions(root: &str) -> [String; 2] {
    [
        format!("{root}/brokers/+/clients/+/connected"),
        format!("{root}/brokers/+/clients/+/disconnected"),
    ]
}

/// A client event that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{topic}: not an EMQX client event topic ($SYS/brokers/<node>/clients/<clientid>/connected|disconnected)")]
    Topic { topic: String },
    #[error("{topic}: payload is not a client {kind} event: {source}")]
    Payload {
        topic: String,
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("{topic}: payload field clientid is \"{payload}\", the topic names \"{in_topic}\"")]
    ClientId {
        topic: String,
        in_topic: String,
        payload: String,
    },
}

/// Which event a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysKind {
    Connected,
    Disconnected,
}

/// A parsed client event topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysTopic<'a> {
    pub node: &'a str,
    pub clientid: &'a str,
    pub kind: SysKind,
}

/// Read a topic; `None` when it is not a client event.
pub fn parse_topic(topic: &str) -> Option<SysTopic<'_>> {
    parse_topic_in(ROOT, topic)
}

/// [`parse_topic`] for the tree under `root`.
pub fn parse_topic_in<'a>(root: &str, topic: &'a str) -> Option<SysTopic<'a>> {
    let rest = topic.strip_prefix(root)?.strip_prefix("/brokers/")?;
    let (node, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("clients/")?;
    let (clientid, kind) = rest.rsplit_once('/')?;
    let kind = match kind {
        "connected" => SysKind::Connected,
        "disconnected" => SysKind::Disconnected,
        _ => return None,
    };
    (!node.is_empty() && !clientid.is_empty()).then_some(SysTopic {
        node,
        clientid,
        kind,
    })
}

/// Fields both events share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClientInfo {
    pub clientid: String,
    /// `None` when the client sent none (EMQX writes `"undefined"`).
    #[serde(default, deserialize_with = "username")]
    pub username: Option<String>,
    /// The peer's IP, no port.
    #[serde(default)]
    pub ipaddress: Option<String>,
    #[serde(default)]
    pub sockport: Option<u16>,
    /// `"mqtt"` for MQTT clients (5.x code; absent from the documentation's examples).
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub proto_name: Option<String>,
    /// 3 (MQTT 3.1), 4 (3.1.1) or 5.
    #[serde(default)]
    pub proto_ver: Option<u8>,
    /// Broker wall clock, ms.
    pub ts: u64,
}

/// `.../connected`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Connected {
    #[serde(flatten)]
    pub client: ClientInfo,
    /// ms.
    pub connected_at: u64,
    /// Seconds; 0 = none.
    #[serde(default)]
    pub keepalive: u16,
    #[serde(default = "yes")]
    pub clean_start: bool,
    /// Session expiry, seconds.
    #[serde(default)]
    pub expiry_interval: u64,
    /// Only in the documentation's example; the 5.x code sends none.
    #[serde(default)]
    pub connack: Option<u8>,
}

/// `.../disconnected`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Disconnected {
    #[serde(flatten)]
    pub client: ClientInfo,
    pub reason: DisconnectReason,
    /// ms.
    pub disconnected_at: u64,
    /// ms; sent by the 5.x code, absent from the documentation's example.
    #[serde(default)]
    pub connected_at: Option<u64>,
}

fn yes() -> bool {
    true
}

fn username<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let u: Option<String> = Option::deserialize(d)?;
    Ok(u.filter(|u| u != "undefined"))
}

/// Why EMQX says a client went away (`reason` of `disconnected`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum DisconnectReason {
    /// The client sent DISCONNECT.
    Normal,
    /// Kicked by an operator.
    Kicked,
    /// The broker's keepalive check (1.5 × keepalive without a packet).
    KeepaliveTimeout,
    NotAuthorized,
    /// The socket closed without DISCONNECT.
    TcpClosed,
    /// Another connection with the same client id and `clean_start = true`.
    Discarded,
    /// Another connection with the same client id and `clean_start = false`.
    TakenOver,
    InternalError,
    /// Any other reason EMQX reports, kept as sent.
    Other(String),
}

impl From<String> for DisconnectReason {
    fn from(s: String) -> Self {
        match s.as_str() {
            "normal" => DisconnectReason::Normal,
            "kicked" => DisconnectReason::Kicked,
            "keepalive_timeout" => DisconnectReason::KeepaliveTimeout,
            "not_authorized" => DisconnectReason::NotAuthorized,
            "tcp_closed" => DisconnectReason::TcpClosed,
            "discarded" => DisconnectReason::Discarded,
            "takenover" => DisconnectReason::TakenOver,
            "internal_error" => DisconnectReason::InternalError,
            _ => DisconnectReason::Other(s),
        }
    }
}

/// What happens to the will of a connection that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WillFate {
    /// Published now.
    Published,
    /// Published after the Will Delay Interval, unless the client returns.
    Delayed,
    /// Dropped.
    Dropped,
    /// The reason alone does not tell.
    Unknown,
}

impl DisconnectReason {
    /// As EMQX spells it.
    pub fn as_str(&self) -> &str {
        match self {
            DisconnectReason::Normal => "normal",
            DisconnectReason::Kicked => "kicked",
            DisconnectReason::KeepaliveTimeout => "keepalive_timeout",
            DisconnectReason::NotAuthorized => "not_authorized",
            DisconnectReason::TcpClosed => "tcp_closed",
            DisconnectReason::Discarded => "discarded",
            DisconnectReason::TakenOver => "takenover",
            DisconnectReason::InternalError => "internal_error",
            DisconnectReason::Other(s) => s,
        }
    }

    /// Another connection with the same client id ended this one.
    pub fn is_takeover(&self) -> bool {
        matches!(
            self,
            DisconnectReason::Discarded | DisconnectReason::TakenOver
        )
    }

    /// The fate of the will, for a client of `proto_ver` whose will has a
    /// Will Delay Interval of `will_delay` (always 0 before MQTT 5).
    pub fn will(&self, proto_ver: u8, will_delay: Duration) -> WillFate {
        let no_delay = will_delay.is_zero() || proto_ver < 5;
        match self {
            DisconnectReason::Discarded | DisconnectReason::Kicked => WillFate::Published,
            DisconnectReason::TakenOver if no_delay => WillFate::Published,
            DisconnectReason::TakenOver => WillFate::Dropped,
            DisconnectReason::TcpClosed | DisconnectReason::KeepaliveTimeout if no_delay => {
                WillFate::Published
            }
            DisconnectReason::TcpClosed | DisconnectReason::KeepaliveTimeout => WillFate::Delayed,
            DisconnectReason::Normal => WillFate::Dropped,
            _ => WillFate::Unknown,
        }
    }
}

/// One client event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysEvent {
    Connected(Connected),
    Disconnected(Disconnected),
}

impl SysEvent {
    pub fn clientid(&self) -> &str {
        match self {
            SysEvent::Connected(c) => &c.client.clientid,
            SysEvent::Disconnected(d) => &d.client.clientid,
        }
    }

    /// The observer's reading: online after `connected`, offline after
    /// `disconnected`.
    pub fn online(&self) -> bool {
        matches!(self, SysEvent::Connected(_))
    }
}

/// Parse one `$SYS` client event (topic and payload).
pub fn parse(topic: &str, payload: &[u8]) -> Result<SysEvent, SysError> {
    parse_in(ROOT, topic, payload)
}

/// [`parse`] for the tree under `root`.
pub fn parse_in(root: &str, topic: &str, payload: &[u8]) -> Result<SysEvent, SysError> {
    let t = parse_topic_in(root, topic).ok_or_else(|| SysError::Topic {
        topic: topic.to_string(),
    })?;
    let err = |kind, source| SysError::Payload {
        topic: topic.to_string(),
        kind,
        source,
    };
    let ev = match t.kind {
        SysKind::Connected => {
            SysEvent::Connected(serde_json::from_slice(payload).map_err(|e| err("connected", e))?)
        }
        SysKind::Disconnected => SysEvent::Disconnected(
            serde_json::from_slice(payload).map_err(|e| err("disconnected", e))?,
        ),
    };
    if ev.clientid() != t.clientid {
        return Err(SysError::ClientId {
            topic: topic.to_string(),
            in_topic: t.clientid.to_string(),
            payload: ev.clientid().to_string(),
        });
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const FIXTURE: &str = include_str!("../../tests/fixtures/emqx5-sys-client-events.json");

    fn fixture() -> Value {
        serde_json::from_str(FIXTURE).expect("the fixture is JSON")
    }

    const CLIENT: &str = "emqtt-8348fe27a87976ad4db3";

    fn topic(kind: &str) -> String {
        format!("$SYS/brokers/emqx@127.0.0.1/clients/{CLIENT}/{kind}")
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn the_subscriptions_are_the_fixtures_topics_with_wildcards() {
        let f = fixture();
        assert_eq!(subscriptions(ROOT), SUBSCRIPTIONS.map(String::from));
        for (sub, kind) in SUBSCRIPTIONS.iter().zip(["connected", "disconnected"]) {
            let documented = f["topics"][kind].as_str().unwrap();
            assert_eq!(
                documented
                    .replace("${node}", "+")
                    .replace("${clientid}", "+"),
                *sub
            );
        }
    }

    #[test]
    fn topics_name_node_client_and_event_and_others_are_refused() {
        let t = parse_topic("$SYS/brokers/emqx@10.0.0.1/clients/dev/0001/disconnected")
            .expect("a client event");
        assert_eq!(
            (t.node, t.clientid, t.kind),
            ("emqx@10.0.0.1", "dev/0001", SysKind::Disconnected)
        );
        for bad in [
            "$SYS/brokers/emqx@1/clients/dev/subscribed",
            "$SYS/brokers/emqx@1/stats/connections",
            "$SYS/brokers//clients/dev/connected",
            "$SYS/brokers/emqx@1/clients/connected",
            "status/dev-0001",
        ] {
            assert_eq!(parse_topic(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_documented_connected_example_parses_with_its_connack() {
        let ev = parse(&topic("connected"), &bytes(&fixture()["connected"])).unwrap();
        let SysEvent::Connected(c) = ev.clone() else {
            panic!("{ev:?}")
        };
        assert!(ev.online());
        assert_eq!(c.client.clientid, CLIENT);
        assert_eq!(c.client.username.as_deref(), Some("foo"));
        assert_eq!(c.client.ipaddress.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            (c.client.sockport, c.client.proto_ver),
            (Some(1883), Some(4))
        );
        assert_eq!(c.client.proto_name.as_deref(), Some("MQTT"));
        assert_eq!(c.client.protocol, None);
        assert_eq!(
            (c.client.ts, c.connected_at),
            (1625572213873, 1625572213873)
        );
        assert_eq!(
            (c.keepalive, c.clean_start, c.expiry_interval),
            (60, true, 0)
        );
        assert_eq!(c.connack, Some(0));
    }

    #[test]
    fn the_documented_disconnected_example_parses_without_connected_at() {
        let ev = parse(&topic("disconnected"), &bytes(&fixture()["disconnected"])).unwrap();
        let SysEvent::Disconnected(d) = ev.clone() else {
            panic!("{ev:?}")
        };
        assert!(!ev.online());
        assert_eq!(d.reason, DisconnectReason::TcpClosed);
        assert_eq!(d.disconnected_at, 1625572213873);
        assert_eq!(d.connected_at, None);
        assert_eq!(d.client.clientid, CLIENT);
    }

    /// A payload as the 5.0–5.8 code builds it: exactly the fixture's
    /// `code_fields_v5_0_to_v5_8` keys, with the code's types.
    fn as_the_code_sends(kind: &str) -> Value {
        let f = fixture();
        let keys: Vec<&String> = f["code_fields_v5_0_to_v5_8"][kind]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let mut v = serde_json::Map::new();
        for k in keys {
            let value = match k.as_str() {
                "clientid" => json!(CLIENT),
                "username" => json!("undefined"),
                "ipaddress" => json!("192.168.1.7"),
                "sockport" => json!(1883),
                "protocol" => json!("mqtt"),
                "proto_name" => json!("MQTT"),
                "proto_ver" => json!(5),
                "connected_at" => json!(1700000000000u64),
                "ts" => json!(1700000000123u64),
                "keepalive" => json!(30),
                "clean_start" => json!(false),
                "expiry_interval" => json!(7200),
                "reason" => json!("keepalive_timeout"),
                "disconnected_at" => json!(1700000000456u64),
                other => panic!("the fixture lists a field the test does not know: {other}"),
            };
            v.insert(k.clone(), value);
        }
        Value::Object(v)
    }

    #[test]
    fn connected_as_the_5x_code_sends_it_has_protocol_and_no_connack() {
        let ev = parse(&topic("connected"), &bytes(&as_the_code_sends("connected"))).unwrap();
        let SysEvent::Connected(c) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(c.connack, None);
        assert_eq!(c.client.protocol.as_deref(), Some("mqtt"));
        assert_eq!(c.client.username, None, "\"undefined\" is no username");
        assert_eq!(c.client.proto_ver, Some(5));
        assert_eq!(
            (c.keepalive, c.clean_start, c.expiry_interval),
            (30, false, 7200)
        );
        assert_eq!(
            (c.connected_at, c.client.ts),
            (1700000000000, 1700000000123)
        );
    }

    #[test]
    fn disconnected_as_the_5x_code_sends_it_has_connected_at() {
        let ev = parse(
            &topic("disconnected"),
            &bytes(&as_the_code_sends("disconnected")),
        )
        .unwrap();
        let SysEvent::Disconnected(d) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(d.connected_at, Some(1700000000000));
        assert_eq!(d.reason, DisconnectReason::KeepaliveTimeout);
        assert_eq!(d.client.protocol.as_deref(), Some("mqtt"));
        assert_eq!(d.disconnected_at, 1700000000456);
    }

    #[test]
    fn fields_added_in_5_9_are_ignored() {
        let mut v = as_the_code_sends("connected");
        v["conn_props"] = json!({"Session-Expiry-Interval": 7200});
        v["receive_maximum"] = json!(32);
        v["client_attrs"] = json!({});
        assert!(parse(&topic("connected"), &bytes(&v)).is_ok());
        let mut v = as_the_code_sends("disconnected");
        v["disconn_props"] = json!({});
        assert!(parse(&topic("disconnected"), &bytes(&v)).is_ok());
    }

    #[test]
    fn every_documented_reason_reads_and_unknown_ones_are_kept() {
        let f = fixture();
        let reasons = f["takeover_discard"]["reasons"]["other_documented_reasons"]
            .as_array()
            .unwrap();
        for r in reasons {
            let mut v = as_the_code_sends("disconnected");
            v["reason"] = r.clone();
            let Ok(SysEvent::Disconnected(d)) = parse(&topic("disconnected"), &bytes(&v)) else {
                panic!("{r}")
            };
            assert!(
                !matches!(d.reason, DisconnectReason::Other(_)),
                "{r} is documented"
            );
        }
        let r = DisconnectReason::from("sock_error".to_string());
        assert_eq!(r, DisconnectReason::Other("sock_error".into()));
        assert_eq!(r.will(4, Duration::ZERO), WillFate::Unknown);
    }

    #[test]
    fn takeover_and_discard_fire_the_will_as_the_emqx_code_does() {
        let delay = Duration::from_secs(10);
        let discarded = DisconnectReason::from("discarded".to_string());
        let takenover = DisconnectReason::from("takenover".to_string());
        assert!(discarded.is_takeover() && takenover.is_takeover());
        // discarded: always, at once, even with a will delay.
        assert_eq!(discarded.will(5, delay), WillFate::Published);
        assert_eq!(discarded.will(4, Duration::ZERO), WillFate::Published);
        // takenover: only without a delay; MQTT 3.1.1 has none; 3.1 always.
        assert_eq!(takenover.will(4, Duration::ZERO), WillFate::Published);
        assert_eq!(takenover.will(5, Duration::ZERO), WillFate::Published);
        assert_eq!(takenover.will(5, delay), WillFate::Dropped);
        assert_eq!(takenover.will(3, delay), WillFate::Published);
        // keepalive expiry and a closed socket: at once, or after the delay.
        let ka = DisconnectReason::KeepaliveTimeout;
        assert_eq!(ka.will(4, Duration::ZERO), WillFate::Published);
        assert_eq!(ka.will(5, delay), WillFate::Delayed);
        assert_eq!(
            DisconnectReason::TcpClosed.will(5, delay),
            WillFate::Delayed
        );
        assert_eq!(
            DisconnectReason::Normal.will(4, Duration::ZERO),
            WillFate::Dropped
        );
        assert!(!DisconnectReason::TcpClosed.is_takeover());
    }

    #[test]
    fn broken_payloads_name_the_topic_and_the_field() {
        let mut v = as_the_code_sends("disconnected");
        v.as_object_mut().unwrap().remove("ts");
        let e = parse(&topic("disconnected"), &bytes(&v)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&topic("disconnected")) && msg.contains("`ts`"),
            "{msg}"
        );

        let mut v = as_the_code_sends("connected");
        v["keepalive"] = json!("sixty");
        let msg = parse(&topic("connected"), &bytes(&v))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("connected event") && msg.contains("sixty"),
            "{msg}"
        );

        let msg = parse(&topic("connected"), b"not json")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&topic("connected")), "{msg}");

        let other = "$SYS/brokers/n/clients/someone-else/connected";
        let e = parse(other, &bytes(&as_the_code_sends("connected"))).unwrap_err();
        assert!(matches!(e, SysError::ClientId { .. }), "{e}");
        assert!(e.to_string().contains("someone-else"), "{e}");

        let e = parse("status/dev-0001", b"{}").unwrap_err();
        assert!(matches!(e, SysError::Topic { .. }), "{e}");
    }
}

//! Scenario files: what a run does, as data.
//!
//! A scenario is TOML (see `scenarios/*.toml` and the README). Loading is
//! two-phase and free of I/O beyond reading the file: [`load`] parses into
//! the types below (serde) and checks every rule ([`check`]); each mistake
//! is a [`Problem`] of a [`ScenarioError`] naming file, line, column and
//! field path. [`locate`] and [`error_at`] let the runner report checks of
//! its own (those that depend on the chosen broker) the same way. [`lint`]
//! warns about legal but weak client configurations, and [`slos`] parses
//! the `[slo]` table. The runner then resolves a valid scenario into a plan
//! (`crate::plan`).
//!
//! [`backend`] parses the broker and fault backend strings (`[broker]
//! backend`, `--broker`, …) for the loader and the runner alike. Every
//! duration, count, rate and length is bounded (`crate::limits`), so bad
//! input is refused here rather than panicking or running away later.
//!
//! Durations are human strings (`"500ms"`, `"30s"`, `"72h"`); "off" is
//! `None`, written `"off"` in the file, never `0`.

pub mod backend;
pub mod duration;
mod lint;
mod load;
pub mod slo;
mod validate;
pub mod weather;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use lint::{lint, Lint};
pub use load::{error_at, load, load_str, locate, Problem, ScenarioError};
pub use slo::{figure_kind, slos, FigureKind, Slo, SloOp};
pub use validate::{check, Issue};

#[cfg(test)]
pub(crate) use validate::tests as validate_tests;

/// One scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// How long devices publish and the timeline runs (the drain comes after).
    #[serde(with = "duration::required")]
    pub duration: Duration,
    /// Seeds every random choice (jitter, toxicity, which devices crash).
    #[serde(default)]
    pub seed: u64,
    /// Time after the run for queued messages to arrive. Default:
    /// 2 × the longest reconnect backoff + 5 s (METRICS.md).
    #[serde(default, with = "duration::optional")]
    pub drain: Option<Duration>,
    /// Interval of the time series (histogram logs, counters). Default 60 s.
    #[serde(default = "default_interval", with = "duration::required")]
    pub interval: Duration,
    /// How long a device must be unavailable before an offline report of
    /// it is true: one yardstick for every profile (METRICS.md), the time
    /// after which the fleet's operators want an alarm. Default 30 s.
    #[serde(default = "default_min_outage", with = "duration::required")]
    pub min_outage: Duration,
    /// Grace after a reconnect before a still-open offline episode is stale.
    #[serde(default = "default_settle", with = "duration::required")]
    pub settle: Duration,
    /// How late a fault (or its heal) may be confirmed by its backend after
    /// its scheduled time before the run is `error` (METRICS.md). Default 1 s.
    #[serde(default = "default_fault_tolerance", with = "duration::required")]
    pub fault_tolerance: Duration,
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub faults: FaultsSection,
    pub profiles: BTreeMap<String, Profile>,
    pub fleets: Vec<Fleet>,
    #[serde(default)]
    pub timeline: Vec<FaultSpec>,
    /// Field weather: every device of a group its own random faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weather: Vec<weather::Weather>,
    /// Service-level objectives: figure (optionally `profile.figure`) → limit,
    /// e.g. `lost_after_ack = "= 0"`, `"recommended.reconnect_after_heal.p99" = "<= 15s"`.
    #[serde(default)]
    pub slo: BTreeMap<String, String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_min_outage() -> Duration {
    Duration::from_secs(30)
}

fn default_settle() -> Duration {
    Duration::from_secs(5)
}

fn default_fault_tolerance() -> Duration {
    Duration::from_secs(1)
}

/// `[broker]`: which broker and how it is set up. `--broker` overrides `backend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// `embedded` (default), `mosquitto`, `emqx[=IMAGE:TAG]`,
    /// `mosquitto-container[=IMAGE:TAG]`, `docker=CONTAINER@HOST:PORT`, or
    /// `tcp://HOST:PORT` / `mqtt://HOST:PORT`.
    #[serde(default)]
    pub backend: Option<String>,
    /// Sessions and queued messages survive restarts and kills.
    #[serde(default)]
    pub persistence: bool,
}

/// `[faults]`: which fault backend and where its proxies sit. The command
/// line overrides each field (`--faults`, `--proxy-upstream`,
/// `--proxy-ports`, `--docker-network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultsSection {
    /// `embedded` (default), `toxiproxy=http://HOST:PORT`, or
    /// `toxiproxy-container[=IMAGE]` (started for the run).
    #[serde(default)]
    pub backend: Option<String>,
    /// `HOST:PORT` of the broker as Toxiproxy reaches it, when that is not
    /// the harness's own address of the broker (`emqx:1883` from a compose
    /// network). Default: the broker's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// `FIRST-LAST`: a Toxiproxy in another network (compose) publishes
    /// these ports under the same numbers on its API host; proxies listen on
    /// them and devices connect there. Default: `127.0.0.1:0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_ports: Option<String>,
    /// An existing Docker network for `toxiproxy-container` to join (a
    /// compose network); default: a network made for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// A client configuration under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// MQTT keepalive; `"off"` sends keepalive 0 (no pings at all).
    #[serde(with = "duration::optional_required_key")]
    pub keepalive: Option<Duration>,
    /// A PINGREQ with no PINGRESP within this time drops the connection.
    /// `"off"`: only the library's own check (rumqttc: the next keepalive tick).
    #[serde(default, with = "duration::optional")]
    pub ping_timeout: Option<Duration>,
    #[serde(default = "default_connect_timeout", with = "duration::required")]
    pub connect_timeout: Duration,
    /// Automatic reconnection; `reconnect = "off"` leaves a device down
    /// after its first connection loss.
    #[serde(default = "default_reconnect", with = "reconnect_serde")]
    pub reconnect: Option<Reconnect>,
    #[serde(default = "default_true")]
    pub clean_session: bool,
    /// Subscribe again after a reconnect whose CONNACK says no session.
    #[serde(default = "default_true")]
    pub resubscribe: bool,
    #[serde(default)]
    pub client_id: ClientIdStrategy,
    #[serde(default)]
    pub will: Option<Will>,
    /// Publish a retained `online` on the will topic after every connect.
    #[serde(default)]
    pub online_republish: bool,
    /// Per-stream QoS, overriding the fleet's stream QoS by stream name.
    #[serde(default)]
    pub qos: BTreeMap<String, u8>,
    /// Per command, by name: the QoS the device subscribes to it at
    /// (default: the command's QoS). Lower than the QoS the backend
    /// publishes at, the broker delivers at the lower one (`downgraded`,
    /// and a QoS 0 subscription loses commands across a broken link).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subscribe_qos: BTreeMap<String, u8>,
    #[serde(default)]
    pub ack: AckPolicy,
    /// rumqttc's in-flight window (outgoing QoS ≥ 1 publishes not yet acked).
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// The MQTT protocol level: 4 (MQTT 3.1.1, the default) or 5.
    #[serde(default = "default_protocol", skip_serializing_if = "is_protocol_4")]
    pub protocol: u8,
    /// MQTT 5: how long the broker keeps the session after the connection
    /// ends (whole seconds; `"never"` for 0xFFFFFFFF, kept for good). Absent:
    /// 0, the session ends with the connection, whatever `clean_session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expiry: Option<SessionExpiry>,
    /// MQTT 5: the Receive Maximum the client announces (QoS ≥ 1 publishes
    /// the broker may have unacknowledged towards it; absent: 65 535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_maximum: Option<u16>,
    /// What the profile is for: `"pass"` (the default: a configuration to
    /// ship, every SLO on it must hold) or `{ fail = ["zombie_undetected"] }`
    /// (a known-bad baseline: each named figure's SLOs must be breached, the
    /// rest must hold). The run passes when every profile behaves as
    /// expected.
    #[serde(
        default,
        with = "expect_serde",
        skip_serializing_if = "Expect::is_pass"
    )]
    pub expect: Expect,
}

/// What a profile is expected to show ([`Profile::expect`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// Every SLO on the profile holds.
    #[default]
    Pass,
    /// The SLOs on these figures (`figure`, `figure.stat` or
    /// `commands.figure`, as the profile's `[slo]` keys write them) are
    /// breached: the mistake shows where it should.
    Fail(Vec<String>),
}

impl Expect {
    pub fn is_pass(&self) -> bool {
        matches!(self, Expect::Pass)
    }

    /// The named figures of an expected failure (empty for `Pass`).
    pub fn failing(&self) -> &[String] {
        match self {
            Expect::Pass => &[],
            Expect::Fail(f) => f,
        }
    }

    /// Whether an SLO of this profile on `figure` (with `stat`) is expected
    /// to be breached: its figure is named with or without the statistic.
    pub fn breaches(&self, figure: &str, stat: Option<&str>) -> bool {
        self.failing()
            .iter()
            .any(|named| Expect::names(named, figure, stat))
    }

    /// Whether `named` (as an `expect` list writes it) names an SLO on
    /// `figure` with `stat`: the figure alone covers every statistic.
    pub fn names(named: &str, figure: &str, stat: Option<&str>) -> bool {
        named == figure || stat.is_some_and(|s| named == format!("{figure}.{s}"))
    }
}

mod expect_serde {
    //! `expect = "pass"` or `expect = { fail = ["figure", …] }`, with a
    //! message that shows the table form when `"fail"` is written alone.
    use super::Expect;
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Expect, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fail<'a> {
            fail: &'a [String],
        }
        match v {
            Expect::Pass => "pass".serialize(s),
            Expect::Fail(f) => Fail { fail: f }.serialize(s),
        }
    }

    struct PassOrFail;

    impl<'de> Visitor<'de> for PassOrFail {
        type Value = Expect;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("\"pass\" or a table { fail = [\"figure\", …] }")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            match s.trim() {
                "pass" => Ok(Expect::Pass),
                "fail" => Err(E::custom(
                    "name the figure(s) the mistake must show: expect = { fail = [\"zombie_undetected\"] }",
                )),
                other => Err(E::custom(format!(
                    "expected \"pass\" or {{ fail = [\"figure\", …] }}, found \"{other}\""
                ))),
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fail: Option<Vec<String>> = None;
            while let Some(key) = map.next_key::<String>()? {
                if key != "fail" {
                    return Err(de::Error::custom(format!(
                        "unknown field `{key}` of expect; the one field is `fail` (the figures the mistake must show)"
                    )));
                }
                fail = Some(map.next_value()?);
            }
            Ok(Expect::Fail(fail.unwrap_or_default()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Expect, D::Error> {
        d.deserialize_any(PassOrFail)
    }
}

fn default_protocol() -> u8 {
    4
}

fn is_protocol_4(p: &u8) -> bool {
    *p == 4
}

/// MQTT 5's Session Expiry Interval: seconds, or kept for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionExpiry {
    After(Duration),
    Never,
}

impl SessionExpiry {
    /// The property's value: whole seconds, 0xFFFFFFFF for never.
    /// Validation keeps `After` in whole seconds below that.
    pub fn seconds(self) -> u32 {
        match self {
            SessionExpiry::After(d) => d.as_secs().min(u64::from(u32::MAX - 1)) as u32,
            SessionExpiry::Never => u32::MAX,
        }
    }

    /// How long the session outlives its connection (`None`: for good).
    pub fn duration(self) -> Option<Duration> {
        match self {
            SessionExpiry::After(d) => Some(d),
            SessionExpiry::Never => None,
        }
    }
}

impl Serialize for SessionExpiry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SessionExpiry::After(d) => s.serialize_str(&duration::format(*d)),
            SessionExpiry::Never => s.serialize_str("never"),
        }
    }
}

impl<'de> Deserialize<'de> for SessionExpiry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "never" {
            return Ok(SessionExpiry::Never);
        }
        duration::parse(&s)
            .map(SessionExpiry::After)
            .map_err(|e| serde::de::Error::custom(format!("{e} (or \"never\")")))
    }
}

fn default_true() -> bool {
    true
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_inflight() -> u16 {
    100
}

fn default_reconnect() -> Option<Reconnect> {
    Some(Reconnect::default())
}

/// Reconnect backoff: the first attempt after a loss waits `initial`, each
/// next one doubles, capped at `max`, each spread by ± `jitter` (a fraction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    #[serde(with = "duration::required")]
    pub initial: Duration,
    #[serde(with = "duration::required")]
    pub max: Duration,
    #[serde(default)]
    pub jitter: f64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            jitter: 0.2,
        }
    }
}

mod reconnect_serde {
    //! `reconnect = "off"` or `reconnect = { initial = …, max = …, jitter = … }`.
    //!
    //! A visitor rather than an untagged enum, so a mistake inside the table
    //! keeps its own message and position ("invalid duration …" at the value)
    //! instead of "data did not match any variant".
    use super::Reconnect;
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Reconnect>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => "off".serialize(s),
            Some(r) => r.serialize(s),
        }
    }

    struct OffOrTable;

    impl<'de> Visitor<'de> for OffOrTable {
        type Value = Option<Reconnect>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("\"off\" or a table { initial, max, jitter }")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.trim() == "off" {
                Ok(None)
            } else {
                Err(E::custom(format!(
                    "expected \"off\" or a table {{ initial, max, jitter }}, found \"{s}\""
                )))
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Reconnect::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Reconnect>, D::Error> {
        d.deserialize_any(OffOrTable)
    }
}

/// How client ids are chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientIdStrategy {
    /// One id per device (`<device name>`).
    #[default]
    Unique,
    /// Every device of the profile uses this one id (the client-id-conflict mistake).
    Fixed(String),
}

/// The Last Will.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Will {
    /// Template: `{device}`, `{group}`, `{fleet}` are replaced.
    pub topic: String,
    #[serde(default = "default_offline")]
    pub payload: String,
    #[serde(default)]
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    /// MQTT 5's Will Delay Interval (whole seconds): the broker publishes
    /// the will only if the device is still away this long after its
    /// connection ended (or at once when its session ends first).
    #[serde(
        default,
        with = "duration::optional_absent",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
}

fn default_offline() -> String {
    "offline".into()
}

/// Whether and how the application waits for the broker's ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckPolicy {
    /// `false`: fire and forget — the app counts a message as sent when it
    /// hands it to the client (outcome `unawaited`).
    #[serde(default = "default_true")]
    pub wait: bool,
    #[serde(default = "default_ack_timeout", with = "duration::required")]
    pub timeout: Duration,
    /// Publishes again (same seq) after a timeout, this many times.
    #[serde(default)]
    pub retries: u32,
}

fn default_ack_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for AckPolicy {
    fn default() -> Self {
        AckPolicy {
            wait: true,
            timeout: default_ack_timeout(),
            retries: 0,
        }
    }
}

/// A group of identical devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Device names are `<name>-<index>` (index from 0, 4 digits).
    pub name: String,
    pub count: u32,
    pub profile: String,
    /// The device group faults target; one fault proxy per group.
    /// Default: the fleet's name.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub streams: Vec<StreamSpec>,
    #[serde(default)]
    pub commands: Vec<CommandSpec>,
}

impl Fleet {
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }
}

/// Telemetry a device publishes at a fixed rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    /// Template: `{device}`, `{group}`, `{fleet}`, `{stream}`.
    pub topic: String,
    #[serde(default = "default_qos1")]
    pub qos: u8,
    /// Messages per second per device.
    pub rate: f64,
    /// Bytes per payload, header included (padded; never truncated).
    #[serde(default = "default_payload_size")]
    pub payload_size: usize,
    /// The QoS the harness's collector subscribes to the stream at: 2 (the
    /// default: every message arrives at the QoS it was published at) or 1
    /// (QoS 2 telemetry arrives at QoS 1: `downgraded`, the backend side of
    /// "subscribe at a lower QoS than you publish"). Never 0: a QoS 0
    /// delivery to the collector could lose messages the report would
    /// charge to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_qos: Option<u8>,
}

/// The collector's QoS when a stream sets none.
pub const COLLECTOR_QOS: u8 = 2;

impl StreamSpec {
    /// The QoS the collector subscribes to this stream at: its
    /// `collector_qos`, else [`COLLECTOR_QOS`].
    pub fn collector_subscription(&self) -> u8 {
        self.collector_qos.unwrap_or(COLLECTOR_QOS)
    }
}

fn default_qos1() -> u8 {
    1
}

fn default_payload_size() -> usize {
    64
}

/// Commands the backend (the observer side) sends to every device of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    pub name: String,
    /// Template: `{device}`, `{group}`, `{fleet}`, `{stream}`.
    pub topic: String,
    #[serde(default = "default_qos1")]
    pub qos: u8,
    /// Commands per second per device.
    pub rate: f64,
    #[serde(default = "default_payload_size")]
    pub payload_size: usize,
}

/// One entry of the timeline.
///
/// No `deny_unknown_fields` here: serde cannot combine it with `flatten` (it
/// would refuse `kind` itself). `FaultKind` denies unknown keys of struct
/// kinds, and the loader reports keys that no kind consumed (see `load.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Start, from the run's start.
    #[serde(with = "duration::required")]
    pub at: Duration,
    /// How long it lasts. Required except for faults that are instant.
    #[serde(default, with = "duration::optional")]
    pub duration: Option<Duration>,
    /// The device group it hits; default every group.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl FaultSpec {
    /// When it heals: `at + duration` (saturating, for unchecked input).
    pub fn end(&self) -> Duration {
        self.at.saturating_add(self.duration.unwrap_or_default())
    }
}

/// Which direction(s) a network fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StreamSel {
    Upstream,
    Downstream,
    #[default]
    Both,
}

/// Every fault the harness can inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Toxiproxy `latency`.
    Latency {
        #[serde(with = "duration::required")]
        latency: Duration,
        #[serde(default, with = "duration::required_or_zero")]
        jitter: Duration,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Toxiproxy `bandwidth`, in KB/s.
    Bandwidth {
        rate: u64,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Bytes dropped, TCP open: Toxiproxy `timeout` with timeout 0.
    Blackhole {
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Ours, beyond Toxiproxy: bytes dropped both ways and the broker's close
    /// not passed on, so only the client's own keepalive can notice.
    HalfOpen,
    /// Ours, beyond Toxiproxy: a cable cut. Bytes dropped both ways and
    /// *neither* side's close passed on, so only keepalives on each side can
    /// notice; at the heal, a connection one side of which closed meanwhile
    /// is closed on the other.
    Cut,
    /// Proxy disabled: open connections closed, new ones refused.
    LinkDown,
    /// Toxiproxy `reset_peer`.
    ResetPeer {
        #[serde(default, with = "duration::required_or_zero")]
        timeout: Duration,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Toxiproxy `slow_close`.
    SlowClose {
        #[serde(with = "duration::required")]
        delay: Duration,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Toxiproxy `slicer`.
    Slicer {
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(with = "duration::required")]
        delay: Duration,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// Toxiproxy `limit_data`.
    LimitData {
        bytes: u64,
        #[serde(default)]
        stream: StreamSel,
        #[serde(default)]
        toxicity: Option<f32>,
    },
    /// The link goes down for `down`, up for `up`, repeatedly, for the
    /// fault's duration.
    Flapping {
        #[serde(with = "duration::required")]
        down: Duration,
        #[serde(with = "duration::required")]
        up: Duration,
    },
    /// Graceful stop, down for the fault's duration (0 if none), start.
    BrokerRestart,
    /// SIGKILL, down for the fault's duration (0 if none), start.
    BrokerKill,
    /// SIGSTOP for the fault's duration, then SIGCONT.
    BrokerPause,
    /// The broker container cut off its Docker network for the fault's
    /// duration (`docker network disconnect`, then `connect`); container
    /// brokers only. Through the published port the devices' connections are
    /// closed and new ones refused, while the broker notices nothing until
    /// its keepalive runs out.
    BrokerPartition,
    /// `devices` devices of the target group abort with no DISCONNECT (the
    /// will fires); they start again after the fault's duration, or never
    /// when it has none.
    DeviceCrash {
        #[serde(default = "default_one")]
        devices: u32,
    },
    /// A second client takes over the client id of `devices` devices of the
    /// target group for the fault's duration.
    ClientIdConflict {
        #[serde(default = "default_one")]
        devices: u32,
    },
}

/// A fault kind's name, as the timeline, the history and the reports write
/// it (`link_down`, `broker_kill`, …): what a fault event or record says it
/// was, without the kind's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultName {
    Latency,
    Bandwidth,
    Blackhole,
    HalfOpen,
    Cut,
    LinkDown,
    ResetPeer,
    SlowClose,
    Slicer,
    LimitData,
    Flapping,
    BrokerRestart,
    BrokerKill,
    BrokerPause,
    BrokerPartition,
    DeviceCrash,
    ClientIdConflict,
}

/// What a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// A group's link to the broker (a proxy).
    Link,
    /// The broker itself: every device.
    Broker,
    /// Some devices of a group (their processes, their client ids).
    Device,
}

impl FaultName {
    pub const ALL: [FaultName; 17] = [
        FaultName::Latency,
        FaultName::Bandwidth,
        FaultName::Blackhole,
        FaultName::HalfOpen,
        FaultName::Cut,
        FaultName::LinkDown,
        FaultName::ResetPeer,
        FaultName::SlowClose,
        FaultName::Slicer,
        FaultName::LimitData,
        FaultName::Flapping,
        FaultName::BrokerRestart,
        FaultName::BrokerKill,
        FaultName::BrokerPause,
        FaultName::BrokerPartition,
        FaultName::DeviceCrash,
        FaultName::ClientIdConflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultName::Latency => "latency",
            FaultName::Bandwidth => "bandwidth",
            FaultName::Blackhole => "blackhole",
            FaultName::HalfOpen => "half_open",
            FaultName::Cut => "cut",
            FaultName::LinkDown => "link_down",
            FaultName::ResetPeer => "reset_peer",
            FaultName::SlowClose => "slow_close",
            FaultName::Slicer => "slicer",
            FaultName::LimitData => "limit_data",
            FaultName::Flapping => "flapping",
            FaultName::BrokerRestart => "broker_restart",
            FaultName::BrokerKill => "broker_kill",
            FaultName::BrokerPause => "broker_pause",
            FaultName::BrokerPartition => "broker_partition",
            FaultName::DeviceCrash => "device_crash",
            FaultName::ClientIdConflict => "client_id_conflict",
        }
    }

    /// The name written `s`, if it is one.
    pub fn parse(s: &str) -> Option<FaultName> {
        FaultName::ALL.into_iter().find(|n| n.as_str() == s)
    }

    pub fn target(self) -> FaultTarget {
        match self {
            FaultName::BrokerRestart
            | FaultName::BrokerKill
            | FaultName::BrokerPause
            | FaultName::BrokerPartition => FaultTarget::Broker,
            FaultName::DeviceCrash | FaultName::ClientIdConflict => FaultTarget::Device,
            _ => FaultTarget::Link,
        }
    }
}

impl std::fmt::Display for FaultName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_one() -> u32 {
    1
}

impl FaultKind {
    /// The name of this kind, typed.
    pub fn id(&self) -> FaultName {
        match self {
            FaultKind::Latency { .. } => FaultName::Latency,
            FaultKind::Bandwidth { .. } => FaultName::Bandwidth,
            FaultKind::Blackhole { .. } => FaultName::Blackhole,
            FaultKind::HalfOpen => FaultName::HalfOpen,
            FaultKind::Cut => FaultName::Cut,
            FaultKind::LinkDown => FaultName::LinkDown,
            FaultKind::ResetPeer { .. } => FaultName::ResetPeer,
            FaultKind::SlowClose { .. } => FaultName::SlowClose,
            FaultKind::Slicer { .. } => FaultName::Slicer,
            FaultKind::LimitData { .. } => FaultName::LimitData,
            FaultKind::Flapping { .. } => FaultName::Flapping,
            FaultKind::BrokerRestart => FaultName::BrokerRestart,
            FaultKind::BrokerKill => FaultName::BrokerKill,
            FaultKind::BrokerPause => FaultName::BrokerPause,
            FaultKind::BrokerPartition => FaultName::BrokerPartition,
            FaultKind::DeviceCrash { .. } => FaultName::DeviceCrash,
            FaultKind::ClientIdConflict { .. } => FaultName::ClientIdConflict,
        }
    }

    /// The scenario name of this kind (`blackhole`, `broker_kill`, …).
    pub fn name(&self) -> &'static str {
        self.id().as_str()
    }

    /// Faults that act on the broker process rather than on a group's link.
    pub fn is_broker_fault(&self) -> bool {
        matches!(
            self,
            FaultKind::BrokerRestart
                | FaultKind::BrokerKill
                | FaultKind::BrokerPause
                | FaultKind::BrokerPartition
        )
    }
}

#[cfg(test)]
mod fault_name_tests {
    use super::FaultName;

    #[test]
    fn every_name_is_written_as_the_timeline_writes_it_and_parses_back() {
        let mut parsed = 0;
        for n in FaultName::ALL {
            let json = serde_json::to_string(&n).unwrap();
            assert_eq!(json, format!("\"{}\"", n.as_str()));
            assert_eq!(serde_json::from_str::<FaultName>(&json).unwrap(), n);
            assert_eq!(FaultName::parse(n.as_str()), Some(n));
            // The timeline accepts the same word as a kind.
            let toml = format!("at = \"1s\"\nkind = \"{n}\"");
            if let Ok(spec) = toml::from_str::<super::FaultSpec>(&toml) {
                assert_eq!(spec.kind.id(), n);
                parsed += 1;
            }
        }
        // Those with no required setting: half_open, cut, link_down, the four
        // broker faults, device_crash, client_id_conflict, blackhole.
        assert!(parsed >= 9, "{parsed}");
        assert_eq!(FaultName::parse("mosquito"), None);
    }
}

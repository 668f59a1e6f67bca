//! The one shared history of a run.
//!
//! Devices, the observer and the fault scheduler each append [`Event`]s,
//! stamped on the run clock, to one bounded channel; one aggregator task owns
//! the ledger and the recorder and folds the events in (jepsen's history,
//! without keeping it: memory stays bounded by what is outstanding).
//!
//! The three views of METRICS.md map onto the variants: ground truth is
//! [`FaultEvent`] and the `Crashed`/`Restarted` device events; client belief
//! is the device's `Connected`/`ConnectionLost`; observer belief is
//! [`ObserverEvent`].

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;

/// Index of a device in the plan (0-based, over all fleets).
pub type DeviceId = u32;
/// Index of a telemetry stream or command stream within its fleet.
pub type StreamId = u16;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Device → collector.
    Telemetry,
    /// Backend → device.
    Command,
}

/// Identity of one message: gapless `seq` per (device, direction, stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId {
    pub device: DeviceId,
    pub direction: Direction,
    pub stream: StreamId,
    pub seq: u64,
}

/// Everything that happens in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Event {
    Device {
        at: Nanos,
        device: DeviceId,
        what: DeviceEvent,
    },
    Observer {
        at: Nanos,
        what: ObserverEvent,
    },
    Fault {
        at: Nanos,
        what: FaultEvent,
    },
    /// The harness's own health: something that makes the run unable to
    /// vouch for its figures (METRICS.md, Verdicts; [`crate::health`]).
    Harness {
        at: Nanos,
        cause: crate::health::Cause,
        message: String,
    },
}

impl Event {
    pub fn at(&self) -> Nanos {
        match self {
            Event::Device { at, .. }
            | Event::Observer { at, .. }
            | Event::Fault { at, .. }
            | Event::Harness { at, .. } => *at,
        }
    }
}

/// Why a client's connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    /// Our ping timeout: PINGREQ sent, no PINGRESP in time.
    PingTimeout,
    /// The library's own keepalive check (rumqttc: previous PINGRESP missing).
    KeepaliveMissed,
    /// The socket was closed or reset by the other side.
    Closed,
    /// MQTT 5: the broker sent DISCONNECT with this reason code (0x8E
    /// session taken over, 0x8D keep alive timeout, 0x8B shutting down…).
    ServerDisconnect { reason: u8 },
    /// Any other I/O or protocol error (text kept for the report).
    Error(String),
}

/// A publisher's side of one message (client belief about a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    /// PUBACK / PUBCOMP seen.
    Acked,
    /// Error or ack timeout after the profile's retries.
    Failed,
    /// QoS 0, or a profile that does not wait for the ack.
    Unawaited,
}

/// Client side events of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// A TCP/MQTT connection attempt starts.
    ConnectAttempt,
    /// CONNACK accepted: client believes it is online from here.
    Connected { session_present: bool },
    /// An attempt failed before CONNACK.
    ConnectFailed { reason: String },
    /// The client noticed its connection is gone (client belief: offline).
    ConnectionLost { cause: LossCause },
    /// SUBACK for a command subscription, with the granted QoS (0x80 = refused).
    Subscribed {
        stream: StreamId,
        asked: u8,
        granted: u8,
    },
    /// The application handed a message to the client (the first attempt, or
    /// a retry when `attempt > 0`). `t_intended` is the schedule slot.
    Published {
        stream: StreamId,
        seq: u64,
        t_intended: Nanos,
        qos: u8,
        attempt: u32,
    },
    /// The final publisher outcome of a message.
    Outcome {
        stream: StreamId,
        seq: u64,
        outcome: PublishOutcome,
        /// Time from the first hand-over to the ack (acked only).
        ack_latency_ns: Option<u64>,
    },
    /// MQTT 5: the broker's PUBACK, PUBREC or PUBCOMP of a telemetry
    /// message carried a reason code other than success (0x10 no matching
    /// subscribers; ≥ 0x80 a refusal, whose outcome is then `failed`).
    AckReason {
        stream: StreamId,
        seq: u64,
        /// `PUBACK`, `PUBREC` or `PUBCOMP`.
        packet: String,
        reason: u8,
    },
    /// A command arrived at the device.
    CommandReceived {
        stream: StreamId,
        seq: u64,
        t_intended: Nanos,
        qos: u8,
        dup: bool,
    },
    /// Ground truth: the harness aborted the device (no DISCONNECT).
    Crashed,
    /// Ground truth: the harness started the device again.
    Restarted,
    /// Ground truth: a `client_id_conflict` fault's intruder got its
    /// CONNACK with this device's client id (the broker takes the id from
    /// whoever held it).
    IntruderConnected,
}

/// What the observer (monitoring side, straight to the broker) sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ObserverEvent {
    /// The observer's own connection is up (observation starts).
    Connected,
    /// The observer's own connection is down (what happens now is unobserved).
    Disconnected,
    /// A collector received a telemetry message.
    Received {
        device: DeviceId,
        stream: StreamId,
        seq: u64,
        t_intended: Nanos,
        qos: u8,
        dup: bool,
    },
    /// A device's status topic changed (will `offline`, retained `online`),
    /// or `$SYS` connected/disconnected on EMQX.
    Status {
        device: DeviceId,
        online: bool,
        /// `will`, `retained`, `sys`…
        via: String,
    },
    /// An EMQX `$SYS` client event of one of the fleet's client ids
    /// (`device`: `None` when several devices share the id).
    Sys {
        client_id: String,
        device: Option<DeviceId>,
        online: bool,
        /// The `disconnected` event's reason (`keepalive_timeout`,
        /// `takenover`…).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The backend published a command to a device.
    CommandPublished {
        device: DeviceId,
        stream: StreamId,
        seq: u64,
        t_intended: Nanos,
        qos: u8,
    },
    /// Publisher outcome of a command.
    CommandOutcome {
        device: DeviceId,
        stream: StreamId,
        seq: u64,
        outcome: PublishOutcome,
    },
}

/// Ground truth of faults. A fault's window opens when the harness sends
/// the request ([`FaultEvent::Requested`]) and is confirmed when the backend
/// answers ([`FaultEvent::Applied`]); effects seen in between belong to the
/// fault (a real Toxiproxy closes a disabled proxy's connections before it
/// answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FaultEvent {
    /// The first request of the fault is about to be sent to its backend.
    Requested { index: usize },
    /// The fault is in force (`index` is its place in the timeline).
    Applied {
        index: usize,
        kind: crate::scenario::FaultName,
        target: Option<String>,
        /// Devices it hits (for device faults; empty: the whole group).
        devices: Vec<DeviceId>,
    },
    /// The first request of the fault's heal is about to be sent to its
    /// backend (the heal's window opens; [`FaultEvent::Healed`] confirms it).
    HealRequested { index: usize },
    /// The fault is gone.
    Healed { index: usize },
    /// The backend failed to apply or heal it; `applied` says whether it was
    /// in force before the failure.
    Failed {
        index: usize,
        error: String,
        applied: bool,
    },
}

//! One device's MQTT client in either protocol: rumqttc's MQTT 3.1.1 client
//! (`rumqttc::AsyncClient`) or its MQTT 5 one (`rumqttc::v5`), behind one
//! client handle, one event loop and one vocabulary of events, so the
//! driver ([`super::device`]) means the same by a profile in both.
//!
//! What only MQTT 5 has travels with the events: the reason code of every
//! PUBACK, PUBREC and PUBCOMP and of a DISCONNECT the broker sends.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5 as r5;

use crate::history::LossCause;
use crate::plan::DevicePlan;
use crate::scenario::Profile;

/// A device's client handle: what the application calls.
#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// The request was refused (rumqttc's request channel is full or closed).
#[derive(Debug)]
pub struct Refused;

/// rumqttc's MQTT 3.1.1 QoS of a level (anything above 1 is 2).
pub fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> r5::mqttbytes::QoS {
    match q {
        0 => r5::mqttbytes::QoS::AtMostOnce,
        1 => r5::mqttbytes::QoS::AtLeastOnce,
        _ => r5::mqttbytes::QoS::ExactlyOnce,
    }
}

impl Client {
    pub fn try_publish(
        &self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), Refused> {
        // Moved, never copied: both clients take the buffer as it is.
        let payload: Vec<u8> = payload.into();
        match self {
            Client::V4(c) => c
                .try_publish(topic, qos4(qos), retain, payload)
                .map_err(|_| Refused),
            Client::V5(c) => c
                .try_publish(topic, qos5(qos), retain, Bytes::from(payload))
                .map_err(|_| Refused),
        }
    }

    /// Subscribe to (topic, QoS) filters in one SUBSCRIBE.
    pub fn try_subscribe_many(&self, filters: &[(String, u8)]) -> Result<(), Refused> {
        match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(t, q)| rumqttc::SubscribeFilter::new(t.clone(), qos4(*q))),
                )
                .map_err(|_| Refused),
            Client::V5(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(t, q)| r5::mqttbytes::v5::Filter::new(t.clone(), qos5(*q))),
                )
                .map_err(|_| Refused),
        }
    }

    pub fn try_disconnect(&self) -> Result<(), Refused> {
        match self {
            Client::V4(c) => c.try_disconnect().map_err(|_| Refused),
            Client::V5(c) => c.try_disconnect().map_err(|_| Refused),
        }
    }
}

/// A device's event loop, in its protocol.
pub enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    /// `connected`: the last poll returned an event (rumqttc's v5 loop
    /// keeps its network private; this is what tells a connecting poll).
    V5 {
        el: Box<r5::EventLoop>,
        connected: bool,
    },
}

/// What one poll gave, in either protocol's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    ConnAck {
        session_present: bool,
    },
    /// A publish was written with this packet id.
    Written(u16),
    /// rumqttc holds a publish back until the inflight window has room.
    Parked(u16),
    SubscribeSent(u16),
    PingReq,
    PingResp,
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) of packet `pkid`; `reason` is MQTT
    /// 5's reason code (always 0 at 3.1.1). A PUBREC with a failure code
    /// ends a QoS 2 flow too, and arrives as this with its code.
    Acked {
        pkid: u16,
        packet: AckPacket,
        reason: u8,
    },
    SubAck {
        pkid: u16,
        /// Per filter: the granted QoS, or 0x80 (or MQTT 5's failure code).
        granted: Vec<u8>,
    },
    Message {
        payload: Bytes,
        qos: u8,
        dup: bool,
    },
    DisconnectSent,
    Other,
}

/// Which acknowledgement a reason code came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPacket {
    PubAck,
    PubRec,
    PubComp,
}

impl AckPacket {
    pub fn name(self) -> &'static str {
        match self {
            AckPacket::PubAck => "PUBACK",
            AckPacket::PubRec => "PUBREC",
            AckPacket::PubComp => "PUBCOMP",
        }
    }
}

/// How a poll failed: the connection ended, or never came up.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub cause: LossCause,
    pub message: String,
}

/// The event loop's options for this device's profile (protocol chosen by
/// `profile.protocol`), and the client handle that goes with it.
pub fn client(
    device: &DevicePlan,
    profile: &Profile,
    host: String,
    port: u16,
    channel: usize,
) -> (Client, EventLoop) {
    // Validation guarantees ≥ 1 s when on; "off" is keepalive 0.
    let keepalive = profile.keepalive.unwrap_or(Duration::ZERO);
    // rumqttc's connect timeout (TCP + CONNECT/CONNACK) is in whole seconds.
    let connect_timeout = profile.connect_timeout.as_secs_f64().ceil().max(1.0) as u64;
    if profile.protocol == 5 {
        let mut o = r5::MqttOptions::new(device.client_id.clone(), host, port);
        o.set_keep_alive(keepalive);
        o.set_clean_start(profile.clean_session);
        o.set_outgoing_inflight_upper_limit(profile.inflight);
        o.set_max_packet_size(Some(512 * 1024));
        o.set_connection_timeout(connect_timeout);
        if let Some(e) = profile.session_expiry {
            o.set_session_expiry_interval(Some(e.seconds()));
        }
        if let Some(m) = profile.receive_maximum {
            o.set_receive_maximum(Some(m));
        }
        if let Some(w) = &device.will {
            let properties = w.delay.map(|d| r5::mqttbytes::v5::LastWillProperties {
                delay_interval: Some(d.as_secs().min(u64::from(u32::MAX)) as u32),
                payload_format_indicator: None,
                message_expiry_interval: None,
                content_type: None,
                response_topic: None,
                correlation_data: None,
                user_properties: Vec::new(),
            });
            o.set_last_will(r5::mqttbytes::v5::LastWill::new(
                &w.topic,
                w.payload.clone(),
                qos5(w.qos),
                w.retain,
                properties,
            ));
        }
        let (c, el) = r5::AsyncClient::new(o, channel);
        (
            Client::V5(c),
            EventLoop::V5 {
                el: Box::new(el),
                connected: false,
            },
        )
    } else {
        let mut o = rumqttc::MqttOptions::new(device.client_id.clone(), host, port);
        o.set_keep_alive(keepalive);
        o.set_clean_session(profile.clean_session);
        o.set_inflight(profile.inflight);
        o.set_max_packet_size(512 * 1024, 512 * 1024);
        if let Some(w) = &device.will {
            o.set_last_will(rumqttc::LastWill::new(
                &w.topic,
                w.payload.clone(),
                qos4(w.qos),
                w.retain,
            ));
        }
        let (c, mut el) = rumqttc::AsyncClient::new(o, channel);
        el.network_options.set_connection_timeout(connect_timeout);
        (Client::V4(c), EventLoop::V4(Box::new(el)))
    }
}

impl EventLoop {
    /// One poll, with the QoS ≥ 1 publishes rumqttc held unwritten before
    /// it (see [`super::connection::unwritten_pending`]; 0 unless this poll
    /// connects).
    pub async fn poll(&mut self) -> (Result<Wire, Failure>, usize) {
        match self {
            EventLoop::V4(el) => {
                let (r, n) = super::connection::poll_counted(el).await;
                (r.map(wire4).map_err(|e| failure4(&e)), n)
            }
            EventLoop::V5 { el, connected } => {
                let n = if *connected {
                    0
                } else {
                    el.pending
                        .iter()
                        .filter(|r| {
                            matches!(r, r5::Request::Publish(p)
                                if p.pkid == 0 && p.qos != r5::mqttbytes::QoS::AtMostOnce)
                        })
                        .count()
                };
                let r = el.poll().await;
                *connected = r.is_ok();
                (r.map(wire5).map_err(|e| failure5(&e)), n)
            }
        }
    }

    /// Drop the connection without a DISCONNECT; unacked publishes move to
    /// `pending` (resent if the next CONNACK has the session).
    pub fn clean(&mut self) {
        match self {
            EventLoop::V4(el) => el.clean(),
            EventLoop::V5 { el, connected } => {
                el.clean();
                *connected = false;
            }
        }
    }
}

fn wire4(e: rumqttc::Event) -> Wire {
    use rumqttc::{Event, Incoming, Outgoing, SubscribeReasonCode};
    match e {
        Event::Incoming(Incoming::ConnAck(a)) => Wire::ConnAck {
            session_present: a.session_present,
        },
        Event::Incoming(Incoming::PingResp) => Wire::PingResp,
        Event::Incoming(Incoming::PubAck(a)) => Wire::Acked {
            pkid: a.pkid,
            packet: AckPacket::PubAck,
            reason: 0,
        },
        Event::Incoming(Incoming::PubComp(c)) => Wire::Acked {
            pkid: c.pkid,
            packet: AckPacket::PubComp,
            reason: 0,
        },
        Event::Incoming(Incoming::SubAck(s)) => Wire::SubAck {
            pkid: s.pkid,
            granted: s
                .return_codes
                .iter()
                .map(|rc| match rc {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        },
        Event::Incoming(Incoming::Publish(p)) => Wire::Message {
            payload: p.payload,
            qos: p.qos as u8,
            dup: p.dup,
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => Wire::Written(pkid),
        Event::Outgoing(Outgoing::AwaitAck(pkid)) => Wire::Parked(pkid),
        Event::Outgoing(Outgoing::Subscribe(pkid)) => Wire::SubscribeSent(pkid),
        Event::Outgoing(Outgoing::PingReq) => Wire::PingReq,
        Event::Outgoing(Outgoing::Disconnect) => Wire::DisconnectSent,
        _ => Wire::Other,
    }
}

/// MQTT 5's PUBACK and PUBREC reason codes: the specification gives both
/// packets one list; rumqttc has an enum for each.
macro_rules! publish_reason_code {
    ($reason:ident, $r:expr) => {{
        use r5::mqttbytes::v5::$reason::*;
        match $r {
            Success => 0x00,
            NoMatchingSubscribers => 0x10,
            UnspecifiedError => 0x80,
            ImplementationSpecificError => 0x83,
            NotAuthorized => 0x87,
            TopicNameInvalid => 0x90,
            PacketIdentifierInUse => 0x91,
            QuotaExceeded => 0x97,
            PayloadFormatInvalid => 0x99,
        }
    }};
}

fn puback_code(r: r5::mqttbytes::v5::PubAckReason) -> u8 {
    publish_reason_code!(PubAckReason, r)
}

fn pubrec_code(r: r5::mqttbytes::v5::PubRecReason) -> u8 {
    publish_reason_code!(PubRecReason, r)
}

fn wire5(e: r5::Event) -> Wire {
    use r5::mqttbytes::v5::{PubCompReason, SubscribeReasonCode};
    use r5::{Event, Incoming};
    use rumqttc::Outgoing;
    match e {
        Event::Incoming(Incoming::ConnAck(a)) => Wire::ConnAck {
            session_present: a.session_present,
        },
        Event::Incoming(Incoming::PingResp(_)) => Wire::PingResp,
        Event::Incoming(Incoming::PubAck(a)) => Wire::Acked {
            pkid: a.pkid,
            packet: AckPacket::PubAck,
            reason: puback_code(a.reason),
        },
        // A PUBREC that refuses ends the QoS 2 flow (no PUBREL follows).
        Event::Incoming(Incoming::PubRec(r)) if pubrec_code(r.reason) >= 0x80 => Wire::Acked {
            pkid: r.pkid,
            packet: AckPacket::PubRec,
            reason: pubrec_code(r.reason),
        },
        Event::Incoming(Incoming::PubComp(c)) => Wire::Acked {
            pkid: c.pkid,
            packet: AckPacket::PubComp,
            reason: match c.reason {
                PubCompReason::Success => 0x00,
                PubCompReason::PacketIdentifierNotFound => 0x92,
            },
        },
        Event::Incoming(Incoming::SubAck(s)) => Wire::SubAck {
            pkid: s.pkid,
            granted: s
                .return_codes
                .iter()
                .map(|rc| match rc {
                    SubscribeReasonCode::Success(q) => *q as u8,
                    _ => 0x80,
                })
                .collect(),
        },
        Event::Incoming(Incoming::Publish(p)) => Wire::Message {
            payload: p.payload,
            qos: p.qos as u8,
            dup: p.dup,
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => Wire::Written(pkid),
        Event::Outgoing(Outgoing::AwaitAck(pkid)) => Wire::Parked(pkid),
        Event::Outgoing(Outgoing::Subscribe(pkid)) => Wire::SubscribeSent(pkid),
        Event::Outgoing(Outgoing::PingReq) => Wire::PingReq,
        Event::Outgoing(Outgoing::Disconnect) => Wire::DisconnectSent,
        _ => Wire::Other,
    }
}

fn io_closed(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

/// How the client saw its MQTT 3.1.1 connection end.
pub fn failure4(e: &rumqttc::ConnectionError) -> Failure {
    use rumqttc::{ConnectionError, StateError};
    let cause = match e {
        ConnectionError::MqttState(StateError::AwaitPingResp) => LossCause::KeepaliveMissed,
        ConnectionError::MqttState(StateError::ConnectionAborted) => LossCause::Closed,
        ConnectionError::MqttState(StateError::Io(io)) | ConnectionError::Io(io)
            if io_closed(io) =>
        {
            LossCause::Closed
        }
        other => LossCause::Error(other.to_string()),
    };
    Failure {
        cause,
        message: e.to_string(),
    }
}

/// How the client saw its MQTT 5 connection end: a DISCONNECT from the
/// broker keeps its reason code.
pub fn failure5(e: &r5::ConnectionError) -> Failure {
    use r5::{ConnectionError, StateError};
    let cause = match e {
        ConnectionError::MqttState(StateError::AwaitPingResp) => LossCause::KeepaliveMissed,
        ConnectionError::MqttState(StateError::ConnectionAborted) => LossCause::Closed,
        ConnectionError::MqttState(StateError::ServerDisconnect { reason_code, .. }) => {
            LossCause::ServerDisconnect {
                reason: *reason_code as u8,
            }
        }
        ConnectionError::MqttState(StateError::Io(io)) | ConnectionError::Io(io)
            if io_closed(io) =>
        {
            LossCause::Closed
        }
        other => LossCause::Error(other.to_string()),
    };
    Failure {
        cause,
        message: e.to_string(),
    }
}

/// MQTT 5's name of a reason code (the specification's, lower case), for
/// reports.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x04 => "disconnect with will message",
        0x10 => "no matching subscribers",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x87 => "not authorized",
        0x89 => "server busy",
        0x8B => "server shutting down",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "qos not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9E => "shared subscriptions not supported",
        0x9F => "connection rate exceeded",
        0xA0 => "maximum connect time",
        0xA1 => "subscription identifiers not supported",
        0xA2 => "wildcard subscriptions not supported",
        _ => "unknown reason code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_keep_their_values_and_names() {
        use r5::mqttbytes::v5::PubAckReason;
        assert_eq!(puback_code(PubAckReason::QuotaExceeded), 0x97);
        assert_eq!(puback_code(PubAckReason::NotAuthorized), 0x87);
        assert_eq!(puback_code(PubAckReason::NoMatchingSubscribers), 0x10);
        assert_eq!(
            pubrec_code(r5::mqttbytes::v5::PubRecReason::QuotaExceeded),
            0x97
        );
        assert_eq!(reason_name(0x8E), "session taken over");
        assert_eq!(reason_name(0x8D), "keep alive timeout");
        assert_eq!(reason_name(0x97), "quota exceeded");
        let f = failure5(&r5::ConnectionError::MqttState(
            r5::StateError::ServerDisconnect {
                reason_code: r5::mqttbytes::v5::DisconnectReasonCode::SessionTakenOver,
                reason_string: None,
            },
        ));
        assert_eq!(f.cause, LossCause::ServerDisconnect { reason: 0x8E });
    }
}

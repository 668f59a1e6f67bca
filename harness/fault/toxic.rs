//! Toxiproxy's fault vocabulary, typed.
//!
//! The same toxic names, attributes, units and `stream` directions as
//! Toxiproxy 2.x (`toxics/*.go`), so that a scenario means the same thing on
//! the embedded engine and on a real Toxiproxy, and so that the JSON here is
//! the JSON Toxiproxy's API takes and returns:
//! `{"attributes":{"latency":1000,"jitter":100},"name":"latency_upstream",
//!   "type":"latency","stream":"upstream","toxicity":1}`.

use serde::{Deserialize, Serialize};

/// The direction a toxic acts on. Toxiproxy: `upstream` is client → server,
/// `downstream` is server → client (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    #[default]
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Case-insensitive, as Toxiproxy accepts it.
    pub fn parse(s: &str) -> Option<Stream> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// A toxic's type and attributes, in Toxiproxy's units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter` milliseconds.
    Latency {
        #[serde(default)]
        latency: u64,
        #[serde(default)]
        jitter: u64,
    },
    /// Limit throughput to `rate` KB/s.
    Bandwidth {
        #[serde(default)]
        rate: u64,
    },
    /// Delay the close of the connection by `delay` milliseconds.
    SlowClose {
        #[serde(default)]
        delay: u64,
    },
    /// Drop all data; close after `timeout` ms of silence (0: never close).
    /// The blackhole of this harness is `timeout` with `timeout = 0`.
    Timeout {
        #[serde(default)]
        timeout: u64,
    },
    /// On the first data, wait `timeout` ms and close (RST where Toxiproxy does).
    ResetPeer {
        #[serde(default)]
        timeout: u64,
    },
    /// Cut data into slices of `average_size` ± `size_variation` bytes,
    /// `delay` microseconds apart.
    Slicer {
        #[serde(default)]
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(default)]
        delay: u64,
    },
    /// Close the connection once `bytes` bytes have passed.
    LimitData {
        #[serde(default)]
        bytes: u64,
    },
}

impl ToxicKind {
    /// Toxiproxy's type name (`latency`, `slow_close`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }
}

/// One toxic on one proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    #[serde(default)]
    pub name: String,
    #[serde(flatten)]
    pub kind: ToxicKind,
    #[serde(default)]
    pub stream: Stream,
    /// Probability that the toxic applies to a given connection (0..=1).
    #[serde(default = "one", serialize_with = "toxicity_as_go")]
    pub toxicity: f32,
}

fn one() -> f32 {
    1.0
}

/// Go encodes a float32 `1` as `1`; so do we, so JSON compares equal.
fn toxicity_as_go<S: serde::Serializer>(t: &f32, s: S) -> Result<S::Ok, S::Error> {
    if t.fract() == 0.0 && (0.0..=1.0).contains(t) {
        s.serialize_u64(*t as u64)
    } else {
        s.serialize_f32(*t)
    }
}

impl Toxic {
    /// A toxic with Toxiproxy's default name `<type>_<stream>` and toxicity 1.
    pub fn new(kind: ToxicKind, stream: Stream) -> Toxic {
        Toxic {
            name: format!("{}_{}", kind.type_name(), stream.as_str()),
            kind,
            stream,
            toxicity: 1.0,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Toxic {
        self.name = name.into();
        self
    }

    pub fn with_toxicity(mut self, toxicity: f32) -> Toxic {
        self.toxicity = toxicity;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxic_json_matches_toxiproxy() {
        let t = Toxic::new(
            ToxicKind::Latency {
                latency: 1000,
                jitter: 100,
            },
            Stream::Upstream,
        );
        let v = serde_json::to_value(&t).unwrap();
        let want: serde_json::Value = serde_json::from_str(
            r#"{"attributes":{"latency":1000,"jitter":100},"name":"latency_upstream","type":"latency","stream":"upstream","toxicity":1}"#,
        )
        .unwrap();
        assert_eq!(v, want);
        let back: Toxic = serde_json::from_value(want).unwrap();
        assert_eq!(back, t);
    }
}

//! The wire format of every telemetry and command payload.
//!
//! A payload is one ASCII header line followed by padding up to the
//! stream's `payload_size` (never truncated below the header):
//!
//! ```text
//! mqc1 <device> <stream> <seq> <t_intended_ns>\n<padding '.'…>
//! ```
//!
//! * `device`: the device's name (`<fleet>-<index>`),
//! * `stream`: the stream's name from the scenario,
//! * `seq`: gapless per (device, stream), from 0,
//! * `t_intended_ns`: the schedule slot, in nanoseconds since the run started
//!   (the run's monotonic clock; latency is `t_received − t_intended`).
//!
//! Any MQTT client can decode it with a split on spaces.

use crate::clock::Nanos;

/// The decoded header of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub device: &'a str,
    pub stream: &'a str,
    pub seq: u64,
    pub t_intended: Nanos,
}

const MAGIC: &str = "mqc1";

/// Encode a payload of at least `size` bytes.
pub fn encode(device: &str, stream: &str, seq: u64, t_intended: Nanos, size: usize) -> Vec<u8> {
    let mut out = format!("{MAGIC} {device} {stream} {seq} {}\n", t_intended.0).into_bytes();
    if out.len() < size {
        out.resize(size, b'.');
    }
    out
}

/// Decode a payload's header; `None` if it is not one of ours.
pub fn decode(payload: &[u8]) -> Option<Header<'_>> {
    let end = payload.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&payload[..end]).ok()?;
    let mut parts = line.split(' ');
    if parts.next()? != MAGIC {
        return None;
    }
    let device = parts.next()?;
    let stream = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    let t = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Header {
        device,
        stream,
        seq,
        t_intended: Nanos(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pads_to_size_and_decodes() {
        let p = encode("sensors-0001", "telemetry", 42, Nanos(1_500), 64);
        assert_eq!(p.len(), 64);
        let h = decode(&p).unwrap();
        assert_eq!(h.device, "sensors-0001");
        assert_eq!(h.stream, "telemetry");
        assert_eq!(h.seq, 42);
        assert_eq!(h.t_intended, Nanos(1_500));
    }

    #[test]
    fn foreign_payloads_are_not_ours() {
        assert!(decode(b"online").is_none());
        assert!(decode(b"mqc2 a b 1 2\n").is_none());
        assert!(decode(b"mqc1 a b x 2\n").is_none());
    }

    proptest! {
        #[test]
        fn round_trips(dev in "[a-z0-9-]{1,20}", st in "[a-z_]{1,10}", seq: u64, t: u64, size in 0usize..300) {
            let p = encode(&dev, &st, seq, Nanos(t), size);
            prop_assert!(p.len() >= size);
            let h = decode(&p).unwrap();
            prop_assert_eq!(h.device, dev.as_str());
            prop_assert_eq!(h.stream, st.as_str());
            prop_assert_eq!(h.seq, seq);
            prop_assert_eq!(h.t_intended, Nanos(t));
        }
    }
}

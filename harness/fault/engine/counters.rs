//! Byte counters per proxy and direction: what Toxiproxy started with
//! `-proxy-metrics` serves on `/metrics` as
//! `toxiproxy_proxy_received_bytes_total` (read from the source) and
//! `toxiproxy_proxy_sent_bytes_total` (written to the destination), labelled
//! by direction, listener, proxy and upstream.
//!
//! A series is keyed by the labels a connection started with, so a proxy
//! moved to another port or upstream gets new series, and series outlive
//! their proxy (as a Prometheus counter does). One difference from
//! Toxiproxy: it adds a direction's bytes once that direction ends, we add
//! them as they pass, so a scrape during a long connection sees its bytes.
//! A series is shown once it has been counted (Toxiproxy's `WithLabelValues`
//! creates it at the direction's end).
//!
//! [`render`] writes the text exposition byte for byte as Go's
//! `promhttp` does (recorded in the Toxiproxy 2.12 transcript). No crate is
//! used for it: the Rust Prometheus encoders refuse the empty help text
//! Toxiproxy's counters have and format numbers as Rust does, not as Go.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::fault::{ProxyBytes, Stream};

/// One counter: its value, and whether anything was ever counted.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    value: AtomicU64,
    shown: AtomicBool,
}

impl Counter {
    /// Add `n` (0 makes the series visible without changing it).
    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
        self.shown.store(true, Ordering::Relaxed);
    }

    fn get(&self) -> Option<u64> {
        self.shown
            .load(Ordering::Relaxed)
            .then(|| self.value.load(Ordering::Relaxed))
    }
}

/// The two counters of one (direction, listener, proxy, upstream).
#[derive(Debug, Default)]
pub(crate) struct Series {
    pub received: Counter,
    pub sent: Counter,
}

/// Labels in Prometheus' order (sorted by label name), which is also the
/// order series are written in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    direction: &'static str,
    listener: String,
    proxy: String,
    upstream: String,
}

/// Every series of one engine.
#[derive(Debug, Default)]
pub(crate) struct ByteMetrics {
    series: Mutex<BTreeMap<Labels, Arc<Series>>>,
}

impl ByteMetrics {
    /// The series a connection of `proxy` accepted on `listen` and relayed
    /// to `upstream` counts into, per direction (upstream, downstream).
    pub(crate) fn link(
        &self,
        proxy: &str,
        listen: SocketAddr,
        upstream: &str,
    ) -> (Arc<Series>, Arc<Series>) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut get = |stream: Stream| {
            map.entry(Labels {
                direction: stream.as_str(),
                listener: listen.to_string(),
                proxy: proxy.to_owned(),
                upstream: upstream.to_owned(),
            })
            .or_default()
            .clone()
        };
        (get(Stream::Upstream), get(Stream::Downstream))
    }

    /// Every series, in label order.
    pub(crate) fn snapshot(&self) -> Vec<ProxyBytes> {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(l, s)| ProxyBytes {
                proxy: l.proxy.clone(),
                direction: if l.direction == Stream::Upstream.as_str() {
                    Stream::Upstream
                } else {
                    Stream::Downstream
                },
                listener: l.listener.clone(),
                upstream: l.upstream.clone(),
                received: s.received.get(),
                sent: s.sent.get(),
            })
            .collect()
    }
}

/// The `/metrics` page of Toxiproxy started with `-proxy-metrics`, for these
/// samples (in label order, as [`ByteMetrics::snapshot`] gives them).
pub fn render(samples: &[ProxyBytes]) -> String {
    // promhttp's own counter of failed scrapes; this renderer cannot fail.
    let mut out = String::from(
        "# HELP promhttp_metric_handler_errors_total Total number of internal errors encountered by the promhttp metric handler.\n\
         # TYPE promhttp_metric_handler_errors_total counter\n\
         promhttp_metric_handler_errors_total{cause=\"encoding\"} 0\n\
         promhttp_metric_handler_errors_total{cause=\"gathering\"} 0\n",
    );
    type Pick = fn(&ProxyBytes) -> Option<u64>;
    let families: [(&str, Pick); 2] = [
        ("toxiproxy_proxy_received_bytes_total", |s| s.received),
        ("toxiproxy_proxy_sent_bytes_total", |s| s.sent),
    ];
    for (name, pick) in families {
        let lines: Vec<(&ProxyBytes, u64)> = samples
            .iter()
            .filter_map(|s| pick(s).map(|v| (s, v)))
            .collect();
        if lines.is_empty() {
            continue;
        }
        // Toxiproxy's counters have an empty help text; Go still writes
        // the space after the name.
        let _ = writeln!(out, "# HELP {name} ");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (s, v) in lines {
            let _ = writeln!(
                out,
                "{name}{{direction=\"{}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {}",
                s.direction.as_str(),
                escape(&s.listener),
                escape(&s.proxy),
                escape(&s.upstream),
                go_float(v)
            );
        }
    }
    out
}

/// A label value escaped as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A whole number as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it
/// (what `expfmt` uses): plain below 10^6, `1.5e+06` from there on.
fn go_float(v: u64) -> String {
    let digits = v.to_string();
    let exp = digits.len() - 1;
    if exp < 6 {
        return digits;
    }
    let mantissa = digits.trim_end_matches('0');
    let (first, rest) = mantissa.split_at(1);
    if rest.is_empty() {
        format!("{first}e+{exp:02}")
    } else {
        format!("{first}.{rest}e+{exp:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_go_writes_a_float64() {
        for (v, want) in [
            (0, "0"),
            (62, "62"),
            (999_999, "999999"),
            (1_000_000, "1e+06"),
            (1_234_567, "1.234567e+06"),
            (10_485_760, "1.048576e+07"),
            (120_000_000_000, "1.2e+11"),
        ] {
            assert_eq!(go_float(v), want, "{v}");
        }
    }

    #[test]
    fn only_counted_series_are_shown_in_label_order() {
        let m = ByteMetrics::default();
        let listen: SocketAddr = "127.0.0.1:26090".parse().unwrap();
        let (up, down) = m.link("m1", listen, "127.0.0.1:1883");
        assert_eq!(render(&m.snapshot()).lines().count(), 4, "nothing counted");
        up.received.add(62);
        up.sent.add(62);
        down.received.add(8);
        down.sent.add(8);
        let (up2, _) = m.link("m1", listen, "127.0.0.1:1883");
        up2.received.add(1);
        let page = render(&m.snapshot());
        let lines: Vec<&str> = page.lines().skip(4).collect();
        assert_eq!(
            lines,
            [
                "# HELP toxiproxy_proxy_received_bytes_total ",
                "# TYPE toxiproxy_proxy_received_bytes_total counter",
                "toxiproxy_proxy_received_bytes_total{direction=\"downstream\",listener=\"127.0.0.1:26090\",proxy=\"m1\",upstream=\"127.0.0.1:1883\"} 8",
                "toxiproxy_proxy_received_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:26090\",proxy=\"m1\",upstream=\"127.0.0.1:1883\"} 63",
                "# HELP toxiproxy_proxy_sent_bytes_total ",
                "# TYPE toxiproxy_proxy_sent_bytes_total counter",
                "toxiproxy_proxy_sent_bytes_total{direction=\"downstream\",listener=\"127.0.0.1:26090\",proxy=\"m1\",upstream=\"127.0.0.1:1883\"} 8",
                "toxiproxy_proxy_sent_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:26090\",proxy=\"m1\",upstream=\"127.0.0.1:1883\"} 62",
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

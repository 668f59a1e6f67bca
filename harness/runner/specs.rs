//! The backends a run is asked for (`--broker`, `--faults`, where the
//! proxies sit), parsed and checked without I/O.

pub use crate::scenario::backend::{BrokerSpec, FaultsSpec};

/// Where the proxies sit, from `[faults]` and the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyOptions {
    /// `--proxy-upstream HOST:PORT`: the broker as the fault backend reaches it.
    pub upstream: Option<String>,
    /// `--proxy-ports FIRST-LAST`: published proxy ports of a Toxiproxy in
    /// another network.
    pub ports: Option<String>,
    /// `--docker-network NAME`: the network `toxiproxy-container` joins.
    pub network: Option<String>,
    /// `--source-addresses A,B` or `A-B`: local addresses the embedded
    /// engine opens its upstream connections from, in turn.
    pub sources: Option<String>,
}

/// [`ProxyOptions`] checked against the chosen backends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxySetup {
    pub upstream: Option<String>,
    pub ports: Option<std::ops::RangeInclusive<u16>>,
    pub network: Option<String>,
    /// The embedded engine's source addresses (empty: the kernel's choice).
    pub sources: Vec<std::net::IpAddr>,
}

/// The most source addresses one run takes (each is one more ephemeral
/// port range towards the broker).
pub const MAX_SOURCES: usize = 64;

/// [`parse_sources`], each address checked to be bindable on this machine,
/// so that no device is cut off by an upstream connection that cannot be
/// opened (`run`, `validate` and `proxy-server` alike).
pub fn usable_sources(s: &str) -> Result<Vec<std::net::IpAddr>, String> {
    let sources = parse_sources(s)?;
    for ip in &sources {
        std::net::TcpListener::bind((*ip, 0))
            .map_err(|e| format!("cannot open a connection from {ip} on this machine: {e}"))?;
    }
    Ok(sources)
}

/// Parse `--source-addresses`: IPv4 or IPv6 addresses separated by commas,
/// or an IPv4 range `A-B` of one /24 (`127.0.0.2-127.0.0.9`); no address
/// twice, at most [`MAX_SOURCES`].
pub fn parse_sources(s: &str) -> Result<Vec<std::net::IpAddr>, String> {
    use std::net::{IpAddr, Ipv4Addr};
    let bad = |part: &str| {
        format!("\"{part}\" is not an IP address (A,B,... or A-B, e.g. 127.0.0.2-127.0.0.9)")
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for part in s.split(',').map(str::trim) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (Ipv4Addr, Ipv4Addr) = match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return Err(bad(part)),
            };
            let (oa, ob) = (a.octets(), b.octets());
            if oa[..3] != ob[..3] || oa[3] > ob[3] {
                return Err(format!(
                    "{part}: a range runs upwards within one /24 (e.g. 127.0.0.2-127.0.0.9)"
                ));
            }
            for last in oa[3]..=ob[3] {
                out.push(IpAddr::V4(Ipv4Addr::new(oa[0], oa[1], oa[2], last)));
            }
        } else {
            out.push(part.parse().map_err(|_| bad(part))?);
        }
        if out.len() > MAX_SOURCES {
            return Err(format!("at most {MAX_SOURCES} source addresses"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out.iter().find(|a| !seen.insert(**a)) {
        return Err(format!("{dup} is listed twice"));
    }
    if out.iter().any(|a| a.is_unspecified()) {
        return Err(
            "0.0.0.0 and :: are not source addresses (the kernel's choice is the default)".into(),
        );
    }
    Ok(out)
}

/// Whether `s` is `HOST:PORT` with a nonzero port.
pub(super) fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(['/', ' '])
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

/// Whether `tcp://HOST:PORT` names this host's loopback.
pub(super) fn broker_host_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_brokers_and_upstreams_are_told_apart() {
        assert!(broker_host_is_loopback("tcp://127.0.0.1:1883"));
        assert!(broker_host_is_loopback("mqtt://localhost:1883"));
        assert!(broker_host_is_loopback("tcp://[::1]:1883"));
        assert!(!broker_host_is_loopback("tcp://emqx.lab:1883"));
        assert!(valid_host_port("broker:1883"));
        assert!(!valid_host_port("broker"));
    }

    #[test]
    fn source_addresses_are_lists_or_ranges_without_repeats() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            parse_sources("127.0.0.2-127.0.0.4").unwrap(),
            vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")]
        );
        assert_eq!(
            parse_sources("127.0.0.5, ::1").unwrap(),
            vec![ip("127.0.0.5"), ip("::1")]
        );
        let e = parse_sources("127.0.0.2,127.0.0.2").unwrap_err();
        assert!(e.contains("127.0.0.2 is listed twice"), "{e}");
        let e = parse_sources("127.0.0.9-127.0.0.2").unwrap_err();
        assert!(e.contains("upwards"), "{e}");
        let e = parse_sources("127.0.0.1-127.0.1.3").unwrap_err();
        assert!(e.contains("one /24"), "{e}");
        let e = parse_sources("localhost").unwrap_err();
        assert!(e.contains("\"localhost\" is not an IP address"), "{e}");
        assert!(parse_sources("10.0.0.0-10.0.0.255")
            .unwrap_err()
            .contains("at most 64"));
        assert!(parse_sources("0.0.0.0").is_err());
        assert!(!valid_host_port(":1883"));
        assert!(!valid_host_port("broker:0"));
    }
}

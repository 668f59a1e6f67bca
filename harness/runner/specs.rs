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
}

/// [`ProxyOptions`] checked against the chosen backends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxySetup {
    pub upstream: Option<String>,
    pub ports: Option<std::ops::RangeInclusive<u16>>,
    pub network: Option<String>,
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
        assert!(!valid_host_port(":1883"));
        assert!(!valid_host_port("broker:0"));
    }
}

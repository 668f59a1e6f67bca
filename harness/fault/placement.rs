//! Where the fault proxies of a run listen, where devices reach them, and
//! where they send traffic (pure).
//!
//! A fault backend on the host (the embedded engine, a Toxiproxy started by
//! hand) binds `127.0.0.1:0` and reaches the broker at the address the
//! harness uses. A Toxiproxy in a container is another network: its proxies
//! must listen on ports published when the container was created, devices
//! connect to the published host ports, and the broker is reached by the
//! name it has on the container network (`emqx:1883`, `broker:1883`), not by
//! the harness's `127.0.0.1`. [`Placement`] holds that difference, so the
//! runner asks it instead of assuming loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;

/// One proxy port: where the proxy listens inside the backend's network and
/// where devices on the host reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The port the proxy binds (on `0.0.0.0` in the backend's network).
    pub listen_port: u16,
    /// Where devices connect.
    pub reach: SocketAddr,
}

/// How the proxies of a run are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `None`: the backend shares the host's network; each proxy binds
    /// `127.0.0.1:0` and devices use the address actually bound.
    slots: Option<Vec<Slot>>,
    /// `host:port` of the broker as the backend reaches it; `None`: the
    /// harness's own address of the broker.
    upstream: Option<String>,
}

/// A placement that cannot serve the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "{groups} device groups need {groups} proxy ports, only {ports} are published ({range})"
    )]
    TooFewPorts {
        groups: usize,
        ports: usize,
        range: String,
    },
}

impl Placement {
    /// The backend runs on the host's network (today's default).
    pub fn host() -> Placement {
        Placement {
            slots: None,
            upstream: None,
        }
    }

    /// Proxies listen on fixed ports of the backend's network; devices reach
    /// slot `i` at `slots[i].reach`.
    pub fn published(slots: Vec<Slot>) -> Placement {
        Placement {
            slots: Some(slots),
            upstream: None,
        }
    }

    /// Proxies listen on `ports`, published under the same numbers on
    /// `host` (what `docker-compose.yml` of this repository does).
    pub fn same_ports(host: IpAddr, ports: RangeInclusive<u16>) -> Placement {
        Placement::published(
            ports
                .map(|p| Slot {
                    listen_port: p,
                    reach: SocketAddr::new(host, p),
                })
                .collect(),
        )
    }

    /// The broker as the backend reaches it (`emqx:1883`).
    pub fn with_upstream(mut self, upstream: Option<String>) -> Placement {
        self.upstream = upstream;
        self
    }

    /// Whether proxies listen in a network other than the host's.
    pub fn is_published(&self) -> bool {
        self.slots.is_some()
    }

    /// The upstream set for this placement, if any.
    pub fn upstream_override(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// Check there is one slot per proxy before anything is created.
    pub fn check(&self, proxies: usize) -> Result<(), PlacementError> {
        match &self.slots {
            Some(slots) if slots.len() < proxies => Err(PlacementError::TooFewPorts {
                groups: proxies,
                ports: slots.len(),
                range: describe(slots),
            }),
            _ => Ok(()),
        }
    }

    /// The address proxy `i` asks its backend to listen on.
    pub fn listen(&self, i: usize) -> SocketAddr {
        match &self.slots {
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            Some(slots) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), slots[i].listen_port),
        }
    }

    /// Where devices connect to proxy `i`, given the address the backend
    /// reports it bound.
    pub fn reach(&self, i: usize, bound: SocketAddr) -> SocketAddr {
        match &self.slots {
            None => bound,
            Some(slots) => slots[i].reach,
        }
    }

    /// `host:port` the proxies forward to, for a broker the harness reaches
    /// at `broker`.
    pub fn upstream(&self, broker: SocketAddr) -> String {
        self.upstream.clone().unwrap_or_else(|| broker.to_string())
    }
}

fn describe(slots: &[Slot]) -> String {
    match (slots.first(), slots.last()) {
        (Some(a), Some(b)) => format!("ports {}-{}", a.listen_port, b.listen_port),
        _ => "no ports".into(),
    }
}

/// Parse `FIRST-LAST` or one `PORT` (the `proxy_ports` setting).
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("\"{s}\" is not a port range: use FIRST-LAST (e.g. 8666-8697) or PORT");
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(bad()),
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if a > b {
        return Err(format!("\"{s}\": the first port is above the last"));
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> SocketAddr {
        "127.0.0.1:1883".parse().unwrap()
    }

    #[test]
    fn on_the_host_a_proxy_binds_loopback_port_zero_and_forwards_to_the_broker_address() {
        let p = Placement::host();
        assert_eq!(p.listen(3), "127.0.0.1:0".parse().unwrap());
        let bound = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(p.reach(3, bound), bound);
        assert_eq!(p.upstream(broker()), "127.0.0.1:1883");
        assert!(p.check(100).is_ok());
    }

    #[test]
    fn published_ports_listen_on_every_interface_and_devices_use_the_host_port() {
        let p = Placement::published(vec![
            Slot {
                listen_port: 8666,
                reach: "127.0.0.1:32768".parse().unwrap(),
            },
            Slot {
                listen_port: 8667,
                reach: "127.0.0.1:32769".parse().unwrap(),
            },
        ])
        .with_upstream(Some("broker:1883".into()));
        assert_eq!(p.listen(1), "0.0.0.0:8667".parse().unwrap());
        assert_eq!(
            p.reach(1, "0.0.0.0:8667".parse().unwrap()),
            "127.0.0.1:32769".parse().unwrap()
        );
        assert_eq!(p.upstream(broker()), "broker:1883");
    }

    #[test]
    fn more_groups_than_published_ports_is_refused_naming_both_counts() {
        let p = Placement::same_ports(IpAddr::V4(Ipv4Addr::LOCALHOST), 8666..=8667);
        assert!(p.check(2).is_ok());
        let e = p.check(3).unwrap_err().to_string();
        assert!(e.contains("3 device groups") && e.contains("only 2"), "{e}");
        assert!(e.contains("8666-8667"), "{e}");
    }

    #[test]
    fn port_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_port_range("8666-8697").unwrap(), 8666..=8697);
        assert_eq!(parse_port_range("9000").unwrap(), 9000..=9000);
        assert!(parse_port_range("8697-8666").unwrap_err().contains("above"));
        assert!(parse_port_range("0-3").is_err());
        assert!(parse_port_range("a-b").unwrap_err().contains("FIRST-LAST"));
    }
}

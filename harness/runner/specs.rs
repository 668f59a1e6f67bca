//! The backends a run is asked for (`--broker`, `--faults`, where the
//! proxies sit), parsed and checked without I/O.

use crate::broker;
use crate::fault;

/// `--broker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSpec {
    Embedded,
    Mosquitto,
    External(String),
    /// A container the harness creates: `emqx[=IMAGE[:TAG]]` or
    /// `mosquitto-container[=IMAGE[:TAG]]`.
    Container {
        flavor: broker::container::Flavor,
        image: Option<String>,
    },
    /// `docker=CONTAINER@HOST:PORT`: a container somebody else runs.
    Attached(String),
}

impl BrokerSpec {
    pub fn parse(s: &str) -> Result<BrokerSpec, String> {
        use broker::container::{parse_attached, split_image, Flavor};
        let container = |flavor: Flavor, image: Option<&str>| {
            if let Some(i) = image {
                split_image(i).map_err(|e| format!("--broker {}={i}: {e}", flavor.name()))?;
            }
            Ok(BrokerSpec::Container {
                flavor,
                image: image.map(str::to_string),
            })
        };
        match s {
            "embedded" => Ok(BrokerSpec::Embedded),
            "mosquitto" => Ok(BrokerSpec::Mosquitto),
            "emqx" => container(Flavor::Emqx, None),
            "mosquitto-container" => container(Flavor::Mosquitto, None),
            s if s.starts_with("emqx=") => container(Flavor::Emqx, Some(&s["emqx=".len()..])),
            s if s.starts_with("mosquitto-container=") => {
                container(Flavor::Mosquitto, Some(&s["mosquitto-container=".len()..]))
            }
            s if s.starts_with("docker=") => {
                let spec = &s["docker=".len()..];
                parse_attached(spec).map_err(|e| format!("--broker {s}: {e}"))?;
                Ok(BrokerSpec::Attached(spec.into()))
            }
            s if s.starts_with("tcp://") || s.starts_with("mqtt://") => {
                Ok(BrokerSpec::External(s.into()))
            }
            other => Err(format!(
                "unknown broker \"{other}\": use embedded, mosquitto, emqx[=IMAGE:TAG], \
                 mosquitto-container[=IMAGE:TAG], docker=CONTAINER@HOST:PORT, \
                 tcp://HOST:PORT or mqtt://HOST:PORT"
            )),
        }
    }
}

/// `--faults`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultsSpec {
    Embedded,
    /// A running Toxiproxy's API URL.
    Toxiproxy(String),
    /// A Toxiproxy started in a container for the run, from this image.
    ToxiproxyContainer(String),
}

impl FaultsSpec {
    pub fn parse(s: &str) -> Result<FaultsSpec, String> {
        match s {
            "embedded" => Ok(FaultsSpec::Embedded),
            "toxiproxy-container" => Ok(FaultsSpec::ToxiproxyContainer(
                fault::container::DEFAULT_IMAGE.into(),
            )),
            s if s.starts_with("toxiproxy-container=") => {
                let image = &s["toxiproxy-container=".len()..];
                fault::container::split_image(image).map_err(|e| e.to_string())?;
                Ok(FaultsSpec::ToxiproxyContainer(image.into()))
            }
            s if s.starts_with("toxiproxy=") => {
                Ok(FaultsSpec::Toxiproxy(s["toxiproxy=".len()..].into()))
            }
            other => Err(format!(
                "unknown fault backend \"{other}\": use embedded, toxiproxy=http://HOST:PORT or toxiproxy-container[=IMAGE]"
            )),
        }
    }

    pub(super) fn is_toxiproxy(&self) -> bool {
        !matches!(self, FaultsSpec::Embedded)
    }
}

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

/// What the command line asks for.

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
    fn broker_and_fault_specs_parse() {
        assert_eq!(BrokerSpec::parse("embedded").unwrap(), BrokerSpec::Embedded);
        assert_eq!(
            BrokerSpec::parse("mosquitto").unwrap(),
            BrokerSpec::Mosquitto
        );
        assert_eq!(
            BrokerSpec::parse("tcp://127.0.0.1:1883").unwrap(),
            BrokerSpec::External("tcp://127.0.0.1:1883".into())
        );
        assert!(BrokerSpec::parse("emqx5").is_err());
        assert_eq!(
            FaultsSpec::parse("toxiproxy=http://127.0.0.1:8474").unwrap(),
            FaultsSpec::Toxiproxy("http://127.0.0.1:8474".into())
        );
        assert!(FaultsSpec::parse("toxiproxy").is_err());
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container").unwrap(),
            FaultsSpec::ToxiproxyContainer("ghcr.io/shopify/toxiproxy:2.12.0".into())
        );
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container=mqtt-chaos/toxiproxy-standin:local").unwrap(),
            FaultsSpec::ToxiproxyContainer("mqtt-chaos/toxiproxy-standin:local".into())
        );
        assert!(FaultsSpec::parse("toxiproxy-container=notag").is_err());
    }

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

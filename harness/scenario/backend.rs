//! Which broker and which fault backend: the strings of `[broker] backend`,
//! `[faults] backend`, `--broker` and `--faults`, parsed (pure).
//!
//! The loader checks the scenario's strings with these (so a typo is
//! located at its line), and the runner parses the chosen ones, command
//! line first, with the same functions. A refused string is quoted at most
//! [`QUOTE_CHARS`](crate::limits::QUOTE_CHARS) characters long, and never
//! with a password: `tcp://user:secret@host` shows as `tcp://user:***@host`.

use crate::broker::container::{parse_attached, split_image, Flavor};
use crate::limits::{has_user_info, quote, redact_url, MAX_ADDRESS_BYTES};

/// `--broker` / `[broker] backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSpec {
    /// `embedded`: rumqttd in a child process.
    Embedded,
    /// `mosquitto`: a local mosquitto binary.
    Mosquitto,
    /// `tcp://HOST:PORT` or `mqtt://HOST:PORT`: a broker somebody else runs.
    External(String),
    /// A container the harness creates: `emqx[=IMAGE[:TAG]]` or
    /// `mosquitto-container[=IMAGE[:TAG]]`.
    Container {
        flavor: Flavor,
        image: Option<String>,
    },
    /// `docker=CONTAINER@HOST:PORT`: a container somebody else runs.
    Attached(String),
}

/// The forms `BrokerSpec::parse` takes, for messages.
pub const BROKER_FORMS: &str = "embedded, mosquitto, emqx[=IMAGE:TAG], \
     mosquitto-container[=IMAGE:TAG], docker=CONTAINER@HOST:PORT, tcp://HOST:PORT or \
     mqtt://HOST:PORT";

/// The forms `FaultsSpec::parse` takes, for messages.
pub const FAULTS_FORMS: &str =
    "embedded, toxiproxy=http://HOST:PORT or toxiproxy-container[=IMAGE]";

/// The Toxiproxy image of `toxiproxy-container` without `=IMAGE`.
pub const DEFAULT_TOXIPROXY_IMAGE: &str = crate::fault::container::DEFAULT_IMAGE;

/// A backend string as messages may show it: no password, not too long.
pub fn shown(s: &str) -> String {
    quote(&redact_url(s))
}

impl BrokerSpec {
    /// Parse one of [`BROKER_FORMS`]. The message names the string as
    /// [`shown`] shows it.
    pub fn parse(s: &str) -> Result<BrokerSpec, String> {
        if s.len() > MAX_ADDRESS_BYTES {
            return Err(format!(
                "broker \"{}\" is longer than {MAX_ADDRESS_BYTES} bytes",
                shown(s)
            ));
        }
        let container = |flavor: Flavor, image: Option<&str>| {
            if let Some(i) = image {
                split_image(i)
                    .map_err(|e| format!("broker {}={}: {e}", flavor.name(), quote(i)))?;
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
                if has_user_info(spec.split_once('@').map_or("", |(_, a)| a)) {
                    return Err(format!(
                        "broker \"{}\": no user info in the address",
                        shown(s)
                    ));
                }
                parse_attached(spec).map_err(|e| format!("broker \"{}\": {e}", shown(s)))?;
                Ok(BrokerSpec::Attached(spec.into()))
            }
            s if s.starts_with("tcp://") || s.starts_with("mqtt://") => {
                if has_user_info(s) {
                    return Err(format!(
                        "broker \"{}\": credentials in the URL are not supported \
                         (the harness connects without them)",
                        shown(s)
                    ));
                }
                crate::broker::external::parse_spec(s)
                    .map_err(|e| format!("broker \"{}\": {e}", shown(s)))?;
                Ok(BrokerSpec::External(s.into()))
            }
            other => Err(format!(
                "unknown broker \"{}\": use {BROKER_FORMS}",
                shown(other)
            )),
        }
    }
}

/// `--faults` / `[faults] backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultsSpec {
    /// The embedded fault engine, in this process.
    Embedded,
    /// A running Toxiproxy's API URL.
    Toxiproxy(String),
    /// A Toxiproxy started in a container for the run, from this image.
    ToxiproxyContainer(String),
}

impl FaultsSpec {
    /// Parse one of [`FAULTS_FORMS`]. The message names the string as
    /// [`shown`] shows it.
    pub fn parse(s: &str) -> Result<FaultsSpec, String> {
        if s.len() > MAX_ADDRESS_BYTES {
            return Err(format!(
                "fault backend \"{}\" is longer than {MAX_ADDRESS_BYTES} bytes",
                shown(s)
            ));
        }
        match s {
            "embedded" => Ok(FaultsSpec::Embedded),
            "toxiproxy-container" => Ok(FaultsSpec::ToxiproxyContainer(
                DEFAULT_TOXIPROXY_IMAGE.into(),
            )),
            s if s.starts_with("toxiproxy-container=") => {
                let image = &s["toxiproxy-container=".len()..];
                crate::fault::container::split_image(image)
                    .map_err(|_| format!("fault backend \"{}\": expected IMAGE:TAG", shown(s)))?;
                Ok(FaultsSpec::ToxiproxyContainer(image.into()))
            }
            s if s.starts_with("toxiproxy=") => {
                let url = &s["toxiproxy=".len()..];
                if has_user_info(url) {
                    return Err(format!(
                        "fault backend \"{}\": credentials in the URL are not supported",
                        shown(s)
                    ));
                }
                toxiproxy_url(url)
                    .map_err(|why| format!("fault backend \"{}\": {why}", shown(s)))?;
                Ok(FaultsSpec::Toxiproxy(url.into()))
            }
            other => Err(format!(
                "unknown fault backend \"{}\": use {FAULTS_FORMS}",
                shown(other)
            )),
        }
    }

    /// Whether the proxies are Toxiproxy's (not the embedded engine's).
    pub fn is_toxiproxy(&self) -> bool {
        !matches!(self, FaultsSpec::Embedded)
    }

    /// Where the proxies run, for [`crate::limits::fds_needed`].
    pub fn proxy_place(&self) -> crate::limits::ProxyPlace {
        match self {
            FaultsSpec::Embedded => crate::limits::ProxyPlace::InProcess,
            _ => crate::limits::ProxyPlace::Elsewhere,
        }
    }
}

/// Check a Toxiproxy API address: `http://HOST:PORT`, a trailing `/`
/// allowed, no path, query, fragment or user (what the Toxiproxy client takes).
fn toxiproxy_url(url: &str) -> Result<(), &'static str> {
    const EXPECTED: &str = "expected toxiproxy=http://HOST:PORT";
    let rest = url.strip_prefix("http://").ok_or(EXPECTED)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(
            "no path, query, fragment or user allowed; expected toxiproxy=http://HOST:PORT",
        );
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or("the port is missing (http://HOST:PORT)")?;
    if host.is_empty() {
        return Err("the host is missing (http://HOST:PORT)");
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err("the port must be a number from 1 to 65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broker_form_parses() {
        assert_eq!(BrokerSpec::parse("embedded"), Ok(BrokerSpec::Embedded));
        assert_eq!(BrokerSpec::parse("mosquitto"), Ok(BrokerSpec::Mosquitto));
        assert_eq!(
            BrokerSpec::parse("emqx"),
            Ok(BrokerSpec::Container {
                flavor: Flavor::Emqx,
                image: None
            })
        );
        assert_eq!(
            BrokerSpec::parse("mosquitto-container=eclipse-mosquitto:2.0"),
            Ok(BrokerSpec::Container {
                flavor: Flavor::Mosquitto,
                image: Some("eclipse-mosquitto:2.0".into())
            })
        );
        assert_eq!(
            BrokerSpec::parse("docker=emqx@127.0.0.1:1883"),
            Ok(BrokerSpec::Attached("emqx@127.0.0.1:1883".into()))
        );
        for url in ["tcp://127.0.0.1:1883", "mqtt://broker", "tcp://[::1]:1884"] {
            assert_eq!(BrokerSpec::parse(url), Ok(BrokerSpec::External(url.into())));
        }
    }

    #[test]
    fn a_broker_typo_is_refused_naming_every_form() {
        let e = BrokerSpec::parse("mosquito").unwrap_err();
        assert_eq!(
            e,
            format!("unknown broker \"mosquito\": use {BROKER_FORMS}")
        );
        assert!(BrokerSpec::parse("emqx5").is_err());
        assert!(BrokerSpec::parse("tcp://h:0").unwrap_err().contains("port"));
        assert!(BrokerSpec::parse("docker=emqx").is_err());
        assert!(BrokerSpec::parse("emqx= ").is_err());
    }

    #[test]
    fn a_refused_url_never_shows_its_password() {
        for s in [
            "tcp://user:secret@host:1883",
            "mqtt://user:secret@host",
            "ssl://user:secret@host:8883",
            "docker=c@user:secret@host:1883",
        ] {
            let e = BrokerSpec::parse(s).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
            assert!(e.contains("user:***@host"), "{e}");
        }
        let e = FaultsSpec::parse("toxiproxy=http://admin:secret@h:8474").unwrap_err();
        assert!(
            !e.contains("secret") && e.contains("admin:***@h:8474"),
            "{e}"
        );
    }

    #[test]
    fn a_long_string_is_quoted_short() {
        let long = "x".repeat(10_000_000);
        for e in [
            BrokerSpec::parse(&long).unwrap_err(),
            FaultsSpec::parse(&long).unwrap_err(),
            BrokerSpec::parse(&long[..300]).unwrap_err(),
        ] {
            assert!(e.len() < 400, "{} bytes", e.len());
            assert!(e.contains('…'));
        }
    }

    #[test]
    fn every_faults_form_parses() {
        assert_eq!(FaultsSpec::parse("embedded"), Ok(FaultsSpec::Embedded));
        assert_eq!(
            FaultsSpec::parse("toxiproxy=http://127.0.0.1:8474"),
            Ok(FaultsSpec::Toxiproxy("http://127.0.0.1:8474".into()))
        );
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container"),
            Ok(FaultsSpec::ToxiproxyContainer(
                DEFAULT_TOXIPROXY_IMAGE.into()
            ))
        );
        assert_eq!(
            FaultsSpec::parse("toxiproxy-container=mqtt-chaos/toxiproxy-standin:local"),
            Ok(FaultsSpec::ToxiproxyContainer(
                "mqtt-chaos/toxiproxy-standin:local".into()
            ))
        );
        for bad in [
            "toxiproxy",
            "toxiproxy=",
            "toxiproxy=127.0.0.1:8474",
            "toxiproxy=https://h:8474",
            "toxiproxy=http://h",
            "toxiproxy=http://h:0",
            "toxiproxy=http://h:1/x",
            "toxiproxy-container=notag",
            "mosquito",
        ] {
            assert!(FaultsSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            FaultsSpec::parse("mosquito").unwrap_err(),
            format!("unknown fault backend \"mosquito\": use {FAULTS_FORMS}")
        );
    }
}

//! Human durations in scenario files: `"500ms"`, `"30s"`, `"5m"`, `"72h"`,
//! `"1h 30m"` (humantime), and `"off"` where a setting can be switched off.

use std::time::Duration;

/// Parse a human duration (`"off"` is not accepted here).
pub fn parse(s: &str) -> Result<Duration, String> {
    use crate::limits::quote;
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!(
            "invalid duration \"{}\" ({}); write e.g. \"500ms\", \"30s\", \"5m\", \"72h\"",
            quote(s),
            quote(&e.to_string())
        )
    })
}

/// Render as the shortest human string (`"1m 30s"`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A duration that must be given.
pub mod required {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration that defaults to zero when absent.
pub mod required_or_zero {
    pub use super::required::{deserialize, serialize};
}

/// An optional duration: absent or `"off"` is `None`.
pub mod optional {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "off" {
            return Ok(None);
        }
        parse(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

/// An optional key holding a duration (absent: `None`; no `"off"`).
pub mod optional_absent {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map(Some).map_err(serde::de::Error::custom)
    }
}

/// A key that must be present but may say `"off"`.
pub mod optional_required_key {
    pub use super::optional::{deserialize, serialize};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("72h").unwrap(), Duration::from_secs(72 * 3600));
        assert!(parse("5 parsecs").is_err());
        assert_eq!(
            parse("18446744073709551615s").unwrap(),
            Duration::MAX - Duration::from_nanos(999_999_999)
        );
        let e = parse(&"9".repeat(1_000_000)).unwrap_err();
        assert!(e.len() < 400, "{e}");
    }
}

//! `[[weather]]`: field weather — every device of the target groups gets its
//! own independent, seeded random faults, as a fleet meets them in the
//! field: short blips, silent drops (a NAT that forgot the connection),
//! latency spikes, reboots, power loss for good and duplicate-id incidents.
//! Each kind has a rate per device-hour and a duration range.
//!
//! ```toml
//! [[weather]]
//! target = "field"                                  # default: every group
//! from = "30s"                                      # default: from the start
//! blip = { per_hour = 2.0, duration = "2s..8s" }    # link down
//! silent_drop = { per_hour = 0.5, duration = "40s..2m" }   # blackhole
//! latency_spike = { per_hour = 1.0, duration = "5s..20s", latency = "3s" }
//! reboot = { per_hour = 0.2, duration = "20s..1m" }   # crash, boot after it
//! power_loss = { per_hour = 0.01 }                     # crash for good
//! duplicate_id = { per_hour = 0.05, duration = "5s..20s" }
//! ```
//!
//! [`expand`] turns a section into per-device events: pure, seeded by the
//! run's seed, the section and the device's index in the whole plan, so a
//! device's weather is the same whatever else is in the scenario and is
//! replayed by the seed. Arrivals of each kind are a Poisson process
//! (exponential gaps of mean `1 / per_hour`); a duration is uniform in its
//! range. A device has one weather event at a time: an event that would
//! begin while another is active (or less than [`WEATHER_GAP`] after it
//! ended) is skipped, and after a power loss nothing follows. Events that
//! would not end before the run's last second are skipped (a power loss
//! has no end and is kept).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration;

/// The quiet time kept between two weather events of one device.
pub const WEATHER_GAP: Duration = Duration::from_secs(1);

/// One `[[weather]]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Weather {
    /// The group whose devices get this weather; `None`: every group.
    #[serde(default)]
    pub target: Option<String>,
    /// The weather begins this long into the run (default: at once), e.g.
    /// once the fleet's connection ramp is over: an event that falls on a
    /// device still connecting for the first time shows nothing.
    #[serde(
        default,
        with = "duration::required_or_zero",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub from: Duration,
    /// The link goes down (connections closed, new ones refused).
    #[serde(default)]
    pub blip: Option<Spell>,
    /// Bytes dropped both ways, TCP open: a NAT or firewall that forgot the
    /// connection. `kind` picks how the ends learn of it.
    #[serde(default)]
    pub silent_drop: Option<SilentDrop>,
    /// Added latency both ways.
    #[serde(default)]
    pub latency_spike: Option<LatencySpike>,
    /// The device crashes and boots after the duration.
    #[serde(default)]
    pub reboot: Option<Spell>,
    /// The device crashes for good.
    #[serde(default)]
    pub power_loss: Option<Rate>,
    /// A second client takes the device's client id for the duration.
    #[serde(default)]
    pub duplicate_id: Option<Spell>,
}

/// A rate per device-hour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_hour: f64,
}

/// A rate and how long each event lasts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spell {
    pub per_hour: f64,
    pub duration: Span,
}

/// A silent drop: `blackhole` (the client's own close still reaches the
/// broker) or `cut` (neither side's close is passed on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilentDrop {
    pub per_hour: f64,
    pub duration: Span,
    #[serde(default)]
    pub kind: DropKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    #[default]
    Blackhole,
    HalfOpen,
    Cut,
}

/// A latency spike: `latency` added each way.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpike {
    pub per_hour: f64,
    pub duration: Span,
    #[serde(with = "duration::required")]
    pub latency: Duration,
}

/// A duration range, written `"2s..8s"` (uniform) or `"5s"` (fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
}

impl Span {
    pub fn parse(s: &str) -> Result<Span, String> {
        match s.split_once("..") {
            Some((a, b)) => Ok(Span {
                min: duration::parse(a)?,
                max: duration::parse(b)?,
            }),
            None => {
                let d = duration::parse(s)?;
                Ok(Span { min: d, max: d })
            }
        }
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            f.write_str(&duration::format(self.min))
        } else {
            write!(
                f,
                "{}..{}",
                duration::format(self.min),
                duration::format(self.max)
            )
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a weather event does to its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    Blip,
    SilentDrop(DropKind),
    LatencySpike(Duration),
    Reboot,
    PowerLoss,
    DuplicateId,
}

impl Happening {
    /// The setting's name in a `[[weather]]` section.
    pub fn name(self) -> &'static str {
        match self {
            Happening::Blip => "blip",
            Happening::SilentDrop(_) => "silent_drop",
            Happening::LatencySpike(_) => "latency_spike",
            Happening::Reboot => "reboot",
            Happening::PowerLoss => "power_loss",
            Happening::DuplicateId => "duplicate_id",
        }
    }

    /// Acts on the device's link (needs a fault proxy of its own).
    pub fn is_link(self) -> bool {
        matches!(
            self,
            Happening::Blip | Happening::SilentDrop(_) | Happening::LatencySpike(_)
        )
    }
}

/// One event of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    /// `None`: for good (a power loss).
    pub duration: Option<Duration>,
    pub what: Happening,
}

impl Weather {
    /// Each kind set here: what it does, its rate per device-hour and its
    /// duration range (`None` for a power loss).
    pub fn kinds(&self) -> Vec<(Happening, f64, Option<Span>)> {
        let mut out = Vec::new();
        if let Some(s) = self.blip {
            out.push((Happening::Blip, s.per_hour, Some(s.duration)));
        }
        if let Some(s) = self.silent_drop {
            out.push((Happening::SilentDrop(s.kind), s.per_hour, Some(s.duration)));
        }
        if let Some(s) = self.latency_spike {
            out.push((
                Happening::LatencySpike(s.latency),
                s.per_hour,
                Some(s.duration),
            ));
        }
        if let Some(s) = self.reboot {
            out.push((Happening::Reboot, s.per_hour, Some(s.duration)));
        }
        if let Some(r) = self.power_loss {
            out.push((Happening::PowerLoss, r.per_hour, None));
        }
        if let Some(s) = self.duplicate_id {
            out.push((Happening::DuplicateId, s.per_hour, Some(s.duration)));
        }
        out
    }

    /// Some kind acts on the link.
    pub fn has_link_kinds(&self) -> bool {
        self.kinds().iter().any(|(h, _, _)| h.is_link())
    }
}

/// The seed of one device's weather of one section.
fn device_seed(seed: u64, section: usize, device: u64) -> u64 {
    // splitmix64 over the three, so neighbouring devices are unrelated.
    let mut z = seed
        ^ (section as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ device.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The weather of section `section` for the device of global index
/// `device`, over a run of `run` (devices publish this long), in time order.
pub fn expand(w: &Weather, seed: u64, section: usize, device: u64, run: Duration) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(device_seed(seed, section, device));
    let last = run.saturating_sub(Duration::from_secs(1));
    let mut drawn = Vec::new();
    for (what, per_hour, span) in w.kinds() {
        if !(per_hour > 0.0 && per_hour.is_finite()) {
            continue;
        }
        let mean_gap_s = 3600.0 / per_hour;
        let mut t = w.from.as_secs_f64();
        loop {
            // Exponential gap: −ln(U) × mean, U in (0, 1].
            let u: f64 = 1.0 - rng.random::<f64>();
            t += -u.ln() * mean_gap_s;
            if !t.is_finite() || t >= last.as_secs_f64() {
                break;
            }
            let duration = span.map(|s| {
                if s.max <= s.min {
                    s.min
                } else {
                    let f: f64 = rng.random();
                    s.min + (s.max - s.min).mul_f64(f)
                }
            });
            drawn.push(Event {
                at: Duration::from_secs_f64(t),
                duration,
                what,
            });
        }
    }
    drawn.sort_by_key(|e| e.at);
    let mut kept: Vec<Event> = Vec::new();
    let mut free_from = Duration::ZERO;
    for e in drawn {
        if e.at < free_from {
            continue;
        }
        match e.duration {
            Some(d) if e.at + d > last => continue,
            Some(d) => free_from = e.at + d + WEATHER_GAP,
            None => free_from = Duration::MAX,
        }
        kept.push(e);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather(text: &str) -> Weather {
        toml::from_str(text).expect("weather parses")
    }

    #[test]
    fn spans_parse_as_ranges_or_fixed_durations() {
        assert_eq!(
            Span::parse("2s..8s").unwrap(),
            Span {
                min: Duration::from_secs(2),
                max: Duration::from_secs(8)
            }
        );
        let fixed = Span::parse("5s").unwrap();
        assert_eq!(
            (fixed.min, fixed.max),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert!(Span::parse("2s..soon").is_err());
        assert_eq!(Span::parse("500ms..1m").unwrap().to_string(), "500ms..1m");
        let w = weather(
            "blip = { per_hour = 2.0, duration = \"1s..3s\" }\npower_loss = { per_hour = 0.5 }",
        );
        assert_eq!(w.kinds().len(), 2);
        assert!(w.has_link_kinds());
        assert!(toml::from_str::<Weather>("blip = { per_hour = 2.0 }").is_err());
        assert!(toml::from_str::<Weather>("hail = { per_hour = 2.0 }").is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_weather_and_devices_differ() {
        let w = weather("blip = { per_hour = 60.0, duration = \"1s..3s\" }\nreboot = { per_hour = 10.0, duration = \"5s\" }");
        let run = Duration::from_secs(3600);
        let a = expand(&w, 7, 0, 3, run);
        assert_eq!(a, expand(&w, 7, 0, 3, run));
        assert_ne!(a, expand(&w, 7, 0, 4, run));
        assert_ne!(a, expand(&w, 8, 0, 3, run));
        assert_ne!(a, expand(&w, 7, 1, 3, run));
        // One at a time, each inside the run, durations in their range.
        for pair in a.windows(2) {
            let end = pair[0].at + pair[0].duration.unwrap();
            assert!(pair[1].at >= end + WEATHER_GAP, "{pair:?}");
        }
        for e in &a {
            let d = e.duration.unwrap();
            match e.what {
                Happening::Blip => {
                    assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(3))
                }
                Happening::Reboot => assert_eq!(d, Duration::from_secs(5)),
                other => panic!("{other:?}"),
            }
            assert!(e.at + d <= run - Duration::from_secs(1));
        }
    }

    #[test]
    fn rates_are_per_device_hour() {
        // 2 blips per device-hour over 1 000 device-hours: ~2 000, within
        // a few standard deviations (√2000 ≈ 45; the one-at-a-time rule
        // skips a few).
        let w = weather("blip = { per_hour = 2.0, duration = \"1s\" }");
        let n: usize = (0..1_000)
            .map(|d| expand(&w, 1, 0, d, Duration::from_secs(3600)).len())
            .sum();
        assert!((1_800..=2_200).contains(&n), "{n}");
    }

    #[test]
    fn nothing_follows_a_power_loss() {
        let w = weather(
            "power_loss = { per_hour = 3600.0 }\nblip = { per_hour = 3600.0, duration = \"1ms\" }",
        );
        let e = expand(&w, 1, 0, 0, Duration::from_secs(60));
        let i = e
            .iter()
            .position(|e| e.what == Happening::PowerLoss)
            .expect("a power loss");
        assert_eq!(i, e.len() - 1, "{e:?}");
        assert_eq!(e[i].duration, None);
    }
}

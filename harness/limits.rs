//! Bounds: how big a run the harness takes, in one place.
//!
//! A scenario file is input, and bad input must never panic the harness or
//! run away with the machine. Every duration, count, rate and length of a
//! scenario has a bound here; `scenario::check` refuses what lies outside
//! them (located at file:line:column, like every other rule), before any
//! list of devices, topics or phases is built. The values fit a harness on a
//! small machine (2 cores, 24 GiB, an open-file hard limit of 20 000) with
//! room to spare, and each says why it is what it is:
//!
//! * [`MAX_DURATION`] (366 days): every duration setting — the run, the
//!   drain, fault times and durations, keepalive-related timeouts, backoff —
//!   so that sums of two never overflow and a year-long soak still fits.
//! * [`MAX_RUN_TIME`] (366 days): the run plus its drain.
//! * [`MIN_INTERVAL`] (100 ms) and [`MAX_INTERVALS`] (1 000 000): the time
//!   series cuts an interval, writes a line and a histogram record each time;
//!   a million of them is a few hundred MB of logs, a year at 60 s is 527 040.
//! * [`MAX_DEVICES`] (100 000, per fleet and in total): each device is a
//!   tokio task, an MQTT client and (through the embedded fault proxy) three
//!   sockets; beyond this the machine, not the client, is under test.
//! * [`MIN_RATE`]..=[`MAX_RATE`] (one message per 11.6 days to 1 000 per
//!   second, per device and stream) and [`MAX_MESSAGES_PER_S`] (20 000 per
//!   second for the whole run, telemetry and commands): what the embedded
//!   broker, the observer and the ledger keep up with on two cores.
//! * [`MAX_PAYLOAD`] (256 KiB): the devices' and observer's maximum packet
//!   size is 512 KiB.
//! * [`MAX_TOPIC_BYTES`] (65 535): MQTT's 16-bit length prefix, for the
//!   template and for every topic resolved from it; [`MAX_WILL_PAYLOAD`]
//!   likewise.
//! * [`MAX_NAME_BYTES`] (256): names of profiles, fleets, groups, streams,
//!   targets and fixed client ids; [`MAX_ADDRESS_BYTES`] (512): backend
//!   strings and addresses.
//! * [`MAX_FLEETS`], [`MAX_PROFILES`], [`MAX_FLOWS_PER_FLEET`],
//!   [`MAX_TIMELINE`], [`MAX_SLOS`]: the sizes of the file's collections, so
//!   that checks comparing entries with each other stay fast.
//! * [`MIN_FLAP_PHASE`] (100 ms) and [`MAX_FLAP_PHASES`] (10 000 000 down
//!   phases × devices hit, summed over the timeline): the metrics keep one
//!   outage span per device and down phase.
//! * [`MAX_ACK_RETRIES`] (1 000): retries of a publish after an ack timeout.
//! * [`MAX_TOXIC_AMOUNT`] (2⁴⁰): bytes, KB/s and slice sizes of toxics
//!   (Toxiproxy takes them as int64; nothing in a run means more).
//!
//! [`RunSize`] states the size of a whole run (devices, connections,
//! messages per second, intervals, run time); `mqtt-chaos validate` prints
//! it. [`raise_nofile`], [`fds_needed`] and [`check_fds`] make sure the run
//! gets the file descriptors it needs before anything starts.
//!
//! Everything here is pure but [`raise_nofile`].

use std::fmt;
use std::time::Duration;

use crate::scenario::{FaultKind, Scenario};

const DAY: u64 = 24 * 3600;

/// Longest value of any duration setting.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * DAY);
/// Longest run, drain included.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(366 * DAY);
/// Shortest interval of the time series.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Most intervals in one run (run time incl. drain / interval).
pub const MAX_INTERVALS: u64 = 1_000_000;
/// Most devices of one fleet and of the whole run.
pub const MAX_DEVICES: u64 = 100_000;
/// Highest rate of one stream or command, per device (messages/s).
pub const MAX_RATE: f64 = 1000.0;
/// Lowest rate of one stream or command, per device (messages/s): one
/// message per 11.6 days, so the period always fits a `Duration`.
pub const MIN_RATE: f64 = 1e-6;
/// Most messages per second of the whole run (telemetry and commands).
pub const MAX_MESSAGES_PER_S: f64 = 20_000.0;
/// Largest payload of a stream or command.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Longest topic, as template and resolved (MQTT's 16-bit length).
pub const MAX_TOPIC_BYTES: usize = 65_535;
/// Longest will payload (MQTT's 16-bit length).
pub const MAX_WILL_PAYLOAD: usize = 65_535;
/// Longest name: profile, fleet, group, stream, command, target, fixed client id.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest backend string or address (`[broker]`, `[faults]`).
pub const MAX_ADDRESS_BYTES: usize = 512;
/// Most fleets.
pub const MAX_FLEETS: usize = 1_000;
/// Most profiles.
pub const MAX_PROFILES: usize = 1_000;
/// Most streams, and most commands, of one fleet.
pub const MAX_FLOWS_PER_FLEET: usize = 100;
/// Most timeline entries.
pub const MAX_TIMELINE: usize = 1_000;
/// Most SLOs.
pub const MAX_SLOS: usize = 1_000;
/// Shortest `down` or `up` phase of a flapping link.
pub const MIN_FLAP_PHASE: Duration = Duration::from_millis(100);
/// Most flapping down phases × devices they hit, over the whole timeline.
pub const MAX_FLAP_PHASES: u64 = 10_000_000;
/// Most application retries of a publish after an ack timeout.
pub const MAX_ACK_RETRIES: u32 = 1_000;
/// Largest byte count, KB/s or slice size of a toxic.
pub const MAX_TOXIC_AMOUNT: u64 = 1 << 40;
/// How many characters of an offending value a message quotes.
pub const QUOTE_CHARS: usize = 64;

/// Connections of the harness's own beside the devices: the observer's
/// collector and its lag prober.
pub const HARNESS_CONNECTIONS: u64 = 2;

/// The size of a whole run, from the scenario alone (pure, total: any
/// scenario, valid or not, has one; sums saturate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSize {
    /// Simulated devices.
    pub devices: u64,
    /// Device groups.
    pub groups: u64,
    /// Groups a link fault can reach: each has a fault proxy, and only
    /// their devices connect through one (the others straight to the broker).
    pub proxied_groups: u64,
    /// Of `connections`, those through a fault proxy (devices of
    /// `proxied_groups`, and client-id intruders, counted as if all were).
    /// MQTT connections open at once at most: devices, client-id intruders
    /// and the observer.
    pub connections: u64,
    pub proxied_connections: u64,
    /// Telemetry and commands per second, all devices together.
    pub messages_per_s: f64,
    /// Publishing time (`duration`).
    pub duration: Duration,
    /// Drain after it (the scenario's, or the default).
    pub drain: Duration,
    /// `duration + drain`.
    pub run_time: Duration,
    /// Intervals of the time series over the run time.
    pub intervals: u64,
    /// Flapping down phases × devices they hit.
    pub flap_phases: u64,
}

impl RunSize {
    pub fn of(s: &Scenario) -> RunSize {
        let devices = s
            .fleets
            .iter()
            .fold(0u64, |n, f| n.saturating_add(u64::from(f.count)));
        let mut groups: Vec<&str> = s.fleets.iter().map(|f| f.group()).collect();
        groups.sort_unstable();
        groups.dedup();
        let group_devices = |target: Option<&str>| match target {
            None => devices,
            Some(t) => s
                .fleets
                .iter()
                .filter(|f| f.group() == t)
                .fold(0u64, |n, f| n.saturating_add(u64::from(f.count))),
        };
        // Intruders of overlapping conflicts may be connected at once.
        let intruders = s
            .timeline
            .iter()
            .filter_map(|f| match f.kind {
                FaultKind::ClientIdConflict { devices: n } => {
                    Some(u64::from(n).min(group_devices(f.target.as_deref())))
                }
                _ => None,
            })
            .fold(0u64, u64::saturating_add);
        let messages_per_s = s
            .fleets
            .iter()
            .map(|f| {
                let per_device: f64 = f
                    .streams
                    .iter()
                    .map(|x| x.rate)
                    .chain(f.commands.iter().map(|x| x.rate))
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .sum();
                per_device * f64::from(f.count)
            })
            .sum();
        let drain = s
            .drain
            .unwrap_or_else(|| crate::plan::default_drain(s.profiles.values()));
        let run_time = s.duration.saturating_add(drain);
        let intervals = u64::try_from(run_time.as_nanos().div_ceil(s.interval.as_nanos().max(1)))
            .unwrap_or(u64::MAX);
        let mut proxied: Vec<&str> = Vec::new();
        for f in &s.timeline {
            if f.kind.id().target() != crate::scenario::FaultTarget::Link {
                continue;
            }
            match f.target.as_deref() {
                Some(t) => proxied.push(t),
                None => proxied.extend(groups.iter().copied()),
            }
        }
        proxied.sort_unstable();
        proxied.dedup();
        // Weather on links: every device of those groups has a proxy of its
        // own (a link); duplicate ids add an intruder per device at most.
        let mut own_links: Vec<&str> = Vec::new();
        let mut weather_intruders = 0u64;
        for w in &s.weather {
            let hit: Vec<&str> = match w.target.as_deref() {
                Some(t) => vec![t],
                None => groups.clone(),
            };
            if w.has_link_kinds() {
                own_links.extend(hit.iter().copied());
            }
            if w.duplicate_id.is_some() {
                for g in &hit {
                    weather_intruders = weather_intruders.saturating_add(group_devices(Some(g)));
                }
            }
        }
        own_links.sort_unstable();
        own_links.dedup();
        let intruders = intruders.saturating_add(weather_intruders);
        let own_link_devices = own_links
            .iter()
            .fold(0u64, |n, g| n.saturating_add(group_devices(Some(g))));
        let proxied_devices = s
            .fleets
            .iter()
            .filter(|f| proxied.contains(&f.group()))
            .fold(0u64, |n, f| n.saturating_add(u64::from(f.count)))
            .saturating_add(own_link_devices);
        let flap_phases = s
            .timeline
            .iter()
            .filter_map(|f| match f.kind {
                FaultKind::Flapping { down, up } => Some(
                    flap_cycles(f.duration.unwrap_or_default(), down, up)
                        .saturating_mul(group_devices(f.target.as_deref())),
                ),
                _ => None,
            })
            .fold(0u64, u64::saturating_add);
        RunSize {
            devices,
            groups: groups.len() as u64,
            proxied_groups: (proxied.len() as u64).saturating_add(own_link_devices),
            connections: devices
                .saturating_add(intruders)
                .saturating_add(HARNESS_CONNECTIONS),
            proxied_connections: proxied_devices.saturating_add(intruders),
            messages_per_s,
            duration: s.duration,
            drain,
            run_time,
            intervals,
            flap_phases,
        }
    }
}

impl RunSize {
    /// The share of one of `count` shards: devices and connections divided
    /// (rounded up; each shard has the harness's own connections), rates
    /// too; the rest is the whole run's.
    pub fn shard(&self, count: u32) -> RunSize {
        let n = u64::from(count.max(1));
        let own = |v: u64| v.div_ceil(n);
        RunSize {
            devices: own(self.devices),
            connections: own(self.connections.saturating_sub(HARNESS_CONNECTIONS))
                .saturating_add(HARNESS_CONNECTIONS),
            proxied_connections: own(self.proxied_connections),
            messages_per_s: self.messages_per_s / n as f64,
            flap_phases: own(self.flap_phases),
            ..*self
        }
    }
}

/// Down phases of a flapping link over `duration` (a phase that starts
/// counts; zero phases count as one each, so a 0 never divides).
pub fn flap_cycles(duration: Duration, down: Duration, up: Duration) -> u64 {
    let cycle = down.saturating_add(up).as_nanos().max(1);
    u64::try_from(duration.as_nanos().div_ceil(cycle)).unwrap_or(u64::MAX)
}

impl fmt::Display for RunSize {
    /// `50 devices, 51 connections, 60 msg/s, 8 intervals, run 1m 15s (60s + drain 15s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = crate::scenario::duration::format;
        write!(
            f,
            "{} devices in {} groups, {} connections, {} msg/s, {} intervals, run {} ({} + drain {})",
            self.devices,
            self.groups,
            self.connections,
            rate(self.messages_per_s),
            self.intervals,
            human(self.run_time),
            human(self.duration),
            human(self.drain),
        )
    }
}

/// A rate with at most three significant decimals, no trailing zeros.
fn rate(r: f64) -> String {
    let s = format!("{r:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// At most [`QUOTE_CHARS`] characters of `s`, then `…`: what a message may
/// quote of an offending value.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// `s` with any password of a URL's user info masked:
/// `tcp://user:secret@host:1883` → `tcp://user:***@host:1883`. A user
/// without a password is kept; text that is no URL is returned as it is.
pub fn redact_url(s: &str) -> String {
    let (scheme, rest) = match s.find("://") {
        Some(i) => (&s[..i + 3], &s[i + 3..]),
        None => ("", s),
    };
    // The authority ends at the first `/`, `?` or `#`; user info at its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => {
            let (info, host) = authority.split_at(at);
            let user = match info.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => info.to_string(),
            };
            format!("{scheme}{user}{host}{tail}")
        }
        None => s.to_string(),
    }
}

/// `text` with every password of a user info in it masked
/// (`tcp://user:secret@host` → `tcp://user:***@host`, also without a
/// scheme: `user:secret@host:1883`): for messages that quote a value which
/// may hold an address anywhere.
pub fn redact_urls_in(text: &str) -> String {
    let delimiter = |c: char| c.is_whitespace() || "\"`'/=,;()[]{}<>@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let start = before.rfind(delimiter).map_or(0, |i| i + 1);
        match before[start..].find(':') {
            Some(colon) => {
                out.push_str(&before[..start + colon + 1]);
                out.push_str("***");
            }
            None => out.push_str(before),
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether an address or URL carries user info (`user[:password]@`).
pub fn has_user_info(s: &str) -> bool {
    let rest = s.find("://").map_or(s, |i| &s[i + 3..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].contains('@')
}

/// `--duration`: a human duration above 0 and at most [`MAX_DURATION`].
pub fn parse_run_duration(s: &str) -> Result<Duration, String> {
    let d = crate::scenario::duration::parse(s)?;
    if d.is_zero() {
        return Err("the duration must be longer than 0".into());
    }
    if d > MAX_DURATION {
        return Err(format!(
            "{} is longer than 366 days, the longest run the harness takes",
            quote(s.trim())
        ));
    }
    Ok(d)
}

/// What the runner checks when `--duration` replaces the scenario's: the
/// timeline still fits in it and the run's size stays within bounds. The
/// message names the flag; `None` when all is well.
pub fn check_duration_override(s: &Scenario, d: Duration) -> Option<String> {
    let human = crate::scenario::duration::format;
    if d.is_zero() || d > MAX_DURATION {
        return Some(format!(
            "--duration {}: must be longer than 0 and at most 366 days",
            human(d)
        ));
    }
    for (i, f) in s.timeline.iter().enumerate() {
        if f.end() > d {
            return Some(format!(
                "--duration {}: timeline[{i}] ({}) runs until {}, beyond it",
                human(d),
                f.kind.name(),
                human(f.end())
            ));
        }
    }
    let mut shorter = s.clone();
    shorter.duration = d;
    let size = RunSize::of(&shorter);
    if size.run_time > MAX_RUN_TIME {
        return Some(format!(
            "--duration {}: with the drain of {} the run lasts longer than 366 days",
            human(d),
            human(size.drain)
        ));
    }
    if size.intervals > MAX_INTERVALS {
        return Some(format!(
            "--duration {}: the interval of {} cuts the run into {} intervals, more than {MAX_INTERVALS}",
            human(d),
            human(s.interval),
            size.intervals
        ));
    }
    None
}

/// Why the open-file limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum NofileError {
    #[error("cannot read the open-file limit (RLIMIT_NOFILE): {0}")]
    Get(nix::Error),
    #[error("cannot raise the open-file limit (RLIMIT_NOFILE) from {soft} to {hard}: {source}")]
    Set {
        soft: u64,
        hard: u64,
        #[source]
        source: nix::Error,
    },
}

/// Raise the soft open-file limit to the hard one, for this process and the
/// children it starts after (the embedded broker). Returns the limits now in
/// force: (soft, hard). The hard limit itself cannot be raised without
/// privileges and is left alone.
pub fn raise_nofile() -> Result<(u64, u64), NofileError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(NofileError::Get)?;
    if soft >= hard {
        return Ok((soft, hard));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|source| NofileError::Set {
        soft,
        hard,
        source,
    })?;
    Ok((hard, hard))
}

/// Where the link faults' proxies run, which decides the sockets a device
/// costs this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPlace {
    /// The embedded fault engine, in this process: each device connection
    /// is the device's socket plus the proxy's two (accepted, upstream).
    InProcess,
    /// Toxiproxy (`--faults toxiproxy…`): only the device's socket is ours.
    Elsewhere,
}

/// File descriptors of this process beside the connections: stdio, the
/// runtime's epoll and event fds, the report and interval files, the
/// history file, pipes of the broker child, HTTP clients of the backends,
/// the fault engine's API listener. Counted generously.
pub const BASE_FDS: u64 = 64;

/// Estimated open files of this process for a run of this size: 1 per
/// connection, plus 2 per connection through the embedded fault proxy (it
/// accepts and dials upstream) and its listener per proxied group.
pub fn fds_needed(size: &RunSize, proxies: ProxyPlace) -> u64 {
    let (relay, listeners) = match proxies {
        ProxyPlace::InProcess => (
            size.proxied_connections.saturating_mul(2),
            size.proxied_groups,
        ),
        ProxyPlace::Elsewhere => (0, 0),
    };
    size.connections
        .saturating_add(relay)
        .saturating_add(listeners)
        .saturating_add(BASE_FDS)
}

/// Refuse a run that needs more open files than the soft limit allows.
pub fn check_fds(needed: u64, soft: u64) -> Result<(), String> {
    if needed <= soft {
        return Ok(());
    }
    Err(format!(
        "this run needs about {needed} open files (1 per device, 2 more for each device of a \
         group a link fault reaches, which connects through the embedded fault proxy, plus \
         {BASE_FDS} of the harness's own), but the open-file limit is {soft}: run fewer devices \
         (at most about {} when every group has link faults, {} when none has), split the fleet \
         into shards (--workers N, or --shard I/N on several machines), or put the fault proxies \
         in another process (--faults toxiproxy=http://HOST:PORT)",
        soft.saturating_sub(BASE_FDS + HARNESS_CONNECTIONS) / 3,
        soft.saturating_sub(BASE_FDS + HARNESS_CONNECTIONS),
    ))
}

/// Resident memory a simulated device costs, counted generously (measured:
/// 82–94 KB at 1 000–10 000 devices).
pub const BYTES_PER_DEVICE: u64 = 160 * 1024;

/// Refuse a run whose devices would not fit in the memory available
/// (`available`: MemAvailable, bytes).
pub fn check_memory(devices: u64, available: u64) -> Result<(), String> {
    let needed = devices.saturating_mul(BYTES_PER_DEVICE);
    if needed <= available {
        return Ok(());
    }
    Err(format!(
        "{devices} devices need about {} MiB of memory ({} KiB each), but {} MiB are available: \
         run fewer devices, or split the fleet into shards on several machines (--shard I/N)",
        needed >> 20,
        BYTES_PER_DEVICE >> 10,
        available >> 20
    ))
}

/// Refuse more connections to the broker's one address than there are
/// ephemeral ports to connect from (`ports`: the size of
/// `net.ipv4.ip_local_port_range`; every connection to one address needs a
/// port of its own from its local address). `direct` connections go from
/// the kernel's choice of local address (127.0.0.1 towards a loopback
/// broker); the embedded proxy's `proxied` upstream connections go from
/// `sources` in turn (`--source-addresses`), or from the kernel's choice
/// when there are none.
pub fn check_ports(
    direct: u64,
    proxied: u64,
    sources: &[std::net::IpAddr],
    ports: u64,
) -> Result<(), String> {
    let default_ip: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let k = sources.len() as u64;
    // (local address, connections from it), the busiest first.
    let mut loads: Vec<(String, u64)> = Vec::new();
    if k == 0 {
        loads.push(("the kernel's choice".into(), direct + proxied));
    } else {
        let share = proxied.div_ceil(k);
        let mut kernel = direct;
        for ip in sources {
            if *ip == default_ip {
                kernel += share;
            } else {
                loads.push((ip.to_string(), share));
            }
        }
        loads.push(("the kernel's choice".into(), kernel));
    }
    loads.sort_by_key(|l| std::cmp::Reverse(l.1));
    let (from, busiest) = &loads[0];
    if *busiest <= ports {
        return Ok(());
    }
    let total = direct + proxied;
    let hint = if k == 0 && proxied > 0 {
        "; --source-addresses 127.0.0.2-127.0.0.9 spreads the fault proxies' upstream connections over more local addresses"
    } else {
        ""
    };
    Err(format!(
        "this run opens about {total} connections to the broker's address, {busiest} of them from \
         one local address ({from}), but this machine has {ports} ephemeral ports to open them \
         from (net.ipv4.ip_local_port_range): run fewer devices here, or put shards on several \
         machines (--shard I/N){hint}"
    ))
}

/// The number of ports in net.ipv4.ip_local_port_range (`None` where it
/// cannot be read).
pub fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    Some(hi.saturating_sub(lo) + 1)
}

/// MemAvailable of /proc/meminfo, in bytes (`None` where it cannot be read).
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::validate_tests::base;

    #[test]
    fn a_password_in_a_url_is_masked_and_the_rest_kept() {
        assert_eq!(
            redact_url("tcp://user:secret@host:1883"),
            "tcp://user:***@host:1883"
        );
        assert_eq!(
            redact_url("toxiproxy=http://u:p@w@h:8474/x?y"),
            "toxiproxy=http://u:***@h:8474/x?y"
        );
        assert_eq!(redact_url("tcp://user@host:1883"), "tcp://user@host:1883");
        assert_eq!(redact_url("tcp://host:1883"), "tcp://host:1883");
        assert_eq!(redact_url("mosquito"), "mosquito");
        assert_eq!(redact_url("a:b@c"), "a:***@c");
        assert_eq!(
            redact_urls_in(
                "name \"tcp://user:secret@host:1883\" and `mqtt://a:b@c/x` or http://h/"
            ),
            "name \"tcp://user:***@host:1883\" and `mqtt://a:***@c/x` or http://h/"
        );
        assert_eq!(
            redact_urls_in("\"docker=c@user:secret@h:1883\" a@b"),
            "\"docker=c@user:***@h:1883\" a@b"
        );
        assert!(has_user_info("tcp://a@b:1"));
        assert!(!has_user_info("tcp://b:1/x@y"));
    }

    #[test]
    fn quotes_stop_after_64_characters() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(10_000);
        let q = quote(&long);
        assert_eq!(q.chars().count(), QUOTE_CHARS + 1);
        assert!(q.ends_with('…'));
        assert_eq!(quote(&"x".repeat(64)), "x".repeat(64));
    }

    #[test]
    fn the_size_of_the_base_scenario_counts_devices_messages_and_time() {
        let s = base();
        let size = RunSize::of(&s);
        assert_eq!(size.devices, 5);
        assert_eq!(size.groups, 2);
        assert_eq!(size.connections, 7);
        // fleet a: 3 × (1 + 0.5), fleet b: 2 × 1.
        assert!((size.messages_per_s - 6.5).abs() < 1e-9);
        // Default drain: 2 × 5 s + 5 s.
        assert_eq!(size.drain, Duration::from_secs(15));
        assert_eq!(size.run_time, Duration::from_secs(75));
        assert_eq!(size.intervals, 2);
        assert_eq!(
            size.to_string(),
            "5 devices in 2 groups, 7 connections, 6.5 msg/s, 2 intervals, run 1m 15s (1m + drain 15s)"
        );
    }

    #[test]
    fn sizes_saturate_instead_of_overflowing() {
        let mut s = base();
        s.duration = Duration::MAX;
        s.interval = Duration::from_nanos(1);
        for f in &mut s.fleets {
            f.count = u32::MAX;
            f.streams[0].rate = f64::INFINITY;
        }
        let size = RunSize::of(&s);
        assert_eq!(size.run_time, Duration::MAX);
        assert_eq!(size.intervals, u64::MAX);
        assert_eq!(size.devices, 2 * u64::from(u32::MAX));
        assert!(size.messages_per_s.is_finite());
        assert_eq!(
            flap_cycles(Duration::MAX, Duration::ZERO, Duration::ZERO),
            u64::MAX
        );
        assert_eq!(
            flap_cycles(
                Duration::from_secs(91),
                Duration::from_secs(38),
                Duration::from_secs(15)
            ),
            2
        );
    }

    #[test]
    fn descriptors_are_three_per_device_through_the_embedded_proxy_one_straight() {
        let mut s = base();
        let size = RunSize::of(&s);
        // Only group a has a link fault: its 3 devices × 3, gb's 2 × 1,
        // a's proxy listener, the observer's two, the base.
        assert_eq!((size.proxied_groups, size.proxied_connections), (1, 3));
        assert_eq!(
            fds_needed(&size, ProxyPlace::InProcess),
            9 + 2 + 1 + 2 + BASE_FDS
        );
        assert_eq!(fds_needed(&size, ProxyPlace::Elsewhere), 5 + 2 + BASE_FDS);
        // No link fault: every device connects straight to the broker.
        s.timeline.clear();
        let size = RunSize::of(&s);
        assert_eq!((size.proxied_groups, size.proxied_connections), (0, 0));
        assert_eq!(fds_needed(&size, ProxyPlace::InProcess), 5 + 2 + BASE_FDS);
        assert_eq!(check_fds(100, 100), Ok(()));
        let m = check_fds(300_065, 20_000).unwrap_err();
        assert!(m.contains("300065 open files"), "{m}");
        assert!(m.contains("limit is 20000"), "{m}");
        assert!(m.contains("at most about 6644 when every group"), "{m}");
        assert!(m.contains("19934 when none"), "{m}");
        assert!(m.contains("--workers N"), "{m}");
    }

    #[test]
    fn a_shard_holds_its_share_of_the_devices() {
        let size = RunSize::of(&base());
        let third = size.shard(3);
        assert_eq!(third.devices, 2);
        assert_eq!(third.connections, 2 + HARNESS_CONNECTIONS);
        assert_eq!(size.shard(1).connections, size.connections);
    }

    #[test]
    fn connections_beyond_the_ephemeral_ports_are_refused() {
        assert_eq!(check_ports(28_232, 0, &[], 28_232), Ok(()));
        let m = check_ports(6_002, 30_000, &[], 28_232).unwrap_err();
        assert!(
            m.contains("36002 connections") && m.contains("28232 ephemeral ports"),
            "{m}"
        );
        assert!(m.contains("--source-addresses"), "{m}");
        // Two source addresses take 15 000 proxied connections each.
        let two: Vec<std::net::IpAddr> =
            vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        assert_eq!(check_ports(6_002, 30_000, &two, 28_232), Ok(()));
        // Direct connections cannot be spread: the kernel picks their address.
        let m = check_ports(30_000, 10, &two, 28_232).unwrap_err();
        assert!(
            m.contains("30000 of them from one local address (the kernel's choice)"),
            "{m}"
        );
        assert!(!m.contains("--source-addresses 127"), "{m}");
        // 127.0.0.1 listed shares its ports with the direct connections.
        let with_default: Vec<std::net::IpAddr> =
            vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
        let m = check_ports(20_000, 20_000, &with_default, 28_232).unwrap_err();
        assert!(m.contains("30000 of them"), "{m}");
        // 32768-60999 here.
        assert!(ephemeral_ports().is_some_and(|n| n > 1000));
    }

    #[test]
    fn memory_is_refused_with_the_numbers() {
        assert_eq!(check_memory(10, 10 * BYTES_PER_DEVICE), Ok(()));
        let m = check_memory(100_000, 1 << 30).unwrap_err();
        assert!(m.contains("100000 devices need about 15625 MiB"), "{m}");
        assert!(m.contains("1024 MiB are available"), "{m}");
    }

    #[test]
    fn a_run_duration_is_above_zero_and_at_most_366_days() {
        assert_eq!(parse_run_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_run_duration("366days"), Ok(MAX_DURATION));
        for bad in ["18446744073709551615s", "367days", "0s", "soon"] {
            assert!(parse_run_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_duration_override_keeps_the_timeline_and_the_size_in_bounds() {
        let s = base();
        assert_eq!(check_duration_override(&s, Duration::from_secs(40)), None);
        let m = check_duration_override(&s, Duration::from_secs(20)).unwrap();
        assert!(
            m.contains("timeline[1] (broker_restart) runs until 22s"),
            "{m}"
        );
        let m = check_duration_override(&s, Duration::MAX).unwrap();
        assert!(m.contains("at most 366 days"), "{m}");
        let mut s = base();
        s.interval = Duration::from_millis(100);
        let m = check_duration_override(&s, Duration::from_secs(200 * 86_400)).unwrap();
        assert!(m.contains("intervals, more than 1000000"), "{m}");
    }

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = raise_nofile().expect("getrlimit works here");
        assert_eq!(soft, hard);
        // Idempotent.
        assert_eq!(raise_nofile().unwrap(), (soft, hard));
    }
}

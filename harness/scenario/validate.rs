//! The rules a scenario must follow.
//!
//! Pure: [`check`] takes a parsed scenario and names each broken rule by
//! field path (`profiles.recommended.ping_timeout`, `timeline[2].duration`);
//! `load.rs` locates the paths in the text. Legal but weak client
//! configurations are `lint.rs`'s business.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use super::duration::format as human;
use super::load::{error_at, path_key, ScenarioError};
use super::slo::{self, SloError};
use super::{ClientIdStrategy, FaultKind, Fleet, Profile, Scenario};

/// Most devices one fleet may have.
pub const MAX_FLEET_COUNT: u32 = 100_000;
/// Highest publish rate of a stream or command, per device.
pub const MAX_RATE: f64 = 1000.0;
/// Largest payload of a stream or command.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Resolved topics checked for collisions; beyond this only the templates
/// are checked (`{device}` present), to keep validation fast and small.
const MAX_RESOLVED_TOPICS: usize = 2_000_000;

/// One broken rule, before it is located in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// Check every rule; the problems are located in `text` (the file's text,
/// for positions) and named after `path`.
pub fn validate(path: &Path, text: &str, scenario: &Scenario) -> Result<(), ScenarioError> {
    let errors = check(scenario)
        .into_iter()
        .map(|i| error_at(path, text, &i.path, i.message));
    match ScenarioError::join(errors) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Every broken rule of a scenario, in the order of the file's sections.
pub fn check(s: &Scenario) -> Vec<Issue> {
    let mut c = Checker::default();
    c.top(s);
    for (name, p) in &s.profiles {
        c.profile(s, name, p);
    }
    c.fleets(s);
    c.topics(s);
    c.timeline(s);
    c.slo(s);
    c.issues
}

#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
    /// A topic template or fleet name is wrong: resolving topics would only
    /// repeat it.
    bad_topics: bool,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn top(&mut self, s: &Scenario) {
        if s.name.trim().is_empty() {
            self.err("name", "name must not be empty");
        } else if !is_dir_name(&s.name) {
            self.err(
                "name",
                format!(
                    "name \"{}\" must be usable as a directory name: letters, digits, `_`, `-`, `.`, \
                     not starting with `.`, at most 100 characters",
                    s.name
                ),
            );
        }
        for (field, d) in [
            ("duration", s.duration),
            ("settle", s.settle),
            ("interval", s.interval),
        ] {
            if d.is_zero() {
                self.err(field, format!("{field} must be longer than 0"));
            }
        }
        if s.profiles.is_empty() {
            self.err(
                "profiles",
                "at least one profile is needed ([profiles.NAME])",
            );
        }
        if s.fleets.is_empty() {
            self.err("fleets", "at least one fleet is needed ([[fleets]])");
        }
    }

    fn profile(&mut self, s: &Scenario, name: &str, p: &Profile) {
        let at = |field: &str| format!("profiles.{}.{field}", path_key(name));
        if !is_ident(name) {
            self.err(
                format!("profiles.{}", path_key(name)),
                format!(
                    "profile name \"{name}\" may only hold letters, digits, `_` and `-` \
                     (it prefixes SLO keys and names report sections)"
                ),
            );
        }
        if let Some(k) = p.keepalive {
            if k < Duration::from_secs(1) {
                self.err(
                    at("keepalive"),
                    format!(
                        "keepalive {} is below 1s (rumqttc panics below 1 s); write \"off\" for none",
                        human(k)
                    ),
                );
            } else if k > Duration::from_secs(65535) {
                self.err(
                    at("keepalive"),
                    format!(
                        "keepalive {} is above 65535s, the most MQTT's 16-bit field holds",
                        human(k)
                    ),
                );
            } else if k.subsec_nanos() != 0 {
                self.err(
                    at("keepalive"),
                    format!(
                        "keepalive {} must be whole seconds (MQTT sends it in seconds)",
                        human(k)
                    ),
                );
            }
        }
        match (p.ping_timeout, p.keepalive) {
            (Some(t), _) if t.is_zero() => self.err(
                at("ping_timeout"),
                "ping_timeout must be longer than 0; write \"off\" for none",
            ),
            (Some(_), None) => self.err(
                at("ping_timeout"),
                "ping_timeout needs a keepalive: with keepalive \"off\" no PINGREQ is sent, so none can time out",
            ),
            (Some(t), Some(k)) if t >= k => self.err(
                at("ping_timeout"),
                format!(
                    "ping_timeout must be shorter than keepalive (ping_timeout {}, keepalive {})",
                    human(t),
                    human(k)
                ),
            ),
            _ => {}
        }
        if p.connect_timeout.is_zero() {
            self.err(
                at("connect_timeout"),
                "connect_timeout must be longer than 0",
            );
        }
        if let Some(r) = &p.reconnect {
            if r.initial.is_zero() {
                self.err(
                    at("reconnect.initial"),
                    "reconnect initial must be longer than 0",
                );
            }
            if r.max < r.initial {
                self.err(
                    at("reconnect.max"),
                    format!(
                        "reconnect max {} must not be shorter than initial {}",
                        human(r.max),
                        human(r.initial)
                    ),
                );
            }
            if !(0.0..1.0).contains(&r.jitter) {
                self.err(
                    at("reconnect.jitter"),
                    format!(
                        "reconnect jitter {} must be in [0, 1) (a fraction of the backoff)",
                        r.jitter
                    ),
                );
            }
        }
        if p.ack.wait && p.ack.timeout.is_zero() {
            self.err(
                at("ack.timeout"),
                "ack.timeout must be longer than 0 when ack.wait is true",
            );
        }
        if p.inflight == 0 {
            self.err(at("inflight"), "inflight must be in 1..=65535");
        }
        if let ClientIdStrategy::Fixed(id) = &p.client_id {
            if id.is_empty() {
                self.err(at("client_id"), "a fixed client id must not be empty");
            }
        }
        if let Some(w) = &p.will {
            self.topic(&at("will.topic"), &w.topic, &["device", "group", "fleet"]);
            if w.qos > 2 {
                self.err(
                    at("will.qos"),
                    format!("will qos {} must be 0, 1 or 2", w.qos),
                );
            }
        }
        if p.online_republish && p.will.is_none() {
            self.err(
                at("online_republish"),
                "online_republish needs a will: it republishes `online` on the will topic",
            );
        }
        let users: Vec<&Fleet> = s.fleets.iter().filter(|f| f.profile == name).collect();
        for (key, q) in &p.qos {
            let field = format!("profiles.{}.qos.{}", path_key(name), path_key(key));
            if *q > 2 {
                self.err(&field, format!("qos {q} must be 0, 1 or 2"));
            }
            let known = users.iter().any(|f| {
                f.streams.iter().any(|x| &x.name == key)
                    || f.commands.iter().any(|x| &x.name == key)
            });
            if !known {
                self.err(
                    &field,
                    format!(
                        "\"{key}\" names no stream or command of the fleets using profile \"{name}\""
                    ),
                );
            }
        }
    }

    fn fleets(&mut self, s: &Scenario) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, f) in s.fleets.iter().enumerate() {
            let at = |field: &str| format!("fleets[{i}].{field}");
            if !is_ident(&f.name) {
                self.err(
                    at("name"),
                    format!(
                        "fleet name \"{}\" must be non-empty and hold only letters, digits, `_` and `-`",
                        f.name
                    ),
                );
            } else if let Some(j) = seen.insert(&f.name, i) {
                // Device names repeat too: resolved topics would only echo this.
                self.bad_topics = true;
                self.err(
                    at("name"),
                    format!("fleet name \"{}\" is already used by fleets[{j}]", f.name),
                );
            }
            if let Some(g) = &f.group {
                if !is_ident(g) {
                    self.err(
                        at("group"),
                        format!(
                            "group \"{g}\" must be non-empty and hold only letters, digits, `_` and `-`"
                        ),
                    );
                }
            }
            if f.count == 0 {
                self.err(at("count"), "count must be at least 1");
            } else if f.count > MAX_FLEET_COUNT {
                self.err(
                    at("count"),
                    format!(
                        "count {} is above {MAX_FLEET_COUNT} devices per fleet",
                        f.count
                    ),
                );
            }
            if !s.profiles.contains_key(&f.profile) {
                self.err(
                    at("profile"),
                    format!(
                        "no profile named \"{}\" (profiles: {})",
                        f.profile,
                        names(s.profiles.keys())
                    ),
                );
            }
            let mut names_seen: HashMap<&str, String> = HashMap::new();
            let flows = f
                .streams
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    (
                        format!("fleets[{i}].streams[{j}]"),
                        &x.name,
                        &x.topic,
                        x.qos,
                        x.rate,
                        x.payload_size,
                    )
                })
                .chain(f.commands.iter().enumerate().map(|(j, x)| {
                    (
                        format!("fleets[{i}].commands[{j}]"),
                        &x.name,
                        &x.topic,
                        x.qos,
                        x.rate,
                        x.payload_size,
                    )
                }));
            for (base, name, topic, qos, rate, size) in flows {
                if name.trim().is_empty() {
                    self.err(format!("{base}.name"), "name must not be empty");
                } else if let Some(first) = names_seen.insert(name, base.clone()) {
                    self.err(
                        format!("{base}.name"),
                        format!(
                            "\"{name}\" is already the name of {first}; stream and command names \
                             must be unique within a fleet"
                        ),
                    );
                }
                let topic_path = format!("{base}.topic");
                if self.topic(&topic_path, topic, &["device", "group", "fleet", "stream"])
                    && f.count > 1
                    && !topic.contains("{device}")
                {
                    self.bad_topics = true;
                    self.err(
                        &topic_path,
                        format!(
                            "topic \"{topic}\" is the same for all {} devices: put {{device}} in it",
                            f.count
                        ),
                    );
                }
                if qos > 2 {
                    self.err(
                        format!("{base}.qos"),
                        format!("qos {qos} must be 0, 1 or 2"),
                    );
                }
                if !(rate > 0.0 && rate <= MAX_RATE) {
                    self.err(
                        format!("{base}.rate"),
                        format!("rate {rate} must be above 0 and at most {MAX_RATE} per second"),
                    );
                }
                if size > MAX_PAYLOAD {
                    self.err(
                        format!("{base}.payload_size"),
                        format!("payload_size {size} is above {MAX_PAYLOAD} bytes (256 KiB)"),
                    );
                }
            }
        }
    }

    /// Check one publish-topic template; true when it is well-formed.
    fn topic(&mut self, path: &str, topic: &str, known: &[&str]) -> bool {
        let ok = self.topic_rules(path, topic, known);
        self.bad_topics |= !ok;
        ok
    }

    fn topic_rules(&mut self, path: &str, topic: &str, known: &[&str]) -> bool {
        if topic.is_empty() {
            self.err(path, "topic must not be empty");
            return false;
        }
        if topic.contains(['+', '#']) {
            self.err(
                path,
                format!("topic \"{topic}\" has a wildcard (`+` or `#`); publish topics cannot"),
            );
            return false;
        }
        if topic.starts_with('$') {
            self.err(
                path,
                format!("topic \"{topic}\" starts with `$`, which brokers keep for themselves"),
            );
            return false;
        }
        if topic.contains('\0') {
            self.err(path, "topic must not hold a NUL character");
            return false;
        }
        match placeholders(topic) {
            Err(m) => {
                self.err(path, format!("topic \"{topic}\": {m}"));
                false
            }
            Ok(found) => {
                let unknown: Vec<&str> = found.into_iter().filter(|p| !known.contains(p)).collect();
                if unknown.is_empty() {
                    true
                } else {
                    self.err(
                        path,
                        format!(
                            "topic \"{topic}\": unknown placeholder {}; known: {}",
                            unknown
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            known
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    false
                }
            }
        }
    }

    /// Every device's resolved topics (telemetry, commands, will) must be
    /// its own. Skipped while a template has errors (they say it better).
    fn topics(&mut self, s: &Scenario) {
        if self.bad_topics {
            return;
        }
        let total: usize = s
            .fleets
            .iter()
            .map(|f| f.count as usize * (f.streams.len() + f.commands.len() + 1))
            .sum();
        if total > MAX_RESOLVED_TOPICS {
            return;
        }
        // topic -> (field path, device) of its first user
        let mut owner: HashMap<String, (String, String)> = HashMap::with_capacity(total);
        let mut reported: Vec<String> = Vec::new();
        for (i, f) in s.fleets.iter().enumerate() {
            let group = f.group();
            let will = s.profiles.get(&f.profile).and_then(|p| p.will.as_ref());
            for n in 0..f.count {
                let device = format!("{}-{:04}", f.name, n);
                let resolve = |t: &str, stream: &str| {
                    t.replace("{device}", &device)
                        .replace("{group}", group)
                        .replace("{fleet}", &f.name)
                        .replace("{stream}", stream)
                };
                let mut mine: Vec<(String, String)> = Vec::new();
                for (j, x) in f.streams.iter().enumerate() {
                    mine.push((
                        format!("fleets[{i}].streams[{j}].topic"),
                        resolve(&x.topic, &x.name),
                    ));
                }
                for (j, x) in f.commands.iter().enumerate() {
                    mine.push((
                        format!("fleets[{i}].commands[{j}].topic"),
                        resolve(&x.topic, &x.name),
                    ));
                }
                if let Some(w) = will {
                    mine.push((
                        format!("profiles.{}.will.topic", path_key(&f.profile)),
                        resolve(&w.topic, ""),
                    ));
                }
                for (path, topic) in mine {
                    match owner.get(&topic) {
                        Some((first, other)) => {
                            if !reported.contains(&path) {
                                self.err(
                                    &path,
                                    format!(
                                        "topic \"{topic}\" of device {device} is also the topic of \
                                         {other} ({first}); every device needs its own topics"
                                    ),
                                );
                                reported.push(path);
                            }
                        }
                        None => {
                            owner.insert(topic, (path, device.clone()));
                        }
                    }
                }
            }
        }
    }

    fn timeline(&mut self, s: &Scenario) {
        let groups = device_groups(s);
        let mut broker: Vec<(usize, Duration, Duration, &'static str)> = Vec::new();
        for (k, f) in s.timeline.iter().enumerate() {
            let at = |field: &str| format!("timeline[{k}].{field}");
            let kind = f.kind.name();
            if f.at >= s.duration {
                self.err(
                    at("at"),
                    format!(
                        "at {} is not before the end of the run (duration {})",
                        human(f.at),
                        human(s.duration)
                    ),
                );
            }
            let optional = matches!(
                f.kind,
                FaultKind::DeviceCrash { .. } | FaultKind::BrokerRestart | FaultKind::BrokerKill
            );
            match f.duration {
                None if !optional => self.err(
                    at("duration"),
                    format!("duration is required for kind `{kind}`"),
                ),
                Some(d) if d.is_zero() && !f.kind.is_broker_fault() => self.err(
                    at("duration"),
                    if optional {
                        "duration must be longer than 0; leave it out and the devices stay dead"
                            .to_string()
                    } else {
                        format!("duration of `{kind}` must be longer than 0")
                    },
                ),
                Some(d)
                    if d.is_zero()
                        && matches!(f.kind, FaultKind::BrokerPause | FaultKind::BrokerPartition) =>
                {
                    self.err(
                        at("duration"),
                        format!("duration of `{kind}` must be longer than 0"),
                    )
                }
                Some(d) if f.at < s.duration && f.at + d > s.duration => self.err(
                    at("duration"),
                    format!(
                        "the fault must heal inside the run: at {} + duration {} ends after the run's {}",
                        human(f.at),
                        human(d),
                        human(s.duration)
                    ),
                ),
                _ => {}
            }
            let hit_devices = match &f.target {
                Some(_) if f.kind.is_broker_fault() => {
                    self.err(
                        at("target"),
                        format!("`{kind}` hits the broker, not a group: remove target"),
                    );
                    None
                }
                Some(t) => match groups.get(t.as_str()) {
                    Some(n) => Some(*n),
                    None => {
                        self.err(
                            at("target"),
                            format!("no group named \"{t}\" (groups: {})", names(groups.keys())),
                        );
                        None
                    }
                },
                None => Some(groups.values().sum::<u64>()),
            };
            self.fault_fields(k, &f.kind, hit_devices, f.target.as_deref());
            if f.kind.is_broker_fault() {
                broker.push((k, f.at, f.at + f.duration.unwrap_or_default(), kind));
            }
        }
        // Two broker faults must not overlap: the broker takes one at a time.
        broker.sort_by_key(|&(k, at, _, _)| (at, k));
        for (n, &(k, at, _, _)) in broker.iter().enumerate() {
            let clash = broker[..n]
                .iter()
                .find(|&&(_, a, end, _)| at < end || at == a);
            if let Some(&(j, a, end, other)) = clash {
                self.err(
                    format!("timeline[{k}].at"),
                    format!(
                        "overlaps broker fault timeline[{j}] (`{other}` from {} to {}); \
                         the broker takes one fault at a time",
                        human(a),
                        human(end)
                    ),
                );
            }
        }
    }

    fn fault_fields(&mut self, k: usize, kind: &FaultKind, hit: Option<u64>, target: Option<&str>) {
        let at = |field: &str| format!("timeline[{k}].{field}");
        let toxicity = match kind {
            FaultKind::Latency { toxicity, .. }
            | FaultKind::Bandwidth { toxicity, .. }
            | FaultKind::Blackhole { toxicity, .. }
            | FaultKind::ResetPeer { toxicity, .. }
            | FaultKind::SlowClose { toxicity, .. }
            | FaultKind::Slicer { toxicity, .. }
            | FaultKind::LimitData { toxicity, .. } => *toxicity,
            _ => None,
        };
        if let Some(t) = toxicity {
            if !(0.0..=1.0).contains(&t) {
                self.err(
                    at("toxicity"),
                    format!("toxicity {t} must be in [0, 1] (the share of connections hit)"),
                );
            }
        }
        match kind {
            FaultKind::Latency { latency, .. } if latency.is_zero() => {
                self.err(at("latency"), "latency must be longer than 0")
            }
            FaultKind::Bandwidth { rate: 0, .. } => self.err(
                at("rate"),
                "rate must be above 0 KB/s (use blackhole for none)",
            ),
            FaultKind::Slicer {
                average_size,
                size_variation,
                ..
            } => {
                if *average_size == 0 {
                    self.err(at("average_size"), "average_size must be above 0 bytes");
                } else if size_variation >= average_size {
                    self.err(
                        at("size_variation"),
                        format!(
                            "size_variation {size_variation} must be below average_size \
                             {average_size} (slices must stay at least 1 byte)"
                        ),
                    );
                }
            }
            FaultKind::Flapping { down, up } => {
                if down.is_zero() {
                    self.err(at("down"), "down must be longer than 0");
                }
                if up.is_zero() {
                    self.err(at("up"), "up must be longer than 0");
                }
            }
            FaultKind::DeviceCrash { devices } | FaultKind::ClientIdConflict { devices } => {
                if *devices == 0 {
                    self.err(at("devices"), "devices must be at least 1");
                } else if let Some(n) = hit {
                    if u64::from(*devices) > n {
                        self.err(
                            at("devices"),
                            format!(
                                "devices {devices} is more than the {n} devices of {}",
                                match target {
                                    Some(g) => format!("group \"{g}\""),
                                    None => "the run".to_string(),
                                }
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn slo(&mut self, s: &Scenario) {
        let profiles: Vec<&str> = s.profiles.keys().map(String::as_str).collect();
        for (key, limit) in &s.slo {
            if let Err(SloError::Key(m) | SloError::Limit(m)) = slo::parse(key, limit, &profiles) {
                self.err(format!("slo.{}", path_key(key)), m);
            }
        }
    }
}

/// Device count of each group.
fn device_groups(s: &Scenario) -> BTreeMap<&str, u64> {
    let mut g = BTreeMap::new();
    for f in &s.fleets {
        *g.entry(f.group()).or_insert(0) += u64::from(f.count);
    }
    g
}

fn names<'a>(it: impl Iterator<Item = &'a (impl AsRef<str> + ?Sized + 'a)>) -> String {
    let v: Vec<&str> = it.map(|s| s.as_ref()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_dir_name(s: &str) -> bool {
    s.len() <= 100
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The `{names}` of a template, or why it is malformed.
fn placeholders(t: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("`}` without `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("`{` without `}`")?;
        let name = &after[..close];
        if name.contains('{') {
            return Err("`{` without `}`".into());
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::scenario::{AckPolicy, CommandSpec, FaultSpec, Reconnect, StreamSel, StreamSpec};

    const BASE: &str = r#"
name = "rules"
duration = "60s"

[profiles.good]
keepalive = "5s"
ping_timeout = "2s"
reconnect = { initial = "500ms", max = "5s", jitter = 0.2 }
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true

[profiles.other]
keepalive = "10s"
ping_timeout = "3s"
reconnect = { initial = "1s", max = "4s", jitter = 0.1 }
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true

[[fleets]]
name = "a"
count = 3
profile = "good"
streams = [{ name = "telemetry", topic = "t/{fleet}/{device}", rate = 1.0 }]
commands = [{ name = "control", topic = "c/{device}/{stream}", rate = 0.5 }]

[[fleets]]
name = "b"
group = "gb"
count = 2
profile = "other"
streams = [{ name = "telemetry", topic = "t/{fleet}/{device}", rate = 1.0 }]

[[timeline]]
at = "10s"
duration = "5s"
kind = "link_down"
target = "a"

[[timeline]]
at = "20s"
duration = "2s"
kind = "broker_restart"

[[timeline]]
at = "30s"
kind = "device_crash"
target = "gb"
devices = 2

[slo]
lost_after_ack = "= 0"
"good.reconnect_after_heal.p99" = "<= 10s"
"#;

    /// A scenario that follows every rule and has no lints.
    pub(in crate::scenario) fn base() -> Scenario {
        toml::from_str(BASE).expect("the base scenario parses")
    }

    /// The one issue of `s`, which must be at `path` and say `needle`.
    #[track_caller]
    fn only_issue(s: &Scenario, path: &str, needle: &str) {
        let issues = check(s);
        assert_eq!(
            issues.len(),
            1,
            "expected one issue at {path}, got {issues:#?}"
        );
        assert_eq!(issues[0].path, path, "{issues:#?}");
        assert!(
            issues[0].message.contains(needle),
            "{:?} does not say {needle:?}",
            issues[0].message
        );
    }

    #[track_caller]
    fn clean(s: &Scenario) {
        let issues = check(s);
        assert!(issues.is_empty(), "{issues:#?}");
    }

    pub(in crate::scenario) fn fault(
        at: u64,
        duration: Option<u64>,
        target: Option<&str>,
        kind: FaultKind,
    ) -> FaultSpec {
        FaultSpec {
            at: Duration::from_secs(at),
            duration: duration.map(Duration::from_secs),
            target: target.map(str::to_string),
            kind,
        }
    }

    pub(in crate::scenario) fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    pub(in crate::scenario) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_base_scenario_follows_every_rule() {
        clean(&base());
    }

    #[test]
    fn the_name_must_be_non_empty_and_usable_as_a_directory() {
        let mut s = base();
        s.name = " ".into();
        only_issue(&s, "name", "must not be empty");
        for bad in ["a/b", "..", ".hidden", "a b", &"x".repeat(101)] {
            s.name = bad.into();
            only_issue(&s, "name", "directory name");
        }
        s.name = "soak-72h.v2".into();
        clean(&s);
    }

    #[test]
    fn duration_settle_and_interval_must_be_above_zero() {
        let mut s = base();
        s.timeline.clear();
        s.duration = Duration::ZERO;
        only_issue(&s, "duration", "longer than 0");
        let mut s = base();
        s.settle = Duration::ZERO;
        only_issue(&s, "settle", "longer than 0");
        let mut s = base();
        s.interval = Duration::ZERO;
        only_issue(&s, "interval", "longer than 0");
    }

    #[test]
    fn a_scenario_needs_a_profile_and_a_fleet() {
        let mut s = base();
        s.fleets.clear();
        s.timeline.clear();
        s.profiles.values_mut().for_each(|p| p.qos.clear());
        only_issue(&s, "fleets", "at least one fleet");
        let mut s = base();
        s.profiles.clear();
        s.slo.clear();
        let issues = check(&s);
        assert!(issues
            .iter()
            .any(|i| i.path == "profiles" && i.message.contains("at least one profile")));
    }

    #[test]
    fn profile_names_are_plain_identifiers() {
        let mut s = base();
        let p = s.profiles.remove("other").unwrap();
        s.profiles.insert("my.other".into(), p);
        s.fleets[1].profile = "my.other".into();
        only_issue(&s, "profiles.\"my.other\"", "letters, digits");
    }

    #[test]
    fn fleet_names_are_unique_and_plain() {
        let mut s = base();
        s.fleets[1].name = "a".into();
        only_issue(&s, "fleets[1].name", "already used by fleets[0]");
        s.fleets[1].name = "b b".into();
        only_issue(&s, "fleets[1].name", "letters, digits");
        s.fleets[1].name = String::new();
        only_issue(&s, "fleets[1].name", "non-empty");
        let mut s = base();
        s.fleets[1].group = Some("g/1".into());
        s.timeline[2].target = None;
        only_issue(&s, "fleets[1].group", "letters, digits");
    }

    #[test]
    fn fleet_count_is_between_one_and_a_hundred_thousand() {
        let mut s = base();
        s.fleets[0].count = 0;
        only_issue(&s, "fleets[0].count", "at least 1");
        s.fleets[0].count = MAX_FLEET_COUNT + 1;
        only_issue(&s, "fleets[0].count", "above 100000");
    }

    #[test]
    fn a_fleet_names_an_existing_profile() {
        let mut s = base();
        s.fleets[1].profile = "missing".into();
        let issues = check(&s);
        assert!(issues.iter().any(|i| i.path == "fleets[1].profile"
            && i.message == "no profile named \"missing\" (profiles: good, other)"));
    }

    #[test]
    fn stream_and_command_names_are_unique_within_a_fleet() {
        let mut s = base();
        let mut dup = s.fleets[0].streams[0].clone();
        dup.topic = "u/{device}".into();
        s.fleets[0].streams.push(dup);
        only_issue(
            &s,
            "fleets[0].streams[1].name",
            "already the name of fleets[0].streams[0]",
        );
        let mut s = base();
        s.fleets[0].commands[0].name = "telemetry".into();
        only_issue(&s, "fleets[0].commands[0].name", "unique within a fleet");
        let mut s = base();
        s.fleets[0].streams[0].name = String::new();
        only_issue(&s, "fleets[0].streams[0].name", "must not be empty");
    }

    #[test]
    fn publish_topics_are_non_empty_and_free_of_wildcards() {
        for (topic, needle) in [
            ("", "must not be empty"),
            ("t/+/{device}", "wildcard"),
            ("t/{device}/#", "wildcard"),
            ("$SYS/{device}", "starts with `$`"),
        ] {
            let mut s = base();
            s.fleets[0].streams[0].topic = topic.into();
            only_issue(&s, "fleets[0].streams[0].topic", needle);
        }
        let mut s = base();
        s.fleets[0].commands[0].topic = "c/#".into();
        only_issue(&s, "fleets[0].commands[0].topic", "wildcard");
    }

    #[test]
    fn every_placeholder_must_be_known() {
        let mut s = base();
        s.fleets[0].streams[0].topic = "t/{devise}".into();
        only_issue(
            &s,
            "fleets[0].streams[0].topic",
            "unknown placeholder {devise}",
        );
        s.fleets[0].streams[0].topic = "t/{device".into();
        only_issue(&s, "fleets[0].streams[0].topic", "`{` without `}`");
        s.fleets[0].streams[0].topic = "t/device}".into();
        only_issue(&s, "fleets[0].streams[0].topic", "`}` without `{`");
        // A will has no stream.
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .topic = "status/{device}/{stream}".into();
        only_issue(
            &s,
            "profiles.good.will.topic",
            "unknown placeholder {stream}",
        );
    }

    #[test]
    fn each_device_needs_its_own_telemetry_topic() {
        let mut s = base();
        s.fleets[0].streams[0].topic = "t/{fleet}".into();
        only_issue(&s, "fleets[0].streams[0].topic", "same for all 3 devices");
        // One device may do without {device}...
        let mut s = base();
        s.fleets[1].count = 1;
        s.timeline[2].kind = FaultKind::DeviceCrash { devices: 1 };
        s.fleets[1].streams[0].topic = "t/solo".into();
        clean(&s);
        // ...but not share its topic with another fleet's device.
        s.fleets[0].count = 1;
        s.fleets[0].streams[0].topic = "t/solo".into();
        only_issue(&s, "fleets[1].streams[0].topic", "also the topic of a-0000");
    }

    #[test]
    fn will_topics_are_per_device_too() {
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .topic = "status/{fleet}".into();
        only_issue(
            &s,
            "profiles.good.will.topic",
            "every device needs its own topics",
        );
    }

    #[test]
    fn qos_is_0_1_or_2_everywhere() {
        let mut s = base();
        s.fleets[0].streams[0].qos = 3;
        only_issue(&s, "fleets[0].streams[0].qos", "0, 1 or 2");
        let mut s = base();
        s.fleets[0].commands[0].qos = 7;
        only_issue(&s, "fleets[0].commands[0].qos", "0, 1 or 2");
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .qos = 3;
        only_issue(&s, "profiles.good.will.qos", "0, 1 or 2");
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .qos
            .insert("telemetry".into(), 4);
        only_issue(&s, "profiles.good.qos.telemetry", "0, 1 or 2");
    }

    #[test]
    fn profile_qos_keys_name_a_stream_or_command_of_its_fleets() {
        let mut s = base();
        let good = s.profiles.get_mut("good").unwrap();
        good.qos.insert("telemetry".into(), 0);
        good.qos.insert("control".into(), 2);
        clean(&s);
        // `control` is a command of fleet a only, which does not use `other`.
        s.profiles
            .get_mut("other")
            .unwrap()
            .qos
            .insert("control".into(), 1);
        only_issue(
            &s,
            "profiles.other.qos.control",
            "names no stream or command of the fleets using profile \"other\"",
        );
    }

    #[test]
    fn rate_is_above_zero_and_at_most_a_thousand_per_second() {
        for rate in [0.0, -1.0, 1000.5, f64::NAN] {
            let mut s = base();
            s.fleets[0].streams[0].rate = rate;
            only_issue(&s, "fleets[0].streams[0].rate", "above 0 and at most 1000");
        }
        let mut s = base();
        s.fleets[0].commands[0].rate = 0.0;
        only_issue(&s, "fleets[0].commands[0].rate", "above 0");
        let mut s = base();
        s.fleets[0].streams[0].rate = 1000.0;
        clean(&s);
    }

    #[test]
    fn payloads_are_at_most_256_kib() {
        let mut s = base();
        s.fleets[0].streams[0].payload_size = MAX_PAYLOAD;
        clean(&s);
        s.fleets[0].streams[0].payload_size = MAX_PAYLOAD + 1;
        only_issue(&s, "fleets[0].streams[0].payload_size", "256 KiB");
    }

    #[test]
    fn keepalive_when_on_is_whole_seconds_from_1_to_65535() {
        let set = |k: Option<Duration>| {
            let mut s = base();
            let p = s.profiles.get_mut("good").unwrap();
            p.keepalive = k;
            p.ping_timeout = None;
            s
        };
        only_issue(&set(Some(ms(500))), "profiles.good.keepalive", "below 1s");
        only_issue(
            &set(Some(secs(65536))),
            "profiles.good.keepalive",
            "above 65535s",
        );
        only_issue(
            &set(Some(ms(1500))),
            "profiles.good.keepalive",
            "whole seconds",
        );
        clean(&set(Some(secs(1))));
        clean(&set(Some(secs(65535))));
        clean(&set(None));
    }

    #[test]
    fn ping_timeout_must_be_shorter_than_keepalive() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().ping_timeout = Some(secs(5));
        let issues = check(&s);
        assert_eq!(
            issues,
            vec![Issue {
                path: "profiles.good.ping_timeout".into(),
                message:
                    "ping_timeout must be shorter than keepalive (ping_timeout 5s, keepalive 5s)"
                        .into()
            }]
        );
        s.profiles.get_mut("good").unwrap().ping_timeout = Some(ms(4999));
        clean(&s);
        s.profiles.get_mut("good").unwrap().ping_timeout = Some(Duration::ZERO);
        only_issue(&s, "profiles.good.ping_timeout", "longer than 0");
    }

    #[test]
    fn ping_timeout_without_keepalive_is_refused() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().keepalive = None;
        only_issue(&s, "profiles.good.ping_timeout", "needs a keepalive");
    }

    #[test]
    fn reconnect_backoff_starts_above_zero_and_stays_under_its_cap() {
        let set = |r: Reconnect| {
            let mut s = base();
            s.profiles.get_mut("good").unwrap().reconnect = Some(r);
            s
        };
        let r = |initial, max, jitter| Reconnect {
            initial,
            max,
            jitter,
        };
        only_issue(
            &set(r(Duration::ZERO, secs(1), 0.0)),
            "profiles.good.reconnect.initial",
            "longer than 0",
        );
        only_issue(
            &set(r(secs(2), secs(1), 0.0)),
            "profiles.good.reconnect.max",
            "must not be shorter than initial",
        );
        for j in [1.0, -0.1, f64::NAN] {
            only_issue(
                &set(r(secs(1), secs(1), j)),
                "profiles.good.reconnect.jitter",
                "[0, 1)",
            );
        }
        clean(&set(r(secs(1), secs(1), 0.99)));
        let mut s = base();
        s.profiles.get_mut("good").unwrap().reconnect = None;
        clean(&s);
    }

    #[test]
    fn an_awaited_ack_needs_a_timeout_and_inflight_a_window() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().ack = AckPolicy {
            wait: true,
            timeout: Duration::ZERO,
            retries: 0,
        };
        only_issue(&s, "profiles.good.ack.timeout", "longer than 0");
        s.profiles.get_mut("good").unwrap().ack.wait = false;
        clean(&s);
        s.profiles.get_mut("good").unwrap().inflight = 0;
        only_issue(&s, "profiles.good.inflight", "1..=65535");
        let mut s = base();
        s.profiles.get_mut("good").unwrap().connect_timeout = Duration::ZERO;
        only_issue(&s, "profiles.good.connect_timeout", "longer than 0");
    }

    #[test]
    fn the_will_topic_is_non_empty_without_wildcards() {
        for (topic, needle) in [("", "must not be empty"), ("status/+", "wildcard")] {
            let mut s = base();
            s.profiles
                .get_mut("good")
                .unwrap()
                .will
                .as_mut()
                .unwrap()
                .topic = topic.into();
            only_issue(&s, "profiles.good.will.topic", needle);
        }
    }

    #[test]
    fn online_republish_needs_a_will() {
        let mut s = base();
        s.profiles.get_mut("good").unwrap().will = None;
        only_issue(&s, "profiles.good.online_republish", "needs a will");
    }

    #[test]
    fn persistent_sessions_are_allowed_with_unique_and_fixed_ids() {
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.clean_session = false;
        clean(&s);
        s.profiles.get_mut("good").unwrap().client_id = ClientIdStrategy::Fixed("same".into());
        clean(&s);
        s.profiles.get_mut("good").unwrap().client_id = ClientIdStrategy::Fixed(String::new());
        only_issue(&s, "profiles.good.client_id", "must not be empty");
    }

    #[test]
    fn a_fault_starts_and_heals_inside_the_run() {
        let mut s = base();
        s.timeline[0].at = secs(60);
        s.timeline[0].duration = Some(secs(1));
        only_issue(&s, "timeline[0].at", "not before the end of the run");
        let mut s = base();
        s.timeline[0].at = secs(50);
        s.timeline[0].duration = Some(secs(11));
        only_issue(&s, "timeline[0].duration", "must heal inside the run");
        s.timeline[0].duration = Some(secs(10));
        clean(&s);
    }

    #[test]
    fn duration_is_required_except_for_crashes_and_broker_restarts_and_kills() {
        let mut s = base();
        s.timeline[0].duration = None;
        only_issue(&s, "timeline[0].duration", "required for kind `link_down`");
        s.timeline[0].duration = Some(Duration::ZERO);
        only_issue(&s, "timeline[0].duration", "longer than 0");
        let mut s = base();
        s.timeline[1].duration = None;
        clean(&s);
        s.timeline[1].duration = Some(Duration::ZERO);
        clean(&s);
        s.timeline[1].kind = FaultKind::BrokerKill;
        clean(&s);
        s.timeline[1].kind = FaultKind::BrokerPause;
        only_issue(&s, "timeline[1].duration", "longer than 0");
        s.timeline[1].duration = None;
        only_issue(
            &s,
            "timeline[1].duration",
            "required for kind `broker_pause`",
        );
        let mut s = base();
        s.timeline[2].duration = Some(Duration::ZERO);
        only_issue(&s, "timeline[2].duration", "leave it out");
    }

    #[test]
    fn a_target_names_an_existing_group_and_broker_faults_take_none() {
        let mut s = base();
        s.timeline[0].target = Some("b".into()); // fleet b's group is "gb"
        only_issue(
            &s,
            "timeline[0].target",
            "no group named \"b\" (groups: a, gb)",
        );
        let mut s = base();
        s.timeline[1].target = Some("a".into());
        only_issue(&s, "timeline[1].target", "hits the broker, not a group");
    }

    #[test]
    fn toxicity_is_a_fraction() {
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(5),
            None,
            FaultKind::Blackhole {
                stream: StreamSel::Both,
                toxicity: Some(1.5),
            },
        ));
        only_issue(&s, "timeline[3].toxicity", "[0, 1]");
        s.timeline[3].kind = FaultKind::Blackhole {
            stream: StreamSel::Upstream,
            toxicity: Some(1.0),
        };
        clean(&s);
    }

    #[test]
    fn toxic_settings_must_be_above_zero() {
        let cases = [
            (
                FaultKind::Latency {
                    latency: Duration::ZERO,
                    jitter: Duration::ZERO,
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                "latency",
            ),
            (
                FaultKind::Bandwidth {
                    rate: 0,
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                "rate",
            ),
            (
                FaultKind::Slicer {
                    average_size: 0,
                    size_variation: 0,
                    delay: ms(1),
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                "average_size",
            ),
            (
                FaultKind::Slicer {
                    average_size: 8,
                    size_variation: 8,
                    delay: ms(1),
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                "size_variation",
            ),
            (
                FaultKind::Flapping {
                    down: Duration::ZERO,
                    up: secs(1),
                },
                "down",
            ),
            (
                FaultKind::Flapping {
                    down: secs(1),
                    up: Duration::ZERO,
                },
                "up",
            ),
        ];
        for (kind, field) in cases {
            let mut s = base();
            s.timeline.push(fault(40, Some(5), Some("a"), kind));
            only_issue(&s, &format!("timeline[3].{field}"), "");
        }
    }

    #[test]
    fn crashes_and_conflicts_pick_between_one_and_all_devices_of_the_group() {
        let mut s = base();
        s.timeline[2].kind = FaultKind::DeviceCrash { devices: 3 };
        only_issue(
            &s,
            "timeline[2].devices",
            "more than the 2 devices of group \"gb\"",
        );
        s.timeline[2].kind = FaultKind::ClientIdConflict { devices: 0 };
        s.timeline[2].duration = Some(secs(5));
        only_issue(&s, "timeline[2].devices", "at least 1");
        // Without a target every device of the run counts: 3 + 2.
        s.timeline[2].target = None;
        s.timeline[2].kind = FaultKind::ClientIdConflict { devices: 5 };
        clean(&s);
        s.timeline[2].kind = FaultKind::ClientIdConflict { devices: 6 };
        only_issue(&s, "timeline[2].devices", "the 5 devices of the run");
    }

    #[test]
    fn two_broker_faults_must_not_overlap() {
        let mut s = base();
        // broker_restart at 20s for 2s; a pause from 21s overlaps it.
        s.timeline
            .push(fault(21, Some(3), None, FaultKind::BrokerPause));
        only_issue(&s, "timeline[3].at", "overlaps broker fault timeline[1]");
        // Starting exactly at the end is fine.
        s.timeline[3].at = secs(22);
        clean(&s);
        // Two instant restarts at the same moment overlap.
        let mut s = base();
        s.timeline[1].duration = None;
        s.timeline
            .push(fault(20, None, None, FaultKind::BrokerKill));
        only_issue(&s, "timeline[3].at", "one fault at a time");
        // Listed out of order: the later one is reported.
        let mut s = base();
        s.timeline
            .insert(0, fault(21, Some(5), None, FaultKind::BrokerPause));
        only_issue(&s, "timeline[0].at", "overlaps broker fault timeline[2]");
    }

    #[test]
    fn slo_keys_and_limits_are_checked() {
        let mut s = base();
        s.slo.insert("lost".into(), "= 0".into());
        only_issue(&s, "slo.lost", "unknown figure");
        let mut s = base();
        s.slo.insert("good.zombie_time.p95".into(), "< 1s".into());
        only_issue(&s, "slo.\"good.zombie_time.p95\"", "unknown statistic");
        let mut s = base();
        s.slo.insert("nobody.flaps".into(), "= 0".into());
        only_issue(&s, "slo.\"nobody.flaps\"", "no profile named \"nobody\"");
        let mut s = base();
        s.slo.insert("flaps".into(), "about 3".into());
        only_issue(&s, "slo.flaps", "must start with");
        let mut s = base();
        s.slo
            .insert("other.false_offline_rate".into(), "< 1%".into());
        s.slo.insert("e2e_latency.p999".into(), "<= 2s".into());
        clean(&s);
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let mut s = base();
        s.name = String::new();
        s.fleets[0].count = 0;
        s.fleets[1].streams[0].rate = 0.0;
        s.timeline[0].target = Some("zz".into());
        let paths: Vec<String> = check(&s).into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "name",
                "fleets[0].count",
                "fleets[1].streams[0].rate",
                "timeline[0].target"
            ]
        );
    }

    #[test]
    fn fault_keys_list_each_kinds_own_fields() {
        let spec = fault(1, Some(1), None, FaultKind::HalfOpen);
        let mut keys = crate::scenario::load::fault_keys(&spec);
        keys.sort();
        assert_eq!(keys, ["at", "duration", "kind", "target"]);
        let spec = fault(
            1,
            Some(1),
            None,
            FaultKind::Latency {
                latency: ms(1),
                jitter: ms(0),
                stream: StreamSel::Both,
                toxicity: None,
            },
        );
        let mut keys = crate::scenario::load::fault_keys(&spec);
        keys.sort();
        assert_eq!(
            keys,
            ["at", "duration", "jitter", "kind", "latency", "stream", "target", "toxicity"]
        );
    }

    #[test]
    fn unused_spec_types_still_build() {
        // Keeps the struct literals above honest if a field is added.
        let _ = StreamSpec {
            name: "s".into(),
            topic: "t".into(),
            qos: 1,
            rate: 1.0,
            payload_size: 1,
        };
        let _ = CommandSpec {
            name: "c".into(),
            topic: "t".into(),
            qos: 1,
            rate: 1.0,
            payload_size: 1,
        };
    }
}

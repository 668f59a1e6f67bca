//! The rules a scenario must follow, and lints for client configurations
//! that are legal but known to go wrong.
//!
//! Pure: [`check`] takes a parsed scenario and names each broken rule by
//! field path (`profiles.recommended.ping_timeout`, `timeline[2].duration`);
//! `load.rs` locates the paths in the text. [`lint`] never fails a scenario:
//! it explains which figure of METRICS.md a mistake will show up in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

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

/// A static warning about a profile: a known client-configuration mistake,
/// and the figure of METRICS.md where a run will show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    pub profile: String,
    pub figure: String,
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
    /// A topic template is wrong: resolving topics would only repeat it.
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
                Some(d) if d.is_zero() && matches!(f.kind, FaultKind::BrokerPause) => self.err(
                    at("duration"),
                    "duration of `broker_pause` must be longer than 0",
                ),
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

// ---------------------------------------------------------------- lints

/// Known client-configuration mistakes, per profile, each naming the figure
/// a run will show it in. Never fatal.
pub fn lint(s: &Scenario) -> Vec<Lint> {
    let mut out = Vec::new();
    for (name, p) in &s.profiles {
        let fleets: Vec<&Fleet> = s.fleets.iter().filter(|f| &f.profile == name).collect();
        let mut push = |figure: &str, message: String| {
            out.push(Lint {
                profile: name.clone(),
                figure: figure.into(),
                message,
            })
        };
        let qos_of = |stream: &str, fleet_qos: u8| p.qos.get(stream).copied().unwrap_or(fleet_qos);
        let streams: Vec<(&str, u8)> = fleets
            .iter()
            .flat_map(|f| {
                f.streams
                    .iter()
                    .map(|x| (x.name.as_str(), qos_of(&x.name, x.qos)))
            })
            .collect();
        let commands: Vec<(&str, u8)> = fleets
            .iter()
            .flat_map(|f| {
                f.commands
                    .iter()
                    .map(|x| (x.name.as_str(), qos_of(&x.name, x.qos)))
            })
            .collect();
        let devices: u64 = fleets.iter().map(|f| u64::from(f.count)).sum();
        let groups: Vec<&str> = fleets.iter().map(|f| f.group()).collect();

        match (p.keepalive, p.ping_timeout) {
            (None, _) => push(
                "zombie_time",
                "keepalive is \"off\": the client sends no PINGREQ, so a blackholed or half-open \
                 link is never noticed (zombie_time lasts the whole outage, counted in \
                 zombie_undetected) and the broker never drops a silent client"
                    .into(),
            ),
            (Some(k), None) => push(
                "zombie_time",
                format!(
                    "no ping_timeout: rumqttc notices a missing PINGRESP only at its next \
                     keepalive tick, so a blackholed link can go unnoticed for up to 2 × keepalive \
                     ({}) (zombie_time; zombie_undetected when the outage heals first)",
                    human(k * 2)
                ),
            ),
            _ => {}
        }
        let qos0: Vec<&str> = streams
            .iter()
            .filter(|(_, q)| *q == 0)
            .map(|(n, _)| *n)
            .collect();
        if !qos0.is_empty() {
            push(
                "lost_qos0",
                format!(
                    "telemetry at QoS 0 ({}): whatever is in flight or queued when the link drops \
                     is lost without trace (lost_qos0)",
                    dedup_join(&qos0)
                ),
            );
        }
        if !p.ack.wait {
            push(
                "silent_loss",
                "ack.wait = false: the application counts a message as sent when it hands it to \
                 the client, so messages lost after that are never reported to it (silent_loss)"
                    .into(),
            );
        }
        let all_flows = streams.iter().chain(&commands);
        if all_flows.clone().next().is_some() && all_flows.clone().all(|(_, q)| *q == 2) {
            push(
                "e2e_latency",
                "every stream and command is QoS 2: four packets and an extra round trip per \
                 message cost throughput and latency (e2e_latency); QoS 1 with duplicate-tolerant \
                 handling is usually enough"
                    .into(),
            );
        }
        match &p.will {
            None => push(
                "missed_offline",
                "no Last Will: a device that dies is never reported offline on its status topic \
                 (missed_offline)"
                    .into(),
            ),
            Some(w) => {
                if w.qos == 0 {
                    push(
                        "missed_offline",
                        "the will is QoS 0: the broker may drop it on the way to a busy or \
                         reconnecting observer, and the death goes unreported (missed_offline)"
                            .into(),
                    );
                }
                if !w.retain {
                    push(
                        "missed_offline",
                        "the will is not retained: an observer that (re)subscribes after it fired \
                         never learns the device is offline (missed_offline, and a stale status \
                         after the device is back: stale_offline_time)"
                            .into(),
                    );
                } else if !p.online_republish {
                    push(
                        "stale_offline_time",
                        "the will is retained but `online` is not republished after a connect: \
                         the retained `offline` stays on the status topic after the device is \
                         back (stale_offline_time)"
                            .into(),
                    );
                }
            }
        }
        if p.clean_session && !p.resubscribe && !commands.is_empty() {
            push(
                "lost_after_ack",
                format!(
                    "clean_session = true and resubscribe = false: after a reconnect the broker \
                     holds no subscription for the device, so commands ({}) are acked to the \
                     backend and dropped (lost_after_ack of commands)",
                    dedup_join(&commands.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                ),
            );
        }
        if let ClientIdStrategy::Fixed(id) = &p.client_id {
            if devices > 1 {
                push(
                    "flaps",
                    format!(
                        "client_id is fixed to \"{id}\" for {devices} devices: each connect takes \
                         over another device's connection, so they knock each other off in a loop \
                         (flaps, false_offline)"
                    ),
                );
            }
            if !p.clean_session {
                push(
                    "flaps",
                    format!(
                        "clean_session = false with the fixed client id \"{id}\": every device \
                         resumes the same broker session and receives the others' queued messages \
                         (flaps, duplicates)"
                    ),
                );
            }
        }
        match &p.reconnect {
            None => push(
                "reconnect_after_heal",
                "reconnect is \"off\": a device stays down after its first connection loss, so \
                 it never comes back after a heal (reconnect_after_heal, first_attempt_delay)"
                    .into(),
            ),
            Some(r) => {
                if let Some(longest) = longest_outage(s, &groups) {
                    if r.max > longest * 2 {
                        push(
                            "first_attempt_delay",
                            format!(
                                "reconnect max {} is far above the longest outage here ({}): \
                                 after a longer outage a device may wait up to {} after the link \
                                 is back before it tries again (first_attempt_delay, \
                                 reconnect_after_heal)",
                                human(r.max),
                                human(longest),
                                human(r.max)
                            ),
                        );
                    }
                }
            }
        }
        if let Some(t) = p.ping_timeout {
            if let Some(lat) = largest_latency(s, &groups) {
                if lat * 2 >= t {
                    push(
                        "false_offline",
                        format!(
                            "ping_timeout {} is not above the round trip under the timeline's \
                             latency ({} each way): pings time out on a slow but working link and \
                             the client drops a healthy connection (false_offline, flaps)",
                            human(t),
                            human(lat)
                        ),
                    );
                }
            }
        }
    }
    out
}

fn dedup_join(names: &[&str]) -> String {
    let mut v = names.to_vec();
    v.sort_unstable();
    v.dedup();
    v.join(", ")
}

fn hits(target: Option<&str>, groups: &[&str]) -> bool {
    target.is_none_or(|t| groups.contains(&t))
}

/// The longest time the timeline keeps the profile's groups from the broker.
fn longest_outage(s: &Scenario, groups: &[&str]) -> Option<Duration> {
    s.timeline
        .iter()
        .filter(|f| hits(f.target.as_deref(), groups) || f.kind.is_broker_fault())
        .filter_map(|f| match &f.kind {
            FaultKind::LinkDown
            | FaultKind::Blackhole { .. }
            | FaultKind::HalfOpen
            | FaultKind::ResetPeer { .. }
            | FaultKind::BrokerRestart
            | FaultKind::BrokerKill
            | FaultKind::BrokerPause => f.duration,
            FaultKind::Flapping { down, .. } => Some(*down),
            _ => None,
        })
        .filter(|d| !d.is_zero())
        .max()
}

/// The largest one-way latency (with jitter) the timeline adds to the groups.
fn largest_latency(s: &Scenario, groups: &[&str]) -> Option<Duration> {
    s.timeline
        .iter()
        .filter(|f| hits(f.target.as_deref(), groups))
        .filter_map(|f| match &f.kind {
            FaultKind::Latency {
                latency, jitter, ..
            } => Some(*latency + *jitter),
            _ => None,
        })
        .max()
}

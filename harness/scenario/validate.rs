//! The rules a scenario must follow.
//!
//! Pure: [`check`] takes a parsed scenario and names each broken rule by
//! field path (`profiles.recommended.ping_timeout`, `timeline[2].duration`);
//! `load.rs` locates the paths in the text. Legal but weak client
//! configurations are `lint.rs`'s business.
//!
//! Every duration, count, rate and length is held to the bounds of
//! `crate::limits`, and the sizes of the file's collections first: a check
//! that would walk devices, topics or phases runs only once their number is
//! known to be small enough. Arithmetic on the file's values saturates, and
//! a message quotes at most `limits::QUOTE_CHARS` characters of a value.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::backend::{BrokerSpec, FaultsSpec};
use super::duration::format as human;
use super::slo::{self, SloError};
use super::{weather, ClientIdStrategy, Expect, FaultKind, FaultSpec, Fleet, Profile, Scenario};
use crate::limits::{
    flap_cycles, has_user_info, quote, redact_url, RunSize, MAX_ACK_RETRIES, MAX_ADDRESS_BYTES,
    MAX_DEVICES, MAX_DURATION, MAX_FLAP_PHASES, MAX_FLEETS, MAX_FLOWS_PER_FLEET, MAX_INTERVALS,
    MAX_MESSAGES_PER_S, MAX_NAME_BYTES, MAX_PAYLOAD, MAX_PROFILES, MAX_RATE, MAX_RUN_TIME,
    MAX_SLOS, MAX_TIMELINE, MAX_TOPIC_BYTES, MAX_TOXIC_AMOUNT, MAX_WILL_PAYLOAD, MIN_FLAP_PHASE,
    MIN_INTERVAL, MIN_RATE,
};

/// Resolved topics checked for collisions; beyond this only the templates
/// are checked (`{device}` present), to keep validation fast and small.
const MAX_RESOLVED_TOPICS: usize = 2_000_000;
/// Bytes of resolved topics checked for collisions, likewise.
const MAX_RESOLVED_TOPIC_BYTES: usize = 64 << 20;

/// One broken rule, before it is located in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// A key as it appears in a field path: bare when it can be, else quoted.
pub(super) fn path_key(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!(
            "\"{}\"",
            key.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    }
}

/// Every broken rule of a scenario, in the order of the file's sections.
/// A collection with more entries than its bound is reported alone: the
/// other checks would walk it.
pub fn check(s: &Scenario) -> Vec<Issue> {
    let mut c = Checker::default();
    if !c.collections(s) {
        return c.issues;
    }
    c.top(s);
    c.backends(s);
    for (name, p) in &s.profiles {
        c.profile(s, name, p);
    }
    c.fleets(s);
    c.size(s);
    if !c.too_big {
        c.topics(s);
    }
    c.timeline(s);
    c.weather(s);
    c.slo(s);
    c.issues
}

#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
    /// A topic template or fleet name is wrong: resolving topics would only
    /// repeat it.
    bad_topics: bool,
    /// A count or length is beyond its bound: nothing is expanded.
    too_big: bool,
}

/// `366 days` rather than humantime's `1year 18h`.
fn bound(d: Duration) -> String {
    const DAY: u64 = 86_400;
    if d.as_secs() >= DAY && d.as_secs() % DAY == 0 && d.subsec_nanos() == 0 {
        format!("{} days", d.as_secs() / DAY)
    } else {
        human(d)
    }
}

/// Longest resolved length of a template, given the longest value of each
/// placeholder, without resolving it.
fn resolved_len(template: &str, values: &[(&str, usize)]) -> usize {
    let found = placeholders(template).unwrap_or_default();
    found.iter().fold(template.len(), |n, p| {
        let value = values
            .iter()
            .find(|(name, _)| name == p)
            .map_or(p.len() + 2, |(_, len)| *len);
        n.saturating_sub(p.len() + 2).saturating_add(value)
    })
}

/// Longest device name of a fleet: `<name>-<index:04>`.
fn device_name_len(f: &Fleet) -> usize {
    let last = f.count.saturating_sub(1);
    let digits = last.checked_ilog10().map_or(1, |d| d as usize + 1);
    f.name.len() + 1 + digits.max(4)
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// A duration setting within [`MAX_DURATION`]; false when not.
    fn at_most(&mut self, path: impl Into<String>, what: &str, d: Duration) -> bool {
        if d <= MAX_DURATION {
            return true;
        }
        self.err(
            path,
            format!(
                "{what} {} is longer than {}, the longest duration a scenario takes",
                human(d),
                bound(MAX_DURATION)
            ),
        );
        false
    }

    /// A name within [`MAX_NAME_BYTES`]; false when not.
    fn name_len(&mut self, path: impl Into<String>, what: &str, name: &str) -> bool {
        if name.len() <= MAX_NAME_BYTES {
            return true;
        }
        self.err(
            path,
            format!(
                "{what} \"{}\" is {} bytes long, more than {MAX_NAME_BYTES}",
                quote(name),
                name.len()
            ),
        );
        false
    }

    /// The sizes of the file's collections; false when one is too big.
    fn collections(&mut self, s: &Scenario) -> bool {
        let mut ok = true;
        for (path, n, max) in [
            ("profiles", s.profiles.len(), MAX_PROFILES),
            ("fleets", s.fleets.len(), MAX_FLEETS),
            ("timeline", s.timeline.len(), MAX_TIMELINE),
            ("slo", s.slo.len(), MAX_SLOS),
        ] {
            if n > max {
                self.err(
                    path,
                    format!("{path} has {n} entries, more than the {max} a scenario takes"),
                );
                ok = false;
            }
        }
        if s.fleets.len() <= MAX_FLEETS {
            for (i, f) in s.fleets.iter().enumerate() {
                for (what, n) in [("streams", f.streams.len()), ("commands", f.commands.len())] {
                    if n > MAX_FLOWS_PER_FLEET {
                        self.err(
                            format!("fleets[{i}].{what}"),
                            format!(
                                "{n} {what}, more than the {MAX_FLOWS_PER_FLEET} a fleet takes"
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok
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
                    quote(&s.name)
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
            } else if self.at_most(field, field, d) && field == "interval" && d < MIN_INTERVAL {
                self.err(
                    field,
                    format!(
                        "interval {} is shorter than {}, the shortest the time series takes",
                        human(d),
                        human(MIN_INTERVAL)
                    ),
                );
            }
        }
        for (field, d) in [
            ("drain", s.drain),
            ("min_outage", Some(s.min_outage)),
            ("fault_tolerance", Some(s.fault_tolerance)),
        ] {
            if let Some(d) = d {
                self.at_most(field, field, d);
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

    /// `[broker] backend` and `[faults]`: the forms the runner takes.
    fn backends(&mut self, s: &Scenario) {
        if let Some(b) = &s.broker.backend {
            if let Err(m) = BrokerSpec::parse(b) {
                self.err("broker.backend", m);
            }
        }
        if let Some(f) = &s.faults.backend {
            if let Err(m) = FaultsSpec::parse(f) {
                self.err("faults.backend", m);
            }
        }
        for (field, v) in [
            ("upstream", &s.faults.upstream),
            ("proxy_ports", &s.faults.proxy_ports),
            ("network", &s.faults.network),
        ] {
            let Some(v) = v else { continue };
            if v.len() > MAX_ADDRESS_BYTES {
                self.err(
                    format!("faults.{field}"),
                    format!(
                        "{field} \"{}\" is longer than {MAX_ADDRESS_BYTES} bytes",
                        quote(&redact_url(v))
                    ),
                );
            } else if has_user_info(v) {
                self.err(
                    format!("faults.{field}"),
                    format!(
                        "{field} \"{}\" holds user info; name HOST:PORT only",
                        quote(&redact_url(v))
                    ),
                );
            }
        }
    }

    /// `protocol`, and the MQTT 5 settings only a protocol 5 profile has.
    fn mqtt5(&mut self, p: &Profile, at: &dyn Fn(&str) -> String) {
        if p.protocol != 4 && p.protocol != 5 {
            self.err(
                at("protocol"),
                format!(
                    "protocol {} is not an MQTT level this harness speaks: 4 (MQTT 3.1.1) or 5",
                    p.protocol
                ),
            );
            return;
        }
        let whole_seconds = |this: &mut Self, field: &str, what: &str, d: Duration| {
            if d.subsec_nanos() != 0 {
                this.err(
                    at(field),
                    format!(
                        "{what} {} must be whole seconds (MQTT 5 sends it in seconds)",
                        human(d)
                    ),
                );
            } else if d.as_secs() >= u64::from(u32::MAX) {
                this.err(
                    at(field),
                    format!("{what} {} is above MQTT 5's 32-bit field; write \"never\" to keep it for good", human(d)),
                );
            }
        };
        let v5_only = |this: &mut Self, field: &str| {
            this.err(
                at(field),
                format!(
                    "{field} is an MQTT 5 property: set protocol = 5 in this profile, or remove it"
                ),
            );
        };
        if p.protocol == 4 {
            if p.session_expiry.is_some() {
                v5_only(self, "session_expiry");
            }
            if p.receive_maximum.is_some() {
                v5_only(self, "receive_maximum");
            }
            if p.will.as_ref().is_some_and(|w| w.delay.is_some()) {
                v5_only(self, "will.delay");
            }
            return;
        }
        match p.keepalive {
            None => self.err(
                at("keepalive"),
                "keepalive \"off\" cannot be sent at protocol 5: rumqttc's MQTT 5 client takes no keepalive below 5 s",
            ),
            Some(k) if k < Duration::from_secs(5) => self.err(
                at("keepalive"),
                format!(
                    "keepalive {} is below 5s, the least rumqttc's MQTT 5 client takes (it panics below)",
                    human(k)
                ),
            ),
            Some(_) => {}
        }
        if let Some(crate::scenario::SessionExpiry::After(d)) = p.session_expiry {
            whole_seconds(self, "session_expiry", "session_expiry", d);
        }
        if p.receive_maximum == Some(0) {
            self.err(
                at("receive_maximum"),
                "receive_maximum must be in 1..=65535 (MQTT 5 forbids 0)",
            );
        }
        if let Some(d) = p.will.as_ref().and_then(|w| w.delay) {
            whole_seconds(self, "will.delay", "will delay", d);
        }
    }

    fn profile(&mut self, s: &Scenario, name: &str, p: &Profile) {
        let at = |field: &str| format!("profiles.{}.{field}", path_key(name));
        let here = format!("profiles.{}", path_key(name));
        if self.name_len(&here, "profile name", name) && !is_ident(name) {
            self.err(
                &here,
                format!(
                    "profile name \"{}\" may only hold letters, digits, `_` and `-` \
                     (it prefixes SLO keys and names report sections)",
                    quote(name)
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
        } else {
            self.at_most(at("connect_timeout"), "connect_timeout", p.connect_timeout);
        }
        if let Some(r) = &p.reconnect {
            if r.initial.is_zero() {
                self.err(
                    at("reconnect.initial"),
                    "reconnect initial must be longer than 0",
                );
            }
            let within = self.at_most(at("reconnect.initial"), "reconnect initial", r.initial);
            if r.max < r.initial {
                self.err(
                    at("reconnect.max"),
                    format!(
                        "reconnect max {} must not be shorter than initial {}",
                        human(r.max),
                        human(r.initial)
                    ),
                );
            } else if within {
                self.at_most(at("reconnect.max"), "reconnect max", r.max);
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
        } else {
            self.at_most(at("ack.timeout"), "ack.timeout", p.ack.timeout);
        }
        if p.ack.retries > MAX_ACK_RETRIES {
            self.err(
                at("ack.retries"),
                format!(
                    "ack.retries {} is more than {MAX_ACK_RETRIES}",
                    p.ack.retries
                ),
            );
        }
        if p.inflight == 0 {
            self.err(at("inflight"), "inflight must be in 1..=65535");
        }
        self.mqtt5(p, &at);
        if let ClientIdStrategy::Fixed(id) = &p.client_id {
            if id.is_empty() {
                self.err(at("client_id"), "a fixed client id must not be empty");
            } else {
                self.name_len(at("client_id"), "the fixed client id", id);
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
            if w.payload.len() > MAX_WILL_PAYLOAD {
                self.too_big = true;
                self.err(
                    at("will.payload"),
                    format!(
                        "the will payload is {} bytes, more than the {MAX_WILL_PAYLOAD} MQTT allows",
                        w.payload.len()
                    ),
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
        for (key, q) in &p.subscribe_qos {
            let field = format!(
                "profiles.{}.subscribe_qos.{}",
                path_key(name),
                path_key(key)
            );
            if *q > 2 {
                self.err(&field, format!("subscribe_qos {q} must be 0, 1 or 2"));
            }
            if !users
                .iter()
                .any(|f| f.commands.iter().any(|x| &x.name == key))
            {
                self.err(
                    &field,
                    format!(
                        "\"{}\" names no command of the fleets using profile \"{}\" (devices subscribe to commands only; the collector's QoS is a stream's collector_qos)",
                        quote(key),
                        quote(name)
                    ),
                );
            }
        }
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
                        "\"{}\" names no stream or command of the fleets using profile \"{}\"",
                        quote(key),
                        quote(name)
                    ),
                );
            }
        }
        // The will topic resolved for the longest names of its fleets.
        if let Some(w) = &p.will {
            let longest = |f: fn(&Fleet) -> usize| users.iter().map(|x| f(x)).max().unwrap_or(0);
            let len = resolved_len(
                &w.topic,
                &[
                    ("device", longest(device_name_len)),
                    ("group", longest(|f| f.group().len())),
                    ("fleet", longest(|f| f.name.len())),
                ],
            );
            if w.topic.len() <= MAX_TOPIC_BYTES && len > MAX_TOPIC_BYTES {
                self.too_big = true;
                self.err(
                    at("will.topic"),
                    format!(
                        "the will topic resolves to up to {len} bytes, more than the \
                         {MAX_TOPIC_BYTES} MQTT allows"
                    ),
                );
            }
        }
    }

    fn fleets(&mut self, s: &Scenario) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        // The collector's filters over all fleets: (where first, QoS).
        let mut collector_filters: HashMap<String, (String, u8)> = HashMap::new();
        for (i, f) in s.fleets.iter().enumerate() {
            let at = |field: &str| format!("fleets[{i}].{field}");
            if !self.name_len(at("name"), "fleet name", &f.name) {
                self.bad_topics = true;
            } else if !is_ident(&f.name) {
                self.err(
                    at("name"),
                    format!(
                        "fleet name \"{}\" must be non-empty and hold only letters, digits, `_` and `-`",
                        quote(&f.name)
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
                if !self.name_len(at("group"), "group", g) {
                    self.bad_topics = true;
                } else if !is_ident(g) {
                    self.err(
                        at("group"),
                        format!(
                            "group \"{}\" must be non-empty and hold only letters, digits, `_` and `-`",
                            quote(g)
                        ),
                    );
                }
            }
            if f.count == 0 {
                self.err(at("count"), "count must be at least 1");
            } else if u64::from(f.count) > MAX_DEVICES {
                self.too_big = true;
                self.err(
                    at("count"),
                    format!("count {} is above {MAX_DEVICES} devices per fleet", f.count),
                );
            }
            if !s.profiles.contains_key(&f.profile) {
                self.err(
                    at("profile"),
                    format!(
                        "no profile named \"{}\" (profiles: {})",
                        quote(&f.profile),
                        names(s.profiles.keys())
                    ),
                );
            }
            let device_len = device_name_len(f);
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
            for (j, x) in f.streams.iter().enumerate() {
                if let Some(q) = x.collector_qos {
                    if q != 1 && q != 2 {
                        self.err(
                            format!("fleets[{i}].streams[{j}].collector_qos"),
                            format!("collector_qos {q} must be 1 or 2: at QoS 0 the broker may drop what it sends the collector, a loss the report would charge to the client"),
                        );
                    }
                }
                let pattern = crate::observer::pattern(&x.topic);
                let qos = x.collector_subscription();
                match collector_filters.get(&pattern) {
                    Some((other, q)) if *q != qos => self.err(
                        format!("fleets[{i}].streams[{j}].collector_qos"),
                        format!(
                            "the collector subscribes to {pattern} once, and {other} asks for QoS {q} on it: give both the same collector_qos"
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        collector_filters.insert(pattern, (format!("fleets[{i}].streams[{j}]"), qos));
                    }
                }
            }
            for (base, name, topic, qos, rate, size) in flows {
                if name.trim().is_empty() {
                    self.err(format!("{base}.name"), "name must not be empty");
                } else if !self.name_len(format!("{base}.name"), "name", name) {
                    self.bad_topics = true;
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
                if self.topic(&topic_path, topic, &["device", "group", "fleet", "stream"]) {
                    let len = resolved_len(
                        topic,
                        &[
                            ("device", device_len),
                            ("group", f.group().len()),
                            ("fleet", f.name.len()),
                            ("stream", name.len()),
                        ],
                    );
                    if len > MAX_TOPIC_BYTES {
                        self.too_big = true;
                        self.bad_topics = true;
                        self.err(
                            &topic_path,
                            format!(
                                "the topic resolves to up to {len} bytes, more than the \
                                 {MAX_TOPIC_BYTES} MQTT allows"
                            ),
                        );
                    } else if f.count > 1 && !topic.contains("{device}") {
                        self.bad_topics = true;
                        self.err(
                            &topic_path,
                            format!(
                                "topic \"{}\" is the same for all {} devices: put {{device}} in it",
                                quote(topic),
                                f.count
                            ),
                        );
                    }
                }
                if qos > 2 {
                    self.err(
                        format!("{base}.qos"),
                        format!("qos {qos} must be 0, 1 or 2"),
                    );
                }
                if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                    self.err(
                        format!("{base}.rate"),
                        format!(
                            "rate {rate} must be from {MIN_RATE:.6} (one message per 11.6 days) \
                             to {MAX_RATE} per second"
                        ),
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

    /// The whole run's size ([`RunSize`]) within its bounds, each located
    /// at the setting that makes it too big.
    fn size(&mut self, s: &Scenario) {
        let size = RunSize::of(s);
        if size.devices > MAX_DEVICES && !self.too_big {
            self.too_big = true;
            let mut total = 0u64;
            let over = s
                .fleets
                .iter()
                .position(|f| {
                    total += u64::from(f.count);
                    total > MAX_DEVICES
                })
                .unwrap_or(0);
            self.err(
                format!("fleets[{over}].count"),
                format!(
                    "the run would have {} devices, more than the {MAX_DEVICES} a run takes",
                    size.devices
                ),
            );
        }
        // Past the device bound the rate says nothing new.
        if size.messages_per_s > MAX_MESSAGES_PER_S && !self.too_big {
            self.too_big = true;
            let per_fleet = |f: &Fleet| {
                let rates = f.streams.iter().map(|x| x.rate);
                let rates = rates.chain(f.commands.iter().map(|x| x.rate));
                rates.filter(|r| r.is_finite() && *r > 0.0).sum::<f64>() * f64::from(f.count)
            };
            let (i, most) =
                s.fleets
                    .iter()
                    .map(per_fleet)
                    .enumerate()
                    .fold(
                        (0, 0.0),
                        |best, (i, r)| if r > best.1 { (i, r) } else { best },
                    );
            self.err(
                format!("fleets[{i}].count"),
                format!(
                    "the run would publish {:.0} messages/s (telemetry and commands of every \
                     device; this fleet {most:.0}/s), more than the {MAX_MESSAGES_PER_S} a run takes",
                    size.messages_per_s
                ),
            );
        }
        if size.duration <= MAX_DURATION && size.run_time > MAX_RUN_TIME {
            let field = match s.drain {
                Some(_) => "drain".to_string(),
                None => s
                    .profiles
                    .iter()
                    .filter_map(|(n, p)| p.reconnect.as_ref().map(|r| (n, r.max)))
                    .max_by_key(|(_, m)| *m)
                    .map_or("duration".to_string(), |(n, _)| {
                        format!("profiles.{}.reconnect.max", path_key(n))
                    }),
            };
            let why = if s.drain.is_none() {
                " (the default drain is 2 × the longest reconnect max + 5s: set `drain`)"
            } else {
                ""
            };
            self.err(
                field,
                format!(
                    "the run would last {} + drain {}, longer than {}{why}",
                    human(size.duration),
                    human(size.drain),
                    bound(MAX_RUN_TIME)
                ),
            );
        }
        if s.interval >= MIN_INTERVAL
            && size.run_time <= MAX_RUN_TIME
            && size.intervals > MAX_INTERVALS
        {
            let nanos = size.run_time.as_nanos().div_ceil(u128::from(MAX_INTERVALS));
            let shortest =
                Duration::from_millis(u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX));
            self.err(
                "interval",
                format!(
                    "interval {} cuts the run ({}) into {} intervals, more than {MAX_INTERVALS}; \
                     make it at least {}",
                    human(s.interval),
                    human(size.run_time),
                    size.intervals,
                    human(shortest)
                ),
            );
        }
        if size.flap_phases > MAX_FLAP_PHASES {
            let hit = |f: &FaultSpec| match &f.target {
                None => size.devices,
                Some(t) => s
                    .fleets
                    .iter()
                    .filter(|x| x.group() == t)
                    .map(|x| u64::from(x.count))
                    .sum(),
            };
            let worst = s
                .timeline
                .iter()
                .enumerate()
                .filter_map(|(k, f)| match f.kind {
                    FaultKind::Flapping { down, up } => Some((
                        k,
                        flap_cycles(f.duration.unwrap_or_default(), down, up)
                            .saturating_mul(hit(f)),
                    )),
                    _ => None,
                })
                .max_by_key(|(_, n)| *n)
                .map_or(0, |(k, _)| k);
            self.err(
                format!("timeline[{worst}].down"),
                format!(
                    "the flapping links go down {} times, counted per device they hit, more than \
                     {MAX_FLAP_PHASES}: make the phases longer or hit fewer devices",
                    size.flap_phases
                ),
            );
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
        if topic.len() > MAX_TOPIC_BYTES {
            self.too_big = true;
            self.err(
                path,
                format!(
                    "topic \"{}\" is {} bytes, more than the {MAX_TOPIC_BYTES} MQTT allows",
                    quote(topic),
                    topic.len()
                ),
            );
            return false;
        }
        let shown = quote(topic);
        if topic.contains(['+', '#']) {
            self.err(
                path,
                format!("topic \"{shown}\" has a wildcard (`+` or `#`); publish topics cannot"),
            );
            return false;
        }
        if topic.starts_with('$') {
            self.err(
                path,
                format!("topic \"{shown}\" starts with `$`, which brokers keep for themselves"),
            );
            return false;
        }
        if topic.contains('\0') {
            self.err(path, "topic must not hold a NUL character");
            return false;
        }
        match placeholders(topic) {
            Err(m) => {
                self.err(path, format!("topic \"{shown}\": {m}"));
                false
            }
            Ok(found) => {
                let mut seen = std::collections::HashSet::new();
                let unknown: Vec<&str> = found
                    .into_iter()
                    .filter(|p| !known.contains(p) && seen.insert(*p))
                    .collect();
                if unknown.is_empty() {
                    true
                } else {
                    self.err(
                        path,
                        format!(
                            "topic \"{shown}\": unknown placeholder {}; known: {}",
                            quote(
                                &unknown
                                    .iter()
                                    .map(|p| format!("{{{p}}}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
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
        let will_len = |f: &Fleet| {
            s.profiles
                .get(&f.profile)
                .and_then(|p| p.will.as_ref())
                .map_or(0, |w| w.topic.len())
        };
        let bytes = s.fleets.iter().fold(0usize, |n, f| {
            let per_device = f
                .streams
                .iter()
                .map(|x| x.topic.len())
                .chain(f.commands.iter().map(|x| x.topic.len()))
                .sum::<usize>()
                + will_len(f);
            n.saturating_add((f.count as usize).saturating_mul(per_device))
        });
        if bytes > MAX_RESOLVED_TOPIC_BYTES {
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
                                        "topic \"{}\" of device {device} is also the topic of \
                                         {other} ({first}); every device needs its own topics",
                                        quote(&topic)
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
                Some(d) if !self.at_most(at("duration"), "duration", d) => {}
                Some(d) if f.at < s.duration && f.at.saturating_add(d) > s.duration => self.err(
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
                            format!(
                                "no group named \"{}\" (groups: {})",
                                quote(t),
                                names(groups.keys())
                            ),
                        );
                        None
                    }
                },
                None => Some(groups.values().sum::<u64>()),
            };
            self.fault_fields(k, &f.kind, hit_devices, f.target.as_deref());
            if f.kind.is_broker_fault() {
                broker.push((k, f.at, f.end(), kind));
            }
        }
        // Two broker faults must not overlap: the broker takes one at a time.
        // Sorted by start, one clashes with an earlier one when it starts at
        // the same moment as the one before it or before the latest end so far.
        type Entry = (usize, Duration, Duration, &'static str);
        broker.sort_by_key(|&(k, at, _, _)| (at, k));
        let mut before: Option<Entry> = None;
        let mut latest: Option<Entry> = None;
        for &(k, at, end, kind) in &broker {
            let clash = match (before, latest) {
                (Some(b), _) if b.1 == at => Some(b),
                (_, Some(l)) if at < l.2 => Some(l),
                _ => None,
            };
            if latest.is_none_or(|l| end > l.2) {
                latest = Some((k, at, end, kind));
            }
            before = Some((k, at, end, kind));
            if let Some((j, a, end, other)) = clash {
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
        let durations: &[(&str, Duration)] = match kind {
            FaultKind::Latency {
                latency, jitter, ..
            } => &[("latency", *latency), ("jitter", *jitter)],
            FaultKind::ResetPeer { timeout, .. } => &[("timeout", *timeout)],
            FaultKind::SlowClose { delay, .. } | FaultKind::Slicer { delay, .. } => {
                &[("delay", *delay)]
            }
            FaultKind::Flapping { down, up } => &[("down", *down), ("up", *up)],
            _ => &[],
        };
        for (field, d) in durations {
            self.at_most(at(field), field, *d);
        }
        let amounts: &[(&str, u64)] = match kind {
            FaultKind::Bandwidth { rate, .. } => &[("rate", *rate)],
            FaultKind::Slicer {
                average_size,
                size_variation,
                ..
            } => &[
                ("average_size", *average_size),
                ("size_variation", *size_variation),
            ],
            FaultKind::LimitData { bytes, .. } => &[("bytes", *bytes)],
            _ => &[],
        };
        for (field, n) in amounts {
            if *n > MAX_TOXIC_AMOUNT {
                self.err(
                    at(field),
                    format!("{field} {n} is more than {MAX_TOXIC_AMOUNT} (2^40)"),
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
                for (field, d) in [("down", down), ("up", up)] {
                    if d.is_zero() {
                        self.err(at(field), format!("{field} must be longer than 0"));
                    } else if *d < MIN_FLAP_PHASE {
                        self.err(
                            at(field),
                            format!(
                                "{field} {} is shorter than {}, the shortest phase a flapping \
                                 link takes",
                                human(*d),
                                human(MIN_FLAP_PHASE)
                            ),
                        );
                    }
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
        let mut parsed = Vec::new();
        for (key, limit) in &s.slo {
            match slo::parse(key, limit, &profiles) {
                Ok(o) => parsed.push(o),
                Err(SloError::Key(m) | SloError::Limit(m)) => {
                    self.err(format!("slo.{}", path_key(key)), m)
                }
            }
        }
        // A known-bad profile names figures that an SLO of its own checks:
        // an expected failure nothing measures would pass by default.
        for (name, p) in &s.profiles {
            let at = format!("profiles.{}.expect", path_key(name));
            let Expect::Fail(figures) = &p.expect else {
                continue;
            };
            if figures.is_empty() {
                self.err(
                    &at,
                    "expect = { fail = [...] } names no figure: list the figures the mistake must show (e.g. [\"zombie_undetected\"])",
                );
            }
            for f in figures {
                let measured = parsed.iter().any(|o| {
                    o.profile.as_deref() == Some(name.as_str())
                        && Expect::names(f, &o.figure, o.stat.as_deref())
                });
                if !measured {
                    self.err(
                        &at,
                        format!(
                            "{name} is expected to fail on {f}, but no SLO of {name} checks it: add [slo] \"{name}.{f}\" = \"...\" (the limit the mistake breaks)"
                        ),
                    );
                }
            }
        }
    }
}

/// Device count of each group.
/// Weather events a scenario may expand to, over all devices: each is a
/// scheduled fault with a task and a record in report.json.
pub const MAX_WEATHER_EVENTS: f64 = 200_000.0;

impl Checker {
    /// `[[weather]]`: each section names a group (or every group), sets at
    /// least one kind with a rate per device-hour in (0, 3600] and a
    /// duration range; a group has at most one section, and a group with
    /// weather on its link takes no link fault of the timeline (two faults
    /// on one proxy would heal each other).
    fn weather(&mut self, s: &Scenario) {
        let groups = device_groups(s);
        let mut weathered: BTreeMap<&str, usize> = BTreeMap::new();
        let mut expected = 0.0f64;
        let hours = s.duration.as_secs_f64() / 3600.0;
        for (k, w) in s.weather.iter().enumerate() {
            let at = |field: &str| format!("weather[{k}].{field}");
            let hit: Vec<&str> = match &w.target {
                Some(t) if !groups.contains_key(t.as_str()) => {
                    self.err(
                        at("target"),
                        format!(
                            "no fleet is in group {}; groups: {}",
                            quote(t),
                            names(groups.keys())
                        ),
                    );
                    continue;
                }
                Some(t) => vec![t.as_str()],
                None => groups.keys().copied().collect(),
            };
            if w.from >= s.duration {
                self.err(
                    at("from"),
                    format!(
                        "the weather would begin at {}, not before the end of the run ({})",
                        human(w.from),
                        human(s.duration)
                    ),
                );
            }
            let kinds = w.kinds();
            if kinds.is_empty() {
                self.err(
                    format!("weather[{k}]"),
                    "set at least one of blip, silent_drop, latency_spike, reboot, power_loss, duplicate_id",
                );
                continue;
            }
            for (what, per_hour, span) in &kinds {
                let field = what.name();
                if !(per_hour.is_finite() && *per_hour > 0.0 && *per_hour <= 3600.0) {
                    self.err(
                        at(&format!("{field}.per_hour")),
                        format!("per_hour {per_hour} must be more than 0 and at most 3600 (events per device-hour)"),
                    );
                }
                if let Some(span) = span {
                    let path = at(&format!("{field}.duration"));
                    if span.min.is_zero() || span.min > span.max {
                        self.err(
                            path,
                            format!("duration {span} must be a range min..max with 0 < min <= max"),
                        );
                    } else {
                        self.at_most(path, "duration", span.max);
                    }
                }
                if let weather::Happening::LatencySpike(l) = what {
                    if l.is_zero() {
                        self.err(at("latency_spike.latency"), "latency must be longer than 0");
                    } else {
                        self.at_most(at("latency_spike.latency"), "latency", *l);
                    }
                }
            }
            let rate: f64 = kinds.iter().map(|(_, r, _)| r.max(0.0)).sum();
            for g in &hit {
                if let Some(first) = weathered.insert(g, k) {
                    self.err(
                        at("target"),
                        format!("group {} already has weather (weather[{first}]); one section per group", quote(g)),
                    );
                }
                expected += groups[g] as f64 * rate * hours;
            }
            if w.has_link_kinds() {
                for (i, f) in s.timeline.iter().enumerate() {
                    let link = f.kind.id().target() == super::FaultTarget::Link;
                    let reaches = match &f.target {
                        None => true,
                        Some(t) => hit.contains(&t.as_str()),
                    };
                    if link && reaches {
                        self.err(
                            format!("timeline[{i}].target"),
                            format!(
                                "the {} fault reaches a group whose links have weather (weather[{k}]); give it another target, or put the weather on other groups",
                                f.kind.name()
                            ),
                        );
                    }
                }
            }
        }
        if expected > MAX_WEATHER_EVENTS {
            self.err(
                "weather",
                format!(
                    "the weather expands to about {expected:.0} events, more than {MAX_WEATHER_EVENTS:.0}; lower the rates, the devices or the duration"
                ),
            );
        }
    }
}

fn device_groups(s: &Scenario) -> BTreeMap<&str, u64> {
    let mut g = BTreeMap::new();
    for f in &s.fleets {
        *g.entry(f.group()).or_insert(0) += u64::from(f.count);
    }
    g
}

/// A list of names for a message: each quoted short, at most 20 of them.
fn names<'a>(it: impl Iterator<Item = &'a (impl AsRef<str> + ?Sized + 'a)>) -> String {
    const MAX: usize = 20;
    let mut v: Vec<String> = it.take(MAX + 1).map(|s| quote(s.as_ref())).collect();
    if v.len() > MAX {
        v[MAX] = "…".into();
    }
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
pub(crate) mod tests {
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
    pub(crate) fn base() -> Scenario {
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

    #[test]
    fn mqtt5_settings_need_protocol_5_and_its_bounds() {
        use crate::scenario::SessionExpiry;
        let mut s = base();
        s.profiles.get_mut("good").unwrap().receive_maximum = Some(10);
        only_issue(&s, "profiles.good.receive_maximum", "set protocol = 5");
        let mut s = base();
        s.profiles.get_mut("good").unwrap().protocol = 3;
        only_issue(&s, "profiles.good.protocol", "4 (MQTT 3.1.1) or 5");
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.protocol = 5;
        p.clean_session = false;
        p.session_expiry = Some(SessionExpiry::After(secs(60)));
        p.will.as_mut().unwrap().delay = Some(secs(30));
        clean(&s);
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .delay = Some(ms(1500));
        only_issue(&s, "profiles.good.will.delay", "whole seconds");
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.protocol = 5;
        p.receive_maximum = Some(0);
        only_issue(&s, "profiles.good.receive_maximum", "forbids 0");
        let mut s = base();
        let p = s.profiles.get_mut("good").unwrap();
        p.protocol = 5;
        p.keepalive = Some(secs(4));
        p.ping_timeout = Some(secs(1));
        only_issue(&s, "profiles.good.keepalive", "below 5s");
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
        s.fleets[0].count = MAX_DEVICES as u32 + 1;
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
    fn subscription_qos_is_checked_for_devices_and_the_collector() {
        let mut s = base();
        let cmd = s.fleets[0].commands[0].name.clone();
        fn good(s: &mut Scenario) -> &mut Profile {
            s.profiles.get_mut("good").unwrap()
        }
        good(&mut s).subscribe_qos.insert(cmd.clone(), 1);
        assert_eq!(check(&s), vec![]);
        good(&mut s).subscribe_qos.insert(cmd.clone(), 3);
        only_issue(
            &s,
            &format!("profiles.good.subscribe_qos.{cmd}"),
            "must be 0, 1 or 2",
        );
        let mut s = base();
        let stream = s.fleets[0].streams[0].name.clone();
        s.profiles
            .get_mut("good")
            .unwrap()
            .subscribe_qos
            .insert(stream.clone(), 1);
        only_issue(
            &s,
            &format!("profiles.good.subscribe_qos.{stream}"),
            "names no command",
        );
        // base() has two fleets whose streams the collector reads through
        // one filter (t/+/+): one QoS for both.
        let mut s = base();
        assert_eq!(
            crate::observer::pattern(&s.fleets[0].streams[0].topic),
            crate::observer::pattern(&s.fleets[1].streams[0].topic)
        );
        for f in &mut s.fleets {
            for x in &mut f.streams {
                x.collector_qos = Some(1);
            }
        }
        assert_eq!(check(&s), vec![]);
        s.fleets[1].streams[0].collector_qos = Some(2);
        only_issue(
            &s,
            "fleets[1].streams[0].collector_qos",
            "and fleets[0].streams[0] asks for QoS 1 on it",
        );
        s.fleets[1].streams[0].collector_qos = Some(1);
        s.fleets[0].streams[0].collector_qos = Some(0);
        has_issue(&s, "fleets[0].streams[0].collector_qos", "must be 1 or 2");
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
            only_issue(&s, "fleets[0].streams[0].rate", "to 1000 per second");
        }
        let mut s = base();
        s.fleets[0].commands[0].rate = 0.0;
        only_issue(&s, "fleets[0].commands[0].rate", "from 0.000001");
        s.fleets[0].commands[0].rate = 1e-7;
        only_issue(
            &s,
            "fleets[0].commands[0].rate",
            "one message per 11.6 days",
        );
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
            collector_qos: None,
        };
        let _ = CommandSpec {
            name: "c".into(),
            topic: "t".into(),
            qos: 1,
            rate: 1.0,
            payload_size: 1,
        };
    }

    /// `s` has an issue at `path` saying `needle` (among others).
    #[track_caller]
    fn has_issue(s: &Scenario, path: &str, needle: &str) {
        let issues = check(s);
        assert!(
            issues
                .iter()
                .any(|i| i.path == path && i.message.contains(needle)),
            "no issue at {path} saying {needle:?}: {issues:#?}"
        );
    }

    const YEAR: Duration = Duration::from_secs(366 * 86_400);
    const TOO_LONG: Duration = Duration::from_secs(366 * 86_400 + 1);

    #[test]
    fn every_duration_setting_is_at_most_366_days() {
        type Set = fn(&mut Scenario, Duration);
        let cases: Vec<(&str, Set)> = vec![
            ("settle", |s, d| s.settle = d),
            ("drain", |s, d| s.drain = Some(d)),
            ("min_outage", |s, d| s.min_outage = d),
            ("profiles.good.connect_timeout", |s, d| {
                s.profiles.get_mut("good").unwrap().connect_timeout = d
            }),
            ("profiles.good.ack.timeout", |s, d| {
                s.profiles.get_mut("good").unwrap().ack.timeout = d
            }),
            ("profiles.good.reconnect.max", |s, d| {
                s.profiles
                    .get_mut("good")
                    .unwrap()
                    .reconnect
                    .as_mut()
                    .unwrap()
                    .max = d
            }),
        ];
        for (path, set) in cases {
            let mut s = base();
            set(&mut s, TOO_LONG);
            has_issue(&s, path, "longer than 366 days");
            let mut s = base();
            set(&mut s, Duration::MAX);
            has_issue(&s, path, "longer than 366 days");
        }
        let mut s = base();
        s.duration = Duration::MAX;
        has_issue(&s, "duration", "longer than 366 days");
        let mut s = base();
        s.timeline[0].duration = Some(Duration::MAX);
        only_issue(&s, "timeline[0].duration", "longer than 366 days");
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(5),
            Some("a"),
            FaultKind::Latency {
                latency: Duration::MAX,
                jitter: Duration::MAX,
                stream: StreamSel::Both,
                toxicity: None,
            },
        ));
        has_issue(&s, "timeline[3].latency", "longer than 366 days");
        has_issue(&s, "timeline[3].jitter", "longer than 366 days");
    }

    #[test]
    fn the_run_with_its_drain_lasts_at_most_366_days() {
        let mut s = base();
        s.duration = YEAR;
        s.drain = Some(secs(1));
        s.interval = secs(3600);
        only_issue(&s, "drain", "longer than 366 days");
        // The default drain comes from the longest backoff: named there.
        s.drain = None;
        only_issue(&s, "profiles.good.reconnect.max", "set `drain`");
        s.drain = Some(Duration::ZERO);
        clean(&s);
    }

    #[test]
    fn the_interval_is_at_least_100ms_and_cuts_at_most_a_million() {
        let mut s = base();
        s.interval = ms(99);
        only_issue(&s, "interval", "shorter than 100ms");
        s.interval = Duration::from_nanos(1);
        only_issue(&s, "interval", "shorter than 100ms");
        s.interval = ms(100);
        clean(&s);
        s.duration = secs(200_000);
        s.timeline.clear();
        only_issue(&s, "interval", "more than 1000000; make it at least 201ms");
    }

    #[test]
    fn the_run_has_at_most_100000_devices_and_20000_messages_a_second() {
        let mut s = base();
        s.fleets[0].count = 60_000;
        s.fleets[1].count = 50_000;
        for f in &mut s.fleets {
            f.streams[0].rate = 0.01;
            f.commands.clear();
        }
        only_issue(
            &s,
            "fleets[1].count",
            "110000 devices, more than the 100000",
        );
        s.fleets[1].count = 40_000;
        clean(&s);
        s.fleets[0].streams[0].rate = 0.5;
        only_issue(&s, "fleets[0].count", "30400 messages/s");
    }

    #[test]
    fn topics_and_names_are_bounded_before_anything_is_resolved() {
        let mut s = base();
        s.fleets[0].streams[0].topic = format!("t/{{device}}/{}", "x".repeat(70_000));
        only_issue(
            &s,
            "fleets[0].streams[0].topic",
            "more than the 65535 MQTT allows",
        );
        // Short as a template, too long resolved.
        // Devices named `<200 × a>-0000`: 205 bytes for 8 of `{device}`.
        let long_names = || {
            let mut s = base();
            s.fleets[0].name = "a".repeat(200);
            s.fleets[0].group = Some("a".into());
            s
        };
        let mut s = long_names();
        clean(&s);
        s.fleets[0].streams[0].topic = "{device}".repeat(1_000);
        only_issue(
            &s,
            "fleets[0].streams[0].topic",
            "resolves to up to 205000 bytes",
        );
        let mut s = long_names();
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .topic = "{device}".repeat(1_000);
        only_issue(
            &s,
            "profiles.good.will.topic",
            "resolves to up to 205000 bytes",
        );
        let mut s = base();
        s.profiles
            .get_mut("good")
            .unwrap()
            .will
            .as_mut()
            .unwrap()
            .payload = "x".repeat(70_000);
        only_issue(&s, "profiles.good.will.payload", "70000 bytes");
        let long = "n".repeat(10_000_000);
        let mut s = base();
        s.fleets[1].group = Some(long.clone());
        s.timeline[2].target = None;
        only_issue(&s, "fleets[1].group", "more than 256");
        let mut s = base();
        s.profiles.get_mut("good").unwrap().client_id = ClientIdStrategy::Fixed(long.clone());
        has_issue(&s, "profiles.good.client_id", "more than 256");
        let mut s = base();
        s.fleets[0].streams[0].name = long.clone();
        has_issue(&s, "fleets[0].streams[0].name", "more than 256");
        // No message quotes the 10 MB.
        let mut s = base();
        s.name = long.clone();
        s.fleets[0].name = long.clone();
        s.fleets[0].streams[0].topic = long.clone();
        s.timeline[0].target = Some(long.clone());
        let issues = check(&s);
        assert!(issues.len() >= 4, "{issues:#?}");
        for i in &issues {
            assert!(
                i.message.len() < 1024,
                "{}: {} bytes",
                i.path,
                i.message.len()
            );
        }
    }

    #[test]
    fn collections_beyond_their_bound_are_reported_alone() {
        let mut s = base();
        let one = s.timeline[0].clone();
        s.timeline = vec![one; crate::limits::MAX_TIMELINE + 1];
        assert_eq!(
            check(&s),
            vec![Issue {
                path: "timeline".into(),
                message: "timeline has 1001 entries, more than the 1000 a scenario takes".into()
            }]
        );
        let mut s = base();
        let st = s.fleets[0].streams[0].clone();
        s.fleets[0].streams = vec![st; 101];
        only_issue(&s, "fleets[0].streams", "more than the 100 a fleet takes");
    }

    #[test]
    fn flapping_phases_are_at_least_100ms_and_bounded_per_device() {
        let flap = |down, up| FaultKind::Flapping { down, up };
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(10),
            Some("a"),
            flap(Duration::from_nanos(1), secs(1)),
        ));
        only_issue(&s, "timeline[3].down", "shorter than 100ms");
        let mut s = base();
        s.duration = secs(301 * 86_400);
        s.interval = secs(3600);
        s.fleets[0].count = 50_000;
        for f in &mut s.fleets {
            f.streams[0].rate = 0.01;
            f.commands.clear();
        }
        s.timeline.push(fault(
            40,
            Some(300 * 86_400),
            Some("a"),
            flap(ms(500), ms(500)),
        ));
        only_issue(&s, "timeline[3].down", "go down 1296000000000 times");
    }

    #[test]
    fn toxic_amounts_are_at_most_2_to_the_40() {
        let mut s = base();
        s.timeline.push(fault(
            40,
            Some(5),
            Some("a"),
            FaultKind::LimitData {
                bytes: u64::MAX,
                stream: StreamSel::Both,
                toxicity: None,
            },
        ));
        only_issue(&s, "timeline[3].bytes", "more than 1099511627776");
    }

    #[test]
    fn backends_are_checked_at_load_and_never_show_a_password() {
        let mut s = base();
        s.broker.backend = Some("mosquito".into());
        only_issue(&s, "broker.backend", "unknown broker \"mosquito\"");
        s.broker.backend = Some("tcp://user:secret@host:1883".into());
        only_issue(&s, "broker.backend", "tcp://user:***@host:1883");
        assert!(!check(&s)[0].message.contains("secret"));
        let mut s = base();
        s.faults.backend = Some("mosquito".into());
        only_issue(&s, "faults.backend", "unknown fault backend");
        let mut s = base();
        s.faults.upstream = Some("admin:secret@broker:1883".into());
        only_issue(&s, "faults.upstream", "admin:***@broker:1883");
        let mut s = base();
        s.broker.backend = Some("emqx=emqx/emqx:5.8".into());
        s.faults.backend = Some("toxiproxy=http://127.0.0.1:8474".into());
        clean(&s);
    }

    #[test]
    fn extreme_values_everywhere_give_issues_not_panics() {
        let mut s = base();
        s.duration = Duration::MAX;
        s.drain = Some(Duration::MAX);
        s.interval = Duration::from_nanos(1);
        s.settle = Duration::MAX;
        for p in s.profiles.values_mut() {
            p.keepalive = Some(Duration::MAX);
            p.ping_timeout = Some(Duration::MAX);
            p.reconnect = Some(Reconnect {
                initial: Duration::MAX,
                max: Duration::MAX,
                jitter: f64::INFINITY,
            });
            p.ack.retries = u32::MAX;
        }
        for f in &mut s.fleets {
            f.count = u32::MAX;
            f.streams[0].rate = f64::MAX;
            f.streams[0].payload_size = usize::MAX;
        }
        for f in &mut s.timeline {
            f.at = Duration::MAX;
            f.duration = Some(Duration::MAX);
        }
        s.timeline.push(fault(
            1,
            Some(1),
            None,
            FaultKind::Flapping {
                down: Duration::ZERO,
                up: Duration::ZERO,
            },
        ));
        let issues = check(&s);
        assert!(issues.len() > 10, "{issues:#?}");
        let _ = crate::scenario::lint(&s);
        let _ = crate::limits::RunSize::of(&s);
    }
}

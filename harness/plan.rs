//! A validated scenario resolved into what the runner does: every device
//! with its name, client id, group, profile and resolved topics, and the
//! fault schedule with the devices each device fault picks. Pure: the same
//! scenario and seed give the same plan, and the report repeats the seed so
//! any run replays.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::history::{DeviceId, StreamId};
use crate::scenario::{ClientIdStrategy, FaultKind, Profile, Scenario, Will};
use crate::shard::Shard;

/// One stream of a device, topics resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    pub id: StreamId,
    pub name: String,
    pub topic: String,
    /// The QoS the profile asks for (fleet's, or the profile's override).
    pub qos: u8,
    /// The QoS its receiver subscribes at: the collector for telemetry
    /// (`collector_qos`), the device for a command (the profile's
    /// `subscribe_qos`, else `qos`).
    pub sub_qos: u8,
    /// Messages per second.
    pub rate: f64,
    pub payload_size: usize,
}

/// The faults of `[[weather]]`, numbered from `first`: per device of each
/// section's groups, its own events ([`weather::expand`], seeded by the
/// device's index in the whole plan), in time order per section.
fn weather_faults(
    scenario: &Scenario,
    seed: u64,
    devices: &[DevicePlan],
    first: usize,
) -> Vec<ScheduledFault> {
    use crate::scenario::weather::{self, DropKind, Happening};
    use crate::scenario::StreamSel;
    let mut out = Vec::new();
    for (k, w) in scenario.weather.iter().enumerate() {
        let mut events = Vec::new();
        for d in devices {
            if w.target.as_deref().is_some_and(|t| t != d.group) {
                continue;
            }
            for e in weather::expand(w, seed, k, u64::from(d.global), scenario.duration) {
                events.push((e, d));
            }
        }
        events.sort_by_key(|(e, d)| (e.at, d.global));
        for (e, d) in events {
            let kind = match e.what {
                Happening::Blip => FaultKind::LinkDown,
                Happening::SilentDrop(DropKind::Blackhole) => FaultKind::Blackhole {
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                Happening::SilentDrop(DropKind::HalfOpen) => FaultKind::HalfOpen,
                Happening::SilentDrop(DropKind::Cut) => FaultKind::Cut,
                Happening::LatencySpike(latency) => FaultKind::Latency {
                    latency,
                    jitter: Duration::ZERO,
                    stream: StreamSel::Both,
                    toxicity: None,
                },
                Happening::Reboot | Happening::PowerLoss => FaultKind::DeviceCrash { devices: 1 },
                Happening::DuplicateId => FaultKind::ClientIdConflict { devices: 1 },
            };
            out.push(ScheduledFault {
                index: first + out.len(),
                at: e.at,
                duration: e.duration,
                kind,
                target: Some(d.group.clone()),
                groups: vec![if e.what.is_link() {
                    d.link.clone()
                } else {
                    d.group.clone()
                }],
                devices: vec![d.id],
                weather: Some(k),
            });
        }
    }
    out
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DevicePlan {
    pub id: DeviceId,
    /// Its id in the whole plan (= `id` unless the plan is a shard): seeds
    /// its schedule's phase and jitter and places its first connection, so
    /// a device behaves the same in a shard as in the whole run.
    pub global: DeviceId,
    /// `<fleet>-<index:04>`, unique in the run; carried in payloads.
    pub name: String,
    pub fleet: String,
    pub group: String,
    /// The link it connects through: its group's fault proxy, or under
    /// `[[weather]]` with link kinds one of its own (`<group>.<name>`).
    pub link: String,
    pub profile: String,
    pub client_id: String,
    pub streams: Vec<StreamPlan>,
    pub commands: Vec<StreamPlan>,
    /// The will, topic resolved.
    pub will: Option<Will>,
}

/// One timeline entry, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    /// Index in the scenario's timeline.
    pub index: usize,
    pub at: Duration,
    pub duration: Option<Duration>,
    pub kind: FaultKind,
    /// `None`: every group.
    pub target: Option<String>,
    /// The links it acts on: the groups it hits (every group when the
    /// target is `None`), or a weather event's one device link.
    pub groups: Vec<String>,
    /// For device faults: the devices it picks (seeded); for weather, the
    /// one device it falls on.
    pub devices: Vec<DeviceId>,
    /// The `[[weather]]` section it was drawn from; `None`: the timeline.
    pub weather: Option<usize>,
}

impl ScheduledFault {
    /// A weather event of a device another shard holds: this shard neither
    /// applies nor records it (a weather event always names its device).
    pub fn is_elsewhere(&self) -> bool {
        self.weather.is_some() && self.devices.is_empty()
    }

    /// When it heals (`at + duration`, saturating).
    pub fn end(&self) -> Duration {
        self.at.saturating_add(self.duration.unwrap_or_default())
    }
}

/// The resolved run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub seed: u64,
    pub devices: Vec<DevicePlan>,
    /// Device groups, in order of first appearance.
    pub groups: Vec<String>,
    pub faults: Vec<ScheduledFault>,
    pub drain: Duration,
    /// The slice of the whole plan this run holds ([`Plan::shard`]);
    /// `None`: the whole plan.
    pub shard: Option<ShardSlice>,
}

/// Which slice of a whole plan a sharded plan holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSlice {
    pub shard: Shard,
    /// [`crate::shard::plan_digest`] of the whole plan.
    pub digest: String,
    /// Devices of the whole plan.
    pub whole_devices: usize,
}

impl Plan {
    /// Resolve a *validated* scenario (`seed` overrides the scenario's).
    pub fn resolve(scenario: &Scenario, seed: Option<u64>) -> Plan {
        let seed = seed.unwrap_or(scenario.seed);
        let mut devices = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        // Groups whose devices each have a link of their own.
        let own_links = |group: &str| {
            scenario
                .weather
                .iter()
                .any(|w| w.has_link_kinds() && w.target.as_deref().is_none_or(|t| t == group))
        };
        for fleet in &scenario.fleets {
            let group = fleet.group().to_string();
            if !groups.contains(&group) {
                groups.push(group.clone());
            }
            let profile = &scenario.profiles[&fleet.profile];
            for i in 0..fleet.count {
                let id = devices.len() as DeviceId;
                let name = format!("{}-{:04}", fleet.name, i);
                let vars = Vars {
                    device: &name,
                    group: &group,
                    fleet: &fleet.name,
                };
                let resolve = |k: usize,
                               name: &str,
                               topic: &str,
                               qos: u8,
                               rate: f64,
                               size: usize,
                               sub_qos: Option<u8>| {
                    let qos = profile.qos.get(name).copied().unwrap_or(qos);
                    StreamPlan {
                        id: k as StreamId,
                        name: name.to_string(),
                        topic: vars.apply(topic, name),
                        qos,
                        sub_qos: sub_qos.unwrap_or(qos),
                        rate,
                        payload_size: size,
                    }
                };
                let streams = fleet
                    .streams
                    .iter()
                    .enumerate()
                    .map(|(k, s)| {
                        let collector = s.collector_subscription();
                        resolve(
                            k,
                            &s.name,
                            &s.topic,
                            s.qos,
                            s.rate,
                            s.payload_size,
                            Some(collector),
                        )
                    })
                    .collect();
                let commands = fleet
                    .commands
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        let sub = profile.subscribe_qos.get(&c.name).copied();
                        resolve(k, &c.name, &c.topic, c.qos, c.rate, c.payload_size, sub)
                    })
                    .collect();
                let client_id = match &profile.client_id {
                    ClientIdStrategy::Unique => name.clone(),
                    ClientIdStrategy::Fixed(id) => id.clone(),
                };
                let will = profile.will.as_ref().map(|w| Will {
                    topic: vars.apply(&w.topic, ""),
                    ..w.clone()
                });
                let link = if own_links(&group) {
                    format!("{group}.{name}")
                } else {
                    group.clone()
                };
                devices.push(DevicePlan {
                    id,
                    global: id,
                    name,
                    fleet: fleet.name.clone(),
                    group: group.clone(),
                    link,
                    profile: fleet.profile.clone(),
                    client_id,
                    streams,
                    commands,
                    will,
                });
            }
        }

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let faults = scenario
            .timeline
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let hit: Vec<String> = match &f.target {
                    Some(t) => vec![t.clone()],
                    None => groups.clone(),
                };
                let picks = match &f.kind {
                    FaultKind::DeviceCrash { devices: n }
                    | FaultKind::ClientIdConflict { devices: n } => {
                        let pool: Vec<DeviceId> = devices
                            .iter()
                            .filter(|d| hit.contains(&d.group))
                            .map(|d| d.id)
                            .collect();
                        let n = (*n as usize).min(pool.len());
                        let mut chosen: Vec<DeviceId> = sample(&mut rng, pool.len(), n)
                            .into_iter()
                            .map(|i| pool[i])
                            .collect();
                        chosen.sort_unstable();
                        chosen
                    }
                    _ => Vec::new(),
                };
                ScheduledFault {
                    index,
                    at: f.at,
                    duration: f.duration,
                    kind: f.kind.clone(),
                    target: f.target.clone(),
                    groups: hit,
                    devices: picks,
                    weather: None,
                }
            })
            .collect();
        let mut faults: Vec<ScheduledFault> = faults;
        faults.extend(weather_faults(scenario, seed, &devices, faults.len()));

        let drain = scenario
            .drain
            .unwrap_or_else(|| default_drain(scenario.profiles.values()));
        Plan {
            scenario: scenario.clone(),
            seed,
            devices,
            groups,
            faults,
            drain,
            shard: None,
        }
    }

    /// The slice `shard` of this whole plan: the devices of global index
    /// `k` with `k mod N = i`, renumbered `0, 1, …` in order (a device's
    /// name, client id and topics stay those of the whole plan), and every
    /// scheduled fault, a device fault keeping only the picked devices of
    /// this slice. The groups stay those of the whole plan.
    pub fn shard(&self, shard: Shard) -> Plan {
        assert!(self.shard.is_none(), "a whole plan is sharded");
        let digest = crate::shard::plan_digest(self);
        let mut renumber = vec![None; self.devices.len()];
        let mut devices = Vec::new();
        for (k, d) in self.devices.iter().enumerate() {
            if shard.owns(k) {
                renumber[k] = Some(devices.len() as DeviceId);
                devices.push(DevicePlan {
                    id: devices.len() as DeviceId,
                    ..d.clone()
                });
            }
        }
        // A weather event falls on one device: in the shards without it, it
        // stays in place (fault indices are positions) with no device, and
        // is not theirs to apply (`ScheduledFault::is_elsewhere`).
        let faults = self
            .faults
            .iter()
            .map(|f| ScheduledFault {
                devices: f
                    .devices
                    .iter()
                    .filter_map(|&d| renumber[d as usize])
                    .collect(),
                ..f.clone()
            })
            .collect();
        Plan {
            scenario: self.scenario.clone(),
            seed: self.seed,
            devices,
            groups: self.groups.clone(),
            faults,
            drain: self.drain,
            shard: Some(ShardSlice {
                shard,
                digest,
                whole_devices: self.devices.len(),
            }),
        }
    }

    /// Every link of the devices, in order of first appearance: a group's,
    /// or a device's own under weather.
    pub fn links(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.devices
            .iter()
            .filter(|d| seen.insert(d.link.as_str()))
            .map(|d| d.link.clone())
            .collect()
    }

    /// The links a link fault can reach, in order: only they connect
    /// through a fault proxy; the devices of the others connect straight
    /// to the broker.
    pub fn linked_groups(&self) -> Vec<String> {
        let reached: std::collections::BTreeSet<&str> = self
            .faults
            .iter()
            .filter(|f| f.kind.id().target() == crate::scenario::FaultTarget::Link)
            .flat_map(|f| f.groups.iter().map(String::as_str))
            .collect();
        self.links()
            .into_iter()
            .filter(|l| reached.contains(l.as_str()))
            .collect()
    }

    /// Whether this run applies broker faults (the whole plan, or the
    /// designated shard); the other shards follow them.
    pub fn applies_broker_faults(&self) -> bool {
        self.shard.as_ref().is_none_or(|s| s.shard.is_designated())
    }

    pub fn profile(&self, name: &str) -> &Profile {
        &self.scenario.profiles[name]
    }

    /// Devices per profile, for the report.
    pub fn devices_by_profile(&self) -> BTreeMap<&str, Vec<DeviceId>> {
        let mut m: BTreeMap<&str, Vec<DeviceId>> = BTreeMap::new();
        for d in &self.devices {
            m.entry(d.profile.as_str()).or_default().push(d.id);
        }
        m
    }

    /// Devices of a group.
    pub fn group_devices(&self, group: &str) -> impl Iterator<Item = &DevicePlan> {
        let group = group.to_string();
        self.devices.iter().filter(move |d| d.group == group)
    }
}

/// METRICS.md: default drain = 2 × the longest reconnect backoff + 5 s
/// (saturating: it is also computed for scenarios not yet validated).
pub fn default_drain<'a>(profiles: impl Iterator<Item = &'a Profile>) -> Duration {
    let longest = profiles
        .filter_map(|p| p.reconnect.as_ref().map(|r| r.max))
        .max()
        .unwrap_or_default();
    longest
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(5))
}

struct Vars<'a> {
    device: &'a str,
    group: &'a str,
    fleet: &'a str,
}

impl Vars<'_> {
    fn apply(&self, template: &str, stream: &str) -> String {
        template
            .replace("{device}", self.device)
            .replace("{group}", self.group)
            .replace("{fleet}", self.fleet)
            .replace("{stream}", stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::validate_tests::base;

    #[test]
    fn shards_split_every_device_once_and_keep_names_topics_and_picks() {
        let whole = Plan::resolve(&base(), Some(7));
        let n = 2;
        let shards: Vec<Plan> = (0..n)
            .map(|index| whole.shard(Shard { index, count: n }))
            .collect();
        let mut names: Vec<&str> = shards
            .iter()
            .flat_map(|p| p.devices.iter().map(|d| d.name.as_str()))
            .collect();
        names.sort_unstable();
        let mut all: Vec<&str> = whole.devices.iter().map(|d| d.name.as_str()).collect();
        all.sort_unstable();
        assert_eq!(names, all);
        for p in &shards {
            // Renumbered 0.. in order, everything else as in the whole plan.
            for (i, d) in p.devices.iter().enumerate() {
                assert_eq!(d.id as usize, i);
                let w = whole.devices.iter().find(|w| w.name == d.name).unwrap();
                assert_eq!(
                    DevicePlan {
                        id: w.id,
                        ..d.clone()
                    },
                    *w
                );
            }
            assert_eq!(p.groups, whole.groups);
            assert_eq!(p.faults.len(), whole.faults.len());
            let slice = p.shard.as_ref().unwrap();
            assert_eq!(slice.digest, crate::shard::plan_digest(&whole));
            assert_eq!(slice.whole_devices, whole.devices.len());
        }
        // The device crash's picks land in the shard that holds them.
        let crash = whole
            .faults
            .iter()
            .position(|f| !f.devices.is_empty())
            .unwrap();
        let mut picked: Vec<&str> = shards
            .iter()
            .flat_map(|p| {
                p.faults[crash]
                    .devices
                    .iter()
                    .map(|&d| p.devices[d as usize].name.as_str())
            })
            .collect();
        picked.sort_unstable();
        let mut expected: Vec<&str> = whole.faults[crash]
            .devices
            .iter()
            .map(|&d| whole.devices[d as usize].name.as_str())
            .collect();
        expected.sort_unstable();
        assert_eq!(picked, expected);
        assert!(shards[0].applies_broker_faults());
        assert!(!shards[1].applies_broker_faults());
        assert!(whole.applies_broker_faults());
    }

    #[test]
    fn the_digest_tells_plans_apart() {
        let a = Plan::resolve(&base(), Some(1));
        let b = Plan::resolve(&base(), Some(2));
        assert_eq!(
            crate::shard::plan_digest(&a),
            crate::shard::plan_digest(&a.clone())
        );
        assert_ne!(crate::shard::plan_digest(&a), crate::shard::plan_digest(&b));
    }

    #[test]
    fn only_groups_a_link_fault_reaches_have_a_proxy() {
        // base(): link_down on a, a broker restart, a device crash in gb.
        let plan = Plan::resolve(&base(), None);
        assert_eq!(plan.groups, vec!["a".to_string(), "gb".to_string()]);
        assert_eq!(plan.linked_groups(), vec!["a".to_string()]);
        let mut s = base();
        s.timeline[0].target = None; // every group
        assert_eq!(Plan::resolve(&s, None).linked_groups(), plan.groups);
        s.timeline.clear();
        assert!(Plan::resolve(&s, None).linked_groups().is_empty());
    }
}

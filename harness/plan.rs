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
    /// Messages per second.
    pub rate: f64,
    pub payload_size: usize,
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DevicePlan {
    pub id: DeviceId,
    /// `<fleet>-<index:04>`, unique in the run; carried in payloads.
    pub name: String,
    pub fleet: String,
    pub group: String,
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
    /// Groups it hits (every group when the target is `None`).
    pub groups: Vec<String>,
    /// For device faults: the devices it picks (seeded).
    pub devices: Vec<DeviceId>,
}

impl ScheduledFault {
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
                let resolve =
                    |k: usize, name: &str, topic: &str, qos: u8, rate: f64, size: usize| {
                        StreamPlan {
                            id: k as StreamId,
                            name: name.to_string(),
                            topic: vars.apply(topic, name),
                            qos: profile.qos.get(name).copied().unwrap_or(qos),
                            rate,
                            payload_size: size,
                        }
                    };
                let streams = fleet
                    .streams
                    .iter()
                    .enumerate()
                    .map(|(k, s)| resolve(k, &s.name, &s.topic, s.qos, s.rate, s.payload_size))
                    .collect();
                let commands = fleet
                    .commands
                    .iter()
                    .enumerate()
                    .map(|(k, c)| resolve(k, &c.name, &c.topic, c.qos, c.rate, c.payload_size))
                    .collect();
                let client_id = match &profile.client_id {
                    ClientIdStrategy::Unique => name.clone(),
                    ClientIdStrategy::Fixed(id) => id.clone(),
                };
                let will = profile.will.as_ref().map(|w| Will {
                    topic: vars.apply(&w.topic, ""),
                    ..w.clone()
                });
                devices.push(DevicePlan {
                    id,
                    name,
                    fleet: fleet.name.clone(),
                    group: group.clone(),
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
                }
            })
            .collect();

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

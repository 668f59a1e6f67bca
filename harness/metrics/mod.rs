//! The recorder: folds the run's history into every figure of METRICS.md,
//! per profile and overall, and finishes into a [`Report`].
//!
//! It owns one [`Ledger`] per profile (message figures) and tracks the
//! connection figures itself. Pure: time comes in the events.
//!
//! # Connection figures in this version
//!
//! A *fault episode* runs from a fault's `Applied` to its `Healed` event.
//! Link faults hit the devices of their target group (every group when the
//! target is `None`; membership from the plan); broker faults hit every
//! device; device faults (`device_crash`, `client_id_conflict`) hit the
//! devices in their `Applied` event (the target group(s) when that is
//! empty) and count only for `flaps`.
//!
//! * `reconnect_after_heal`: for each link/broker episode and each device it
//!   hits that reported `ConnectionLost` during the episode and is still not
//!   connected at the heal: its first `Connected` after the heal minus the
//!   heal time. A device that reconnected before the heal is not counted
//!   (its reconnect happened under the fault). One that never reconnects by
//!   the end is counted in `censored`. `null` when no link/broker episode
//!   that hit the profile healed.
//! * `session_present`: share of reconnects (every `Connected` of a device
//!   after its first) with `session_present`; `null` without reconnects.
//! * `reconnect_attempts`: `ConnectAttempt` events of a device while a
//!   link/broker episode that hits it is active or it still waits for its
//!   reconnect after one; each attempt counted once even when episodes
//!   overlap. `null` when no link/broker episode hit the profile.
//! * `flaps`: `ConnectionLost` while no episode of any kind hits the device
//!   (and it is not crashed), per device-hour of the run (`end`); `null`
//!   for a run of length zero.
//!
//! Every other connection and offline figure is `null` for now.
//!
//! # Time series
//!
//! [`Recorder::cut_interval`] cuts the figures into intervals ([`interval`]),
//! written by [`hlog`] (`intervals.jsonl`, one `.hlog` per duration figure).

pub mod hlog;
pub mod interval;

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;

use crate::clock::Nanos;
use crate::history::{DeviceEvent, DeviceId, Direction, Event, FaultEvent, ObserverEvent};
use crate::ledger::{latency_histogram, Ledger, LedgerFigures};
use crate::plan::Plan;
use crate::report::{
    rfc3339, DurationFigure, FaultRecord, Figures, MessageFigureSet, Report, Verdict,
    SCHEMA_VERSION,
};

pub use crate::report::RunContext;

/// What the progress line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Devices whose client believes it is connected now.
    pub connected: u32,
    pub devices: u32,
    /// Telemetry messages handed to clients so far.
    pub telemetry_sent: u64,
    /// Telemetry messages received by the collector so far.
    pub telemetry_delivered: u64,
    /// Faults in force now: `kind` or `kind@target`.
    pub faults_active: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Link,
    Broker,
    Device,
}

fn class_of(kind: &str) -> Class {
    match kind {
        "broker_restart" | "broker_kill" | "broker_pause" => Class::Broker,
        "device_crash" | "client_id_conflict" => Class::Device,
        _ => Class::Link,
    }
}

/// Which devices an episode hits.
#[derive(Debug, Clone)]
enum Hit {
    All,
    /// Group indices (into the plan's groups).
    Groups(Vec<usize>),
    Devices(BTreeSet<DeviceId>),
}

#[derive(Debug)]
struct Episode {
    label: String,
    class: Class,
    hit: Hit,
    /// Devices that lost their connection during the episode.
    lost: BTreeSet<DeviceId>,
}

#[derive(Debug)]
struct DeviceState {
    profile: usize,
    group: usize,
    connected: bool,
    ever_connected: bool,
    crashed: bool,
    /// Heal times of episodes this device still has to reconnect after.
    awaiting: Vec<Nanos>,
}

#[derive(Debug)]
struct ProfileState {
    name: String,
    devices: u32,
    ledger: Ledger,
    reconnect_after_heal: Histogram<u64>,
    /// A link/broker episode that hits this profile was applied / healed.
    exposed: bool,
    healed: bool,
    reconnects: u64,
    session_present: u64,
    attempts: u64,
    flaps: u64,
}

/// Folds a run's events into its figures.
#[derive(Debug)]
pub struct Recorder {
    devices: Vec<DeviceState>,
    profiles: Vec<ProfileState>,
    groups: Vec<String>,
    /// Scheduled kind and target per timeline index (for faults that fail
    /// before any `Applied`).
    scheduled: Vec<(String, Option<String>)>,
    active: BTreeMap<usize, Episode>,
    faults: BTreeMap<usize, FaultRecord>,
    unknown_device_events: u64,
    errors: Vec<String>,
    /// The previous interval cut.
    intervals: interval::Cutter,
}

impl Recorder {
    pub fn new(plan: &Plan) -> Recorder {
        let by_profile = plan.devices_by_profile();
        let names: Vec<&str> = by_profile.keys().copied().collect();
        let profiles = by_profile
            .iter()
            .map(|(name, ids)| ProfileState {
                name: name.to_string(),
                devices: ids.len() as u32,
                ledger: Ledger::new(),
                reconnect_after_heal: latency_histogram(),
                exposed: false,
                healed: false,
                reconnects: 0,
                session_present: 0,
                attempts: 0,
                flaps: 0,
            })
            .collect();
        let devices = plan
            .devices
            .iter()
            .map(|d| DeviceState {
                profile: names.iter().position(|n| *n == d.profile).unwrap_or(0),
                group: plan.groups.iter().position(|g| *g == d.group).unwrap_or(0),
                connected: false,
                ever_connected: false,
                crashed: false,
                awaiting: Vec::new(),
            })
            .collect();
        Recorder {
            devices,
            profiles,
            groups: plan.groups.clone(),
            scheduled: plan
                .faults
                .iter()
                .map(|f| (f.kind.name().to_string(), f.target.clone()))
                .collect(),
            active: BTreeMap::new(),
            faults: BTreeMap::new(),
            unknown_device_events: 0,
            errors: Vec::new(),
            intervals: interval::Cutter::default(),
        }
    }

    /// Fold one event.
    pub fn record(&mut self, ev: &Event) {
        match ev {
            Event::Device { at, device, what } => self.device_event(ev, *at, *device, what),
            Event::Observer { what, .. } => match what {
                ObserverEvent::Connected | ObserverEvent::Disconnected => {
                    for p in &mut self.profiles {
                        p.ledger.record(ev);
                    }
                }
                ObserverEvent::Received { device, .. }
                | ObserverEvent::CommandPublished { device, .. }
                | ObserverEvent::CommandOutcome { device, .. } => match self.profile_of(*device) {
                    Some(p) => self.profiles[p].ledger.record(ev),
                    None => self.unknown_device_events += 1,
                },
                // Offline figures come in a later version.
                ObserverEvent::Status { .. } => {}
            },
            Event::Fault { at, what } => self.fault_event(*at, what),
        }
    }

    fn profile_of(&self, device: DeviceId) -> Option<usize> {
        self.devices.get(device as usize).map(|d| d.profile)
    }

    fn hits(&self, ep: &Episode, device: DeviceId) -> bool {
        match &ep.hit {
            Hit::All => true,
            Hit::Groups(gs) => self
                .devices
                .get(device as usize)
                .is_some_and(|d| gs.contains(&d.group)),
            Hit::Devices(ds) => ds.contains(&device),
        }
    }

    fn device_event(&mut self, ev: &Event, at: Nanos, device: DeviceId, what: &DeviceEvent) {
        let Some(p) = self.profile_of(device) else {
            self.unknown_device_events += 1;
            return;
        };
        let d = device as usize;
        match what {
            DeviceEvent::Published { .. }
            | DeviceEvent::Outcome { .. }
            | DeviceEvent::CommandReceived { .. } => self.profiles[p].ledger.record(ev),
            DeviceEvent::ConnectAttempt => {
                let in_episode = !self.devices[d].awaiting.is_empty()
                    || self
                        .active
                        .values()
                        .any(|e| e.class != Class::Device && self.hits(e, device));
                if in_episode {
                    self.profiles[p].attempts += 1;
                }
            }
            DeviceEvent::Connected { session_present } => {
                let st = &mut self.devices[d];
                if st.ever_connected {
                    self.profiles[p].reconnects += 1;
                    self.profiles[p].session_present += u64::from(*session_present);
                }
                st.ever_connected = true;
                st.connected = true;
                for heal in std::mem::take(&mut st.awaiting) {
                    let us = at.saturating_since(heal).as_micros();
                    crate::ledger::record(
                        &mut self.profiles[p].reconnect_after_heal,
                        us.min(u64::MAX as u128) as u64,
                    );
                }
            }
            DeviceEvent::ConnectionLost { .. } => {
                self.devices[d].connected = false;
                let hit: Vec<(usize, Class)> = self
                    .active
                    .iter()
                    .filter(|(_, e)| self.hits(e, device))
                    .map(|(i, e)| (*i, e.class))
                    .collect();
                for (i, class) in &hit {
                    if *class != Class::Device {
                        if let Some(e) = self.active.get_mut(i) {
                            e.lost.insert(device);
                        }
                    }
                }
                if hit.is_empty() && !self.devices[d].crashed {
                    self.profiles[p].flaps += 1;
                }
            }
            DeviceEvent::Crashed => {
                self.devices[d].crashed = true;
                self.devices[d].connected = false;
            }
            DeviceEvent::Restarted => self.devices[d].crashed = false,
            DeviceEvent::ConnectFailed { .. } | DeviceEvent::Subscribed { .. } => {}
        }
    }

    fn fault_event(&mut self, at: Nanos, what: &FaultEvent) {
        match what {
            FaultEvent::Applied {
                index,
                kind,
                target,
                devices,
            } => {
                let class = class_of(kind);
                let hit = match (class, target) {
                    (Class::Broker, _) => Hit::All,
                    (Class::Device, _) if !devices.is_empty() => {
                        Hit::Devices(devices.iter().copied().collect())
                    }
                    (_, None) => Hit::All,
                    (_, Some(g)) => match self.groups.iter().position(|x| x == g) {
                        Some(i) => Hit::Groups(vec![i]),
                        None => {
                            self.errors
                                .push(format!("fault {index} ({kind}) targets unknown group {g}"));
                            Hit::Groups(Vec::new())
                        }
                    },
                };
                let label = match target {
                    Some(t) => format!("{kind}@{t}"),
                    None => kind.clone(),
                };
                let ep = Episode {
                    label,
                    class,
                    hit,
                    lost: BTreeSet::new(),
                };
                if class != Class::Device {
                    for i in 0..self.devices.len() {
                        if self.hits(&ep, i as DeviceId) {
                            let p = self.devices[i].profile;
                            self.profiles[p].exposed = true;
                        }
                    }
                }
                self.active.insert(*index, ep);
                let rec = self.fault_record(*index);
                rec.kind = kind.clone();
                rec.target = target.clone();
                rec.started_at_s = Some(at.as_secs_f64());
                rec.applied = true;
            }
            FaultEvent::Healed { index } => {
                self.fault_record(*index).healed_at_s = Some(at.as_secs_f64());
                let Some(ep) = self.active.remove(index) else {
                    return;
                };
                if ep.class == Class::Device {
                    return;
                }
                for i in 0..self.devices.len() {
                    if self.hits(&ep, i as DeviceId) {
                        let p = self.devices[i].profile;
                        self.profiles[p].healed = true;
                    }
                }
                for d in ep.lost {
                    let st = &mut self.devices[d as usize];
                    if !st.connected {
                        st.awaiting.push(at);
                    }
                }
            }
            FaultEvent::Failed {
                index,
                error,
                applied,
            } => {
                let rec = self.fault_record(*index);
                rec.error = Some(error.clone());
                if !*applied && rec.started_at_s.is_none() {
                    rec.applied = false;
                }
            }
        }
    }

    /// The record of timeline entry `index`, created from the plan if new.
    fn fault_record(&mut self, index: usize) -> &mut FaultRecord {
        let (kind, target) = self
            .scheduled
            .get(index)
            .cloned()
            .unwrap_or_else(|| ("unknown".to_string(), None));
        self.faults.entry(index).or_insert(FaultRecord {
            index,
            kind,
            target,
            started_at_s: None,
            healed_at_s: None,
            applied: false,
            error: None,
        })
    }

    /// For the progress line.
    pub fn live(&self) -> Live {
        let (mut sent, mut delivered) = (0, 0);
        for p in &self.profiles {
            let c = p.ledger.counts(Direction::Telemetry);
            sent += c.sent;
            delivered += c.delivered;
        }
        Live {
            connected: self.devices.iter().filter(|d| d.connected).count() as u32,
            devices: self.devices.len() as u32,
            telemetry_sent: sent,
            telemetry_delivered: delivered,
            faults_active: self.active.values().map(|e| e.label.clone()).collect(),
        }
    }

    /// End of the run (after the drain): every figure, the SLOs checked.
    pub fn finish(self, end: Nanos, ctx: RunContext) -> Report {
        let unobserved_s = ctx.unobserved_s.unwrap_or_else(|| {
            self.profiles
                .first()
                .map_or(0.0, |p| p.ledger.unobserved_time(end).as_secs_f64())
        });
        let hours = end.as_secs_f64() / 3600.0;
        let mut censored = vec![0u64; self.profiles.len()];
        for d in &self.devices {
            censored[d.profile] += d.awaiting.len() as u64;
        }

        let mut errors = self.errors;
        if self.unknown_device_events > 0 {
            errors.push(format!(
                "{} events named a device that is not in the plan",
                self.unknown_device_events
            ));
        }

        let mut all = LedgerFigures::default();
        let mut rah_all = latency_histogram();
        let mut total = ConnTotals::default();
        let mut profiles = BTreeMap::new();
        for (i, p) in self.profiles.into_iter().enumerate() {
            let figs = p.ledger.finish();
            for (dir, f) in [("telemetry", &figs.telemetry), ("commands", &figs.commands)] {
                if f.counts.ambiguous > 0 {
                    errors.push(format!(
                        "profile {}: {} {dir} receptions were too old to match (ledger horizon); counted neither as delivered nor as duplicates",
                        p.name, f.counts.ambiguous
                    ));
                }
                if f.counts.orphans > 0 {
                    errors.push(format!(
                        "profile {}: {} {dir} outcomes had no Published event",
                        p.name, f.counts.orphans
                    ));
                }
            }
            all.add(&figs);
            rah_all
                .add(&p.reconnect_after_heal)
                .expect("auto-resizing histograms add");
            let conn = ConnTotals {
                devices: p.devices,
                exposed: p.exposed,
                healed: p.healed,
                reconnects: p.reconnects,
                session_present: p.session_present,
                attempts: p.attempts,
                flaps: p.flaps,
                censored: censored[i],
            };
            total.add(&conn);
            profiles.insert(
                p.name.clone(),
                figures(&figs, &p.reconnect_after_heal, &conn, hours),
            );
        }
        let totals = figures(&all, &rah_all, &total, hours);
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            scenario: ctx.scenario,
            seed: ctx.seed,
            verdict: Verdict::Pass,
            started_at: rfc3339(ctx.started_at),
            duration_s: ctx.duration_s,
            versions: ctx.versions,
            devices: self.devices.len() as u32,
            unobserved: totals.telemetry.unobserved,
            totals,
            profiles,
            faults: self.faults.into_values().collect(),
            slo: Vec::new(),
            unobserved_s,
            errors,
        };
        report.check(&ctx.slos);
        report
    }
}

/// Connection counts of one population.
#[derive(Debug, Default, Clone)]
struct ConnTotals {
    devices: u32,
    exposed: bool,
    healed: bool,
    reconnects: u64,
    session_present: u64,
    attempts: u64,
    flaps: u64,
    censored: u64,
}

impl ConnTotals {
    fn add(&mut self, o: &ConnTotals) {
        self.devices += o.devices;
        self.exposed |= o.exposed;
        self.healed |= o.healed;
        self.reconnects += o.reconnects;
        self.session_present += o.session_present;
        self.attempts += o.attempts;
        self.flaps += o.flaps;
        self.censored += o.censored;
    }
}

fn figures(
    msgs: &LedgerFigures,
    reconnect_after_heal: &Histogram<u64>,
    c: &ConnTotals,
    hours: f64,
) -> Figures {
    let device_hours = f64::from(c.devices) * hours;
    Figures {
        telemetry: MessageFigureSet::from_ledger(&msgs.telemetry),
        commands: MessageFigureSet::from_ledger(&msgs.commands),
        zombie_time: None,
        zombie_undetected: None,
        broker_detect_time: None,
        reconnect_after_heal: c.healed.then(|| {
            DurationFigure::from_histogram(reconnect_after_heal).with_censored(c.censored)
        }),
        outage_seen_by_client: None,
        resume_time: None,
        session_present: (c.reconnects > 0).then(|| c.session_present as f64 / c.reconnects as f64),
        reconnect_attempts: c.exposed.then_some(c.attempts),
        first_attempt_delay: None,
        flaps: (device_hours > 0.0).then(|| c.flaps as f64 / device_hours),
        true_offline: None,
        false_offline: None,
        false_offline_rate: None,
        stale_offline_time: None,
        missed_offline: None,
        false_online_time: None,
    }
}

#[cfg(test)]
mod tests;

//! The recorder: folds the run's history into every figure of METRICS.md,
//! per profile and overall, and finishes into a [`Report`].
//!
//! It owns one [`Ledger`] per profile (message figures) and tracks the
//! connection figures itself. Pure: time comes in the events.
//!
//! # Fault windows
//!
//! A fault's window opens when the harness sends its first request
//! (`FaultEvent::Requested`) and is confirmed when the backend answers
//! (`Applied`): effects seen in between belong to the fault (a real
//! Toxiproxy closes a disabled proxy's connections before it answers; a
//! broker stopping gracefully closes every connection before its process
//! has exited). So a *fault episode* runs from the fault's request to its
//! `Healed` event, and a connection lost in it is the fault's, never a
//! flap. **`t_fault` is the request**: the honest lower bound of when the
//! fault could act, so `zombie_time` and `broker_detect_time` (measured from
//! the episode's exposure, which starts there) are never shorter than the
//! truth; the confirmation time is kept in the fault record
//! (`started_at_s`) next to `requested_at_s` and `scheduled_at_s`. A
//! history without `Requested` (older runs) opens the window at `Applied`.
//!
//! **`t_heal` is the heal's request** (`FaultEvent::HealRequested`), for
//! the same reason: a device may reconnect before the backend has answered
//! the heal, and that CONNACK is a reconnect after the heal. The episode
//! stays active until `Healed` (a loss then — Toxiproxy's `timeout` toxic
//! closes its connections when removed — is still the fault's, and makes
//! the device wait for a reconnect after the heal). Without a
//! `HealRequested`, `t_heal` is the `Healed` event.
//!
//! Lateness and failures are the run's own health ([`crate::health`]): a
//! fault confirmed more than the scenario's `fault_tolerance` after its
//! scheduled start, or healed that much after its scheduled end, is a
//! `fault_late` incident (decided when the confirmation arrives); a
//! `Failed` event is `fault_backend`; a fault whose scheduled start passed
//! before the run's end without a confirmation is `fault_not_applied` and
//! stays `applied: false` (decided at the end: the last interval and the
//! report both carry it), as is a heal never confirmed (`fault_late`).
//! Broker health from the observer's own connection: see [`availability`].
//!
//! # Connection figures in this version
//!
//! Link faults hit the devices of their target group (every group when the
//! target is `None`; membership from the plan); broker faults hit every
//! device; device faults (`device_crash`, `client_id_conflict`) hit the
//! devices in their `Applied` event (the target group(s) when that is
//! empty); a conflict excuses no flap.
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
//! * `flaps`: `ConnectionLost` while no link or broker episode (from its
//!   request to its confirmed heal) hits the device and it is not crashed,
//!   per device-hour of the run (`end`); `null` for a run of length zero.
//!   A client-id conflict excuses nothing: its takeovers are flaps
//!   (METRICS.md), and counted again in `takeovers`.
//! * `takeovers`: see [`takeover`]; the CONNACKs of other holders of a
//!   device's client id (its conflict intruder, devices sharing a fixed
//!   id) against its connection losses.
//!
//! The figures that need a device's whole story are computed at `finish`
//! from per-device timelines ([`connection::DeviceTimeline`]):
//! [`connection`] (`zombie_time`, `zombie_undetected`,
//! `outage_seen_by_client`, `resume_time`, `first_attempt_delay`) and
//! [`offline`] (`broker_detect_time`, `true_offline`, `false_offline`,
//! `false_offline_rate`, `stale_offline_time`, `missed_offline`,
//! `false_online_time`); their modules document each definition. A figure
//! is `null` when nothing in the run could measure it for that population:
//! no blackhole-like episode hit it (`zombie_*`), no link/broker episode
//! (`outage_seen_by_client`) or none that healed (`first_attempt_delay`,
//! `resume_time`), no death (`missed_offline`), no device with a will
//! (the offline-episode figures; `broker_detect_time` also needs a death),
//! no offline episode at all (`false_offline_rate`).
//!
//! # Time series
//!
//! [`Recorder::cut_interval`] cuts the figures into intervals ([`interval`]),
//! written by [`hlog`] (`intervals.jsonl`, one `.hlog` per duration figure).
//! Each figure counts in the interval where its subject started — a
//! message at its `t_intended`, a fault or offline episode at its start
//! (the rule is stated in [`interval`]): the recorder tells every
//! connection and offline sample with that start
//! ([`Recorder::link_samples`]), the ledger files every message figure
//! under its interval, and `reconnect_after_heal` samples go to the
//! interval of their episode's start.

pub mod availability;
pub mod connection;
pub mod hlog;
pub mod interval;
pub mod offline;
pub mod rate;
pub mod schedule;
pub mod takeover;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clock::Nanos;
use crate::health::{self, Incident};
use crate::history::{DeviceEvent, DeviceId, Direction, Event, FaultEvent, ObserverEvent};
use crate::ledger::{latency_histogram, Ledger, LedgerFigures};
use crate::plan::Plan;
use crate::report::{
    rfc3339, DurationFigure, FaultRecord, Figures, MessageFigureSet, Report, Verdict,
    SCHEMA_VERSION,
};
use crate::scenario::{FaultKind, FaultName, FaultTarget};
use connection::{Cause, DeviceTimeline, Effect, Exposure, Outage, Span};
use offline::OfflineParams;

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

fn class_of(kind: FaultName) -> Class {
    match kind.target() {
        FaultTarget::Broker => Class::Broker,
        FaultTarget::Device => Class::Device,
        FaultTarget::Link => Class::Link,
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
    /// `t_fault`: the window's opening (request, or confirmation without one).
    start: Nanos,
    class: Class,
    hit: Hit,
    /// Devices that lost their connection during the episode.
    lost: BTreeSet<DeviceId>,
    /// `t_heal`, once the heal was requested (or confirmed).
    healing: Option<Nanos>,
    /// Devices given a reconnect to wait for after this episode's heal.
    awaited: BTreeSet<DeviceId>,
}

/// The moments of one fault's window, as the history shows them.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    requested: Option<Nanos>,
    applied: Option<Nanos>,
    heal_requested: Option<Nanos>,
    healed: Option<Nanos>,
    failed: Option<Nanos>,
}

#[derive(Debug)]
struct DeviceState {
    profile: usize,
    group: usize,
    connected: bool,
    ever_connected: bool,
    crashed: bool,
    /// Episodes this device still has to reconnect after: (`t_heal`, the
    /// episode's start).
    awaiting: Vec<(Nanos, Nanos)>,
}

#[derive(Debug)]
struct ProfileState {
    name: String,
    devices: u32,
    ledger: Ledger,
    reconnect_after_heal: Histogram<u64>,
    /// New `reconnect_after_heal` samples since the last cut, by the
    /// interval of their episode's start.
    reconnect_changes: BTreeMap<u64, Histogram<u64>>,
    /// A link/broker episode that hits this profile was applied.
    exposed: bool,
    /// Starts of the link/broker episodes hitting this profile that healed.
    healed: BTreeSet<Nanos>,
    /// Devices of the profile with a will.
    will_devices: u64,
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
    scheduled: Vec<(FaultName, Option<String>)>,
    active: BTreeMap<usize, Episode>,
    faults: BTreeMap<usize, FaultRecord>,
    unknown_device_events: u64,
    errors: Vec<Incident>,
    /// The previous interval cut.
    intervals: interval::Cutter,
    /// Per device: what the connection and offline figures read.
    timelines: Vec<DeviceTimeline>,
    /// The scenario's `min_outage`.
    min_outage: std::time::Duration,
    /// Per device: its profile's keepalive, `min_outage`, `settle`, will.
    offline_params: Vec<OfflineParams>,
    /// Per device: it publishes telemetry (so `resume_time` applies).
    has_streams: Vec<bool>,
    /// Spans in which the observer's own connection was down.
    observer_down: Vec<Span>,
    /// Per timeline index: the scheduled fault (kind, start, end), for the
    /// effect of a confirmed fault and flapping's phases.
    plan_faults: Vec<(FaultKind, Duration, Duration)>,
    /// Per timeline index: the devices a device fault picked, and whether
    /// the fault is healed at its end (all but a permanent crash).
    plan_devices: Vec<Vec<DeviceId>>,
    plan_heals: Vec<bool>,
    /// Per timeline index: the weather section it was drawn from.
    plan_weather: Vec<Option<usize>>,
    /// Per device: its name (for the fault records).
    device_names: Vec<String>,
    /// Per device: its id in the whole plan (the same in every shard).
    globals: Vec<DeviceId>,
    /// The scenario's `fault_tolerance`.
    tolerance: Duration,
    /// Per timeline index: its window's moments.
    windows: BTreeMap<usize, Window>,
    /// Observer down spans already judged (by index into `observer_down`).
    judged: BTreeSet<usize>,
    /// The end-of-run checks were made.
    closed: bool,
    /// Per device: the index of its client id among the plan's ids.
    id_group: Vec<usize>,
    /// Per client id: it is shared by several devices.
    id_shared: Vec<bool>,
    /// Per client id: the CONNACKs of its holders, in time order (for a
    /// shared id every holder's, otherwise only intruders').
    claims: Vec<Vec<(Nanos, takeover::Holder)>>,
    /// Per device: MQTT 5 reason codes it was given, in time order
    /// (`DISCONNECT 0x8E`, `PUBACK 0x97`).
    reasons: Vec<Vec<(Nanos, String)>>,
    /// The fleet's and the observer's publish schedules.
    fleet_schedule: schedule::ScheduleMonitor,
    command_schedule: schedule::ScheduleMonitor,
}

impl Recorder {
    pub fn new(plan: &Plan) -> Recorder {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut id_group = Vec::with_capacity(plan.devices.len());
        let mut id_members: Vec<usize> = Vec::new();
        for d in &plan.devices {
            let next = ids.len();
            let g = *ids.entry(d.client_id.as_str()).or_insert(next);
            if g == id_members.len() {
                id_members.push(0);
            }
            id_members[g] += 1;
            id_group.push(g);
        }
        let by_profile = plan.devices_by_profile();
        let names: Vec<&str> = by_profile.keys().copied().collect();
        let profiles = by_profile
            .iter()
            .map(|(name, ids)| ProfileState {
                name: name.to_string(),
                devices: ids.len() as u32,
                ledger: Ledger::new(),
                reconnect_after_heal: latency_histogram(),
                reconnect_changes: BTreeMap::new(),
                exposed: false,
                healed: BTreeSet::new(),
                will_devices: plan
                    .devices
                    .iter()
                    .filter(|d| d.profile == *name && d.will.is_some())
                    .count() as u64,
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
                .map(|f| (f.kind.id(), f.target.clone()))
                .collect(),
            active: BTreeMap::new(),
            faults: BTreeMap::new(),
            unknown_device_events: 0,
            errors: Vec::new(),
            intervals: interval::Cutter::default(),
            timelines: vec![DeviceTimeline::default(); plan.devices.len()],
            reasons: vec![Vec::new(); plan.devices.len()],
            min_outage: plan.scenario.min_outage,
            offline_params: plan
                .devices
                .iter()
                .map(|d| {
                    let keepalive = plan.profile(&d.profile).keepalive;
                    OfflineParams {
                        keepalive,
                        min_outage: plan.scenario.min_outage,
                        settle: plan.scenario.settle,
                        has_will: d.will.is_some(),
                        will_delay: d.will.as_ref().and_then(|w| w.delay).unwrap_or_default(),
                    }
                })
                .collect(),
            has_streams: plan.devices.iter().map(|d| !d.streams.is_empty()).collect(),
            observer_down: Vec::new(),
            plan_faults: plan
                .faults
                .iter()
                .map(|f| (f.kind.clone(), f.at, f.end()))
                .collect(),
            plan_devices: plan.faults.iter().map(|f| f.devices.clone()).collect(),
            plan_weather: plan.faults.iter().map(|f| f.weather).collect(),
            device_names: plan.devices.iter().map(|d| d.name.clone()).collect(),
            globals: plan.devices.iter().map(|d| d.global).collect(),
            plan_heals: plan
                .faults
                .iter()
                .map(|f| !matches!(f.kind, FaultKind::DeviceCrash { .. }) || f.duration.is_some())
                .collect(),
            tolerance: plan.scenario.fault_tolerance,
            windows: BTreeMap::new(),
            judged: BTreeSet::new(),
            closed: false,
            id_group,
            id_shared: id_members.iter().map(|&n| n > 1).collect(),
            claims: vec![Vec::new(); id_members.len()],
            fleet_schedule: schedule::ScheduleMonitor::new(),
            command_schedule: schedule::ScheduleMonitor::new(),
        }
    }

    /// Fold one event.
    pub fn record(&mut self, ev: &Event) {
        match ev {
            Event::Device { at, device, what } => self.device_event(ev, *at, *device, what),
            Event::Observer { at, what } => {
                self.observer_event(ev, *at, what);
            }
            Event::Fault { at, what } => self.fault_event(*at, what),
            Event::Harness { at, cause, message } => self.incident(*at, *cause, message.clone()),
        }
    }

    fn observer_event(&mut self, ev: &Event, at: Nanos, what: &ObserverEvent) {
        // The observer does not retry commands: each is a first attempt.
        if let ObserverEvent::CommandPublished { t_intended, .. } = what {
            if let Some(b) = self.command_schedule.published(at, *t_intended) {
                self.incident(
                    at,
                    health::Cause::ScheduleLag,
                    b.message("the command sender"),
                );
            }
        }
        let at = &at;
        match what {
            ObserverEvent::Connected | ObserverEvent::Disconnected => {
                for p in &mut self.profiles {
                    p.ledger.record(ev);
                }
                let up = matches!(what, ObserverEvent::Connected);
                self.observer_state(*at, up);
                if up {
                    self.judge_broker(*at, false);
                }
            }
            ObserverEvent::Received { device, .. }
            | ObserverEvent::CommandPublished { device, .. }
            | ObserverEvent::CommandOutcome { device, .. } => match self.profile_of(*device) {
                Some(p) => {
                    self.profiles[p].ledger.record(ev);
                    if matches!(what, ObserverEvent::Received { .. }) {
                        self.timelines[*device as usize].received_at(*at);
                    }
                }
                None => self.unknown_device_events += 1,
            },
            // Recorded for the history; its offline reports also arrive
            // as `Status` events.
            ObserverEvent::Sys { .. } => {}
            ObserverEvent::Status { device, online, .. } => {
                match self.timelines.get_mut(*device as usize) {
                    Some(tl) => tl.statuses.push((*at, *online)),
                    None => self.unknown_device_events += 1,
                }
            }
        }
    }

    /// The observer's own connection went up or down (the ledger is told
    /// separately). Like the ledger, the observer counts as up from the
    /// start: the runner starts it, subscribed, before any device.
    fn observer_state(&mut self, at: Nanos, up: bool) {
        let open = self.observer_down.last().is_some_and(|s| s.end.is_none());
        match (up, open) {
            (true, true) => {
                if let Some(s) = self.observer_down.last_mut() {
                    s.end = Some(at.max(s.start));
                }
            }
            (false, false) => self.observer_down.push(Span::open(at)),
            _ => {}
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
        if let DeviceEvent::Published {
            t_intended,
            attempt: 0,
            stream,
            ..
        } = what
        {
            if let Some(b) = self.fleet_schedule.published(at, *t_intended) {
                let who = format!("the fleet (device {device}, stream {stream})");
                self.incident(at, health::Cause::ScheduleLag, b.message(&who));
            }
        }
        match what {
            DeviceEvent::Published { .. }
            | DeviceEvent::Outcome { .. }
            | DeviceEvent::CommandReceived { .. } => self.profiles[p].ledger.record(ev),
            DeviceEvent::ConnectAttempt => {
                self.timelines[d].attempts.push(at);
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
                let g = self.id_group[d];
                if self.id_shared[g] {
                    self.claims[g].push((at, takeover::Holder::Device(device)));
                }
                let st = &mut self.devices[d];
                if st.ever_connected {
                    self.profiles[p].reconnects += 1;
                    self.profiles[p].session_present += u64::from(*session_present);
                }
                st.ever_connected = true;
                st.connected = true;
                let awaited = std::mem::take(&mut st.awaiting);
                self.timelines[d].connected_at(at);
                for (heal, start) in awaited {
                    let us = at.saturating_since(heal).as_micros();
                    let us = us.min(u64::MAX as u128) as u64;
                    let bucket = self.intervals.bucket_of(start);
                    let p = &mut self.profiles[p];
                    crate::ledger::record(&mut p.reconnect_after_heal, us);
                    crate::ledger::record(
                        p.reconnect_changes
                            .entry(bucket)
                            .or_insert_with(latency_histogram),
                        us,
                    );
                }
            }
            DeviceEvent::ConnectionLost { cause } => {
                if let crate::history::LossCause::ServerDisconnect { reason } = cause {
                    self.reasons[d].push((at, reason_key("DISCONNECT", *reason)));
                }
                self.devices[d].connected = false;
                self.timelines[d].disconnected_at(at);
                self.timelines[d].losses.push(at);
                let hit: Vec<(usize, Class)> = self
                    .active
                    .iter()
                    .filter(|(_, e)| self.hits(e, device))
                    .map(|(i, e)| (*i, e.class))
                    .collect();
                for (i, class) in &hit {
                    if *class == Class::Device {
                        continue;
                    }
                    if let Some(e) = self.active.get_mut(i) {
                        e.lost.insert(device);
                        // Lost while the heal is being applied: it waits
                        // for its reconnect after the heal.
                        if let Some(heal) = e.healing {
                            if e.awaited.insert(device) {
                                self.devices[d].awaiting.push((heal, e.start));
                            }
                        }
                    }
                }
                // A client-id conflict does not excuse a loss: its
                // takeovers are flaps (METRICS.md); link, broker and crash
                // faults do.
                let excused = hit.iter().any(|(i, class)| {
                    *class != Class::Device
                        || self.scheduled.get(*i).map(|s| s.0) != Some(FaultName::ClientIdConflict)
                });
                if !excused && !self.devices[d].crashed {
                    self.profiles[p].flaps += 1;
                }
            }
            DeviceEvent::Crashed => {
                self.devices[d].crashed = true;
                self.devices[d].connected = false;
                let tl = &mut self.timelines[d];
                tl.disconnected_at(at);
                if !tl.is_crashed() {
                    tl.outages.push(Outage {
                        index: None,
                        cause: Cause::Dead,
                        span: Span::open(at),
                    });
                }
            }
            DeviceEvent::Restarted => {
                self.devices[d].crashed = false;
                for o in &mut self.timelines[d].outages {
                    if o.cause == Cause::Dead && o.span.end.is_none() {
                        o.span.end = Some(at.max(o.span.start));
                    }
                }
            }
            DeviceEvent::IntruderConnected => {
                self.claims[self.id_group[d]].push((at, takeover::Holder::Intruder(device)));
            }
            DeviceEvent::AckReason { packet, reason, .. } => {
                self.reasons[d].push((at, reason_key(packet, *reason)));
            }
            DeviceEvent::ConnectFailed { .. } | DeviceEvent::Subscribed { .. } => {}
        }
    }

    /// Which devices a fault of `class` with `target` (and, for device
    /// faults and weather events, its picked `devices`) hits.
    fn hit_of(
        &self,
        class: Class,
        target: Option<&str>,
        devices: &[DeviceId],
    ) -> Result<Hit, String> {
        Ok(match (class, target) {
            (Class::Broker, _) => Hit::All,
            (Class::Device | Class::Link, _) if !devices.is_empty() => {
                Hit::Devices(devices.iter().copied().collect())
            }
            (_, None) => Hit::All,
            (_, Some(g)) => match self.groups.iter().position(|x| x == g) {
                Some(i) => Hit::Groups(vec![i]),
                None => return Err(g.to_string()),
            },
        })
    }

    fn incident(&mut self, at: Nanos, cause: health::Cause, message: String) {
        self.errors
            .push(Incident::new(Some(at.as_secs_f64()), cause, message));
    }

    fn fault_event(&mut self, at: Nanos, what: &FaultEvent) {
        let index = match what {
            FaultEvent::Requested { index }
            | FaultEvent::Applied { index, .. }
            | FaultEvent::HealRequested { index }
            | FaultEvent::Healed { index }
            | FaultEvent::Failed { index, .. } => *index,
        };
        if index >= self.scheduled.len() {
            self.incident(
                at,
                health::Cause::Internal,
                format!(
                    "a fault event of timeline[{index}], which the run's timeline does not have \
                     ({} entries)",
                    self.scheduled.len()
                ),
            );
            return;
        }
        match what {
            FaultEvent::Requested { index } => {
                let w = self.windows.entry(*index).or_default();
                if w.requested.is_some() {
                    return;
                }
                w.requested = Some(at);
                self.fault_record(*index).requested_at_s = Some(at.as_secs_f64());
                // The window opens: the episode is active from here, hitting
                // what the plan says it hits.
                let Some((kind, target)) = self.scheduled.get(*index).cloned() else {
                    return;
                };
                let class = class_of(kind);
                let devices = self.plan_devices.get(*index).cloned().unwrap_or_default();
                let hit = self
                    .hit_of(class, target.as_deref(), &devices)
                    .unwrap_or(Hit::Groups(Vec::new()));
                let label = match &target {
                    Some(t) => format!("{kind}@{t}"),
                    None => kind.to_string(),
                };
                self.active.entry(*index).or_insert(Episode {
                    label,
                    start: at,
                    class,
                    hit,
                    lost: BTreeSet::new(),
                    healing: None,
                    awaited: BTreeSet::new(),
                });
            }
            FaultEvent::Applied {
                index,
                kind,
                target,
                devices,
            } => {
                let class = class_of(*kind);
                // A weather event's link fault falls on the plan's device.
                let planned;
                let devices = if devices.is_empty() {
                    planned = self.plan_devices.get(*index).cloned().unwrap_or_default();
                    &planned
                } else {
                    devices
                };
                let hit = match self.hit_of(class, target.as_deref(), devices) {
                    Ok(h) => h,
                    Err(g) => {
                        self.incident(
                            at,
                            health::Cause::Internal,
                            format!("fault {index} ({kind}) targets unknown group {g}"),
                        );
                        Hit::Groups(Vec::new())
                    }
                };
                let label = match target {
                    Some(t) => format!("{kind}@{t}"),
                    None => kind.to_string(),
                };
                let w = self.windows.entry(*index).or_default();
                if w.applied.is_some() {
                    return;
                }
                w.applied = Some(at);
                let start = w.requested.filter(|r| *r <= at).unwrap_or(at);
                let lost = self
                    .active
                    .remove(index)
                    .map(|e| e.lost)
                    .unwrap_or_default();
                let ep = Episode {
                    label,
                    start,
                    class,
                    hit,
                    lost,
                    healing: None,
                    awaited: BTreeSet::new(),
                };
                if class != Class::Device {
                    let effect = self
                        .plan_faults
                        .get(*index)
                        .and_then(|(k, _, _)| Effect::of(k));
                    for i in 0..self.devices.len() {
                        if self.hits(&ep, i as DeviceId) {
                            let p = self.devices[i].profile;
                            self.profiles[p].exposed = true;
                            if let Some(effect) = effect {
                                self.expose(i, *index, effect, start);
                            }
                        }
                    }
                }
                self.active.insert(*index, ep);
                let rec = self.fault_record(*index);
                rec.kind = *kind;
                rec.target = target.clone();
                rec.started_at_s = Some(at.as_secs_f64());
                rec.applied = true;
                if let Some(&(_, scheduled, _)) = self.plan_faults.get(*index) {
                    self.check_late(at, *index, "confirmed", "start", scheduled);
                }
            }
            FaultEvent::HealRequested { index } => {
                let w = self.windows.entry(*index).or_default();
                if w.heal_requested.is_none() {
                    w.heal_requested = Some(at);
                    self.heal_episode(*index, at);
                    // The window ends when the heal is requested; how long
                    // the backend then takes (a broker booting) is measured
                    // by the reconnect figures, not a late heal.
                    if self.plan_heals.get(*index) == Some(&true) {
                        let scheduled_end = self.plan_faults[*index].2;
                        self.check_late(at, *index, "heal requested", "end", scheduled_end);
                    }
                }
            }
            FaultEvent::Healed { index } => {
                let w = self.windows.entry(*index).or_default();
                if w.healed.is_some() {
                    return;
                }
                w.healed = Some(at);
                let heal_requested = w.heal_requested.is_some();
                self.fault_record(*index).healed_at_s = Some(at.as_secs_f64());
                self.heal_episode(*index, at);
                self.active.remove(index);
                if !heal_requested && self.plan_heals.get(*index) == Some(&true) {
                    let scheduled_end = self.plan_faults[*index].2;
                    self.check_late(at, *index, "healed", "end", scheduled_end);
                }
            }
            FaultEvent::Failed {
                index,
                error,
                applied,
            } => {
                let w = self.windows.entry(*index).or_default();
                let confirmed = w.applied.is_some();
                w.failed.get_or_insert(at);
                let rec = self.fault_record(*index);
                rec.error = Some(error.clone());
                // Never reported as applied unless the backend confirmed it.
                rec.applied = confirmed;
                self.incident(
                    at,
                    health::Cause::FaultBackend,
                    format!(
                        "{error} ({})",
                        if *applied || confirmed {
                            "the fault was in force"
                        } else {
                            "the fault was not applied"
                        }
                    ),
                );
                if !confirmed {
                    // Nothing was exposed; its losses so far were the
                    // fault's, what comes now is not.
                    self.active.remove(index);
                }
            }
        }
    }

    /// `fault_late` when `at` is more than `fault_tolerance` after the
    /// scheduled `due` moment of fault `index`.
    fn check_late(&mut self, at: Nanos, index: usize, what: &str, which: &str, due: Duration) {
        let late = at.as_duration().saturating_sub(due);
        if late <= self.tolerance {
            return;
        }
        let kind = self.scheduled[index].0;
        self.incident(
            at,
            health::Cause::FaultLate,
            format!(
                "timeline[{index}] {kind}: {what} {:.3} s after its scheduled {which} at {:.3} s (fault_tolerance {} s)",
                late.as_secs_f64(),
                due.as_secs_f64(),
                self.tolerance.as_secs_f64()
            ),
        );
    }

    /// The heal of fault `index` takes effect at `t_heal` (requested, or
    /// confirmed without a request): exposures end, devices that lost their
    /// connection during the episode and are not connected wait for their
    /// reconnect. Once per episode; the episode stays active until `Healed`.
    fn heal_episode(&mut self, index: usize, t_heal: Nanos) {
        let Some(ep) = self.active.get_mut(&index) else {
            return;
        };
        if ep.healing.is_some() {
            return;
        }
        ep.healing = Some(t_heal);
        let start = ep.start;
        if ep.class == Class::Device {
            return;
        }
        let lost: Vec<DeviceId> = ep.lost.iter().copied().collect();
        let hit: Vec<usize> = (0..self.devices.len())
            .filter(|&i| self.hits(&self.active[&index], i as DeviceId))
            .collect();
        for i in hit {
            let p = self.devices[i].profile;
            self.profiles[p].healed.insert(start);
            self.heal(i, index, t_heal);
        }
        for d in lost {
            if !self.devices[d as usize].connected {
                self.devices[d as usize].awaiting.push((t_heal, start));
                if let Some(ep) = self.active.get_mut(&index) {
                    ep.awaited.insert(d);
                }
            }
        }
    }

    /// The broker windows of the faults so far (see [`availability`]).
    fn broker_windows(&self) -> Vec<availability::BrokerWindow> {
        self.windows
            .iter()
            .filter(|(i, _)| {
                self.plan_faults
                    .get(**i)
                    .is_some_and(|(k, _, _)| k.is_broker_fault())
            })
            .filter_map(|(&index, w)| {
                Some(availability::BrokerWindow {
                    index,
                    start: w.requested.or(w.applied)?,
                    healed: w.healed.or(w.failed.filter(|_| w.applied.is_none())),
                })
            })
            .collect()
    }

    /// Judge the observer's down spans not judged yet, as of `now`.
    fn judge_broker(&mut self, now: Nanos, at_end: bool) {
        let windows = self.broker_windows();
        for k in 0..self.observer_down.len() {
            if self.judged.contains(&k) {
                continue;
            }
            let span = self.observer_down[k];
            if let Some(f) = availability::judge(&span, &windows, now, at_end) {
                self.judged.insert(k);
                self.incident(f.at, f.cause, f.message);
            } else if span.end.is_some() {
                // Closed and found fine: nothing later changes that.
                self.judged.insert(k);
            }
        }
    }

    /// The checks only the run's end can make (once; the last interval and
    /// the report both carry them): faults never confirmed, heals never
    /// confirmed, the observer still down.
    fn close(&mut self, end: Nanos) {
        if self.closed {
            return;
        }
        self.closed = true;
        for index in 0..self.plan_faults.len() {
            let (_, start, stop) = self.plan_faults[index].clone();
            let w = self.windows.get(&index).copied().unwrap_or_default();
            let kind = self.scheduled[index].0;
            // Another shard's weather event (plan::ScheduledFault::is_elsewhere).
            if self.plan_weather[index].is_some() && self.plan_devices[index].is_empty() {
                continue;
            }
            if Nanos::from_duration(start) < end && w.applied.is_none() {
                self.fault_record(index).applied = false;
                self.incident(
                    Nanos::from_duration(start),
                    health::Cause::FaultNotApplied,
                    format!(
                        "timeline[{index}] {kind}: scheduled at {:.3} s, never confirmed by its backend{}",
                        start.as_secs_f64(),
                        match w.requested {
                            Some(r) => format!(" (requested at {:.3} s)", r.as_secs_f64()),
                            None => " (never requested)".into(),
                        }
                    ),
                );
            } else if w.applied.is_some()
                && self.plan_heals[index]
                && w.healed.is_none()
                && w.failed.is_none()
                && end.as_duration() > stop + self.tolerance
            {
                self.incident(
                    Nanos::from_duration(stop + self.tolerance),
                    health::Cause::FaultLate,
                    format!(
                        "timeline[{index}] {kind}: its heal, scheduled at {:.3} s, was never confirmed",
                        stop.as_secs_f64()
                    ),
                );
            }
        }
        self.judge_broker(end, true);
        // Commands for a device dead at the end are undeliverable.
        for (d, st) in self.devices.iter().enumerate() {
            if st.crashed {
                self.profiles[st.profile].ledger.dead_at_end(d as DeviceId);
            }
        }
    }

    /// A link/broker fault confirmed at `at` hits device `d`: the episode,
    /// and the spans in which it makes the device unreachable (flapping:
    /// its down phases, from the plan's schedule).
    fn expose(&mut self, d: usize, index: usize, effect: Effect, at: Nanos) {
        let tl = &mut self.timelines[d];
        tl.exposures.push(Exposure {
            index,
            effect,
            span: Span::open(at),
        });
        if !effect.is_unreachable() {
            return;
        }
        let cause = Cause::Fault(effect);
        match &self.plan_faults[index] {
            (FaultKind::Flapping { down, up }, start, end) if !(*down + *up).is_zero() => {
                let mut phase = *start;
                while phase < *end {
                    let stop = (phase + *down).min(*end);
                    tl.outages.push(Outage {
                        index: Some(index),
                        cause,
                        span: Span {
                            start: Nanos::from_duration(phase).max(at),
                            // A phase that lasts to the end lasts until the
                            // confirmed heal.
                            end: (stop < *end).then(|| Nanos::from_duration(stop)),
                        },
                    });
                    phase += *down + *up;
                }
            }
            _ => tl.outages.push(Outage {
                index: Some(index),
                cause,
                span: Span::open(at),
            }),
        }
    }

    /// The fault `index` is healed at `at` for device `d`.
    fn heal(&mut self, d: usize, index: usize, at: Nanos) {
        let tl = &mut self.timelines[d];
        for e in &mut tl.exposures {
            if e.index == index && e.span.end.is_none() {
                e.span.end = Some(at.max(e.span.start));
            }
        }
        tl.outages
            .retain(|o| o.index != Some(index) || o.span.start < at);
        for o in &mut tl.outages {
            if o.index == Some(index) {
                let end = o.span.end.map_or(at, |e| e.min(at));
                o.span.end = Some(end.max(o.span.start));
            }
        }
        if self.has_streams[d] && !tl.is_crashed() {
            // The episode as this device lived it starts at its exposure.
            let start = tl
                .exposures
                .iter()
                .rev()
                .find(|e| e.index == index)
                .map_or(at, |e| e.span.start);
            tl.awaiting_data.push((at, start));
        }
    }

    /// The record of timeline entry `index`, created from the plan if new.
    fn fault_record(&mut self, index: usize) -> &mut FaultRecord {
        // Only indices of the plan get here (see `fault_event`).
        let (kind, target) = self.scheduled[index].clone();
        let scheduled_at_s = self.plan_faults.get(index).map(|f| f.1.as_secs_f64());
        self.faults.entry(index).or_insert(FaultRecord {
            index,
            kind,
            target,
            scheduled_at_s,
            requested_at_s: None,
            started_at_s: None,
            healed_at_s: None,
            applied: false,
            error: None,
            weather: self.plan_weather.get(index).copied().flatten(),
            devices: self
                .plan_devices
                .get(index)
                .map(|ds| {
                    ds.iter()
                        .filter_map(|&d| self.device_names.get(d as usize).cloned())
                        .collect()
                })
                .unwrap_or_default(),
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

    /// Every connection and offline sample as of `at` (each device's story
    /// until `at`, anything still open closed at `at`), told to `sink` with
    /// the device's profile (in the recorder's profile order) and the start
    /// of what the sample belongs to: the rule the time series counts them
    /// by (see [`interval`]).
    pub fn link_samples(&self, at: Nanos, sink: &mut impl FnMut(usize, Nanos, LinkSample)) {
        let observer_down: Vec<(Nanos, Nanos)> = self
            .observer_down
            .iter()
            .map(|s| (s.start, s.end_or(at)))
            .collect();
        for (i, tl) in self.timelines.iter().enumerate() {
            let p = self.devices[i].profile;
            let params = &self.offline_params[i];
            let device = i as DeviceId;
            let global = self.globals[i];
            connection::device_samples(tl, at, &mut |t, s| sink(p, t, LinkSample::Conn(s)));
            offline::device_samples(tl, &observer_down, params, at, &mut |t, sample| {
                sink(
                    p,
                    t,
                    LinkSample::Offline {
                        device: global,
                        will: params.has_will,
                        sample,
                    },
                )
            });
            let claims = &self.claims[self.id_group[i]];
            // Losses are recorded in time order: those up to `at`.
            let losses = &tl.losses[..tl.losses.partition_point(|&l| l <= at)];
            for t in takeover::takeovers(losses, claims, takeover::Holder::Device(device)) {
                sink(p, t, LinkSample::Takeover);
            }
            let reasons = &self.reasons[i];
            for (t, key) in &reasons[..reasons.partition_point(|(t, _)| *t <= at)] {
                sink(p, *t, LinkSample::Reason(key.clone()));
            }
            for &(_, start) in &self.devices[i].awaiting {
                sink(p, start, LinkSample::ReconnectCensored);
            }
        }
        for (p, st) in self.profiles.iter().enumerate() {
            for &start in &st.healed {
                sink(p, start, LinkSample::ReconnectHealed);
            }
        }
    }

    /// The connection and offline figures as of `at`, per profile (in the
    /// recorder's profile order): every sample of [`Recorder::link_samples`],
    /// whatever its start.
    pub fn link_figures(&self, at: Nanos) -> Vec<LinkFigures> {
        let mut links: Vec<LinkFigures> = self
            .profiles
            .iter()
            .map(|p| LinkFigures::of_population(p.will_devices))
            .collect();
        self.link_samples(at, &mut |p, _, s| links[p].record(&s));
        links
    }

    /// The connection and offline figures as of `at`, per profile (in the
    /// recorder's profile order) and for all devices (see
    /// [`Recorder::link_figures`]).
    pub fn link_snapshots(&self, at: Nanos) -> (Vec<LinkSnapshot>, LinkSnapshot) {
        let links = self.link_figures(at);
        (
            links.iter().map(LinkFigures::snapshot).collect(),
            LinkFigures::sum(&links).snapshot(),
        )
    }

    /// End of the run (after the drain): every figure, the SLOs checked.
    pub fn finish(mut self, end: Nanos, ctx: RunContext) -> Report {
        self.close(end);
        let unobserved_s = ctx.unobserved_s.unwrap_or_else(|| {
            self.profiles
                .first()
                .map_or(0.0, |p| p.ledger.unobserved_time(end).as_secs_f64())
        });
        let hours = end.as_secs_f64() / 3600.0;
        let links = self.link_figures(end);
        let links_all = LinkFigures::sum(&links).snapshot();

        let mut errors = self.errors;
        if self.unknown_device_events > 0 {
            errors.push(Incident::untimed(
                health::Cause::Internal,
                format!(
                    "{} events named a device that is not in the plan",
                    self.unknown_device_events
                ),
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
                    errors.push(Incident::untimed(health::Cause::Internal, format!(
                        "profile {}: {} {dir} receptions were too old to match (ledger horizon); counted neither as delivered nor as duplicates",
                        p.name, f.counts.ambiguous
                    )));
                }
                if f.counts.orphans > 0 {
                    errors.push(Incident::untimed(
                        health::Cause::Internal,
                        format!(
                            "profile {}: {} {dir} outcomes had no Published event",
                            p.name, f.counts.orphans
                        ),
                    ));
                }
            }
            all.add(&figs);
            rah_all
                .add(&p.reconnect_after_heal)
                .expect("auto-resizing histograms add");
            let conn = ConnTotals::of(
                p.devices,
                p.exposed,
                [p.reconnects, p.session_present, p.attempts, p.flaps],
                &links[i],
                &p.reconnect_after_heal,
            );
            total.add(&conn);
            profiles.insert(
                p.name.clone(),
                figures(
                    &figs,
                    &p.reconnect_after_heal,
                    &conn,
                    &links[i].snapshot(),
                    hours,
                ),
            );
        }
        let totals = figures(&all, &rah_all, &total, &links_all, hours);
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            scenario: ctx.scenario,
            seed: ctx.seed,
            verdict: Verdict::Pass,
            started_at: rfc3339(ctx.started_at),
            duration_s: ctx.duration_s,
            min_outage_s: Some(self.min_outage.as_secs_f64()),
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
pub(crate) struct ConnTotals {
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
    /// The connection counts of a population of `devices`: `counts` are
    /// reconnects, reconnects with session present, reconnect attempts and
    /// flaps. `reconnect_attempts` is measured when a link/broker fault hit
    /// it (`exposed`) or attempts were counted (a fault requested, never
    /// confirmed, still makes its devices' attempts count);
    /// `reconnect_after_heal` when an episode that hit it healed or it has
    /// samples, its censored count from `link`.
    pub(crate) fn of(
        devices: u32,
        exposed: bool,
        counts: [u64; 4],
        link: &LinkFigures,
        reconnect_after_heal: &Histogram<u64>,
    ) -> ConnTotals {
        let [reconnects, session_present, attempts, flaps] = counts;
        ConnTotals {
            devices,
            exposed: exposed || attempts > 0,
            healed: link.reconnect_healed || !reconnect_after_heal.is_empty(),
            reconnects,
            session_present,
            attempts,
            flaps,
            censored: link.reconnect_censored,
        }
    }

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

/// The connection and offline samples of one population, as histograms
/// (µs) and counts; see [`connection`] and [`offline`] for each definition.
///
/// Of the whole run (the report), or of the episodes that started in one
/// interval (the time series, see [`interval`]). Unlike the percentiles of
/// a [`LinkSnapshot`], figures add up exactly: two populations' (shards,
/// profiles) with [`LinkFigures::add`], two intervals' of one population
/// with [`LinkFigures::add_interval`], then [`LinkFigures::snapshot`]. The
/// per-device parts (`false_online_time` is a per-device total,
/// `devices_false_offline` a share of devices) are kept by device, only
/// for the devices that have one, so they add up too. In
/// `intervals.jsonl` they are written compactly ([`LinkRecord`]): counts,
/// flags and maps left out when 0, false or empty, each non-empty
/// histogram as base64 of HdrHistogram's V2 + deflate encoding (the one of
/// the `.hlog` lines), empty ones left out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LinkFigures {
    /// Devices of the population with a will (a status topic): the
    /// population, not a sample; the same in every interval.
    #[serde(skip_serializing_if = "is_zero")]
    pub will_devices: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub zombie_exposed: bool,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub zombie: Histogram<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub zombie_undetected: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outage_exposed: bool,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub outage_seen: Histogram<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub outage_seen_censored: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub healed: bool,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub first_attempt: Histogram<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub first_attempt_censored: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resume_exposed: bool,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub resume: Histogram<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub resume_censored: u64,
    /// A link/broker episode that hit the population healed (so
    /// `reconnect_after_heal`, whose samples are in the `.hlog`, is measured).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconnect_healed: bool,
    /// Devices still waiting for their reconnect after a heal.
    #[serde(skip_serializing_if = "is_zero")]
    pub reconnect_censored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub deaths: u64,
    /// Deaths of devices with a will.
    #[serde(skip_serializing_if = "is_zero")]
    pub will_deaths: u64,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub detect: Histogram<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub detect_censored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub missed: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub unobserved: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub true_offline: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub false_offline: u64,
    /// The devices with at least one false offline report (ids in the
    /// whole plan).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub false_offline_devices: BTreeSet<DeviceId>,
    /// Connections taken over by another client with the same client id.
    #[serde(skip_serializing_if = "is_zero")]
    pub takeovers: u64,
    /// MQTT 5 reason codes the devices were given, by packet and code
    /// (`DISCONNECT 0x8E`), counted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reason_codes: BTreeMap<String, u64>,
    #[serde(
        with = "hlog::base64_histogram",
        skip_serializing_if = "Histogram::is_empty"
    )]
    pub stale: Histogram<u64>,
    /// Per device with any (ids in the whole plan): the time it was shown
    /// online while unreachable (ns). Every other device with a will has 0.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub false_online_ns: BTreeMap<DeviceId, u64>,
}

/// One sample of the connection and offline figures, as
/// [`Recorder::link_samples`] tells it (with the start of what it belongs
/// to) and [`LinkFigures::record`] counts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkSample {
    Conn(connection::ConnSample),
    Offline {
        /// Its id in the whole plan (shards' figures join without a clash).
        device: DeviceId,
        /// The device has a will.
        will: bool,
        sample: offline::OfflineSample,
    },
    /// A connection loss that was a takeover (at the loss).
    Takeover,
    /// A reason code given to a device (at the packet).
    Reason(String),
    /// A link/broker episode that hit the profile healed (at its start).
    ReconnectHealed,
    /// A device still waiting for its reconnect after an episode's heal
    /// (at the episode's start).
    ReconnectCensored,
}

/// [`LinkFigures`] as a line of `intervals.jsonl` holds them, kept
/// encoded once read: a decoded histogram takes some 16 KB and a multi-day
/// run read back holds thousands of records, so they are decoded
/// ([`LinkRecord::decode`]) only where they are added up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LinkRecord(serde_json::Value);

impl LinkRecord {
    pub fn encode(figures: &LinkFigures) -> LinkRecord {
        LinkRecord(serde_json::to_value(figures).expect("link figures serialize to JSON"))
    }

    /// The figures, or what is wrong with the encoding.
    pub fn decode(&self) -> Result<LinkFigures, String> {
        use serde::Deserialize as _;
        LinkFigures::deserialize(&self.0).map_err(|e| e.to_string())
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Default for LinkFigures {
    fn default() -> Self {
        LinkFigures::new()
    }
}

impl LinkFigures {
    /// No samples, no population.
    pub fn new() -> LinkFigures {
        LinkFigures {
            will_devices: 0,
            zombie_exposed: false,
            zombie: latency_histogram(),
            zombie_undetected: 0,
            outage_exposed: false,
            outage_seen: latency_histogram(),
            outage_seen_censored: 0,
            healed: false,
            first_attempt: latency_histogram(),
            first_attempt_censored: 0,
            resume_exposed: false,
            resume: latency_histogram(),
            resume_censored: 0,
            reconnect_healed: false,
            reconnect_censored: 0,
            deaths: 0,
            will_deaths: 0,
            detect: latency_histogram(),
            detect_censored: 0,
            missed: 0,
            unobserved: 0,
            true_offline: 0,
            false_offline: 0,
            false_offline_devices: BTreeSet::new(),
            takeovers: 0,
            reason_codes: BTreeMap::new(),
            stale: latency_histogram(),
            false_online_ns: BTreeMap::new(),
        }
    }

    /// No samples yet, for a population with `will_devices` devices with a will.
    pub fn of_population(will_devices: u64) -> LinkFigures {
        LinkFigures {
            will_devices,
            ..LinkFigures::new()
        }
    }

    /// Count one sample.
    pub fn record(&mut self, s: &LinkSample) {
        use connection::ConnSample as C;
        use offline::OfflineSample as O;
        let put = |h: &mut Histogram<u64>, d: Duration| {
            crate::ledger::record(h, d.as_micros().min(u64::MAX as u128) as u64)
        };
        match s {
            LinkSample::Conn(c) => match *c {
                C::ZombieExposed => self.zombie_exposed = true,
                C::Zombie(d) => put(&mut self.zombie, d),
                C::ZombieUndetected => self.zombie_undetected += 1,
                C::Exposed => self.outage_exposed = true,
                C::OutageSeen(d) => put(&mut self.outage_seen, d),
                C::OutageSeenCensored => self.outage_seen_censored += 1,
                C::Healed => self.healed = true,
                C::FirstAttempt(d) => put(&mut self.first_attempt, d),
                C::FirstAttemptCensored => self.first_attempt_censored += 1,
                C::ResumeExposed => self.resume_exposed = true,
                C::Resume(d) => put(&mut self.resume, d),
                C::ResumeCensored => self.resume_censored += 1,
            },
            LinkSample::Offline {
                device,
                will,
                sample,
            } => match *sample {
                O::Death => {
                    self.deaths += 1;
                    self.will_deaths += u64::from(*will);
                }
                O::Detect(d) => put(&mut self.detect, d),
                O::DetectCensored => self.detect_censored += 1,
                O::Missed => self.missed += 1,
                O::Unobserved => self.unobserved += 1,
                O::TrueOffline => self.true_offline += 1,
                O::FalseOffline => {
                    self.false_offline += 1;
                    self.false_offline_devices.insert(*device);
                }
                O::Stale(d) => put(&mut self.stale, d),
                O::FalseOnline(d) => {
                    let ns = d.as_nanos().min(u64::MAX as u128) as u64;
                    *self.false_online_ns.entry(*device).or_default() += ns;
                }
            },
            LinkSample::Takeover => self.takeovers += 1,
            LinkSample::Reason(key) => *self.reason_codes.entry(key.clone()).or_default() += 1,
            LinkSample::ReconnectHealed => self.reconnect_healed = true,
            LinkSample::ReconnectCensored => self.reconnect_censored += 1,
        }
    }

    /// The sum of several populations' figures.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a LinkFigures>) -> LinkFigures {
        let mut sum = LinkFigures::new();
        for l in all {
            sum.add(l);
        }
        sum
    }

    /// Add another population's figures: counts and populations sum, flags
    /// or, histograms add bucket for bucket, per-device parts join.
    pub fn add(&mut self, o: &LinkFigures) {
        self.will_devices += o.will_devices;
        self.add_samples(o);
    }

    /// Add the figures of another interval of the same population: as
    /// [`LinkFigures::add`], but the population stays what it is.
    pub fn add_interval(&mut self, o: &LinkFigures) {
        self.will_devices = self.will_devices.max(o.will_devices);
        self.add_samples(o);
    }

    fn add_samples(&mut self, o: &LinkFigures) {
        let add = |h: &mut Histogram<u64>, o: &Histogram<u64>| {
            h.add(o).expect("auto-resizing histograms add")
        };
        self.zombie_exposed |= o.zombie_exposed;
        add(&mut self.zombie, &o.zombie);
        self.zombie_undetected += o.zombie_undetected;
        self.outage_exposed |= o.outage_exposed;
        add(&mut self.outage_seen, &o.outage_seen);
        self.outage_seen_censored += o.outage_seen_censored;
        self.healed |= o.healed;
        add(&mut self.first_attempt, &o.first_attempt);
        self.first_attempt_censored += o.first_attempt_censored;
        self.resume_exposed |= o.resume_exposed;
        add(&mut self.resume, &o.resume);
        self.resume_censored += o.resume_censored;
        self.reconnect_healed |= o.reconnect_healed;
        self.reconnect_censored += o.reconnect_censored;
        self.deaths += o.deaths;
        self.will_deaths += o.will_deaths;
        add(&mut self.detect, &o.detect);
        self.detect_censored += o.detect_censored;
        self.missed += o.missed;
        self.unobserved += o.unobserved;
        self.true_offline += o.true_offline;
        self.false_offline += o.false_offline;
        self.false_offline_devices
            .extend(o.false_offline_devices.iter().copied());
        self.takeovers += o.takeovers;
        for (k, n) in &o.reason_codes {
            *self.reason_codes.entry(k.clone()).or_default() += n;
        }
        add(&mut self.stale, &o.stale);
        for (d, ns) in &o.false_online_ns {
            *self.false_online_ns.entry(*d).or_default() += ns;
        }
    }

    /// `false_online_time`'s histogram: one sample per device with a will.
    fn false_online(&self) -> Histogram<u64> {
        let mut h = latency_histogram();
        for ns in self.false_online_ns.values() {
            crate::ledger::record(&mut h, ns / 1_000);
        }
        let zeros = self
            .will_devices
            .saturating_sub(self.false_online_ns.len() as u64);
        if zeros > 0 {
            h.record_n(0, zeros)
                .expect("0 fits an auto-resizing histogram");
        }
        h
    }
}

/// The connection and offline figures of one population, as the report
/// shows them ([`LinkFigures::snapshot`]). Interval files of the first
/// format carried them cumulative from the run's start (see
/// [`interval`]); they are read only from those.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkSnapshot {
    pub zombie_time: Option<DurationFigure>,
    pub zombie_undetected: Option<u64>,
    pub broker_detect_time: Option<DurationFigure>,
    pub outage_seen_by_client: Option<DurationFigure>,
    pub resume_time: Option<DurationFigure>,
    pub first_attempt_delay: Option<DurationFigure>,
    pub true_offline: Option<u64>,
    pub false_offline: Option<u64>,
    pub false_offline_rate: Option<f64>,
    /// Devices with at least one false offline report (a count: the
    /// report divides by the population).
    pub devices_false_offline: Option<u64>,
    pub takeovers: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reason_codes: BTreeMap<String, u64>,
    pub stale_offline_time: Option<DurationFigure>,
    pub missed_offline: Option<u64>,
    pub false_online_time: Option<DurationFigure>,
    pub offline_unobserved: Option<u64>,
}

impl LinkFigures {
    /// The figures as the report shows them.
    pub fn snapshot(&self) -> LinkSnapshot {
        let hist = |h: &Histogram<u64>| DurationFigure::from_histogram(h);
        let episodes = self.true_offline + self.false_offline;
        let wills = self.will_devices > 0;
        LinkSnapshot {
            zombie_time: self
                .zombie_exposed
                .then(|| hist(&self.zombie).with_censored(self.zombie_undetected)),
            zombie_undetected: self.zombie_exposed.then_some(self.zombie_undetected),
            broker_detect_time: (self.will_deaths > 0)
                .then(|| hist(&self.detect).with_censored(self.detect_censored)),
            outage_seen_by_client: self
                .outage_exposed
                .then(|| hist(&self.outage_seen).with_censored(self.outage_seen_censored)),
            resume_time: self
                .resume_exposed
                .then(|| hist(&self.resume).with_censored(self.resume_censored)),
            first_attempt_delay: self
                .healed
                .then(|| hist(&self.first_attempt).with_censored(self.first_attempt_censored)),
            true_offline: wills.then_some(self.true_offline),
            false_offline: wills.then_some(self.false_offline),
            false_offline_rate: (wills && episodes > 0)
                .then(|| self.false_offline as f64 / episodes as f64),
            devices_false_offline: wills.then_some(self.false_offline_devices.len() as u64),
            takeovers: self.takeovers,
            reason_codes: self.reason_codes.clone(),
            stale_offline_time: wills.then(|| hist(&self.stale)),
            missed_offline: (self.deaths > 0).then_some(self.missed),
            false_online_time: wills.then(|| hist(&self.false_online())),
            offline_unobserved: (self.will_deaths > 0).then_some(self.unobserved),
        }
    }
}

fn figures(
    msgs: &LedgerFigures,
    reconnect_after_heal: &Histogram<u64>,
    c: &ConnTotals,
    l: &LinkSnapshot,
    hours: f64,
) -> Figures {
    let device_hours = f64::from(c.devices) * hours;
    let l = l.clone();
    let reports = l.true_offline.unwrap_or(0) + l.false_offline.unwrap_or(0);
    Figures {
        telemetry: MessageFigureSet::from_ledger(&msgs.telemetry),
        commands: MessageFigureSet::from_ledger(&msgs.commands),
        zombie_time: l.zombie_time,
        zombie_undetected: l.zombie_undetected,
        broker_detect_time: l.broker_detect_time,
        reconnect_after_heal: c.healed.then(|| {
            DurationFigure::from_histogram(reconnect_after_heal).with_censored(c.censored)
        }),
        outage_seen_by_client: l.outage_seen_by_client,
        resume_time: l.resume_time,
        session_present: (c.reconnects > 0).then(|| c.session_present as f64 / c.reconnects as f64),
        reconnect_attempts: c.exposed.then_some(c.attempts),
        first_attempt_delay: l.first_attempt_delay,
        flaps: (device_hours > 0.0).then(|| c.flaps as f64 / device_hours),
        takeovers: (c.devices > 0).then_some(l.takeovers),
        reason_codes: l.reason_codes.clone(),
        true_offline: l.true_offline,
        false_offline: l.false_offline,
        false_offline_rate: l.false_offline_rate,
        // `None` without wills (no count) or without reports (n = 0), as
        // the rate itself.
        false_offline_rate_interval: l.false_offline.and_then(|f| rate::wilson95(f, reports)),
        false_offline_per_device_day: l
            .false_offline
            .filter(|_| device_hours > 0.0)
            .map(|f| f as f64 / (device_hours / 24.0)),
        devices_false_offline: l
            .devices_false_offline
            .filter(|_| c.devices > 0)
            .map(|n| n as f64 / f64::from(c.devices)),
        stale_offline_time: l.stale_offline_time,
        missed_offline: l.missed_offline,
        false_online_time: l.false_online_time,
        offline_unobserved: l.offline_unobserved,
    }
}

/// The key a reason code is counted under: packet and code in hex
/// (`PUBACK 0x97`).
pub fn reason_key(packet: &str, code: u8) -> String {
    format!("{packet} 0x{code:02X}")
}

#[cfg(test)]
mod figures_tests;
#[cfg(test)]
mod tests;

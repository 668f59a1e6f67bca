//! The time series of a run: every figure cut into intervals, and a report
//! folded back from any run of intervals (METRICS.md, "Time series for
//! multi-day soaks"). Pure: the cut time comes in, files are written by
//! [`super::hlog`] and read by `report::rebuild`.
//!
//! # What an interval holds
//!
//! An [`IntervalRecord`] covers `(start, end]` of the run clock. Its counts
//! are *deltas of the cumulative counts*: what the recorder counted at this
//! cut minus what it counted at the previous one. So the sum over every
//! interval of a run is exactly the run's figure, whatever happened in
//! between: a message lost in interval 3 whose late copy arrived in
//! interval 5 shows as `lost_after_ack +1` in 3 and `lost_after_ack −1,
//! delivered +1` in 5.
//!
//! * Loss counts (`lost_after_ack`, `lost_unacked`, `silent_loss`,
//!   `lost_qos0`, `unobserved`) are **provisional** until the drain ends:
//!   a message counts as lost once its outcome is known and it has not been
//!   received *yet*. A later interval may take it back with a negative
//!   delta; the last interval (cut at the run's end, [`IntervalRecord::last`])
//!   also decides every message still pending, as the report does. Every
//!   other count only grows, so its deltas are never negative.
//! * Connection counters are counts, not the report's ratios:
//!   `reconnects` and `session_present` (reconnects that resumed their
//!   session) give the `session_present` share, `flaps` is the number of
//!   flaps (the report divides by the device-hours of the window),
//!   `reconnect_attempts` is the report's figure.
//! * `exposed` / `healed` say whether a link or broker fault hitting the
//!   profile was in force / healed during the interval (they decide whether
//!   `reconnect_attempts` / `reconnect_after_heal` are measured at all, i.e.
//!   not `null`).
//! * `awaiting_reconnect` is a *gauge*, not a delta: devices still waiting,
//!   at the cut, for their first reconnect after a heal. The report's
//!   `censored` count of `reconnect_after_heal` is the gauge of the window's
//!   last interval.
//! * `connected` is a *gauge* too: devices of the profile whose client
//!   believed it was connected at the cut (from CONNACK to its reported
//!   connection loss or crash, as the recorder knows it from the device
//!   events). Summing intervals keeps the later value. It draws the
//!   connected-devices line of `report.html`; interval files written before
//!   it existed read it as `null` (not recorded), never as 0.
//! * `unobserved_ns` is the delta of the time the collector could not see
//!   (integer nanoseconds, so sums are exact).
//! * `faults` holds the fault records that changed during the interval
//!   (applied, healed, failed); `errors` the harness errors first seen in it.
//! * Histograms ([`Histograms`]) hold the samples recorded during the
//!   interval (the cumulative histogram minus the one at the previous cut);
//!   adding them up gives the run's histogram bucket for bucket.
//!
//! # Memory
//!
//! The cutter keeps one copy of the cumulative counts and histograms per
//! profile (the previous cut) and the fault records (bounded by the
//! timeline): nothing grows with the run's length.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::health::{self, Incident};
use crate::ledger::{latency_histogram, LedgerFigures, MessageCounts, MessageFigures};
use crate::report::{FaultRecord, Report, Verdict, Versions, SCHEMA_VERSION};
use crate::scenario::{self, Scenario};

use super::{
    class_of, figures, Class, ConnTotals, LinkFigures, LinkRecord, LinkSnapshot, Recorder,
};

/// How far behind a cut the observer's downtime is judged: events stamped
/// just before the cut may still be in the channel.
const CUT_SLACK: Duration = Duration::from_secs(1);

/// The message counts of one direction in one interval (deltas; see the
/// module doc for which may be negative). Names as in METRICS.md, plus the
/// ledger's own `ambiguous` and `orphans` (harness errors, not figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub sent: i64,
    pub acked: i64,
    pub delivered: i64,
    pub lost_after_ack: i64,
    /// Written from this version on; 0 in older files.
    #[serde(default)]
    pub undeliverable: i64,
    pub lost_unacked: i64,
    pub silent_loss: i64,
    pub lost_qos0: i64,
    pub duplicates: i64,
    pub reordered: i64,
    pub downgraded: i64,
    pub unobserved: i64,
    pub ambiguous: i64,
    pub orphans: i64,
}

macro_rules! each_count {
    ($m:ident) => {
        $m!(
            sent,
            acked,
            delivered,
            lost_after_ack,
            undeliverable,
            lost_unacked,
            silent_loss,
            lost_qos0,
            duplicates,
            reordered,
            downgraded,
            unobserved,
            ambiguous,
            orphans
        )
    };
}

impl Counts {
    /// `now − before` of two cumulative ledger counts.
    pub fn delta(now: &MessageCounts, before: &MessageCounts) -> Counts {
        macro_rules! d {
            ($($f:ident),*) => { Counts { $($f: now.$f as i64 - before.$f as i64),* } };
        }
        each_count!(d)
    }

    pub fn add(&mut self, o: &Counts) {
        macro_rules! a {
            ($($f:ident),*) => {{ $(self.$f += o.$f;)* }};
        }
        each_count!(a)
    }

    /// As ledger counts; a sum below zero (possible only in a window: losses
    /// counted before it, delivered inside it) is clamped to 0 and named in
    /// the returned list.
    pub fn to_ledger(self) -> (MessageCounts, Vec<(&'static str, i64)>) {
        let mut negative = Vec::new();
        let mut c = |name: &'static str, v: i64| -> u64 {
            if v < 0 {
                negative.push((name, v));
            }
            v.max(0) as u64
        };
        macro_rules! l {
            ($($f:ident),*) => { MessageCounts { $($f: c(stringify!($f), self.$f)),* } };
        }
        let counts = each_count!(l);
        (counts, negative)
    }
}

/// The duration figures' samples of one profile in one interval (µs).
/// Written to one interval log (`.hlog`) per figure, tagged by profile.
#[derive(Debug, Clone)]
pub struct Histograms {
    pub e2e_latency: Histogram<u64>,
    pub ack_latency: Histogram<u64>,
    pub commands_e2e_latency: Histogram<u64>,
    pub commands_ack_latency: Histogram<u64>,
    pub reconnect_after_heal: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Histograms {
            e2e_latency: latency_histogram(),
            ack_latency: latency_histogram(),
            commands_e2e_latency: latency_histogram(),
            commands_ack_latency: latency_histogram(),
            reconnect_after_heal: latency_histogram(),
        }
    }
}

impl Histograms {
    /// The figure names, as in `report.json` (commands' under `commands.`);
    /// the interval log of figure `f` is `f.hlog`.
    pub const NAMES: [&'static str; 5] = [
        "e2e_latency",
        "ack_latency",
        "commands.e2e_latency",
        "commands.ack_latency",
        "reconnect_after_heal",
    ];

    /// The histogram of figure [`Histograms::NAMES`]`[i]`.
    pub fn get(&self, i: usize) -> &Histogram<u64> {
        [
            &self.e2e_latency,
            &self.ack_latency,
            &self.commands_e2e_latency,
            &self.commands_ack_latency,
            &self.reconnect_after_heal,
        ][i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Histogram<u64> {
        match i {
            0 => &mut self.e2e_latency,
            1 => &mut self.ack_latency,
            2 => &mut self.commands_e2e_latency,
            3 => &mut self.commands_ack_latency,
            _ => &mut self.reconnect_after_heal,
        }
    }

    pub fn add(&mut self, o: &Histograms) {
        for i in 0..Self::NAMES.len() {
            self.get_mut(i)
                .add(o.get(i))
                .expect("auto-resizing histograms add");
        }
    }

    /// `now − before` of two cumulative sets (`before` never holds a sample
    /// `now` lacks: histograms only grow).
    fn delta(now: &Histograms, before: &Histograms) -> Histograms {
        let mut d = now.clone();
        for i in 0..Self::NAMES.len() {
            d.get_mut(i)
                .subtract(before.get(i))
                .expect("a cumulative histogram contains its earlier self");
        }
        d
    }
}

/// One profile in one interval: one JSON object of `intervals.jsonl`
/// (histograms go to the `.hlog` files).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileInterval {
    /// Telemetry, under the plain names.
    #[serde(flatten)]
    pub telemetry: Counts,
    pub commands: Counts,
    /// Connections after a device's first.
    pub reconnects: i64,
    /// Of those, the ones whose CONNACK said session present.
    pub session_present: i64,
    pub reconnect_attempts: i64,
    /// Connection losses with no fault on the device (a count).
    pub flaps: i64,
    /// A link/broker fault hitting the profile was in force in the interval.
    pub exposed: bool,
    /// A link/broker fault hitting the profile healed in the interval.
    pub healed: bool,
    /// Gauge at the cut: devices still waiting for their reconnect after a heal.
    pub awaiting_reconnect: u64,
    /// Gauge at the cut: devices whose client believed it was connected;
    /// `None` in interval files written before it was recorded.
    #[serde(default)]
    pub connected: Option<u64>,
    /// The connection and offline figures, cumulative from the run's start
    /// to the cut (not a delta; see [`LinkSnapshot`]).
    #[serde(default)]
    pub link: LinkSnapshot,
    /// What `link` is computed from ([`LinkFigures::snapshot`]), cumulative
    /// too, so that shards' figures add up exactly (`mqtt-chaos merge`);
    /// `None` in interval files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_figures: Option<LinkRecord>,
    #[serde(skip)]
    pub histograms: Histograms,
}

impl ProfileInterval {
    /// Fold a later interval into this sum (gauges take the later value).
    pub fn add(&mut self, o: &ProfileInterval) {
        self.add_counts(o);
        self.awaiting_reconnect = o.awaiting_reconnect;
        self.connected = o.connected;
        self.link = o.link.clone();
        self.link_figures = o.link_figures.clone();
    }

    /// Add what sums of `o`: the message and connection counts, the fault
    /// flags and the histograms (no gauge, no cumulative snapshot).
    pub fn add_counts(&mut self, o: &ProfileInterval) {
        self.telemetry.add(&o.telemetry);
        self.commands.add(&o.commands);
        self.reconnects += o.reconnects;
        self.session_present += o.session_present;
        self.reconnect_attempts += o.reconnect_attempts;
        self.flaps += o.flaps;
        self.exposed |= o.exposed;
        self.healed |= o.healed;
        self.histograms.add(&o.histograms);
    }
}

/// One interval of a run: one line of `intervals.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalRecord {
    /// 0, 1, 2, … in the order cut.
    pub index: u64,
    /// Run clock (ns since the run started): the previous cut, or 0.
    pub start_ns: u64,
    /// Run clock of this cut.
    pub end_ns: u64,
    /// The cut at the run's end: pending messages decided as in the report.
    pub last: bool,
    /// Time the collector could not see, delta (ns).
    pub unobserved_ns: i64,
    /// Events naming a device that is not in the plan (a harness error).
    pub unknown_device_events: i64,
    /// Harness errors first seen in this interval.
    pub errors: Vec<crate::health::Incident>,
    /// Fault records that changed in this interval, as they stand at its end.
    pub faults: Vec<FaultRecord>,
    /// Per profile, in name order.
    pub profiles: BTreeMap<String, ProfileInterval>,
    /// The connection and offline figures of all devices, cumulative from
    /// the run's start to the cut.
    #[serde(default)]
    pub link_totals: LinkSnapshot,
}

impl IntervalRecord {
    pub fn start(&self) -> Duration {
        Duration::from_nanos(self.start_ns)
    }

    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.end_ns)
    }
}

/// `run.json`: what a report needs that the intervals do not carry, written
/// when the run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub schema_version: u32,
    /// The scenario's name.
    pub scenario: String,
    pub seed: u64,
    /// RFC 3339, UTC (as in `report.json`).
    pub started_at: String,
    pub versions: Versions,
    pub devices: u32,
    /// Devices per profile.
    pub profiles: BTreeMap<String, u32>,
    /// The interval log of each duration figure (file names in the run directory).
    pub histograms: BTreeMap<String, String>,
    /// The scenario as resolved for this run (command-line overrides applied).
    pub resolved_scenario: Scenario,
    /// The shard this run was (`--shard`, `--workers`); absent for a run of
    /// the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The shards a merged run was folded from (`mqtt-chaos merge`), in
    /// index order; empty for a run that ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<crate::merge::MergedShard>,
}

/// Cumulative figures of one profile at a cut.
#[derive(Debug, Clone, Default)]
struct Cumulative {
    telemetry: MessageCounts,
    commands: MessageCounts,
    reconnects: u64,
    session_present: u64,
    attempts: u64,
    flaps: u64,
    histograms: Histograms,
}

/// The recorder's memory of its previous cut.
#[derive(Debug, Default)]
pub(crate) struct Cutter {
    index: u64,
    last_cut: Nanos,
    previous: Vec<Cumulative>,
    unobserved: u64,
    unknown_device_events: u64,
    errors_seen: usize,
    faults: BTreeMap<usize, FaultRecord>,
}

impl Recorder {
    /// Cut the interval ending at `at` (run clock): the deltas since the
    /// previous cut. Messages still pending count nowhere yet.
    pub fn cut_interval(&mut self, at: Nanos) -> IntervalRecord {
        self.cut(at, false)
    }

    /// Cut the last interval, at the run's end (`end` as given to
    /// [`Recorder::finish`], after every event was recorded): pending
    /// messages are decided as the report decides them, so the intervals
    /// add up to the report exactly. Call [`Recorder::finish`] next.
    pub fn cut_last_interval(&mut self, end: Nanos) -> IntervalRecord {
        self.cut(end, true)
    }

    fn cut(&mut self, at: Nanos, last: bool) -> IntervalRecord {
        let at = at.max(self.intervals.last_cut);
        // The run's health as of the cut, so a rebuilt report has it: at
        // the end every check; before, the observer's downtime so far (the
        // events of the last moments may still be on their way).
        if last {
            self.close(at);
        } else {
            self.judge_broker(at - Nanos::from_duration(CUT_SLACK), false);
        }
        let (from_s, to_s) = (self.intervals.last_cut.as_secs_f64(), at.as_secs_f64());
        let first = self.intervals.index == 0;

        // Which profiles a link/broker fault hit while in force / when healed.
        let mut exposed = vec![false; self.profiles.len()];
        let mut healed = vec![false; self.profiles.len()];
        for rec in self.faults.values() {
            if !rec.applied || class_of(rec.kind) == Class::Device {
                continue;
            }
            let Some(started) = rec.started_at_s else {
                continue;
            };
            let in_force = started <= to_s && rec.healed_at_s.is_none_or(|h| h >= from_s);
            let healed_now = rec
                .healed_at_s
                .is_some_and(|h| h <= to_s && (first || h > from_s));
            if !in_force && !healed_now {
                continue;
            }
            let group = match class_of(rec.kind) {
                Class::Broker => None,
                _ => rec.target.as_deref(),
            };
            let group = group.map(|g| self.groups.iter().position(|x| x == g));
            for d in &self.devices {
                let hit = match group {
                    None => true,
                    Some(g) => g == Some(d.group),
                };
                if hit {
                    exposed[d.profile] |= in_force;
                    healed[d.profile] |= healed_now;
                }
            }
        }
        let mut awaiting = vec![0u64; self.profiles.len()];
        let mut connected = vec![0u64; self.profiles.len()];
        for d in &self.devices {
            awaiting[d.profile] += d.awaiting.len() as u64;
            connected[d.profile] += u64::from(d.connected);
        }
        let link_figures = self.link_figures(at);
        let link_totals = LinkFigures::sum(&link_figures).snapshot();

        let cut = &mut self.intervals;
        cut.previous
            .resize_with(self.profiles.len(), Cumulative::default);
        let mut profiles = BTreeMap::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let figs: LedgerFigures = if last {
                p.ledger.figures_at_end()
            } else {
                p.ledger.figures()
            };
            let now = Cumulative {
                telemetry: figs.telemetry.counts,
                commands: figs.commands.counts,
                reconnects: p.reconnects,
                session_present: p.session_present,
                attempts: p.attempts,
                flaps: p.flaps,
                histograms: Histograms {
                    e2e_latency: figs.telemetry.e2e_latency,
                    ack_latency: figs.telemetry.ack_latency,
                    commands_e2e_latency: figs.commands.e2e_latency,
                    commands_ack_latency: figs.commands.ack_latency,
                    reconnect_after_heal: p.reconnect_after_heal.clone(),
                },
            };
            let before = &cut.previous[i];
            let d = |a: u64, b: u64| a as i64 - b as i64;
            profiles.insert(
                p.name.clone(),
                ProfileInterval {
                    telemetry: Counts::delta(&now.telemetry, &before.telemetry),
                    commands: Counts::delta(&now.commands, &before.commands),
                    reconnects: d(now.reconnects, before.reconnects),
                    session_present: d(now.session_present, before.session_present),
                    reconnect_attempts: d(now.attempts, before.attempts),
                    flaps: d(now.flaps, before.flaps),
                    exposed: exposed[i],
                    healed: healed[i],
                    awaiting_reconnect: awaiting[i],
                    connected: Some(connected[i]),
                    link: link_figures[i].snapshot(),
                    link_figures: Some(LinkRecord::encode(&link_figures[i])),
                    histograms: Histograms::delta(&now.histograms, &before.histograms),
                },
            );
            cut.previous[i] = now;
        }

        let unobserved = self
            .profiles
            .first()
            .map_or(0, |p| Nanos::from_duration(p.ledger.unobserved_time(at)).0);
        let changed: Vec<FaultRecord> = self
            .faults
            .iter()
            .filter(|(i, r)| cut.faults.get(i) != Some(r))
            .map(|(_, r)| r.clone())
            .collect();
        for r in &changed {
            cut.faults.insert(r.index, r.clone());
        }
        let rec = IntervalRecord {
            index: cut.index,
            start_ns: cut.last_cut.0,
            end_ns: at.0,
            last,
            unobserved_ns: unobserved as i64 - cut.unobserved as i64,
            unknown_device_events: self.unknown_device_events as i64
                - cut.unknown_device_events as i64,
            errors: self.errors[cut.errors_seen.min(self.errors.len())..].to_vec(),
            faults: changed,
            profiles,
            link_totals,
        };
        cut.index += 1;
        cut.last_cut = at;
        cut.unobserved = unobserved;
        cut.unknown_device_events = self.unknown_device_events;
        cut.errors_seen = self.errors.len();
        rec
    }
}

/// Fold consecutive intervals of a run back into its report: the whole run
/// when `intervals` are all of them (then it equals the run's `report.json`
/// figure for figure), or the window they span. `earlier` are the intervals
/// before the window (only their fault records are read: faults still in
/// force when the window starts are listed).
///
/// For a window: `duration_s` is the part of `[start, end]` (the first
/// interval's start, the last one's end) in which devices published,
/// `flaps` are per device-hour of `[start, end]`, `censored` is the gauge
/// at `end`, `faults` are those that changed or were in force in the window,
/// and a count whose sum is negative (losses counted before the window,
/// delivered inside it) is shown as 0 and named in `errors`.
pub fn report_of(
    run: &RunInfo,
    earlier: &[IntervalRecord],
    intervals: &[IntervalRecord],
) -> Report {
    let start = intervals.first().map_or(0, |r| r.start_ns);
    let end = intervals.last().map_or(0, |r| r.end_ns);
    let hours = (Nanos(end) - Nanos(start)).as_secs_f64() / 3600.0;
    let publishing = run.resolved_scenario.duration;
    let duration_s = Nanos(end)
        .as_duration()
        .min(publishing)
        .saturating_sub(Nanos(start).as_duration().min(publishing))
        .as_secs_f64();

    let mut errors: Vec<Incident> = intervals
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .collect();
    let unknown: i64 = intervals.iter().map(|r| r.unknown_device_events).sum();
    if unknown > 0 {
        errors.push(Incident::untimed(
            health::Cause::Internal,
            format!("{unknown} events named a device that is not in the plan"),
        ));
    }

    let mut all = LedgerFigures::default();
    let mut rah_all = latency_histogram();
    let mut total = ConnTotals::default();
    let mut profiles = BTreeMap::new();
    let mut negative = Vec::new();
    for (name, &devices) in &run.profiles {
        let mut sum = ProfileInterval::default();
        for r in intervals {
            if let Some(p) = r.profiles.get(name) {
                sum.add(p);
            }
        }
        let (tc, neg_t) = sum.telemetry.to_ledger();
        let (cc, neg_c) = sum.commands.to_ledger();
        for (dir, neg) in [("", neg_t), ("commands.", neg_c)] {
            for (figure, v) in neg {
                negative.push(Incident::untimed(health::Cause::Internal, format!(
                    "profile {name}: {dir}{figure} sums to {v} in this window (losses counted before it were delivered inside it); shown as 0"
                )));
            }
        }
        let h = sum.histograms;
        let figs = LedgerFigures {
            telemetry: MessageFigures {
                counts: tc,
                e2e_latency: h.e2e_latency,
                ack_latency: h.ack_latency,
            },
            commands: MessageFigures {
                counts: cc,
                e2e_latency: h.commands_e2e_latency,
                ack_latency: h.commands_ack_latency,
            },
        };
        for (dir, f) in [("telemetry", &figs.telemetry), ("commands", &figs.commands)] {
            if f.counts.ambiguous > 0 {
                errors.push(Incident::untimed(health::Cause::Internal, format!(
                    "profile {name}: {} {dir} receptions were too old to match (ledger horizon); counted neither as delivered nor as duplicates",
                    f.counts.ambiguous
                )));
            }
            if f.counts.orphans > 0 {
                errors.push(Incident::untimed(
                    health::Cause::Internal,
                    format!(
                        "profile {name}: {} {dir} outcomes had no Published event",
                        f.counts.orphans
                    ),
                ));
            }
        }
        all.add(&figs);
        rah_all
            .add(&h.reconnect_after_heal)
            .expect("auto-resizing histograms add");
        let nonneg = |v: i64| v.max(0) as u64;
        let conn = ConnTotals {
            devices,
            exposed: sum.exposed,
            // Samples mean a heal came before them, maybe before the window.
            healed: sum.healed || !h.reconnect_after_heal.is_empty(),
            reconnects: nonneg(sum.reconnects),
            session_present: nonneg(sum.session_present),
            attempts: nonneg(sum.reconnect_attempts),
            flaps: nonneg(sum.flaps),
            censored: sum.awaiting_reconnect,
        };
        total.add(&conn);
        profiles.insert(
            name.clone(),
            figures(&figs, &h.reconnect_after_heal, &conn, &sum.link, hours),
        );
    }
    errors.extend(negative);

    // Fault records: the latest version of each, for those in force when
    // the window starts or changed inside it.
    let from_s = Nanos(start).as_secs_f64();
    let mut faults: BTreeMap<usize, FaultRecord> = BTreeMap::new();
    for f in earlier.iter().flat_map(|r| &r.faults) {
        faults.insert(f.index, f.clone());
    }
    faults.retain(|_, f| f.started_at_s.is_some() && f.healed_at_s.is_none_or(|h| h >= from_s));
    for f in intervals.iter().flat_map(|r| &r.faults) {
        faults.insert(f.index, f.clone());
    }

    let link_totals = intervals
        .last()
        .map(|r| r.link_totals.clone())
        .unwrap_or_default();
    let totals = figures(&all, &rah_all, &total, &link_totals, hours);
    let unobserved_ns: i64 = intervals.iter().map(|r| r.unobserved_ns).sum();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        scenario: run.scenario.clone(),
        seed: run.seed,
        verdict: Verdict::Pass,
        started_at: run.started_at.clone(),
        duration_s,
        min_outage_s: Some(run.resolved_scenario.min_outage.as_secs_f64()),
        versions: run.versions.clone(),
        devices: run.devices,
        unobserved: totals.telemetry.unobserved,
        totals,
        profiles,
        faults: faults.into_values().collect(),
        slo: Vec::new(),
        unobserved_s: Duration::from_nanos(unobserved_ns.max(0) as u64).as_secs_f64(),
        errors,
    };
    report.check(&scenario::slos(&run.resolved_scenario));
    report
}

#[cfg(test)]
pub(crate) mod tests;

//! The time series of a run: every figure cut into intervals, and a report
//! folded back from any run of intervals (METRICS.md, "Time series for
//! multi-day soaks"). Pure: the cut time comes in, files are written by
//! [`super::hlog`] and read by `report::rebuild`.
//!
//! # The rule: a figure counts in the interval where its subject starts
//!
//! Interval `k` covers `(start, end]` of the run clock. Every sample and
//! every count belongs to one interval, chosen by the start of what it is
//! about, never by when it was decided:
//!
//! * a **message** (every message figure: `sent`, `acked`, `delivered`,
//!   the losses, `duplicates`, `reordered`, `downgraded`, `unobserved`,
//!   `e2e_latency`, `ack_latency`; commands alike) by its `t_intended`,
//!   the payload's scheduled slot (see `ledger`): acked after the cut, lost
//!   as judged after the drain, delivered late, duplicated hours later, it
//!   still counts where it was intended;
//! * a **fault episode** as one device lived it (`zombie_time` /
//!   `zombie_undetected`, `outage_seen_by_client`, `first_attempt_delay`,
//!   `resume_time`, `reconnect_after_heal` and their censored counts) by
//!   `t_fault`, the episode's start;
//! * an **offline episode** (`true_offline`, `false_offline`,
//!   `stale_offline_time`, `devices_false_offline`) by its opening, a
//!   **death** (`broker_detect_time`, `missed_offline`,
//!   `offline_unobserved`) by the death, a stretch the observer showed a
//!   device online while it was unreachable (`false_online_time`, a
//!   per-device total of them) by the stretch's start;
//! * an **event** without a duration (`reconnects` and `session_present`,
//!   `reconnect_attempts`, `flaps`, `takeovers`, `reason_codes`, a harness
//!   error, a fault record's change) where it happened, and the
//!   collector's unobserved time where it fell.
//!
//! So a window's report (the intervals starting in it) holds exactly the
//! subjects that started in it, and windows that tile a run add up to the
//! run, count for count and histogram bucket for bucket. Two figures are
//! not sums by nature: `false_online_time` has one sample per device with
//! a will in any window (its total over the window), and
//! `devices_false_offline` is a share of devices.
//!
//! # Lines: an interval, then amendments to earlier ones
//!
//! A subject's figures are final only once decided (after its ack, after
//! the drain, once its episode is over), often after its interval was cut.
//! Each cut therefore writes, to `intervals.jsonl`:
//!
//! 1. one [`Amendment`] line per earlier interval whose subjects changed
//!    since the previous cut (`"amends": j`), then
//! 2. the [`IntervalRecord`] line of the interval just cut, its figures as
//!    known at the cut.
//!
//! An interval's figures are its line and its amendments folded together
//! ([`fold`]): message counts and connection counters are deltas and add
//! up, histograms (in the `.hlog` files, one group per line, amendments'
//! stamped with the interval they amend) add up, and `link_figures` (the
//! connection and offline samples, which change while an episode is open)
//! are the interval's whole figures as of the line, a later line's
//! replacing an earlier one's. A count is only ever taken back from the
//! interval it was added to — a provisional loss whose message arrived
//! late, an acked command whose device is dead at the end — so an
//! amendment may carry a negative number, but no interval's, and no
//! window's, figure is ever negative. The last cut ([`IntervalRecord::last`],
//! at the run's end, after the drain) decides whatever is still pending,
//! as the report does, so the intervals fold up to `report.json` exactly.
//!
//! A run killed at any moment keeps every cut whose interval line was
//! written: amendments after the last interval line belong to the cut
//! that never finished and are left out, so a rebuilt report is the run as
//! known at its last complete cut, and says up to when that is
//! (`report::rebuild`).
//!
//! # What an interval holds besides
//!
//! * Connection counters are counts, not the report's ratios:
//!   `reconnects` and `session_present` (reconnects that resumed their
//!   session) give the `session_present` share, `flaps` is the number of
//!   flaps (the report divides by the device-hours of the window),
//!   `reconnect_attempts` is the report's figure.
//! * `exposed` / `healed` say whether a link or broker fault hitting the
//!   profile was in force / healed during the interval (`exposed` decides
//!   whether `reconnect_attempts` is measured at all, i.e. not `null`).
//! * `awaiting_reconnect` and `connected` are *gauges* at the cut, not
//!   figures: devices still waiting for their first reconnect after a heal
//!   (the report's censored count is in `link_figures`), and devices whose
//!   client believed it was connected (the connected-devices line of
//!   `report.html`). Summing intervals keeps the later value; files
//!   written before `connected` existed read it as `null`, never as 0.
//! * `unobserved_ns` is the delta of the time the collector could not see
//!   (integer nanoseconds, so sums are exact).
//! * `faults` holds the fault records that changed during the interval
//!   (applied, healed, failed); `errors` the harness errors first seen in it.
//!
//! # Formats
//!
//! `run.json`'s `intervals_format` says which of these rules a run's files
//! follow ([`FORMAT`] is this one's, 2). Format 1 (files without the
//! field) counted every figure in the interval where it was *decided*,
//! taking provisional losses back with negative deltas in later intervals,
//! and carried the connection figures cumulative from the run's start:
//! the whole run still folds up to its report exactly and is read as
//! before, but a window of it cannot be told exactly and is refused
//! (`report::rebuild`), as is a merge of its shards.
//!
//! # Memory
//!
//! The cutter keeps the cut times (8 bytes an interval), the previous
//! cut's connection counters, a digest of each interval's link samples as
//! last written (only intervals where some episode started), and the fault
//! records (bounded by the timeline); the ledger keeps what changed per
//! interval only until the next cut. Nothing grows with the messages.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::health::{self, Incident};
use crate::ledger::{latency_histogram, Change, LedgerFigures, MessageCounts, MessageFigures};
use crate::report::{FaultRecord, Report, Verdict, Versions, SCHEMA_VERSION};
use crate::scenario::{self, Scenario};

use super::{
    class_of, figures, Class, ConnTotals, LinkFigures, LinkRecord, LinkSample, LinkSnapshot,
    Recorder,
};

/// The format of the interval files written by this harness (see the
/// module doc, "Formats").
pub const FORMAT: u32 = 2;

/// `intervals_format` of a `run.json` written before the field existed.
fn first_format() -> u32 {
    1
}

/// How far behind a cut the observer's downtime is judged: events stamped
/// just before the cut may still be in the channel.
const CUT_SLACK: Duration = Duration::from_secs(1);

/// The message counts of one direction for the messages intended in one
/// interval (deltas: a line's, or an amendment's; see the module doc).
/// Names as in METRICS.md, plus the ledger's own `ambiguous` and `orphans`
/// (harness errors, not figures).
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

    /// What a ledger [`Change`] of one bucket adds up to.
    pub fn of_change(c: &Change) -> Counts {
        Counts::delta(&c.plus.counts, &c.minus)
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    pub fn add(&mut self, o: &Counts) {
        macro_rules! a {
            ($($f:ident),*) => {{ $(self.$f += o.$f;)* }};
        }
        each_count!(a)
    }

    /// As ledger counts; a sum below zero (which the files of a run never
    /// give: a count is taken back only where it was added) is clamped to 0
    /// and named in the returned list.
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

/// The duration figures' samples of one profile for the subjects of one
/// interval (µs): a line's or an amendment's new samples. Written to one
/// interval log (`.hlog`) per figure, tagged by profile.
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

    /// The new samples of one bucket: the ledger's changes of both
    /// directions and the new `reconnect_after_heal` samples.
    fn of_changes(
        telemetry: &MessageFigures,
        commands: &MessageFigures,
        reconnect_after_heal: Option<&Histogram<u64>>,
    ) -> Histograms {
        Histograms {
            e2e_latency: telemetry.e2e_latency.clone(),
            ack_latency: telemetry.ack_latency.clone(),
            commands_e2e_latency: commands.e2e_latency.clone(),
            commands_ack_latency: commands.ack_latency.clone(),
            reconnect_after_heal: reconnect_after_heal
                .cloned()
                .unwrap_or_else(latency_histogram),
        }
    }

    pub fn is_empty(&self) -> bool {
        (0..Self::NAMES.len()).all(|i| self.get(i).is_empty())
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
    /// Gauge at the cut: devices still waiting for their reconnect after a
    /// heal (the report's censored count is in `link_figures`; format 1
    /// read it from this gauge).
    pub awaiting_reconnect: u64,
    /// Gauge at the cut: devices whose client believed it was connected;
    /// `None` in interval files written before it was recorded.
    #[serde(default)]
    pub connected: Option<u64>,
    /// Format 1 only: the connection and offline figures, cumulative from
    /// the run's start to the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkSnapshot>,
    /// The connection and offline samples of the episodes (and events)
    /// that started in this interval, as known at the cut; an amendment may
    /// replace them. (Format 1: cumulative from the run's start, and `None`
    /// in the files written before it was recorded.)
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
    /// Format 1 only: the connection and offline figures of all devices,
    /// cumulative from the run's start to the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_totals: Option<LinkSnapshot>,
}

impl IntervalRecord {
    pub fn start(&self) -> Duration {
        Duration::from_nanos(self.start_ns)
    }

    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.end_ns)
    }

    /// Fold an amendment of this interval in: counts and histograms add,
    /// link figures given replace the earlier ones.
    pub fn amend(&mut self, a: &Amendment) {
        for (name, pa) in &a.profiles {
            let p = self.profiles.entry(name.clone()).or_default();
            p.telemetry.add(&pa.telemetry);
            p.commands.add(&pa.commands);
            p.histograms.add(&pa.histograms);
            if let Some(l) = &pa.link_figures {
                p.link_figures = Some(l.clone());
            }
        }
    }
}

/// A line about an earlier interval: what became known, by a later cut,
/// about the subjects that started in interval `amends` (see the module
/// doc). Its histograms go to the `.hlog` files like an interval's,
/// stamped with the amended interval's start and length.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Amendment {
    /// The index of the interval amended (an earlier one).
    pub amends: u64,
    /// That interval's span (run clock, ns), as in its own line.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The cut that wrote it (run clock, ns).
    pub at_ns: u64,
    /// The profiles whose figures changed, in name order.
    pub profiles: BTreeMap<String, ProfileAmendment>,
}

impl Amendment {
    pub fn start(&self) -> Duration {
        Duration::from_nanos(self.start_ns)
    }

    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.end_ns)
    }
}

/// What changed for one profile in an [`Amendment`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileAmendment {
    /// Telemetry counts to add, under the plain names.
    #[serde(flatten)]
    pub telemetry: Counts,
    /// Command counts to add.
    pub commands: Counts,
    /// The interval's connection and offline samples as they stand now,
    /// replacing the earlier ones; absent when they did not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_figures: Option<LinkRecord>,
    /// Samples to add (in the `.hlog` files).
    #[serde(skip)]
    pub histograms: Histograms,
}

/// One line of `intervals.jsonl`.
#[derive(Debug, Clone)]
pub enum Line {
    Interval(Box<IntervalRecord>),
    Amendment(Amendment),
}

impl Line {
    /// Parse a line: an amendment has `amends`, an interval has not.
    pub fn parse(text: &str) -> Result<Line, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        if v.get("amends").is_some() {
            Ok(Line::Amendment(serde_json::from_value(v)?))
        } else {
            Ok(Line::Interval(Box::new(serde_json::from_value(v)?)))
        }
    }

    /// The interval the line is about.
    pub fn interval(&self) -> u64 {
        match self {
            Line::Interval(r) => r.index,
            Line::Amendment(a) => a.amends,
        }
    }

    /// Its span (for the `.hlog` stamps).
    pub fn span(&self) -> (Duration, Duration) {
        match self {
            Line::Interval(r) => (r.start(), r.end()),
            Line::Amendment(a) => (a.start(), a.end()),
        }
    }

    /// Its histograms, by profile name.
    pub fn histograms(&self) -> Vec<(&str, &Histograms)> {
        match self {
            Line::Interval(r) => r
                .profiles
                .iter()
                .map(|(n, p)| (n.as_str(), &p.histograms))
                .collect(),
            Line::Amendment(a) => a
                .profiles
                .iter()
                .map(|(n, p)| (n.as_str(), &p.histograms))
                .collect(),
        }
    }

    /// Its histograms, mutable, by profile name.
    pub fn histograms_mut(&mut self) -> Vec<(&str, &mut Histograms)> {
        match self {
            Line::Interval(r) => r
                .profiles
                .iter_mut()
                .map(|(n, p)| (n.as_str(), &mut p.histograms))
                .collect(),
            Line::Amendment(a) => a
                .profiles
                .iter_mut()
                .map(|(n, p)| (n.as_str(), &mut p.histograms))
                .collect(),
        }
    }
}

/// What one cut writes: the amendments of earlier intervals, then the
/// interval just cut.
#[derive(Debug, Clone)]
pub struct Cut {
    pub amendments: Vec<Amendment>,
    pub interval: IntervalRecord,
}

impl Cut {
    /// Its lines, in the order written.
    pub fn lines(&self) -> impl Iterator<Item = Line> + '_ {
        self.amendments
            .iter()
            .cloned()
            .map(Line::Amendment)
            .chain(std::iter::once(Line::Interval(Box::new(
                self.interval.clone(),
            ))))
    }
}

/// The intervals of a run from its lines in file order, amendments folded
/// into the intervals they amend; amendments after the last interval line
/// (a cut that never finished) are left out. An amendment of an interval
/// that has no line before it is an error.
pub fn fold(lines: impl IntoIterator<Item = Line>) -> Result<Vec<IntervalRecord>, String> {
    let mut records: Vec<IntervalRecord> = Vec::new();
    let mut pending: Vec<Amendment> = Vec::new();
    for line in lines {
        match line {
            Line::Amendment(a) => pending.push(a),
            Line::Interval(r) => {
                let r = *r;
                for a in pending.drain(..) {
                    let Some(target) = records.iter_mut().rev().find(|x| x.index == a.amends)
                    else {
                        return Err(format!(
                            "an amendment of interval {} comes before any line of that interval",
                            a.amends
                        ));
                    };
                    target.amend(&a);
                }
                records.push(r);
            }
        }
    }
    Ok(records)
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
    /// The rules the interval files follow ([`FORMAT`]; 1 when absent).
    #[serde(default = "first_format")]
    pub intervals_format: u32,
    /// The shard this run was (`--shard`, `--workers`); absent for a run of
    /// the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The shards a merged run was folded from (`mqtt-chaos merge`), in
    /// index order; empty for a run that ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<crate::merge::MergedShard>,
}

/// Connection counters of one profile at a cut (cumulative).
#[derive(Debug, Clone, Copy, Default)]
struct Cumulative {
    reconnects: u64,
    session_present: u64,
    attempts: u64,
    flaps: u64,
}

/// The recorder's memory of its cuts.
#[derive(Debug, Default)]
pub(crate) struct Cutter {
    index: u64,
    last_cut: Nanos,
    /// Every cut time so far, in order (interval `k` ends at `cuts[k]`).
    cuts: Vec<Nanos>,
    previous: Vec<Cumulative>,
    unobserved: u64,
    unknown_device_events: u64,
    errors_seen: usize,
    faults: BTreeMap<usize, FaultRecord>,
    /// Per (profile, interval): a digest of the interval's link samples as
    /// last written, for the intervals that have any.
    link_digests: HashMap<(usize, u64), u64>,
}

impl Cutter {
    /// The interval holding `t`: the number of cuts before it (the one
    /// being recorded, when `t` is after the last cut).
    pub(crate) fn bucket_of(&self, t: Nanos) -> u64 {
        self.cuts.partition_point(|&c| c < t) as u64
    }

    /// The span of interval `k` (already cut), run clock ns.
    fn span(&self, k: u64) -> (u64, u64) {
        let k = k as usize;
        let start = if k == 0 { 0 } else { self.cuts[k - 1].0 };
        (start, self.cuts[k].0)
    }
}

/// A digest of an interval's link samples (in the order told, which is
/// fixed: device by device, episode by episode).
fn digest(samples: &[LinkSample]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    samples.hash(&mut h);
    h.finish()
}

impl Recorder {
    /// Cut the interval ending at `at` (run clock): the figures of the
    /// subjects that started in it as known now, and amendments of the
    /// earlier intervals whose subjects changed since the previous cut.
    /// Messages still pending count nowhere yet.
    pub fn cut_interval(&mut self, at: Nanos) -> Cut {
        self.cut(at, false)
    }

    /// Cut the last interval, at the run's end (`end` as given to
    /// [`Recorder::finish`], after every event was recorded): pending
    /// messages are decided as the report decides them, so the intervals
    /// fold up to the report exactly. Call [`Recorder::finish`] next.
    pub fn cut_last_interval(&mut self, end: Nanos) -> Cut {
        self.cut(end, true)
    }

    fn cut(&mut self, at: Nanos, last: bool) -> Cut {
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
        let k = self.intervals.index;

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

        // The link samples of every interval, as of this cut (their starts
        // are all before `at`, so none is later than `k`).
        let mut samples: BTreeMap<(usize, u64), Vec<LinkSample>> = BTreeMap::new();
        {
            let cutter = &self.intervals;
            self.link_samples(at, &mut |p, t, s| {
                samples
                    .entry((p, cutter.bucket_of(t).min(k)))
                    .or_default()
                    .push(s)
            });
        }
        // The intervals whose link samples changed since they were last
        // written (an interval that lost every sample included), and this
        // one's, always written.
        let mut links: BTreeMap<(usize, u64), LinkRecord> = BTreeMap::new();
        let mut keys: Vec<(usize, u64)> = samples.keys().copied().collect();
        keys.extend(self.intervals.link_digests.keys().copied());
        keys.extend((0..self.profiles.len()).map(|p| (p, k)));
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let list = samples.get(&key).map_or(&[][..], Vec::as_slice);
            // An interval without samples keeps no digest.
            let now = (!list.is_empty()).then(|| digest(list));
            let was = match now {
                Some(d) => self.intervals.link_digests.insert(key, d),
                None => self.intervals.link_digests.remove(&key),
            };
            if key.1 != k && was == now {
                continue;
            }
            let mut figs = LinkFigures::of_population(self.profiles[key.0].will_devices);
            for s in list {
                figs.record(s);
            }
            links.insert(key, LinkRecord::encode(&figs));
        }

        // Message changes by interval, and reconnect samples.
        let mut changes = Vec::with_capacity(self.profiles.len());
        for p in &mut self.profiles {
            let c = if last {
                p.ledger.cut_at_end(at)
            } else {
                p.ledger.cut(at)
            };
            changes.push((c, std::mem::take(&mut p.reconnect_changes)));
        }
        let cut = &mut self.intervals;
        cut.cuts.push(at);
        cut.previous
            .resize_with(self.profiles.len(), Cumulative::default);

        // This interval's line.
        let mut profiles = BTreeMap::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let now = Cumulative {
                reconnects: p.reconnects,
                session_present: p.session_present,
                attempts: p.attempts,
                flaps: p.flaps,
            };
            let before = cut.previous[i];
            let d = |a: u64, b: u64| a as i64 - b as i64;
            let (msgs, reconnect) = &changes[i];
            let own = msgs.get(&k).cloned().unwrap_or_default();
            profiles.insert(
                p.name.clone(),
                ProfileInterval {
                    telemetry: Counts::of_change(&own.telemetry),
                    commands: Counts::of_change(&own.commands),
                    reconnects: d(now.reconnects, before.reconnects),
                    session_present: d(now.session_present, before.session_present),
                    reconnect_attempts: d(now.attempts, before.attempts),
                    flaps: d(now.flaps, before.flaps),
                    exposed: exposed[i],
                    healed: healed[i],
                    awaiting_reconnect: awaiting[i],
                    connected: Some(connected[i]),
                    link: None,
                    link_figures: links.remove(&(i, k)),
                    histograms: Histograms::of_changes(
                        &own.telemetry.plus,
                        &own.commands.plus,
                        reconnect.get(&k),
                    ),
                },
            );
            cut.previous[i] = now;
        }

        // Amendments of earlier intervals, oldest first.
        let mut amended: BTreeMap<u64, BTreeMap<String, ProfileAmendment>> = BTreeMap::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let (msgs, reconnect) = &changes[i];
            let mut touched: Vec<u64> = msgs.keys().chain(reconnect.keys()).copied().collect();
            touched.extend(links.keys().filter(|(q, _)| *q == i).map(|(_, j)| *j));
            touched.sort_unstable();
            touched.dedup();
            for j in touched.into_iter().filter(|&j| j < k) {
                let c = msgs.get(&j).cloned().unwrap_or_default();
                let a = ProfileAmendment {
                    telemetry: Counts::of_change(&c.telemetry),
                    commands: Counts::of_change(&c.commands),
                    link_figures: links.remove(&(i, j)),
                    histograms: Histograms::of_changes(
                        &c.telemetry.plus,
                        &c.commands.plus,
                        reconnect.get(&j),
                    ),
                };
                let empty = a.telemetry.is_zero()
                    && a.commands.is_zero()
                    && a.link_figures.is_none()
                    && a.histograms.is_empty();
                if !empty {
                    amended.entry(j).or_default().insert(p.name.clone(), a);
                }
            }
        }
        let amendments = amended
            .into_iter()
            .map(|(j, profiles)| {
                let (start_ns, end_ns) = cut.span(j);
                Amendment {
                    amends: j,
                    start_ns,
                    end_ns,
                    at_ns: at.0,
                    profiles,
                }
            })
            .collect();

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
            index: k,
            start_ns: cut.last_cut.0,
            end_ns: at.0,
            last,
            unobserved_ns: unobserved as i64 - cut.unobserved as i64,
            unknown_device_events: self.unknown_device_events as i64
                - cut.unknown_device_events as i64,
            errors: self.errors[cut.errors_seen.min(self.errors.len())..].to_vec(),
            faults: changed,
            profiles,
            link_totals: None,
        };
        cut.index += 1;
        cut.last_cut = at;
        cut.unobserved = unobserved;
        cut.unknown_device_events = self.unknown_device_events;
        cut.errors_seen = self.errors.len();
        Cut {
            amendments,
            interval: rec,
        }
    }
}

/// Fold consecutive intervals of a run back into its report: the whole run
/// when `intervals` are all of them (then it equals the run's `report.json`
/// figure for figure), or the window they span. `earlier` are the intervals
/// before the window (only their fault records are read: faults still in
/// force when the window starts are listed). The intervals are folded
/// ([`fold`]), and follow `run.intervals_format`.
///
/// For a window: every figure is that of the subjects that started in it
/// (see the module doc), `duration_s` is the part of `[start, end]` (the
/// first interval's start, the last one's end) in which devices published,
/// `flaps` are per device-hour of `[start, end]`, and `faults` are those
/// that changed or were in force in the window. (Format 1 files are only
/// read whole: `report::rebuild` refuses their windows.)
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
    let cumulative_links = run.intervals_format < 2;

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
    let mut all_links = LinkFigures::new();
    let mut profiles = BTreeMap::new();
    let mut negative = Vec::new();
    for (name, &devices) in &run.profiles {
        let mut sum = ProfileInterval::default();
        let mut link = LinkFigures::new();
        for r in intervals {
            let Some(p) = r.profiles.get(name) else {
                continue;
            };
            sum.add(p);
            if cumulative_links {
                continue;
            }
            match p.link_figures.as_ref().map(LinkRecord::decode) {
                Some(Ok(l)) => link.add_interval(&l),
                Some(Err(e)) => errors.push(Incident::untimed(
                    health::Cause::Internal,
                    format!(
                        "interval {}, profile {name}: link_figures cannot be read ({e}); its connection and offline figures are left out",
                        r.index
                    ),
                )),
                None => errors.push(Incident::untimed(
                    health::Cause::Internal,
                    format!(
                        "interval {}, profile {name}: no link_figures; its connection and offline figures are left out",
                        r.index
                    ),
                )),
            }
        }
        let (tc, neg_t) = sum.telemetry.to_ledger();
        let (cc, neg_c) = sum.commands.to_ledger();
        for (dir, neg) in [("", neg_t), ("commands.", neg_c)] {
            for (figure, v) in neg {
                negative.push(Incident::untimed(health::Cause::Internal, format!(
                    "profile {name}: {dir}{figure} sums to {v} in these intervals (the interval files contradict themselves); shown as 0"
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
        let counts = [
            nonneg(sum.reconnects),
            nonneg(sum.session_present),
            nonneg(sum.reconnect_attempts),
            nonneg(sum.flaps),
        ];
        let (conn, snapshot) = if cumulative_links {
            // Format 1: the connection figures as of the last cut, the
            // censored count from its gauge.
            let [reconnects, session_present, attempts, flaps] = counts;
            let conn = ConnTotals {
                devices,
                exposed: sum.exposed,
                // Samples mean a heal came before them, maybe before the window.
                healed: sum.healed || !h.reconnect_after_heal.is_empty(),
                reconnects,
                session_present,
                attempts,
                flaps,
                censored: sum.awaiting_reconnect,
            };
            (conn, sum.link.clone().unwrap_or_default())
        } else {
            let conn = ConnTotals::of(devices, sum.exposed, counts, &link, &h.reconnect_after_heal);
            all_links.add(&link);
            (conn, link.snapshot())
        };
        total.add(&conn);
        profiles.insert(
            name.clone(),
            figures(&figs, &h.reconnect_after_heal, &conn, &snapshot, hours),
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

    let link_totals = if cumulative_links {
        intervals
            .last()
            .and_then(|r| r.link_totals.clone())
            .unwrap_or_default()
    } else {
        all_links.snapshot()
    };
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

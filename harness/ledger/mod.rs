//! Per-message accounting: the message figures of METRICS.md.
//!
//! The ledger folds publish, outcome and reception events of every
//! (device, direction, stream) into the counts `sent`, `acked`, `delivered`,
//! `lost_after_ack`, `unobserved`, `lost_unacked`, `silent_loss`,
//! `lost_qos0`, `duplicates`, `reordered`, `downgraded` and the
//! `e2e_latency` / `ack_latency` histograms (µs, 3 significant digits),
//! telemetry and commands apart. It is pure: time comes in the events.
//!
//! # How a message is settled
//!
//! A message is *pending* while something about it is still open. It is
//! *settled* when
//! * it was published, received and its outcome is known: delivered; or
//! * it was published and its outcome is known but it was not received (yet):
//!   a *provisional loss*, counted in the loss figure its QoS and outcome
//!   give. If it arrives later (queued in the broker, drained after a
//!   reconnect), it moves from that loss figure to `delivered`.
//!
//! At [`Ledger::finish`] whatever is still pending is decided: received ⇒
//! delivered (its outcome stays *unknown*); not received ⇒ `lost_qos0` at
//! QoS 0, else by outcome, and no outcome at all (*unknown*: in flight when
//! the client died or the run ended) ⇒ `lost_unacked`.
//!
//! Loss classification of a never-received message:
//!
//! | QoS | outcome | figure |
//! | --- | --- | --- |
//! | 0 | any | `lost_qos0` |
//! | ≥ 1 | acked, published inside a coverage gap (telemetry) | `unobserved` |
//! | ≥ 1 | acked | `lost_after_ack` |
//! | ≥ 1 | acked, a command for a device dead at the end | `undeliverable` |
//! | ≥ 1 | failed, or unknown | `lost_unacked` |
//! | ≥ 1 | unawaited | `silent_loss` |
//!
//! # Intervals: every figure of a message in the interval of its `t_intended`
//!
//! The run is cut into intervals ([`Ledger::cut`], `metrics::interval`);
//! interval `k` covers `(cut k−1, cut k]` of the run clock. A message
//! belongs to one interval, its *bucket*: the one holding its
//! `t_intended` (the payload's scheduled slot, METRICS.md "Messages"),
//! fixed when the ledger first hears of the message. Every count and
//! latency sample of the message goes to that bucket, whenever it is
//! decided: an ack after the cut, a late first arrival that takes back a
//! provisional loss, a duplicate hours later, the losses decided at the
//! end of the drain. So the figures of the messages intended in a window
//! are exactly the sum of its intervals' buckets.
//!
//! Besides its running totals the ledger keeps what changed per bucket
//! since the last cut (*changes*: counts added, counts taken back, new
//! latency samples); [`Ledger::cut`] hands them over and starts afresh. A
//! count is only ever taken back from the bucket it was added to (a
//! provisional loss delivered late, an acked command whose device is dead
//! at the end), so no bucket's sum is ever negative. A message whose
//! bucket is not known when it is counted (an outcome before its
//! `Published`, a producer bug) counts in the interval being cut then.
//!
//! # Coverage
//!
//! Telemetry is received by the observer's collector, whose session may have
//! gaps. A gap is either told explicitly ([`Ledger::coverage_gap`]) or derived
//! from the observer's own events: `ObserverEvent::Disconnected` opens one,
//! the next `ObserverEvent::Connected` closes it. The observer does not report
//! whether its session resumed, so every disconnection counts as a gap — the
//! cautious reading: an acked message lost while the collector was away is
//! `unobserved`, never a false `lost_after_ack`. A message is inside a gap
//! when its *first* `Published` time is (`from <= t < to`). A gap must be
//! known before the messages published inside it settle: events arrive in
//! time order, so a gap derived from observer events always is.
//! Commands are received by the device itself, so coverage does not apply to
//! them: an acked command never received is `lost_after_ack`, unless its
//! device is dead at the end of the run (crashed, never rebooted: told by
//! [`Ledger::dead_at_end`]), when it is `undeliverable`.
//!
//! # Memory
//!
//! Per (device, direction, stream) the ledger keeps the seq after the highest
//! one seen, the pending messages (in flight: published and not yet settled),
//! and runs (ranges) of unseen seqs and provisional losses — one entry per *run*
//! of consecutive seqs, so an outage that loses a million messages costs one
//! entry. Every seq below the highest seen that is neither pending nor in a
//! range is settled as received, so a duplicate of it is still recognised.
//! Receptions scattered at random can still make many short runs, so the
//! ranges per key are capped ([`DEFAULT_RANGE_CAP`]): beyond it the oldest
//! run is forgotten (its losses stay counted) and the seqs below it form the
//! *horizon*: a reception below the horizon that matches nothing pending
//! cannot be told apart (duplicate, or very late first arrival) and is
//! counted in `ambiguous` instead (and reported as a harness error). The
//! lowest run goes first; an *unseen* run is only ever the stretch below the
//! first seq a key saw or a reception that overtook its publish, so
//! forgetting one loses nothing in practice. Coverage gaps are kept as a list (one per
//! observer disconnection).
//!
//! Contract with the event producers: the first `Published` of a message
//! comes before its `Outcome` (same task); the first outcome of a message is
//! its outcome (later ones are ignored); receptions may come at any time,
//! even before the `Published`.

mod ranges;

#[cfg(test)]
mod proptests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clock::Nanos;
use crate::history::{
    DeviceEvent, DeviceId, Direction, Event, MessageId, ObserverEvent, PublishOutcome, StreamId,
};

pub use ranges::LossKind;
use ranges::{Mark, Ranges};

/// Ranges kept per (device, direction, stream) before the oldest is forgotten.
/// At roughly 50 bytes a run, that is at most ~50 KB per key however long
/// the run and whatever the loss pattern.
pub const DEFAULT_RANGE_CAP: usize = 1024;

/// One (device, direction, stream): the unit of gapless sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub device: DeviceId,
    pub direction: Direction,
    pub stream: StreamId,
}

impl From<MessageId> for StreamKey {
    fn from(id: MessageId) -> StreamKey {
        StreamKey {
            device: id.device,
            direction: id.direction,
            stream: id.stream,
        }
    }
}

/// The counts of one direction. Every figure is a number of messages except
/// `duplicates` and `ambiguous` (numbers of receptions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Handed to the client at least once (a `Published` was seen).
    pub sent: u64,
    /// Outcome `acked`.
    pub acked: u64,
    /// Received at least once.
    pub delivered: u64,
    pub lost_after_ack: u64,
    /// Commands acked, never received, for a device dead at the end.
    pub undeliverable: u64,
    /// Acked, never received, published inside a coverage gap.
    pub unobserved: u64,
    pub lost_unacked: u64,
    pub silent_loss: u64,
    pub lost_qos0: u64,
    /// Receptions beyond the first of one message.
    pub duplicates: u64,
    /// First receptions with a seq lower than one already received.
    pub reordered: u64,
    /// Messages first received at a lower QoS than published.
    pub downgraded: u64,
    /// Receptions below the horizon that match nothing (see the module doc).
    pub ambiguous: u64,
    /// Messages with an outcome but no `Published` by the end (a producer bug).
    pub orphans: u64,
}

/// One count of [`MessageCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Sent,
    Acked,
    Delivered,
    Duplicates,
    Reordered,
    Downgraded,
    Ambiguous,
    Orphans,
    Loss(LossKind),
}

impl MessageCounts {
    fn field_mut(&mut self, f: Field) -> &mut u64 {
        match f {
            Field::Sent => &mut self.sent,
            Field::Acked => &mut self.acked,
            Field::Delivered => &mut self.delivered,
            Field::Duplicates => &mut self.duplicates,
            Field::Reordered => &mut self.reordered,
            Field::Downgraded => &mut self.downgraded,
            Field::Ambiguous => &mut self.ambiguous,
            Field::Orphans => &mut self.orphans,
            Field::Loss(LossKind::AfterAck) => &mut self.lost_after_ack,
            Field::Loss(LossKind::Undeliverable) => &mut self.undeliverable,
            Field::Loss(LossKind::Unobserved) => &mut self.unobserved,
            Field::Loss(LossKind::Unacked) => &mut self.lost_unacked,
            Field::Loss(LossKind::Silent) => &mut self.silent_loss,
            Field::Loss(LossKind::Qos0) => &mut self.lost_qos0,
        }
    }

    /// Add another set of counts (per-profile figures into totals).
    pub fn add(&mut self, o: &MessageCounts) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.delivered += o.delivered;
        self.lost_after_ack += o.lost_after_ack;
        self.undeliverable += o.undeliverable;
        self.unobserved += o.unobserved;
        self.lost_unacked += o.lost_unacked;
        self.silent_loss += o.silent_loss;
        self.lost_qos0 += o.lost_qos0;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.downgraded += o.downgraded;
        self.ambiguous += o.ambiguous;
        self.orphans += o.orphans;
    }
}

/// The figures of one direction: counts and the two latency histograms (µs).
#[derive(Debug, Clone)]
pub struct MessageFigures {
    pub counts: MessageCounts,
    /// `t_received − t_intended` of the first reception.
    pub e2e_latency: Histogram<u64>,
    /// `t_acked − t_sent` (first hand-over to the ack).
    pub ack_latency: Histogram<u64>,
}

/// A new latency histogram: µs, 3 significant digits, growing as needed
/// (its size grows with the log of the largest value, not with the count).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid histogram precision")
}

impl Default for MessageFigures {
    fn default() -> Self {
        MessageFigures {
            counts: MessageCounts::default(),
            e2e_latency: latency_histogram(),
            ack_latency: latency_histogram(),
        }
    }
}

impl MessageFigures {
    /// Add another direction's figures (per-profile figures into totals).
    pub fn add(&mut self, o: &MessageFigures) {
        self.counts.add(&o.counts);
        // Both auto-resize, so adding cannot run out of range.
        self.e2e_latency
            .add(&o.e2e_latency)
            .expect("auto-resizing histograms add");
        self.ack_latency
            .add(&o.ack_latency)
            .expect("auto-resizing histograms add");
    }
}

/// The final figures of a ledger.
#[derive(Debug, Clone, Default)]
pub struct LedgerFigures {
    pub telemetry: MessageFigures,
    pub commands: MessageFigures,
}

impl LedgerFigures {
    pub fn add(&mut self, o: &LedgerFigures) {
        self.telemetry.add(&o.telemetry);
        self.commands.add(&o.commands);
    }

    pub fn direction(&self, d: Direction) -> &MessageFigures {
        match d {
            Direction::Telemetry => &self.telemetry,
            Direction::Command => &self.commands,
        }
    }
}

/// What changed, for one direction, about the messages of one bucket
/// since the last cut: `plus` the counts added and the new latency
/// samples, `minus` the counts taken back (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub plus: MessageFigures,
    pub minus: MessageCounts,
}

/// What changed about the messages of one bucket since the last cut.
#[derive(Debug, Clone, Default)]
pub struct BucketChange {
    pub telemetry: Change,
    pub commands: Change,
}

impl BucketChange {
    pub fn direction_mut(&mut self, d: Direction) -> &mut Change {
        match d {
            Direction::Telemetry => &mut self.telemetry,
            Direction::Command => &mut self.commands,
        }
    }

    /// Fold a later change of the same bucket into this one.
    pub fn add(&mut self, o: &BucketChange) {
        for (a, b) in [
            (&mut self.telemetry, &o.telemetry),
            (&mut self.commands, &o.commands),
        ] {
            a.plus.add(&b.plus);
            a.minus.add(&b.minus);
        }
    }
}

/// The changes of the buckets touched since the last cut, by bucket.
pub type Changes = BTreeMap<u64, BucketChange>;

/// The ledger's counts: running totals, and what changed per bucket since
/// the last cut. Kept apart from the per-key state so both can be borrowed
/// at once.
#[derive(Debug, Default)]
struct Tally {
    telemetry: MessageFigures,
    commands: MessageFigures,
    /// The cut times so far, in order.
    cuts: Vec<Nanos>,
    changes: Changes,
}

impl Tally {
    /// The interval holding `t`: the number of cuts before it.
    fn bucket_of(&self, t: Nanos) -> u64 {
        self.cuts.partition_point(|&c| c < t) as u64
    }

    /// The interval being recorded now (not cut yet).
    fn open(&self) -> u64 {
        self.cuts.len() as u64
    }

    fn totals(&mut self, d: Direction) -> &mut MessageFigures {
        match d {
            Direction::Telemetry => &mut self.telemetry,
            Direction::Command => &mut self.commands,
        }
    }

    fn change(&mut self, d: Direction, bucket: u64) -> &mut Change {
        self.changes.entry(bucket).or_default().direction_mut(d)
    }

    /// Count `n` more in `f` for messages of `bucket`.
    fn add(&mut self, d: Direction, bucket: u64, f: Field, n: u64) {
        *self.totals(d).counts.field_mut(f) += n;
        *self.change(d, bucket).plus.counts.field_mut(f) += n;
    }

    /// Take back `n` counted in `f` for messages of `bucket`.
    fn take(&mut self, d: Direction, bucket: u64, f: Field, n: u64) {
        *self.totals(d).counts.field_mut(f) -= n;
        *self.change(d, bucket).minus.field_mut(f) += n;
    }

    fn e2e(&mut self, d: Direction, bucket: u64, us: u64) {
        record(&mut self.totals(d).e2e_latency, us);
        record(&mut self.change(d, bucket).plus.e2e_latency, us);
    }

    fn ack(&mut self, d: Direction, bucket: u64, us: u64) {
        record(&mut self.totals(d).ack_latency, us);
        record(&mut self.change(d, bucket).plus.ack_latency, us);
    }
}

/// What is known of a message that is not settled.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// First hand-over: time and QoS asked.
    published: Option<(Nanos, u8)>,
    outcome: Option<PublishOutcome>,
    /// QoS of the first reception, once received.
    received: Option<u8>,
    /// Its interval (of `t_intended`), once known.
    bucket: Option<u64>,
}

/// Where a seq stands in its key.
enum Standing {
    /// Above everything seen, or in an unseen run.
    New,
    Pending,
    Lost {
        kind: LossKind,
        qos: u8,
        bucket: u64,
    },
    /// Published, received and its outcome known.
    Settled,
    /// Below the horizon and in nothing remembered.
    Forgotten,
}

#[derive(Debug, Default)]
struct KeyState {
    /// Every seq `>= high` is unseen.
    high: u64,
    pending: BTreeMap<u64, Pending>,
    ranges: Ranges,
    /// Seqs below it that are in no range were forgotten or settled.
    horizon: u64,
    /// Highest seq received (for `reordered`).
    max_received: Option<u64>,
}

impl KeyState {
    fn standing(&self, seq: u64) -> Standing {
        if seq >= self.high {
            return Standing::New;
        }
        if self.pending.contains_key(&seq) {
            return Standing::Pending;
        }
        match self.ranges.get(seq) {
            Some(Mark::Unseen) => Standing::New,
            Some(Mark::Lost { kind, qos, bucket }) => Standing::Lost { kind, qos, bucket },
            None if seq < self.horizon => Standing::Forgotten,
            None => Standing::Settled,
        }
    }

    /// Make `seq` a (fresh) pending entry; `seq` must be `New`.
    fn open(&mut self, seq: u64, cap: usize) -> &mut Pending {
        if seq >= self.high {
            if seq > self.high {
                self.ranges.insert(self.high, seq - 1, Mark::Unseen);
                self.enforce_cap(cap);
            }
            self.high = seq + 1;
        } else if self.ranges.remove(seq).is_some() {
            // Taking a seq out of a run may split it in two.
            self.enforce_cap(cap);
        }
        self.pending.entry(seq).or_default()
    }

    fn enforce_cap(&mut self, cap: usize) {
        while self.ranges.len() > cap {
            match self.ranges.pop_lowest() {
                Some((_, end, _)) => self.horizon = self.horizon.max(end + 1),
                None => break,
            }
        }
    }
}

/// Observer coverage gaps: `[from, to)`, the last one possibly open.
#[derive(Debug, Default, Clone)]
struct Coverage {
    gaps: Vec<(Nanos, Option<Nanos>)>,
}

impl Coverage {
    fn open(&mut self, at: Nanos) {
        if !matches!(self.gaps.last(), Some((_, None))) {
            self.gaps.push((at, None));
        }
    }

    fn close(&mut self, at: Nanos) {
        if let Some((from, to @ None)) = self.gaps.last_mut() {
            *to = Some(at.max(*from));
        }
    }

    fn contains(&self, t: Nanos) -> bool {
        self.gaps
            .iter()
            .any(|&(from, to)| from <= t && to.is_none_or(|to| t < to))
    }

    /// Total time inside gaps up to `end` (overlaps counted once).
    fn total(&self, end: Nanos) -> Duration {
        let mut spans: Vec<(Nanos, Nanos)> = self
            .gaps
            .iter()
            .map(|&(from, to)| (from.min(end), to.unwrap_or(end).min(end)))
            .filter(|(a, b)| a < b)
            .collect();
        spans.sort_unstable();
        let mut total = Duration::ZERO;
        let mut reach = Nanos::ZERO;
        for (a, b) in spans {
            let a = a.max(reach);
            if b > a {
                total += b.saturating_since(a);
                reach = b;
            }
        }
        total
    }
}

/// The message ledger of a run (or of one profile's devices).
#[derive(Debug)]
pub struct Ledger {
    keys: HashMap<StreamKey, KeyState>,
    tally: Tally,
    coverage: Coverage,
    range_cap: usize,
    /// Devices dead at the end of the run ([`Ledger::dead_at_end`]).
    dead: BTreeSet<DeviceId>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::with_range_cap(DEFAULT_RANGE_CAP)
    }

    /// A ledger that keeps at most `cap` (≥ 1) runs of unseen or lost seqs
    /// per key (see the module doc on memory).
    pub fn with_range_cap(cap: usize) -> Ledger {
        Ledger {
            keys: HashMap::new(),
            tally: Tally::default(),
            coverage: Coverage::default(),
            range_cap: cap.max(1),
            dead: BTreeSet::new(),
        }
    }

    /// Fold one event of the history; events that are not about messages or
    /// observer coverage are ignored.
    pub fn record(&mut self, ev: &Event) {
        match ev {
            Event::Device { at, device, what } => match *what {
                DeviceEvent::Published {
                    stream,
                    seq,
                    t_intended,
                    qos,
                    attempt: _,
                } => self.published_for(*at, telemetry(*device, stream, seq), t_intended, qos),
                DeviceEvent::Outcome {
                    stream,
                    seq,
                    outcome,
                    ack_latency_ns,
                } => self.outcome(
                    *at,
                    telemetry(*device, stream, seq),
                    outcome,
                    ack_latency_ns.map(Duration::from_nanos),
                ),
                DeviceEvent::CommandReceived {
                    stream,
                    seq,
                    t_intended,
                    qos,
                    dup: _,
                } => self.received(*at, command(*device, stream, seq), t_intended, qos),
                _ => {}
            },
            Event::Observer { at, what } => match *what {
                ObserverEvent::Connected => self.coverage.close(*at),
                ObserverEvent::Disconnected => self.coverage.open(*at),
                ObserverEvent::Received {
                    device,
                    stream,
                    seq,
                    t_intended,
                    qos,
                    dup: _,
                } => self.received(*at, telemetry(device, stream, seq), t_intended, qos),
                ObserverEvent::CommandPublished {
                    device,
                    stream,
                    seq,
                    t_intended,
                    qos,
                } => self.published_for(*at, command(device, stream, seq), t_intended, qos),
                ObserverEvent::CommandOutcome {
                    device,
                    stream,
                    seq,
                    outcome,
                } => self.outcome(*at, command(device, stream, seq), outcome, None),
                ObserverEvent::Status { .. } | ObserverEvent::Sys { .. } => {}
            },
            Event::Fault { .. } | Event::Harness { .. } => {}
        }
    }

    /// Tell the ledger that the collector did not cover `[from, to)`.
    pub fn coverage_gap(&mut self, from: Nanos, to: Nanos) {
        if from < to {
            self.coverage.gaps.push((from, Some(to)));
        }
    }

    /// `device` is dead at the end of the run (crashed, never rebooted): the
    /// acked commands for it that it never received, already counted or
    /// still to be, are `undeliverable` rather than `lost_after_ack` (in
    /// the bucket they were counted in).
    pub fn dead_at_end(&mut self, device: DeviceId) {
        if !self.dead.insert(device) {
            return;
        }
        for (key, st) in self.keys.iter_mut() {
            if key.device != device || key.direction != Direction::Command {
                continue;
            }
            let moved = st.ranges.remark(|m| match m {
                Mark::Lost {
                    kind: LossKind::AfterAck,
                    qos,
                    bucket,
                } => Some(Mark::Lost {
                    kind: LossKind::Undeliverable,
                    qos,
                    bucket,
                }),
                _ => None,
            });
            for (old, n) in moved {
                if let Mark::Lost { bucket, .. } = old {
                    let d = Direction::Command;
                    self.tally
                        .take(d, bucket, Field::Loss(LossKind::AfterAck), n);
                    self.tally
                        .add(d, bucket, Field::Loss(LossKind::Undeliverable), n);
                }
            }
        }
    }

    /// Time the collector was not covering, up to `end`.
    pub fn unobserved_time(&self, end: Nanos) -> Duration {
        self.coverage.total(end)
    }

    /// The application handed a message to the client (first or a retry),
    /// `t_intended` being the handing-over time (for tests and callers
    /// without a schedule; see [`Ledger::published_for`]).
    pub fn published(&mut self, at: Nanos, id: MessageId, qos: u8) {
        self.published_for(at, id, at, qos)
    }

    /// The application handed a message scheduled for `t_intended` to the
    /// client (first or a retry).
    pub fn published_for(&mut self, at: Nanos, id: MessageId, t_intended: Nanos, qos: u8) {
        let cap = self.range_cap;
        let bucket = self.tally.bucket_of(t_intended);
        let st = self.keys.entry(id.into()).or_default();
        match st.standing(id.seq) {
            Standing::New | Standing::Pending => {}
            // A retry of a settled message changes nothing.
            Standing::Lost { .. } | Standing::Settled | Standing::Forgotten => return,
        }
        let p = st.open(id.seq, cap);
        if p.published.is_some() {
            return; // a retry: the first hand-over counts
        }
        p.published = Some((at, qos));
        let bucket = *p.bucket.get_or_insert(bucket);
        let p = *p;
        let d = id.direction;
        self.tally.add(d, bucket, Field::Sent, 1);
        if let Some(got) = p.received {
            if got < qos {
                self.tally.add(d, bucket, Field::Downgraded, 1);
            }
        }
        self.settle(id);
    }

    /// The final publisher outcome of a message. `ack_latency` is the time
    /// from the first hand-over to the ack, when the producer measured it;
    /// otherwise it is taken from the `Published` time.
    pub fn outcome(
        &mut self,
        at: Nanos,
        id: MessageId,
        outcome: PublishOutcome,
        ack_latency: Option<Duration>,
    ) {
        let cap = self.range_cap;
        let open = self.tally.open();
        let st = self.keys.entry(id.into()).or_default();
        match st.standing(id.seq) {
            Standing::New | Standing::Pending => {}
            Standing::Lost { .. } | Standing::Settled | Standing::Forgotten => return,
        }
        let p = st.open(id.seq, cap);
        if p.outcome.is_some() {
            return;
        }
        p.outcome = Some(outcome);
        // Before its `Published` (a producer bug): the interval of now.
        let bucket = *p.bucket.get_or_insert(open);
        let published = p.published;
        if outcome == PublishOutcome::Acked {
            let d = id.direction;
            self.tally.add(d, bucket, Field::Acked, 1);
            let latency = ack_latency.or_else(|| published.map(|(t, _)| at.saturating_since(t)));
            if let Some(l) = latency {
                self.tally.ack(d, bucket, micros(l));
            }
        }
        self.settle(id);
    }

    /// A collector (telemetry) or the device (commands) received a message.
    pub fn received(&mut self, at: Nanos, id: MessageId, t_intended: Nanos, qos: u8) {
        let cap = self.range_cap;
        let d = id.direction;
        let intended = self.tally.bucket_of(t_intended);
        let st = self.keys.entry(id.into()).or_default();
        let bucket = match st.standing(id.seq) {
            Standing::Settled => {
                self.tally.add(d, intended, Field::Duplicates, 1);
                return;
            }
            Standing::Forgotten => {
                self.tally.add(d, intended, Field::Ambiguous, 1);
                return;
            }
            Standing::Lost {
                kind,
                qos: asked,
                bucket,
            } => {
                // A late first arrival of a provisional loss: taken back
                // from the bucket it was counted in.
                st.ranges.remove(id.seq);
                st.enforce_cap(cap);
                self.tally.take(d, bucket, Field::Loss(kind), 1);
                if qos < asked {
                    self.tally.add(d, bucket, Field::Downgraded, 1);
                }
                bucket
            }
            Standing::New | Standing::Pending => {
                let p = st.open(id.seq, cap);
                let bucket = *p.bucket.get_or_insert(intended);
                if p.received.is_some() {
                    self.tally.add(d, bucket, Field::Duplicates, 1);
                    return;
                }
                p.received = Some(qos);
                if let Some((_, asked)) = p.published {
                    if qos < asked {
                        self.tally.add(d, bucket, Field::Downgraded, 1);
                    }
                }
                bucket
            }
        };
        // First reception.
        self.tally.add(d, bucket, Field::Delivered, 1);
        self.tally
            .e2e(d, bucket, micros(at.saturating_since(t_intended)));
        if st.max_received.is_some_and(|m| id.seq < m) {
            self.tally.add(d, bucket, Field::Reordered, 1);
        }
        st.max_received = Some(st.max_received.map_or(id.seq, |m| m.max(id.seq)));
        self.settle(id);
    }

    /// Settle a pending message if everything needed is known.
    fn settle(&mut self, id: MessageId) {
        let open = self.tally.open();
        let Some(st) = self.keys.get_mut(&id.into()) else {
            return;
        };
        let Some(p) = st.pending.get(&id.seq).copied() else {
            return;
        };
        let (Some((published_at, qos)), Some(outcome)) = (p.published, p.outcome) else {
            return;
        };
        st.pending.remove(&id.seq);
        if p.received.is_some() {
            return; // delivered, already counted
        }
        let kind = undeliverable_if(
            &self.dead,
            id.into(),
            classify(
                qos,
                Some(outcome),
                id.direction == Direction::Telemetry && self.coverage.contains(published_at),
            ),
        );
        let bucket = p.bucket.unwrap_or(open);
        st.ranges
            .insert(id.seq, id.seq, Mark::Lost { kind, qos, bucket });
        st.enforce_cap(self.range_cap);
        self.tally.add(id.direction, bucket, Field::Loss(kind), 1);
    }

    /// The figures so far: provisional losses count as lost, messages still
    /// pending count nowhere yet (for the live display).
    pub fn figures(&self) -> LedgerFigures {
        LedgerFigures {
            telemetry: self.tally.telemetry.clone(),
            commands: self.tally.commands.clone(),
        }
    }

    /// Counts of one direction so far (cheap; see [`Ledger::figures`]).
    pub fn counts(&self, d: Direction) -> &MessageCounts {
        match d {
            Direction::Telemetry => &self.tally.telemetry.counts,
            Direction::Command => &self.tally.commands.counts,
        }
    }

    /// Messages pending right now (the ledger's memory, apart from ranges).
    pub fn pending(&self) -> usize {
        self.keys.values().map(|k| k.pending.len()).sum()
    }

    /// Runs of unseen or lost seqs remembered right now.
    pub fn ranges(&self) -> usize {
        self.keys.values().map(|k| k.ranges.len()).sum()
    }

    /// Cut the interval ending at `at` (run clock, not before the previous
    /// cut): what changed per bucket since the previous cut, which starts
    /// afresh. Bucket `n` (`n` = the number of earlier cuts) is the
    /// interval just cut; lower ones are earlier intervals.
    pub fn cut(&mut self, at: Nanos) -> Changes {
        let at = self.tally.cuts.last().map_or(at, |&l| at.max(l));
        self.tally.cuts.push(at);
        std::mem::take(&mut self.tally.changes)
    }

    /// The last cut, at the run's end (after the drain): as [`Ledger::cut`],
    /// with every message still pending decided into its bucket as
    /// [`Ledger::finish`] decides it. Nothing is recorded after it.
    pub fn cut_at_end(&mut self, at: Nanos) -> Changes {
        let mut changes = self.cut(at);
        let last = self.tally.open() - 1;
        for (key, st) in &self.keys {
            for p in st.pending.values() {
                if p.received.is_some() {
                    continue; // delivered, outcome unknown
                }
                let bucket = p.bucket.unwrap_or(last);
                let field = match (p.published, p.outcome) {
                    (Some((at, qos)), outcome) => {
                        let gap =
                            key.direction == Direction::Telemetry && self.coverage.contains(at);
                        Field::Loss(undeliverable_if(
                            &self.dead,
                            *key,
                            classify(qos, outcome, gap),
                        ))
                    }
                    (None, Some(_)) => Field::Orphans,
                    (None, None) => continue,
                };
                let change = changes
                    .entry(bucket)
                    .or_default()
                    .direction_mut(key.direction);
                *change.plus.counts.field_mut(field) += 1;
            }
        }
        changes
    }

    /// End of the run (after the drain): decide every pending message.
    pub fn finish(self) -> LedgerFigures {
        self.figures_at_end()
    }

    /// What [`Ledger::finish`] would give now, without consuming the ledger.
    pub fn figures_at_end(&self) -> LedgerFigures {
        let mut figs = self.figures();
        for (key, st) in &self.keys {
            let counts = match key.direction {
                Direction::Telemetry => &mut figs.telemetry.counts,
                Direction::Command => &mut figs.commands.counts,
            };
            for p in st.pending.values() {
                if p.received.is_some() {
                    continue; // delivered, outcome unknown
                }
                match (p.published, p.outcome) {
                    (Some((at, qos)), outcome) => {
                        let gap =
                            key.direction == Direction::Telemetry && self.coverage.contains(at);
                        let kind = undeliverable_if(&self.dead, *key, classify(qos, outcome, gap));
                        *counts.field_mut(Field::Loss(kind)) += 1;
                    }
                    (None, Some(_)) => counts.orphans += 1,
                    (None, None) => {}
                }
            }
        }
        figs
    }
}

/// An acked command never received by a device dead at the end (in
/// `dead`) is `undeliverable`; every other loss keeps its figure.
fn undeliverable_if(dead: &BTreeSet<DeviceId>, key: StreamKey, kind: LossKind) -> LossKind {
    match kind {
        LossKind::AfterAck if key.direction == Direction::Command && dead.contains(&key.device) => {
            LossKind::Undeliverable
        }
        k => k,
    }
}

/// The loss figure of a never-received message.
fn classify(qos: u8, outcome: Option<PublishOutcome>, in_gap: bool) -> LossKind {
    if qos == 0 {
        return LossKind::Qos0;
    }
    match outcome {
        Some(PublishOutcome::Acked) if in_gap => LossKind::Unobserved,
        Some(PublishOutcome::Acked) => LossKind::AfterAck,
        Some(PublishOutcome::Failed) | None => LossKind::Unacked,
        Some(PublishOutcome::Unawaited) => LossKind::Silent,
    }
}

/// Record into an auto-resizing histogram (clamped only if even that fails).
pub(crate) fn record(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

fn telemetry(device: DeviceId, stream: StreamId, seq: u64) -> MessageId {
    MessageId {
        device,
        direction: Direction::Telemetry,
        stream,
        seq,
    }
}

fn command(device: DeviceId, stream: StreamId, seq: u64) -> MessageId {
    MessageId {
        device,
        direction: Direction::Command,
        stream,
        seq,
    }
}

#[cfg(test)]
mod tests;

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

impl MessageCounts {
    fn loss_mut(&mut self, kind: LossKind) -> &mut u64 {
        match kind {
            LossKind::AfterAck => &mut self.lost_after_ack,
            LossKind::Undeliverable => &mut self.undeliverable,
            LossKind::Unobserved => &mut self.unobserved,
            LossKind::Unacked => &mut self.lost_unacked,
            LossKind::Silent => &mut self.silent_loss,
            LossKind::Qos0 => &mut self.lost_qos0,
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

/// What is known of a message that is not settled.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// First hand-over: time and QoS asked.
    published: Option<(Nanos, u8)>,
    outcome: Option<PublishOutcome>,
    /// QoS of the first reception, once received.
    received: Option<u8>,
}

/// Where a seq stands in its key.
enum Standing {
    /// Above everything seen, or in an unseen run.
    New,
    Pending,
    Lost {
        kind: LossKind,
        qos: u8,
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
            Some(Mark::Lost { kind, qos }) => Standing::Lost { kind, qos },
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
    telemetry: MessageFigures,
    commands: MessageFigures,
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
            telemetry: MessageFigures::default(),
            commands: MessageFigures::default(),
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
                    t_intended: _,
                    qos,
                    attempt: _,
                } => self.published(*at, telemetry(*device, stream, seq), qos),
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
                    t_intended: _,
                    qos,
                } => self.published(*at, command(device, stream, seq), qos),
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
    /// still to be, are `undeliverable` rather than `lost_after_ack`.
    pub fn dead_at_end(&mut self, device: DeviceId) {
        if !self.dead.insert(device) {
            return;
        }
        for (key, st) in self.keys.iter_mut() {
            if key.device != device || key.direction != Direction::Command {
                continue;
            }
            for qos in 1..=2 {
                let moved = st.ranges.remark(
                    Mark::Lost {
                        kind: LossKind::AfterAck,
                        qos,
                    },
                    Mark::Lost {
                        kind: LossKind::Undeliverable,
                        qos,
                    },
                );
                self.commands.counts.lost_after_ack -= moved;
                self.commands.counts.undeliverable += moved;
            }
        }
    }

    /// Time the collector was not covering, up to `end`.
    pub fn unobserved_time(&self, end: Nanos) -> Duration {
        self.coverage.total(end)
    }

    /// The application handed a message to the client (first or a retry).
    pub fn published(&mut self, at: Nanos, id: MessageId, qos: u8) {
        let cap = self.range_cap;
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
        let p = *p;
        let figs = figures_mut(&mut self.telemetry, &mut self.commands, id.direction);
        figs.counts.sent += 1;
        if let Some(got) = p.received {
            if got < qos {
                figs.counts.downgraded += 1;
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
        let published = p.published;
        let figs = figures_mut(&mut self.telemetry, &mut self.commands, id.direction);
        if outcome == PublishOutcome::Acked {
            figs.counts.acked += 1;
            let latency = ack_latency.or_else(|| published.map(|(t, _)| at.saturating_since(t)));
            if let Some(l) = latency {
                record(&mut figs.ack_latency, micros(l));
            }
        }
        self.settle(id);
    }

    /// A collector (telemetry) or the device (commands) received a message.
    pub fn received(&mut self, at: Nanos, id: MessageId, t_intended: Nanos, qos: u8) {
        let cap = self.range_cap;
        let st = self.keys.entry(id.into()).or_default();
        let figs = figures_mut(&mut self.telemetry, &mut self.commands, id.direction);
        match st.standing(id.seq) {
            Standing::Settled => {
                figs.counts.duplicates += 1;
                return;
            }
            Standing::Forgotten => {
                figs.counts.ambiguous += 1;
                return;
            }
            Standing::Lost { kind, qos: asked } => {
                // A late first arrival of a provisional loss.
                st.ranges.remove(id.seq);
                st.enforce_cap(cap);
                *figs.counts.loss_mut(kind) -= 1;
                if qos < asked {
                    figs.counts.downgraded += 1;
                }
            }
            Standing::New | Standing::Pending => {
                let p = st.open(id.seq, cap);
                if p.received.is_some() {
                    figs.counts.duplicates += 1;
                    return;
                }
                p.received = Some(qos);
                if let Some((_, asked)) = p.published {
                    if qos < asked {
                        figs.counts.downgraded += 1;
                    }
                }
            }
        }
        // First reception.
        figs.counts.delivered += 1;
        record(
            &mut figs.e2e_latency,
            micros(at.saturating_since(t_intended)),
        );
        if st.max_received.is_some_and(|m| id.seq < m) {
            figs.counts.reordered += 1;
        }
        st.max_received = Some(st.max_received.map_or(id.seq, |m| m.max(id.seq)));
        self.settle(id);
    }

    /// Settle a pending message if everything needed is known.
    fn settle(&mut self, id: MessageId) {
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
        st.ranges.insert(id.seq, id.seq, Mark::Lost { kind, qos });
        st.enforce_cap(self.range_cap);
        let figs = figures_mut(&mut self.telemetry, &mut self.commands, id.direction);
        *figs.counts.loss_mut(kind) += 1;
    }

    /// The figures so far: provisional losses count as lost, messages still
    /// pending count nowhere yet (for the live display and interval logs).
    pub fn figures(&self) -> LedgerFigures {
        LedgerFigures {
            telemetry: self.telemetry.clone(),
            commands: self.commands.clone(),
        }
    }

    /// Counts of one direction so far (cheap; see [`Ledger::figures`]).
    pub fn counts(&self, d: Direction) -> &MessageCounts {
        match d {
            Direction::Telemetry => &self.telemetry.counts,
            Direction::Command => &self.commands.counts,
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

    /// End of the run (after the drain): decide every pending message.
    pub fn finish(self) -> LedgerFigures {
        self.figures_at_end()
    }

    /// What [`Ledger::finish`] would give now, without consuming the ledger
    /// (for the last interval of the time series, cut just before the report).
    pub fn figures_at_end(&self) -> LedgerFigures {
        let mut telemetry = self.telemetry.clone();
        let mut commands = self.commands.clone();
        for (key, st) in &self.keys {
            let figs = figures_mut(&mut telemetry, &mut commands, key.direction);
            for p in st.pending.values() {
                if p.received.is_some() {
                    continue; // delivered, outcome unknown
                }
                match (p.published, p.outcome) {
                    (Some((at, qos)), outcome) => {
                        let gap =
                            key.direction == Direction::Telemetry && self.coverage.contains(at);
                        let kind = undeliverable_if(&self.dead, *key, classify(qos, outcome, gap));
                        *figs.counts.loss_mut(kind) += 1;
                    }
                    (None, Some(_)) => figs.counts.orphans += 1,
                    (None, None) => {}
                }
            }
        }
        LedgerFigures {
            telemetry,
            commands,
        }
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

fn figures_mut<'a>(
    telemetry: &'a mut MessageFigures,
    commands: &'a mut MessageFigures,
    d: Direction,
) -> &'a mut MessageFigures {
    match d {
        Direction::Telemetry => telemetry,
        Direction::Command => commands,
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

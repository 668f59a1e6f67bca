//! The connection figures of METRICS.md that need a device's whole story:
//! `zombie_time` / `zombie_undetected`, `outage_seen_by_client`,
//! `resume_time` and `first_attempt_delay`. Also the per-device timeline
//! both this module and [`super::offline`] read, and the few span
//! operations they share.
//!
//! Pure: the recorder appends what happened to a [`DeviceTimeline`] and
//! calls [`device_samples`] at every interval cut and at the end of the
//! run. Memory grows with connection events and fault episodes (a handful
//! per device and fault), never with messages.
//!
//! Every sample is told with the start of the episode it belongs to
//! ([`ConnSample`]), so that the time series can count it in the interval
//! where its episode started (see `metrics::interval`).
//!
//! # What a fault does to a device ([`Effect`])
//!
//! * `blackhole` (any stream: bytes dropped one way already starve the
//!   client of its PINGRESP and acks), `half_open`, and a paused broker
//!   (`broker_pause`) are all "TCP open, nothing gets through":
//!   [`Effect::Blackhole`] / [`Effect::BrokerPaused`], the two kinds
//!   `zombie_time` is measured on.
//! * `link_down`, `reset_peer` and the down phases of `flapping` are
//!   [`Effect::Down`] (connections refused or reset). Flapping's phases are
//!   rebuilt from the plan (`down`, `up` from the fault's scheduled start,
//!   clipped to its confirmed start and heal): the backend confirms only the
//!   first and the last change.
//! * `broker_restart` / `broker_kill`: [`Effect::BrokerDown`].
//! * latency, bandwidth, slicer, slow_close, limit_data — and any network
//!   fault with `toxicity` below 1, which hits only some connections, so
//!   nobody can say which device it cut off — are [`Effect::Degraded`]:
//!   connections work, slower or lossier.
//!
//! # Definitions chosen where METRICS.md leaves room
//!
//! * `zombie_time`: per device, overlapping blackhole-like episodes are one
//!   blackhole (from the first confirmed start to the last heal). A device
//!   whose client believed it was connected at that start gives one sample:
//!   its first `ConnectionLost` inside the blackhole minus the start. No
//!   loss before the heal (or the run's end, for one never healed; or the
//!   device crashed first) is censored: counted in `zombie_undetected` and in
//!   the histogram's `censored`, not in its percentiles.
//! * `outage_seen_by_client`: per link/broker episode and device it hits,
//!   the first `ConnectionLost` inside the episode (one not already counted
//!   for an overlapping episode) to the next CONNACK; no CONNACK by the end
//!   is censored.
//! * `resume_time`: per link/broker episode that healed and device it hits
//!   that has telemetry and is not crashed at the heal: the heal to the
//!   first telemetry message of that device the collector receives after
//!   it (literally METRICS.md: the first delivered after the heal, whenever
//!   it was published). None by the end is censored.
//! * `first_attempt_delay`: per healed link/broker episode and device that
//!   lost its connection during it and is not connected (nor crashed) at
//!   the heal: the first `ConnectAttempt` at or after the heal minus the
//!   heal. When a CONNACK comes first (an attempt begun before the heal went
//!   through), the delay is 0: no backoff kept the device waiting. Neither
//!   by the end is censored.

use std::time::Duration;

use crate::clock::Nanos;
use crate::scenario::FaultKind;

/// A span of run time; `end` is `None` while it lasts (closed at the run's
/// end when figures are computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Nanos,
    pub end: Option<Nanos>,
}

impl Span {
    pub fn open(start: Nanos) -> Span {
        Span { start, end: None }
    }

    pub fn closed(start: Nanos, end: Nanos) -> Span {
        Span {
            start,
            end: Some(end),
        }
    }

    /// The end, or `run_end` for a span still open; never after `run_end`
    /// nor before the start.
    pub fn end_or(&self, run_end: Nanos) -> Nanos {
        self.end.unwrap_or(run_end).min(run_end).max(self.start)
    }
}

/// What a fault does to the devices it hits (ground truth, METRICS.md's
/// `link` and `broker` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Connections work, slower or lossier.
    Degraded,
    /// TCP open, nothing gets through.
    Blackhole,
    /// Connections refused or reset.
    Down,
    /// The broker is frozen: TCP open, nothing gets through, for everyone.
    BrokerPaused,
    /// The broker is stopped or restarting.
    BrokerDown,
}

impl Effect {
    /// The effect of a link or broker fault; `None` for device faults.
    pub fn of(kind: &FaultKind) -> Option<Effect> {
        let partial = |t: &Option<f32>| t.is_some_and(|t| t < 1.0);
        Some(match kind {
            FaultKind::Blackhole { toxicity, .. } | FaultKind::ResetPeer { toxicity, .. }
                if partial(toxicity) =>
            {
                Effect::Degraded
            }
            FaultKind::Blackhole { .. } | FaultKind::HalfOpen | FaultKind::Cut => Effect::Blackhole,
            // A partition closes the devices' connections through the
            // published port and refuses new ones (see broker::container).
            FaultKind::LinkDown
            | FaultKind::ResetPeer { .. }
            | FaultKind::Flapping { .. }
            | FaultKind::BrokerPartition => Effect::Down,
            FaultKind::Latency { .. }
            | FaultKind::Bandwidth { .. }
            | FaultKind::SlowClose { .. }
            | FaultKind::Slicer { .. }
            | FaultKind::LimitData { .. } => Effect::Degraded,
            FaultKind::BrokerPause => Effect::BrokerPaused,
            FaultKind::BrokerRestart | FaultKind::BrokerKill => Effect::BrokerDown,
            FaultKind::DeviceCrash { .. } | FaultKind::ClientIdConflict { .. } => return None,
        })
    }

    /// "TCP open, nothing gets through": where `zombie_time` is measured.
    pub fn is_blackhole_like(self) -> bool {
        matches!(self, Effect::Blackhole | Effect::BrokerPaused)
    }

    /// The device cannot reach the broker (METRICS.md's `down`/`blackhole`
    /// link, or a broker that is not up).
    pub fn is_unreachable(self) -> bool {
        !matches!(self, Effect::Degraded)
    }

    /// The device's own link is gone: its broker connection dies while the
    /// broker keeps running, so the broker should publish the will.
    pub fn is_link_death(self) -> bool {
        matches!(self, Effect::Blackhole | Effect::Down)
    }
}

/// One link/broker fault episode as one device lived it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// The fault's place in the timeline.
    pub index: usize,
    pub effect: Effect,
    /// From the confirmed start to the confirmed heal.
    pub span: Span,
}

/// Why a device could not reach the broker for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Crashed (ground truth `alive` = false).
    Dead,
    /// A link or broker fault with an unreachable [`Effect`].
    Fault(Effect),
}

/// A span in which the device could not reach the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// The fault's index; `None` for a crash.
    pub index: Option<usize>,
    pub cause: Cause,
    pub span: Span,
}

/// What the connection and offline figures need to know about one device,
/// on the run clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceTimeline {
    /// Link/broker episodes that hit the device.
    pub exposures: Vec<Exposure>,
    /// Ground truth: crashes, and the unreachable phases of faults.
    pub outages: Vec<Outage>,
    /// Client belief: CONNACK to `ConnectionLost` (or crash).
    pub connected: Vec<Span>,
    /// `ConnectionLost` times.
    pub losses: Vec<Nanos>,
    /// `ConnectAttempt` times.
    pub attempts: Vec<Nanos>,
    /// Observer belief: (time, online) from the status topic.
    pub statuses: Vec<(Nanos, bool)>,
    /// Heals still waiting for this device's first telemetry after them:
    /// (heal, start of the healed episode).
    pub awaiting_data: Vec<(Nanos, Nanos)>,
    /// `resume_time` samples taken so far: (start of the episode, sample).
    pub resumed: Vec<(Nanos, Duration)>,
}

impl DeviceTimeline {
    /// CONNACK: client belief becomes connected.
    pub fn connected_at(&mut self, at: Nanos) {
        self.disconnected_at(at);
        self.connected.push(Span::open(at));
    }

    /// Client belief becomes disconnected (a loss, or a crash).
    pub fn disconnected_at(&mut self, at: Nanos) {
        if let Some(s) = self.connected.last_mut() {
            if s.end.is_none() {
                s.end = Some(at.max(s.start));
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.last().is_some_and(|s| s.end.is_none())
    }

    pub fn is_crashed(&self) -> bool {
        self.outages
            .iter()
            .any(|o| o.cause == Cause::Dead && o.span.end.is_none())
    }

    /// A telemetry message of this device reached the collector.
    pub fn received_at(&mut self, at: Nanos) {
        for (heal, start) in self.awaiting_data.drain(..) {
            self.resumed.push((start, at.saturating_since(heal)));
        }
    }

    /// Client belief at `t`: connected, with the loss at `t` itself
    /// counting as already disconnected.
    pub fn believed_connected(&self, t: Nanos) -> bool {
        self.connected
            .iter()
            .any(|s| s.start <= t && s.end.is_none_or(|e| e > t))
    }

    /// Client belief just before `t`: connected at some instant up to and
    /// including `t` with no loss before `t` (a crash or loss stamped at `t`
    /// still counts as connected).
    pub fn connected_until(&self, t: Nanos) -> bool {
        self.connected
            .iter()
            .any(|s| s.start <= t && s.end.is_none_or(|e| e >= t))
    }

    fn dead_at(&self, t: Nanos) -> bool {
        self.outages.iter().any(|o| {
            o.cause == Cause::Dead && o.span.start <= t && o.span.end.is_none_or(|e| e > t)
        })
    }
}

/// The connection samples of one device (durations; `*_censored` counts
/// the episodes whose end was never seen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionSamples {
    /// Hit by a blackhole-like episode: `zombie_time` is measured.
    pub zombie_exposed: bool,
    pub zombie: Vec<Duration>,
    pub zombie_undetected: u64,
    /// Hit by any link/broker episode.
    pub exposed: bool,
    pub outage_seen: Vec<Duration>,
    pub outage_seen_censored: u64,
    /// Hit by a link/broker episode that healed.
    pub healed: bool,
    pub first_attempt: Vec<Duration>,
    pub first_attempt_censored: u64,
    pub resume_exposed: bool,
    pub resume: Vec<Duration>,
    pub resume_censored: u64,
}

/// One connection sample of a device, as [`device_samples`] tells it with
/// the start of the episode it belongs to: the merged blackhole for the
/// zombie samples, the link/broker episode (its exposure) for the others.
/// `*Exposed` and `Healed` say the figure is measured at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnSample {
    ZombieExposed,
    Zombie(Duration),
    ZombieUndetected,
    Exposed,
    OutageSeen(Duration),
    OutageSeenCensored,
    Healed,
    FirstAttempt(Duration),
    FirstAttemptCensored,
    ResumeExposed,
    Resume(Duration),
    ResumeCensored,
}

impl ConnectionSamples {
    /// Fold one sample in (whatever its start).
    pub fn add(&mut self, s: ConnSample) {
        match s {
            ConnSample::ZombieExposed => self.zombie_exposed = true,
            ConnSample::Zombie(d) => self.zombie.push(d),
            ConnSample::ZombieUndetected => self.zombie_undetected += 1,
            ConnSample::Exposed => self.exposed = true,
            ConnSample::OutageSeen(d) => self.outage_seen.push(d),
            ConnSample::OutageSeenCensored => self.outage_seen_censored += 1,
            ConnSample::Healed => self.healed = true,
            ConnSample::FirstAttempt(d) => self.first_attempt.push(d),
            ConnSample::FirstAttemptCensored => self.first_attempt_censored += 1,
            ConnSample::ResumeExposed => self.resume_exposed = true,
            ConnSample::Resume(d) => self.resume.push(d),
            ConnSample::ResumeCensored => self.resume_censored += 1,
        }
    }
}

/// Every connection sample of one device at the run's `end`.
pub fn device_figures(tl: &DeviceTimeline, end: Nanos) -> ConnectionSamples {
    let mut out = ConnectionSamples::default();
    device_samples(tl, end, &mut |_, s| out.add(s));
    out
}

/// Every connection sample of one device as of `end` (anything still open
/// closed there), each told to `sink` with the start of its episode.
pub fn device_samples(tl: &DeviceTimeline, end: Nanos, sink: &mut impl FnMut(Nanos, ConnSample)) {
    for e in &tl.exposures {
        sink(e.span.start, ConnSample::Exposed);
        if e.span.end.is_some() {
            sink(e.span.start, ConnSample::Healed);
        }
    }
    for &(start, d) in &tl.resumed {
        sink(start, ConnSample::ResumeExposed);
        sink(start, ConnSample::Resume(d));
    }
    for &(_, start) in &tl.awaiting_data {
        sink(start, ConnSample::ResumeExposed);
        sink(start, ConnSample::ResumeCensored);
    }
    zombies(tl, end, sink);
    outages_seen(tl, end, sink);
    first_attempts(tl, sink);
}

fn zombies(tl: &DeviceTimeline, end: Nanos, sink: &mut impl FnMut(Nanos, ConnSample)) {
    let black: Vec<(Nanos, Nanos)> = tl
        .exposures
        .iter()
        .filter(|e| e.effect.is_blackhole_like() && e.span.start <= end)
        .map(|e| (e.span.start, e.span.end_or(end)))
        .collect();
    for (start, stop) in merge(black) {
        sink(start, ConnSample::ZombieExposed);
        if !tl.believed_connected(start) || tl.dead_at(start) {
            continue; // nobody to be a zombie: already down
        }
        match tl.losses.iter().find(|&&l| l >= start && l < stop) {
            Some(&noticed) => sink(start, ConnSample::Zombie(noticed.saturating_since(start))),
            None => sink(start, ConnSample::ZombieUndetected),
        }
    }
}

fn outages_seen(tl: &DeviceTimeline, end: Nanos, sink: &mut impl FnMut(Nanos, ConnSample)) {
    let mut episodes: Vec<&Exposure> = tl.exposures.iter().collect();
    episodes.sort_by_key(|e| e.span.start);
    let mut counted: Option<Nanos> = None;
    for e in episodes {
        let stop = e.span.end_or(end);
        let Some(&lost) = tl
            .losses
            .iter()
            .find(|&&l| l >= e.span.start && l <= stop && counted.is_none_or(|c| l > c))
        else {
            continue;
        };
        counted = Some(lost);
        let sample = match tl.connected.iter().find(|s| s.start >= lost) {
            Some(s) => ConnSample::OutageSeen(s.start.saturating_since(lost)),
            None => ConnSample::OutageSeenCensored,
        };
        sink(e.span.start, sample);
    }
}

fn first_attempts(tl: &DeviceTimeline, sink: &mut impl FnMut(Nanos, ConnSample)) {
    for e in &tl.exposures {
        let Some(heal) = e.span.end else { continue };
        let lost = tl.losses.iter().any(|&l| l >= e.span.start && l <= heal);
        if !lost || tl.believed_connected(heal) || tl.dead_at(heal) {
            continue;
        }
        let attempt = tl.attempts.iter().find(|&&a| a >= heal);
        let connack = tl.connected.iter().map(|s| s.start).find(|&c| c >= heal);
        let sample = match (attempt.copied(), connack) {
            // An attempt begun before the heal went through first.
            (Some(a), Some(c)) if c < a => ConnSample::FirstAttempt(Duration::ZERO),
            (Some(a), _) => ConnSample::FirstAttempt(a.saturating_since(heal)),
            (None, Some(_)) => ConnSample::FirstAttempt(Duration::ZERO),
            (None, None) => ConnSample::FirstAttemptCensored,
        };
        sink(e.span.start, sample);
    }
}

/// Union of closed spans, sorted, touching ones joined.
pub(crate) fn merge(mut spans: Vec<(Nanos, Nanos)>) -> Vec<(Nanos, Nanos)> {
    spans.retain(|(a, b)| b >= a);
    spans.sort();
    let mut out: Vec<(Nanos, Nanos)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Intersection of two unions of spans (each sorted and disjoint, as
/// [`merge`] returns them).
pub(crate) fn intersect(a: &[(Nanos, Nanos)], b: &[(Nanos, Nanos)]) -> Vec<(Nanos, Nanos)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo < hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// `a` minus `b` (both sorted and disjoint).
pub(crate) fn subtract(a: &[(Nanos, Nanos)], b: &[(Nanos, Nanos)]) -> Vec<(Nanos, Nanos)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        for &(blo, bhi) in b {
            if bhi <= lo || blo >= hi {
                continue;
            }
            if blo > lo {
                out.push((lo, blo));
            }
            lo = lo.max(bhi);
            if lo >= hi {
                break;
            }
        }
        if lo < hi {
            out.push((lo, hi));
        }
    }
    out
}

/// Total length of disjoint spans.
pub(crate) fn measure(spans: &[(Nanos, Nanos)]) -> Duration {
    spans.iter().map(|(a, b)| b.saturating_since(*a)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Nanos {
        Nanos(ms * 1_000_000)
    }

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn exposure(index: usize, effect: Effect, from: u64, to: Option<u64>) -> Exposure {
        Exposure {
            index,
            effect,
            span: Span {
                start: ms(from),
                end: to.map(ms),
            },
        }
    }

    /// Connected from `up` (ms), losing the connection at each of `losses`
    /// and reconnecting at each of `reconnects`.
    fn device(up: u64, losses: &[u64], reconnects: &[u64]) -> DeviceTimeline {
        let mut tl = DeviceTimeline::default();
        let mut ev: Vec<(u64, bool)> = vec![(up, true)];
        ev.extend(losses.iter().map(|&l| (l, false)));
        ev.extend(reconnects.iter().map(|&c| (c, true)));
        ev.sort();
        for (t, up) in ev {
            if up {
                tl.connected_at(ms(t));
            } else {
                tl.disconnected_at(ms(t));
                tl.losses.push(ms(t));
            }
        }
        tl
    }

    #[test]
    fn a_blackhole_noticed_before_the_heal_is_one_zombie_sample_from_the_start() {
        let mut tl = device(100, &[12_400], &[20_300]);
        tl.exposures
            .push(exposure(0, Effect::Blackhole, 10_000, Some(20_000)));
        let s = device_figures(&tl, ms(60_000));
        assert!(s.zombie_exposed);
        assert_eq!(s.zombie, vec![d(2_400)]);
        assert_eq!(s.zombie_undetected, 0);
    }

    #[test]
    fn a_blackhole_never_noticed_before_the_heal_is_censored_and_undetected() {
        // The loss comes after the heal: it does not end the zombie time.
        let mut tl = device(100, &[20_500], &[21_000]);
        tl.exposures
            .push(exposure(0, Effect::Blackhole, 10_000, Some(20_000)));
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.zombie, Vec::<Duration>::new());
        assert_eq!(s.zombie_undetected, 1);
    }

    #[test]
    fn a_blackhole_still_in_force_at_the_end_is_censored_at_the_end() {
        let mut tl = device(100, &[], &[]);
        tl.exposures
            .push(exposure(0, Effect::BrokerPaused, 10_000, None));
        let s = device_figures(&tl, ms(30_000));
        assert_eq!((s.zombie.len(), s.zombie_undetected), (0, 1));
    }

    #[test]
    fn overlapping_blackholes_are_one_zombie_episode_per_device() {
        let mut tl = device(100, &[14_000], &[26_000]);
        tl.exposures
            .push(exposure(0, Effect::Blackhole, 10_000, Some(20_000)));
        tl.exposures
            .push(exposure(1, Effect::BrokerPaused, 12_000, Some(25_000)));
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.zombie, vec![d(4_000)]);
        assert_eq!(s.zombie_undetected, 0);
    }

    #[test]
    fn a_device_already_down_at_the_blackhole_is_no_zombie() {
        let mut tl = device(100, &[9_000], &[30_000]);
        tl.exposures
            .push(exposure(0, Effect::Blackhole, 10_000, Some(20_000)));
        let s = device_figures(&tl, ms(60_000));
        assert!(s.zombie_exposed);
        assert_eq!((s.zombie.len(), s.zombie_undetected), (0, 0));
    }

    #[test]
    fn link_down_and_latency_are_not_zombie_episodes() {
        let mut tl = device(100, &[10_010], &[15_300]);
        tl.exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        tl.exposures
            .push(exposure(1, Effect::Degraded, 30_000, Some(35_000)));
        let s = device_figures(&tl, ms(60_000));
        assert!(!s.zombie_exposed);
        assert!(s.zombie.is_empty());
    }

    #[test]
    fn outage_seen_by_client_runs_from_the_loss_to_the_next_connack() {
        let mut tl = device(100, &[10_010, 40_200], &[15_300]);
        tl.exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        // Overlapping with the first: the same loss is not counted twice.
        tl.exposures
            .push(exposure(1, Effect::BrokerDown, 12_000, Some(14_000)));
        // A loss that never ends in a reconnect is censored.
        tl.exposures
            .push(exposure(2, Effect::Down, 40_000, Some(45_000)));
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.outage_seen, vec![d(5_290)]);
        assert_eq!(s.outage_seen_censored, 1);
    }

    #[test]
    fn first_attempt_delay_is_the_first_attempt_at_or_after_the_heal() {
        let mut tl = device(100, &[10_010], &[15_900]);
        tl.attempts = vec![ms(10_500), ms(12_500), ms(15_800)];
        tl.exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.first_attempt, vec![d(800)]);
        assert_eq!(s.first_attempt_censored, 0);
    }

    #[test]
    fn a_connack_from_an_attempt_begun_before_the_heal_is_a_zero_first_attempt_delay() {
        let mut tl = device(100, &[10_010], &[15_100]);
        tl.attempts = vec![ms(14_900)];
        tl.exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.first_attempt, vec![Duration::ZERO]);
    }

    #[test]
    fn first_attempt_delay_skips_devices_back_before_the_heal_and_censors_those_never_trying() {
        // Device back under the fault: no sample.
        let mut back = device(100, &[10_010], &[12_000]);
        back.attempts = vec![ms(11_900)];
        back.exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        let s = device_figures(&back, ms(60_000));
        assert!(s.first_attempt.is_empty());
        assert_eq!(s.first_attempt_censored, 0);
        // reconnect = "off": never tries again.
        let mut never = device(100, &[10_010], &[]);
        never
            .exposures
            .push(exposure(0, Effect::Down, 10_000, Some(15_000)));
        let s = device_figures(&never, ms(60_000));
        assert_eq!(s.first_attempt_censored, 1);
        assert!(s.healed);
    }

    #[test]
    fn resume_time_is_the_first_reception_after_each_heal() {
        let mut tl = DeviceTimeline::default();
        tl.awaiting_data.push((ms(15_000), ms(10_000)));
        tl.received_at(ms(15_750));
        tl.received_at(ms(15_950)); // not waited for any more
        tl.awaiting_data.push((ms(40_000), ms(30_000))); // never resumed
        let s = device_figures(&tl, ms(60_000));
        assert_eq!(s.resume, vec![d(750)]);
        assert_eq!(s.resume_censored, 1);
        assert!(s.resume_exposed);
        // Each told with the start of its episode.
        let mut told = Vec::new();
        device_samples(&tl, ms(60_000), &mut |at, s| told.push((at, s)));
        assert!(told.contains(&(ms(10_000), ConnSample::Resume(d(750)))));
        assert!(told.contains(&(ms(30_000), ConnSample::ResumeCensored)));
    }

    #[test]
    fn effects_follow_the_fault_kinds() {
        use crate::scenario::StreamSel;
        let bh = |toxicity| FaultKind::Blackhole {
            stream: StreamSel::Upstream,
            toxicity,
        };
        assert_eq!(Effect::of(&bh(None)), Some(Effect::Blackhole));
        assert_eq!(Effect::of(&bh(Some(1.0))), Some(Effect::Blackhole));
        assert_eq!(Effect::of(&bh(Some(0.5))), Some(Effect::Degraded));
        assert_eq!(Effect::of(&FaultKind::HalfOpen), Some(Effect::Blackhole));
        assert_eq!(Effect::of(&FaultKind::Cut), Some(Effect::Blackhole));
        assert_eq!(
            Effect::of(&FaultKind::BrokerPause),
            Some(Effect::BrokerPaused)
        );
        assert_eq!(Effect::of(&FaultKind::BrokerKill), Some(Effect::BrokerDown));
        assert_eq!(Effect::of(&FaultKind::LinkDown), Some(Effect::Down));
        assert_eq!(Effect::of(&FaultKind::DeviceCrash { devices: 1 }), None);
        assert!(Effect::BrokerPaused.is_blackhole_like());
        assert!(!Effect::BrokerPaused.is_link_death());
        assert!(!Effect::Degraded.is_unreachable());
    }

    #[test]
    fn span_algebra_merges_intersects_and_subtracts() {
        let s = |a: u64, b: u64| (ms(a), ms(b));
        assert_eq!(
            merge(vec![s(5, 7), s(0, 2), s(1, 3), s(3, 4)]),
            vec![s(0, 4), s(5, 7)]
        );
        assert_eq!(
            intersect(&[s(0, 4), s(5, 10)], &[s(3, 6), s(8, 20)]),
            vec![s(3, 4), s(5, 6), s(8, 10)]
        );
        assert_eq!(
            subtract(&[s(0, 10), s(12, 14)], &[s(2, 3), s(5, 6), s(9, 13)]),
            vec![s(0, 2), s(3, 5), s(6, 9), s(13, 14)]
        );
        assert_eq!(measure(&[s(0, 2), s(3, 5)]), d(4));
    }
}

//! The offline-report figures of METRICS.md (the seed's 设备离线误报率) and
//! `broker_detect_time`: what the observer showed against what was true.
//!
//! Pure: reads a device's [`DeviceTimeline`], the observer's own downtime
//! and the run's end. Every sample is told with the start of what it
//! belongs to ([`OfflineSample`]): an offline episode's opening, a death,
//! the start of a stretch shown online while unreachable.
//!
//! # Definitions chosen where METRICS.md leaves room
//!
//! * An **offline episode** opens at the observer's first `offline` for the
//!   device (will, or `$SYS` disconnected) and closes at its next `online`
//!   (retained or live); one still open at the run's end closes at the end.
//!   A repeated `offline` inside an episode is part of it.
//! * **Unreachable** (ground truth): crashed, or hit by a fault whose
//!   [`Effect`](super::connection::Effect) is not `Degraded` — link down or
//!   blackhole, broker down or paused. Overlapping causes are one span.
//! * `true_offline`: an unreachable span that lasts at least `min_outage`
//!   (one scenario-wide setting, the same for every profile; default 30 s;
//!   a crash counts by its length, so a reboot shorter than that is a blip,
//!   while a device still dead at the end is dead for good), began before
//!   the episode closed
//!   and ended no earlier than the detection window `W` before it opened
//!   (a report that arrives late, e.g. the will of a half-open connection
//!   published at the takeover, still reports that outage).
//!   `false_offline`: every other episode.
//! * **Deaths** (for `broker_detect_time` and `missed_offline`): a crash, or
//!   a link fault whose effect is a link death (down or blackhole), of a
//!   device whose client was connected then and that the observer did not
//!   already show offline. Broker faults are no deaths here: the broker
//!   cannot report while it is down or frozen. Overlapping causes are one
//!   death, starting at the first.
//!   `W` = 1.5 × keepalive + `settle` (keepalive "off" counts as 0), plus
//!   an MQTT 5 will's delay interval: the broker holds such a will back
//!   that long on purpose, so a report within it is the will working.
//!   * The first `offline` in `[death, death + W]` is a `broker_detect_time`
//!     sample (`t_offline − t_death`).
//!   * None, while the observer was down at some point of that window: the
//!     death is *unobserved* (`offline_unobserved`), neither detected nor
//!     missed.
//!   * None, and the device was killed (crash) or its link stayed gone for
//!     the whole window: `missed_offline`, and censored in
//!     `broker_detect_time`. A link outage shorter than `W` that the broker
//!     never reported is neither: nobody can say a report was due. Nor is
//!     a crash of a device with a delayed will that was back before
//!     `settle` after the delay: a reconnect within the delay cancels the
//!     will (MQTT 5), so no report was due. With a plain will every crash
//!     is judged: the broker learns of it at once.
//!   * A death less than `W` before the run's end without a report is not
//!     judged.
//!   * A death is stamped when the harness confirmed it (a crashed task is
//!     stamped after it is gone, a fault after its backend answered), a
//!     moment after it took effect: a report up to [`CONFIRM_SLACK`] before
//!     the stamp still reports it (a detection time of 0).
//! * **Devices without a will** have no status topic: every death that
//!   would be judged is `missed_offline` (no report can come), they have no
//!   episodes, and their `true_offline`, `false_offline`,
//!   `stale_offline_time`, `false_online_time` and `broker_detect_time` are
//!   not measured (`null` for a population without any will).
//! * `stale_offline_time`, one sample per episode: the time inside the
//!   episode during which the client believed it was connected and the
//!   device was reachable, each such stretch counted only from `settle`
//!   after it began, minus observer downtime.
//! * `false_online_time`, one sample per device with a will: the time the
//!   observer showed it `online` (from an `online` to the next `offline`)
//!   while it was unreachable, minus observer downtime.

use std::time::Duration;

use super::connection::{intersect, measure, merge, subtract, Cause, DeviceTimeline};
use crate::clock::Nanos;

/// How long before its stamp a death may already have been reported.
pub const CONFIRM_SLACK: Duration = Duration::from_millis(500);

/// The settings that decide the offline figures of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineParams {
    /// The profile's keepalive (`None`: "off").
    pub keepalive: Option<Duration>,
    /// Shortest outage that makes an offline report true.
    pub min_outage: Duration,
    /// Grace after a reconnect before an open episode is stale.
    pub settle: Duration,
    /// The device has a will (a status topic).
    pub has_will: bool,
    /// Its will's MQTT 5 delay interval (zero without one).
    pub will_delay: Duration,
}

impl OfflineParams {
    /// `W`: how long after a death its offline report may take.
    pub fn detect_window(&self) -> Duration {
        self.keepalive.unwrap_or_default().mul_f64(1.5) + self.will_delay + self.settle
    }
}

/// The offline samples of one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfflineSamples {
    /// Deaths of this device (crash or link death while connected).
    pub deaths: u64,
    pub detect: Vec<Duration>,
    pub detect_censored: u64,
    pub missed: u64,
    pub unobserved: u64,
    pub true_offline: u64,
    pub false_offline: u64,
    pub stale: Vec<Duration>,
    /// `None` for a device without a will.
    pub false_online: Option<Duration>,
}

/// One offline sample of a device, as [`device_samples`] tells it with
/// the start of what it belongs to: a death (`Death` and its judgement),
/// an offline episode's opening (`TrueOffline` / `FalseOffline`, `Stale`),
/// or a stretch the observer showed the device online while it was
/// unreachable (`FalseOnline`, part of the device's `false_online_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfflineSample {
    Death,
    Detect(Duration),
    DetectCensored,
    Missed,
    Unobserved,
    TrueOffline,
    FalseOffline,
    Stale(Duration),
    FalseOnline(Duration),
}

impl OfflineSamples {
    /// No samples yet, for a device with or without a will.
    pub fn new(has_will: bool) -> OfflineSamples {
        OfflineSamples {
            false_online: has_will.then_some(Duration::ZERO),
            ..OfflineSamples::default()
        }
    }

    /// Fold one sample in (whatever its start).
    pub fn add(&mut self, s: OfflineSample) {
        match s {
            OfflineSample::Death => self.deaths += 1,
            OfflineSample::Detect(d) => self.detect.push(d),
            OfflineSample::DetectCensored => self.detect_censored += 1,
            OfflineSample::Missed => self.missed += 1,
            OfflineSample::Unobserved => self.unobserved += 1,
            OfflineSample::TrueOffline => self.true_offline += 1,
            OfflineSample::FalseOffline => self.false_offline += 1,
            OfflineSample::Stale(d) => self.stale.push(d),
            OfflineSample::FalseOnline(d) => {
                *self.false_online.get_or_insert(Duration::ZERO) += d;
            }
        }
    }
}

type Spans = Vec<(Nanos, Nanos)>;

/// Every offline sample of one device at the run's `end`, given the spans
/// in which the observer was down.
pub fn device_figures(
    tl: &DeviceTimeline,
    observer_down: &[(Nanos, Nanos)],
    p: &OfflineParams,
    end: Nanos,
) -> OfflineSamples {
    let mut out = OfflineSamples::new(p.has_will);
    device_samples(tl, observer_down, p, end, &mut |_, s| out.add(s));
    out
}

/// Every offline sample of one device as of `end` (anything still open
/// closed there), each told to `sink` with the start of what it belongs to.
pub fn device_samples(
    tl: &DeviceTimeline,
    observer_down: &[(Nanos, Nanos)],
    p: &OfflineParams,
    end: Nanos,
    sink: &mut impl FnMut(Nanos, OfflineSample),
) {
    let observer_down = merge(observer_down.to_vec());
    let mut statuses = tl.statuses.clone();
    statuses.sort_by_key(|(t, _)| *t);
    let (episodes, online) = episodes(&statuses, end);
    let window = p.detect_window();

    // Unreachable spans, each with whether a crash is part of it.
    let unreachable = merged_with_flag(
        tl.outages
            .iter()
            .filter(|o| match o.cause {
                Cause::Dead => true,
                Cause::Fault(e) => e.is_unreachable(),
            })
            .filter(|o| o.span.start <= end)
            .map(|o| (o.span.start, o.span.end_or(end), o.cause == Cause::Dead)),
    );

    deaths(tl, &statuses, &observer_down, p, end, sink);
    if !p.has_will {
        return;
    }

    for &(o0, o1) in &episodes {
        // A crash counts by its length as any outage (a reboot shorter
        // than min_outage is a blip); one still dead at the end is a death
        // for good, however little of it the run saw.
        let explained = unreachable.iter().any(|&(u0, u1, dead)| {
            let for_good = dead && u1 >= end;
            (for_good || u1.saturating_since(u0) >= p.min_outage)
                && u0 <= o1
                && u1.plus(window) >= o0
        });
        if explained {
            sink(o0, OfflineSample::TrueOffline);
        } else {
            sink(o0, OfflineSample::FalseOffline);
        }
    }

    let unreachable: Spans = unreachable.iter().map(|&(a, b, _)| (a, b)).collect();
    // Client belief connected and the device reachable, from `settle` on.
    let believed: Spans = merge(
        tl.connected
            .iter()
            .filter(|s| s.start <= end)
            .map(|s| (s.start, s.end_or(end)))
            .collect(),
    );
    let settled: Spans = subtract(&believed, &unreachable)
        .into_iter()
        .map(|(a, b)| (a.plus(p.settle), b))
        .filter(|(a, b)| a < b)
        .collect();
    for &(o0, o1) in &episodes {
        let stale = intersect(&[(o0, o1)], &settled);
        sink(
            o0,
            OfflineSample::Stale(measure(&subtract(&stale, &observer_down))),
        );
    }

    let shown_wrong = intersect(&online, &unreachable);
    for (a, b) in subtract(&shown_wrong, &observer_down) {
        sink(a, OfflineSample::FalseOnline(b.saturating_since(a)));
    }
}

/// Offline episodes and online spans from the sorted statuses.
fn episodes(statuses: &[(Nanos, bool)], end: Nanos) -> (Spans, Spans) {
    let (mut offline, mut online) = (Vec::new(), Vec::new());
    let mut state: Option<(bool, Nanos)> = None;
    for &(t, up) in statuses {
        match state {
            Some((s, _)) if s == up => {}
            Some((s, since)) => {
                if s { &mut online } else { &mut offline }.push((since, t));
                state = Some((up, t));
            }
            None => state = Some((up, t)),
        }
    }
    if let Some((s, since)) = state {
        if since <= end {
            if s { &mut online } else { &mut offline }.push((since, end));
        }
    }
    (offline, online)
}

/// Union of spans carrying a flag; a merged span has the flag when any of
/// its parts had it.
fn merged_with_flag(
    spans: impl Iterator<Item = (Nanos, Nanos, bool)>,
) -> Vec<(Nanos, Nanos, bool)> {
    let mut spans: Vec<_> = spans.filter(|(a, b, _)| b >= a).collect();
    spans.sort();
    let mut out: Vec<(Nanos, Nanos, bool)> = Vec::new();
    for (a, b, f) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => {
                last.1 = last.1.max(b);
                last.2 |= f;
            }
            _ => out.push((a, b, f)),
        }
    }
    out
}

fn deaths(
    tl: &DeviceTimeline,
    statuses: &[(Nanos, bool)],
    observer_down: &[(Nanos, Nanos)],
    p: &OfflineParams,
    end: Nanos,
    sink: &mut impl FnMut(Nanos, OfflineSample),
) {
    let window = p.detect_window();
    // (start, end, starts with a crash)
    let mut causes: Vec<(Nanos, Nanos, bool)> = tl
        .outages
        .iter()
        .filter(|o| match o.cause {
            Cause::Dead => true,
            Cause::Fault(e) => e.is_link_death(),
        })
        .filter(|o| o.span.start <= end)
        .map(|o| (o.span.start, o.span.end_or(end), o.cause == Cause::Dead))
        .collect();
    causes.sort();
    let mut groups: Vec<(Nanos, Nanos, bool)> = Vec::new();
    for (a, b, crash) in causes {
        match groups.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => groups.push((a, b, crash)),
        }
    }
    for (start, stop, crash) in groups {
        if !tl.connected_until(start) {
            continue; // nothing died: the client was not connected
        }
        let from = start - Nanos::from_duration(CONFIRM_SLACK);
        let shown_offline = statuses
            .iter()
            .rev()
            .find(|(t, _)| *t < from)
            .is_some_and(|(_, up)| !up);
        if shown_offline {
            continue;
        }
        sink(start, OfflineSample::Death);
        let due = start.plus(window);
        // A crash is judged when its will was due while the device was
        // still dead: at once for a plain will; for a delayed one only a
        // device still dead `settle` after the delay (one back before its
        // delay ran out cancels its will, as MQTT 5 says).
        let dead_for = stop.saturating_since(start);
        let qualifies = if crash {
            p.will_delay.is_zero() || stop >= end || dead_for >= p.will_delay + p.settle
        } else {
            dead_for >= window
        };
        if !p.has_will {
            if qualifies {
                sink(start, OfflineSample::Missed);
            }
            continue;
        }
        if let Some((t, _)) = statuses
            .iter()
            .find(|(t, up)| !up && *t >= from && *t <= due)
        {
            sink(start, OfflineSample::Detect(t.saturating_since(start)));
            continue;
        }
        if due > end {
            continue; // the run ended before a report was due
        }
        let unobserved = observer_down.iter().any(|&(a, b)| a <= due && b >= start);
        if unobserved {
            sink(start, OfflineSample::Unobserved);
        } else if qualifies {
            sink(start, OfflineSample::Missed);
            sink(start, OfflineSample::DetectCensored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::connection::{Effect, Outage, Span};
    use super::*;

    fn ms(ms: u64) -> Nanos {
        Nanos(ms * 1_000_000)
    }

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// keepalive 2 s, min_outage 2 s, settle 5 s → W = 8 s.
    fn params(has_will: bool) -> OfflineParams {
        OfflineParams {
            keepalive: Some(Duration::from_secs(2)),
            min_outage: Duration::from_secs(2),
            settle: Duration::from_secs(5),
            has_will,
            will_delay: Duration::ZERO,
        }
    }

    struct Dev(DeviceTimeline);

    impl Dev {
        /// Connected from 100 ms.
        fn new() -> Dev {
            let mut tl = DeviceTimeline::default();
            tl.connected_at(ms(100));
            tl.statuses.push((ms(120), true));
            Dev(tl)
        }
        fn lost(mut self, at: u64) -> Dev {
            self.0.disconnected_at(ms(at));
            self.0.losses.push(ms(at));
            self
        }
        fn connack(mut self, at: u64) -> Dev {
            self.0.connected_at(ms(at));
            self
        }
        fn status(mut self, at: u64, online: bool) -> Dev {
            self.0.statuses.push((ms(at), online));
            self
        }
        fn crash(mut self, from: u64, to: Option<u64>) -> Dev {
            self.0.disconnected_at(ms(from));
            self.0.outages.push(Outage {
                index: None,
                cause: Cause::Dead,
                span: Span {
                    start: ms(from),
                    end: to.map(ms),
                },
            });
            self
        }
        fn fault(mut self, effect: Effect, from: u64, to: u64) -> Dev {
            self.0.outages.push(Outage {
                index: Some(0),
                cause: Cause::Fault(effect),
                span: Span::closed(ms(from), ms(to)),
            });
            self
        }
        fn figures(&self, down: &[(u64, u64)], p: &OfflineParams, end: u64) -> OfflineSamples {
            let down: Vec<_> = down.iter().map(|&(a, b)| (ms(a), ms(b))).collect();
            device_figures(&self.0, &down, p, ms(end))
        }
    }

    #[test]
    fn a_crash_reported_by_the_will_is_one_true_episode_and_a_detect_sample() {
        let dev = Dev::new()
            .crash(10_000, Some(13_000))
            .status(10_040, false)
            .connack(13_300)
            .status(13_320, true);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
        assert_eq!(s.detect, vec![d(40)]);
        assert_eq!((s.missed, s.detect_censored, s.deaths), (0, 0, 1));
        // Back at 13.3 s, online at 13.32 s: within settle, not stale.
        assert_eq!(s.stale, vec![Duration::ZERO]);
        // Shown online 10.0 → 10.04 s while dead.
        assert_eq!(s.false_online, Some(d(40)));
    }

    #[test]
    fn a_will_seen_a_moment_before_the_crash_is_stamped_reports_it() {
        let dev = Dev::new()
            .status(9_900, false)
            .crash(10_000, Some(13_000))
            .connack(13_300)
            .status(13_320, true);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed), (1, 0));
        assert_eq!(s.detect, vec![Duration::ZERO]);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
        // Earlier than the slack, the device was already shown offline.
        let dev = Dev::new().status(9_000, false).crash(10_000, None);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed), (0, 0));
    }

    #[test]
    fn a_crash_without_any_report_is_missed_and_censored() {
        let dev = Dev::new().crash(10_000, None);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.missed, s.detect_censored), (1, 1));
        assert!(s.detect.is_empty());
        assert_eq!((s.true_offline, s.false_offline), (0, 0));
        // Shown online from the crash to the end.
        assert_eq!(s.false_online, Some(d(50_000)));
    }

    #[test]
    fn a_will_delay_widens_the_window_by_the_delay() {
        // W = 8 s + a 6 s will delay: the will 13 s after the crash is the
        // delayed will working, not a missed one.
        let delayed = OfflineParams {
            will_delay: Duration::from_secs(6),
            ..params(true)
        };
        assert_eq!(delayed.detect_window(), Duration::from_secs(14));
        let dev = Dev::new().crash(10_000, None).status(23_000, false);
        let s = dev.figures(&[], &delayed, 60_000);
        assert_eq!((s.deaths, s.missed), (1, 0));
        assert_eq!(s.detect, vec![d(13_000)]);
        // Without the delay the same report is too late.
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!(s.missed, 1);
    }

    #[test]
    fn a_reboot_back_before_its_delayed_will_was_due_is_not_judged() {
        // Will delay 6 s, settle 5 s: a device back 4 s or 10 s after its
        // crash cancelled its will; one back after 12 s did not.
        let delayed = OfflineParams {
            will_delay: Duration::from_secs(6),
            ..params(true)
        };
        for back in [14_000, 20_000] {
            let dev = Dev::new().crash(10_000, Some(back)).connack(back + 100);
            let s = dev.figures(&[], &delayed, 60_000);
            assert_eq!(
                (s.deaths, s.missed, s.detect_censored),
                (1, 0, 0),
                "back at {back}"
            );
        }
        let dev = Dev::new().crash(10_000, Some(22_000)).connack(22_100);
        let s = dev.figures(&[], &delayed, 60_000);
        assert_eq!((s.deaths, s.missed, s.detect_censored), (1, 1, 1));
        // A plain will is due at once: the same 4 s reboot unreported is
        // missed.
        let dev = Dev::new().crash(10_000, Some(14_000)).connack(14_100);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed), (1, 1));
    }

    #[test]
    fn a_reboot_shorter_than_min_outage_reported_is_false_and_a_death_for_good_true() {
        // min_outage 30 s: a 3 s and a 20 s reboot reported at once are
        // blips; a 40 s one and one dead at the end (10 s before it) are
        // true.
        let p = OfflineParams {
            min_outage: Duration::from_secs(30),
            ..params(true)
        };
        let rebooted = |back: u64| {
            Dev::new()
                .crash(10_000, Some(back))
                .status(10_040, false)
                .connack(back + 100)
                .status(back + 120, true)
                .figures(&[], &p, 120_000)
        };
        for back in [13_000, 30_000] {
            let s = rebooted(back);
            assert_eq!((s.true_offline, s.false_offline), (0, 1), "back at {back}");
        }
        let s = rebooted(50_000);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
        let dev = Dev::new().crash(110_000, None).status(110_040, false);
        let s = dev.figures(&[], &p, 120_000);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
    }

    #[test]
    fn a_report_after_the_window_does_not_count_as_detection() {
        // W = 8 s: an offline 9 s after the crash is too late.
        let dev = Dev::new().crash(10_000, None).status(19_000, false);
        let s = dev.figures(&[], &params(true), 60_000);
        assert!(s.detect.is_empty());
        assert_eq!(s.missed, 1);
        // The late report is still a true offline (the device is dead).
        assert_eq!(s.true_offline, 1);
    }

    #[test]
    fn a_death_inside_observer_downtime_without_report_is_unobserved_not_missed() {
        let dev = Dev::new().crash(10_000, None);
        let s = dev.figures(&[(9_000, 11_000)], &params(true), 60_000);
        assert_eq!((s.missed, s.unobserved, s.detect_censored), (0, 1, 0));
        // False online time is counted only while the observer watched.
        assert_eq!(s.false_online, Some(d(49_000)));
    }

    #[test]
    fn a_death_too_close_to_the_end_is_not_judged() {
        let dev = Dev::new().crash(55_000, None);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed, s.unobserved), (1, 0, 0));
        assert!(s.detect.is_empty());
    }

    #[test]
    fn devices_without_a_will_miss_every_death_and_have_no_episodes() {
        let dev = Dev::new()
            .crash(10_000, Some(12_000))
            .connack(12_300)
            .fault(Effect::Down, 20_000, 40_000)
            .lost(20_001)
            .connack(40_200);
        let mut tl = dev.0;
        tl.statuses.clear();
        let s = device_figures(&tl, &[], &params(false), ms(60_000));
        assert_eq!((s.deaths, s.missed), (2, 2));
        assert_eq!((s.true_offline, s.false_offline), (0, 0));
        assert!(s.stale.is_empty());
        assert_eq!(s.false_online, None);
        assert!(s.detect.is_empty());
    }

    #[test]
    fn a_short_link_outage_without_a_report_is_neither_detected_nor_missed() {
        // Down 3 s < W 8 s, and the device is back at 13.2 s.
        let dev = Dev::new()
            .fault(Effect::Down, 10_000, 13_000)
            .lost(10_001)
            .connack(13_200);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed, s.detect_censored), (1, 0, 0));
        assert!(s.detect.is_empty());
    }

    #[test]
    fn a_blackhole_for_good_reported_by_keepalive_is_detected_late() {
        // Half-open from 10 s to the end: the broker's keepalive check
        // publishes the will 3.5 s later.
        let dev = Dev::new()
            .fault(Effect::Blackhole, 10_000, 60_000)
            .lost(12_900)
            .status(13_500, false);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!(s.detect, vec![d(3_500)]);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
        // Shown online for 3.5 s of the outage.
        assert_eq!(s.false_online, Some(d(3_500)));
    }

    #[test]
    fn broker_faults_are_no_deaths_but_make_an_offline_true_when_long_enough() {
        let long = Dev::new()
            .fault(Effect::BrokerDown, 10_000, 13_000)
            .lost(10_001)
            .status(10_002, false)
            .connack(13_200)
            .status(13_210, true);
        let s = long.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.true_offline, s.false_offline), (0, 1, 0));
        // A restart healed within min_outage (2 s) is a false offline.
        let short = Dev::new()
            .fault(Effect::BrokerDown, 10_000, 11_000)
            .lost(10_001)
            .status(10_002, false)
            .connack(11_200)
            .status(11_210, true);
        let s = short.figures(&[], &params(true), 60_000);
        assert_eq!((s.true_offline, s.false_offline), (0, 1));
    }

    #[test]
    fn an_offline_while_alive_and_reachable_is_false() {
        // Latency: the broker drops the device, the client notices too.
        let dev = Dev::new()
            .fault(Effect::Degraded, 10_000, 15_000)
            .lost(12_000)
            .status(12_900, false)
            .connack(15_100)
            .status(15_120, true)
            .status(30_000, false)
            .status(30_500, true);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.true_offline, s.false_offline), (0, 2));
        assert_eq!(s.deaths, 0);
        assert_eq!(s.false_online, Some(Duration::ZERO));
    }

    #[test]
    fn a_late_report_of_a_past_outage_is_still_true() {
        // Link down 10–13 s, the will arrives at the takeover on reconnect.
        let dev = Dev::new()
            .fault(Effect::Down, 10_000, 13_000)
            .lost(10_001)
            .connack(13_200)
            .status(13_205, false)
            .status(13_210, true);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.true_offline, s.false_offline), (1, 0));
        assert_eq!(s.detect, vec![d(3_205)]);
    }

    #[test]
    fn an_episode_left_open_after_the_device_is_back_is_stale_beyond_settle() {
        // Crash 10–12 s, back at 12.5 s, never republishes online.
        let dev = Dev::new()
            .crash(10_000, Some(12_000))
            .status(10_010, false)
            .connack(12_500);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!(s.true_offline, 1);
        // Open until the end (60 s); back since 12.5 s; stale from 17.5 s.
        assert_eq!(s.stale, vec![d(42_500)]);
        // Observer downtime inside it is not counted.
        let s = dev.figures(&[(30_000, 32_000)], &params(true), 60_000);
        assert_eq!(s.stale, vec![d(40_500)]);
    }

    #[test]
    fn a_zombie_connection_is_not_stale_time() {
        // Blackhole for good: the client believes it is connected until
        // 12.9 s, but the device is unreachable: nothing stale.
        let dev = Dev::new()
            .fault(Effect::Blackhole, 10_000, 60_000)
            .status(11_000, false)
            .lost(22_900);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!(s.stale, vec![Duration::ZERO]);
    }

    #[test]
    fn overlapping_crash_and_link_death_are_one_death() {
        let dev = Dev::new()
            .fault(Effect::Down, 10_000, 20_000)
            .crash(10_500, Some(25_000))
            .lost(10_001)
            .status(10_003, false);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!(s.deaths, 1);
        assert_eq!(s.detect, vec![d(3)]);
        assert_eq!(s.true_offline, 1);
    }

    #[test]
    fn a_death_of_a_device_already_shown_offline_is_not_judged() {
        let dev = Dev::new()
            .lost(5_000)
            .status(5_010, false)
            .connack(5_500)
            .crash(10_000, None);
        let s = dev.figures(&[], &params(true), 60_000);
        assert_eq!((s.deaths, s.missed), (0, 0));
    }

    #[test]
    fn keepalive_off_leaves_only_settle_for_the_report() {
        let p = OfflineParams {
            keepalive: None,
            min_outage: Duration::ZERO,
            ..params(true)
        };
        assert_eq!(p.detect_window(), Duration::from_secs(5));
        // Half-open for 8 s: never noticed, never reported.
        let dev = Dev::new().fault(Effect::Blackhole, 10_000, 18_000);
        let s = dev.figures(&[], &p, 60_000);
        assert_eq!((s.deaths, s.missed), (1, 1));
    }
}

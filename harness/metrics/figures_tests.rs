//! The connection and offline figures through the recorder, from events:
//! devices 0, 1 (profile `good`, group `group-a`, with a will) and 2, 3
//! (`nowill`, `group-b`, no will). Keepalive 2 s, settle 5 s (W = 8 s).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::history::LossCause;
use crate::plan::ScheduledFault;
use crate::report::Versions;
use crate::scenario::StreamSel;

const SCENARIO: &str = r#"
name = "unit"
duration = "60s"
min_outage = "2s"

[profiles.good]
keepalive = "2s"
will = { topic = "status/{device}", retain = true }
online_republish = true

[profiles.nowill]
keepalive = "2s"

[[fleets]]
name = "a"
count = 2
profile = "good"
group = "group-a"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]

[[fleets]]
name = "b"
count = 2
profile = "nowill"
group = "group-b"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]
"#;

fn ms(ms: u64) -> Nanos {
    Nanos(ms * 1_000_000)
}

fn plan(faults: Vec<(u64, u64, FaultKind, Option<&str>)>) -> Plan {
    let s = crate::scenario::load_str(Path::new("unit.toml"), SCENARIO).expect("scenario parses");
    let mut plan = Plan::resolve(&s, None);
    plan.faults = faults
        .into_iter()
        .enumerate()
        .map(|(index, (at, dur, kind, target))| ScheduledFault {
            index,
            at: Duration::from_millis(at),
            duration: Some(Duration::from_millis(dur)),
            kind,
            target: target.map(Into::into),
            groups: match target {
                Some(t) => vec![t.to_string()],
                None => vec!["group-a".into(), "group-b".into()],
            },
            devices: vec![],
            weather: None,
        })
        .collect();
    plan
}

fn dev(at: u64, device: DeviceId, what: DeviceEvent) -> Event {
    Event::Device {
        at: ms(at),
        device,
        what,
    }
}

fn up(at: u64, device: DeviceId) -> Event {
    dev(
        at,
        device,
        DeviceEvent::Connected {
            session_present: false,
        },
    )
}

fn lost(at: u64, device: DeviceId) -> Event {
    dev(
        at,
        device,
        DeviceEvent::ConnectionLost {
            cause: LossCause::PingTimeout,
        },
    )
}

fn status(at: u64, device: DeviceId, online: bool) -> Event {
    Event::Observer {
        at: ms(at),
        what: ObserverEvent::Status {
            device,
            online,
            via: "live".into(),
        },
    }
}

fn observer(at: u64, connected: bool) -> Event {
    Event::Observer {
        at: ms(at),
        what: if connected {
            ObserverEvent::Connected
        } else {
            ObserverEvent::Disconnected
        },
    }
}

fn received(at: u64, device: DeviceId) -> Event {
    Event::Observer {
        at: ms(at),
        what: ObserverEvent::Received {
            device,
            stream: 0,
            seq: at,
            t_intended: ms(at),
            qos: 1,
            dup: false,
        },
    }
}

fn fault(at: u64, index: usize, kind: &str, target: Option<&str>, applied: bool) -> Event {
    Event::Fault {
        at: ms(at),
        what: if applied {
            FaultEvent::Applied {
                index,
                kind: crate::scenario::FaultName::parse(kind).expect("a fault name"),
                target: target.map(Into::into),
                devices: vec![],
            }
        } else {
            FaultEvent::Healed { index }
        },
    }
}

/// An HDR statistic (3 significant digits) reads back within 0.1 %.
fn hdr(reported: Option<u64>, exact_us: u64) -> bool {
    reported.is_some_and(|v| v.abs_diff(exact_us) <= exact_us / 1000)
}

fn report(plan: &Plan, events: &[Event], end: u64) -> Report {
    let mut r = Recorder::new(plan);
    for e in events {
        r.record(e);
    }
    r.finish(
        ms(end),
        RunContext {
            scenario: "unit".into(),
            seed: 0,
            started_at: chrono::DateTime::from_timestamp(1_795_644_000, 0).expect("valid"),
            duration_s: 60.0,
            versions: Versions::default(),
            unobserved_s: None,
            slos: vec![],
        },
    )
}

fn start() -> Vec<Event> {
    let mut ev = vec![observer(1, true)];
    for d in 0..4 {
        ev.push(up(100, d));
    }
    ev.extend([status(120, 0, true), status(120, 1, true)]);
    ev
}

fn blackhole() -> FaultKind {
    FaultKind::Blackhole {
        stream: StreamSel::Both,
        toxicity: None,
    }
}

#[test]
fn a_blackhole_on_one_group_gives_that_group_zombie_and_detect_samples_only() {
    let plan = plan(vec![(10_000, 10_000, blackhole(), Some("group-a"))]);
    let mut ev = start();
    ev.extend([
        fault(10_000, 0, "blackhole", Some("group-a"), true),
        lost(12_500, 0),
        status(12_540, 0, false),
        // Device 1 never notices: censored, and the broker never reports.
        dev(15_000, 0, DeviceEvent::ConnectAttempt), // swallowed
        fault(20_000, 0, "blackhole", Some("group-a"), false),
        dev(20_300, 0, DeviceEvent::ConnectAttempt),
        up(20_400, 0),
        status(20_410, 0, true),
        received(20_600, 0),
        received(20_700, 1),
        lost(30_000, 2), // group-b, not hit: a flap, nothing else
    ]);
    let r = report(&plan, &ev, 60_000);
    let good = &r.profiles["good"];
    let zt = good.zombie_time.as_ref().expect("measured");
    assert_eq!((zt.count, zt.censored), (1, Some(1)));
    assert!(hdr(zt.max_us, 2_500_000), "{zt:?}");
    assert_eq!(good.zombie_undetected, Some(1));
    let bd = good.broker_detect_time.as_ref().expect("measured");
    assert_eq!((bd.count, bd.censored), (1, Some(1)));
    assert!(hdr(bd.max_us, 2_540_000), "{bd:?}");
    // Device 1: link gone 10 s ≥ W 8 s, no will seen.
    assert_eq!(good.missed_offline, Some(1));
    assert_eq!((good.true_offline, good.false_offline), (Some(1), Some(0)));
    assert_eq!(good.false_offline_rate, Some(0.0));
    // Shown online while blackholed: 2.54 s (device 0) and 10 s (device 1).
    let fo = good.false_online_time.as_ref().expect("measured");
    assert_eq!(fo.count, 2);
    assert!(
        hdr(fo.min_us, 2_540_000) && hdr(fo.max_us, 10_000_000),
        "{fo:?}"
    );
    let rt = good.resume_time.as_ref().expect("healed");
    assert_eq!((rt.count, rt.censored), (2, Some(0)));
    assert!(hdr(rt.max_us, 700_000), "{rt:?}");
    let fa = good.first_attempt_delay.as_ref().expect("healed");
    // Device 0 only: device 1 never lost its connection.
    assert_eq!((fa.count, fa.censored), (1, Some(0)));
    assert!(hdr(fa.max_us, 300_000), "{fa:?}");
    let os = good.outage_seen_by_client.as_ref().expect("exposed");
    assert_eq!((os.count, os.censored), (1, Some(0)));
    assert!(hdr(os.max_us, 7_900_000), "{os:?}");
    // group-b was not hit and has no will.
    let b = &r.profiles["nowill"];
    for (name, v) in [
        ("zombie_time", b.zombie_time.is_none()),
        ("broker_detect_time", b.broker_detect_time.is_none()),
        ("outage_seen_by_client", b.outage_seen_by_client.is_none()),
        ("true_offline", b.true_offline.is_none()),
        ("missed_offline", b.missed_offline.is_none()),
        ("false_online_time", b.false_online_time.is_none()),
    ] {
        assert!(v, "nowill.{name} should be null");
    }
    assert_eq!(r.totals.zombie_undetected, Some(1));
    assert_eq!(r.totals.missed_offline, Some(1));
}

#[test]
fn a_crash_of_a_device_without_a_will_is_missed() {
    let plan = plan(vec![]);
    let mut ev = start();
    ev.extend([
        dev(10_000, 2, DeviceEvent::Crashed),
        dev(12_000, 2, DeviceEvent::Restarted),
        up(12_300, 2),
    ]);
    let r = report(&plan, &ev, 60_000);
    assert_eq!(r.profiles["nowill"].missed_offline, Some(1));
    assert_eq!(r.profiles["nowill"].true_offline, None);
    assert_eq!(r.profiles["good"].missed_offline, None);
    assert_eq!(r.totals.missed_offline, Some(1));
    // Offline figures of the totals come from the devices with a will.
    assert_eq!(r.totals.true_offline, Some(0));
    assert_eq!(r.totals.false_offline_rate, None);
}

#[test]
fn a_death_while_the_observer_is_away_is_unobserved_not_missed() {
    let plan = plan(vec![]);
    let mut ev = start();
    ev.extend([
        observer(9_500, false),
        dev(10_000, 0, DeviceEvent::Crashed),
        observer(11_000, true),
    ]);
    let r = report(&plan, &ev, 60_000);
    let good = &r.profiles["good"];
    assert_eq!(good.missed_offline, Some(0));
    assert_eq!(good.offline_unobserved, Some(1));
    let bd = good.broker_detect_time.as_ref().expect("a death");
    assert_eq!((bd.count, bd.censored), (0, Some(0)));
    // Shown online while dead, counted only while the observer watched.
    let fo = good.false_online_time.as_ref().expect("wills");
    assert!(hdr(fo.max_us, 49_000_000), "{fo:?}");
}

#[test]
fn flapping_down_phases_are_rebuilt_from_the_plan() {
    // Down 1 s, up 3 s, for 8 s from 10 s: down 10–11 s and 14–15 s.
    let plan = plan(vec![(
        10_000,
        8_000,
        FaultKind::Flapping {
            down: Duration::from_secs(1),
            up: Duration::from_secs(3),
        },
        Some("group-a"),
    )]);
    let mut ev = start();
    ev.extend([
        fault(10_000, 0, "flapping", Some("group-a"), true),
        lost(10_001, 0),
        status(10_002, 0, false),
        up(11_200, 0),
        status(11_210, 0, true),
        // An offline at 16 s, outside any down phase's reach with its 1 s
        // outage (< min_outage 2 s): false.
        status(16_000, 1, false),
        status(16_500, 1, true),
        fault(18_000, 0, "flapping", Some("group-a"), false),
    ]);
    let r = report(&plan, &ev, 60_000);
    let good = &r.profiles["good"];
    // Each down phase lasts 1 s < min_outage: both reports are false.
    assert_eq!((good.true_offline, good.false_offline), (Some(0), Some(2)));
    assert_eq!(good.false_offline_rate, Some(1.0));
    // 2 of 2 false: the Wilson interval [0.34, 1].
    let ci = good.false_offline_rate_interval.expect("an interval");
    assert_eq!(ci.high, 1.0);
    assert!((ci.low - 0.342_380).abs() < 1e-5, "{ci:?}");
    // Both devices had one (2 of 2 devices), in 2 device-minutes: 2 false
    // reports per 2/1440 device-days.
    assert_eq!(good.devices_false_offline, Some(1.0));
    let per_day = good.false_offline_per_device_day.expect("measured");
    assert!((per_day - 2.0 / (2.0 / 1440.0)).abs() < 1e-6, "{per_day}");
    // Devices without a will have none of them.
    let nowill = &r.profiles["nowill"];
    assert_eq!(nowill.false_offline_rate_interval, None);
    assert_eq!(nowill.devices_false_offline, None);
    assert_eq!(nowill.false_offline_per_device_day, None);
    // In the totals, 2 of 4 devices.
    assert_eq!(r.totals.devices_false_offline, Some(0.5));
    // Device 1 was connected and shown online through both phases.
    let fo = good.false_online_time.as_ref().expect("wills");
    assert!(hdr(fo.max_us, 2_000_000), "{fo:?}");
    // Deaths of 1 s < W with no report: neither detected nor missed.
    assert_eq!(good.missed_offline, Some(0));
}

//! The recorder on hand-made histories of a four-device plan:
//! devices 0, 1 (profile `good`, group `group-a`), 2, 3 (`weak`, `group-b`).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::history::{LossCause, PublishOutcome};
use crate::plan::ScheduledFault;
use crate::report::{figures, SloStatus, Versions};
use crate::report::{Slo, SloOp};
use crate::scenario::FaultKind;

const SCENARIO: &str = r#"
name = "unit"
duration = "60s"
seed = 7

[profiles.good]
keepalive = "5s"

[profiles.weak]
keepalive = "5s"
ack = { wait = false }

[[fleets]]
name = "a"
count = 2
profile = "good"
group = "group-a"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]

[[fleets]]
name = "b"
count = 2
profile = "weak"
group = "group-b"
streams = [{ name = "t", topic = "t/{device}", qos = 1, rate = 1.0 }]

"#;

/// The timeline is set on the plan directly, so these tests do not depend
/// on the timeline's TOML form.
fn plan() -> Plan {
    let s = crate::scenario::load_str(Path::new("unit.toml"), SCENARIO).expect("scenario parses");
    let mut plan = Plan::resolve(&s, None);
    let fault =
        |index, at, duration: Option<u64>, kind, target: Option<&str>, devices| ScheduledFault {
            index,
            at: Duration::from_secs(at),
            duration: duration.map(Duration::from_secs),
            kind,
            target: target.map(Into::into),
            groups: match target {
                Some(t) => vec![t.to_string()],
                None => plan_groups(),
            },
            devices,
            weather: None,
        };
    plan.faults = vec![
        fault(0, 10, Some(5), FaultKind::LinkDown, Some("group-a"), vec![]),
        fault(1, 20, Some(2), FaultKind::BrokerRestart, None, vec![]),
        fault(
            2,
            30,
            None,
            FaultKind::DeviceCrash { devices: 1 },
            Some("group-b"),
            vec![2],
        ),
    ];
    plan
}

fn plan_groups() -> Vec<String> {
    vec!["group-a".into(), "group-b".into()]
}

fn ms(ms: u64) -> Nanos {
    Nanos(ms * 1_000_000)
}

fn dev(at: u64, device: DeviceId, what: DeviceEvent) -> Event {
    Event::Device {
        at: ms(at),
        device,
        what,
    }
}

fn connected(at: u64, device: DeviceId, session_present: bool) -> Event {
    dev(at, device, DeviceEvent::Connected { session_present })
}

fn lost(at: u64, device: DeviceId) -> Event {
    dev(
        at,
        device,
        DeviceEvent::ConnectionLost {
            cause: LossCause::Closed,
        },
    )
}

fn applied(at: u64, index: usize, kind: &str, target: Option<&str>) -> Event {
    Event::Fault {
        at: ms(at),
        what: FaultEvent::Applied {
            index,
            kind: crate::scenario::FaultName::parse(kind).expect("a fault name"),
            target: target.map(Into::into),
            devices: vec![],
        },
    }
}

fn healed(at: u64, index: usize) -> Event {
    Event::Fault {
        at: ms(at),
        what: FaultEvent::Healed { index },
    }
}

fn ctx(slos: Vec<Slo>) -> RunContext {
    RunContext {
        scenario: "unit".into(),
        seed: 7,
        started_at: chrono::DateTime::from_timestamp(1_795_644_000, 0).expect("valid time"),
        duration_s: 60.0,
        versions: Versions {
            harness: "test".into(),
            broker: "none".into(),
            faults: "none".into(),
        },
        unobserved_s: None,
        slos,
    }
}

fn run(events: &[Event], end_ms: u64, slos: Vec<Slo>) -> Report {
    let mut r = Recorder::new(&plan());
    for e in events {
        r.record(e);
    }
    r.finish(ms(end_ms), ctx(slos))
}

fn start_all() -> Vec<Event> {
    (0..4).map(|d| connected(100, d, false)).collect()
}

#[test]
fn reconnect_after_heal_counts_only_devices_still_down_at_the_heal() {
    let mut ev = start_all();
    ev.extend([
        applied(10_000, 0, "link_down", Some("group-a")),
        lost(10_100, 0),
        lost(10_200, 1),
        connected(12_000, 1, false), // back under the fault: not counted
        healed(15_000, 0),
        connected(15_500, 0, true),
    ]);
    let r = run(&ev, 60_000, vec![]);
    let good = r.profiles["good"]
        .reconnect_after_heal
        .clone()
        .expect("measured");
    assert_eq!(good.count, 1);
    assert_eq!(good.censored, Some(0));
    let p50 = good.p50_us.expect("one sample");
    assert!((499_500..=500_500).contains(&p50), "p50 {p50}");
    // group-b was not hit by the link fault.
    assert_eq!(r.profiles["weak"].reconnect_after_heal, None);
    assert_eq!(
        r.totals.reconnect_after_heal.as_ref().map(|d| d.count),
        Some(1)
    );
}

#[test]
fn a_broker_fault_hits_every_device_and_a_device_that_never_returns_is_censored() {
    let mut ev = start_all();
    ev.extend([applied(20_000, 1, "broker_restart", None)]);
    ev.extend((0..4).map(|d| lost(20_001 + d as u64, d)));
    ev.push(healed(22_000, 1));
    ev.extend([
        connected(22_300, 0, true),
        connected(22_400, 1, true),
        connected(23_000, 2, false),
    ]);
    let r = run(&ev, 60_000, vec![]);
    let good = r.profiles["good"]
        .reconnect_after_heal
        .clone()
        .expect("hit");
    let weak = r.profiles["weak"]
        .reconnect_after_heal
        .clone()
        .expect("hit");
    assert_eq!((good.count, good.censored), (2, Some(0)));
    assert_eq!((weak.count, weak.censored), (1, Some(1)));
    assert_eq!(
        r.totals
            .reconnect_after_heal
            .as_ref()
            .and_then(|d| d.censored),
        Some(1)
    );
    let max = weak.max_us.expect("one sample");
    assert!((999_000..=1_001_000).contains(&max), "max {max}");
    // Nothing was a flap: every loss happened under the broker fault.
    assert_eq!(r.totals.flaps, Some(0.0));
}

#[test]
fn a_loss_with_no_fault_on_the_device_is_a_flap_per_device_hour() {
    let mut ev = start_all();
    ev.extend([
        applied(10_000, 0, "link_down", Some("group-a")),
        lost(11_000, 2), // group-b is not hit: a flap
        lost(12_000, 0), // hit: not a flap
        healed(15_000, 0),
        connected(16_000, 0, false),
        connected(16_000, 2, false),
        lost(40_000, 3), // a flap
    ]);
    // One hour: 2 weak devices → 2 device-hours.
    let r = run(&ev, 3_600_000, vec![]);
    assert_eq!(r.profiles["weak"].flaps, Some(1.0));
    assert_eq!(r.profiles["good"].flaps, Some(0.0));
    assert_eq!(r.totals.flaps, Some(0.5));
}

fn fault_ev(at: u64, what: FaultEvent) -> Event {
    Event::Fault { at: ms(at), what }
}

fn requested(at: u64, index: usize) -> Event {
    fault_ev(at, FaultEvent::Requested { index })
}

fn heal_requested(at: u64, index: usize) -> Event {
    fault_ev(at, FaultEvent::HealRequested { index })
}

fn observer(at: u64, up: bool) -> Event {
    Event::Observer {
        at: ms(at),
        what: if up {
            ObserverEvent::Connected
        } else {
            ObserverEvent::Disconnected
        },
    }
}

/// Events stamped in µs, for the sub-millisecond races of a real backend.
fn lost_us(at_us: u64, device: DeviceId) -> Event {
    Event::Device {
        at: Nanos(at_us * 1_000),
        device,
        what: DeviceEvent::ConnectionLost {
            cause: LossCause::Closed,
        },
    }
}

fn causes(r: &Report) -> Vec<crate::health::Cause> {
    r.errors.iter().map(|e| e.cause).collect()
}

/// Every fault of the unit plan applied and healed on time, so a test of
/// one fault does not also find the others missing.
fn others_on_time(except: usize) -> Vec<Event> {
    let mut ev = Vec::new();
    if except != 0 {
        ev.extend([
            requested(10_000, 0),
            applied(10_001, 0, "link_down", Some("group-a")),
            healed(15_001, 0),
        ]);
    }
    if except != 1 {
        ev.extend([
            requested(20_000, 1),
            applied(20_001, 1, "broker_restart", None),
            healed(22_001, 1),
        ]);
    }
    if except != 2 {
        ev.extend([
            requested(30_000, 2),
            applied(30_001, 2, "device_crash", Some("group-b")),
        ]);
    }
    ev
}

#[test]
fn losses_between_the_request_and_the_confirmation_belong_to_the_fault() {
    // Toxiproxy closes a disabled proxy's connections 0.1-1.75 ms before
    // its answer arrives.
    let mut ev = start_all();
    ev.extend([
        requested(10_000, 0),
        lost_us(10_000_100, 0),
        lost_us(10_001_750, 1),
        applied(10_002, 0, "link_down", Some("group-a")),
        healed(15_000, 0),
        connected(15_300, 0, true),
        connected(15_400, 1, true),
    ]);
    ev.extend(others_on_time(0));
    let r = run(&ev, 3_600_000, vec![]);
    let good = &r.profiles["good"];
    let rah = good.reconnect_after_heal.clone().expect("measured");
    assert_eq!((rah.count, rah.censored), (2, Some(0)));
    assert_eq!(good.flaps, Some(0.0));
    let seen = good.outage_seen_by_client.clone().expect("measured");
    assert_eq!((seen.count, seen.censored), (2, Some(0)));
    let f0 = &r.faults[0];
    assert_eq!(
        (
            f0.scheduled_at_s,
            f0.requested_at_s,
            f0.started_at_s,
            f0.applied
        ),
        (Some(10.0), Some(10.0), Some(10.002), true)
    );
    assert_eq!(r.errors, vec![]);
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn a_loss_before_the_request_is_still_a_flap() {
    let mut ev = start_all();
    ev.extend([
        lost(19_990, 0), // before the broker restart was requested: a flap
        connected(19_995, 0, true),
        requested(20_000, 1),
        lost(20_001, 0),
        lost(20_002, 1),
        applied(20_050, 1, "broker_restart", None),
        healed(22_000, 1),
        connected(22_100, 0, false),
        connected(22_100, 1, false),
    ]);
    let r = run(&ev, 3_600_000, vec![]);
    assert_eq!(r.profiles["good"].flaps, Some(0.5));
}

#[test]
fn a_reconnect_before_the_heal_is_confirmed_counts_from_the_heal_s_request() {
    let mut ev = start_all();
    ev.push(requested(20_000, 1));
    ev.extend((0..4).map(|d| lost(20_001 + d as u64, d)));
    ev.extend([
        applied(20_050, 1, "broker_restart", None),
        heal_requested(22_000, 1),
        connected(22_003, 0, true), // before the backend answered the heal
        healed(22_010, 1),
        connected(22_300, 1, true),
        connected(22_400, 2, true),
        connected(22_500, 3, true),
    ]);
    ev.extend(others_on_time(1));
    let r = run(&ev, 60_000, vec![]);
    let rah = r.totals.reconnect_after_heal.clone().expect("measured");
    assert_eq!((rah.count, rah.censored), (4, Some(0)));
    let min = rah.min_us.expect("samples");
    assert!((2_990..=3_010).contains(&min), "min {min} µs");
    let max = rah.max_us.expect("samples");
    assert!((499_000..=501_000).contains(&max), "max {max} µs");
    assert_eq!(r.totals.flaps, Some(0.0));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.errors);
}

#[test]
fn a_loss_while_the_heal_is_applied_waits_for_a_reconnect_after_the_heal() {
    // Removing a `timeout` toxic closes the connection it held.
    let mut ev = start_all();
    ev.extend([
        requested(10_000, 0),
        applied(10_002, 0, "link_down", Some("group-a")),
        lost(10_010, 0),
        heal_requested(15_000, 0),
        lost(15_001, 1),
        healed(15_003, 0),
        connected(15_200, 0, false),
        connected(15_400, 1, false),
    ]);
    ev.extend(others_on_time(0));
    let r = run(&ev, 3_600_000, vec![]);
    let good = &r.profiles["good"];
    let rah = good.reconnect_after_heal.clone().expect("measured");
    assert_eq!((rah.count, rah.censored), (2, Some(0)));
    assert_eq!(good.flaps, Some(0.0));
}

#[test]
fn a_fault_confirmed_late_is_fault_late_with_its_lateness() {
    let mut ev = start_all();
    ev.extend([
        requested(10_000, 0),
        applied(11_500, 0, "link_down", Some("group-a")),
        healed(16_250, 0),
    ]);
    ev.extend(others_on_time(0));
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::FaultLate; 2]);
    assert_eq!(r.errors[0].at_s, Some(11.5));
    assert_eq!(
        r.errors[0].message,
        "timeline[0] link_down: confirmed 1.500 s after its scheduled start at 10.000 s (fault_tolerance 1 s)"
    );
    assert_eq!(r.errors[1].at_s, Some(16.25));
    assert!(
        r.errors[1]
            .message
            .contains("healed 1.250 s after its scheduled end at 15.000 s"),
        "{}",
        r.errors[1].message
    );
    assert_eq!(r.verdict, Verdict::Error);
    // Within the tolerance: nothing.
    let mut ev = start_all();
    ev.extend([
        requested(10_000, 0),
        applied(10_999, 0, "link_down", Some("group-a")),
        healed(15_900, 0),
    ]);
    ev.extend(others_on_time(0));
    assert_eq!(run(&ev, 60_000, vec![]).errors, vec![]);
}

#[test]
fn a_fault_never_confirmed_is_not_applied_and_never_reported_as_applied() {
    let mut ev = start_all();
    ev.extend([requested(20_000, 1), lost(20_001, 0)]);
    ev.extend(others_on_time(1));
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::FaultNotApplied]);
    assert_eq!(r.errors[0].at_s, Some(20.0));
    assert!(
        r.errors[0].message.contains("timeline[1] broker_restart"),
        "{}",
        r.errors[0].message
    );
    let f1 = &r.faults[1];
    assert_eq!(
        (
            f1.applied,
            f1.requested_at_s,
            f1.started_at_s,
            f1.scheduled_at_s
        ),
        (false, Some(20.0), None, Some(20.0))
    );
    assert_eq!(r.verdict, Verdict::Error);

    // Never even requested: listed, not applied.
    let mut ev = start_all();
    ev.extend(others_on_time(1));
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::FaultNotApplied]);
    assert_eq!(
        (r.faults[1].applied, r.faults[1].requested_at_s),
        (false, None)
    );

    // Scheduled after the run's end (cut short): not judged.
    let mut ev = start_all();
    ev.extend(
        others_on_time(2)
            .into_iter()
            .filter(|e| e.at() < ms(25_000)),
    );
    let r = run(&ev, 25_000, vec![]);
    assert_eq!(r.errors, vec![]);
}

#[test]
fn a_backend_failure_is_fault_backend_with_its_message() {
    let mut ev = start_all();
    ev.extend([
        requested(20_000, 1),
        fault_ev(
            20_400,
            FaultEvent::Failed {
                index: 1,
                error: "timeline[1] broker_restart: broker did not stop".into(),
                applied: false,
            },
        ),
    ]);
    ev.extend(others_on_time(1));
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(
        causes(&r),
        vec![
            crate::health::Cause::FaultBackend,
            crate::health::Cause::FaultNotApplied
        ]
    );
    assert_eq!(r.errors[0].at_s, Some(20.4));
    assert!(r.errors[0]
        .message
        .starts_with("timeline[1] broker_restart: broker did not stop"));
    assert!(!r.faults[1].applied);
}

#[test]
fn the_observer_down_ten_seconds_with_no_broker_fault_is_broker_unavailable() {
    let mut ev = start_all();
    ev.extend([observer(40_000, false), observer(50_000, true)]);
    ev.extend(others_on_time(9));
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::BrokerUnavailable]);
    assert_eq!(r.errors[0].at_s, Some(40.0));
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn the_observer_down_inside_a_broker_restart_is_nothing() {
    let mut ev = start_all();
    ev.extend(others_on_time(1));
    ev.extend([
        requested(20_000, 1),
        observer(20_001, false),
        applied(20_050, 1, "broker_restart", None),
        healed(22_000, 1),
        observer(23_500, true),
    ]);
    ev.sort_by_key(Event::at);
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(r.errors, vec![]);
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn a_broker_that_never_comes_back_is_broker_not_back_and_one_killed_for_good_unavailable() {
    let mut ev = start_all();
    ev.extend(others_on_time(1));
    ev.extend([
        requested(20_000, 1),
        observer(20_001, false),
        applied(20_050, 1, "broker_restart", None),
        healed(22_000, 1),
    ]);
    ev.sort_by_key(Event::at);
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::BrokerNotBack]);
    assert_eq!(r.errors[0].at_s, Some(27.0));
    // Killed behind the harness's back at 15 s, never back: the run used
    // to pass with 45 s unobserved.
    let mut ev = start_all();
    ev.extend(
        others_on_time(9)
            .into_iter()
            .filter(|e| e.at() < ms(15_000)),
    );
    ev.push(observer(15_000, false));
    let r = run(&ev, 14_000 + 46_000, vec![]);
    assert!(
        causes(&r).contains(&crate::health::Cause::BrokerUnavailable),
        "{:?}",
        r.errors
    );
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn a_crashed_device_losing_its_connection_is_not_a_flap() {
    let mut ev = start_all();
    ev.extend([
        applied(30_000, 2, "device_crash", Some("group-b")),
        lost(30_100, 2), // under the device fault
        healed(31_000, 2),
        dev(32_000, 3, DeviceEvent::Crashed),
        lost(32_001, 3), // crashed: ground truth explains it
    ]);
    let r = run(&ev, 3_600_000, vec![]);
    assert_eq!(r.profiles["weak"].flaps, Some(0.0));
    // Device faults are not link/broker episodes.
    assert_eq!(r.profiles["weak"].reconnect_after_heal, None);
    assert_eq!(r.profiles["weak"].reconnect_attempts, None);
}

#[test]
fn reconnect_attempts_count_attempts_during_an_episode_until_the_reconnect() {
    let mut ev = start_all();
    ev.extend([
        dev(5_000, 0, DeviceEvent::ConnectAttempt), // before: not counted
        applied(10_000, 0, "link_down", Some("group-a")),
        lost(10_100, 0),
        dev(10_600, 0, DeviceEvent::ConnectAttempt),
        dev(11_600, 0, DeviceEvent::ConnectAttempt),
        dev(11_700, 2, DeviceEvent::ConnectAttempt), // group-b: not hit
        healed(15_000, 0),
        dev(17_600, 0, DeviceEvent::ConnectAttempt), // after the heal, still down
        connected(17_650, 0, false),
        dev(18_000, 0, DeviceEvent::ConnectAttempt), // back: not counted
    ]);
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(r.profiles["good"].reconnect_attempts, Some(3));
    assert_eq!(r.profiles["weak"].reconnect_attempts, None);
    assert_eq!(r.totals.reconnect_attempts, Some(3));
}

#[test]
fn session_present_is_the_share_of_reconnects_that_resumed() {
    let mut ev = start_all(); // first connects are not reconnects
    ev.extend([
        lost(1_000, 0),
        connected(1_100, 0, true),
        lost(2_000, 0),
        connected(2_100, 0, false),
        lost(3_000, 1),
        connected(3_100, 1, true),
        lost(4_000, 1),
        connected(4_100, 1, true),
    ]);
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(r.profiles["good"].session_present, Some(0.75));
    assert_eq!(r.profiles["weak"].session_present, None);
    assert_eq!(r.totals.session_present, Some(0.75));
}

#[test]
fn faults_record_confirmed_times_and_failures() {
    let ev = [
        applied(10_004, 0, "link_down", Some("group-a")),
        healed(15_010, 0),
        Event::Fault {
            at: ms(20_000),
            what: FaultEvent::Failed {
                index: 1,
                error: "broker did not stop".into(),
                applied: false,
            },
        },
        applied(30_000, 2, "device_crash", Some("group-b")),
    ];
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(r.faults.len(), 3);
    let f0 = &r.faults[0];
    assert_eq!(
        (f0.kind.as_str(), f0.target.as_deref()),
        ("link_down", Some("group-a"))
    );
    assert_eq!(
        (f0.started_at_s, f0.healed_at_s, f0.applied),
        (Some(10.004), Some(15.01), true)
    );
    let f1 = &r.faults[1];
    assert_eq!(
        (f1.kind.as_str(), f1.applied, f1.started_at_s),
        ("broker_restart", false, None)
    );
    assert_eq!(f1.error.as_deref(), Some("broker did not stop"));
    let f2 = &r.faults[2];
    assert_eq!((f2.applied, f2.healed_at_s), (true, None));
}

#[test]
fn live_shows_connections_traffic_and_active_faults() {
    let mut r = Recorder::new(&plan());
    for e in start_all() {
        r.record(&e);
    }
    r.record(&applied(10_000, 0, "link_down", Some("group-a")));
    r.record(&lost(10_100, 0));
    for seq in 0..3 {
        r.record(&dev(
            seq,
            2,
            DeviceEvent::Published {
                stream: 0,
                seq,
                t_intended: ms(seq),
                qos: 1,
                attempt: 0,
            },
        ));
    }
    r.record(&Event::Observer {
        at: ms(5),
        what: ObserverEvent::Received {
            device: 2,
            stream: 0,
            seq: 1,
            t_intended: ms(1),
            qos: 1,
            dup: false,
        },
    });
    let live = r.live();
    assert_eq!(live.connected, 3);
    assert_eq!(live.devices, 4);
    assert_eq!((live.telemetry_sent, live.telemetry_delivered), (3, 1));
    assert_eq!(live.faults_active, vec!["link_down@group-a".to_string()]);
    r.record(&healed(15_000, 0));
    assert!(r.live().faults_active.is_empty());
}

#[test]
fn message_figures_are_kept_per_profile_and_summed_in_totals() {
    let mut ev = Vec::new();
    for (device, outcome) in [(0, PublishOutcome::Acked), (2, PublishOutcome::Unawaited)] {
        for seq in 0..4 {
            ev.push(dev(
                seq,
                device,
                DeviceEvent::Published {
                    stream: 0,
                    seq,
                    t_intended: ms(seq),
                    qos: 1,
                    attempt: 0,
                },
            ));
            ev.push(dev(
                seq + 1,
                device,
                DeviceEvent::Outcome {
                    stream: 0,
                    seq,
                    outcome,
                    ack_latency_ns: Some(1_000_000),
                },
            ));
            if seq != 3 {
                ev.push(Event::Observer {
                    at: ms(seq + 2),
                    what: ObserverEvent::Received {
                        device,
                        stream: 0,
                        seq,
                        t_intended: ms(seq),
                        qos: 1,
                        dup: false,
                    },
                });
            }
        }
    }
    let r = run(&ev, 60_000, vec![]);
    let good = &r.profiles["good"].telemetry;
    let weak = &r.profiles["weak"].telemetry;
    assert_eq!(
        (good.sent, good.acked, good.delivered, good.lost_after_ack),
        (4, 4, 3, 1)
    );
    assert_eq!(
        (weak.sent, weak.acked, weak.delivered, weak.silent_loss),
        (4, 0, 3, 1)
    );
    let t = &r.totals.telemetry;
    assert_eq!(
        (t.sent, t.delivered, t.lost_after_ack, t.silent_loss),
        (8, 6, 1, 1)
    );
    assert_eq!(t.e2e_latency.count, 6);
    assert_eq!(t.ack_latency.count, 4);
    assert_eq!(r.totals.commands.sent, 0);
}

#[test]
fn every_metrics_figure_is_in_totals_and_every_profile_and_unmeasured_ones_are_null() {
    let r = run(&start_all(), 60_000, vec![]);
    let json = serde_json::to_value(&r).expect("serialises");
    let mut sets = vec![("totals".to_string(), &json["totals"])];
    for (name, v) in json["profiles"].as_object().expect("profiles object") {
        sets.push((name.clone(), v));
    }
    assert_eq!(sets.len(), 3);
    for (name, set) in sets {
        let obj = set.as_object().expect("figures object");
        for (fig, kind) in figures::all() {
            let v = obj.get(fig).unwrap_or_else(|| panic!("{name} lacks {fig}"));
            match kind {
                figures::FigureKind::Count
                    if figures::MESSAGE_FIGURES.iter().any(|(n, _)| *n == fig) =>
                {
                    assert!(v.is_u64(), "{name}.{fig} = {v}")
                }
                figures::FigureKind::Duration if v.is_object() => {
                    for k in [
                        "count", "min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                    ] {
                        assert!(v.get(k).is_some(), "{name}.{fig} lacks {k}");
                    }
                }
                _ => {}
            }
        }
        for (fig, _) in figures::MESSAGE_FIGURES {
            assert!(
                obj["commands"].get(*fig).is_some(),
                "{name}.commands lacks {fig}"
            );
        }
        for fig in [
            "zombie_time",
            "zombie_undetected",
            "broker_detect_time",
            "outage_seen_by_client",
            "resume_time",
            "first_attempt_delay",
            "true_offline",
            "false_offline",
            "false_offline_rate",
            "stale_offline_time",
            "missed_offline",
            "false_online_time",
            // No fault, no reconnect in this run: not measured.
            "reconnect_after_heal",
            "reconnect_attempts",
            "session_present",
        ] {
            assert!(
                obj[fig].is_null(),
                "{name}.{fig} should be null, is {}",
                obj[fig]
            );
        }
    }
}

#[test]
fn slos_pass_fail_or_stay_unknown_and_unknown_fails_the_verdict() {
    let slo = |profile: Option<&str>, figure: &str, stat: Option<&str>, op, limit| Slo {
        profile: profile.map(Into::into),
        figure: figure.into(),
        stat: stat.map(Into::into),
        op,
        limit,
        text: figure.to_string(),
        expect_breach: false,
    };
    let mut ev = start_all();
    ev.extend([
        applied(10_000, 0, "link_down", Some("group-a")),
        lost(10_100, 0),
        healed(15_000, 0),
        connected(17_000, 0, false),
    ]);
    ev.extend(others_on_time(0));
    let passing = vec![
        slo(None, "lost_after_ack", None, SloOp::Eq, 0.0),
        slo(
            Some("good"),
            "reconnect_after_heal",
            Some("p99"),
            SloOp::Le,
            3_000_000.0,
        ),
    ];
    let r = run(&ev, 60_000, passing.clone());
    assert_eq!(r.verdict, Verdict::Pass);
    assert!(r.slo.iter().all(|s| s.status == SloStatus::Pass));
    assert_eq!(r.slo[0].observed, Some(0.0));

    let mut failing = passing.clone();
    failing.push(slo(
        Some("good"),
        "reconnect_after_heal",
        None,
        SloOp::Lt,
        1_000_000.0,
    ));
    let r = run(&ev, 60_000, failing);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.slo[2].status, SloStatus::Fail);
    assert_eq!(r.slo[2].pass, Some(false));

    let mut unknown = passing;
    unknown.push(slo(None, "zombie_time", Some("p99"), SloOp::Le, 1.0));
    let r = run(&ev, 60_000, unknown);
    assert_eq!(r.slo[2].status, SloStatus::Unknown);
    assert_eq!((r.slo[2].pass, r.slo[2].observed), (None, None));
    assert_eq!(r.verdict, Verdict::Fail);
}

fn published_at(at: u64, device: DeviceId, seq: u64, intended: u64, attempt: u32) -> Event {
    dev(
        at,
        device,
        DeviceEvent::Published {
            stream: 0,
            seq,
            t_intended: ms(intended),
            qos: 1,
            attempt,
        },
    )
}

#[test]
fn a_fleet_behind_its_schedule_is_schedule_lag_once_per_episode() {
    let mut ev = start_all();
    ev.extend(others_on_time(99));
    ev.extend([
        published_at(1_000, 0, 0, 1_000, 0),
        // A retry long after its slot is by design, not lag.
        published_at(5_000, 0, 0, 1_000, 1),
        published_at(7_500, 1, 0, 6_000, 0),
        published_at(7_600, 1, 1, 6_100, 0),
        published_at(8_000, 1, 2, 7_900, 0),
        published_at(12_000, 0, 1, 10_000, 0),
    ]);
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(
        causes(&r),
        vec![
            crate::health::Cause::ScheduleLag,
            crate::health::Cause::ScheduleLag
        ]
    );
    assert_eq!(r.errors[0].at_s, Some(7.5));
    assert!(
        r.errors[0].message.contains("device 1") && r.errors[0].message.contains("1.50 s"),
        "{}",
        r.errors[0].message
    );
    assert_eq!(r.errors[1].at_s, Some(12.0));
    assert_eq!(r.verdict, Verdict::Error);
}

#[test]
fn a_command_sender_behind_its_schedule_is_schedule_lag() {
    let mut ev = start_all();
    ev.extend(others_on_time(99));
    ev.push(Event::Observer {
        at: ms(4_000),
        what: ObserverEvent::CommandPublished {
            device: 0,
            stream: 0,
            seq: 0,
            t_intended: ms(2_500),
            qos: 1,
        },
    });
    let r = run(&ev, 60_000, vec![]);
    assert_eq!(causes(&r), vec![crate::health::Cause::ScheduleLag]);
    assert!(r.errors[0]
        .message
        .starts_with("the command sender published 1.50 s"));
}

#[test]
fn a_loss_beside_another_holders_connack_is_a_takeover_and_a_flap() {
    // `weak` shares one client id: devices 2 and 3 throw each other out.
    let text = SCENARIO.replace(
        "ack = { wait = false }",
        "ack = { wait = false }\nclient_id = { fixed = \"shared\" }",
    );
    let s = crate::scenario::load_str(Path::new("unit.toml"), &text).expect("scenario parses");
    let mut plan = Plan::resolve(&s, None);
    plan.faults = vec![ScheduledFault {
        index: 0,
        at: Duration::from_secs(10),
        duration: Some(Duration::from_secs(5)),
        kind: FaultKind::ClientIdConflict { devices: 1 },
        target: Some("group-a".into()),
        groups: vec!["group-a".into()],
        devices: vec![0],
        weather: None,
    }];
    let mut r = Recorder::new(&plan);
    let mut ev = start_all();
    ev.extend([
        // 3 connects: 2 is thrown out 2 ms later; 2 comes back, 3 goes.
        connected(1_000, 3, false),
        lost(1_002, 2),
        connected(2_000, 2, false),
        lost(2_001, 3),
        // A loss of 3 with nobody else connecting near it: a flap only.
        lost(6_000, 3),
        connected(6_500, 3, false),
        // The conflict on device 0: its intruder takes the id twice.
        applied(10_000, 0, "client_id_conflict", Some("group-a")),
        dev(10_010, 0, DeviceEvent::IntruderConnected),
        lost(10_012, 0),
        connected(10_300, 0, false),
        dev(11_400, 0, DeviceEvent::IntruderConnected),
        lost(11_401, 0),
        healed(15_000, 0),
        connected(15_100, 0, false),
    ]);
    for e in &ev {
        r.record(e);
    }
    let rep = r.finish(ms(60_000), ctx(vec![]));
    assert_eq!(rep.profiles["weak"].takeovers, Some(2));
    assert_eq!(rep.profiles["good"].takeovers, Some(2));
    assert_eq!(rep.totals.takeovers, Some(4));
    // Every one is a flap too (no link or broker fault), and so is the
    // lone loss: 3 flaps of `weak`, 2 of `good`, per device-hour of 60 s.
    let per_device_hour = |n: f64| n / (2.0 * 60.0 / 3600.0);
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    assert!(close(rep.profiles["weak"].flaps, per_device_hour(3.0)));
    assert!(close(rep.profiles["good"].flaps, per_device_hour(2.0)));
}

#[test]
fn commands_for_a_device_crashed_for_good_are_undeliverable() {
    let cmd = |at: u64, device: DeviceId, seq: u64| Event::Observer {
        at: ms(at),
        what: ObserverEvent::CommandPublished {
            device,
            stream: 0,
            seq,
            t_intended: ms(at),
            qos: 1,
        },
    };
    let acked = |at: u64, device: DeviceId, seq: u64| Event::Observer {
        at: ms(at),
        what: ObserverEvent::CommandOutcome {
            device,
            stream: 0,
            seq,
            outcome: PublishOutcome::Acked,
        },
    };
    let mut ev = start_all();
    ev.extend([
        // Device 3 (alive) misses one: lost_after_ack.
        cmd(5_000, 3, 0),
        acked(5_001, 3, 0),
        applied(30_000, 2, "device_crash", Some("group-b")),
        dev(30_001, 2, DeviceEvent::Crashed),
        // Device 2 is dead for good (the crash has no duration).
        cmd(31_000, 2, 0),
        acked(31_001, 2, 0),
        cmd(32_000, 2, 1),
        acked(32_001, 2, 1),
    ]);
    let r = run(&ev, 60_000, vec![]);
    let c = &r.profiles["weak"].commands;
    assert_eq!((c.undeliverable, c.lost_after_ack), (2, 1), "{c:?}");
    assert_eq!(r.totals.commands.undeliverable, 2);
}

//! Interval cuts on hand-made histories of a four-device plan: devices 0, 1
//! (profile `good`, group `group-a`), 2, 3 (`weak`, `group-b`).

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::history::PublishOutcome;
use crate::history::{DeviceEvent, DeviceId, Event, FaultEvent, LossCause, ObserverEvent};
use crate::plan::{Plan, ScheduledFault};
use crate::report::{RunContext, Versions};
use crate::scenario::FaultKind;

const SCENARIO: &str = r#"
name = "unit"
duration = "60s"
seed = 7
interval = "10s"

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

[slo]
lost_after_ack = "= 0"
"#;

pub(crate) fn plan() -> Plan {
    let s = crate::scenario::load_str(Path::new("unit.toml"), SCENARIO).expect("scenario parses");
    let mut plan = Plan::resolve(&s, None);
    plan.faults = vec![ScheduledFault {
        index: 0,
        at: Duration::from_secs(10),
        duration: Some(Duration::from_secs(5)),
        kind: FaultKind::LinkDown,
        target: Some("group-a".into()),
        groups: vec!["group-a".into()],
        devices: vec![],
        weather: None,
    }];
    plan
}

fn ms(ms: u64) -> Nanos {
    Nanos(ms * 1_000_000)
}

fn started_at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_644_000, 0).expect("valid time")
}

fn versions() -> Versions {
    Versions {
        harness: "test".into(),
        broker: "none".into(),
        faults: "none".into(),
    }
}

pub(crate) fn run_info(plan: &Plan) -> RunInfo {
    RunInfo {
        schema_version: SCHEMA_VERSION,
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at: crate::report::rfc3339(started_at()),
        versions: versions(),
        devices: plan.devices.len() as u32,
        profiles: plan
            .devices_by_profile()
            .into_iter()
            .map(|(p, ids)| (p.to_string(), ids.len() as u32))
            .collect(),
        histograms: BTreeMap::new(),
        resolved_scenario: plan.scenario.clone(),
        intervals_format: FORMAT,
        shard: None,
        merged_from: Vec::new(),
    }
}

fn ctx(plan: &Plan, end: Nanos) -> RunContext {
    RunContext {
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        started_at: started_at(),
        duration_s: end.as_duration().min(plan.scenario.duration).as_secs_f64(),
        versions: versions(),
        unobserved_s: None,
        slos: crate::scenario::slos(&plan.scenario),
    }
}

fn dev(at: u64, device: DeviceId, what: DeviceEvent) -> Event {
    Event::Device {
        at: ms(at),
        device,
        what,
    }
}

fn published(at: u64, device: DeviceId, seq: u64) -> Event {
    dev(
        at,
        device,
        DeviceEvent::Published {
            stream: 0,
            seq,
            t_intended: ms(at),
            qos: 1,
            attempt: 0,
        },
    )
}

fn outcome(at: u64, device: DeviceId, seq: u64, outcome: PublishOutcome) -> Event {
    dev(
        at,
        device,
        DeviceEvent::Outcome {
            stream: 0,
            seq,
            outcome,
            ack_latency_ns: Some(2_000_000),
        },
    )
}

fn received(at: u64, device: DeviceId, seq: u64, t_intended: u64) -> Event {
    Event::Observer {
        at: ms(at),
        what: ObserverEvent::Received {
            device,
            stream: 0,
            seq,
            t_intended: ms(t_intended),
            qos: 1,
            dup: false,
        },
    }
}

fn observer(at: u64, what: ObserverEvent) -> Event {
    Event::Observer { at: ms(at), what }
}

fn fault(at: u64, what: FaultEvent) -> Event {
    Event::Fault { at: ms(at), what }
}

/// A history with a bit of everything: steady traffic, a link outage on
/// group-a (losses, some recovered late), a reconnect after the heal, a
/// flap, an observer gap, duplicates, an unknown device, and messages
/// still pending at the end.
pub(crate) fn history() -> Vec<Event> {
    let mut ev: Vec<Event> = (0..4)
        .map(|d| {
            dev(
                100,
                d,
                DeviceEvent::Connected {
                    session_present: false,
                },
            )
        })
        .collect();
    for d in 0..4u32 {
        let outcome_of = if d < 2 {
            PublishOutcome::Acked
        } else {
            PublishOutcome::Unawaited
        };
        for seq in 0..40u64 {
            let t = 1_000 + seq * 1_000;
            ev.push(published(t, d, seq));
            ev.push(outcome(t + 5, d, seq, outcome_of));
            // group-a loses what it sent during the outage (10 s – 15 s);
            // seqs 10 and 11 arrive late, after the heal, in a later interval.
            let lost = d < 2 && (10..15).contains(&(t / 1_000)) && seq != 10 && seq != 11;
            if !lost && !(d < 2 && (seq == 10 || seq == 11)) {
                ev.push(received(t + 20 + u64::from(d), d, seq, t));
            }
            if seq == 5 && d == 3 {
                ev.push(received(t + 40, d, seq, t)); // a duplicate
            }
        }
    }
    ev.push(fault(
        10_000,
        FaultEvent::Applied {
            index: 0,
            kind: crate::scenario::FaultName::LinkDown,
            target: Some("group-a".into()),
            devices: vec![],
        },
    ));
    for d in 0..2 {
        ev.push(dev(
            10_500,
            d,
            DeviceEvent::ConnectionLost {
                cause: LossCause::Closed,
            },
        ));
        ev.push(dev(11_000, d, DeviceEvent::ConnectAttempt));
        ev.push(dev(16_000, d, DeviceEvent::ConnectAttempt));
    }
    ev.push(fault(15_000, FaultEvent::Healed { index: 0 }));
    ev.push(dev(
        16_200,
        0,
        DeviceEvent::Connected {
            session_present: true,
        },
    ));
    // Device 1 never comes back: censored.
    for d in 0..2 {
        for seq in [10, 11] {
            ev.push(received(25_000, d, seq, 1_000 + seq * 1_000));
        }
    }
    // A flap on group-b.
    ev.push(dev(
        30_000,
        2,
        DeviceEvent::ConnectionLost {
            cause: LossCause::Closed,
        },
    ));
    ev.push(dev(
        30_300,
        2,
        DeviceEvent::Connected {
            session_present: false,
        },
    ));
    // The collector away for 2 s.
    ev.push(observer(33_000, ObserverEvent::Disconnected));
    ev.push(observer(35_000, ObserverEvent::Connected));
    // An event naming no device of the plan.
    ev.push(dev(36_000, 99, DeviceEvent::ConnectAttempt));
    // Pending at the end: published, no outcome, never received.
    ev.push(published(50_000, 0, 40));
    ev.push(published(50_000, 2, 40));
    ev.sort_by_key(Event::at);
    ev
}

fn at_of(e: &Event) -> Nanos {
    e.at()
}

/// Record `events`, cutting every `every_ms`, and the last cut at `end_ms`:
/// what each cut wrote, and the report.
pub(crate) fn cut_lines(events: &[Event], every_ms: u64, end_ms: u64) -> (Vec<Cut>, Report) {
    let plan = plan();
    let mut r = Recorder::new(&plan);
    let mut cuts = Vec::new();
    let mut next = every_ms;
    for e in events {
        while at_of(e) > ms(next) && next < end_ms {
            cuts.push(r.cut_interval(ms(next)));
            next += every_ms;
        }
        r.record(e);
    }
    while next < end_ms {
        cuts.push(r.cut_interval(ms(next)));
        next += every_ms;
    }
    cuts.push(r.cut_last_interval(ms(end_ms)));
    let report = r.finish(ms(end_ms), ctx(&plan, ms(end_ms)));
    (cuts, report)
}

/// [`cut_lines`], folded into intervals.
fn cut_run(events: &[Event], every_ms: u64, end_ms: u64) -> (Vec<IntervalRecord>, Report) {
    let (cuts, report) = cut_lines(events, every_ms, end_ms);
    let intervals = fold(cuts.iter().flat_map(Cut::lines)).expect("the cuts fold");
    (intervals, report)
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).expect("a report serialises")
}

#[test]
fn the_intervals_of_a_run_add_up_to_its_report_figure_for_figure() {
    let (intervals, report) = cut_run(&history(), 5_000, 62_000);
    assert_eq!(intervals.len(), 13);
    let rebuilt = report_of(&run_info(&plan()), &[], &intervals);
    assert_eq!(json(&rebuilt), json(&report));
    // The history did exercise the figures compared.
    let good = &report.profiles["good"];
    assert_eq!(good.telemetry.lost_after_ack, 6);
    assert_eq!(good.telemetry.lost_unacked, 1);
    assert_eq!(report.profiles["weak"].telemetry.duplicates, 1);
    assert_eq!(good.reconnect_after_heal.as_ref().unwrap().count, 1);
    assert_eq!(
        good.reconnect_after_heal.as_ref().unwrap().censored,
        Some(1)
    );
    assert_eq!(report.unobserved_s, 2.0);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].cause, crate::health::Cause::Internal);
    // An event naming a device not in the plan is a harness error: the
    // verdict is `error`, whatever the SLOs say (METRICS.md, Verdicts).
    assert_eq!(report.verdict, Verdict::Error);
}

#[test]
fn the_sum_is_exact_however_the_run_is_cut() {
    for every in [1_000, 7_000, 30_000, 100_000] {
        let (intervals, report) = cut_run(&history(), every, 62_000);
        let rebuilt = report_of(&run_info(&plan()), &[], &intervals);
        assert_eq!(json(&rebuilt), json(&report), "cut every {every} ms");
    }
}

#[test]
fn a_loss_recovered_later_is_taken_back_from_the_interval_it_was_intended_in() {
    let (cuts, _) = cut_lines(&history(), 5_000, 62_000);
    // (5 s, 10 s]: seq 9 of both group-a devices (intended at 10 s) was
    // acked and never received. (10 s, 15 s]: seqs 10..=13 (11 s … 14 s).
    let line = |i: usize| &cuts[i].interval.profiles["good"].telemetry;
    assert_eq!(line(2).lost_after_ack, 8);
    // Seq 9's loss was decided after its cut: the cut at 15 s amends it.
    let amendment = |cut: usize, of: u64| {
        cuts[cut]
            .amendments
            .iter()
            .find(|a| a.amends == of)
            .map(|a| a.profiles["good"].telemetry)
    };
    assert_eq!(amendment(2, 1).map(|t| t.lost_after_ack), Some(2));
    // Seqs 10 and 11 of both arrive at 25 s: the cut at 25 s takes the
    // four losses back from (10 s, 15 s], not from its own interval.
    let late = amendment(4, 2).expect("interval 2 amended at 25 s");
    assert_eq!((late.lost_after_ack, late.delivered), (-4, 4));
    assert_eq!(line(4).lost_after_ack, 0);
    assert!(cuts.iter().all(|c| c
        .interval
        .profiles
        .values()
        .all(|p| p.telemetry.lost_after_ack >= 0 && p.telemetry.delivered >= 0)));

    // Folded, each interval holds the fate of the messages intended in it.
    let (intervals, report) = cut_run(&history(), 5_000, 62_000);
    let lost: Vec<i64> = intervals
        .iter()
        .map(|r| r.profiles["good"].telemetry.lost_after_ack)
        .collect();
    assert_eq!(lost, [0, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(report.profiles["good"].telemetry.lost_after_ack, 6);
    // (10 s, 15 s]: 5 s × 2 devices sent; seqs 10 and 11 delivered late.
    let good = &intervals[2].profiles["good"].telemetry;
    assert_eq!((good.sent, good.delivered), (10, 6));
}

#[test]
fn pending_messages_are_decided_by_the_last_cut_into_their_own_interval() {
    let (cuts, _) = cut_lines(&history(), 5_000, 62_000);
    let last = cuts.last().unwrap();
    assert!(last.interval.last);
    assert!(cuts[..cuts.len() - 1].iter().all(|c| !c.interval.last));
    // Seq 40 of devices 0 and 2, intended at 50 s, had no outcome: unknown,
    // so lost_unacked, decided at the end into (45 s, 50 s].
    let a = last
        .amendments
        .iter()
        .find(|a| a.amends == 9)
        .expect("the last cut amends interval 9");
    assert_eq!(a.profiles["good"].telemetry.lost_unacked, 1);
    assert_eq!(a.profiles["weak"].telemetry.lost_unacked, 1);
    assert_eq!(last.interval.profiles["good"].telemetry.lost_unacked, 0);
    let before: i64 = cuts[..cuts.len() - 1]
        .iter()
        .flat_map(Cut::lines)
        .map(|l| match l {
            Line::Interval(r) => r.profiles["good"].telemetry.lost_unacked,
            Line::Amendment(a) => a
                .profiles
                .get("good")
                .map_or(0, |p| p.telemetry.lost_unacked),
        })
        .sum();
    assert_eq!(before, 0);
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    assert_eq!(intervals[9].profiles["good"].telemetry.lost_unacked, 1);
}

#[test]
fn an_interval_histogram_holds_the_samples_of_the_messages_intended_in_it() {
    let (intervals, report) = cut_run(&history(), 5_000, 62_000);
    let counts: Vec<u64> = intervals
        .iter()
        .map(|r| r.profiles["weak"].histograms.e2e_latency.len())
        .collect();
    // 2 devices × 1 message/s, counted by t_intended: the first interval
    // holds seqs 0..=4 (1 s … 5 s; seq 4 arrives at 5.02 s, after the cut).
    assert_eq!(counts[0], 10);
    assert_eq!(counts[1], 10);
    assert_eq!(
        counts.iter().sum::<u64>(),
        report.profiles["weak"].telemetry.e2e_latency.count
    );
    let rah: Vec<u64> = intervals
        .iter()
        .map(|r| r.profiles["good"].histograms.reconnect_after_heal.len())
        .collect();
    // Device 0's reconnect at 16.2 s belongs to the link outage that
    // started at 10 s, in (5 s, 10 s].
    assert_eq!(rah, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn exposure_heal_and_the_censored_gauge_follow_the_fault() {
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    let good = |i: usize| &intervals[i].profiles["good"];
    let exposed: Vec<bool> = (0..intervals.len()).map(|i| good(i).exposed).collect();
    // In force from 10 s to 15 s: intervals (5,10], (10,15], (15,20] (healed at its start).
    assert_eq!(&exposed[..5], [false, true, true, true, false]);
    let healed: Vec<usize> = (0..intervals.len()).filter(|&i| good(i).healed).collect();
    assert_eq!(healed, [2]);
    assert!(intervals.iter().all(|r| !r.profiles["weak"].exposed));
    assert_eq!(good(2).awaiting_reconnect, 2);
    assert_eq!(good(3).awaiting_reconnect, 1);
    assert_eq!(good(12).awaiting_reconnect, 1);
    let attempts: i64 = intervals
        .iter()
        .map(|r| r.profiles["good"].reconnect_attempts)
        .sum();
    assert_eq!(attempts, 4);
}

#[test]
fn fault_records_appear_in_the_interval_they_change_in() {
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    let with_faults: Vec<u64> = intervals
        .iter()
        .filter(|r| !r.faults.is_empty())
        .map(|r| r.index)
        .collect();
    assert_eq!(with_faults, [1, 2]);
    assert_eq!(intervals[1].faults[0].healed_at_s, None);
    assert_eq!(intervals[2].faults[0].healed_at_s, Some(15.0));
}

#[test]
fn windows_that_tile_a_run_share_its_counts_out_exactly() {
    let (intervals, report) = cut_run(&history(), 5_000, 62_000);
    let info = run_info(&plan());
    let (a, b) = intervals.split_at(4);
    let first = report_of(&info, &[], a);
    let second = report_of(&info, a, b);
    let t = |r: &Report| r.profiles["good"].telemetry.clone();
    assert_eq!(t(&first).sent + t(&second).sent, t(&report).sent);
    assert_eq!(
        t(&first).delivered + t(&second).delivered,
        t(&report).delivered
    );
    assert_eq!(
        t(&first).e2e_latency.count + t(&second).e2e_latency.count,
        t(&report).e2e_latency.count
    );
    assert_eq!(first.duration_s, 20.0);
    assert_eq!(second.duration_s, 40.0);
    // The fault changed only in the first window and was over before the second.
    assert_eq!(first.faults.len(), 1);
    assert!(second.faults.is_empty());
    // The first window's reconnect is there; the second has no heal of its own.
    assert!(first.profiles["good"].reconnect_after_heal.is_some());
    assert!(second.profiles["good"].reconnect_after_heal.is_none());
    assert_eq!(second.profiles["good"].reconnect_attempts, None);
}

#[test]
fn a_window_holds_exactly_the_messages_intended_in_it_whenever_decided() {
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    let info = run_info(&plan());
    // (20 s, 25 s] alone: its own traffic, all delivered; the four late
    // arrivals at 25 s belong to (10 s, 15 s].
    let w = report_of(&info, &intervals[..4], &intervals[4..5]);
    let good = &w.profiles["good"].telemetry;
    assert_eq!(
        (good.sent, good.delivered, good.lost_after_ack),
        (10, 10, 0)
    );
    assert_eq!(w.errors, vec![]);
    let w = report_of(&info, &intervals[..2], &intervals[2..3]);
    let good = &w.profiles["good"].telemetry;
    assert_eq!((good.sent, good.delivered, good.lost_after_ack), (10, 6, 4));
    assert_eq!(good.e2e_latency.count, 6);
}

#[test]
fn the_connected_gauge_follows_the_devices_and_a_sum_keeps_the_later_value() {
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    let gauge = |p: &str| -> Vec<Option<u64>> {
        intervals.iter().map(|r| r.profiles[p].connected).collect()
    };
    // group-a: both lost at 10.5 s, device 0 back at 16.2 s, device 1 never.
    let good = gauge("good");
    assert_eq!(&good[..5], [Some(2), Some(2), Some(0), Some(1), Some(1)]);
    assert_eq!(good.last(), Some(&Some(1)));
    // group-b: device 2 lost at 30 s (the cut at 30 s, interval 5, sees it),
    // back at 30.3 s.
    let weak = gauge("weak");
    assert_eq!(&weak[4..7], [Some(2), Some(1), Some(2)]);

    let mut sum = ProfileInterval::default();
    for r in &intervals[..4] {
        sum.add(&r.profiles["good"]);
    }
    assert_eq!(sum.connected, Some(1), "a gauge, not a sum");
}

#[test]
fn an_interval_line_written_before_the_connected_gauge_reads_it_as_null() {
    let (intervals, _) = cut_run(&history(), 5_000, 62_000);
    let mut line = serde_json::to_value(&intervals[0]).expect("serialises");
    let good = line["profiles"]["good"]
        .as_object_mut()
        .expect("a profile object");
    assert_eq!(good.remove("connected"), Some(serde_json::json!(2)));
    let old: IntervalRecord = serde_json::from_value(line).expect("an old line still reads");
    assert_eq!(old.profiles["good"].connected, None);
    assert_eq!(old.profiles["weak"].connected, Some(2));
}

#[test]
fn the_run_s_health_is_in_the_interval_it_is_first_seen_in_and_in_the_rebuilt_report() {
    // The link outage confirmed 1.5 s late, its losses before the
    // confirmation, and the observer away 10 s with no broker fault.
    let mut ev: Vec<Event> = history()
        .into_iter()
        .filter(|e| {
            !matches!(
                e,
                Event::Fault {
                    what: FaultEvent::Applied { .. },
                    ..
                }
            )
        })
        .filter(|e| {
            !matches!(
                e,
                Event::Observer {
                    what: ObserverEvent::Connected | ObserverEvent::Disconnected,
                    ..
                }
            )
        })
        .collect();
    ev.push(fault(10_000, FaultEvent::Requested { index: 0 }));
    ev.push(fault(
        11_500,
        FaultEvent::Applied {
            index: 0,
            kind: crate::scenario::FaultName::LinkDown,
            target: Some("group-a".into()),
            devices: vec![],
        },
    ));
    ev.push(observer(40_000, ObserverEvent::Disconnected));
    ev.push(observer(50_000, ObserverEvent::Connected));
    ev.sort_by_key(Event::at);
    let (intervals, report) = cut_run(&ev, 5_000, 62_000);
    let rebuilt = report_of(&run_info(&plan()), &[], &intervals);
    assert_eq!(json(&rebuilt), json(&report));
    let causes: Vec<_> = report.errors.iter().map(|e| e.cause).collect();
    use crate::health::Cause;
    assert_eq!(
        causes,
        vec![Cause::FaultLate, Cause::BrokerUnavailable, Cause::Internal]
    );
    // Each in the interval it was decided in: the late confirmation at
    // 11.5 s, the outage once it outlasted its bound (45 s + the cut's slack).
    let first_seen = |c: Cause| {
        intervals
            .iter()
            .position(|r| r.errors.iter().any(|e| e.cause == c))
    };
    assert_eq!(first_seen(Cause::FaultLate), Some(2));
    assert_eq!(first_seen(Cause::BrokerUnavailable), Some(9));
    assert_eq!(report.faults[0].requested_at_s, Some(10.0));
    // The devices' losses at 10.5 s, before the confirmation, are the fault's.
    assert_eq!(report.profiles["good"].flaps, Some(0.0));
    assert_eq!(report.verdict, Verdict::Error);
}

// ---- Windows that tile a run add up to it ----

mod windows {
    use proptest::prelude::*;

    use super::*;

    /// As the unit scenario, with wills (so the offline figures are
    /// measured) and a second fault: group-a's link down 10 s – 15 s,
    /// group-b blackholed 30 s – 35 s.
    fn plan() -> Plan {
        let text = SCENARIO
            .replace(
                "[profiles.good]\nkeepalive = \"5s\"",
                "[profiles.good]\nkeepalive = \"5s\"\nwill = { topic = \"s/{device}\", qos = 1, retain = true }",
            )
            .replace(
                "[profiles.weak]\nkeepalive = \"5s\"",
                "[profiles.weak]\nkeepalive = \"5s\"\nwill = { topic = \"s/{device}\", qos = 1, retain = true }",
            )
            .replace("seed = 7", "seed = 7\nmin_outage = \"2s\"\nsettle = \"1s\"");
        let s = crate::scenario::load_str(Path::new("windows.toml"), &text).expect("parses");
        let mut plan = Plan::resolve(&s, None);
        let fault = |index, at: u64, kind, target: &str| ScheduledFault {
            index,
            at: Duration::from_secs(at),
            duration: Some(Duration::from_secs(5)),
            kind,
            target: Some(target.into()),
            groups: vec![target.into()],
            devices: vec![],
            weather: None,
        };
        let blackhole = FaultKind::Blackhole {
            stream: crate::scenario::StreamSel::Both,
            toxicity: None,
        };
        plan.faults = vec![
            fault(0, 10, FaultKind::LinkDown, "group-a"),
            fault(1, 30, blackhole, "group-b"),
        ];
        plan
    }

    /// What the generator decides about one message.
    #[derive(Debug, Clone)]
    struct Msg {
        /// Handed over this long after its slot (ms).
        publish: u64,
        /// QoS 0 or 1 (the weak profile; the good one always 1).
        qos: u8,
        /// Outcome (good: acked or failed; weak: unawaited) after this long.
        outcome: Option<(bool, u64)>,
        /// Receptions after the hand-over (several: duplicates).
        receptions: Vec<u64>,
    }

    fn msg() -> impl Strategy<Value = Msg> {
        (
            0u64..1_500,
            0u8..2,
            proptest::option::weighted(0.9, (prop::bool::weighted(0.8), 0u64..25_000)),
            prop::collection::vec(prop_oneof![3 => 0u64..200, 1 => 0u64..30_000], 0..3),
        )
            .prop_map(|(publish, qos, outcome, receptions)| Msg {
                publish,
                qos,
                outcome,
                receptions,
            })
    }

    /// Per device: its messages, its reconnect delay after the fault (ms,
    /// `None`: never back), its will's delay and the observer's gap.
    #[derive(Debug, Clone)]
    struct Story {
        messages: Vec<Vec<Msg>>,
        back_after: Vec<Option<u64>>,
        noticed_after: Vec<u64>,
        will_after: Vec<u64>,
        gap: Option<(u64, u64)>,
    }

    fn story() -> impl Strategy<Value = Story> {
        (
            prop::collection::vec(prop::collection::vec(msg(), 30..58), 4),
            prop::collection::vec(proptest::option::weighted(0.8, 0u64..20_000), 4),
            prop::collection::vec(0u64..7_000, 4),
            prop::collection::vec(0u64..9_000, 4),
            proptest::option::of((20_000u64..50_000, 100u64..6_000)),
        )
            .prop_map(
                |(messages, back_after, noticed_after, will_after, gap)| Story {
                    messages,
                    back_after,
                    noticed_after,
                    will_after,
                    gap,
                },
            )
    }

    const END: u64 = 62_000;

    fn events(s: &Story) -> Vec<Event> {
        let mut ev = Vec::new();
        for d in 0..4u32 {
            ev.push(dev(
                100,
                d,
                DeviceEvent::Connected {
                    session_present: false,
                },
            ));
            ev.push(observer(
                150,
                ObserverEvent::Status {
                    device: d,
                    online: true,
                    via: "retained".into(),
                },
            ));
            for (seq, m) in s.messages[d as usize].iter().enumerate() {
                let slot = 1_000 + seq as u64 * 1_000;
                let at = slot + m.publish;
                let qos = if d < 2 { 1 } else { m.qos };
                ev.push(dev(
                    at,
                    d,
                    DeviceEvent::Published {
                        stream: 0,
                        seq: seq as u64,
                        t_intended: ms(slot),
                        qos,
                        attempt: 0,
                    },
                ));
                if let Some((ok, after)) = m.outcome {
                    let o = match (d < 2, ok) {
                        (true, true) => PublishOutcome::Acked,
                        (true, false) => PublishOutcome::Failed,
                        (false, _) => PublishOutcome::Unawaited,
                    };
                    ev.push(outcome(at + after, d, seq as u64, o));
                }
                for r in &m.receptions {
                    let mut e = received(at + r, d, seq as u64, slot);
                    if let Event::Observer {
                        what: ObserverEvent::Received { qos: q, .. },
                        ..
                    } = &mut e
                    {
                        *q = qos;
                    }
                    ev.push(e);
                }
            }
        }
        // The two faults, each hitting its group: lost, noticed (or not:
        // a blackhole may go unnoticed), reported offline, back (or never).
        let faults = [
            (0usize, 10_000u64, 15_000u64, 0u32..2),
            (1, 30_000, 35_000, 2..4),
        ];
        for (index, from, to, devices) in faults {
            ev.push(fault(from, FaultEvent::Requested { index }));
            ev.push(fault(
                from + 3,
                FaultEvent::Applied {
                    index,
                    kind: if index == 0 {
                        crate::scenario::FaultName::LinkDown
                    } else {
                        crate::scenario::FaultName::Blackhole
                    },
                    target: Some(if index == 0 { "group-a" } else { "group-b" }.into()),
                    devices: vec![],
                },
            ));
            ev.push(fault(to, FaultEvent::HealRequested { index }));
            ev.push(fault(to + 4, FaultEvent::Healed { index }));
            for d in devices {
                let i = d as usize;
                let lost = from + 5 + s.noticed_after[i];
                ev.push(dev(
                    lost,
                    d,
                    DeviceEvent::ConnectionLost {
                        cause: LossCause::Closed,
                    },
                ));
                ev.push(observer(
                    from + s.will_after[i],
                    ObserverEvent::Status {
                        device: d,
                        online: false,
                        via: "will".into(),
                    },
                ));
                ev.push(dev(lost + 300, d, DeviceEvent::ConnectAttempt));
                if let Some(back) = s.back_after[i] {
                    let at = to.max(lost) + 50 + back;
                    ev.push(dev(at - 10, d, DeviceEvent::ConnectAttempt));
                    ev.push(dev(
                        at,
                        d,
                        DeviceEvent::Connected {
                            session_present: back % 2 == 0,
                        },
                    ));
                    ev.push(observer(
                        at + 20,
                        ObserverEvent::Status {
                            device: d,
                            online: true,
                            via: "retained".into(),
                        },
                    ));
                }
            }
        }
        if let Some((from, len)) = s.gap {
            ev.push(observer(from, ObserverEvent::Disconnected));
            ev.push(observer(from + len, ObserverEvent::Connected));
        }
        ev.retain(|e| e.at() < ms(END));
        ev.sort_by_key(Event::at);
        ev
    }

    /// Record `events` on the plan, cutting every `every` ms: the folded
    /// intervals and the report.
    fn run(events: &[Event], every: u64) -> (Vec<IntervalRecord>, Report) {
        let plan = plan();
        let mut r = Recorder::new(&plan);
        let mut cuts = Vec::new();
        let mut next = every;
        for e in events {
            while e.at() > ms(next) && next < END {
                cuts.push(r.cut_interval(ms(next)));
                next += every;
            }
            r.record(e);
        }
        while next < END {
            cuts.push(r.cut_interval(ms(next)));
            next += every;
        }
        cuts.push(r.cut_last_interval(ms(END)));
        let report = r.finish(ms(END), ctx(&plan, ms(END)));
        (
            fold(cuts.iter().flat_map(Cut::lines)).expect("folds"),
            report,
        )
    }

    fn counts(r: &Report) -> BTreeMap<String, u64> {
        crate::report::figures::additive_counts(&json(r))
    }

    /// From the story alone: (sent, delivered, duplicates) of the telemetry
    /// of `profile` intended in `(from, to]` (ms).
    fn intended_in(s: &Story, profile: &str, from: u64, to: u64) -> (u64, u64, u64) {
        let devices = if profile == "good" { 0..2 } else { 2..4 };
        let (mut sent, mut delivered, mut duplicates) = (0, 0, 0);
        for d in devices {
            for (seq, m) in s.messages[d].iter().enumerate() {
                let slot = 1_000 + seq as u64 * 1_000;
                let at = slot + m.publish;
                if slot <= from || slot > to || at >= END {
                    continue;
                }
                sent += 1;
                let n = m.receptions.iter().filter(|&&r| at + r < END).count() as u64;
                delivered += u64::from(n > 0);
                duplicates += n.saturating_sub(1);
            }
        }
        (sent, delivered, duplicates)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn windows_that_tile_a_run_add_up_to_it_figure_for_figure(
            story in story(),
            every in 1_000u64..15_000,
            splits in prop::collection::btree_set(1usize..60, 0..6),
        ) {
            let ev = events(&story);
            let (intervals, report) = run(&ev, every);
            let info = run_info(&plan());
            // The whole run rebuilt is the report.
            prop_assert_eq!(json(&report_of(&info, &[], &intervals)), json(&report));
            // No interval's figure is negative, whatever was decided later.
            for r in &intervals {
                for p in r.profiles.values() {
                    for c in [p.telemetry, p.commands] {
                        prop_assert!(c.to_ledger().1.is_empty(), "interval {}: {:?}", r.index, c);
                    }
                }
            }
            // Windows at the split points (interval indices).
            let mut bounds: Vec<usize> = splits.into_iter().filter(|&s| s < intervals.len()).collect();
            bounds.insert(0, 0);
            bounds.push(intervals.len());
            bounds.dedup();
            let mut sum: BTreeMap<String, u64> = BTreeMap::new();
            for w in bounds.windows(2) {
                let window = report_of(&info, &intervals[..w[0]], &intervals[w[0]..w[1]]);
                prop_assert!(
                    window.errors.iter().all(|e| !e.message.contains("sums to")),
                    "{:?}", window.errors
                );
                // It holds exactly the messages intended in it.
                let (from, to) = (intervals[w[0]].start_ns / 1_000_000, intervals[w[1] - 1].end_ns / 1_000_000);
                for profile in ["good", "weak"] {
                    let t = &window.profiles[profile].telemetry;
                    prop_assert_eq!(
                        (t.sent, t.delivered, t.duplicates),
                        intended_in(&story, profile, from, to),
                        "{} in ({} ms, {} ms]", profile, from, to
                    );
                    prop_assert_eq!(t.e2e_latency.count, t.delivered);
                }
                for (k, v) in counts(&window) {
                    *sum.entry(k).or_default() += v;
                }
            }
            let whole = counts(&report);
            for (k, v) in &whole {
                prop_assert_eq!(sum.get(k).copied().unwrap_or(0), *v, "{}", k);
            }
            for (k, v) in &sum {
                prop_assert_eq!(whole.get(k).copied().unwrap_or(0), *v, "{}", k);
            }
        }
    }

    #[test]
    fn the_story_has_fates_decided_intervals_later_and_every_kind_of_figure() {
        use proptest::strategy::ValueTree as _;
        // One fixed story: what the property runs over is not empty.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let story = story().new_tree(&mut runner).unwrap().current();
        let (cuts_report, report) = {
            let ev = events(&story);
            let (intervals, report) = run(&ev, 5_000);
            (intervals, report)
        };
        let c = counts(&report);
        for k in [
            "totals.sent",
            "totals.delivered",
            "totals.duplicates",
            "totals.lost_qos0",
            "totals.lost_unacked",
            "totals.true_offline",
            "totals.reconnect_after_heal.count",
            "totals.outage_seen_by_client.count",
        ] {
            assert!(c[k] > 0, "{k}: {c:?}");
        }
        assert!(!cuts_report.is_empty());
    }
}

//! The merge, pure: a run split by shard and merged back equals the whole
//! run; refusals name the directory and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::intervals::{merge_intervals, ShardSeries};
use super::runs::{merge_run_infos, ShardRun};
use super::MergeError;
use crate::clock::Nanos;
use crate::health::{Cause, Incident};
use crate::history::{Event, ObserverEvent};
use crate::ledger::latency_histogram;
use crate::metrics::interval::{fold, report_of, Cut, IntervalRecord, ProfileInterval, RunInfo};
use crate::metrics::{LinkFigures, LinkRecord, Recorder};
use crate::plan::Plan;
use crate::report::{FaultRecord, Report};
use crate::scenario::FaultName;
use crate::shard::{Shard, ShardInfo};

// ---- A run split by device, recorded shard by shard, merged back ----

fn whole_plan() -> Plan {
    crate::metrics::interval::tests::plan()
}

fn shard_info(shard: Shard) -> ShardInfo {
    ShardInfo {
        index: shard.index,
        count: shard.count,
        plan_digest: crate::shard::plan_digest(&whole_plan()),
        start_unix_ms: 1_795_644_000_000,
    }
}

fn info_of(plan: &Plan, shard: Option<Shard>) -> RunInfo {
    RunInfo {
        shard: shard.map(shard_info),
        ..crate::metrics::interval::tests::run_info(plan)
    }
}

/// The events of the whole history that shard `s` sees: its own devices'
/// (renumbered as `Plan::shard` does), and every observer-wide and fault
/// event. The event naming a device not in the plan goes to shard 0.
fn events_of(events: &[Event], s: Shard) -> Vec<Event> {
    let whole = whole_plan().devices.len() as u32;
    let mine = |d: u32| -> Option<u32> {
        if d >= whole {
            return s.is_designated().then_some(d);
        }
        s.owns(d as usize).then_some(d / s.count)
    };
    events
        .iter()
        .filter_map(|e| {
            Some(match e.clone() {
                Event::Device { at, device, what } => Event::Device {
                    at,
                    device: mine(device)?,
                    what,
                },
                Event::Observer {
                    at,
                    what:
                        ObserverEvent::Received {
                            device,
                            stream,
                            seq,
                            t_intended,
                            qos,
                            dup,
                        },
                } => Event::Observer {
                    at,
                    what: ObserverEvent::Received {
                        device: mine(device)?,
                        stream,
                        seq,
                        t_intended,
                        qos,
                        dup,
                    },
                },
                other => other,
            })
        })
        .collect()
}

fn ms(v: u64) -> Nanos {
    Nanos(v * 1_000_000)
}

/// Record `events` on `plan`, cutting every `every_ms` (but the regular
/// cuts listed in `skip`), the last cut at `end_ms`.
fn cut(
    plan: &Plan,
    events: &[Event],
    every_ms: u64,
    end_ms: u64,
    skip: &[u64],
) -> Vec<IntervalRecord> {
    let mut r = Recorder::new(plan);
    let mut out = Vec::new();
    let mut next = every_ms;
    let cut_at = |r: &mut Recorder, at: u64, out: &mut Vec<Cut>| {
        if !skip.contains(&at) {
            out.push(r.cut_interval(ms(at)));
        }
    };
    for e in events {
        while e.at() > ms(next) && next < end_ms {
            cut_at(&mut r, next, &mut out);
            next += every_ms;
        }
        r.record(e);
    }
    while next < end_ms {
        cut_at(&mut r, next, &mut out);
        next += every_ms;
    }
    out.push(r.cut_last_interval(ms(end_ms)));
    fold(out.iter().flat_map(Cut::lines)).expect("the cuts fold")
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).expect("a report serialises")
}

/// The whole run's report, and the report of its shards merged.
fn whole_and_merged(
    count: u32,
    every_ms: u64,
    skip_of: impl Fn(u32) -> Vec<u64>,
) -> (Report, Report, Vec<IntervalRecord>) {
    let history = crate::metrics::interval::tests::history();
    let whole = whole_plan();
    let whole_intervals = cut(&whole, &history, every_ms, 62_000, &[]);
    let whole_report = report_of(&info_of(&whole, None), &[], &whole_intervals);

    let mut runs = Vec::new();
    let mut series = Vec::new();
    for index in 0..count {
        let s = Shard { index, count };
        let plan = whole.shard(s);
        runs.push(ShardRun {
            dir: PathBuf::from(format!("shard-{index}")),
            info: info_of(&plan, Some(s)),
        });
        series.push(ShardSeries {
            shard: s,
            records: cut(
                &plan,
                &events_of(&history, s),
                every_ms,
                62_000,
                &skip_of(index),
            ),
            incomplete: None,
        });
    }
    let (_, info) = merge_run_infos(runs).expect("shards of one run");
    let merged = merge_intervals(&series).expect("mergeable");
    (whole_report, report_of(&info, &[], &merged), merged)
}

#[test]
fn a_run_split_into_shards_and_merged_back_is_the_whole_run_figure_for_figure() {
    for count in [1, 2, 3, 4] {
        for every in [5_000, 7_000, 100_000] {
            let (whole, merged, _) = whole_and_merged(count, every, |_| vec![]);
            assert_eq!(
                json(&merged),
                json(&whole),
                "{count} shards, cut every {every} ms"
            );
        }
    }
    // The history exercised the figures compared.
    let (whole, _, _) = whole_and_merged(2, 5_000, |_| vec![]);
    let good = &whole.profiles["good"];
    assert_eq!(good.telemetry.lost_after_ack, 6);
    assert!(good.reconnect_after_heal.is_some());
    assert!(whole
        .totals
        .outage_seen_by_client
        .as_ref()
        .is_some_and(|f| f.count > 0));
    assert_eq!(whole.unobserved_s, 2.0);
    assert_eq!(whole.faults.len(), 1);
}

#[test]
fn a_shard_with_one_regular_cut_fewer_still_adds_up_to_the_whole_run() {
    // Shard 1 skips the cut at 60 s: its last interval runs from 55 s.
    let (whole, merged, records) =
        whole_and_merged(2, 5_000, |i| if i == 1 { vec![60_000] } else { vec![] });
    assert_eq!(json(&merged), json(&whole));
    assert_eq!(records.len(), 13);
    assert!(records.last().unwrap().last);
    // At index 11 (55 s – 60 s) shard 1 had nothing: its gauges carried.
    let (whole_n, _, whole_records) = whole_and_merged(2, 5_000, |_| vec![]);
    assert_eq!(json(&whole_n), json(&whole));
    let gauge = |r: &IntervalRecord| r.profiles["good"].awaiting_reconnect;
    assert_eq!(gauge(&records[11]), gauge(&whole_records[11]));
}

// ---- Synthetic shards: sums, gauges, link figures, unobserved ----

fn hist(samples: &[u64]) -> hdrhistogram::Histogram<u64> {
    let mut h = latency_histogram();
    for s in samples {
        crate::ledger::record(&mut h, *s);
    }
    h
}

/// A profile interval with a bit of everything, and its link figures.
fn profile(
    sent: i64,
    samples: &[u64],
    awaiting: u64,
    connected: u64,
    link: &LinkFigures,
) -> ProfileInterval {
    let mut p = ProfileInterval {
        reconnects: sent / 3,
        flaps: sent % 2,
        awaiting_reconnect: awaiting,
        connected: Some(connected),
        link_figures: Some(LinkRecord::encode(link)),
        ..ProfileInterval::default()
    };
    p.telemetry.sent = sent;
    p.telemetry.delivered = sent - sent / 4;
    p.telemetry.lost_after_ack = sent / 4;
    p.commands.sent = sent / 2;
    p.commands.delivered = sent / 2;
    p.histograms.e2e_latency = hist(samples);
    p.histograms.commands_ack_latency = hist(&samples.iter().map(|s| s * 7).collect::<Vec<_>>());
    p
}

fn link(zombie: &[u64], false_offline: u64, true_offline: u64) -> LinkFigures {
    LinkFigures {
        zombie_exposed: !zombie.is_empty(),
        zombie: hist(zombie),
        zombie_undetected: zombie.len() as u64 % 2,
        will_devices: 2,
        false_offline,
        true_offline,
        stale: hist(&[false_offline * 1_000]),
        ..LinkFigures::new()
    }
}

fn record(index: u64, last: bool, profiles: BTreeMap<String, ProfileInterval>) -> IntervalRecord {
    IntervalRecord {
        index,
        start_ns: index * 1_000_000_000,
        end_ns: (index + 1) * 1_000_000_000,
        last,
        unobserved_ns: 0,
        unknown_device_events: 0,
        errors: vec![],
        faults: vec![],
        profiles,
        link_totals: None,
    }
}

/// Sent, latency samples, awaiting, connected, zombie samples, false offline.
type Seed = (i64, Vec<u64>, u64, u64, Vec<u64>, u64);

/// One shard's intervals: `n` of them (the last marked `last` when
/// `finished`), from seeds (sent, samples, gauges, link samples).
fn synthetic(n: usize, finished: bool, seeds: &[Seed]) -> Vec<IntervalRecord> {
    (0..n)
        .map(|i| {
            let (sent, samples, awaiting, connected, zombie, fo) = &seeds[i % seeds.len()];
            let link = link(zombie, *fo, i as u64 % 3);
            let mut profiles = BTreeMap::new();
            for (name, scale) in [("a", 1), ("b", 3)] {
                let samples: Vec<u64> = samples.iter().map(|s| s * scale).collect();
                profiles.insert(
                    name.to_string(),
                    profile(sent * scale as i64, &samples, *awaiting, *connected, &link),
                );
            }
            let mut r = record(i as u64, finished && i + 1 == n, profiles);
            r.unobserved_ns = *sent * 1_000;
            r
        })
        .collect()
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        0i64..50,
        prop::collection::vec(1u64..5_000_000, 0..8),
        0u64..4,
        0u64..10,
        prop::collection::vec(1u64..60_000_000, 0..3),
        0u64..3,
    )
}

proptest! {
    #[test]
    fn merged_counts_histograms_gauges_and_link_figures_are_the_shards_added_up(
        shards in prop::collection::vec(
            (0usize..2, any::<bool>(), prop::collection::vec(seed(), 1..4)),
            1..5,
        ),
        base in 1usize..6,
    ) {
        let count = shards.len() as u32;
        let series: Vec<ShardSeries> = shards
            .iter()
            .enumerate()
            .map(|(i, (extra, finished, seeds))| ShardSeries {
                shard: Shard { index: i as u32, count },
                records: synthetic(base + extra, *finished, seeds),
                incomplete: None,
            })
            .collect();
        let merged = merge_intervals(&series).unwrap();
        let top = series.iter().map(|s| s.records.len()).max().unwrap();
        prop_assert_eq!(merged.len(), top);
        prop_assert_eq!(merged.last().unwrap().last, series.iter().any(|s| s.records.last().unwrap().last));
        for name in ["a", "b"] {
            // Deltas: the merged run's sum is the sum of the shards' sums.
            let total = |rs: &[IntervalRecord]| {
                let mut sum = ProfileInterval::default();
                for r in rs {
                    sum.add(&r.profiles[name]);
                }
                sum
            };
            // Link figures: each interval's, added up over the intervals.
            let links_of = |rs: &[IntervalRecord]| {
                let mut l = LinkFigures::new();
                for r in rs {
                    l.add_interval(&r.profiles[name].link_figures.as_ref().unwrap().decode().unwrap());
                }
                l
            };
            let m = total(&merged);
            let mut expected = ProfileInterval::default();
            let (mut awaiting, mut connected, mut links) = (0, 0, LinkFigures::new());
            for s in &series {
                let t = total(&s.records);
                expected.telemetry.add(&t.telemetry);
                expected.commands.add(&t.commands);
                expected.reconnects += t.reconnects;
                expected.flaps += t.flaps;
                expected.histograms.add(&t.histograms);
                awaiting += t.awaiting_reconnect;
                connected += t.connected.unwrap();
                links.add(&links_of(&s.records));
            }
            prop_assert_eq!(m.telemetry, expected.telemetry);
            prop_assert_eq!(m.commands, expected.commands);
            prop_assert_eq!(m.reconnects, expected.reconnects);
            prop_assert_eq!(m.flaps, expected.flaps);
            for i in 0..crate::metrics::interval::Histograms::NAMES.len() {
                prop_assert_eq!(m.histograms.get(i), expected.histograms.get(i));
            }
            // Gauges at the end: every shard's last.
            prop_assert_eq!(m.awaiting_reconnect, awaiting);
            prop_assert_eq!(m.connected, Some(connected));
            prop_assert_eq!(&links_of(&merged), &links);
            // At every index, each shard's latest value counts once.
            for (i, r) in merged.iter().enumerate() {
                let carried: u64 = series
                    .iter()
                    .map(|s| {
                        let mut upto = s.records.iter().filter(|x| {
                            let placed = if x.last { top as u64 - 1 } else { x.index };
                            placed <= i as u64
                        });
                        upto.next_back().map_or(0, |x| x.profiles[name].connected.unwrap())
                    })
                    .sum();
                prop_assert_eq!(r.profiles[name].connected, Some(carried), "index {}", i);
            }
        }
        // Unobserved: the largest shard's.
        let unobserved: i64 = merged.iter().map(|r| r.unobserved_ns).sum();
        let largest = series.iter().map(|s| s.records.iter().map(|r| r.unobserved_ns).sum::<i64>()).max().unwrap();
        prop_assert_eq!(unobserved, largest);
        prop_assert!(merged.iter().all(|r| r.unobserved_ns >= 0));
        // Intervals tile the run.
        for w in merged.windows(2) {
            prop_assert_eq!(w[0].end_ns, w[1].start_ns);
        }
    }
}

#[test]
fn errors_are_prefixed_with_their_shard_and_a_killed_shard_says_so() {
    let seeds = [(10, vec![1_000], 0, 2, vec![], 0)];
    let mut killed = synthetic(3, false, &seeds);
    killed[1].errors.push(Incident::new(
        Some(1.5),
        Cause::FaultLate,
        "timeline[0] link_down: 3 s late",
    ));
    let series = vec![
        ShardSeries {
            shard: Shard { index: 0, count: 2 },
            records: synthetic(5, true, &seeds),
            incomplete: None,
        },
        ShardSeries {
            shard: Shard { index: 1, count: 2 },
            records: killed,
            incomplete: Some(Incident::new(
                Some(3.0),
                Cause::Incomplete,
                "the run stopped",
            )),
        },
    ];
    let merged = merge_intervals(&series).unwrap();
    assert_eq!(merged[1].errors.len(), 1);
    assert_eq!(
        merged[1].errors[0].message,
        "shard 1/2: timeline[0] link_down: 3 s late"
    );
    assert_eq!(merged[1].errors[0].cause, Cause::FaultLate);
    assert_eq!(merged[2].errors[0].cause, Cause::Incomplete);
    assert_eq!(merged[2].errors[0].message, "shard 1/2: the run stopped");
    assert!(merged[4].last);
    let plan = whole_plan();
    let report = report_of(&info_of(&plan, None), &[], &merged);
    assert_eq!(report.verdict, crate::report::Verdict::Error);
}

fn fault(
    index: usize,
    kind: FaultName,
    times: (f64, f64, f64),
    applied: bool,
    error: Option<&str>,
) -> FaultRecord {
    FaultRecord {
        index,
        kind,
        target: Some("group-a".into()),
        scheduled_at_s: Some(10.0),
        requested_at_s: Some(times.0),
        started_at_s: Some(times.1),
        healed_at_s: Some(times.2),
        applied,
        error: error.map(String::from),
        weather: None,
        devices: vec![],
    }
}

#[test]
fn link_faults_span_every_shard_and_broker_faults_are_shard_0s() {
    let seeds = [(1, vec![], 0, 0, vec![], 0)];
    let mut series = Vec::new();
    let times = [
        (10.0, 10.2, 15.1),
        (10.001, 10.4, 15.3),
        (9.999, 10.1, 15.2),
    ];
    for (i, t) in times.iter().enumerate() {
        let mut records = synthetic(3, true, &seeds);
        records[1]
            .faults
            .push(fault(0, FaultName::LinkDown, *t, true, None));
        records[1].faults.push(fault(
            1,
            FaultName::BrokerRestart,
            (t.0 + 10.0, t.1 + 10.0, t.2 + 10.0),
            i != 2,
            (i == 2).then_some("follow: lost it"),
        ));
        records[2].faults.push(fault(
            2,
            FaultName::DeviceCrash,
            *t,
            i != 1,
            (i == 1).then_some("kill failed"),
        ));
        series.push(ShardSeries {
            shard: Shard {
                index: i as u32,
                count: 3,
            },
            records,
            incomplete: None,
        });
    }
    let merged = merge_intervals(&series).unwrap();
    let link = &merged[1].faults[0];
    assert_eq!(
        (link.requested_at_s, link.started_at_s, link.healed_at_s),
        (Some(9.999), Some(10.4), Some(15.3))
    );
    assert!(link.applied);
    assert_eq!(
        merged[1].faults[1], series[0].records[1].faults[1],
        "broker fault: shard 0's record"
    );
    let crash = &merged[2].faults[0];
    assert!(!crash.applied, "not applied in shard 1");
    assert_eq!(crash.error.as_deref(), Some("shard 1/3: kill failed"));
    assert!(merged[0].faults.is_empty() && merged[2].faults.len() == 1);
}

#[test]
fn a_link_fault_is_not_healed_while_a_shard_that_started_it_has_not_healed_it() {
    let seeds = [(1, vec![], 0, 0, vec![], 0)];
    let mut series = Vec::new();
    for i in 0..2 {
        let mut records = synthetic(2, true, &seeds);
        let mut f = fault(0, FaultName::Blackhole, (10.0, 10.1, 20.0), true, None);
        if i == 1 {
            f.healed_at_s = None;
        }
        records[0].faults.push(f);
        series.push(ShardSeries {
            shard: Shard { index: i, count: 2 },
            records,
            incomplete: None,
        });
    }
    let merged = merge_intervals(&series).unwrap();
    assert_eq!(merged[0].faults[0].healed_at_s, None);
}

#[test]
fn intervals_out_of_order_or_without_link_figures_are_refused() {
    let seeds = [(1, vec![], 0, 0, vec![], 0)];
    let mut records = synthetic(3, true, &seeds);
    records.remove(1);
    let e = merge_intervals(&[ShardSeries {
        shard: Shard::WHOLE,
        records,
        incomplete: None,
    }])
    .unwrap_err();
    assert!(
        e.message
            .contains("interval 2 comes where interval 1 should"),
        "{}",
        e.message
    );

    let mut records = synthetic(2, true, &seeds);
    records[1].profiles.get_mut("b").unwrap().link_figures = None;
    let e = merge_intervals(&[ShardSeries {
        shard: Shard::WHOLE,
        records,
        incomplete: None,
    }])
    .unwrap_err();
    assert!(
        e.message.contains("interval 1, profile b: no link_figures"),
        "{}",
        e.message
    );
}

// ---- Refusals of run.json ----

fn shard_runs(count: u32) -> Vec<ShardRun> {
    let whole = whole_plan();
    (0..count)
        .map(|index| {
            let s = Shard { index, count };
            ShardRun {
                dir: PathBuf::from(format!("runs/s{index}")),
                info: info_of(&whole.shard(s), Some(s)),
            }
        })
        .collect()
}

fn refusal(runs: Vec<ShardRun>) -> String {
    merge_run_infos(runs).unwrap_err().to_string()
}

#[test]
fn shards_of_one_run_merge_into_a_run_of_the_whole_fleet() {
    let mut runs = shard_runs(3);
    runs.reverse();
    let (ordered, info) = merge_run_infos(runs).unwrap();
    assert_eq!(ordered[0].dir, Path::new("runs/s0"));
    assert_eq!(info.shard, None);
    assert_eq!(info.devices, 4);
    assert_eq!(
        info.profiles,
        BTreeMap::from([("good".into(), 2), ("weak".into(), 2)])
    );
    assert_eq!(info.merged_from.len(), 3);
    assert_eq!(info.merged_from[1].index, 1);
    assert_eq!(info.merged_from[1].dir, "runs/s1");
    // Written and read back; an older run.json (no merged_from) still reads.
    let text = serde_json::to_string(&info).unwrap();
    assert_eq!(serde_json::from_str::<RunInfo>(&text).unwrap(), info);
    let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
    old.as_object_mut().unwrap().remove("merged_from");
    assert!(serde_json::from_value::<RunInfo>(old)
        .unwrap()
        .merged_from
        .is_empty());
}

#[test]
fn runs_that_are_not_shards_of_one_run_are_refused_naming_the_directory_and_field() {
    let mut runs = shard_runs(2);
    runs[1].info.shard = None;
    let e = refusal(runs);
    assert!(e.contains("runs/s1") && e.contains("no `shard`"), "{e}");

    type Change = fn(&mut RunInfo);
    let cases: Vec<(&str, Change)> = vec![
        ("shard.count", |i| i.shard.as_mut().unwrap().count = 3),
        ("shard.plan_digest", |i| {
            i.shard.as_mut().unwrap().plan_digest = "0".into()
        }),
        ("shard.start_unix_ms", |i| {
            i.shard.as_mut().unwrap().start_unix_ms += 1
        }),
        ("seed", |i| i.seed += 1),
        ("scenario", |i| i.scenario = "other".into()),
        ("versions.harness", |i| {
            i.versions.harness = "mqtt-chaos 9".into()
        }),
        ("resolved_scenario", |i| {
            i.resolved_scenario.drain = Some(std::time::Duration::from_secs(99))
        }),
    ];
    for (field, change) in cases {
        let mut runs = shard_runs(2);
        change(&mut runs[1].info);
        let e = refusal(runs);
        assert!(e.contains("runs/s1") && e.contains(field), "{field}: {e}");
    }

    let mut runs = shard_runs(3);
    runs[2].info.shard.as_mut().unwrap().index = 1;
    let e = refusal(runs);
    assert!(
        e.contains("shard 1/3 is given twice") && e.contains("runs/s1") && e.contains("runs/s2"),
        "{e}"
    );

    let mut runs = shard_runs(3);
    runs.remove(1);
    let e = refusal(runs);
    assert!(e.contains("shard 1/3: missing"), "{e}");
    assert!(matches!(merge_run_infos(vec![]), Err(MergeError::NoShards)));
}

// ---- Link figures in intervals.jsonl ----

#[test]
fn link_figures_round_trip_through_json_and_older_lines_read_without_them() {
    let mut l = link(&[1_500_000, 2_000_000, 45_000_000], 2, 5);
    l.detect = hist(&[800_000, 1_200_000]);
    l.deaths = 3;
    l.will_deaths = 3;
    let rec = LinkRecord::encode(&l);
    let text = serde_json::to_string(&rec).unwrap();
    let back: LinkRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back.decode().unwrap(), l);
    assert_eq!(back.decode().unwrap().snapshot(), l.snapshot());
    // Zeros, false flags and empty histograms are left out.
    assert_eq!(
        serde_json::to_string(&LinkRecord::encode(&LinkFigures::new())).unwrap(),
        "{}"
    );
    assert!(!text.contains("resume"), "{text}");
    // A decoded histogram adds to any other (auto-resizing).
    let mut d = back.decode().unwrap();
    d.add(&link(&[3_600_000_000_000], 0, 0));
    // An older interval line has no link_figures.
    let p: ProfileInterval = serde_json::from_str(
        r#"{"sent":1,"acked":1,"delivered":1,"lost_after_ack":0,"lost_unacked":0,"silent_loss":0,"lost_qos0":0,"duplicates":0,"reordered":0,"downgraded":0,"unobserved":0,"ambiguous":0,"orphans":0,"commands":{"sent":0,"acked":0,"delivered":0,"lost_after_ack":0,"lost_unacked":0,"silent_loss":0,"lost_qos0":0,"duplicates":0,"reordered":0,"downgraded":0,"unobserved":0,"ambiguous":0,"orphans":0},"reconnects":0,"session_present":0,"reconnect_attempts":0,"flaps":0,"exposed":false,"healed":false,"awaiting_reconnect":0}"#,
    )
    .unwrap();
    assert!(p.link_figures.is_none());
    let bad: LinkRecord = serde_json::from_str(r#"{"zombie":"not base64!"}"#).unwrap();
    assert!(bad.decode().unwrap_err().contains("base64"));
}

#[test]
fn the_link_figures_of_a_cut_cost_a_bounded_few_kilobytes() {
    // The interval tests' run has 2 profiles; measure its busiest cut, and
    // a cut of 3 profiles whose every histogram holds a spread of samples.
    let history = crate::metrics::interval::tests::history();
    let records = cut(&whole_plan(), &history, 5_000, 62_000, &[]);
    let bytes = |r: &IntervalRecord| -> usize {
        r.profiles
            .values()
            .map(|p| {
                serde_json::to_string(&p.link_figures).unwrap().len() + r#","link_figures":"#.len()
            })
            .sum()
    };
    let busiest = records.iter().map(bytes).max().unwrap();
    let mut full = LinkFigures::new();
    for (i, h) in [
        &mut full.zombie,
        &mut full.outage_seen,
        &mut full.first_attempt,
        &mut full.resume,
        &mut full.detect,
        &mut full.stale,
    ]
    .into_iter()
    .enumerate()
    {
        for k in 0..1_000u64 {
            crate::ledger::record(h, (k * 7_919 + i as u64 * 104_729) % 120_000_000 + 1);
        }
    }
    for d in 0..100 {
        full.false_online_ns.insert(d, 1_234_567_890 + u64::from(d));
        full.false_offline_devices.insert(d);
    }
    full.zombie_exposed = true;
    full.will_devices = 1_000;
    full.true_offline = 12_345;
    full.false_offline = 678;
    let full_bytes = 3
        * (serde_json::to_string(&LinkRecord::encode(&full))
            .unwrap()
            .len()
            + 16);
    eprintln!("link figures per cut: {busiest} bytes (2 profiles, interval tests' run); {full_bytes} bytes (3 profiles, 6 histograms of 1000 samples each, 100 devices false online and false offline)");
    assert!(busiest < 1_000, "{busiest}");
    assert!(full_bytes < 64 * 1024, "{full_bytes}");
}

//! The ledger against a naive model: a HashMap of everything that happened
//! to every message, classified only at the end.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// What the generator decides about one message.
#[derive(Debug, Clone)]
struct Spec {
    key: u8,
    seq: u64,
    qos: u8,
    /// Hand-overs (0: never published; > 1: retries).
    publishes: u8,
    outcome: Option<(PublishOutcome, Option<u64>)>,
    /// QoS of each reception (several: duplicates).
    receptions: Vec<u8>,
}

fn outcome() -> impl Strategy<Value = PublishOutcome> {
    prop_oneof![
        Just(PublishOutcome::Acked),
        Just(PublishOutcome::Failed),
        Just(PublishOutcome::Unawaited),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..3,
        0u64..24,
        0u8..3,
        prop_oneof![1 => Just(0u8), 6 => 1u8..4],
        proptest::option::weighted(0.8, (outcome(), proptest::option::of(0u64..5_000_000))),
        proptest::collection::vec(0u8..3, 0..4),
    )
        .prop_map(|(key, seq, qos, publishes, outcome, receptions)| Spec {
            key,
            seq,
            qos,
            publishes,
            outcome,
            receptions,
        })
}

/// One step of the history, before timestamps.
#[derive(Debug, Clone)]
enum Step {
    Publish(MessageId, u8),
    Outcome(MessageId, PublishOutcome, Option<u64>),
    Receive(MessageId, u8),
    ObserverDown,
    ObserverUp,
}

fn id_of(s: &Spec) -> MessageId {
    let (device, direction) = match s.key {
        0 => (0, Direction::Telemetry),
        1 => (1, Direction::Telemetry),
        _ => (0, Direction::Command),
    };
    MessageId {
        device,
        direction,
        stream: 0,
        seq: s.seq,
    }
}

/// Interleave every message's steps in the order the random `order` keys
/// give, keeping each message's device-side steps (publishes, then the
/// outcome) in their own order, as one device task would emit them.
fn history(specs: &[Spec], order: &[u32], observer: &[(u32, bool)]) -> Vec<Step> {
    let mut seen = std::collections::HashSet::new();
    let mut tagged: Vec<(u32, usize, Step)> = Vec::new();
    let mut next_key = order.iter().copied().cycle();
    for (m, s) in specs.iter().enumerate() {
        let id = id_of(s);
        if !seen.insert(id) {
            continue; // one spec per message
        }
        let mut device: Vec<Step> = (0..s.publishes).map(|_| Step::Publish(id, s.qos)).collect();
        if let Some((o, lat)) = s.outcome {
            device.push(Step::Outcome(id, o, lat));
        }
        let mut keys: Vec<u32> = device
            .iter()
            .map(|_| next_key.next().unwrap_or(0))
            .collect();
        keys.sort_unstable();
        for (k, step) in keys.into_iter().zip(device) {
            tagged.push((k, m, step));
        }
        for &q in &s.receptions {
            tagged.push((next_key.next().unwrap_or(0), m, Step::Receive(id, q)));
        }
    }
    for &(k, down) in observer {
        let step = if down {
            Step::ObserverDown
        } else {
            Step::ObserverUp
        };
        tagged.push((k, usize::MAX, step));
    }
    // Stable: equal keys keep insertion order (device steps stay in order).
    tagged.sort_by_key(|(k, _, _)| *k);
    tagged.into_iter().map(|(_, _, s)| s).collect()
}

const MS: u64 = 1_000_000;

fn at(i: usize) -> Nanos {
    Nanos(i as u64 * MS)
}

fn t_intended(id: MessageId) -> Nanos {
    Nanos(id.seq * MS / 2)
}

fn replay(ledger: &mut Ledger, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        replay_one(ledger, i, s);
    }
}

fn replay_one(ledger: &mut Ledger, i: usize, s: &Step) {
    match *s {
        Step::Publish(id, q) => ledger.published(at(i), id, q),
        Step::Outcome(id, o, lat) => ledger.outcome(at(i), id, o, lat.map(Duration::from_nanos)),
        Step::Receive(id, q) => ledger.received(at(i), id, t_intended(id), q),
        Step::ObserverDown => ledger.record(&Event::Observer {
            at: at(i),
            what: ObserverEvent::Disconnected,
        }),
        Step::ObserverUp => ledger.record(&Event::Observer {
            at: at(i),
            what: ObserverEvent::Connected,
        }),
    }
}

#[derive(Default)]
struct Rec {
    first_pub: Option<(Nanos, u8)>,
    outcome: Option<PublishOutcome>,
    /// (time, qos) of every reception.
    receptions: Vec<(Nanos, u8)>,
}

/// The naive model: remember everything, decide at the end.
fn model(steps: &[Step]) -> (MessageCounts, MessageCounts, [Histogram<u64>; 4]) {
    let mut recs: HashMap<MessageId, Rec> = HashMap::new();
    let mut gaps: Vec<(Nanos, Option<Nanos>)> = Vec::new();
    let mut max_first: HashMap<StreamKey, u64> = HashMap::new();
    let mut reordered: HashMap<Direction, u64> = HashMap::new();
    let mut hist: [Histogram<u64>; 4] = std::array::from_fn(|_| latency_histogram());
    let h = |d: Direction, e2e: bool| match (d, e2e) {
        (Direction::Telemetry, true) => 0,
        (Direction::Telemetry, false) => 1,
        (Direction::Command, true) => 2,
        (Direction::Command, false) => 3,
    };
    for (i, s) in steps.iter().enumerate() {
        let now = at(i);
        match *s {
            Step::Publish(id, q) => {
                let r = recs.entry(id).or_default();
                r.first_pub.get_or_insert((now, q));
            }
            Step::Outcome(id, o, lat) => {
                let r = recs.entry(id).or_default();
                if r.outcome.is_none() {
                    r.outcome = Some(o);
                    if o == PublishOutcome::Acked {
                        let l = lat
                            .map(Duration::from_nanos)
                            .or(r.first_pub.map(|(p, _)| now.saturating_since(p)));
                        if let Some(l) = l {
                            record(&mut hist[h(id.direction, false)], micros(l));
                        }
                    }
                }
            }
            Step::Receive(id, q) => {
                let r = recs.entry(id).or_default();
                if r.receptions.is_empty() {
                    record(
                        &mut hist[h(id.direction, true)],
                        micros(now.saturating_since(t_intended(id))),
                    );
                    let m = max_first.entry(id.into()).or_insert(id.seq);
                    if id.seq < *m {
                        *reordered.entry(id.direction).or_default() += 1;
                    }
                    *m = (*m).max(id.seq);
                }
                r.receptions.push((now, q));
            }
            Step::ObserverDown => {
                if !matches!(gaps.last(), Some((_, None))) {
                    gaps.push((now, None));
                }
            }
            Step::ObserverUp => {
                if let Some((_, to @ None)) = gaps.last_mut() {
                    *to = Some(now);
                }
            }
        }
    }
    let in_gap = |t: Nanos| {
        gaps.iter()
            .any(|&(f, to)| f <= t && to.is_none_or(|to| t < to))
    };
    let mut out = [MessageCounts::default(), MessageCounts::default()];
    for (id, r) in &recs {
        let c = &mut out[(id.direction == Direction::Command) as usize];
        c.sent += r.first_pub.is_some() as u64;
        c.acked += (r.outcome == Some(PublishOutcome::Acked)) as u64;
        if let Some(&(_, got)) = r.receptions.first() {
            c.delivered += 1;
            c.duplicates += r.receptions.len() as u64 - 1;
            if r.first_pub.is_some_and(|(_, asked)| got < asked) {
                c.downgraded += 1;
            }
            continue;
        }
        match r.first_pub {
            None => c.orphans += r.outcome.is_some() as u64,
            Some((_, 0)) => c.lost_qos0 += 1,
            Some((t, _)) => match r.outcome {
                Some(PublishOutcome::Acked)
                    if id.direction == Direction::Telemetry && in_gap(t) =>
                {
                    c.unobserved += 1
                }
                Some(PublishOutcome::Acked) => c.lost_after_ack += 1,
                Some(PublishOutcome::Failed) | None => c.lost_unacked += 1,
                Some(PublishOutcome::Unawaited) => c.silent_loss += 1,
            },
        }
    }
    out[0].reordered = reordered.get(&Direction::Telemetry).copied().unwrap_or(0);
    out[1].reordered = reordered.get(&Direction::Command).copied().unwrap_or(0);
    let [a, b] = out;
    (a, b, hist)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_count_matches_a_naive_model_of_the_whole_history(
        specs in proptest::collection::vec(spec(), 1..40),
        order in proptest::collection::vec(any::<u32>(), 1..200),
        observer in proptest::collection::vec((any::<u32>(), any::<bool>()), 0..4),
    ) {
        let steps = history(&specs, &order, &observer);
        let mut ledger = Ledger::new();
        replay(&mut ledger, &steps);
        let (tel, cmd, hist) = model(&steps);
        let f = ledger.finish();
        prop_assert_eq!(f.telemetry.counts, tel);
        prop_assert_eq!(f.commands.counts, cmd);
        prop_assert!(f.telemetry.e2e_latency == hist[0]);
        prop_assert!(f.telemetry.ack_latency == hist[1]);
        prop_assert!(f.commands.e2e_latency == hist[2]);
        prop_assert!(f.commands.ack_latency == hist[3]);
    }

    #[test]
    fn a_tiny_range_cap_bounds_memory_and_never_invents_deliveries(
        specs in proptest::collection::vec(spec(), 1..40),
        order in proptest::collection::vec(any::<u32>(), 1..200),
        cap in 1usize..4,
    ) {
        let steps = history(&specs, &order, &[]);
        let mut ledger = Ledger::with_range_cap(cap);
        for (i, s) in steps.iter().enumerate() {
            replay_one(&mut ledger, i, s);
            // Three keys at most.
            prop_assert!(ledger.ranges() <= 3 * cap);
        }
        let (tel, cmd, _) = model(&steps);
        let f = ledger.finish();
        for (got, want) in [(f.telemetry.counts, tel), (f.commands.counts, cmd)] {
            prop_assert!(got.delivered <= want.delivered);
            prop_assert!(got.duplicates <= want.duplicates);
            prop_assert_eq!(
                got.delivered + got.duplicates + got.ambiguous,
                want.delivered + want.duplicates
            );
            prop_assert!(got.sent <= want.sent);
        }
    }
}

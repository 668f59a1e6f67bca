//! Hand-made event sequences with exact counts.

use super::*;

const MS: u64 = 1_000_000;

fn t(ms: u64) -> Nanos {
    Nanos(ms * MS)
}

fn tel(seq: u64) -> MessageId {
    telemetry(0, 0, seq)
}

fn cmd(seq: u64) -> MessageId {
    command(0, 0, seq)
}

/// Publish at `seq` ms with QoS `qos`.
fn publish(l: &mut Ledger, id: MessageId, qos: u8) {
    l.published(t(id.seq), id, qos);
}

fn recv(l: &mut Ledger, at_ms: u64, id: MessageId, qos: u8) {
    l.received(t(at_ms), id, t(id.seq), qos);
}

#[test]
fn an_acked_and_received_message_is_delivered_and_leaves_nothing_pending() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    recv(&mut l, 5, tel(0), 1);
    l.outcome(t(3), tel(0), PublishOutcome::Acked, None);
    assert_eq!(l.pending(), 0);
    assert_eq!(l.ranges(), 0);
    let f = l.finish().telemetry;
    assert_eq!(f.counts.sent, 1);
    assert_eq!(f.counts.acked, 1);
    assert_eq!(f.counts.delivered, 1);
    assert_eq!(f.counts.lost_after_ack, 0);
    assert_eq!(f.e2e_latency.len(), 1);
    // 5 ms, within hdr's 3 significant digits.
    assert!(f.e2e_latency.equivalent(f.e2e_latency.max(), 5_000));
    assert_eq!(f.ack_latency.len(), 1);
}

#[test]
fn an_acked_message_never_received_is_lost_after_ack() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    l.outcome(
        t(1),
        tel(0),
        PublishOutcome::Acked,
        Some(Duration::from_millis(1)),
    );
    let c = l.finish().telemetry.counts;
    assert_eq!(
        (c.sent, c.acked, c.delivered, c.lost_after_ack),
        (1, 1, 0, 1)
    );
    assert_eq!(
        c.lost_unacked + c.silent_loss + c.lost_qos0 + c.unobserved,
        0
    );
}

#[test]
fn a_late_arrival_moves_a_provisional_loss_to_delivered() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    l.outcome(t(1), tel(0), PublishOutcome::Acked, None);
    assert_eq!(l.counts(Direction::Telemetry).lost_after_ack, 1);
    recv(&mut l, 30_000, tel(0), 1);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.delivered, c.lost_after_ack, c.duplicates), (1, 0, 0));
}

#[test]
fn failed_and_unknown_outcomes_at_qos1_are_lost_unacked() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    l.outcome(t(1), tel(0), PublishOutcome::Failed, None);
    publish(&mut l, tel(1), 1); // in flight when the run ended
    let c = l.finish().telemetry.counts;
    assert_eq!(c.lost_unacked, 2);
    assert_eq!(c.acked, 0);
}

#[test]
fn an_unknown_outcome_that_was_received_is_delivered() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 2);
    recv(&mut l, 4, tel(0), 2);
    assert_eq!(l.pending(), 1);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.delivered, c.lost_unacked, c.acked), (1, 0, 0));
}

#[test]
fn unawaited_qos1_never_received_is_silent_loss_but_qos0_is_lost_qos0() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    l.outcome(t(0), tel(0), PublishOutcome::Unawaited, None);
    publish(&mut l, tel(1), 0);
    l.outcome(t(1), tel(1), PublishOutcome::Unawaited, None);
    publish(&mut l, tel(2), 0); // no outcome at all
    let c = l.finish().telemetry.counts;
    assert_eq!(c.silent_loss, 1);
    assert_eq!(c.lost_qos0, 2);
    assert_eq!(c.lost_unacked, 0);
}

#[test]
fn every_extra_reception_is_one_duplicate_even_after_settling() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    recv(&mut l, 1, tel(0), 1);
    recv(&mut l, 2, tel(0), 1); // still pending
    l.outcome(t(2), tel(0), PublishOutcome::Acked, None);
    recv(&mut l, 3, tel(0), 1); // settled
    recv(&mut l, 4, tel(0), 1);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.delivered, c.duplicates), (1, 3));
}

#[test]
fn a_lower_seq_received_after_a_higher_one_is_reordered_once() {
    let mut l = Ledger::new();
    for s in 0..4 {
        publish(&mut l, tel(s), 1);
    }
    recv(&mut l, 10, tel(0), 1);
    recv(&mut l, 11, tel(3), 1);
    recv(&mut l, 12, tel(1), 1); // reordered
    recv(&mut l, 13, tel(2), 1); // reordered
    recv(&mut l, 14, tel(1), 1); // a duplicate, not a reordering
    let c = l.finish().telemetry.counts;
    assert_eq!((c.delivered, c.reordered, c.duplicates), (4, 2, 1));
}

#[test]
fn a_message_received_at_a_lower_qos_is_downgraded_whichever_event_comes_first() {
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 2);
    recv(&mut l, 1, tel(0), 1);
    recv(&mut l, 2, tel(1), 0); // reception before the publish
    publish(&mut l, tel(1), 1);
    publish(&mut l, tel(2), 1);
    recv(&mut l, 3, tel(2), 1);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.delivered, c.downgraded), (3, 2));
}

#[test]
fn a_retry_is_not_a_second_message() {
    let mut l = Ledger::new();
    l.published(t(0), tel(0), 1);
    l.published(t(10_000), tel(0), 1);
    l.outcome(t(10_005), tel(0), PublishOutcome::Acked, None);
    recv(&mut l, 10_003, tel(0), 1);
    let f = l.finish().telemetry;
    assert_eq!(
        (f.counts.sent, f.counts.acked, f.counts.delivered),
        (1, 1, 1)
    );
    // Ack latency runs from the first hand-over.
    assert!(f.ack_latency.equivalent(f.ack_latency.max(), 10_005_000));
}

#[test]
fn an_acked_message_published_inside_a_coverage_gap_is_unobserved() {
    let mut l = Ledger::new();
    l.record(&Event::Observer {
        at: t(10),
        what: ObserverEvent::Disconnected,
    });
    publish(&mut l, tel(5), 1); // before the gap
    publish(&mut l, tel(15), 1); // inside
    l.record(&Event::Observer {
        at: t(20),
        what: ObserverEvent::Connected,
    });
    publish(&mut l, tel(25), 1); // after
    for s in [5, 15, 25] {
        l.outcome(t(30), tel(s), PublishOutcome::Acked, None);
    }
    assert_eq!(l.unobserved_time(t(100)), Duration::from_millis(10));
    let c = l.finish().telemetry.counts;
    assert_eq!((c.unobserved, c.lost_after_ack), (1, 2));
}

#[test]
fn an_explicit_coverage_gap_counts_like_an_observer_disconnection() {
    let mut l = Ledger::new();
    l.coverage_gap(t(0), t(10));
    publish(&mut l, tel(3), 1);
    l.outcome(t(4), tel(3), PublishOutcome::Acked, None);
    publish(&mut l, tel(4), 1);
    l.outcome(t(5), tel(4), PublishOutcome::Failed, None);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.unobserved, c.lost_unacked, c.lost_after_ack), (1, 1, 0));
}

#[test]
fn commands_are_counted_apart_and_ignore_observer_coverage() {
    let mut l = Ledger::new();
    l.record(&Event::Observer {
        at: t(0),
        what: ObserverEvent::Disconnected,
    });
    l.record(&Event::Observer {
        at: t(1),
        what: ObserverEvent::CommandPublished {
            device: 0,
            stream: 0,
            seq: 1,
            t_intended: t(1),
            qos: 2,
        },
    });
    l.record(&Event::Observer {
        at: t(3),
        what: ObserverEvent::CommandOutcome {
            device: 0,
            stream: 0,
            seq: 1,
            outcome: PublishOutcome::Acked,
        },
    });
    publish(&mut l, cmd(2), 2);
    l.outcome(t(4), cmd(2), PublishOutcome::Acked, None);
    l.record(&Event::Device {
        at: t(7),
        device: 0,
        what: DeviceEvent::CommandReceived {
            stream: 0,
            seq: 2,
            t_intended: t(2),
            qos: 2,
            dup: false,
        },
    });
    let f = l.finish();
    assert_eq!(f.telemetry.counts, MessageCounts::default());
    let c = f.commands.counts;
    assert_eq!(
        (c.sent, c.acked, c.delivered, c.lost_after_ack),
        (2, 2, 1, 1)
    );
    assert_eq!(c.unobserved, 0);
    assert_eq!(f.commands.ack_latency.len(), 2);
}

#[test]
fn an_outage_of_many_messages_is_remembered_as_one_run() {
    let mut l = Ledger::new();
    for s in 0..10_000 {
        publish(&mut l, tel(s), 1);
        l.outcome(t(s), tel(s), PublishOutcome::Acked, None);
    }
    assert_eq!(l.pending(), 0);
    assert_eq!(l.ranges(), 1);
    // A duplicate of a settled message below the lost run is still known.
    recv(&mut l, 20_000, tel(10_000), 1); // unseen so far: first reception
    assert_eq!(l.counts(Direction::Telemetry).lost_after_ack, 10_000);
}

#[test]
fn memory_stays_flat_over_a_long_run_with_loss_bursts() {
    let mut l = Ledger::new();
    let mut max_pending = 0;
    for s in 0..200_000u64 {
        publish(&mut l, tel(s), 1);
        // Every message is received a little later, except in bursts.
        if s >= 3 && (s - 3) % 1000 >= 10 {
            recv(&mut l, s + 3, tel(s - 3), 1);
        }
        l.outcome(t(s), tel(s), PublishOutcome::Acked, None);
        max_pending = max_pending.max(l.pending());
    }
    assert!(max_pending <= 1, "pending grew to {max_pending}");
    // Provisional losses of the in-flight tail (seq − 3 not yet received)
    // merge into one run per burst at most.
    // 200 bursts of 10 lost seqs and the unreceived tail: one run each.
    assert_eq!(l.ranges(), 201);
    let c = l.finish().telemetry.counts;
    assert_eq!(c.sent, 200_000);
    assert_eq!(c.delivered + c.lost_after_ack, 200_000);
    assert_eq!(c.lost_after_ack, 200 * 10 + 3);
}

#[test]
fn a_reception_below_the_horizon_is_ambiguous_not_a_duplicate() {
    let mut l = Ledger::with_range_cap(2);
    // Three separate loss runs: 0, 2, 4 (1 and 3 delivered).
    for s in 0..5 {
        publish(&mut l, tel(s), 1);
        if s % 2 == 1 {
            recv(&mut l, s, tel(s), 1);
        }
        l.outcome(t(s), tel(s), PublishOutcome::Acked, None);
    }
    assert_eq!(l.ranges(), 2);
    recv(&mut l, 10, tel(0), 1); // forgotten: cannot tell
    recv(&mut l, 11, tel(2), 1); // still remembered: late arrival
    let c = l.finish().telemetry.counts;
    assert_eq!(c.ambiguous, 1);
    assert_eq!(c.delivered, 3);
    assert_eq!(c.lost_after_ack, 2);
}

#[test]
fn an_outcome_without_a_publish_is_an_orphan() {
    let mut l = Ledger::new();
    l.outcome(t(1), tel(0), PublishOutcome::Acked, None);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.orphans, c.acked, c.sent, c.lost_after_ack), (1, 1, 0, 0));
}

#[test]
fn acked_commands_for_a_device_dead_at_the_end_are_undeliverable() {
    let mut l = Ledger::new();
    // Device 0: commands 0..4 acked; 0 and 1 received, 2 and 3 not (it
    // crashed), 4 still in flight at the end. Device 1: one acked command
    // never received while it lives: lost_after_ack.
    for seq in 0..5 {
        publish(&mut l, cmd(seq), 1);
        if seq < 4 {
            l.outcome(t(seq + 1), cmd(seq), PublishOutcome::Acked, None);
        }
    }
    recv(&mut l, 2, cmd(0), 1);
    recv(&mut l, 3, cmd(1), 1);
    let other = command(1, 0, 0);
    l.published(t(0), other, 1);
    l.outcome(t(1), other, PublishOutcome::Acked, None);
    // A QoS 0 command for the dead device stays lost_qos0.
    let qos0 = command(0, 1, 0);
    l.published(t(0), qos0, 0);
    l.outcome(t(0), qos0, PublishOutcome::Unawaited, None);
    assert_eq!(l.counts(Direction::Command).lost_after_ack, 3);

    l.dead_at_end(0);
    l.dead_at_end(0); // told twice: moved once
                      // One more acked after it was told: undeliverable too.
    l.outcome(t(9), cmd(4), PublishOutcome::Acked, None);
    let c = l.finish().commands.counts;
    assert_eq!(c.undeliverable, 3, "{c:?}");
    assert_eq!(c.lost_after_ack, 1, "{c:?}");
    assert_eq!(c.lost_qos0, 1, "{c:?}");
    assert_eq!(c.delivered, 2);
}

#[test]
fn an_undeliverable_command_that_arrives_after_all_is_delivered() {
    let mut l = Ledger::new();
    publish(&mut l, cmd(0), 2);
    l.outcome(t(1), cmd(0), PublishOutcome::Acked, None);
    // Still pending at the end: classified when the figures are taken.
    publish(&mut l, cmd(1), 1);
    l.dead_at_end(0);
    assert_eq!(l.counts(Direction::Command).undeliverable, 1);
    recv(&mut l, 5, cmd(0), 2);
    l.outcome(t(6), cmd(1), PublishOutcome::Acked, None);
    let c = l.figures_at_end().commands.counts;
    assert_eq!((c.undeliverable, c.delivered, c.lost_after_ack), (1, 1, 0));
    // Telemetry of a dead device is never undeliverable.
    let mut l = Ledger::new();
    publish(&mut l, tel(0), 1);
    l.outcome(t(1), tel(0), PublishOutcome::Acked, None);
    l.dead_at_end(0);
    let c = l.finish().telemetry.counts;
    assert_eq!((c.lost_after_ack, c.undeliverable), (1, 0));
}

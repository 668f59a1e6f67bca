//! The per-message hot paths of a run, measured: what one published message
//! costs the harness (payload encoding and decoding, ack correlation, ledger
//! accounting). A soak at 10 000 msg/s needs each well below 100 µs.
//!
//! `cargo bench --bench hot_paths`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mqtt_chaos::clock::Nanos;
use mqtt_chaos::fleet::acks::AckTracker;
use mqtt_chaos::history::{Direction, MessageId, PublishOutcome};
use mqtt_chaos::ledger::Ledger;
use mqtt_chaos::payload;

fn payloads(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode 128 B", |b| {
        let mut seq = 0u64;
        b.iter(|| {
            seq += 1;
            payload::encode("sensors-0042", "telemetry", seq, Nanos(seq * 1_000), 128)
        })
    });
    let p = payload::encode(
        "sensors-0042",
        "telemetry",
        123_456,
        Nanos(987_654_321),
        128,
    );
    g.bench_function("decode 128 B", |b| {
        b.iter(|| payload::decode(&p).map(|h| h.seq))
    });
    g.finish();
}

fn acks(c: &mut Criterion) {
    let mut g = c.benchmark_group("acks");
    g.throughput(Throughput::Elements(1));
    g.bench_function("queue, write, ack one QoS 1 message", |b| {
        let mut t: AckTracker<u64> = AckTracker::new(Duration::from_secs(10), 3);
        let mut seq = 0u64;
        b.iter(|| {
            seq += 1;
            let pkid = (seq % 100 + 1) as u16;
            t.queued(seq, 1, true, 0, Nanos(seq));
            t.written(pkid);
            t.acked(pkid)
        })
    });
    g.finish();
}

fn ledger(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(1));
    g.bench_function("publish, ack, receive one message (1000 streams)", |b| {
        let mut l = Ledger::new();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let id = MessageId {
                device: (n % 1000) as u32,
                direction: Direction::Telemetry,
                stream: 0,
                seq: n / 1000,
            };
            let t = Nanos(n * 100_000);
            l.published(t, id, 1);
            l.outcome(
                t,
                id,
                PublishOutcome::Acked,
                Some(Duration::from_micros(300)),
            );
            l.received(t, id, t, 1);
        })
    });
    g.finish();
}

criterion_group!(benches, payloads, acks, ledger);
criterion_main!(benches);

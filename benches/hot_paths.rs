//! The per-message hot paths of a run, measured: what one published message
//! costs the harness (payload encoding and decoding, ack correlation, ledger
//! accounting). A soak at 10 000 msg/s needs each well below 100 µs.
//!
//! `cargo bench --bench hot_paths`
//!
//! `relay`: one 128-byte round trip to an echo server on loopback, straight,
//! through the embedded fault engine's proxy with no toxic (the fast path),
//! and through it with a toxic that does nothing (latency 0: every chunk
//! goes through the toxic pipeline). The differences are what the proxy
//! adds per message.

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

fn relay(c: &mut Criterion) {
    use mqtt_chaos::fault::{LinkFaults, Stream, Toxic, ToxicKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let (engine, direct, proxied, toxic) = rt.block_on(async {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let engine = mqtt_chaos::fault::engine::Engine::new(1);
        let mut ends = Vec::new();
        for name in ["plain", "toxic"] {
            let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let listen = free.local_addr().expect("addr");
            drop(free);
            engine
                .create_proxy(name, listen, &echo_addr.to_string())
                .await
                .expect("a proxy");
            ends.push(listen);
        }
        let toxic = Toxic {
            name: "nothing".into(),
            kind: ToxicKind::Latency {
                latency: 0,
                jitter: 0,
            },
            stream: Stream::Downstream,
            toxicity: 1.0,
        };
        engine.add_toxic("toxic", &toxic).await.expect("a toxic");
        let connect = |a| async move {
            let s = TcpStream::connect(a).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            s
        };
        let direct = connect(echo_addr).await;
        let proxied = connect(ends[0]).await;
        let toxic = connect(ends[1]).await;
        (engine, direct, proxied, toxic)
    });
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    for (name, mut sock) in [
        ("128 B round trip, straight", direct),
        ("128 B round trip, proxy without toxics", proxied),
        ("128 B round trip, proxy with a latency-0 toxic", toxic),
    ] {
        g.bench_function(name, |b| {
            let msg = [7u8; 128];
            let mut back = [0u8; 128];
            b.iter(|| {
                rt.block_on(async {
                    sock.write_all(&msg).await.expect("write");
                    sock.read_exact(&mut back).await.expect("read");
                })
            })
        });
    }
    g.finish();
    rt.block_on(engine.shutdown());
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

criterion_group!(benches, payloads, acks, ledger, relay);
criterion_main!(benches);

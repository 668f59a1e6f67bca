//! Integration tests: the embedded fault engine against plain TCP peers
//! written here (an upstream "server" the proxy connects to and client
//! sockets), so FIN, RST and every byte are visible. Each behaviour is the
//! one measured on Toxiproxy 2.12 (`shared/fixtures/toxiproxy-2.12-behaviour.md`).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mqtt_chaos::fault::engine::Engine;
use mqtt_chaos::fault::{FaultError, LinkFaults, ProxyInfo, Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const MS: Duration = Duration::from_millis(1);
/// The bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(2);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An engine with one proxy in front of a fresh upstream listener.
struct Rig {
    engine: Engine,
    proxy: ProxyInfo,
    server: TcpListener,
}

impl Rig {
    async fn new(name: &str) -> Rig {
        Rig::with_seed(name, 42).await
    }

    async fn with_seed(name: &str, seed: u64) -> Rig {
        let server = TcpListener::bind(loopback()).await.unwrap();
        let engine = Engine::new(seed);
        let up = server.local_addr().unwrap().to_string();
        let proxy = engine.create_proxy(name, loopback(), &up).await.unwrap();
        Rig {
            engine,
            proxy,
            server,
        }
    }

    fn name(&self) -> &str {
        &self.proxy.name
    }

    /// A client through the proxy and the server side of the same
    /// connection.
    async fn connect(&self) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(self.proxy.listen).await.unwrap();
        let (server, _) = timeout(SOON, self.server.accept())
            .await
            .expect("the proxy connects upstream")
            .unwrap();
        (client, server)
    }

    /// `n` connections, each checked to relay both ways.
    async fn connect_many(&self, n: usize) -> Vec<(TcpStream, TcpStream)> {
        let mut v = Vec::new();
        for _ in 0..n {
            let (mut c, mut s) = self.connect().await;
            assert!(one_way(&mut c, &mut s, b"hello").await < SOON);
            assert!(one_way(&mut s, &mut c, b"hello").await < SOON);
            v.push((c, s));
        }
        v
    }

    async fn add(&self, toxic: Toxic) -> Toxic {
        self.engine.add_toxic(self.name(), &toxic).await.unwrap()
    }

    async fn remove(&self, toxic: &str) {
        self.engine.remove_toxic(self.name(), toxic).await.unwrap()
    }
}

/// Write `bytes` on one end and time until all of them are read on the other.
async fn one_way(from: &mut TcpStream, to: &mut TcpStream, bytes: &[u8]) -> Duration {
    let t = Instant::now();
    from.write_all(bytes).await.unwrap();
    let mut got = vec![0u8; bytes.len()];
    timeout(Duration::from_secs(5), to.read_exact(&mut got))
        .await
        .expect("bytes arrive")
        .expect("read");
    assert_eq!(got, bytes);
    t.elapsed()
}

/// What a socket sees next.
#[derive(Debug, PartialEq)]
enum Seen {
    Data(usize),
    Eof,
    Rst,
    Nothing,
}

async fn next_seen(s: &mut TcpStream, within: Duration) -> Seen {
    let mut buf = [0u8; 4096];
    match timeout(within, s.read(&mut buf)).await {
        Err(_) => Seen::Nothing,
        Ok(Ok(0)) => Seen::Eof,
        Ok(Ok(n)) => Seen::Data(n),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => Seen::Rst,
        Ok(Err(e)) => panic!("unexpected read error {e}"),
    }
}

/// Read everything until the socket closes; the bytes and how it closed.
async fn drain(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Seen) {
    let deadline = Instant::now() + within;
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut buf)).await {
            Err(_) => return (all, Seen::Nothing),
            Ok(Ok(0)) => return (all, Seen::Eof),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => return (all, Seen::Rst),
            Ok(Err(e)) => panic!("unexpected read error {e}"),
        }
    }
}

fn latency(ms: u64, stream: Stream) -> Toxic {
    Toxic::new(
        ToxicKind::Latency {
            latency: ms,
            jitter: 0,
        },
        stream,
    )
}

fn within(d: Duration, lo: u64, hi: u64) -> bool {
    d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi)
}

#[tokio::test]
async fn a_proxy_on_port_zero_binds_a_free_loopback_port_and_reports_it() {
    let rig = Rig::new("p").await;
    assert!(rig.proxy.listen.ip().is_loopback());
    assert_ne!(rig.proxy.listen.port(), 0);
    assert!(rig.proxy.enabled);
    assert_eq!(rig.engine.proxy("p").await.unwrap(), rig.proxy);
    let (mut c, mut s) = rig.connect().await;
    one_way(&mut c, &mut s, b"ping").await;
    let v = rig.engine.version().await.unwrap();
    assert_eq!(
        v,
        format!(
            "mqtt-chaos embedded fault engine {}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[tokio::test]
async fn proxy_names_are_unique_and_errors_name_what_failed() {
    let rig = Rig::new("p").await;
    let up = rig.server.local_addr().unwrap().to_string();
    let e = rig.engine.create_proxy("p", loopback(), &up).await;
    assert!(matches!(e, Err(FaultError::ProxyExists { proxy, at: None }) if proxy == "p"));
    let e = rig.engine.proxy("nope").await;
    assert!(matches!(e, Err(FaultError::NoSuchProxy { proxy, at: None }) if proxy == "nope"));
    let e = rig.engine.set_enabled("nope", false).await;
    assert!(matches!(e, Err(FaultError::NoSuchProxy { .. })));
    // The port of "p" is taken: a second proxy cannot listen there.
    let e = rig.engine.create_proxy("q", rig.proxy.listen, &up).await;
    match e {
        Err(FaultError::Listen { addr, .. }) => assert_eq!(addr, rig.proxy.listen.to_string()),
        other => panic!("expected Listen, got {other:?}"),
    }
    rig.engine.delete_proxy("p").await.unwrap();
    assert!(matches!(
        rig.engine.delete_proxy("p").await,
        Err(FaultError::NoSuchProxy { .. })
    ));
}

#[tokio::test]
async fn disabling_closes_every_connection_with_fin_on_both_sides_and_refuses_new_ones() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(3).await;
    let t = Instant::now();
    rig.engine.set_enabled("p", false).await.unwrap();
    for (c, s) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
    let took = t.elapsed();
    eprintln!("measured: disable closed 3 connections (6 sockets) in {took:?}");
    assert!(took < 500 * MS, "closed in {took:?}");
    let e = TcpStream::connect(rig.proxy.listen).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(!rig.engine.proxy("p").await.unwrap().enabled);

    rig.engine.set_enabled("p", true).await.unwrap();
    assert_eq!(
        rig.engine.proxy("p").await.unwrap().listen,
        rig.proxy.listen
    );
    let (mut c, mut s) = rig.connect().await;
    one_way(&mut c, &mut s, b"again").await;
}

#[tokio::test]
async fn deleting_a_proxy_closes_its_connections_and_its_port() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    rig.engine.delete_proxy("p").await.unwrap();
    for (c, s) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
    let e = TcpStream::connect(rig.proxy.listen).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn a_toxic_added_to_established_connections_acts_at_once_on_its_stream_only() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(4).await;

    rig.add(latency(200, Stream::Downstream)).await;
    for (c, s) in &mut conns {
        let up = one_way(c, s, b"u").await;
        let down = one_way(s, c, b"d").await;
        eprintln!("measured: latency 200 downstream: up {up:?}, down {down:?}");
        assert!(up < 150 * MS, "upstream untouched, took {up:?}");
        assert!(within(down, 200, 400), "downstream delayed, took {down:?}");
    }

    rig.add(latency(200, Stream::Upstream)).await;
    rig.remove("latency_downstream").await;
    for (c, s) in &mut conns {
        let up = one_way(c, s, b"u").await;
        let down = one_way(s, c, b"d").await;
        assert!(within(up, 200, 400), "upstream delayed, took {up:?}");
        assert!(down < 150 * MS, "downstream freed, took {down:?}");
    }

    // A later connection gets the toxics that exist.
    let (mut c, mut s) = rig.connect().await;
    assert!(within(one_way(&mut c, &mut s, b"u").await, 200, 400));
    assert!(one_way(&mut s, &mut c, b"d").await < 150 * MS);
}

#[tokio::test]
async fn reset_removes_every_toxic_and_enables_every_proxy() {
    let rig = Rig::new("p").await;
    rig.add(latency(200, Stream::Upstream)).await;
    rig.add(latency(200, Stream::Downstream)).await;
    rig.engine.set_enabled("p", false).await.unwrap();
    rig.engine.reset().await.unwrap();
    let info = rig.engine.proxy("p").await.unwrap();
    assert!(info.enabled);
    assert!(info.toxics.is_empty());
    for (c, s) in &mut rig.connect_many(3).await {
        assert!(one_way(c, s, b"u").await < 150 * MS);
        assert!(one_way(s, c, b"d").await < 150 * MS);
    }
}

#[tokio::test]
async fn reset_clears_both_streams_on_live_connections() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(3).await;
    rig.add(latency(200, Stream::Upstream)).await;
    rig.add(latency(200, Stream::Downstream)).await;
    rig.engine.reset().await.unwrap();
    for (c, s) in &mut conns {
        assert!(one_way(c, s, b"u").await < 150 * MS);
        assert!(one_way(s, c, b"d").await < 150 * MS);
    }
}

#[tokio::test]
async fn toxic_names_are_unique_across_streams_and_default_to_type_and_stream() {
    let rig = Rig::new("p").await;
    let t = rig.add(latency(10, Stream::Upstream)).await;
    assert_eq!(t.name, "latency_upstream");
    let unnamed = latency(10, Stream::Downstream).named("");
    assert_eq!(rig.add(unnamed).await.name, "latency_downstream");
    let clash = latency(10, Stream::Downstream).named("latency_upstream");
    let e = rig.engine.add_toxic("p", &clash).await;
    assert!(
        matches!(e, Err(FaultError::ToxicExists { proxy, toxic, .. }) if proxy == "p" && toxic == "latency_upstream")
    );
    rig.add(Toxic::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream).named("t"))
        .await;
    let names: Vec<String> = rig
        .engine
        .proxy("p")
        .await
        .unwrap()
        .toxics
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["latency_upstream", "t", "latency_downstream"]);
    let e = rig.engine.remove_toxic("p", "nope").await;
    assert!(matches!(e, Err(FaultError::NoSuchToxic { .. })));
    let e = rig
        .engine
        .add_toxic(
            "p",
            &latency(1, Stream::Upstream).named("x").with_toxicity(1.5),
        )
        .await;
    assert!(matches!(e, Err(FaultError::InvalidToxic(_))));
}

#[tokio::test]
async fn toxics_in_one_direction_chain_in_creation_order() {
    // limit_data then slicer: the 10 bytes allowed arrive sliced, then EOF.
    // The other order would slice first and still cut at 10 bytes, so the
    // observable difference is the reverse case below: slicer then
    // limit_data with 1-byte slices still forwards exactly 10 bytes.
    let rig = Rig::new("p").await;
    rig.add(Toxic::new(
        ToxicKind::LimitData { bytes: 10 },
        Stream::Downstream,
    ))
    .await;
    rig.add(Toxic::new(
        ToxicKind::Latency {
            latency: 150,
            jitter: 0,
        },
        Stream::Downstream,
    ))
    .await;
    let (mut c, mut s) = rig.connect().await;
    let t = Instant::now();
    s.write_all(&[9u8; 50]).await.unwrap();
    let (bytes, end) = drain(&mut c, SOON).await;
    assert_eq!(bytes, [9u8; 10]);
    assert_eq!(end, Seen::Eof);
    // The close left limit_data and went through the latency toxic after
    // the data: both arrive after the delay, not before.
    assert!(within(t.elapsed(), 150, 400), "{:?}", t.elapsed());
}

/// Which of 10 connections a toxicity-0.5 latency toxic delays, checking
/// that each connection keeps its roll.
async fn delayed_connections(seed: u64) -> Vec<bool> {
    let rig = Rig::with_seed("p", seed).await;
    rig.add(latency(100, Stream::Downstream).with_toxicity(0.5))
        .await;
    let mut conns = Vec::new();
    for _ in 0..10 {
        conns.push(rig.connect().await);
    }
    let mut delayed = Vec::new();
    for (c, s) in &mut conns {
        let first = one_way(s, c, b"a").await >= 100 * MS;
        let again = one_way(s, c, b"b").await >= 100 * MS;
        assert_eq!(first, again, "a connection keeps its roll");
        delayed.push(first);
    }
    delayed
}

#[tokio::test]
async fn toxicity_is_rolled_once_per_connection_and_the_seed_repeats_it() {
    let a = delayed_connections(7).await;
    let hits = a.iter().filter(|d| **d).count();
    assert!((1..10).contains(&hits), "{hits} of 10 delayed");
    assert_eq!(delayed_connections(7).await, a);
}

#[tokio::test]
async fn updating_a_toxic_reaches_every_open_connection() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(4).await;
    rig.add(latency(50, Stream::Upstream)).await;
    rig.engine
        .update_toxic(
            "p",
            "latency_upstream",
            ToxicKind::Latency {
                latency: 250,
                jitter: 0,
            },
            1.0,
        )
        .await
        .unwrap();
    for (c, s) in &mut conns {
        assert!(within(one_way(c, s, b"u").await, 250, 450));
        assert!(one_way(s, c, b"d").await < 150 * MS);
    }
}

#[tokio::test]
async fn latency_is_pipelined_so_a_stream_keeps_its_rate() {
    let rig = Rig::new("p").await;
    rig.add(latency(200, Stream::Downstream)).await;
    let (mut c, mut s) = rig.connect().await;
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..10u8 {
            s.write_all(&[i; 100]).await.unwrap();
            tokio::time::sleep(20 * MS).await;
        }
        s
    });
    let mut got = vec![0u8; 1000];
    timeout(SOON, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    eprintln!("measured: 10 chunks 20 ms apart through latency 200: {took:?}");
    // Serialised it would be 10 × 200 ms; pipelined, 200 ms + 9 × 20 ms.
    assert!(within(took, 380, 700), "{took:?}");
    let _s = writer.await.unwrap();
}

#[tokio::test]
async fn removing_latency_flushes_queued_data_at_once_without_loss() {
    let rig = Rig::new("p").await;
    rig.add(latency(3000, Stream::Downstream)).await;
    let (mut c, mut s) = rig.connect().await;
    for i in 0..20u8 {
        s.write_all(&[i; 64]).await.unwrap();
    }
    assert_eq!(next_seen(&mut c, 100 * MS).await, Seen::Nothing);
    let t = Instant::now();
    rig.remove("latency_downstream").await;
    let mut got = vec![0u8; 20 * 64];
    timeout(SOON, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    eprintln!(
        "measured: removal flushed 20 queued chunks in {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < 500 * MS, "{:?}", t.elapsed());
    let want: Vec<u8> = (0..20u8).flat_map(|i| [i; 64]).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn updating_latency_applies_the_new_delay_without_waiting_out_the_old() {
    let rig = Rig::new("p").await;
    rig.add(latency(3000, Stream::Downstream)).await;
    let (mut c, mut s) = rig.connect().await;
    s.write_all(b"queued").await.unwrap();
    assert_eq!(next_seen(&mut c, 100 * MS).await, Seen::Nothing);
    rig.engine
        .update_toxic(
            "p",
            "latency_downstream",
            ToxicKind::Latency {
                latency: 100,
                jitter: 0,
            },
            1.0,
        )
        .await
        .unwrap();
    let mut got = [0u8; 6];
    timeout(500 * MS, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(within(one_way(&mut s, &mut c, b"x").await, 100, 300));
}

#[tokio::test]
async fn bandwidth_limits_the_rate_and_removal_releases_everything_queued() {
    let rig = Rig::new("p").await;
    rig.add(Toxic::new(
        ToxicKind::Bandwidth { rate: 10 },
        Stream::Downstream,
    ))
    .await;
    let (mut c, mut s) = rig.connect().await;
    // 10 KB/s: 5000 bytes take 500 ms.
    let took = one_way(&mut s, &mut c, &[1u8; 5000]).await;
    eprintln!("measured: 5000 B at 10 KB/s took {took:?}");
    assert!(within(took, 400, 900), "{took:?}");

    s.write_all(&[2u8; 20_000]).await.unwrap();
    let mut first = [0u8; 1000];
    timeout(SOON, c.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    let t = Instant::now();
    rig.remove("bandwidth_downstream").await;
    let mut rest = vec![0u8; 19_000];
    timeout(SOON, c.read_exact(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < 300 * MS, "{:?}", t.elapsed());
    assert!(rest.iter().all(|b| *b == 2));
}

#[tokio::test]
async fn timeout_drops_data_and_closes_both_sides_after_silence_restarting_per_chunk() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    rig.add(Toxic::new(
        ToxicKind::Timeout { timeout: 300 },
        Stream::Upstream,
    ))
    .await;
    let (c, s) = &mut conns[0];
    // Chunks every 100 ms keep it open (each restarts the timer) and vanish.
    let mut last = Instant::now();
    for _ in 0..6 {
        c.write_all(b"ping").await.unwrap();
        last = Instant::now();
        assert_eq!(next_seen(s, 100 * MS).await, Seen::Nothing);
    }
    assert_eq!(next_seen(c, SOON).await, Seen::Eof);
    let since = last.elapsed();
    eprintln!("measured: timeout 300 closed {since:?} after the last chunk");
    assert!(
        within(since, 250, 700),
        "closed {since:?} after the last chunk"
    );
    assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    // The idle connection closed 300 ms after the toxic joined.
    let (c2, s2) = &mut conns[1];
    assert_eq!(next_seen(c2, SOON).await, Seen::Eof);
    assert_eq!(next_seen(s2, SOON).await, Seen::Eof);
    // The toxic stays listed.
    assert_eq!(rig.engine.proxy("p").await.unwrap().toxics.len(), 1);
}

#[tokio::test]
async fn timeout_zero_drops_forever_and_removing_it_closes_every_connection_it_held() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(3).await;
    rig.add(Toxic::new(
        ToxicKind::Timeout { timeout: 0 },
        Stream::Downstream,
    ))
    .await;
    for (c, s) in &mut conns {
        s.write_all(b"lost").await.unwrap();
        assert_eq!(next_seen(c, 100 * MS).await, Seen::Nothing);
    }
    assert_eq!(next_seen(&mut conns[0].0, 300 * MS).await, Seen::Nothing);
    let t = Instant::now();
    rig.remove("timeout_downstream").await;
    for (c, s) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
    assert!(t.elapsed() < 500 * MS);
}

#[tokio::test]
async fn reset_closes_the_connections_a_timeout_toxic_held() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    rig.add(Toxic::new(
        ToxicKind::Timeout { timeout: 0 },
        Stream::Upstream,
    ))
    .await;
    rig.engine.reset().await.unwrap();
    for (c, s) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
}

#[tokio::test]
async fn a_downstream_timeout_passes_upstream_bytes_and_the_server_close_reaches_the_client() {
    let rig = Rig::new("p").await;
    let (mut c, mut s) = rig.connect().await;
    rig.add(Toxic::new(
        ToxicKind::Timeout { timeout: 0 },
        Stream::Downstream,
    ))
    .await;
    assert!(one_way(&mut c, &mut s, b"pingreq").await < 150 * MS);
    s.write_all(b"pingresp").await.unwrap();
    assert_eq!(next_seen(&mut c, 150 * MS).await, Seen::Nothing);
    let t = Instant::now();
    drop(s); // the broker's keepalive close
    assert_eq!(next_seen(&mut c, SOON).await, Seen::Eof);
    assert!(t.elapsed() < 200 * MS);
}

#[tokio::test]
async fn reset_peer_added_later_waits_for_data_then_closes_with_fin() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    rig.add(Toxic::new(
        ToxicKind::ResetPeer { timeout: 100 },
        Stream::Upstream,
    ))
    .await;
    let (c, s) = &mut conns[0];
    assert_eq!(next_seen(c, 300 * MS).await, Seen::Nothing, "idle: nothing");
    let t = Instant::now();
    c.write_all(b"pingreq").await.unwrap();
    assert_eq!(next_seen(c, SOON).await, Seen::Eof);
    assert!(within(t.elapsed(), 90, 400), "{:?}", t.elapsed());
    let (bytes, end) = drain(s, SOON).await;
    assert!(bytes.is_empty(), "the trigger is dropped");
    assert_eq!(end, Seen::Eof);
    // The other connection stayed idle and open.
    let (c2, _) = &mut conns[1];
    assert_eq!(next_seen(c2, 50 * MS).await, Seen::Nothing);
}

#[tokio::test]
async fn reset_peer_present_at_accept_closes_with_rst() {
    let rig = Rig::new("p").await;
    rig.add(Toxic::new(
        ToxicKind::ResetPeer { timeout: 0 },
        Stream::Upstream,
    ))
    .await;
    let (mut c, mut s) = rig.connect().await;
    assert_eq!(next_seen(&mut c, 200 * MS).await, Seen::Nothing);
    c.write_all(b"connect").await.unwrap();
    assert_eq!(next_seen(&mut c, SOON).await, Seen::Rst);
    assert_eq!(next_seen(&mut s, SOON).await, Seen::Rst);
}

#[tokio::test]
async fn reset_peer_added_later_resets_when_data_is_left_unread() {
    let rig = Rig::new("p").await;
    let (mut c, _s) = rig.connect().await;
    rig.add(Toxic::new(
        ToxicKind::ResetPeer { timeout: 200 },
        Stream::Upstream,
    ))
    .await;
    let t = Instant::now();
    let mut seen = Seen::Nothing;
    let mut buf = [0u8; 64];
    let mut tick = tokio::time::interval(50 * MS);
    // Keep sending every 50 ms until the first thing the socket reports.
    for _ in 0..40 {
        tokio::select! {
            biased;
            r = c.read(&mut buf) => {
                seen = match r {
                    Ok(0) => Seen::Eof,
                    Ok(n) => Seen::Data(n),
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => Seen::Rst,
                    Err(e) => panic!("{e}"),
                };
                break;
            }
            _ = tick.tick() => {
                if let Err(e) = c.write_all(b"ping").await {
                    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
                    seen = Seen::Rst;
                    break;
                }
            }
        }
    }
    assert_eq!(seen, Seen::Rst);
    eprintln!(
        "measured: reset_peer 200 + pings: RST after {:?}",
        t.elapsed()
    );
    assert!(within(t.elapsed(), 190, 600), "{:?}", t.elapsed());
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let rig = Rig::new("p").await;
    let (mut c, s) = rig.connect().await;
    rig.add(Toxic::new(
        ToxicKind::SlowClose { delay: 300 },
        Stream::Downstream,
    ))
    .await;
    let t = Instant::now();
    drop(s);
    assert_eq!(next_seen(&mut c, SOON).await, Seen::Eof);
    eprintln!("measured: slow_close 300: EOF after {:?}", t.elapsed());
    assert!(within(t.elapsed(), 290, 600), "{:?}", t.elapsed());
}

#[tokio::test]
async fn slicer_cuts_data_into_small_delayed_slices_with_the_bytes_intact() {
    let rig = Rig::new("p").await;
    let (mut c, mut s) = rig.connect().await;
    rig.add(Toxic::new(
        ToxicKind::Slicer {
            average_size: 10,
            size_variation: 5,
            delay: 20_000,
        },
        Stream::Downstream,
    ))
    .await;
    let payload: Vec<u8> = (0..218u32).map(|i| (i % 251) as u8).collect();
    let t = Instant::now();
    s.write_all(&payload).await.unwrap();
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = [0u8; 1024];
    while got.len() < payload.len() && reads < 400 {
        let n = timeout(SOON, c.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, payload);
    eprintln!(
        "measured: slicer 10±5/20ms: 218 B in {reads} reads, {:?}",
        t.elapsed()
    );
    // Toxiproxy: 19 to 21 slices of 4..15 bytes, ~20 ms each.
    assert!(reads >= 8, "{reads} reads");
    assert!(within(t.elapsed(), 200, 1500), "{:?}", t.elapsed());
}

#[tokio::test]
async fn limit_data_forwards_exactly_its_bytes_per_connection_then_closes() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await; // 5 bytes already passed down
    rig.add(Toxic::new(
        ToxicKind::LimitData { bytes: 100 },
        Stream::Downstream,
    ))
    .await;
    for (c, s) in &mut conns {
        // Upstream is not limited.
        assert!(one_way(c, s, &[0u8; 300]).await < SOON);
        for i in 0..10u8 {
            s.write_all(&[i; 31]).await.unwrap();
        }
        let (bytes, end) = drain(c, SOON).await;
        assert_eq!(bytes.len(), 100, "counted from when the toxic joined");
        assert_eq!(&bytes[93..], &[3u8; 7]);
        assert_eq!(end, Seen::Eof);
    }
    assert_eq!(rig.engine.proxy("p").await.unwrap().toxics.len(), 1);
}

#[tokio::test]
async fn half_open_drops_everything_hides_the_server_close_and_heals() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(3).await;
    rig.engine.set_half_open("p", true).await.unwrap();
    for (c, s) in &mut conns {
        c.write_all(b"up").await.unwrap();
        s.write_all(b"down").await.unwrap();
    }
    for (c, s) in &mut conns {
        assert_eq!(next_seen(s, 100 * MS).await, Seen::Nothing);
        assert_eq!(next_seen(c, 100 * MS).await, Seen::Nothing);
    }
    // The broker closes connection 0: the client must not notice.
    let (c0, s0) = conns.remove(0);
    drop(s0);
    let mut c0 = c0;
    assert_eq!(next_seen(&mut c0, 300 * MS).await, Seen::Nothing);
    // A new connection is accepted and dead too.
    let (mut cn, mut sn) = rig.connect().await;
    cn.write_all(b"x").await.unwrap();
    assert_eq!(next_seen(&mut sn, 100 * MS).await, Seen::Nothing);

    rig.engine.set_half_open("p", false).await.unwrap();
    assert_eq!(next_seen(&mut c0, SOON).await, Seen::Eof);
    conns.push((cn, sn));
    for (c, s) in &mut conns {
        assert!(one_way(c, s, b"again").await < 150 * MS);
        assert!(one_way(s, c, b"again").await < 150 * MS);
    }
}

#[tokio::test]
async fn cut_hides_both_closes_until_it_heals_then_closes_the_other_side() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(3).await;
    rig.engine.set_cut("p", true).await.unwrap();
    for (c, s) in &mut conns {
        c.write_all(b"up").await.unwrap();
        s.write_all(b"down").await.unwrap();
    }
    for (c, s) in &mut conns {
        assert_eq!(next_seen(s, 100 * MS).await, Seen::Nothing);
        assert_eq!(next_seen(c, 100 * MS).await, Seen::Nothing);
    }
    // The client of connection 0 gives up: the broker must not notice.
    let (c0, mut s0) = conns.remove(0);
    drop(c0);
    assert_eq!(next_seen(&mut s0, 300 * MS).await, Seen::Nothing);
    // The broker closes connection 1: its client must not notice either.
    let (mut c1, s1) = conns.remove(0);
    drop(s1);
    assert_eq!(next_seen(&mut c1, 300 * MS).await, Seen::Nothing);

    rig.engine.set_cut("p", false).await.unwrap();
    // Healed: each stale half is closed; the untouched connection works.
    assert_eq!(next_seen(&mut s0, SOON).await, Seen::Eof);
    assert_eq!(next_seen(&mut c1, SOON).await, Seen::Eof);
    for (c, s) in &mut conns {
        assert!(one_way(c, s, b"again").await < 150 * MS);
        assert!(one_way(s, c, b"again").await < 150 * MS);
    }
    // A reset ends a cut as well.
    rig.engine.set_cut("p", true).await.unwrap();
    rig.engine.reset().await.unwrap();
    for (c, s) in &mut conns {
        assert!(one_way(c, s, b"after reset").await < 150 * MS);
    }
}

#[tokio::test]
async fn megabytes_pass_intact_both_ways_at_once() {
    let rig = Rig::new("p").await;
    let (c, s) = rig.connect().await;
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (mut cr, mut cw) = c.into_split();
    let (mut sr, mut sw) = s.into_split();
    let (d1, d2) = (data.clone(), data.clone());
    let t = Instant::now();
    let w1 = tokio::spawn(async move { cw.write_all(&d1).await.map(|()| cw) });
    let w2 = tokio::spawn(async move { sw.write_all(&d2).await.map(|()| sw) });
    let mut up = vec![0u8; data.len()];
    let mut down = vec![0u8; data.len()];
    let (r1, r2) = tokio::join!(
        timeout(Duration::from_secs(20), sr.read_exact(&mut up)),
        timeout(Duration::from_secs(20), cr.read_exact(&mut down)),
    );
    r1.unwrap().unwrap();
    r2.unwrap().unwrap();
    eprintln!("measured: 2 x 4 MiB relayed both ways in {:?}", t.elapsed());
    assert!(up == data && down == data);
    let _ = (w1.await, w2.await);
}

/// The relay's fast path (no toxic: a chunk is written on at once) meets
/// the toxic pipeline mid-stream: a reader that stops for a while fills the
/// sockets, a toxic arrives and leaves while data waits in both, and every
/// byte still arrives once and in order.
#[tokio::test]
async fn a_stream_stays_intact_across_toxics_added_and_removed_behind_a_stalled_reader() {
    let rig = Rig::new("p").await;
    let (c, mut s) = rig.connect().await;
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (_cr, mut cw) = c.into_split();
    let d = data.clone();
    let w = tokio::spawn(async move { cw.write_all(&d).await.map(|()| cw) });
    let mut got = vec![0u8; data.len()];
    // The reader stalls: the proxy's writes to it block and queue.
    s.read_exact(&mut got[..1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = rig.add(latency(20, Stream::Upstream)).await;
    s.read_exact(&mut got[1024..2 * 1024 * 1024]).await.unwrap();
    rig.remove(&t.name).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    timeout(
        Duration::from_secs(20),
        s.read_exact(&mut got[2 * 1024 * 1024..]),
    )
    .await
    .expect("the rest arrives")
    .unwrap();
    assert!(got == data, "every byte once and in order");
    let _ = w.await;
}

#[tokio::test]
async fn a_connection_leaves_no_task_or_socket_after_either_side_closes() {
    let rig = Rig::new("p").await;
    let conns = rig.connect_many(6).await;
    assert_eq!(rig.engine.connections("p").unwrap(), 6);
    let mut survivors = Vec::new();
    for (i, (c, s)) in conns.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(c);
            survivors.push(s);
        } else {
            drop(s);
            survivors.push(c);
        }
    }
    // The other side of each sees the close: the proxy closed its socket.
    for s in &mut survivors {
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
    timeout(SOON, rig.engine.wait_for_connections("p", 0))
        .await
        .expect("every link ended")
        .unwrap();
}

#[tokio::test]
async fn shutdown_closes_every_listener_and_connection() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    let clone = rig.engine.clone();
    timeout(SOON, clone.shutdown())
        .await
        .expect("shutdown ends");
    for (c, s) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
        assert_eq!(next_seen(s, SOON).await, Seen::Eof);
    }
    let e = TcpStream::connect(rig.proxy.listen).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(matches!(
        rig.engine.proxy("p").await,
        Err(FaultError::NoSuchProxy { .. })
    ));
}

#[tokio::test]
async fn dropping_the_engine_stops_listening_and_closes_connections() {
    let rig = Rig::new("p").await;
    let mut conns = rig.connect_many(2).await;
    let listen = rig.proxy.listen;
    drop(rig.engine);
    for (c, _) in &mut conns {
        assert_eq!(next_seen(c, SOON).await, Seen::Eof);
    }
    // The aborted accept task is dropped by the runtime shortly after.
    let mut refused = false;
    for _ in 0..100 {
        match TcpStream::connect(listen).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(10 * MS).await,
        }
    }
    assert!(refused, "still listening after the engine was dropped");
}

mod api {
    //! Toxiproxy's HTTP API over the engine, replaying the transcript
    //! recorded from a real Toxiproxy 2.12.

    use std::collections::BTreeMap;

    use mqtt_chaos::fault::engine::api::ApiServer;
    use mqtt_chaos::fault::engine::Engine;
    use serde_json::Value;

    const TRANSCRIPT: &str = include_str!("../fixtures/toxiproxy-2.12-api-transcript.json");

    /// The transcript's fixed listen ports (260xx), each mapped to a free
    /// port, so the replay does not depend on which ports are free.
    fn port_map(text: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut rest = text;
        while let Some(i) = rest.find("127.0.0.1:260") {
            let port = &rest[i + 10..i + 15];
            map.entry(port.to_owned())
                .or_insert_with(|| crate::support::free_port().to_string());
            rest = &rest[i + 15..];
        }
        map
    }

    fn remap(s: &str, map: &BTreeMap<String, String>) -> String {
        let mut out = s.to_owned();
        for (from, to) in map {
            out = out.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
        }
        out
    }

    #[tokio::test]
    async fn the_api_replays_the_toxiproxy_transcript() {
        let steps: Vec<Value> = serde_json::from_str(TRANSCRIPT).unwrap();
        let map = port_map(TRANSCRIPT);
        let server = ApiServer::bind(Engine::new(1), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let task = tokio::spawn(server.serve());
        let client = reqwest::Client::new();
        let mut replayed = 0;
        for step in &steps {
            let name = step["step"].as_str().unwrap();
            if name.starts_with("[server2") {
                // A second Toxiproxy started with -proxy-metrics, and traffic
                // through it: all 111 are replayed against the process,
                // `--proxy-metrics` included, in tests/it/replay.rs.
                continue;
            }
            let method =
                reqwest::Method::from_bytes(step["method"].as_str().unwrap().as_bytes()).unwrap();
            let url = format!("{base}{}", step["path"].as_str().unwrap());
            let mut req = client.request(method, url);
            for (k, v) in step["request_headers"].as_object().unwrap() {
                req = req.header(k.as_str(), v.as_str().unwrap());
            }
            if let Some(body) = step["request_body"].as_str() {
                req = req.body(remap(body, &map));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ctype = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = resp.text().await.unwrap();

            assert_eq!(
                status,
                step["status"].as_u64().unwrap() as u16,
                "{name}: {body}"
            );
            assert_eq!(
                ctype.as_deref(),
                step["response_content_type"].as_str(),
                "{name}"
            );
            let want = remap(step["response_body"].as_str().unwrap(), &map);
            if name == "GET /version" {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert!(v["version"]
                    .as_str()
                    .unwrap()
                    .starts_with("mqtt-chaos embedded fault engine"));
                assert!(body.starts_with("{\"version\": ") && body.ends_with("}\n"));
            } else if let Ok(want_v) = serde_json::from_str::<Value>(&want) {
                let got_v: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"));
                assert_eq!(got_v, want_v, "{name}");
                assert_eq!(body.ends_with('\n'), want.ends_with('\n'), "{name}");
            } else {
                assert_eq!(body, want, "{name}");
            }
            replayed += 1;
        }
        assert_eq!(replayed, 107);
        task.abort();
    }

    #[tokio::test]
    async fn a_toxic_added_over_http_acts_on_a_live_connection() {
        use super::{one_way, within, Rig};
        let rig = Rig::new("p").await;
        let (mut c, mut s) = rig.connect().await;
        let server = ApiServer::bind(rig.engine.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let task = tokio::spawn(server.serve());
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{base}/proxies/p/toxics"))
            .body(r#"{"type":"latency","stream":"upstream","attributes":{"latency":200}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(within(one_way(&mut c, &mut s, b"u").await, 200, 400));
        let r = client
            .delete(format!("{base}/proxies/p/toxics/latency_upstream"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert!(one_way(&mut c, &mut s, b"u").await < super::MS * 150);
        task.abort();
    }
}

#[tokio::test]
async fn upstream_connections_are_opened_from_the_source_addresses_in_turn() {
    let server = TcpListener::bind(loopback()).await.unwrap();
    let sources: Vec<std::net::IpAddr> =
        vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let engine = Engine::with_sources(7, sources.clone());
    let up = server.local_addr().unwrap().to_string();
    let proxy = engine.create_proxy("src", loopback(), &up).await.unwrap();
    let mut seen = Vec::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut client = TcpStream::connect(proxy.listen).await.unwrap();
        let (mut s, peer) = timeout(SOON, server.accept())
            .await
            .expect("the proxy connects upstream")
            .unwrap();
        // The link relays from that address.
        assert!(one_way(&mut client, &mut s, b"hi").await < SOON);
        seen.push(peer.ip());
        held.push((client, s));
    }
    assert_eq!(
        seen,
        vec![sources[0], sources[1], sources[0], sources[1]],
        "upstream peers, in accept order"
    );
}

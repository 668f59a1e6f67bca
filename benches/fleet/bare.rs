//! The baseline: a bare rumqttc fleet doing what the harness's devices do
//! under a fault-free scenario, and nothing more. N `AsyncClient`s publish
//! on a fixed schedule (device i connects at i × stagger, as the harness
//! staggers its fleet, and publishes slot k at its connect time + a fixed
//! phase + k / rate); one subscriber counts what arrives and records the
//! end-to-end latency (receive time − the slot time written in the payload)
//! in an HDR histogram. It runs as a process of its own (this binary with
//! `--bare`), so its CPU and memory are measured apart from the bench's.
//! It ends by printing one JSON line of [`BareReport`] on stdout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::time::{sleep, sleep_until, Instant};

/// What the bare fleet is asked to do.
#[derive(Debug, Clone)]
pub struct Load {
    pub devices: u32,
    pub port: u16,
    /// Messages per second per device; `None`: connect and hold (idle).
    pub rate: Option<f64>,
    pub qos: u8,
    pub payload: usize,
    pub keepalive: Duration,
    /// How long the devices publish (or hold their connection).
    pub duration: Duration,
    /// At most this long after the schedule for the last messages to arrive.
    pub drain: Duration,
}

/// The bare fleet's own count of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BareReport {
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub e2e_p99_us: Option<u64>,
    /// The p99 of what arrived from [`crate::STEADY_FROM`] after the start
    /// to the end of the schedule: past the connection ramp.
    pub steady_p99_us: Option<u64>,
    pub connection_errors: u64,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
}

const TOPIC_PREFIX: &str = "bench/";

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The same stagger as the harness's fleet: 10 ms apart, the whole fleet
/// within 2 s.
fn stagger(n: u32) -> Duration {
    let n = n.max(1);
    (Duration::from_millis(10) * n).min(Duration::from_secs(2)) / n
}

/// Device i's schedule phase within one period: a fixed low-discrepancy
/// spread (the golden ratio), so the fleet's load is even and every run
/// the same.
fn phase(i: u32, period: Duration) -> Duration {
    period.mul_f64((f64::from(i) * 0.618_033_988_749_895).fract())
}

/// `<device> <seq> <t_intended_ns>\n`, padded with `.` to `size`.
fn payload(device: u32, seq: u64, t_ns: u128, size: usize) -> Vec<u8> {
    let mut p = format!("{device} {seq} {t_ns}\n").into_bytes();
    if p.len() < size {
        p.resize(size, b'.');
    }
    p
}

fn t_intended_ns(p: &[u8]) -> Option<u128> {
    let line = std::str::from_utf8(p.split(|b| *b == b'\n').next()?).ok()?;
    line.split(' ').nth(2)?.parse().ok()
}

fn options(id: String, load: &Load) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", load.port);
    o.set_keep_alive(load.keepalive);
    o.set_clean_session(true);
    o.set_max_packet_size(512 * 1024, 512 * 1024);
    o
}

/// Run the bare fleet to its end; the report it prints.
pub async fn run(load: Load) -> Result<BareReport, String> {
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3);
    let hist = Arc::new(Mutex::new(new_hist().map_err(|e| e.to_string())?));
    let steady = Arc::new(Mutex::new(new_hist().map_err(|e| e.to_string())?));
    let epoch = Instant::now();

    // The subscriber first, subscribed before any device connects.
    let (sub, mut sub_el) = AsyncClient::new(options("bare-subscriber".into(), &load), 16);
    sub.subscribe(format!("{TOPIC_PREFIX}#"), qos(load.qos))
        .await
        .map_err(|e| e.to_string())?;
    let subscribed = async {
        loop {
            match sub_el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("subscriber: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .map_err(|_| "subscriber: no SUBACK within 10 s".to_string())??;
    let start = Instant::now() + Duration::from_millis(100);
    let publish_until = start + load.duration;
    let steady_from = start + crate::STEADY_FROM;
    {
        let (counts, hist, steady, stop) =
            (counts.clone(), hist.clone(), steady.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match sub_el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let at = Instant::now();
                        let now = (at - epoch).as_nanos();
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = t_intended_ns(&p.payload) {
                            let us =
                                ((now.saturating_sub(t) / 1000).max(1) as u64).min(3_600_000_000);
                            let _ = hist.lock().unwrap().record(us);
                            if at >= steady_from && at < publish_until {
                                let _ = steady.lock().unwrap().record(us);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }

    let step = stagger(load.devices);
    let mut clients = Vec::with_capacity(load.devices as usize);
    for i in 0..load.devices {
        let (client, mut el) = AsyncClient::new(options(format!("bare-{i}"), &load), 16);
        clients.push(client.clone());
        let connect_at = start + step * i;
        let (counts, stop, load) = (counts.clone(), stop.clone(), load.clone());
        tokio::spawn(async move {
            sleep_until(connect_at).await;
            if let Some(rate) = load.rate {
                let period = Duration::from_secs_f64(1.0 / rate);
                let first = connect_at + phase(i, period);
                let topic = format!("{TOPIC_PREFIX}{i}");
                let counts = counts.clone();
                tokio::spawn(async move {
                    let mut seq = 0u64;
                    loop {
                        let slot = first + period.mul_f64(seq as f64);
                        if slot >= publish_until {
                            break;
                        }
                        sleep_until(slot).await;
                        let t = (slot - epoch).as_nanos();
                        let p = payload(i, seq, t, load.payload);
                        if client
                            .publish(&topic, qos(load.qos), false, p)
                            .await
                            .is_err()
                        {
                            break;
                        }
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                        seq += 1;
                    }
                });
            }
            while !stop.load(Ordering::Relaxed) {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        counts.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }

    sleep_until(publish_until).await;
    // The drain: until everything sent arrived, at most `drain`.
    let drained_by = Instant::now() + load.drain;
    while load.rate.is_some() && Instant::now() < drained_by {
        let sent = counts.sent.load(Ordering::Relaxed);
        if counts.delivered.load(Ordering::Relaxed) >= sent && sent > 0 {
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in &clients {
        let _ = c.try_disconnect();
    }
    let _ = sub.try_disconnect();
    sleep(Duration::from_millis(500)).await;

    let h = hist.lock().unwrap();
    let st = steady.lock().unwrap();
    Ok(BareReport {
        steady_p99_us: (!st.is_empty()).then(|| st.value_at_quantile(0.99)),
        sent: counts.sent.load(Ordering::Relaxed),
        acked: counts.acked.load(Ordering::Relaxed),
        delivered: counts.delivered.load(Ordering::Relaxed),
        e2e_p99_us: (!h.is_empty()).then(|| h.value_at_quantile(0.99)),
        connection_errors: counts.errors.load(Ordering::Relaxed),
    })
}

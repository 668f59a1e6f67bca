//! The timeline: one task per scheduled fault, applying it at its time and
//! healing it at the end of its window, each change recorded in the
//! history (requested, then confirmed by the backend), and the final heal
//! of whatever an ended run left applied.
//!
//! Every call to a backend has a deadline ([`CALL_DEADLINE`] for the fault
//! backend, [`BROKER_DEADLINE`]/[`BROKER_START_DEADLINE`] for the broker):
//! a backend that hangs fails its fault (the run's verdict is `error`)
//! instead of applying it late or stretching the run.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex as AsyncMutex};

use crate::broker::Broker;
use crate::clock::{Nanos, RunClock};
use crate::fault::{LinkFaults, Stream, Toxic, ToxicKind};
use crate::fleet::Fleet;
use crate::health::Cause;
use crate::history::{Event, FaultEvent};
use crate::plan::ScheduledFault;
use crate::scenario::{FaultKind, StreamSel};

/// How long one call to the fault backend (an HTTP request to Toxiproxy, a
/// change in the embedded engine) may take before it counts as failed.
pub const CALL_DEADLINE: Duration = Duration::from_secs(5);
/// How long a broker stop, kill, pause, resume or partition may take.
pub const BROKER_DEADLINE: Duration = Duration::from_secs(20);
/// How long a broker may take to start and accept MQTT connections again.
pub const BROKER_START_DEADLINE: Duration = Duration::from_secs(60);

/// `fut`, or an error once `deadline` passed.
pub async fn within<T, E: std::fmt::Display>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s (deadline)",
            deadline.as_secs_f64()
        )),
    }
}

/// Handles shared by the fault tasks.
pub(super) struct Targets {
    pub broker: Arc<AsyncMutex<Box<dyn Broker>>>,
    pub links: Arc<dyn LinkFaults>,
    /// group → proxy name
    pub proxies: HashMap<String, String>,
    pub fleet: Arc<AsyncMutex<Fleet>>,
    pub clock: RunClock,
    pub events: mpsc::Sender<Event>,
    /// A broker fault stopped or killed the broker and it was not started
    /// again (yet): the final heal starts it.
    pub broker_down: AtomicBool,
    /// The timeline has a half_open fault (a mode of the embedded engine
    /// only: Toxiproxy refuses the call), so the final heal turns it off.
    pub half_open: bool,
    /// Likewise for a cut fault.
    pub cut: bool,
    /// The timeline pauses or partitions the broker, so the final heal
    /// resumes it or heals the partition (a broker that cannot is never
    /// asked).
    pub pause: bool,
    pub partition: bool,
    /// A shard other than the designated one (crate::shard): shard 0
    /// applies the broker faults; this one follows them, reaching the
    /// broker at `broker_addr`.
    pub follow_broker: bool,
    pub broker_addr: std::net::SocketAddr,
}

impl Targets {
    async fn record(&self, what: FaultEvent) {
        let _ = self
            .events
            .send(Event::Fault {
                at: self.clock.now(),
                what,
            })
            .await;
    }

    /// Record a harness incident now.
    pub async fn incident(&self, cause: Cause, message: String) {
        let _ = self
            .events
            .send(Event::Harness {
                at: self.clock.now(),
                cause,
                message,
            })
            .await;
    }

    async fn sleep_until(&self, at: Duration) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            self.clock.instant(Nanos::from_duration(at)),
        ))
        .await;
    }

    fn proxies_of<'a>(&'a self, f: &'a ScheduledFault) -> impl Iterator<Item = &'a String> + 'a {
        f.groups.iter().filter_map(|g| self.proxies.get(g))
    }
}

/// Heal whatever the ended timeline left applied: the run's own proxies
/// reset (never `POST /reset`, which would heal every proxy of a Toxiproxy
/// other runs share), the broker resumed, reconnected and running, so the
/// fleet can disconnect cleanly. Crashed devices stay as they are. Each
/// call has its deadline; what fails is returned, one line each.
pub(super) async fn heal_everything(t: &Targets) -> Vec<String> {
    let mut failed = Vec::new();
    let mut note = |what: String, r: Result<(), String>| {
        if let Err(e) = r {
            failed.push(format!("{what}: {e}"));
        }
    };
    for name in t.proxies.values() {
        for (used, cut, mode) in [(t.half_open, false, "half-open"), (t.cut, true, "cut")] {
            if used {
                note(
                    format!("proxy {name}: {mode} off"),
                    within(CALL_DEADLINE, set_silent(&*t.links, cut, name, false)).await,
                );
            }
        }
        note(
            format!("proxy {name}: enable"),
            within(CALL_DEADLINE, t.links.set_enabled(name, true)).await,
        );
        match within(CALL_DEADLINE, t.links.proxy(name)).await {
            Ok(info) => {
                for toxic in info.toxics {
                    note(
                        format!("proxy {name}: remove toxic {}", toxic.name),
                        within(CALL_DEADLINE, t.links.remove_toxic(name, &toxic.name)).await,
                    );
                }
            }
            Err(e) => note(format!("proxy {name}: read toxics"), Err(e)),
        }
    }
    let mut b = t.broker.lock().await;
    if t.pause {
        note(
            "broker: resume".into(),
            within(BROKER_DEADLINE, b.resume()).await,
        );
    }
    if t.partition {
        note(
            "broker: heal partition".into(),
            within(BROKER_DEADLINE, b.heal_partition()).await,
        );
    }
    if t.broker_down.load(Ordering::SeqCst) {
        note(
            "broker: start".into(),
            within(BROKER_START_DEADLINE, b.start()).await,
        );
    }
    failed
}

/// How long the proxies may take to relay the fleet's last DISCONNECTs.
const IDLE_DEADLINE: Duration = Duration::from_secs(3);

/// Delete the run's proxies (each call bounded) once they have relayed what
/// their clients sent last; what fails, one line each.
pub(super) async fn delete_proxies(
    links: &dyn LinkFaults,
    proxies: &HashMap<String, String>,
) -> Vec<String> {
    let mut failed = Vec::new();
    // The fleet has sent its DISCONNECTs: let every proxy relay them and
    // close before it goes, or the broker sees the connections drop and
    // fires the wills after the run (all proxies at once, bounded).
    let idle = futures::future::join_all(
        proxies
            .values()
            .map(|name| links.wait_idle(name, IDLE_DEADLINE)),
    )
    .await;
    let busy = idle.iter().filter(|r| matches!(r, Ok(false))).count();
    if busy > 0 {
        tracing::debug!(busy, "proxies still held connections when deleted");
    }
    for name in proxies.values() {
        if let Err(e) = within(CALL_DEADLINE, links.delete_proxy(name)).await {
            failed.push(format!("delete proxy {name}: {e}"));
        }
    }
    failed
}

/// Turn one of the engine's silent modes on `proxy` on or off: `cut` or
/// `half_open`.
fn set_silent<'a>(
    links: &'a dyn LinkFaults,
    cut: bool,
    proxy: &'a str,
    on: bool,
) -> futures::future::BoxFuture<'a, Result<(), crate::fault::FaultError>> {
    if cut {
        links.set_cut(proxy, on)
    } else {
        links.set_half_open(proxy, on)
    }
}

fn streams(sel: StreamSel) -> &'static [Stream] {
    match sel {
        StreamSel::Upstream => &[Stream::Upstream],
        StreamSel::Downstream => &[Stream::Downstream],
        StreamSel::Both => &[Stream::Upstream, Stream::Downstream],
    }
}

/// The toxic kind (and streams, toxicity) a network fault maps to.
pub fn toxic_of(kind: &FaultKind) -> Option<(ToxicKind, StreamSel, Option<f32>)> {
    let ms = |d: Duration| d.as_millis() as u64;
    Some(match kind {
        FaultKind::Latency {
            latency,
            jitter,
            stream,
            toxicity,
        } => (
            ToxicKind::Latency {
                latency: ms(*latency),
                jitter: ms(*jitter),
            },
            *stream,
            *toxicity,
        ),
        FaultKind::Bandwidth {
            rate,
            stream,
            toxicity,
        } => (ToxicKind::Bandwidth { rate: *rate }, *stream, *toxicity),
        FaultKind::Blackhole { stream, toxicity } => {
            (ToxicKind::Timeout { timeout: 0 }, *stream, *toxicity)
        }
        FaultKind::ResetPeer {
            timeout,
            stream,
            toxicity,
        } => (
            ToxicKind::ResetPeer {
                timeout: ms(*timeout),
            },
            *stream,
            *toxicity,
        ),
        FaultKind::SlowClose {
            delay,
            stream,
            toxicity,
        } => (
            ToxicKind::SlowClose { delay: ms(*delay) },
            *stream,
            *toxicity,
        ),
        FaultKind::Slicer {
            average_size,
            size_variation,
            delay,
            stream,
            toxicity,
        } => (
            ToxicKind::Slicer {
                average_size: *average_size,
                size_variation: *size_variation,
                delay: delay.as_micros() as u64,
            },
            *stream,
            *toxicity,
        ),
        FaultKind::LimitData {
            bytes,
            stream,
            toxicity,
        } => (ToxicKind::LimitData { bytes: *bytes }, *stream, *toxicity),
        _ => return None,
    })
}

/// Wait until the broker at `addr` accepts an MQTT connection (a follower
/// shard's heal of a broker fault shard 0 heals).
async fn broker_answers(addr: std::net::SocketAddr) -> Result<(), String> {
    loop {
        if crate::broker::probe::check(addr, Duration::from_secs(1))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Play one timeline entry: apply at `at`, heal at `at + duration`, each
/// stamped when the backend confirmed it.
pub(super) async fn play(t: &Targets, f: &ScheduledFault) -> Result<(), String> {
    t.sleep_until(f.at).await;
    // The window opens now: effects seen before the backend answers belong
    // to the fault (METRICS.md).
    t.record(FaultEvent::Requested { index: f.index }).await;
    let applied = |devices: Vec<u32>| FaultEvent::Applied {
        index: f.index,
        kind: f.kind.id(),
        target: f.target.clone(),
        devices,
    };
    let failed = |error: String, applied: bool| FaultEvent::Failed {
        index: f.index,
        error,
        applied,
    };
    // Every backend call has a deadline: a backend that hangs fails the
    // fault instead of shifting its window.
    macro_rules! step {
        ($e:expr, $applied:expr) => {
            step!($e, $applied, CALL_DEADLINE)
        };
        ($e:expr, $applied:expr, $deadline:expr) => {
            if let Err(e) = within($deadline, $e).await {
                let msg = format!("timeline[{}] {}: {e}", f.index, f.kind.name());
                t.record(failed(msg.clone(), $applied)).await;
                return Err(msg);
            }
        };
    }
    let end = f.end();
    match &f.kind {
        k if t.follow_broker && k.id().target() == crate::scenario::FaultTarget::Broker => {
            // Shard 0 applies it at the same instant of the common clock:
            // the window here is the schedule's, and it closes once the
            // broker answers MQTT again after the scheduled heal.
            t.record(applied(vec![])).await;
            if f.duration.is_none() {
                return Ok(());
            }
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            step!(broker_answers(t.broker_addr), true, BROKER_START_DEADLINE);
        }
        k if toxic_of(k).is_some() => {
            let (kind, sel, toxicity) = toxic_of(k).expect("checked");
            let mut added: Vec<(String, String)> = Vec::new();
            for p in t.proxies_of(f) {
                for s in streams(sel) {
                    let name = format!("f{}_{}_{}", f.index, kind.type_name(), s.as_str());
                    let toxic = Toxic::new(kind.clone(), *s)
                        .named(name.clone())
                        .with_toxicity(toxicity.unwrap_or(1.0));
                    step!(t.links.add_toxic(p, &toxic), !added.is_empty());
                    added.push((p.clone(), name));
                }
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            for (p, name) in &added {
                step!(t.links.remove_toxic(p, name), true);
            }
        }
        FaultKind::HalfOpen | FaultKind::Cut => {
            // The engine's two silent modes: on for the window, then off.
            let cut = matches!(f.kind, FaultKind::Cut);
            for p in t.proxies_of(f) {
                step!(set_silent(&*t.links, cut, p, true), false);
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            for p in t.proxies_of(f) {
                step!(set_silent(&*t.links, cut, p, false), true);
            }
        }
        FaultKind::LinkDown => {
            for p in t.proxies_of(f) {
                step!(t.links.set_enabled(p, false), false);
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            for p in t.proxies_of(f) {
                step!(t.links.set_enabled(p, true), true);
            }
        }
        FaultKind::Flapping { down, up } => {
            let mut at = f.at;
            let mut first = true;
            while at < end {
                for p in t.proxies_of(f) {
                    step!(t.links.set_enabled(p, false), !first);
                }
                if first {
                    t.record(applied(vec![])).await;
                    first = false;
                }
                let up_at = (at + *down).min(end);
                t.sleep_until(up_at).await;
                if up_at + *up >= end {
                    // The last enable heals the fault.
                    t.record(FaultEvent::HealRequested { index: f.index }).await;
                }
                for p in t.proxies_of(f) {
                    step!(t.links.set_enabled(p, true), true);
                }
                at = up_at + *up;
                if at < end {
                    t.sleep_until(at).await;
                }
            }
        }
        FaultKind::BrokerRestart | FaultKind::BrokerKill | FaultKind::BrokerPause => {
            {
                let mut b = t.broker.lock().await;
                if !matches!(f.kind, FaultKind::BrokerPause) {
                    t.broker_down.store(true, Ordering::SeqCst);
                }
                match f.kind {
                    FaultKind::BrokerRestart => step!(b.stop(), false, BROKER_DEADLINE),
                    FaultKind::BrokerKill => step!(b.kill(), false, BROKER_DEADLINE),
                    _ => step!(b.pause(), false, BROKER_DEADLINE),
                }
            }
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            let mut b = t.broker.lock().await;
            if matches!(f.kind, FaultKind::BrokerPause) {
                step!(b.resume(), true, BROKER_DEADLINE);
            } else {
                if let Err(e) = within(BROKER_START_DEADLINE, b.start()).await {
                    // The broker did not come back: nothing after this
                    // point says anything about the clients.
                    let msg = format!("timeline[{}] {}: {e}", f.index, f.kind.name());
                    t.incident(
                        Cause::BrokerNotBack,
                        format!("the broker did not come back after the fault: {msg}"),
                    )
                    .await;
                    t.record(failed(msg.clone(), true)).await;
                    return Err(msg);
                }
                t.broker_down.store(false, Ordering::SeqCst);
            }
        }
        FaultKind::BrokerPartition => {
            step!(t.broker.lock().await.partition(), false, BROKER_DEADLINE);
            t.record(applied(vec![])).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            step!(
                t.broker.lock().await.heal_partition(),
                true,
                BROKER_DEADLINE
            );
        }
        FaultKind::DeviceCrash { .. } => {
            {
                let mut fleet = t.fleet.lock().await;
                for &d in &f.devices {
                    fleet.crash(d).await;
                }
            }
            t.record(applied(f.devices.clone())).await;
            if f.duration.is_none() {
                return Ok(()); // stays dead: never healed
            }
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            let mut fleet = t.fleet.lock().await;
            for &d in &f.devices {
                fleet.restart(d).await;
            }
        }
        FaultKind::ClientIdConflict { .. } => {
            {
                let mut fleet = t.fleet.lock().await;
                for &d in &f.devices {
                    fleet.intrude(d);
                }
            }
            t.record(applied(f.devices.clone())).await;
            t.sleep_until(end).await;
            t.record(FaultEvent::HealRequested { index: f.index }).await;
            let mut fleet = t.fleet.lock().await;
            for &d in &f.devices {
                fleet.end_intrusion(d).await;
            }
        }
        _ => unreachable!("every fault kind is handled above"),
    }
    t.record(FaultEvent::Healed { index: f.index }).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blackhole_is_the_timeout_toxic_with_timeout_zero() {
        let (k, s, _) = toxic_of(&FaultKind::Blackhole {
            stream: StreamSel::Both,
            toxicity: None,
        })
        .unwrap();
        assert_eq!(k, ToxicKind::Timeout { timeout: 0 });
        assert_eq!(s, StreamSel::Both);
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_fails_and_says_so() {
        let hang = std::future::pending::<Result<(), String>>();
        let e = within(Duration::from_millis(50), hang).await.unwrap_err();
        assert_eq!(e, "no answer within 0.05 s (deadline)");
        let ok = within(Duration::from_secs(5), async { Ok::<_, String>(3) }).await;
        assert_eq!(ok, Ok(3));
        let err = within(Duration::from_secs(5), async { Err::<(), _>("refused") }).await;
        assert_eq!(err, Err("refused".to_string()));
    }
}

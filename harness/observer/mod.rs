//! The monitoring side: one MQTT client straight to the broker (never
//! through a fault proxy) that
//!
//! * collects every device's telemetry (QoS 2 subscriptions, so nothing is
//!   downgraded on our side; a persistent session, so a short observer outage
//!   is queued by the broker rather than lost),
//! * follows every device's status topic (the will's `offline` and the
//!   retained `online`),
//! * sends the fleets' commands on their fixed-rate schedules and tracks
//!   their acks like a backend would.
//!
//! Its own connection state is recorded (`Connected`/`Disconnected`), so what
//! happens while it is down is reported as unobserved.
//!
//! On a broker that publishes client events on `$SYS` (EMQX 5), it also
//! subscribes to [`crate::observer::sys::SUBSCRIPTIONS`]: every event of a
//! device's client id is recorded ([`ObserverEvent::Sys`]), and a
//! `disconnected` counts as an offline report (METRICS.md: an offline episode
//! starts at the will *or* `$SYS` disconnected). A `connected` event does
//! not end an episode: a device is shown online again by its retained
//! `online` (a device that never republishes it stays stale offline on a
//! dashboard fed by the status topic, which `stale_offline_time` measures).
//! Events of a client id several devices share cannot be told apart and
//! are recorded without a device.

pub mod lag;
pub mod suback;
pub mod sys;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, Incoming, MqttOptions, Outgoing, SubscribeFilter,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::clock::{Nanos, RunClock};
use crate::fleet::acks::{AckTracker, Expiry};
use crate::fleet::mqtt::qos4 as qos;
use crate::history::{DeviceId, Event as HEvent, ObserverEvent, PublishOutcome, StreamId};
use crate::payload;
use crate::plan::Plan;

/// How long the backend waits for a command's ack.
const COMMAND_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect delay of the observer itself.
const RECONNECT: Duration = Duration::from_millis(200);
/// Commands the observer keeps in flight at once (rumqttc's outgoing
/// inflight window); the rest wait in rumqttc's request queue and go out as
/// acks free the window, so they are still sent and accounted (their
/// latency counts from `t_intended`, in the payload). The bound is the
/// harness's own client respecting the broker's quota: Mosquitto's
/// `max_inflight_messages` (default 20) is also how many QoS 2 messages one
/// client may have in flight *towards* it; the 21st is acknowledged (at
/// MQTT 3.1.1 a reason code 0x97 "quota exceeded" reads as success) and
/// dropped, which a run would charge to the device as
/// `commands.lost_after_ack`. EMQX allows 32 in flight and 100 awaiting
/// PUBREL by default. 16 stays under every default we know.
pub const COMMAND_INFLIGHT: u16 = 16;

/// The observer could not start.
#[derive(Debug, thiserror::Error)]
#[error("observer could not subscribe at {addr} within {waited:?}: {message}")]
pub struct ObserverError {
    pub addr: SocketAddr,
    pub waited: Duration,
    pub message: String,
}

/// The running observer.
pub struct Observer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    prober: JoinHandle<()>,
}

/// A subscription pattern from a topic template: placeholders become `+`.
pub fn pattern(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push('+');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    // A placeholder inside a level (`dev-{device}`) makes the whole level `+`.
    out.split('/')
        .map(|level| if level.contains('+') { "+" } else { level })
        .collect::<Vec<_>>()
        .join("/")
}

struct Index {
    by_name: HashMap<String, DeviceId>,
    /// (device, stream name) → stream id, for telemetry.
    streams: HashMap<(DeviceId, String), StreamId>,
    /// Status topic → (device, will payload).
    status: HashMap<String, (DeviceId, String)>,
    /// Client id → the one device using it (`None`: shared by several).
    by_client_id: HashMap<String, Option<DeviceId>>,
}

impl Index {
    fn new(plan: &Plan) -> Index {
        let mut ix = Index {
            by_name: HashMap::new(),
            streams: HashMap::new(),
            status: HashMap::new(),
            by_client_id: HashMap::new(),
        };
        for d in &plan.devices {
            ix.by_name.insert(d.name.clone(), d.id);
            ix.by_client_id
                .entry(d.client_id.clone())
                .and_modify(|e| *e = None)
                .or_insert(Some(d.id));
            for s in &d.streams {
                ix.streams.insert((d.id, s.name.clone()), s.id);
            }
            if let Some(w) = &d.will {
                ix.status.insert(w.topic.clone(), (d.id, w.payload.clone()));
            }
        }
        ix
    }
}

/// One command schedule entry: the next slot of (device, command stream).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Nanos,
    device: DeviceId,
    stream: StreamId,
}

type CmdKey = (DeviceId, StreamId, u64);

impl Observer {
    /// Connect, subscribe and return once the first SUBACK arrived (or fail
    /// after `timeout`: the broker is unreachable). `sys_events`: the root
    /// (`$SYS`, [`crate::observer::sys::ROOT`]) under which the broker
    /// publishes EMQX 5 client events; follow them too.
    pub async fn start(
        plan: &Plan,
        addr: SocketAddr,
        clock: RunClock,
        events: mpsc::Sender<HEvent>,
        publish_until: Nanos,
        timeout: Duration,
        sys_events: Option<String>,
    ) -> Result<Observer, ObserverError> {
        let mut filters: Vec<SubscribeFilter> = Vec::new();
        let mut seen = HashSet::new();
        // A shard collects its own devices only: their exact topics, so the
        // broker does not send every shard the whole fleet's telemetry (as
        // long as they fit in one SUBSCRIBE of EXACT_FILTER_BYTES; beyond,
        // the fleet's patterns, and other shards' messages are ignored).
        let exact_bytes: usize = plan
            .devices
            .iter()
            .flat_map(|d| d.streams.iter().map(|s| s.topic.len() + 3))
            .sum();
        if plan.shard.is_some() && exact_bytes <= EXACT_FILTER_BYTES {
            for d in &plan.devices {
                for s in &d.streams {
                    if seen.insert(s.topic.clone()) {
                        filters.push(SubscribeFilter::new(
                            s.topic.clone(),
                            crate::fleet::mqtt::qos4(s.sub_qos),
                        ));
                    }
                }
            }
        } else {
            for f in &plan.scenario.fleets {
                for s in &f.streams {
                    let p = pattern(&s.topic);
                    if seen.insert(p.clone()) {
                        let qos = s.collector_subscription();
                        filters.push(SubscribeFilter::new(p, crate::fleet::mqtt::qos4(qos)));
                    }
                }
            }
        }
        for d in &plan.devices {
            if let Some(w) = &d.will {
                if seen.insert(w.topic.clone()) {
                    filters.push(SubscribeFilter::new(
                        w.topic.clone(),
                        rumqttc::QoS::ExactlyOnce,
                    ));
                }
            }
        }
        if let Some(root) = &sys_events {
            for t in crate::observer::sys::subscriptions(root) {
                filters.push(SubscribeFilter::new(t, rumqttc::QoS::AtLeastOnce));
            }
        }
        let id = match &plan.shard {
            // Shards on other machines (containers) may have the same pid.
            Some(sh) => format!(
                "mqtt-chaos-observer-{}-{}-s{}",
                std::process::id(),
                plan.seed,
                sh.shard.index
            ),
            None => format!("mqtt-chaos-observer-{}-{}", std::process::id(), plan.seed),
        };
        // The collector's own probe topic ([`lag`]): only it subscribes.
        let probe_topic = format!("mqtt-chaos/probe/{id}");
        filters.push(SubscribeFilter::new(
            probe_topic.clone(),
            rumqttc::QoS::AtLeastOnce,
        ));
        let (probe_tx, probes) = mpsc::channel(64);
        // Probes go out only while the collector is subscribed: one sent
        // before its SUBACK (at the start, after a broker restart that lost
        // its session) has nobody to reach and is no loss of ours.
        let (collector_up, collector_up_rx) = watch::channel(false);
        let prober = tokio::spawn(probe(
            format!("{id}-probe"),
            addr,
            probe_topic.clone(),
            clock,
            probe_tx,
            collector_up_rx,
        ));
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5));
        o.set_clean_session(false);
        o.set_inflight(COMMAND_INFLIGHT);
        o.set_max_packet_size(512 * 1024, 512 * 1024);
        let (client, mut el) = AsyncClient::new(o, 10_000);
        el.network_options
            .set_connection_timeout(timeout.as_secs_f64().ceil().max(1.0) as u64);
        let (polled, poller) = spawn_poll(el, 1024);

        // Command schedules.
        let mut due = BinaryHeap::new();
        let mut cmd = HashMap::new();
        for d in &plan.devices {
            for c in &d.commands {
                let period = Duration::from_secs_f64(1.0 / c.rate);
                due.push(Reverse(Due {
                    at: Nanos::ZERO.plus(Duration::from_millis(500)).plus(period),
                    device: d.id,
                    stream: c.id,
                }));
                cmd.insert((d.id, c.id), (c.clone(), d.name.clone(), period, 0u64));
            }
        }

        let ix = Index::new(plan);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut st = Loop {
                client,
                clock,
                events,
                ix,
                filters,
                subscribing: VecDeque::new(),
                subscribed: HashMap::new(),
                reported: HashSet::new(),
                ready: Some(ready_tx),
                tracker: AckTracker::new(COMMAND_ACK_TIMEOUT, 0),
                due,
                cmd,
                publish_until,
                up: false,
                sys_root: sys_events,
                probe_topic,
                probes,
                lag: lag::LagMonitor::new(),
                next_lag_check: Nanos::ZERO,
                collector_up,
            };
            let _poller = AbortOnDrop(poller);
            st.run(polled, stop_rx).await;
        });
        match tokio::time::timeout(timeout, ready_rx).await {
            Ok(Ok(())) => Ok(Observer { stop, task, prober }),
            Ok(Err(_)) | Err(_) => {
                let _ = stop.send(true);
                task.abort();
                prober.abort();
                Err(ObserverError {
                    addr,
                    waited: timeout,
                    message: "no CONNACK/SUBACK from the broker".into(),
                })
            }
        }
    }

    /// Stop (clean DISCONNECT, bounded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.prober.abort();
        let _ = self.prober.await;
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(3), &mut task)
            .await
            .is_err()
        {
            // A broker that does not take the DISCONNECT in time: drop the
            // connection instead.
            task.abort();
            let _ = task.await;
        }
    }
}

struct Loop {
    client: AsyncClient,
    clock: RunClock,
    events: mpsc::Sender<HEvent>,
    ix: Index,
    filters: Vec<SubscribeFilter>,
    /// SUBSCRIBE requests queued in rumqttc, not yet written (in order).
    subscribing: VecDeque<Vec<(String, u8)>>,
    /// Written SUBSCRIBEs by packet id, until their SUBACK.
    subscribed: HashMap<u16, Vec<(String, u8)>>,
    /// Filters already reported short (once per run, not per reconnect).
    reported: HashSet<String>,
    ready: Option<oneshot::Sender<()>>,
    tracker: AckTracker<CmdKey>,
    due: BinaryHeap<Reverse<Due>>,
    /// (device, stream) → (spec, device name, period, next seq)
    cmd: HashMap<(DeviceId, StreamId), (crate::plan::StreamPlan, String, Duration, u64)>,
    publish_until: Nanos,
    up: bool,
    /// Root of the broker's client events, when it publishes them.
    sys_root: Option<String>,
    /// The collector's probe topic and the prober's acks ([`lag`]).
    probe_topic: String,
    probes: mpsc::Receiver<(u64, Nanos)>,
    /// Tells the prober whether the collector is subscribed.
    collector_up: watch::Sender<bool>,
    lag: lag::LagMonitor,
    next_lag_check: Nanos,
}

impl Loop {
    async fn emit(&self, what: ObserverEvent) {
        let _ = self
            .events
            .send(HEvent::Observer {
                at: self.clock.now(),
                what,
            })
            .await;
    }

    async fn run(&mut self, mut polled: mpsc::Receiver<Polled>, mut stop: watch::Receiver<bool>) {
        loop {
            let next_cmd = self
                .due
                .peek()
                .map(|Reverse(d)| d.at)
                .filter(|t| *t < self.publish_until);
            let wake = [
                next_cmd,
                self.tracker.next_deadline(),
                Some(self.next_lag_check),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = wake
                .map(|t| Instant::from_std(self.clock.instant(t)))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    if self.up {
                        let _ = self.client.try_disconnect();
                        let deadline = Instant::now() + Duration::from_secs(1);
                        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, polled.recv()).await {
                            if matches!(r.0, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {
                                break;
                            }
                        }
                    }
                    return;
                }
                r = polled.recv() => match r {
                    Some((Ok(ev), unwritten)) => self.on_event(ev, unwritten).await,
                    Some((Err(e), _)) => self.on_error(&e).await,
                    None => return,
                },
                Some((seq, at)) = self.probes.recv() => self.lag.acked(seq, at),
                _ = sleep_until(wake) => self.on_tick().await,
            }
        }
    }

    /// An EMQX client event on `$SYS`.
    async fn on_sys(&mut self, root: &str, now: Nanos, topic: &str, payload: &[u8]) {
        let ev = match crate::observer::sys::parse_in(root, topic, payload) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!("observer: {e}");
                return;
            }
        };
        let Some(&device) = self.ix.by_client_id.get(ev.clientid()) else {
            // Not one of ours (the observer itself, another run's devices).
            return;
        };
        let online = ev.online();
        let reason = match &ev {
            crate::observer::sys::SysEvent::Connected(_) => None,
            crate::observer::sys::SysEvent::Disconnected(d) => Some(d.reason.as_str().to_string()),
        };
        let _ = self
            .events
            .send(HEvent::Observer {
                at: now,
                what: ObserverEvent::Sys {
                    client_id: ev.clientid().to_string(),
                    device,
                    online,
                    reason,
                },
            })
            .await;
        if let (Some(device), false) = (device, online) {
            let _ = self
                .events
                .send(HEvent::Observer {
                    at: now,
                    what: ObserverEvent::Status {
                        device,
                        online: false,
                        via: "sys".into(),
                    },
                })
                .await;
        }
    }

    async fn on_error(&mut self, _e: &ConnectionError) {
        if self.up {
            self.up = false;
            self.lag.disconnected();
            let _ = self.collector_up.send(false);
            self.emit(ObserverEvent::Disconnected).await;
        }
    }

    async fn on_event(&mut self, ev: Event, unwritten: usize) {
        match ev {
            Event::Incoming(Incoming::ConnAck(ack)) => {
                // Whatever was not acknowledged on the last connection is gone.
                self.subscribing.clear();
                self.subscribed.clear();
                if !ack.session_present {
                    self.tracker.session_lost(unwritten);
                    if self.client.try_subscribe_many(self.filters.clone()).is_ok() {
                        self.subscribing.push_back(
                            self.filters
                                .iter()
                                .map(|f| (f.path.clone(), f.qos as u8))
                                .collect(),
                        );
                    }
                } else {
                    self.mark_up().await;
                }
            }
            Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                if let Some(asked) = self.subscribing.pop_front() {
                    self.subscribed.insert(pkid, asked);
                }
            }
            Event::Incoming(Incoming::SubAck(ack)) => {
                self.check_suback(&ack).await;
                self.mark_up().await
            }
            Event::Incoming(Incoming::Publish(p)) => {
                let now = self.clock.now();
                if p.topic == self.probe_topic {
                    if let Some(f) = lag::decode(&p.payload).and_then(|s| self.lag.received(s, now))
                    {
                        self.harness(f.cause(), f.message()).await;
                    }
                    return;
                }
                if let Some(root) = &self.sys_root {
                    if p.topic.starts_with(root.as_str()) {
                        let root = root.clone();
                        self.on_sys(&root, now, &p.topic, &p.payload).await;
                        return;
                    }
                }
                if let Some(&(device, ref will_payload)) = self.ix.status.get(&p.topic) {
                    let online = if p.payload.as_ref() == b"online" {
                        Some(true)
                    } else if p.payload.as_ref() == will_payload.as_bytes() {
                        Some(false)
                    } else {
                        None
                    };
                    if let Some(online) = online {
                        let via = if p.retain { "retained" } else { "live" };
                        let ev = HEvent::Observer {
                            at: now,
                            what: ObserverEvent::Status {
                                device,
                                online,
                                via: via.into(),
                            },
                        };
                        let _ = self.events.send(ev).await;
                    }
                    return;
                }
                if let Some(h) = payload::decode(&p.payload) {
                    let Some(&device) = self.ix.by_name.get(h.device) else {
                        return;
                    };
                    let Some(&stream) = self.ix.streams.get(&(device, h.stream.to_string())) else {
                        return;
                    };
                    let ev = HEvent::Observer {
                        at: now,
                        what: ObserverEvent::Received {
                            device,
                            stream,
                            seq: h.seq,
                            t_intended: h.t_intended,
                            qos: p.qos as u8,
                            dup: p.dup,
                        },
                    };
                    let _ = self.events.send(ev).await;
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => self.tracker.written(pkid),
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => self.tracker.parked(pkid),
            Event::Incoming(Incoming::PubAck(a)) => self.acked(a.pkid).await,
            Event::Incoming(Incoming::PubComp(c)) => self.acked(c.pkid).await,
            _ => {}
        }
    }

    /// Every filter refused or granted below what was asked is a harness
    /// incident ([`suback`]).
    async fn check_suback(&mut self, ack: &rumqttc::SubAck) {
        let Some(asked) = self.subscribed.remove(&ack.pkid) else {
            return;
        };
        let granted: Vec<_> = ack.return_codes.iter().map(suback::granted).collect();
        for short in suback::check(&asked, &granted) {
            if self.reported.insert(short.filter.clone()) {
                self.harness(crate::health::Cause::SubscriptionRefused, short.to_string())
                    .await;
            }
        }
    }

    /// A harness-side problem, for the run's `errors`.
    async fn harness(&self, cause: crate::health::Cause, message: String) {
        tracing::warn!("observer: [{cause}] {message}");
        let _ = self
            .events
            .send(HEvent::Harness {
                at: self.clock.now(),
                cause,
                message,
            })
            .await;
    }

    async fn mark_up(&mut self) {
        if !self.up {
            self.up = true;
            self.lag.connected(self.clock.now());
            let _ = self.collector_up.send(true);
            self.emit(ObserverEvent::Connected).await;
        }
        if let Some(r) = self.ready.take() {
            let _ = r.send(());
        }
    }

    async fn acked(&mut self, pkid: u16) {
        if let Some(((device, stream, seq), _)) = self.tracker.acked(pkid) {
            self.emit(ObserverEvent::CommandOutcome {
                device,
                stream,
                seq,
                outcome: PublishOutcome::Acked,
            })
            .await;
        }
    }

    async fn on_tick(&mut self) {
        let now = self.clock.now();
        if now >= self.next_lag_check {
            self.next_lag_check = now.plus(lag::PROBE_EVERY);
            if let Some(f) = self.lag.expire(now) {
                self.harness(f.cause(), f.message()).await;
            }
        }
        for exp in self.tracker.expire(now) {
            // The backend does not retry commands (retries = 0).
            let (Expiry::Failed {
                key: (device, stream, seq),
            }
            | Expiry::Retry {
                key: (device, stream, seq),
                ..
            }) = exp;
            self.emit(ObserverEvent::CommandOutcome {
                device,
                stream,
                seq,
                outcome: PublishOutcome::Failed,
            })
            .await;
        }
        while let Some(Reverse(d)) = self.due.peek() {
            if d.at > now || d.at >= self.publish_until {
                break;
            }
            let Reverse(d) = self.due.pop().expect("peeked");
            let (spec, name, period, next) =
                self.cmd.get_mut(&(d.device, d.stream)).expect("scheduled");
            let seq = *next;
            *next += 1;
            let body = payload::encode(name, &spec.name, seq, d.at, spec.payload_size);
            let (topic, q, period) = (spec.topic.clone(), spec.qos, *period);
            self.emit(ObserverEvent::CommandPublished {
                device: d.device,
                stream: d.stream,
                seq,
                t_intended: d.at,
                qos: q,
            })
            .await;
            let outcome = match self.client.try_publish(topic, qos(q), false, body) {
                Ok(()) => {
                    self.tracker
                        .queued((d.device, d.stream, seq), q, true, 0, now);
                    (q == 0).then_some(PublishOutcome::Unawaited)
                }
                Err(_) => Some(PublishOutcome::Failed),
            };
            if let Some(outcome) = outcome {
                self.emit(ObserverEvent::CommandOutcome {
                    device: d.device,
                    stream: d.stream,
                    seq,
                    outcome,
                })
                .await;
            }
            self.due.push(Reverse(Due {
                at: d.at.plus(period),
                ..d
            }));
        }
    }
}

/// The prober ([`lag`]): its own connection, one QoS 1 probe in flight at a
/// time, every [`lag::PROBE_EVERY`]; each PUBACK goes to the collector's
/// loop with its time. Runs until aborted.
/// Aborts a poll task when its connection's task ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The largest SUBSCRIBE of exact topics a shard's collector sends (EMQX's
/// default packet limit is 1 MB).
const EXACT_FILTER_BYTES: usize = 256 * 1024;

/// What a connection's poll task hands over: rumqttc's events, in order.
/// With a CONNACK, the requests rumqttc dropped if it has no session
/// ([`crate::fleet::connection::unwritten_pending`]).
type Polled = (Result<Event, ConnectionError>, usize);

/// Poll `el` in a task of its own and hand every event over. rumqttc's
/// `EventLoop::poll` is not cancel-safe while it connects: a poll dropped by
/// a `select!` whose other branch fired drops the half-made connection, and
/// the next poll connects again under the same client id, so the broker
/// sees two CONNECTs and the second takes the first one's session over
/// (seen through Docker's port proxy, where a connect takes milliseconds).
/// Here a poll is never dropped. After an error the task waits [`RECONNECT`]
/// before it polls (reconnects) again; it ends when the receiver is gone.
fn spawn_poll(
    mut el: rumqttc::EventLoop,
    depth: usize,
) -> (mpsc::Receiver<Polled>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(depth);
    let task = tokio::spawn(async move {
        loop {
            let r = crate::fleet::connection::poll_counted(&mut el).await;
            let failed = r.0.is_err();
            if tx.send(r).await.is_err() {
                return;
            }
            if failed {
                tokio::time::sleep(RECONNECT).await;
            }
        }
    });
    (rx, task)
}

async fn probe(
    id: String,
    addr: SocketAddr,
    topic: String,
    clock: RunClock,
    acks: mpsc::Sender<(u64, Nanos)>,
    collector_up: watch::Receiver<bool>,
) {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(true);
    o.set_inflight(1);
    let (client, el) = AsyncClient::new(o, 4);
    let (mut polled, poller) = spawn_poll(el, 16);
    let _poller = AbortOnDrop(poller);
    let mut tick = tokio::time::interval(lag::PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    // The probe in flight and when it was handed over.
    let mut pending: Option<(u64, Instant)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // A probe unanswered for long (a broker fault) is given up:
                // measuring starts again with the next one.
                let stale = pending.is_some_and(|(_, t)| t.elapsed() > lag::PROBE_LOST_AFTER);
                if (pending.is_none() || stale)
                    && *collector_up.borrow()
                    && client
                        .try_publish(&topic, rumqttc::QoS::AtLeastOnce, false, lag::encode(seq))
                        .is_ok()
                {
                    pending = Some((seq, Instant::now()));
                    seq += 1;
                }
            }
            r = polled.recv() => match r {
                Some((Ok(Event::Incoming(Incoming::PubAck(_))), _)) => {
                    if let Some((s, _)) = pending.take() {
                        let _ = acks.send((s, clock.now())).await;
                    }
                }
                Some((Ok(_), _)) => {}
                Some((Err(_), _)) => pending = None,
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pattern;

    #[test]
    fn placeholders_become_single_level_wildcards() {
        assert_eq!(pattern("fleet/{device}/telemetry"), "fleet/+/telemetry");
        assert_eq!(pattern("t/{group}/{device}/{stream}"), "t/+/+/+");
        assert_eq!(pattern("t/dev-{device}/x"), "t/+/x");
        assert_eq!(pattern("plain/topic"), "plain/topic");
    }
}

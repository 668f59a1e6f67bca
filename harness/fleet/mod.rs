//! The fleet: every simulated device of a run, and the device faults
//! (crash, restart, client-id conflict).
//!
//! * [`device`]: the driver of one device (rumqttc), publishing telemetry
//!   on a fixed-rate schedule and receiving commands.
//! * [`acks`]: which message a PUBACK/PUBCOMP acknowledges (pure).
//! * [`backoff`]: reconnect backoff (pure).
//! * [`connection`]: the task polling rumqttc's event loop.

pub mod acks;
pub mod backoff;
pub mod connection;
pub mod device;
pub mod mqtt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Nanos;
use crate::history::{DeviceEvent, DeviceId, Event as HEvent};
use crate::plan::{DevicePlan, Plan};
use crate::scenario::Profile;

pub use device::{Phase, Sequences, Shared};

struct Slot {
    plan: DevicePlan,
    profile: Profile,
    addr: SocketAddr,
    seqs: Arc<Sequences>,
    task: Option<JoinHandle<()>>,
}

/// Every device of the run.
pub struct Fleet {
    slots: Vec<Slot>,
    shared: Shared,
    phase: watch::Sender<Phase>,
    intruders: HashMap<DeviceId, JoinHandle<()>>,
}

impl Fleet {
    /// Start every device; device `i` makes its first attempt at
    /// `start + i × stagger` so a large fleet does not connect in one burst.
    /// `addrs` maps each group to the address its devices connect to.
    pub fn start(
        plan: &Plan,
        addrs: &HashMap<String, SocketAddr>,
        shared: Shared,
        start: Nanos,
    ) -> Fleet {
        // Spread as for the whole fleet: a device of a shard makes its
        // first attempt when it would in the whole run.
        let whole = plan
            .shard
            .as_ref()
            .map_or(plan.devices.len(), |s| s.whole_devices);
        let n = whole.max(1) as u32;
        let stagger = (Duration::from_millis(10) * n).min(Duration::from_secs(2)) / n;
        let (phase, _) = watch::channel(Phase::Run);
        let mut fleet = Fleet {
            slots: Vec::with_capacity(plan.devices.len()),
            shared,
            phase,
            intruders: HashMap::new(),
        };
        for d in &plan.devices {
            fleet.slots.push(Slot {
                plan: d.clone(),
                profile: plan.profile(&d.profile).clone(),
                addr: addrs[&d.link],
                seqs: Sequences::new(d.streams.len()),
                task: None,
            });
        }
        for i in 0..fleet.slots.len() {
            let global = fleet.slots[i].plan.global;
            fleet.spawn(i, start.plus(stagger * global));
        }
        fleet
    }

    fn spawn(&mut self, i: usize, first_connect_at: Nanos) {
        let s = &mut self.slots[i];
        s.task = Some(tokio::spawn(device::run(
            s.plan.clone(),
            s.profile.clone(),
            s.addr,
            self.shared.clone(),
            s.seqs.clone(),
            self.phase.subscribe(),
            first_connect_at,
        )));
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Abort a device with no DISCONNECT (its socket just closes, so the
    /// broker publishes its will). Returns once the task is gone.
    pub async fn crash(&mut self, id: DeviceId) {
        let Some(task) = self.slots[id as usize].task.take() else {
            return;
        };
        task.abort();
        let _ = task.await;
        self.record(id, DeviceEvent::Crashed).await;
    }

    /// Start a crashed device again (a reboot: same id, seq continues).
    pub async fn restart(&mut self, id: DeviceId) {
        if self.slots[id as usize].task.is_some() {
            return;
        }
        self.record(id, DeviceEvent::Restarted).await;
        let now = self.shared.clock.now();
        self.spawn(id as usize, now);
    }

    /// A second client takes over `id`'s client id through the same link,
    /// reconnecting after the profile's initial backoff whenever it is
    /// thrown out, until [`Fleet::end_intrusion`].
    pub fn intrude(&mut self, id: DeviceId) {
        let s = &self.slots[id as usize];
        // An MQTT 3.1.1 client whatever the profile's protocol: a broker
        // hands the id over across protocol levels alike.
        let mut o = MqttOptions::new(
            s.plan.client_id.clone(),
            s.addr.ip().to_string(),
            s.addr.port(),
        );
        o.set_keep_alive(s.profile.keepalive.unwrap_or(Duration::ZERO));
        o.set_clean_session(s.profile.clean_session);
        o.set_last_will(rumqttc::LastWill::new(
            "mqtt-chaos/intruder",
            "gone",
            rumqttc::QoS::AtMostOnce,
            false,
        ));
        let wait = s
            .profile
            .reconnect
            .as_ref()
            .map_or(Duration::from_secs(1), |r| r.initial);
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let (client, mut el) = AsyncClient::new(o, 16);
            let _client = client; // keeps the request channel open
                                  // Bounded: the task is aborted at the end of the fault window.
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        // Ground truth for `takeovers`: the id changed hands.
                        let ev = HEvent::Device {
                            at: shared.clock.now(),
                            device: id,
                            what: DeviceEvent::IntruderConnected,
                        };
                        let _ = shared.events.send(ev).await;
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(wait).await,
                }
            }
        });
        if let Some(old) = self.intruders.insert(id, task) {
            old.abort();
        }
    }

    /// Remove the intruder of `id`.
    pub async fn end_intrusion(&mut self, id: DeviceId) {
        if let Some(t) = self.intruders.remove(&id) {
            t.abort();
            let _ = t.await;
        }
    }

    /// Disconnect every device cleanly and wait for them (bounded).
    pub async fn stop(&mut self) {
        let _ = self.phase.send(Phase::Stop);
        for id in self.intruders.keys().copied().collect::<Vec<_>>() {
            self.end_intrusion(id).await;
        }
        for s in &mut self.slots {
            if let Some(mut t) = s.task.take() {
                if tokio::time::timeout(Duration::from_secs(3), &mut t)
                    .await
                    .is_err()
                {
                    // A device that cannot disconnect in time is aborted.
                    t.abort();
                    let _ = t.await;
                }
            }
        }
    }

    async fn record(&self, id: DeviceId, what: DeviceEvent) {
        let ev = HEvent::Device {
            at: self.shared.clock.now(),
            device: id,
            what,
        };
        let _ = self.shared.events.send(ev).await;
    }
}

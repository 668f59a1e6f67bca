//! The task that polls one rumqttc event loop.
//!
//! rumqttc reconnects as soon as `poll` is called again after an error, so
//! this task polls only when the driver says `Connect` and stops after any
//! error until told again: the driver owns backoff. `Drop` tears the
//! connection down on the driver's ping timeout (rumqttc has none). Every
//! event carries the epoch of the connection it belongs to, so the driver
//! can ignore what a connection it already gave up on still says.

use rumqttc::{ConnectionError, Event, EventLoop};
use tokio::sync::mpsc;

use super::mqtt::{self, Failure, Wire};
use tokio::task::JoinHandle;

/// What the driver asks of the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a connection attempt (a new epoch) and poll until an error.
    Connect,
    /// Drop the connection now (no DISCONNECT is sent).
    Drop,
}

/// One result of `EventLoop::poll`, tagged with its connection's epoch.
#[derive(Debug)]
pub struct Polled {
    pub epoch: u64,
    /// Boxed: a channel holds 32 of these per block, and an unboxed event
    /// (168 bytes) made each device's channel cost 5 KiB.
    pub event: Box<Result<Wire, Failure>>,
    /// For a CONNACK: the QoS ≥ 1 publishes handed to rumqttc but not yet
    /// written that its `pending` held when the connection was made (see
    /// [`unwritten_pending`]); a CONNACK without a session dropped them.
    pub unwritten_pending: usize,
}

/// The QoS ≥ 1 publishes in `el`'s `pending` that were never written (no
/// packet id yet), counted before a poll that connects (0 otherwise).
///
/// rumqttc moves, when a connection fails (or on `clean`), the unacked
/// publishes *and the requests still in the client's channel* into
/// `pending`, and clears `pending` on a CONNACK without a session; what the
/// application queues after that moment stays in the channel and is sent
/// on the new connection, as is everything queued before a first
/// connection. So of the requests an [`super::acks::AckTracker`] holds as
/// queued, exactly the first `unwritten_pending` are gone with the
/// session; clearing them all would leave the later ones' packet ids
/// matching nothing (their acks lost, the messages retried: duplicates the
/// harness made).
pub fn unwritten_pending(el: &EventLoop) -> usize {
    if el.network.is_some() {
        return 0;
    }
    el.pending
        .iter()
        .filter(|r| matches!(r, rumqttc::Request::Publish(p) if p.pkid == 0 && p.qos != rumqttc::QoS::AtMostOnce))
        .count()
}

/// Aborts the poller when the device's task ends (crash included): the
/// event loop and its socket go with it, and the broker sees no DISCONNECT.
pub struct PollerHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::Receiver<Polled>,
    task: JoinHandle<()>,
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Spawn the poller of `eventloop` (either protocol).
pub fn spawn(eventloop: mqtt::EventLoop) -> PollerHandle {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let task = tokio::spawn(run(eventloop, cmd_rx, ev_tx));
    PollerHandle {
        commands: cmd_tx,
        events: ev_rx,
        task,
    }
}

async fn run(
    mut el: mqtt::EventLoop,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Polled>,
) {
    let mut epoch = 0u64;
    let mut active = false;
    loop {
        if !active {
            match commands.recv().await {
                Some(Command::Connect) => {
                    epoch += 1;
                    active = true;
                }
                Some(Command::Drop) => {}
                None => return,
            }
            continue;
        }
        tokio::select! {
            biased;
            cmd = commands.recv() => match cmd {
                Some(Command::Drop) => {
                    // Moves unacked publishes to `pending` (resent if the
                    // next CONNACK has a session) and closes the socket.
                    el.clean();
                    active = false;
                }
                Some(Command::Connect) => {}
                None => return,
            },
            r = el.poll() => {
                let (r, unwritten_pending) = r;
                let failed = r.is_err();
                if events.send(Polled { epoch, event: Box::new(r), unwritten_pending }).await.is_err() {
                    return;
                }
                if failed {
                    active = false;
                }
            }
        }
    }
}

/// `el.poll()`, with [`unwritten_pending`] as it stood before it.
pub async fn poll_counted(el: &mut EventLoop) -> (Result<Event, ConnectionError>, usize) {
    let n = unwritten_pending(el);
    (el.poll().await, n)
}

//! Ctrl-C and SIGTERM, installed once before a run starts anything (like
//! mini-redis's `Shutdown`): one task owns both signal streams for the whole
//! run and publishes the first stop request on a watch channel, so a signal
//! that arrives in any phase — the broker starting, a fault being applied,
//! the teardown — is never dropped. (A `tokio::signal::ctrl_c()` created
//! anew in each `select!` only sees signals sent after it was created.)

use std::io;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// What stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (a CI job cancelled, `docker stop`).
    Terminate,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT (Ctrl-C)",
            Stop::Terminate => "SIGTERM",
        }
    }
}

/// A handle on the run's stop requests; clones see the same requests.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<Stop>>,
}

impl Shutdown {
    /// Install the handlers (inside the runtime). From here on SIGINT and
    /// SIGTERM no longer end the process: they ask the run to stop, and
    /// the run heals, tears down and writes its report.
    pub fn install() -> io::Result<Shutdown> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    Some(()) = int.recv() => Stop::Interrupt,
                    Some(()) = term.recv() => Stop::Terminate,
                    else => return,
                };
                if tx.borrow().is_some() {
                    // A second request while the run already stops: the
                    // teardown goes on, bounded by its own deadline.
                    eprintln!("{}: already stopping; the teardown is bounded", stop.name());
                    continue;
                }
                if tx.send(Some(stop)).is_err() {
                    return;
                }
            }
        });
        Ok(Shutdown { rx })
    }

    /// A handle that never asks to stop (a run driven by a library caller
    /// that handles signals itself), and its trigger.
    pub fn manual() -> (watch::Sender<Option<Stop>>, Shutdown) {
        let (tx, rx) = watch::channel(None);
        (tx, Shutdown { rx })
    }

    /// The stop requested so far, if any.
    pub fn requested(&self) -> Option<Stop> {
        *self.rx.borrow()
    }

    /// Wait until a stop is requested (at once if one already was).
    pub async fn wait(&mut self) -> Stop {
        loop {
            if let Some(s) = *self.rx.borrow_and_update() {
                return s;
            }
            if self.rx.changed().await.is_err() {
                // The sender is gone: nobody can ask any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_made_before_anyone_waits_is_seen() {
        let (tx, mut s) = Shutdown::manual();
        assert_eq!(s.requested(), None);
        tx.send(Some(Stop::Terminate)).unwrap();
        // Nobody was waiting when it was sent: it is not lost.
        assert_eq!(s.wait().await, Stop::Terminate);
        let mut clone = s.clone();
        assert_eq!(clone.wait().await, Stop::Terminate);
        assert_eq!(s.requested(), Some(Stop::Terminate));
    }
}

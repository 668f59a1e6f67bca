//! `--workers N`: one run split across N processes of this machine, each
//! with its own open-file budget and core, that reads like one run.
//!
//! This process is shard `0/N`: it starts the broker (and whatever the
//! scenario needs of it) as any run does, then, before it starts
//! measuring, spawns shards `1/N … N−1/N` as child processes of this
//! binary (`run --shard I/N --start-at T --broker tcp://ADDR --out
//! DIR/shard-I`), all with the same common start instant `T`. Shard 0
//! applies the broker faults; the others follow them (crate::shard). At the
//! end shard 0 waits for its workers before it stops the broker they
//! share, and the shards' directories are merged into `DIR` exactly as
//! `mqtt-chaos merge` does. A worker that fails to start, exits without a
//! run directory or exits abnormally makes the run fail visibly; a shard
//! that ran but was in `error` makes the merged run `error`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{RunError, RunOptions};
use crate::shard::Shard;

/// How long before the common start instant the workers are spawned: time
/// for each to start, check its scenario, reach the broker and set up its
/// proxies (a Toxiproxy container takes longer).
pub const LEAD: Duration = Duration::from_secs(10);
pub const LEAD_CONTAINER: Duration = Duration::from_secs(40);

/// Most workers of one machine.
pub const MAX_WORKERS: u32 = 64;

/// The worker processes of one run.
pub struct Workers {
    count: u32,
    /// The run's directory; shard I writes `shard-I` in it.
    dir: PathBuf,
    children: Vec<(Shard, Child)>,
    /// What each ended with, once waited for.
    outcomes: Vec<(Shard, Result<i32, String>)>,
    /// When the run is due to end (the workers end then, or soon after).
    due: Option<tokio::time::Instant>,
}

/// Shard I's directory in the run's directory.
pub fn shard_dir(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(format!("shard-{}", shard.index))
}

impl Workers {
    pub fn new(count: u32, dir: PathBuf) -> Workers {
        Workers {
            count,
            dir,
            children: Vec::new(),
            outcomes: Vec::new(),
            due: None,
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        (0..self.count)
            .map(|index| {
                shard_dir(
                    &self.dir,
                    Shard {
                        index,
                        count: self.count,
                    },
                )
            })
            .collect()
    }

    /// Spawn shards 1…N−1 against the broker at `broker`, to start at
    /// `start_unix_ms`; `total`: the run's length (duration and drain).
    pub fn spawn(
        &mut self,
        opts: &RunOptions,
        seed: u64,
        broker: SocketAddr,
        start_unix_ms: u64,
        total: Duration,
    ) -> Result<(), RunError> {
        let start_in = Duration::from_millis(
            start_unix_ms.saturating_sub(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
            ),
        );
        self.due = Some(tokio::time::Instant::now() + start_in + total);
        for index in 1..self.count {
            let shard = Shard {
                index,
                count: self.count,
            };
            let out = shard_dir(&self.dir, shard);
            let log_path = self.dir.join(format!("shard-{index}.log"));
            let log = std::fs::File::create(&log_path).map_err(|e| {
                RunError::Environment(format!("{}: cannot write: {e}", log_path.display()))
            })?;
            let err = log.try_clone().map_err(|e| {
                RunError::Environment(format!("{}: cannot write: {e}", log_path.display()))
            })?;
            let mut cmd = Command::new(&opts.exe);
            cmd.arg("run")
                .arg(&opts.scenario)
                .arg("--shard")
                .arg(shard.to_string())
                .arg("--start-at")
                .arg(start_unix_ms.to_string())
                .arg("--broker")
                .arg(format!("tcp://{broker}"))
                .arg("--out")
                .arg(&out)
                .arg("--seed")
                .arg(seed.to_string())
                .arg("--quiet");
            if let Some(f) = &opts.faults {
                cmd.arg("--faults").arg(f);
            }
            if let Some(d) = opts.duration {
                cmd.arg("--duration").arg(format!("{}ms", d.as_millis()));
            }
            if let Some(u) = &opts.proxy.upstream {
                cmd.arg("--proxy-upstream").arg(u);
            }
            if let Some(p) = &opts.proxy.ports {
                cmd.arg("--proxy-ports").arg(p);
            }
            if let Some(n) = &opts.proxy.network {
                cmd.arg("--docker-network").arg(n);
            }
            if let Some(a) = &opts.proxy.sources {
                cmd.arg("--source-addresses").arg(a);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(err))
                .kill_on_drop(true);
            let child = cmd.spawn().map_err(|e| {
                RunError::Environment(format!(
                    "worker {shard}: cannot start {}: {e}",
                    opts.exe.display()
                ))
            })?;
            self.children.push((shard, child));
        }
        Ok(())
    }

    /// Wait for every worker (asking them to stop first when the run ends
    /// before it was due: an interruption, a failed fault, the broker gone).
    /// Returns what went wrong, one line each.
    pub async fn wait(&mut self) -> Vec<String> {
        let early = self
            .due
            .is_some_and(|d| tokio::time::Instant::now() + Duration::from_secs(2) < d);
        if early {
            self.signal(nix::sys::signal::Signal::SIGTERM);
        }
        // A worker ends with the run, and tears down within its own
        // deadline after it.
        let deadline = self
            .due
            .unwrap_or_else(tokio::time::Instant::now)
            .max(tokio::time::Instant::now())
            + super::TEARDOWN_DEADLINE / 2;
        let mut failed = Vec::new();
        for (shard, mut child) in self.children.drain(..) {
            let outcome = match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(Ok(status)) => match status.code() {
                    Some(c) => Ok(c),
                    None => Err(format!("worker {shard} was killed by a signal ({status})")),
                },
                Ok(Err(e)) => Err(format!("worker {shard}: {e}")),
                Err(_) => {
                    let _ = child.kill().await;
                    Err(format!(
                        "worker {shard} did not end in time after the run and was killed"
                    ))
                }
            };
            if let Err(e) = &outcome {
                failed.push(e.clone());
            } else if let Ok(c) = outcome {
                if c == i32::from(super::exit::USAGE) {
                    failed.push(format!(
                        "worker {shard} refused to run (exit {c}); see {}",
                        self.dir
                            .join(format!("shard-{}.log", shard.index))
                            .display()
                    ));
                }
            }
            self.outcomes.push((shard, outcome));
        }
        failed
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        for (_, c) in &self.children {
            if let Some(pid) = c.id() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
            }
        }
    }
}

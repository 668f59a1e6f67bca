//! A child process the bench started, as a guard: waited for with a
//! deadline, measured from /proc while it runs (its CPU and peak RSS are
//! its own, every thread included), and stopped when the guard drops on any
//! path (SIGTERM, SIGKILL after a grace period). Every child also gets
//! SIGTERM when the bench itself dies (`PR_SET_PDEATHSIG`).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::procfs;

/// How often a running child is sampled and the deadline checked.
pub const TICK: Duration = Duration::from_millis(200);

/// What a finished child cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub status: ExitStatus,
    /// utime + stime of all its threads, read from its zombie's
    /// /proc/PID/stat before it is reaped, so nothing at its end is missed.
    pub cpu: Duration,
    /// The largest VmHWM seen while it ran (sampled every [`TICK`]).
    pub peak_rss_kib: u64,
}

pub struct Proc {
    name: String,
    child: Child,
    grace: Duration,
    peak_rss_kib: u64,
    reaped: bool,
}

impl Proc {
    /// Start `cmd`; `grace` is how long a SIGTERM gets before SIGKILL.
    pub fn spawn(name: &str, cmd: &mut Command, grace: Duration) -> Result<Proc, String> {
        // SAFETY: prctl is async-signal-safe; nothing else runs in the hook.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            grace,
            peak_rss_kib: 0,
            reaped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Update the peak RSS; false once the process is gone.
    pub fn sample(&mut self) -> bool {
        match procfs::peak_rss_kib(self.pid()) {
            Some(k) => {
                self.peak_rss_kib = self.peak_rss_kib.max(k);
                true
            }
            None => false,
        }
    }

    /// The exit of a child that has ended, without reaping it (so its
    /// /proc/PID/stat still holds its final CPU time).
    fn ended(&self) -> bool {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        !matches!(
            waitid(Id::Pid(Pid::from_raw(self.pid())), flags),
            Ok(WaitStatus::StillAlive) | Err(_)
        )
    }

    /// Wait until the child ends by itself, at most until `deadline`;
    /// `on_tick` runs every [`TICK`] (progress lines, connection counts).
    /// Interrupted (SIGINT/SIGTERM to the bench) or past the deadline: an
    /// error, and the guard stops the child when it drops.
    pub fn wait(
        &mut self,
        deadline: Instant,
        mut on_tick: impl FnMut(&Proc),
    ) -> Result<Cost, String> {
        let mut costs = wait_all(std::slice::from_mut(self), deadline, |ps| on_tick(&ps[0]))?;
        Ok(costs.remove(0))
    }

    /// Its cost when it has ended (reaped now), else None after sampling
    /// its peak RSS.
    fn reap_if_ended(&mut self) -> Result<Option<Cost>, String> {
        if !self.ended() {
            self.sample();
            return Ok(None);
        }
        let cpu = procfs::cpu(self.pid()).unwrap_or_default();
        let status = self
            .child
            .wait()
            .map_err(|e| format!("wait for {}: {e}", self.name))?;
        self.reaped = true;
        Ok(Some(Cost {
            status,
            cpu,
            peak_rss_kib: self.peak_rss_kib,
        }))
    }

    /// Stop the child now (SIGTERM, then SIGKILL after the grace period)
    /// and reap it; its cost up to here.
    pub fn stop(&mut self) -> Option<Cost> {
        if self.reaped {
            return None;
        }
        self.sample();
        let pid = Pid::from_raw(self.pid());
        let _ = kill(pid, Signal::SIGTERM);
        let until = Instant::now() + self.grace;
        while !self.ended() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !self.ended() {
            eprintln!("fleet bench: {} ignored SIGTERM, killing it", self.name);
            let _ = kill(pid, Signal::SIGKILL);
        }
        let cpu = procfs::cpu(self.pid()).unwrap_or_default();
        let status = self.child.wait().ok()?;
        self.reaped = true;
        Some(Cost {
            status,
            cpu,
            peak_rss_kib: self.peak_rss_kib,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until every child ends by itself, at most until `deadline`, each
/// sampled every [`TICK`] while it runs (so none of their peaks is
/// missed); their costs in order. `on_tick` as in [`Proc::wait`].
pub fn wait_all(
    procs: &mut [Proc],
    deadline: Instant,
    mut on_tick: impl FnMut(&[Proc]),
) -> Result<Vec<Cost>, String> {
    let mut costs: Vec<Option<Cost>> = vec![None; procs.len()];
    loop {
        if crate::interrupted() {
            return Err(format!("interrupted while {} ran", running(procs, &costs)));
        }
        for (p, c) in procs.iter_mut().zip(costs.iter_mut()) {
            if c.is_none() {
                *c = p.reap_if_ended()?;
            }
        }
        if costs.iter().all(Option::is_some) {
            return Ok(costs.into_iter().flatten().collect());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not end within its deadline",
                running(procs, &costs)
            ));
        }
        on_tick(procs);
        std::thread::sleep(TICK);
    }
}

/// The names of the children still running, for messages.
fn running(procs: &[Proc], costs: &[Option<Cost>]) -> String {
    procs
        .iter()
        .zip(costs)
        .filter(|(_, c)| c.is_none())
        .map(|(p, _)| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

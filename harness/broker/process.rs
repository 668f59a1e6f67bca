//! A broker run as a child process the harness controls: the part the
//! embedded and Mosquitto backends share.
//!
//! * The loopback port is picked once, at construction, and kept for the
//!   broker's whole life, so a restart keeps the address clients reconnect
//!   to. Only before the first successful start may it move to another port
//!   (somebody took it in between); never after.
//! * `start` returns once a raw MQTT CONNECT is answered by CONNACK 0
//!   ([`super::probe`]), polled with a short back-off, never a fixed sleep.
//! * The child never outlives the harness: it is killed on drop, and
//!   `PR_SET_PDEATHSIG(SIGKILL)` kills it even when the harness itself is
//!   SIGKILLed. The parent-death signal fires when the *thread* that forked the
//!   child exits, so children are forked from one dedicated thread that lives
//!   as long as the process (a tokio blocking thread may retire after 10 s
//!   idle and would take the broker with it).
//! * The child gets its own process group, so a Ctrl-C at the terminal
//!   reaches the harness (which then shuts the broker down in order) and not
//!   the broker directly.

use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{probe, BrokerError};

/// How long `start` waits for the first CONNACK unless told otherwise.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` waits after SIGTERM before it sends SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long we wait for an exit after SIGKILL (the kernel is quick; this only
/// bounds a wedged system).
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long pause/resume wait for the kernel to report the new state.
const SIGNAL_CONFIRM: Duration = Duration::from_secs(2);
/// How many fresh ports the first start tries when its port was taken.
const FIRST_START_PORT_TRIES: usize = 5;
/// How much of the child's log an error message quotes.
const LOG_TAIL_BYTES: u64 = 2048;

/// Pick a free loopback port: bind 127.0.0.1:0, read the port, close.
pub fn pick_port() -> io::Result<u16> {
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Whether a listener could bind 127.0.0.1:`port` right now (with
/// `SO_REUSEADDR`, as both brokers use, so TIME_WAIT leftovers do not count).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Builds the command line of one start; given the port and the temp dir
/// (Mosquitto writes its config file there).
pub type CommandBuilder<'a> =
    &'a (dyn Fn(u16, &Path) -> Result<std::process::Command, BrokerError> + Send + Sync);

/// One broker child process and its lifecycle.
#[derive(Debug)]
pub struct BrokerProcess {
    /// `mosquitto`, `embedded rumqttd`: names the broker in errors.
    what: String,
    port: u16,
    started_once: bool,
    child: Option<Child>,
    paused: bool,
    last_exit: Option<ExitStatus>,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    start_timeout: Duration,
    stop_grace: Duration,
}

/// How waiting for the first CONNACK ended.
enum Readiness {
    Ready,
    Exited(ExitStatus),
    TimedOut(String),
}

/// A broker's temp dir is `mqtt-chaos-broker-<harness pid>-<random>`.
const DIR_PREFIX: &str = "mqtt-chaos-broker-";

/// The harness pid in a broker temp dir's name (pure).
fn dir_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(DIR_PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    (!random.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Remove the broker temp dirs in `tmp` of harnesses that are gone: a
/// harness killed with SIGKILL cannot remove its own (its broker child dies
/// with it, `PR_SET_PDEATHSIG`), so the next run does. A dir of a live
/// process, or of a name from before the pid was part of it, is left alone;
/// what cannot be removed is left too (best effort, logged).
fn sweep_stale_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(dir_owner) else {
            continue;
        };
        if pid == std::process::id() || crate::runner::outdir::pid_alive(pid) {
            continue;
        }
        match std::fs::remove_dir_all(e.path()) {
            Ok(()) => tracing::info!(
                "removed {} (left by harness process {pid}, which is gone)",
                e.path().display()
            ),
            Err(err) => tracing::debug!("cannot remove {}: {err}", e.path().display()),
        }
    }
}

impl BrokerProcess {
    /// Pick the port and make the temp dir; nothing is started yet.
    pub fn new(what: &str) -> Result<BrokerProcess, BrokerError> {
        sweep_stale_dirs(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| BrokerError::Start {
                what: what.to_string(),
                message: format!("cannot create a temp dir: {e}"),
            })?;
        let port = pick_port().map_err(|e| BrokerError::Start {
            what: what.to_string(),
            message: format!("cannot pick a free port on 127.0.0.1: {e}"),
        })?;
        let log_path = dir.path().join("broker.log");
        Ok(BrokerProcess {
            what: what.to_string(),
            port,
            started_once: false,
            child: None,
            paused: false,
            last_exit: None,
            dir: Some(dir),
            log_path,
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_grace: DEFAULT_STOP_GRACE,
        })
    }

    pub fn set_start_timeout(&mut self, d: Duration) {
        self.start_timeout = d;
    }

    pub fn set_stop_grace(&mut self, d: Duration) {
        self.stop_grace = d;
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The pid of the running (or paused) child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// How the last child ended (after stop, kill or shutdown).
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }

    /// The temp dir (config, log, persistence); `None` after shutdown.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// The child's stdout+stderr, appended across restarts.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn control(&self, message: impl Into<String>) -> BrokerError {
        BrokerError::Control {
            what: format!("{} at {}", self.what, self.addr()),
            message: message.into(),
        }
    }

    /// The last lines of the child's log, for error messages.
    pub fn log_tail(&self) -> String {
        read_tail(&self.log_path, LOG_TAIL_BYTES).unwrap_or_default()
    }

    /// Spawn the child and wait until it answers MQTT.
    pub async fn start(&mut self, build: CommandBuilder<'_>) -> Result<(), BrokerError> {
        if self.child.is_some() {
            return Err(self.control("start: already running"));
        }
        let dir = match &self.dir {
            Some(d) => d.path().to_path_buf(),
            None => return Err(self.control("start: already shut down")),
        };
        let tries = if self.started_once {
            1
        } else {
            FIRST_START_PORT_TRIES
        };
        let mut last_error = None;
        for _ in 0..tries {
            if !port_is_free(self.port) {
                let e = BrokerError::Start {
                    what: format!("{} at {}", self.what, self.addr()),
                    message: "the port is taken by another process".into(),
                };
                if self.started_once {
                    return Err(e);
                }
                last_error = Some(e);
                self.repick_port()?;
                continue;
            }
            let cmd = build(self.port, &dir)?;
            self.spawn(cmd).await?;
            match self.wait_ready().await {
                Readiness::Ready => {
                    self.started_once = true;
                    return Ok(());
                }
                Readiness::Exited(status) => {
                    self.child = None;
                    self.last_exit = Some(status);
                    let e = BrokerError::Start {
                        what: format!("{} at {}", self.what, self.addr()),
                        message: format!(
                            "it exited ({}) before accepting MQTT; its log ends: {}",
                            describe_exit(status),
                            self.log_tail()
                        ),
                    };
                    // Lost the port race at first start: somebody bound it
                    // between our check and the broker's bind.
                    if !self.started_once && !port_is_free(self.port) {
                        last_error = Some(e);
                        self.repick_port()?;
                        continue;
                    }
                    return Err(e);
                }
                Readiness::TimedOut(probe_error) => {
                    let addr = self.addr();
                    let _ = self.kill().await;
                    return Err(BrokerError::NotReady {
                        addr: addr.to_string(),
                        waited: self.start_timeout,
                        message: format!(
                            "{} never answered CONNECT (last probe: {probe_error}); its log ends: {}",
                            self.what,
                            self.log_tail()
                        ),
                    });
                }
            }
        }
        Err(last_error.unwrap_or_else(|| self.control("start: no port left to try")))
    }

    fn repick_port(&mut self) -> Result<(), BrokerError> {
        self.port = pick_port().map_err(|e| BrokerError::Start {
            what: self.what.clone(),
            message: format!("cannot pick a free port on 127.0.0.1: {e}"),
        })?;
        Ok(())
    }

    async fn spawn(&mut self, std_cmd: std::process::Command) -> Result<(), BrokerError> {
        let program = std_cmd.get_program().to_string_lossy().into_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| BrokerError::Start {
                what: self.what.clone(),
                message: format!("cannot open log {}: {e}", self.log_path.display()),
            })?;
        let log2 = log.try_clone()?;
        let mut cmd = Command::from(std_cmd);
        cmd.stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec; it only
        // makes two system calls and builds an error without allocating.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // The parent may have died between fork and prctl.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(io::Error::from(nix::errno::Errno::ESRCH));
                }
                Ok(())
            });
        }
        let child = spawn_from_long_lived_thread(cmd)
            .await
            .map_err(|e| BrokerError::Start {
                what: format!("{} at {}", self.what, self.addr()),
                message: format!("cannot run {program}: {e}"),
            })?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    async fn wait_ready(&mut self) -> Readiness {
        let addr = self.addr();
        let deadline = Instant::now() + self.start_timeout;
        let mut backoff = Duration::from_millis(2);
        let mut last = String::from("none yet");
        loop {
            if let Some(status) = self.exited() {
                return Readiness::Exited(status);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Readiness::TimedOut(last);
            }
            match probe::check(addr, left.min(Duration::from_secs(1))).await {
                Ok(_) => {
                    // A CONNACK from somebody else's broker on a port we lost
                    // would look the same; ours must still be alive.
                    if let Some(status) = self.exited() {
                        return Readiness::Exited(status);
                    }
                    return Readiness::Ready;
                }
                Err(e) => last = e.to_string(),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The child ended by itself while it should run (not stopped, killed
    /// or paused by the harness): how, with the end of its log. The child is
    /// forgotten, so it is reported once.
    pub fn unexpected_exit(&mut self) -> Option<String> {
        let status = self.exited()?;
        self.child = None;
        self.paused = false;
        let tail = self.log_tail();
        Some(format!(
            "{} at {} exited by itself ({}){}",
            self.what,
            self.addr(),
            describe_exit(status),
            if tail.trim().is_empty() {
                String::new()
            } else {
                format!("; its log ends: {}", tail.trim())
            }
        ))
    }

    fn signal(&self, sig: Signal) -> Result<(), BrokerError> {
        let pid = self
            .pid()
            .ok_or_else(|| self.control(format!("{sig}: not running")))?;
        signal::kill(Pid::from_raw(pid as i32), sig)
            .map_err(|e| self.control(format!("{sig} to pid {pid}: {e}")))
    }

    /// Wait (bounded) for the child to exit; records the status.
    async fn reap(&mut self, within: Duration) -> Result<Option<ExitStatus>, BrokerError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(status)) => {
                self.child = None;
                self.paused = false;
                self.last_exit = Some(status);
                Ok(Some(status))
            }
            Ok(Err(e)) => Err(self.control(format!("waiting for exit: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// SIGTERM and wait for the exit; SIGKILL after the grace period. A paused
    /// child gets SIGCONT right after SIGTERM, so the pending SIGTERM is the
    /// first thing it handles when it thaws (it serves nobody in between).
    pub async fn stop(&mut self) -> Result<(), BrokerError> {
        if self.child.is_none() {
            return Ok(());
        }
        if self.exited().is_none() {
            self.signal(Signal::SIGTERM)?;
            if self.paused {
                self.signal(Signal::SIGCONT)?;
            }
        }
        if self.reap(self.stop_grace).await?.is_some() {
            return Ok(());
        }
        tracing::warn!(
            broker = %self.what,
            grace = ?self.stop_grace,
            "no exit after SIGTERM; sending SIGKILL"
        );
        self.kill().await
    }

    /// SIGKILL and wait for the exit. SIGKILL needs no SIGCONT: the kernel
    /// kills a stopped process as it is.
    pub async fn kill(&mut self) -> Result<(), BrokerError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if let Err(e) = child.start_kill() {
            // Already reaped is fine; anything else is not.
            if e.kind() != io::ErrorKind::InvalidInput {
                return Err(self.control(format!("SIGKILL: {e}")));
            }
        }
        match self.reap(KILL_WAIT).await? {
            Some(_) => Ok(()),
            None => Err(self.control(format!("no exit {KILL_WAIT:?} after SIGKILL"))),
        }
    }

    /// SIGSTOP, confirmed by the kernel's process state.
    pub async fn pause(&mut self) -> Result<(), BrokerError> {
        if self.child.is_none() {
            return Err(self.control("pause: not running"));
        }
        if self.paused {
            return Ok(());
        }
        self.signal(Signal::SIGSTOP)?;
        self.paused = true;
        self.confirm_state(true).await
    }

    /// SIGCONT, confirmed by the kernel's process state and by a CONNACK.
    pub async fn resume(&mut self) -> Result<(), BrokerError> {
        if self.child.is_none() {
            return Err(self.control("resume: not running"));
        }
        if !self.paused {
            return Ok(());
        }
        self.signal(Signal::SIGCONT)?;
        self.paused = false;
        self.confirm_state(false).await?;
        match self.wait_ready().await {
            Readiness::Ready => Ok(()),
            Readiness::Exited(status) => {
                self.child = None;
                self.last_exit = Some(status);
                Err(self.control(format!(
                    "it exited ({}) after SIGCONT; its log ends: {}",
                    describe_exit(status),
                    self.log_tail()
                )))
            }
            Readiness::TimedOut(last) => Err(BrokerError::NotReady {
                addr: self.addr().to_string(),
                waited: self.start_timeout,
                message: format!("{} did not answer CONNECT after SIGCONT: {last}", self.what),
            }),
        }
    }

    async fn confirm_state(&mut self, stopped: bool) -> Result<(), BrokerError> {
        let pid = self.pid().ok_or_else(|| self.control("no pid"))?;
        let deadline = Instant::now() + SIGNAL_CONFIRM;
        let mut backoff = Duration::from_micros(200);
        loop {
            match proc_state(pid) {
                Some(state) if (state == 'T') == stopped => return Ok(()),
                Some(_) => {}
                None => return Err(self.control(format!("pid {pid} vanished"))),
            }
            if Instant::now() >= deadline {
                return Err(self.control(format!(
                    "pid {pid} not {} {SIGNAL_CONFIRM:?} after the signal",
                    if stopped { "stopped" } else { "running" }
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }

    /// Kill and reap the child and remove the temp dir; safe to call twice.
    pub async fn shutdown(&mut self) -> Result<(), BrokerError> {
        let killed = self.kill().await;
        let removed = match self.dir.take() {
            Some(dir) => {
                let path = dir.path().to_path_buf();
                dir.close().map_err(|e| BrokerError::Control {
                    what: self.what.clone(),
                    message: format!("cannot remove {}: {e}", path.display()),
                })
            }
            None => Ok(()),
        };
        killed.and(removed)
    }
}

impl Drop for BrokerProcess {
    /// Best effort: SIGKILL and a short bounded reap; `kill_on_drop` and the
    /// temp dir's own drop cover the rest.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    _ => break,
                }
            }
        }
    }
}

/// `exit code 0`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(sig) => match Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({s})"),
            Err(_) => format!("signal {sig}"),
        },
        None => format!("{status}"),
    }
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`…); `None`
/// when the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_state(&stat)
}

/// The state field follows the command name, which is in parentheses and
/// may itself contain spaces and parentheses: take what follows the last `)`.
fn parse_stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

fn read_tail(path: &Path, max: u64) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        return Ok("(empty)".into());
    }
    Ok(text.replace('\n', " | "))
}

struct SpawnRequest {
    cmd: Command,
    runtime: tokio::runtime::Handle,
    reply: tokio::sync::oneshot::Sender<io::Result<Child>>,
}

/// Fork `cmd` from the one thread that lives as long as the process (see the
/// module doc on `PR_SET_PDEATHSIG`), registered with the caller's runtime.
async fn spawn_from_long_lived_thread(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("mqtt-chaos-spawner".into())
            .spawn(move || {
                for mut req in rx {
                    let _guard = req.runtime.enter();
                    let _ = req.reply.send(req.cmd.spawn());
                }
            })
            .expect("cannot start the broker spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let req = SpawnRequest {
        cmd,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(req)
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the spawner thread dropped the request"))?
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_broker_dir_names_its_harness() {
        assert_eq!(super::dir_owner("mqtt-chaos-broker-4242-AbC12"), Some(4242));
        assert_eq!(super::dir_owner("mqtt-chaos-broker-AbC12"), None);
        assert_eq!(super::dir_owner("mqtt-chaos-broker-4242-"), None);
        assert_eq!(super::dir_owner("other-4242-x"), None);
    }

    #[test]
    fn dirs_of_gone_harnesses_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum is never alive.
        let gone = tmp.path().join("mqtt-chaos-broker-4194305-x1");
        let mine = tmp
            .path()
            .join(format!("mqtt-chaos-broker-{}-x2", std::process::id()));
        let old_style = tmp.path().join("mqtt-chaos-broker-x3");
        for d in [&gone, &mine, &old_style] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("broker.log"), "x").unwrap();
        }
        super::sweep_stale_dirs(tmp.path());
        assert!(!gone.exists());
        assert!(mine.exists() && old_style.exists());
    }
    use super::*;

    #[test]
    fn the_state_is_read_after_the_last_parenthesis_of_the_name() {
        assert_eq!(parse_stat_state("42 (mosquitto) S 1 42 42"), Some('S'));
        assert_eq!(parse_stat_state("42 (a) b) (c) T 1 42"), Some('T'));
        assert_eq!(parse_stat_state("garbage"), None);
    }

    #[test]
    fn a_picked_port_is_free_until_somebody_binds_it() {
        let port = pick_port().unwrap();
        assert_ne!(port, 0);
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = l.local_addr().unwrap().port();
        assert!(!port_is_free(taken));
        drop(l);
    }

    #[test]
    fn exits_are_described_by_code_or_signal() {
        assert_eq!(describe_exit(ExitStatus::from_raw(0)), "exit code 0");
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exit code 3");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal 9 (SIGKILL)");
    }

    #[test]
    fn a_log_tail_keeps_the_end_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "first\nsecond\nthird\n").unwrap();
        assert_eq!(read_tail(&p, 13).unwrap(), "second | third");
        std::fs::write(&p, "").unwrap();
        assert_eq!(read_tail(&p, 13).unwrap(), "(empty)");
    }
}

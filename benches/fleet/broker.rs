//! The one Mosquitto every phase of the bench runs against: Debian's
//! `/usr/sbin/mosquitto` with a config file of its own on a free port of
//! 127.0.0.1, no persistence, no connection limit and the queue limits of
//! the harness's own Mosquitto backend (none), so the broker never drops
//! what a fleet sends. It inherits the bench's open-file limit (the soft
//! limit raised to the hard one).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::Proc;

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// The config file (pure).
pub fn config_text(port: u16, as_root: bool) -> String {
    let mut c = String::from("# written by the fleet capacity bench\n");
    c.push_str(&format!("listener {port} 127.0.0.1\n"));
    c.push_str("allow_anonymous true\n");
    c.push_str("max_connections -1\n");
    c.push_str("persistence false\n");
    c.push_str(mqtt_chaos::broker::mosquitto::QUEUE_LIMITS);
    // One log line per connect and disconnect would be most of its log
    // writing at 10 000 devices.
    c.push_str("connection_messages false\n");
    c.push_str("log_dest stderr\n");
    if as_root {
        c.push_str("user root\n");
    }
    c
}

pub struct Broker {
    pub proc: Proc,
    pub port: u16,
    pub version: String,
}

impl Broker {
    /// Start Mosquitto with its config and log in `dir`; ready when it
    /// accepts a TCP connection (at most 10 s).
    pub fn start(dir: &Path) -> Result<Broker, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let conf = dir.join("mosquitto.conf");
        // /proc/self belongs to the effective user.
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        std::fs::write(&conf, config_text(port, as_root)).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("mosquitto.log")).map_err(|e| e.to_string())?;
        let version = Command::new(MOSQUITTO)
            .arg("-h")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "mosquitto (version unknown)".into());
        let proc = Proc::spawn(
            "mosquitto",
            Command::new(MOSQUITTO)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
            Duration::from_secs(10),
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Broker {
                    proc,
                    port,
                    version,
                });
            }
            if Instant::now() >= until || crate::interrupted() {
                return Err(format!(
                    "mosquitto did not listen on {addr} within 10 s (log: {})",
                    dir.join("mosquitto.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Mosquitto's CPU time so far.
    pub fn cpu(&self) -> Duration {
        crate::procfs::cpu(self.proc.pid()).unwrap_or_default()
    }

    /// Wait (at most `bound`) until no client is connected any more, so a
    /// phase starts on an empty broker; the connections left otherwise.
    pub fn wait_empty(&self, bound: Duration) -> usize {
        let until = Instant::now() + bound;
        loop {
            let n = crate::procfs::established(self.port);
            if n == 0 || Instant::now() >= until || crate::interrupted() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

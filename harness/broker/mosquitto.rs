//! A local Mosquitto the harness configures, starts and controls.
//!
//! The config file, the log and (with persistence) the database live in the
//! broker's temp dir. With persistence on, Mosquitto saves its database after
//! every change (`autosave_on_changes true`, `autosave_interval 1`), so a
//! SIGKILL keeps what was queued. Mosquitto saves at the end of the loop
//! iteration that made the change, after it has sent the ack: a kill in that
//! sliver can still lose the last acked message, which is Mosquitto's real
//! behaviour and what a run measures.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use async_trait::async_trait;

use super::process::BrokerProcess;
use super::{Broker, BrokerError, BrokerSettings, Capabilities};

/// Where [`MosquittoBroker::find`] looks before `PATH`.
pub const KNOWN_PATHS: [&str; 3] = [
    "/usr/sbin/mosquitto",
    "/usr/bin/mosquitto",
    "/usr/local/sbin/mosquitto",
];

/// The queue and in-flight limits of every Mosquitto the harness
/// configures (this backend, the Mosquitto container, the compose
/// stand-in). A message Mosquitto drops because one of its own limits was
/// reached is charged to the client under test as `lost_after_ack` (or to
/// the harness's collector), so none of them may be what a run measures;
/// `0` means "no maximum" for each (`man mosquitto.conf`):
///
/// * `max_inflight_messages 0`: Mosquitto's default of 20 outgoing QoS 1/2
///   messages in flight per client caps what one collector connection
///   receives at 20 per round trip, and the rest waits in the queue below.
///   Mosquitto 2.0 also uses this value as the number of incoming QoS 2
///   messages one client may hold; beyond it the PUBREC carries 0x97
///   (quota exceeded, a success at MQTT 3.1.1) and the message is dropped.
/// * `max_queued_messages 0`: the default of 1000 queued messages per
///   client (above those in flight) drops every further QoS 1/2 message for
///   a slow or offline subscriber — an offline persistent device's commands,
///   the collector during a burst. Memory is bounded by the run itself
///   (rate × how long a subscriber is away), which the scenario decides.
/// * `max_queued_bytes 0`: the default already (no byte limit); written
///   out so the config says everything that drops messages.
pub const QUEUE_LIMITS: &str =
    "max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n";

/// A Mosquitto child process.
/// What this backend can do (known before it starts).
pub const CAPABILITIES: Capabilities = Capabilities {
    restart: true,
    kill: true,
    pause: true,
    persistence: true,
    keepalive_zero: true,
    partition: false,
    mqtt5: true,
};

#[derive(Debug)]

pub struct MosquittoBroker {
    settings: BrokerSettings,
    binary: PathBuf,
    version: String,
    process: BrokerProcess,
}

impl MosquittoBroker {
    /// The Mosquitto binary: one of [`KNOWN_PATHS`], else `mosquitto` on `PATH`.
    pub fn find() -> Result<PathBuf, BrokerError> {
        let path_dirs = std::env::var_os("PATH").unwrap_or_default();
        KNOWN_PATHS
            .iter()
            .map(PathBuf::from)
            .chain(std::env::split_paths(&path_dirs).map(|d| d.join("mosquitto")))
            .find(|p| is_executable(p))
            .ok_or_else(|| BrokerError::Start {
                what: "mosquitto".into(),
                message: format!(
                    "no mosquitto binary in {} or on PATH",
                    KNOWN_PATHS.join(", ")
                ),
            })
    }

    /// Ask `binary` its version, pick the port and make the temp dir;
    /// nothing runs until [`Broker::start`].
    pub fn new(settings: BrokerSettings, binary: PathBuf) -> Result<MosquittoBroker, BrokerError> {
        let out = std::process::Command::new(&binary)
            .arg("-h")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| BrokerError::Start {
                what: format!("mosquitto ({})", binary.display()),
                message: format!("cannot run `{} -h`: {e}", binary.display()),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text).ok_or_else(|| BrokerError::Start {
            what: format!("mosquitto ({})", binary.display()),
            message: format!(
                "`{} -h` does not start with `mosquitto version X`: {:?}",
                binary.display(),
                text.lines().next().unwrap_or("")
            ),
        })?;
        Ok(MosquittoBroker {
            settings,
            binary,
            version,
            process: BrokerProcess::new("mosquitto")?,
        })
    }

    /// How long `start` waits for the first CONNACK (default 10 s).
    pub fn with_start_timeout(mut self, d: Duration) -> MosquittoBroker {
        self.process.set_start_timeout(d);
        self
    }

    /// How long `stop` waits after SIGTERM before SIGKILL (default 5 s).
    pub fn with_stop_grace(mut self, d: Duration) -> MosquittoBroker {
        self.process.set_stop_grace(d);
        self
    }

    /// The child's pid while it runs (or is paused).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// How the last child ended.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.process.last_exit()
    }

    /// The temp dir (config, log, database); `None` after shutdown.
    pub fn dir(&self) -> Option<&Path> {
        self.process.dir()
    }

    /// Mosquitto's log (it logs to stderr; appended across restarts).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}

/// `mosquitto version 2.0.11` (first line of `mosquitto -h`) →
/// `mosquitto 2.0.11`.
pub fn parse_version(help: &str) -> Option<String> {
    let first = help.lines().next()?.trim();
    let v = first.strip_prefix("mosquitto version ")?.trim();
    if v.is_empty() || v.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("mosquitto {v}"))
}

/// The config file of one start (pure). `as_root`: Mosquitto run as root
/// drops to the `mosquitto` user unless told `user root`, and that user
/// could not write the database in our temp dir.
pub fn config_text(port: u16, dir: &Path, persistence: bool, as_root: bool) -> String {
    let mut c = String::from("# written by mqtt-chaos; removed with its temp dir\n");
    c.push_str(&format!("listener {port} 127.0.0.1\n"));
    c.push_str("allow_anonymous true\n");
    c.push_str("log_dest stderr\n");
    c.push_str(QUEUE_LIMITS);
    if as_root {
        c.push_str("user root\n");
    }
    if persistence {
        c.push_str("persistence true\n");
        // Mosquitto wants the trailing slash.
        c.push_str(&format!("persistence_location {}/\n", dir.display()));
        c.push_str("autosave_interval 1\n");
        c.push_str("autosave_on_changes true\n");
    } else {
        c.push_str("persistence false\n");
    }
    c
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[async_trait]
impl Broker for MosquittoBroker {
    fn exited(&mut self) -> Option<String> {
        self.process.unexpected_exit()
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn addr(&self) -> SocketAddr {
        self.process.addr()
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn start(&mut self) -> Result<(), BrokerError> {
        let binary = self.binary.clone();
        let persistence = self.settings.persistence;
        let build = move |port: u16, dir: &Path| {
            // Our temp dir is owned by our effective user.
            let as_root = std::fs::metadata(dir).is_ok_and(|m| m.uid() == 0);
            let conf = dir.join("mosquitto.conf");
            std::fs::write(&conf, config_text(port, dir, persistence, as_root)).map_err(|e| {
                BrokerError::Start {
                    what: format!("mosquitto on 127.0.0.1:{port}"),
                    message: format!("cannot write {}: {e}", conf.display()),
                }
            })?;
            let mut cmd = std::process::Command::new(&binary);
            cmd.arg("-c").arg(&conf).current_dir(dir);
            Ok(cmd)
        };
        self.process.start(&build).await
    }

    async fn stop(&mut self) -> Result<(), BrokerError> {
        self.process.stop().await
    }

    async fn kill(&mut self) -> Result<(), BrokerError> {
        self.process.kill().await
    }

    async fn pause(&mut self) -> Result<(), BrokerError> {
        self.process.pause().await
    }

    async fn resume(&mut self) -> Result<(), BrokerError> {
        self.process.resume().await
    }

    async fn shutdown(&mut self) -> Result<(), BrokerError> {
        self.process.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_first_line_of_the_help() {
        let help = "mosquitto version 2.0.11\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n";
        assert_eq!(parse_version(help).as_deref(), Some("mosquitto 2.0.11"));
        assert_eq!(parse_version("Usage: mosquitto [-c config_file]"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn without_persistence_the_config_says_so_and_names_no_database() {
        let c = config_text(18831, Path::new("/tmp/x"), false, false);
        assert!(c.contains("listener 18831 127.0.0.1\n"));
        assert!(c.contains("allow_anonymous true\n"));
        assert!(c.contains("log_dest stderr\n"));
        assert!(c.contains(QUEUE_LIMITS));
        for line in QUEUE_LIMITS.lines() {
            assert!(line.ends_with(" 0"), "{line}: 0 is no maximum");
        }
        let standin = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/compose/mosquitto-standin.conf"
        ))
        .unwrap();
        assert!(
            standin.contains(QUEUE_LIMITS),
            "the compose stand-in has other limits"
        );
        assert!(c.contains("persistence false\n"));
        assert!(!c.contains("persistence_location"));
        assert!(!c.contains("user root"));
    }

    #[test]
    fn with_persistence_the_database_is_saved_on_every_change_in_the_temp_dir() {
        let c = config_text(18831, Path::new("/tmp/x"), true, true);
        assert!(c.contains("persistence true\n"));
        assert!(c.contains("persistence_location /tmp/x/\n"));
        assert!(c.contains("autosave_interval 1\n"));
        assert!(c.contains("autosave_on_changes true\n"));
        assert!(c.contains("user root\n"));
    }
}

//! mqtt-chaos: prove or refute an MQTT client configuration under scripted
//! network and broker faults.
//!
//! # Map
//!
//! ```text
//! scenario (TOML) ──load/validate──▶ plan ──▶ runner
//!                                            │
//!   broker  ◀── lifecycle faults ────────────┤
//!   fault   ◀── link faults (proxy per group)┤
//!   fleet   ── devices (rumqttc) ──┐         │
//!   observer ── collector, status ─┼─▶ history (one channel) ─▶ ledger + metrics
//!                                  │                                  │
//!                                  └──────────────────────────────────┴─▶ report
//! ```
//!
//! * [`scenario`]: the file format, parsing and validation (pure).
//! * [`limits`]: the bounds of every duration, count, rate and length a
//!   scenario may hold, the size of a whole run ([`limits::RunSize`]), and
//!   the open-file limit it needs (pure, but raising that limit).
//! * [`plan`]: a validated scenario resolved into devices, groups, topics and
//!   a fault schedule, with its seed (pure).
//! * [`clock`]: the run's monotonic clock.
//! * [`history`]: the events every part appends.
//! * [`health`]: the harness's own health: the incidents that make a run's
//!   verdict `error` (METRICS.md, Verdicts).
//! * [`payload`]: the wire format of telemetry and commands.
//! * [`broker`]: brokers under test (embedded rumqttd, Mosquitto, containers, external).
//! * [`docker`]: the Docker plumbing of the containerized backends
//!   (labels, the run's network, lifecycle calls, leftover removal).
//! * [`fault`]: link faults (embedded engine, Toxiproxy), in Toxiproxy's vocabulary.
//! * [`fleet`]: simulated devices driving rumqttc so a profile means what it says.
//! * [`observer`]: the monitoring side: collector of telemetry, status
//!   follower, command sender.
//! * [`observer::sys`]: EMQX 5 `$SYS` client connected/disconnected events (pure parser).
//! * [`ledger`]: per-message accounting (pure).
//! * [`metrics`]: HDR histograms and the figures of METRICS.md (pure).
//! * [`report`]: `report.json` (its schema: `docs/report.schema.json`) and
//!   what is rendered from it: `report.md` (opening with which profile
//!   survived), `junit.xml`, `report.html` with charts of the intervals.
//! * [`shard`]: one fleet split across processes or machines (`--shard`,
//!   `--workers`, `merge`).
//! * [`merge`]: the shards' run directories folded into one run, exactly
//!   (`mqtt-chaos merge`).
//! * [`runner`]: puts it together for one run.
//! * [`progress`]: the live display.

pub mod broker;
pub mod clock;
pub mod docker;
pub mod fault;
pub mod fleet;
pub mod health;
pub mod history;
pub mod ledger;
pub mod limits;
pub mod merge;
pub mod metrics;
pub mod observer;
pub mod payload;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shard;

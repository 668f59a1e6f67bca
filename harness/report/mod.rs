//! `report.json` and what is rendered from it.
//!
//! [`Report`] is the contract at the end of METRICS.md: `schema_version` 1,
//! the run's identity (scenario, seed, start, duration, versions), the
//! verdict, the figures in `totals` and per profile (every METRICS.md figure
//! under its exact name; counts are numbers, durations histogram objects,
//! unmeasured figures `null`), the faults as they really happened, and the
//! checked SLOs. Every renderer ([`markdown`], [`summary`]) reads only the
//! `Report`, so any output can be rebuilt from `report.json` ([`read_json`]);
//! [`html`](mod@html) also draws charts from the run's intervals ([`series`]).
//!
//! * [`figures`]: the one list of figure names.
//! * [`slo`]: SLO shapes and their check (pass / fail / unknown).
//! * [`rebuild`]: a report rebuilt from the run's time series alone.
//! * [`html`](mod@html): `report.html`, one self-contained page with charts.
//! * [`series`]: what those charts plot over time, bounded for long runs.
//! * [`junit`](mod@junit): the SLOs as JUnit XML for CI (`junit.xml`).
//! * [`compare`]: runs side by side, regressions against a baseline.
//! * [`survival`]: which configuration survived — one row per profile, the
//!   first table of `report.md`.
//! * [`signoff`]: under field weather, the offline reports per
//!   configuration (rate with its interval, per device-day, detection
//!   time): then the first table of `report.md` and `report.html`.

pub mod compare;
pub mod figures;
pub mod html;
pub mod junit;
mod markdown;
mod rebuild;
pub mod series;
pub mod signoff;
pub mod slo;
pub mod survival;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use crate::health::{Cause, Incident};
use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use html::html;
pub use junit::{junit, write_junit};
pub use markdown::{markdown, summary};
pub use rebuild::{incomplete, rebuild, rebuild_with_series};
pub use series::{Series, SeriesBuilder};
pub use slo::{Expected, Slo, SloOp, SloResult, SloStatus};
pub use survival::{survival, SurvivalRow};

/// The report format version; bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A failure to write or read a report file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a report: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A time-series file of the run directory (rebuilding a report).
    #[error(transparent)]
    Intervals(#[from] crate::metrics::hlog::IntervalLogError),
    #[error("{dir}: {what}")]
    NoIntervals { dir: PathBuf, what: String },
    /// The run's interval files follow rules this rebuild cannot apply.
    #[error("{dir}: {what}")]
    IntervalsFormat { dir: PathBuf, what: String },
}

/// METRICS.md, Verdicts: `pass` when every SLO held; `fail` when one was
/// breached or could not be measured; `error` when the run cannot vouch for
/// its figures (any entry in `errors`), whatever the SLOs say. A profile
/// marked `expect = { fail = [...] }` (a known-bad baseline) turns its SLOs
/// on the named figures around: they must be measured and breached, so
/// `pass` reads "every profile behaved as expected" and a scenario of
/// mistakes can gate CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }
}

/// What the harness ran against.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Versions {
    pub harness: String,
    pub broker: String,
    pub faults: String,
}

/// What the runner knows that the events do not carry.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub scenario: String,
    pub seed: u64,
    /// Wall-clock start, for display only.
    pub started_at: DateTime<Utc>,
    /// How long devices published (the drain not included).
    pub duration_s: f64,
    pub versions: Versions,
    /// Time the observer could not see; `None`: derived from the observer's
    /// own `Disconnected`/`Connected` events.
    pub unobserved_s: Option<f64>,
    pub slos: Vec<Slo>,
}

/// One duration figure: an HDR histogram (µs, 3 significant digits)
/// summarised. The percentiles are `null` when there are no samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationFigure {
    pub count: u64,
    pub min_us: Option<u64>,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub p999_us: Option<u64>,
    pub max_us: Option<u64>,
    /// Episodes whose end was never seen (e.g. no reconnect by the end),
    /// present only where censoring applies; not in the percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub censored: Option<u64>,
}

impl DurationFigure {
    pub fn from_histogram(h: &Histogram<u64>) -> DurationFigure {
        let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        DurationFigure {
            count: h.len(),
            min_us: (!h.is_empty()).then(|| h.min()),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: (!h.is_empty()).then(|| h.max()),
            censored: None,
        }
    }

    pub fn with_censored(mut self, censored: u64) -> DurationFigure {
        self.censored = Some(censored);
        self
    }
}

/// The message figures of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFigureSet {
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub lost_after_ack: u64,
    /// Acked commands for a device dead at the end of the run (crashed,
    /// never rebooted), never received: nobody could (0 for telemetry).
    #[serde(default)]
    pub undeliverable: u64,
    pub lost_unacked: u64,
    pub silent_loss: u64,
    pub lost_qos0: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub downgraded: u64,
    /// Acked, never received, published while the collector was away.
    pub unobserved: u64,
    pub e2e_latency: DurationFigure,
    pub ack_latency: DurationFigure,
}

impl MessageFigureSet {
    pub fn from_ledger(f: &crate::ledger::MessageFigures) -> MessageFigureSet {
        let c = &f.counts;
        MessageFigureSet {
            sent: c.sent,
            acked: c.acked,
            delivered: c.delivered,
            lost_after_ack: c.lost_after_ack,
            undeliverable: c.undeliverable,
            lost_unacked: c.lost_unacked,
            silent_loss: c.silent_loss,
            lost_qos0: c.lost_qos0,
            duplicates: c.duplicates,
            reordered: c.reordered,
            downgraded: c.downgraded,
            unobserved: c.unobserved,
            e2e_latency: DurationFigure::from_histogram(&f.e2e_latency),
            ack_latency: DurationFigure::from_histogram(&f.ack_latency),
        }
    }
}

/// Every figure of METRICS.md for one population (the totals or one
/// profile). Telemetry under the plain names, commands under `commands`.
/// `None` is written `null`: not measured in this version or this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    #[serde(flatten)]
    pub telemetry: MessageFigureSet,
    pub commands: MessageFigureSet,
    pub zombie_time: Option<DurationFigure>,
    pub zombie_undetected: Option<u64>,
    pub broker_detect_time: Option<DurationFigure>,
    pub reconnect_after_heal: Option<DurationFigure>,
    pub outage_seen_by_client: Option<DurationFigure>,
    pub resume_time: Option<DurationFigure>,
    /// Share of reconnects whose CONNACK said session present.
    pub session_present: Option<f64>,
    pub reconnect_attempts: Option<u64>,
    pub first_attempt_delay: Option<DurationFigure>,
    /// Connection losses with no link or broker fault active, per
    /// device-hour.
    pub flaps: Option<f64>,
    /// Connections the broker closed because another client connected with
    /// the same client id (a conflict fault's intruder, or a device sharing
    /// the id), whether or not a will fired.
    #[serde(default)]
    pub takeovers: Option<u64>,
    /// MQTT 5 reason codes the devices were given, counted by packet and
    /// code (`"DISCONNECT 0x8E": 3`, `"PUBACK 0x97": 2`): a DISCONNECT from
    /// the broker, and every PUBACK, PUBREC or PUBCOMP other than success.
    /// Empty (left out) at MQTT 3.1.1, which has none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reason_codes: std::collections::BTreeMap<String, u64>,
    pub true_offline: Option<u64>,
    pub false_offline: Option<u64>,
    pub false_offline_rate: Option<f64>,
    /// The 95 % Wilson interval of `false_offline_rate` (`null` with it).
    #[serde(default)]
    pub false_offline_rate_interval: Option<crate::metrics::rate::Interval>,
    /// `false_offline` per device-day of the run.
    #[serde(default)]
    pub false_offline_per_device_day: Option<f64>,
    /// Share of devices with at least one false offline report.
    #[serde(default)]
    pub devices_false_offline: Option<f64>,
    pub stale_offline_time: Option<DurationFigure>,
    pub missed_offline: Option<u64>,
    pub false_online_time: Option<DurationFigure>,
    /// Not a METRICS.md figure: deaths whose offline report was due while
    /// the observer was down, so neither `broker_detect_time` nor
    /// `missed_offline` counts them (`null` where no device with a will died).
    #[serde(default)]
    pub offline_unobserved: Option<u64>,
}

/// One fault of the timeline as it really happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Place in the scenario's timeline.
    pub index: usize,
    pub kind: crate::scenario::FaultName,
    pub target: Option<String>,
    /// When the timeline said it starts (run clock, s); `null` for a record
    /// read from a file written before it was recorded.
    #[serde(default)]
    pub scheduled_at_s: Option<f64>,
    /// When the harness sent its first request to the backend (its window
    /// opens); `null` if it was never requested.
    #[serde(default)]
    pub requested_at_s: Option<f64>,
    /// When the backend confirmed it (run clock, s); `null` if never applied.
    pub started_at_s: Option<f64>,
    /// When the backend confirmed the heal; `null` if it never healed.
    pub healed_at_s: Option<f64>,
    pub applied: bool,
    /// The backend's error, if applying or healing failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The `[[weather]]` section it was drawn from (absent: the timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather: Option<usize>,
    /// The devices a device fault or a weather event fell on, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub scenario: String,
    pub seed: u64,
    pub verdict: Verdict,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    /// The scenario's `min_outage` (s): the one yardstick of every
    /// profile's true and false offline reports. `null` in reports written
    /// before it was recorded.
    #[serde(default)]
    pub min_outage_s: Option<f64>,
    pub versions: Versions,
    /// Number of simulated devices.
    pub devices: u32,
    pub totals: Figures,
    pub profiles: BTreeMap<String, Figures>,
    pub faults: Vec<FaultRecord>,
    pub slo: Vec<SloResult>,
    /// Time the observer could not see (its own connection was down).
    pub unobserved_s: f64,
    /// Acked telemetry published in that time and never received.
    pub unobserved: u64,
    /// What went wrong in the harness or its environment (not the client
    /// under test), each with its time and cause: any entry makes the
    /// verdict `error`.
    pub errors: Vec<Incident>,
}

impl Report {
    /// Check the SLOs against the figures and set `slo` and `verdict`.
    pub fn check(&mut self, slos: &[Slo]) {
        self.slo = slo::evaluate(slos, &self.totals, &self.profiles);
        self.settle_verdict();
    }

    /// The verdict from `slo` and `errors`: an error wins over pass and fail.
    pub fn settle_verdict(&mut self) {
        self.verdict = if !self.errors.is_empty() {
            Verdict::Error
        } else if self.slo.iter().any(|s| !s.as_expected()) {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
    }

    /// Add an incident found after the figures were assembled (teardown,
    /// the time series, the runner's own checks) and settle the verdict.
    pub fn push_error(&mut self, incident: Incident) {
        self.errors.push(incident);
        self.settle_verdict();
    }
}

/// RFC 3339 in UTC with second precision: `2026-11-25T22:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Write `report.json` (pretty, stable field order).
pub fn write_json(report: &Report, path: &Path) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = BufWriter::new(File::create(path).map_err(err)?);
    serde_json::to_writer_pretty(&mut w, report).map_err(|e| err(e.into()))?;
    w.write_all(b"\n").map_err(err)?;
    w.flush().map_err(err)
}

/// Write the report as JSON to any writer (stdout, a pipe).
pub fn write_json_to(report: &Report, w: impl Write) -> Result<(), serde_json::Error> {
    serde_json::to_writer_pretty(w, report)
}

/// Read a `report.json` back (to render it again).
pub fn read_json(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `report.md` (a CI job summary).
pub fn write_markdown(report: &Report, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, markdown(report)).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `report.html` (the report and the charts of `series`).
pub fn write_html(report: &Report, series: &Series, path: &Path) -> Result<(), ReportError> {
    std::fs::write(path, html(report, series)).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;

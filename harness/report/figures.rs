//! The one list of figure names: every figure of METRICS.md, exactly as it
//! appears in `report.json` (in `totals` and in every profile). Tests, SLO
//! evaluation and renderers read names from here.

/// How a figure is written in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// A number of messages, episodes or events.
    Count,
    /// A share or a per-device-hour number.
    Rate,
    /// A histogram object `{count, min_us, p50_us, p90_us, p99_us, p999_us, max_us}`.
    Duration,
}

use FigureKind::{Count, Duration, Rate};

/// The message figures: telemetry under these names at the top of a figure
/// set, commands under the same names inside its `commands` object.
pub const MESSAGE_FIGURES: &[(&str, FigureKind)] = &[
    ("sent", Count),
    ("acked", Count),
    ("delivered", Count),
    ("lost_after_ack", Count),
    ("undeliverable", Count),
    ("lost_unacked", Count),
    ("silent_loss", Count),
    ("lost_qos0", Count),
    ("duplicates", Count),
    ("reordered", Count),
    ("downgraded", Count),
    ("unobserved", Count),
    ("e2e_latency", Duration),
    ("ack_latency", Duration),
];

/// The connection and offline figures.
pub const CONNECTION_FIGURES: &[(&str, FigureKind)] = &[
    ("zombie_time", Duration),
    ("zombie_undetected", Count),
    ("broker_detect_time", Duration),
    ("reconnect_after_heal", Duration),
    ("outage_seen_by_client", Duration),
    ("resume_time", Duration),
    ("session_present", Rate),
    ("reconnect_attempts", Count),
    ("first_attempt_delay", Duration),
    ("flaps", Rate),
    ("takeovers", Count),
    ("true_offline", Count),
    ("false_offline", Count),
    ("false_offline_rate", Rate),
    ("false_offline_per_device_day", Rate),
    ("devices_false_offline", Rate),
    ("stale_offline_time", Duration),
    ("missed_offline", Count),
    ("false_online_time", Duration),
];

/// Every figure of a figure set (commands aside), message figures first.
pub fn all() -> impl Iterator<Item = (&'static str, FigureKind)> {
    MESSAGE_FIGURES.iter().chain(CONNECTION_FIGURES).copied()
}

/// The kind of a figure name, if it is one.
pub fn kind(name: &str) -> Option<FigureKind> {
    all().find(|(n, _)| *n == name).map(|(_, k)| k)
}

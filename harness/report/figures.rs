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

/// Figures whose samples are per device, not per episode: a window has one
/// sample per device whatever its length, so their sample counts do not
/// add up over windows (their time does, device by device).
pub const PER_DEVICE_FIGURES: &[&str] = &["false_online_time"];

/// Every number of a `report.json` that adds up over windows tiling the run
/// (`mqtt-chaos report --from --to`; see `metrics::interval` for why they
/// do): in `totals` and in every profile, each count figure (telemetry, and
/// commands under `commands.`), `offline_unobserved`, each reason code, and
/// the sample and censored counts of each duration figure but the
/// per-device ones ([`PER_DEVICE_FIGURES`]); and the top-level
/// `unobserved`. A figure that is `null` (not measured in that window)
/// counts as 0. Keys are paths: `totals.lost_qos0`,
/// `profiles.recommended.commands.sent`, `totals.zombie_time.count`,
/// `profiles.weak.reason_codes.DISCONNECT 0x8E`.
pub fn additive_counts(report: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    use serde_json::Value;
    let mut out = std::collections::BTreeMap::new();
    let mut put = |key: String, v: &Value| {
        out.insert(key, v.as_u64().unwrap_or(0));
    };
    let mut scopes: Vec<(String, &Value)> = vec![("totals".into(), &report["totals"])];
    if let Some(profiles) = report["profiles"].as_object() {
        for (name, p) in profiles {
            scopes.push((format!("profiles.{name}"), p));
        }
    }
    put("unobserved".into(), &report["unobserved"]);
    for (scope, set) in scopes {
        for (name, kind) in MESSAGE_FIGURES {
            for (prefix, s) in [("", set), ("commands.", &set["commands"])] {
                match kind {
                    Count => put(format!("{scope}.{prefix}{name}"), &s[*name]),
                    Duration => put(format!("{scope}.{prefix}{name}.count"), &s[*name]["count"]),
                    Rate => {}
                }
            }
        }
        for (name, kind) in CONNECTION_FIGURES {
            match kind {
                Count => put(format!("{scope}.{name}"), &set[*name]),
                Duration if !PER_DEVICE_FIGURES.contains(name) => {
                    put(format!("{scope}.{name}.count"), &set[*name]["count"]);
                    put(format!("{scope}.{name}.censored"), &set[*name]["censored"]);
                }
                Duration | Rate => {}
            }
        }
        put(
            format!("{scope}.offline_unobserved"),
            &set["offline_unobserved"],
        );
        if let Some(codes) = set["reason_codes"].as_object() {
            for (code, n) in codes {
                put(format!("{scope}.reason_codes.{code}"), n);
            }
        }
    }
    out
}

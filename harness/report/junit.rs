//! `junit.xml`: the SLOs of a [`Report`] as JUnit test cases, for CI systems
//! that show test results (GitLab, Jenkins, GitHub test reporters).
//!
//! One `<testsuite name="mqtt-chaos <scenario>">`, one `<testcase>` per SLO:
//! `classname` is the SLO's profile (or `all` for the totals), `name` the
//! objective (`lost_after_ack = 0`). A failed SLO carries a `<failure>` with
//! observed vs limit; an unknown one too (unknown counts as a breach), with a
//! message saying the figure was not measured. A report without SLOs gives
//! one passing test case, `no SLOs stated`. Pure: reads only the report.

use std::fmt::Write as _;

use super::slo::show;
use super::{Report, SloResult, SloStatus};

/// The name of the one test case of a report without SLOs.
pub const NO_SLOS: &str = "no SLOs stated";

/// The JUnit XML of a report.
pub fn junit(r: &Report) -> String {
    let failures = r.slo.iter().filter(|s| s.breached()).count();
    let tests = r.slo.len().max(1);
    let suite = format!("mqtt-chaos {}", r.scenario);
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        escape(&suite),
        r.duration_s,
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        escape(&suite),
        r.duration_s,
        escape(&r.started_at),
    );
    o.push_str("    <properties>\n");
    for (name, value) in [
        ("seed", r.seed.to_string()),
        ("verdict", r.verdict.as_str().to_string()),
        ("devices", r.devices.to_string()),
        ("harness", r.versions.harness.clone()),
        ("broker", r.versions.broker.clone()),
        ("faults", r.versions.faults.clone()),
    ] {
        let _ = writeln!(
            o,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    o.push_str("    </properties>\n");
    if r.slo.is_empty() {
        let _ = writeln!(
            o,
            "    <testcase classname=\"all\" name=\"{}\" time=\"0\"/>",
            escape(NO_SLOS)
        );
    }
    for s in &r.slo {
        let class = s.profile.as_deref().unwrap_or("all");
        let name = objective(s);
        match failure(s) {
            None => {
                let _ = writeln!(
                    o,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"/>",
                    escape(class),
                    escape(&name)
                );
            }
            Some((kind, message)) => {
                let _ = writeln!(
                    o,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">",
                    escape(class),
                    escape(&name)
                );
                let _ = writeln!(
                    o,
                    "      <failure type=\"{kind}\" message=\"{m}\">{m}</failure>",
                    m = escape(&message)
                );
                o.push_str("    </testcase>\n");
            }
        }
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

/// Write `junit.xml`.
pub fn write_junit(r: &Report, path: &std::path::Path) -> Result<(), super::ReportError> {
    std::fs::write(path, junit(r)).map_err(|source| super::ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The objective as a test name: `lost_after_ack = 0`,
/// `reconnect_after_heal.p99 <= 15.00 s` (the profile is the class name).
fn objective(s: &SloResult) -> String {
    match &s.stat {
        Some(stat) => format!("{}.{stat} {}", s.figure, s.limit),
        None => format!("{} {}", s.figure, s.limit),
    }
}

/// The failure of a breached SLO: its type and message; `None` if it passed.
fn failure(s: &SloResult) -> Option<(&'static str, String)> {
    let scope = match &s.profile {
        Some(p) => format!("profile {p}"),
        None => "all devices".to_string(),
    };
    match (s.status, s.observed) {
        (SloStatus::Pass, _) => None,
        (SloStatus::Fail, Some(v)) => Some((
            "breach",
            format!(
                "{}: observed {}, limit {} ({scope})",
                objective_figure(s),
                show(&s.figure, s.stat.as_deref(), v),
                s.limit
            ),
        )),
        (SloStatus::Fail, None) | (SloStatus::Unknown, _) => Some((
            "unknown",
            format!(
                "{}: not measured in this run ({scope}: null, no samples, or no such figure or profile); unknown counts as a breach, limit {}",
                objective_figure(s),
                s.limit
            ),
        )),
    }
}

fn objective_figure(s: &SloResult) -> String {
    match &s.stat {
        Some(stat) => format!("{}.{stat}", s.figure),
        None => s.figure.clone(),
    }
}

/// Escape text for an XML attribute or element: `&<>"'`, and control
/// characters XML 1.0 cannot carry replaced by U+FFFD.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

//! The tables of `report.html`: the SLOs, the per-profile figures (each
//! cell names its `report.json` figure and raw value in `data-figure` /
//! `data-value`), and the faults as applied.

use std::fmt::Write as _;

use super::{escape, secs};
use crate::metrics::rate;
use crate::report::markdown::micros;
use crate::report::{Figures, MessageFigureSet, Report, SloStatus};

/// The rows: every profile (`data-profile` its name), then the totals
/// (`data-profile=""`).
fn rows(r: &Report) -> impl Iterator<Item = (Option<&str>, &Figures)> {
    r.profiles
        .iter()
        .map(|(n, f)| (Some(n.as_str()), f))
        .chain(std::iter::once((None, &r.totals)))
}

fn row_open(o: &mut String, name: Option<&str>) {
    match name {
        Some(n) => {
            let _ = write!(
                o,
                "<tr data-profile=\"{}\"><th scope=\"row\">{}</th>",
                escape(n),
                escape(n)
            );
        }
        None => o.push_str("<tr data-profile=\"\" class=\"total\"><th scope=\"row\">total</th>"),
    }
}

/// A cell: its figure's name in `report.json`, its raw JSON value, its text.
fn cell(o: &mut String, figure: &str, raw: &str, text: &str) {
    let _ = write!(
        o,
        "<td class=\"num\" data-figure=\"{}\" data-value=\"{}\">{}</td>",
        escape(figure),
        escape(raw),
        escape(text)
    );
}

fn count(o: &mut String, figure: &str, v: Option<u64>) {
    match v {
        Some(n) => cell(o, figure, &n.to_string(), &n.to_string()),
        None => cell(o, figure, "null", "–"),
    }
}

fn duration(o: &mut String, figure: &str, v: Option<u64>) {
    match v {
        Some(us) => cell(o, figure, &us.to_string(), &micros(us)),
        None => cell(o, figure, "null", "–"),
    }
}

fn share(o: &mut String, figure: &str, v: Option<f64>, text: impl Fn(f64) -> String) {
    match v {
        Some(x) => cell(
            o,
            figure,
            &serde_json::to_string(&x).unwrap_or_else(|_| "null".into()),
            &text(x),
        ),
        None => cell(o, figure, "null", "–"),
    }
}

fn header(o: &mut String, id: &str, columns: &[&str]) {
    let _ = write!(o, "<table id=\"{id}\">\n<thead><tr><th>profile</th>");
    for c in columns {
        let _ = write!(o, "<th>{}</th>", escape(c));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
}

/// "Which configuration survives?": the rows of `report.md`'s first table
/// ([`crate::report::survival`]), the same cells.
/// Under field weather: the offline reports per configuration
/// ([`crate::report::signoff`]), the page's first table.
pub(super) fn signoff_table(o: &mut String, r: &Report) {
    use crate::report::signoff::{caveats, cells, weather_line, COLUMNS};
    let _ = writeln!(o, "<h2>Offline reports under field weather</h2>");
    let _ = writeln!(o, "<p>{}</p>", escape(&weather_line(r)));
    let _ = write!(
        o,
        "<table id=\"signoff\">\n<thead><tr><th>configuration</th>"
    );
    for c in COLUMNS {
        let _ = write!(o, "<th>{}</th>", escape(c));
    }
    let _ = writeln!(o, "</tr></thead>\n<tbody>");
    for (name, f) in &r.profiles {
        let _ = write!(
            o,
            "<tr data-profile=\"{}\"><td>{}</td>",
            escape(name),
            escape(name)
        );
        for c in cells(f) {
            let _ = write!(o, "<td class=\"num\">{}</td>", escape(&c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    for c in caveats(r) {
        let _ = writeln!(
            o,
            "<p class=\"meta\"><strong>Note:</strong> {}</p>",
            escape(&c)
        );
    }
}

pub(super) fn survival_table(o: &mut String, r: &Report) {
    use crate::report::survival::{self, Survival, COLUMNS};
    let _ = writeln!(o, "<h2>Which configuration survives?</h2>");
    let rows = survival::survival(r);
    if rows.is_empty() {
        let _ = writeln!(o, "<p>No profiles in this run.</p>");
    } else {
        let _ = write!(o, "<table id=\"survival\">\n<thead><tr>");
        for c in COLUMNS {
            let _ = write!(o, "<th>{}</th>", escape(c));
        }
        let _ = writeln!(o, "</tr></thead>\n<tbody>");
        for row in &rows {
            let class = match row.survival {
                Survival::Fail if !row.expected_fail.is_empty() && row.as_expected => "expected",
                Survival::Pass if !row.expected_fail.is_empty() => "fail",
                Survival::Pass => "pass",
                Survival::Fail => "fail",
                Survival::NoSlo => "unknown",
            };
            let expected_class = match (row.survival, row.as_expected) {
                (Survival::NoSlo, _) => "unknown",
                (_, true) => "pass",
                (_, false) => "fail",
            };
            let _ = write!(o, "<tr data-profile=\"{}\">", escape(&row.profile));
            for (i, c) in survival::cells(row).iter().enumerate() {
                match i {
                    1 => {
                        let _ = write!(o, "<td class=\"{expected_class}\">{}</td>", escape(c));
                    }
                    2 => {
                        let _ = write!(o, "<td class=\"{class}\">{}</td>", escape(c));
                    }
                    0 | 3 => {
                        let _ = write!(o, "<td>{}</td>", escape(c));
                    }
                    _ => {
                        let _ = write!(o, "<td class=\"num\">{}</td>", escape(c));
                    }
                }
            }
            let _ = writeln!(o, "</tr>");
        }
        let _ = writeln!(o, "</tbody>\n</table>");
        let _ = writeln!(
            o,
            "<p>A profile survives when every SLO stated for it (<code>PROFILE.FIGURE</code> in the scenario) passed; an SLO that could not be measured counts as a breach.</p>"
        );
    }
    let overall = survival::overall(r);
    if !overall.is_empty() {
        let list: Vec<String> = overall
            .iter()
            .map(|s| {
                let status = match s.status {
                    SloStatus::Pass => "pass",
                    SloStatus::Fail => "FAIL",
                    SloStatus::Unknown => "UNKNOWN",
                };
                format!(
                    "<code>{}</code> <strong>{status}</strong>",
                    escape(&survival::describe(s))
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "<p>SLOs on all profiles together (no row can answer them): {}</p>",
            list.join(", ")
        );
    }
}

pub(super) fn slo_table(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>SLOs</h2>");
    if r.slo.is_empty() {
        let _ = writeln!(o, "<p>No SLOs were set: the verdict checks nothing.</p>");
        return;
    }
    let _ = writeln!(
        o,
        "<table id=\"slo\">\n<thead><tr><th>result</th><th>SLO</th><th>profile</th><th>observed</th></tr></thead>\n<tbody>"
    );
    for s in &r.slo {
        let (class, result) = match s.status {
            SloStatus::Pass => ("pass", "pass"),
            SloStatus::Fail => ("fail", "FAIL"),
            SloStatus::Unknown => ("unknown", "UNKNOWN (counts as a breach)"),
        };
        let name = match &s.stat {
            Some(stat) => format!("{}.{stat}", s.figure),
            None => s.figure.clone(),
        };
        let observed = s.observed.map_or("null".to_string(), |v| {
            crate::report::slo::show(&s.figure, s.stat.as_deref(), v)
        });
        let _ = writeln!(
            o,
            "<tr><td class=\"{class}\">{result}</td><td><code>{} {}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&name),
            escape(&s.limit),
            escape(s.profile.as_deref().unwrap_or("all")),
            escape(&observed),
        );
    }
    let _ = writeln!(o, "</tbody>\n</table>");
}

pub(super) fn message_table(
    o: &mut String,
    id: &str,
    prefix: &str,
    r: &Report,
    pick: impl Fn(&Figures) -> &MessageFigureSet,
) {
    header(
        o,
        id,
        &[
            "sent",
            "acked",
            "delivered",
            "lost_after_ack",
            "lost_unacked",
            "silent_loss",
            "lost_qos0",
            "duplicates",
            "reordered",
            "downgraded",
            "unobserved",
            "e2e p50",
            "e2e p99",
            "e2e max",
        ],
    );
    for (name, f) in rows(r) {
        let m = pick(f);
        row_open(o, name);
        for (figure, v) in [
            ("sent", m.sent),
            ("acked", m.acked),
            ("delivered", m.delivered),
            ("lost_after_ack", m.lost_after_ack),
            ("lost_unacked", m.lost_unacked),
            ("silent_loss", m.silent_loss),
            ("lost_qos0", m.lost_qos0),
            ("duplicates", m.duplicates),
            ("reordered", m.reordered),
            ("downgraded", m.downgraded),
            ("unobserved", m.unobserved),
        ] {
            count(o, &format!("{prefix}{figure}"), Some(v));
        }
        let e = &m.e2e_latency;
        duration(o, &format!("{prefix}e2e_latency.p50_us"), e.p50_us);
        duration(o, &format!("{prefix}e2e_latency.p99_us"), e.p99_us);
        duration(o, &format!("{prefix}e2e_latency.max_us"), e.max_us);
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
}

pub(super) fn connection_table(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Connections per profile</h2>");
    header(
        o,
        "connections",
        &[
            "reconnect p50",
            "reconnect max",
            "never reconnected",
            "session present",
            "reconnect attempts",
            "flaps / device-h",
            "takeovers",
        ],
    );
    for (name, f) in rows(r) {
        let rah = f.reconnect_after_heal.as_ref();
        row_open(o, name);
        duration(o, "reconnect_after_heal.p50_us", rah.and_then(|d| d.p50_us));
        duration(o, "reconnect_after_heal.max_us", rah.and_then(|d| d.max_us));
        count(
            o,
            "reconnect_after_heal.censored",
            rah.and_then(|d| d.censored),
        );
        share(o, "session_present", f.session_present, rate::percent);
        count(o, "reconnect_attempts", f.reconnect_attempts);
        share(o, "flaps", f.flaps, |x| format!("{x:.2}"));
        count(o, "takeovers", f.takeovers);
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    for (name, f) in r
        .profiles
        .iter()
        .filter(|(_, f)| !f.reason_codes.is_empty())
    {
        let _ = writeln!(
            o,
            "<p class=\"reason-codes\">MQTT 5 reason codes given to {}'s devices: {}.</p>",
            escape(name),
            escape(&crate::report::markdown::reason_codes(&f.reason_codes))
        );
    }
}

pub(super) fn offline_table(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Zombie time and offline reports per profile</h2>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">false offline: the dashboard showed a device offline while it was alive and reachable. missed offline: a device died and no offline report came (the Last Will did not work).</p>"
    );
    header(
        o,
        "offline",
        &[
            "zombie p50",
            "zombie max",
            "zombie undetected",
            "broker detect max",
            "true offline",
            "false offline",
            "false offline rate",
            "false / device-day",
            "devices false offline",
            "stale max",
            "missed offline",
            "false online max",
        ],
    );
    for (name, f) in rows(r) {
        row_open(o, name);
        let z = f.zombie_time.as_ref();
        duration(o, "zombie_time.p50_us", z.and_then(|d| d.p50_us));
        duration(o, "zombie_time.max_us", z.and_then(|d| d.max_us));
        count(o, "zombie_undetected", f.zombie_undetected);
        duration(
            o,
            "broker_detect_time.max_us",
            f.broker_detect_time.as_ref().and_then(|d| d.max_us),
        );
        count(o, "true_offline", f.true_offline);
        count(o, "false_offline", f.false_offline);
        let interval = f.false_offline_rate_interval;
        share(o, "false_offline_rate", f.false_offline_rate, |x| {
            rate::percent_with(x, interval.as_ref())
        });
        share(
            o,
            "false_offline_per_device_day",
            f.false_offline_per_device_day,
            |x| format!("{x:.3}"),
        );
        share(
            o,
            "devices_false_offline",
            f.devices_false_offline,
            rate::percent,
        );
        duration(
            o,
            "stale_offline_time.max_us",
            f.stale_offline_time.as_ref().and_then(|d| d.max_us),
        );
        count(o, "missed_offline", f.missed_offline);
        duration(
            o,
            "false_online_time.max_us",
            f.false_online_time.as_ref().and_then(|d| d.max_us),
        );
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    if r.totals.offline_unobserved.is_some_and(|n| n > 0) {
        let _ = writeln!(
            o,
            "<p>{} device deaths fell while the observer was away: counted neither as detected nor as missed offline reports.</p>",
            r.totals.offline_unobserved.unwrap_or(0)
        );
    }
}

pub(super) fn faults_table(o: &mut String, r: &Report) {
    let _ = writeln!(o, "<h2>Faults as applied</h2>");
    if r.faults.is_empty() {
        let _ = writeln!(o, "<p>No faults in the timeline.</p>");
        return;
    }
    let _ = writeln!(
        o,
        "<p class=\"meta\">Times on the run clock, as the fault backend confirmed them (not as scheduled).</p>"
    );
    let listed: Vec<_> = r
        .faults
        .iter()
        .filter(|f| crate::report::signoff::listed(f))
        .collect();
    if !listed.is_empty() {
        fault_rows(o, &listed);
    }
    weather_events(o, r);
}

/// The weather's events per section and kind (each is in report.json).
fn weather_events(o: &mut String, r: &Report) {
    use crate::report::signoff::{weather_cells, weather_rows, WEATHER_COLUMNS, WEATHER_NOTE};
    let rows = weather_rows(r);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h3>Field weather events</h3>");
    let _ = write!(o, "<table id=\"weather\">\n<thead><tr>");
    for c in WEATHER_COLUMNS {
        let _ = write!(o, "<th>{}</th>", escape(c));
    }
    let _ = writeln!(o, "</tr></thead>\n<tbody>");
    for w in &rows {
        let _ = write!(o, "<tr>");
        for (i, c) in weather_cells(w).iter().enumerate() {
            let class = if i >= 2 { " class=\"num\"" } else { "" };
            let _ = write!(o, "<td{class}>{}</td>", escape(c));
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(
        o,
        "</tbody>\n</table>\n<p class=\"meta\">{}</p>",
        escape(WEATHER_NOTE)
    );
}

fn fault_rows(o: &mut String, faults: &[&crate::report::FaultRecord]) {
    let _ = writeln!(
        o,
        "<table id=\"faults\">\n<thead><tr><th>#</th><th>kind</th><th>target</th><th>applied at</th><th>healed at</th><th>in force</th><th>note</th></tr></thead>\n<tbody>"
    );
    for f in faults {
        let note = match (&f.error, f.applied) {
            (Some(e), _) => format!("error: {e}"),
            (None, false) => "not applied".into(),
            (None, true) if f.healed_at_s.is_none() => "never healed".into(),
            (None, true) => String::new(),
        };
        let in_force = match (f.started_at_s, f.healed_at_s) {
            (Some(a), Some(b)) => secs(b - a),
            _ => "–".into(),
        };
        let _ = writeln!(
            o,
            "<tr data-fault=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            f.index,
            f.index,
            escape(f.kind.as_str()),
            escape(f.target.as_deref().unwrap_or("all")),
            f.started_at_s.map_or("never".into(), secs),
            f.healed_at_s.map_or("–".into(), secs),
            in_force,
            escape(&note),
        );
    }
    let _ = writeln!(o, "</tbody>\n</table>");
}

//! Renderers of a [`Report`]: Markdown for CI job summaries, and a
//! one-screen plain-text summary for the terminal. Both read only the report.
//! `report.md` opens with the survival table ([`super::survival`]): which
//! configuration survived the run.

use std::fmt::Write as _;

use super::{signoff, DurationFigure, Expected, Figures, Report, SloStatus, Verdict};
use crate::metrics::rate;

/// What duplicates are, beside every table that counts them.
pub(crate) const DUPLICATES_NOTE: &str = "duplicates: receptions of a message already received. Retries make them: a QoS 1 publish whose PUBACK was lost is sent again (with DUP), and a republish after the application's ack timeout is a new copy; QoS 1 allows them (at least once), so they are a cost there, not a loss, while under QoS 2 (exactly once) a duplicate is a violation.";

/// `report.md`: verdict first, then which profile survived, the SLOs,
/// per-profile figures, faults.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    };
    let _ = writeln!(o, "# mqtt-chaos `{}`: **{verdict}**\n", r.scenario);
    if r.verdict == Verdict::Error {
        // Before any figure: none of them can be trusted as they stand.
        let _ = writeln!(
            o,
            "**The run cannot vouch for its figures**: the harness or its environment failed ({} incident{}). The figures below are what was measured, not a verdict on the client configuration.\n",
            r.errors.len(),
            if r.errors.len() == 1 { "" } else { "s" }
        );
        errors_list(&mut o, r);
    }
    answer(&mut o, r);
    if signoff::applies(r) {
        signoff::markdown(&mut o, r);
    }
    survival_table(&mut o, r);
    let _ = writeln!(
        o,
        "seed {} · started {} · {} · {} devices · harness {} · broker {} · faults {}\n",
        r.seed,
        r.started_at,
        secs(r.duration_s),
        r.devices,
        r.versions.harness,
        r.versions.broker,
        r.versions.faults,
    );

    let _ = writeln!(o, "## SLOs\n");
    if r.slo.is_empty() {
        let _ = writeln!(o, "No SLOs were set: the verdict checks nothing.\n");
    } else {
        let _ = writeln!(o, "| result | SLO | profile | observed |");
        let _ = writeln!(o, "| --- | --- | --- | --- |");
        for s in &r.slo {
            let result = match (s.expected, s.status) {
                (Expected::Hold, SloStatus::Pass) => "pass",
                (Expected::Hold, SloStatus::Fail) => "**FAIL**",
                (Expected::Hold, SloStatus::Unknown) => "**UNKNOWN** (counts as a breach)",
                (Expected::Breach, SloStatus::Fail) => "fail, as expected (known-bad)",
                (Expected::Breach, SloStatus::Pass) => "**HELD**, expected to fail",
                (Expected::Breach, SloStatus::Unknown) => {
                    "**UNKNOWN** (expected to fail: the mistake was not shown)"
                }
            };
            let name = match &s.stat {
                Some(stat) => format!("{}.{stat}", s.figure),
                None => s.figure.clone(),
            };
            let _ = writeln!(
                o,
                "| {result} | `{name} {}` | {} | {} |",
                s.limit,
                s.profile.as_deref().unwrap_or("all"),
                s.observed.map_or("null".to_string(), |v| super::slo::show(
                    &s.figure,
                    s.stat.as_deref(),
                    v
                )),
            );
        }
        o.push('\n');
    }

    let _ = writeln!(o, "## Telemetry per profile\n");
    table(&mut o, r, |f| &f.telemetry);
    if r.totals.telemetry.duplicates + r.totals.commands.duplicates > 0 {
        let _ = writeln!(o, "{DUPLICATES_NOTE}\n");
    }
    let commands_sent = r.totals.commands.sent > 0 || r.totals.commands.delivered > 0;
    if commands_sent {
        let _ = writeln!(o, "## Commands per profile\n");
        table(&mut o, r, |f| &f.commands);
    }

    let _ = writeln!(o, "## Connections per profile\n");
    let _ = writeln!(
        o,
        "| profile | reconnect p50 | reconnect max | never reconnected | session present | reconnect attempts | flaps / device-h | takeovers |"
    );
    let _ = writeln!(
        o,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, f) in rows(r) {
        let rah = f.reconnect_after_heal.as_ref();
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            stat(rah, |d| d.p50_us),
            stat(rah, |d| d.max_us),
            rah.and_then(|d| d.censored)
                .map_or("–".into(), |c| c.to_string()),
            f.session_present.map_or("–".into(), percent),
            f.reconnect_attempts.map_or("–".into(), |n| n.to_string()),
            f.flaps.map_or("–".into(), |x| format!("{x:.2}")),
            opt(f.takeovers),
        );
    }
    o.push('\n');
    for (name, f) in r
        .profiles
        .iter()
        .filter(|(_, f)| !f.reason_codes.is_empty())
    {
        let _ = writeln!(
            o,
            "MQTT 5 reason codes given to {name}'s devices: {}.\n",
            reason_codes(&f.reason_codes)
        );
    }

    let _ = writeln!(o, "## Zombie time and offline reports per profile\n");
    let _ = writeln!(
        o,
        "| profile | zombie p50 | zombie max | zombie undetected | broker detect max | true offline | false offline | false offline rate | false / device-day | devices false offline | stale max | missed offline | false online max |"
    );
    let _ = writeln!(
        o,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let count = opt;
    for (name, f) in rows(r) {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            stat(f.zombie_time.as_ref(), |d| d.p50_us),
            stat(f.zombie_time.as_ref(), |d| d.max_us),
            count(f.zombie_undetected),
            stat(f.broker_detect_time.as_ref(), |d| d.max_us),
            count(f.true_offline),
            count(f.false_offline),
            f.false_offline_rate.map_or("–".into(), |x| {
                rate::percent_with(x, f.false_offline_rate_interval.as_ref())
            }),
            f.false_offline_per_device_day
                .map_or("–".into(), |x| format!("{x:.3}")),
            f.devices_false_offline.map_or("–".into(), percent),
            stat(f.stale_offline_time.as_ref(), |d| d.max_us),
            count(f.missed_offline),
            stat(f.false_online_time.as_ref(), |d| d.max_us),
        );
    }
    o.push('\n');
    if r.totals.offline_unobserved.is_some_and(|n| n > 0) {
        let _ = writeln!(
            o,
            "{} device deaths fell while the observer was away: counted neither as detected nor as missed offline reports.\n",
            r.totals.offline_unobserved.unwrap_or(0)
        );
    }

    let _ = writeln!(o, "## Faults\n");
    if r.faults.is_empty() {
        let _ = writeln!(o, "No faults in the timeline.\n");
    } else {
        let listed: Vec<_> = r.faults.iter().filter(|f| signoff::listed(f)).collect();
        let any = !listed.is_empty();
        if any {
            let _ = writeln!(o, "| # | kind | target | applied at | healed at | note |");
            let _ = writeln!(o, "| ---: | --- | --- | ---: | ---: | --- |");
        }
        for f in listed {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                f.index,
                f.kind,
                f.target.as_deref().unwrap_or("all"),
                f.started_at_s.map_or("never".into(), secs),
                f.healed_at_s.map_or("–".into(), secs),
                match (&f.error, f.applied) {
                    (Some(e), _) => format!("error: {}", cell(e)),
                    (None, false) => "not applied".into(),
                    (None, true) => String::new(),
                },
            );
        }
        if any {
            o.push('\n');
        }
        let weather = signoff::weather_rows(r);
        if !weather.is_empty() {
            let _ = writeln!(o, "### Field weather events\n");
            let _ = writeln!(o, "| {} |", signoff::WEATHER_COLUMNS.join(" | "));
            let _ = writeln!(o, "| --- | --- |{}", " ---: |".repeat(6));
            for w in &weather {
                let _ = writeln!(o, "| {} |", signoff::weather_cells(w).join(" | "));
            }
            let _ = writeln!(o, "\n{}\n", signoff::WEATHER_NOTE);
        }
    }

    if r.unobserved_s > 0.0 || r.unobserved > 0 {
        let _ = writeln!(
            o,
            "The observer was away for {}: {} acked messages published then were never received and are counted as `unobserved`, not lost.\n",
            secs(r.unobserved_s),
            r.unobserved
        );
    }
    o
}

/// The incidents of a run in error, one line each: cause, time, what.
fn errors_list(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Run errors\n");
    let _ = writeln!(o, "| cause | at | what |");
    let _ = writeln!(o, "| --- | --- | --- |");
    for e in &r.errors {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} |",
            e.cause,
            e.at_s.map_or("–".to_string(), secs),
            e.message.replace('|', "\\|").replace('\n', " ")
        );
    }
    o.push('\n');
}

/// The first table: which configuration survives, one row per profile
/// ([`super::survival`]), then the SLOs no row answers.
/// The answer first: which configuration is safe to ship, in plain words.
fn answer(o: &mut String, r: &Report) {
    let lines = super::survival::answer(r);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Which configuration is safe to ship?\n");
    for l in &lines {
        let _ = writeln!(o, "- {}", cell(l));
    }
    o.push('\n');
}

fn survival_table(o: &mut String, r: &Report) {
    use super::survival::{self, COLUMNS};
    let _ = writeln!(o, "## Which configuration survives?\n");
    let rows = survival::survival(r);
    if rows.is_empty() {
        let _ = writeln!(o, "No profiles in this run.\n");
    } else {
        let _ = writeln!(o, "| {} |", COLUMNS.join(" | "));
        let _ = writeln!(
            o,
            "| --- | --- | --- | --- |{}",
            " ---: |".repeat(COLUMNS.len() - 4)
        );
        for row in &rows {
            let cells: Vec<String> = survival::cells(row).iter().map(|c| cell(c)).collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        o.push('\n');
        let _ = writeln!(
            o,
            "A profile survives when every SLO stated for it (`PROFILE.FIGURE` in the scenario) passed; an SLO that could not be measured counts as a breach. A known-bad profile (`expect = {{ fail = [...] }}`) is as expected when the SLOs on its named figures were measured and breached and the rest held.\n"
        );
    }
    let overall = survival::overall(r);
    if !overall.is_empty() {
        let _ = writeln!(
            o,
            "SLOs on all profiles together (no row can answer them): {}\n",
            overall
                .iter()
                .map(|s| format!(
                    "`{}` **{}**",
                    survival::describe(s),
                    match s.status {
                        SloStatus::Pass => "pass",
                        SloStatus::Fail => "FAIL",
                        SloStatus::Unknown => "UNKNOWN",
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The profile rows: every profile, then the totals.
fn rows(r: &Report) -> impl Iterator<Item = (&str, &Figures)> {
    r.profiles
        .iter()
        .map(|(n, f)| (n.as_str(), f))
        .chain(std::iter::once(("**total**", &r.totals)))
}

fn table(o: &mut String, r: &Report, pick: impl Fn(&Figures) -> &super::MessageFigureSet) {
    let _ = writeln!(
        o,
        "| profile | sent | acked | delivered | lost_after_ack | lost_unacked | silent_loss | lost_qos0 | duplicates | e2e p50 | e2e p99 |"
    );
    let _ = writeln!(
        o,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, f) in rows(r) {
        let m = pick(f);
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.sent,
            m.acked,
            m.delivered,
            m.lost_after_ack,
            m.lost_unacked,
            m.silent_loss,
            m.lost_qos0,
            m.duplicates,
            stat(Some(&m.e2e_latency), |d| d.p50_us),
            stat(Some(&m.e2e_latency), |d| d.p99_us),
        );
    }
    o.push('\n');
}

/// One screen of plain text for the terminal.
pub fn summary(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} — scenario {} (seed {}), {}, {} devices",
        r.verdict.as_str().to_uppercase(),
        r.scenario,
        r.seed,
        secs(r.duration_s),
        r.devices
    );
    // The answer right under the verdict: safe to ship, known-bad as
    // expected, not judged.
    for l in super::survival::answer(r) {
        let _ = writeln!(o, "  {l}");
    }
    for (name, f) in rows(r) {
        let m = &f.telemetry;
        let _ = writeln!(
            o,
            "  {:<14} sent {} acked {} delivered {} | lost_after_ack {} lost_unacked {} silent_loss {} lost_qos0 {} | dup {} reordered {} | e2e p50 {} p99 {} | reconnect p50 {} max {} | zombie max {} undetected {} | offline true {} false {} missed {}",
            name.trim_matches('*'),
            m.sent,
            m.acked,
            m.delivered,
            m.lost_after_ack,
            m.lost_unacked,
            m.silent_loss,
            m.lost_qos0,
            m.duplicates,
            m.reordered,
            stat(Some(&m.e2e_latency), |d| d.p50_us),
            stat(Some(&m.e2e_latency), |d| d.p99_us),
            stat(f.reconnect_after_heal.as_ref(), |d| d.p50_us),
            stat(f.reconnect_after_heal.as_ref(), |d| d.max_us),
            stat(f.zombie_time.as_ref(), |d| d.max_us),
            opt(f.zombie_undetected),
            opt(f.true_offline),
            opt(f.false_offline),
            opt(f.missed_offline),
        );
    }
    for s in &r.slo {
        let name = match &s.stat {
            Some(stat) => format!("{}.{stat}", s.figure),
            None => s.figure.clone(),
        };
        let _ = writeln!(
            o,
            "  SLO {:<7} {}{name} {} (observed {}){}",
            match s.status {
                SloStatus::Pass => "pass",
                SloStatus::Fail => "FAIL",
                SloStatus::Unknown => "UNKNOWN",
            },
            s.profile
                .as_deref()
                .map_or(String::new(), |p| format!("{p}.")),
            s.limit,
            s.observed.map_or("null".to_string(), |v| super::slo::show(
                &s.figure,
                s.stat.as_deref(),
                v
            )),
            match (s.expected, s.as_expected()) {
                (Expected::Hold, _) => "",
                (Expected::Breach, true) => " — known-bad, as expected",
                (Expected::Breach, false) => " — expected to FAIL",
            },
        );
    }
    let applied = r.faults.iter().filter(|f| f.applied).count();
    let _ = writeln!(
        o,
        "  faults: {applied} of {} applied{}",
        r.faults.len(),
        if r.unobserved_s > 0.0 {
            format!(
                "; observer away {} ({} unobserved)",
                secs(r.unobserved_s),
                r.unobserved
            )
        } else {
            String::new()
        }
    );
    for e in &r.errors {
        let _ = writeln!(o, "  error: {e}");
    }
    o
}

/// A count, or `–` when it was not measured.
fn percent(x: f64) -> String {
    rate::percent(x)
}

fn opt(c: Option<u64>) -> String {
    c.map_or("–".into(), |n| n.to_string())
}

/// A statistic of a duration figure, human-readable; `–` when there is none.
fn stat(d: Option<&DurationFigure>, f: impl Fn(&DurationFigure) -> Option<u64>) -> String {
    d.and_then(f).map_or("–".into(), micros)
}

/// µs as `850 µs`, `12.3 ms`, `4.56 s`.
pub(crate) fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

fn secs(s: f64) -> String {
    format!("{s:.3} s")
}

pub(crate) fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

/// Keep a table cell on one line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// MQTT 5 reason codes as a reader wants them: `DISCONNECT 0x8E session
/// taken over × 3, PUBACK 0x97 quota exceeded × 2`.
pub(crate) fn reason_codes(codes: &std::collections::BTreeMap<String, u64>) -> String {
    codes
        .iter()
        .map(|(key, n)| {
            let name = key
                .rsplit_once(" 0x")
                .and_then(|(_, hex)| u8::from_str_radix(hex, 16).ok())
                .map(crate::fleet::mqtt::reason_name)
                .unwrap_or("");
            format!("{key} {name} × {n}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

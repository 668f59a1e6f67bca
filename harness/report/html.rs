//! `report.html`: the report as one self-contained page for people who do
//! not read JSON. Pure: it takes the [`Report`] and the [`Series`] of its
//! intervals and returns the page; `write_html` does the I/O.
//!
//! What is on the page, in order: the verdict, which configuration survives
//! and the SLO table (as in `report.md`), four charts, the per-profile tables (every cell carries its
//! figure's `report.json` name and raw value in `data-figure` /
//! `data-value`, so the page can be checked against the report), and the
//! faults as the backend confirmed them.
//!
//! The charts are SVG drawn by `plotters` and inlined:
//!
//! 1. **Connected devices and faults**: a line per profile of the devices
//!    connected at each interval cut, with each applied fault shaded from
//!    its confirmed start to its confirmed heal and labelled.
//! 2. **Latency over time**: p50 / p99 / max of the telemetry end-to-end
//!    latency of each interval, per profile (log scale).
//! 3. **Reconnect time** (`reconnect_after_heal`) and 4. **zombie time**:
//!    percentile plots, x on HdrHistogram's `1 / (1 − p)` log scale (min,
//!    50 %, 90 %, 99 %, 99.9 %, 99.99 %, then max). Reconnect time is drawn
//!    from the full histogram of the intervals; zombie time, which the
//!    interval files carry only as the report's summary, from its
//!    min/p50/p90/p99/p99.9/max points. A profile without samples is named
//!    under the chart ("no samples", or "not measured" for `null`).
//!
//! Self-contained: inline CSS, no script, no link, no external image or
//! font; the only URLs are the SVG namespace declarations, which are names,
//! not fetches. Every text from the run (scenario, profile, fault target,
//! error texts) is escaped ([`escape`]); plotters escapes the SVG text it
//! writes itself.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::markdown::micros;
use super::series::{Series, MAX_POINTS};
use super::{DurationFigure, FaultRecord, Report, SloStatus, Verdict};
use tables::{
    connection_table, faults_table, message_table, offline_table, signoff_table, slo_table,
    survival_table,
};

mod tables;

/// Escape text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 360;

/// Twelve profile colours: Okabe–Ito's seven (readable with the common
/// colour blindnesses, its orange kept for faults), then five of Paul Tol's
/// "muted" scheme, each distinct from the rest in hue or lightness.
const PROFILE_COLORS: [RGBColor; 12] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0x33, 0x22, 0x88),
    RGBColor(0x99, 0x99, 0x33),
    RGBColor(0x88, 0x22, 0x55),
    RGBColor(0x44, 0xAA, 0x99),
    RGBColor(0xAA, 0x44, 0x99),
];
const FAULT_COLOR: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

fn color(i: usize) -> RGBColor {
    PROFILE_COLORS[i % PROFILE_COLORS.len()]
}

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1040px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.verdict { display: inline-block; font-size: 1.6em; font-weight: bold; padding: .2em .8em; border-radius: .3em; color: #fff; }
.verdict.pass { background: #1b7f3b; }
.verdict.fail { background: #b3261e; }
.verdict.error { background: #6a1b9a; }
.meta { color: #555; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; }
table { display: block; max-width: 100%; overflow-x: auto; }
#survival, #telemetry, #commands { font-size: .8em; }
#survival td, #telemetry td, #commands td { padding: .2em .35em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total th, tr.total td { font-weight: bold; background: #fafafa; }
td.fail { color: #b3261e; font-weight: bold; }
td.unknown { color: #8a5a00; font-weight: bold; }
td.pass { color: #1b7f3b; }
td.expected { color: #555; }
#answer h2 { margin-top: .6em; }
#answer ul { list-style: none; padding-left: 0; font-size: 1.15em; }
#answer li { margin: .3em 0; padding: .3em .6em; border-left: .35em solid #999; }
#answer li.pass { border-color: #1b7f3b; background: #e8f5ec; font-weight: bold; }
#answer li.fail { border-color: #b3261e; background: #fbeaea; font-weight: bold; }
#answer li.expected { border-color: #999; background: #f5f5f5; }
figure { margin: 1.2em 0; }
figcaption { color: #444; font-size: .92em; max-width: 60em; }
ul.notes { color: #444; font-size: .92em; margin-top: .3em; }
svg { max-width: 100%; height: auto; }
.multiples { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: .4em; }
.error { color: #b3261e; }
"#;

/// `report.html` for `r`, charts from `s` (the intervals of the same run or window).
pub fn html(r: &Report, s: &Series) -> String {
    let mut o = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mqtt-chaos {}: {verdict}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&r.scenario)
    );
    let _ = writeln!(
        o,
        "<h1>mqtt-chaos: <code>{}</code></h1>",
        escape(&r.scenario)
    );
    answer(&mut o, r);
    let _ = writeln!(
        o,
        "<p><span class=\"verdict {}\" id=\"verdict\">{verdict}</span></p>",
        verdict.to_lowercase()
    );
    let _ = writeln!(o, "<p>{}</p>", escape(&verdict_sentence(r)));
    if !r.errors.is_empty() {
        // Right under the verdict: what makes the run unable to vouch.
        let _ = writeln!(
            o,
            "<h2>Run errors</h2>\n<table id=\"errors\">\n<tr><th>cause</th><th>at</th><th>what</th></tr>"
        );
        for e in &r.errors {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                e.cause,
                e.at_s.map_or("–".to_string(), secs),
                escape(&e.message)
            );
        }
        let _ = writeln!(o, "</table>");
    }
    let _ = writeln!(
        o,
        "<p class=\"meta\">seed {} · started {} · {} of traffic · {} devices · harness {} · broker {} · faults {}</p>",
        r.seed,
        escape(&r.started_at),
        secs(r.duration_s),
        r.devices,
        escape(&r.versions.harness),
        escape(&r.versions.broker),
        escape(&r.versions.faults),
    );

    if super::signoff::applies(r) {
        signoff_table(&mut o, r);
    }
    survival_table(&mut o, r);
    slo_table(&mut o, r);

    let _ = writeln!(o, "<h2>Charts</h2>");
    let _ = writeln!(o, "<p class=\"meta\">{}</p>", escape(&resolution(s)));
    figure(
        &mut o,
        "chart-timeline",
        "Connected devices and faults",
        "How many devices of each profile were connected, sampled at every interval. Shaded: a fault in force, from the moment the fault backend confirmed it to the moment it confirmed the heal. A good client configuration dips under a fault and climbs back soon after the shading ends.",
        timeline_chart(r, s),
        timeline_notes(r, s),
    );
    figure(
        &mut o,
        "chart-latency",
        "Message latency over time",
        "End-to-end latency of telemetry (intended send time to reception) in each interval: the median (p50, thick), the slowest 1 % (p99, thin) and the slowest message (max, dashed). Log scale. Gaps: no message arrived in that interval. With more than four profiles, one small plot per profile, all on the same scales.",
        latency_chart(s),
        latency_notes(r, s),
    );
    let reconnect = reconnect_distributions(r, s);
    figure(
        &mut o,
        "chart-reconnect",
        "Reconnect time after a fault heals",
        "How long devices took to connect again after a link or broker fault healed (reconnect_after_heal), as percentiles: read a point as \"this share of reconnects took at most this long\". The right end is the slowest.",
        distribution_chart("reconnect time", &reconnect),
        distribution_notes(&reconnect),
    );
    let zombie = zombie_distributions(r);
    figure(
        &mut o,
        "chart-zombie",
        "Zombie time (believed online while cut off)",
        "How long a client kept believing it was connected while a blackhole fault silently dropped its traffic (zombie_time), as percentiles of the report's summary (min, p50, p90, p99, p99.9, max).",
        distribution_chart("zombie time", &zombie),
        distribution_notes(&zombie),
    );

    let _ = writeln!(o, "<h2>Telemetry per profile</h2>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">lost_after_ack: the broker acknowledged the message and it never arrived (a violation). silent_loss: the application was told \"sent\" without an acknowledgement and it never arrived.</p>"
    );
    message_table(&mut o, "telemetry", "", r, |f| &f.telemetry);
    if r.totals.telemetry.duplicates + r.totals.commands.duplicates > 0 {
        let _ = writeln!(
            o,
            "<p class=\"meta\">{}</p>",
            escape(crate::report::markdown::DUPLICATES_NOTE)
        );
    }
    if r.totals.commands.sent > 0 || r.totals.commands.delivered > 0 {
        let _ = writeln!(o, "<h2>Commands per profile</h2>");
        message_table(&mut o, "commands", "commands.", r, |f| &f.commands);
    }
    connection_table(&mut o, r);
    offline_table(&mut o, r);
    faults_table(&mut o, r);

    if r.unobserved_s > 0.0 || r.unobserved > 0 {
        let _ = writeln!(
            o,
            "<p>The observer was away for {}: {} acknowledged messages published then were never received and are counted as <code>unobserved</code>, not lost.</p>",
            secs(r.unobserved_s),
            r.unobserved
        );
    }
    let _ = writeln!(o, "</body>\n</html>");
    o
}

/// The answer first, coloured: safe to ship in green, a mistake that did
/// not behave as expected in red, known-bad baselines as expected neutral.
fn answer(o: &mut String, r: &Report) {
    use crate::report::survival::{answer_lines, Tone};
    let lines = answer_lines(r);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<section id=\"answer\">\n<h2>Which configuration is safe to ship?</h2>\n<ul>"
    );
    for (tone, l) in &lines {
        let class = match tone {
            Tone::Safe => "pass",
            Tone::Neutral => "expected",
            Tone::Alarm => "fail",
        };
        let _ = writeln!(o, "<li class=\"{class}\">{}</li>", escape(l));
    }
    let _ = writeln!(o, "</ul>\n</section>");
}

fn verdict_sentence(r: &Report) -> String {
    if r.slo.is_empty() {
        return "No SLOs were set: the verdict checks nothing.".into();
    }
    let expected_breaches = r
        .slo
        .iter()
        .filter(|s| s.expected == crate::report::Expected::Breach)
        .count();
    if expected_breaches > 0 && r.verdict != Verdict::Error {
        let unexpected = r.slo.iter().filter(|s| !s.as_expected()).count();
        return if unexpected == 0 {
            format!(
                "All {} SLOs came out as expected: {} held, and the {expected_breaches} on the figures of known-bad profiles were breached, as they must be.",
                r.slo.len(),
                r.slo.len() - expected_breaches
            )
        } else {
            format!(
                "{unexpected} of {} SLOs did not come out as expected ({expected_breaches} are on figures known-bad profiles must fail on; an unchecked SLO counts as a breach, and never as the expected failure).",
                r.slo.len()
            )
        };
    }
    let failed = r.slo.iter().filter(|s| s.status == SloStatus::Fail).count();
    let unknown = r
        .slo
        .iter()
        .filter(|s| s.status == SloStatus::Unknown)
        .count();
    match r.verdict {
        Verdict::Error => format!(
            "The run cannot vouch for its figures: the harness or its environment failed ({} incident{}, listed below). The figures are what was measured, not a verdict on the client configuration.",
            r.errors.len(),
            if r.errors.len() == 1 { "" } else { "s" }
        ),
        Verdict::Pass if r.slo.len() == 1 => "The one SLO held.".into(),
        Verdict::Pass => format!("All {} SLOs held.", r.slo.len()),
        Verdict::Fail => format!(
            "{failed} of {} SLOs failed and {unknown} could not be checked (an unchecked SLO counts as a breach).",
            r.slo.len()
        ),
    }
}

fn resolution(s: &Series) -> String {
    let Some(first) = s.points.first() else {
        return "No complete interval: there is nothing to plot over time.".into();
    };
    let length = if s.per_point == 1 {
        first.end_s - first.start_s
    } else {
        (first.end_s - first.start_s) / s.per_point as f64
    };
    if s.per_point == 1 {
        format!(
            "{} intervals of about {}; one point per interval.",
            s.intervals,
            secs_short(length)
        )
    } else {
        format!(
            "{} intervals of about {}: more than {MAX_POINTS}, so every {} adjacent intervals are merged into one point (latency percentiles of their samples together, connected devices at the point's last cut).",
            s.intervals,
            secs_short(length),
            s.per_point
        )
    }
}

fn figure(
    o: &mut String,
    id: &str,
    title: &str,
    caption: &str,
    svg: Result<String, String>,
    notes: Vec<String>,
) {
    let _ = writeln!(o, "<figure id=\"{id}\">\n<h3>{}</h3>", escape(title));
    match svg {
        Ok(svg) => o.push_str(&svg),
        Err(e) => {
            let _ = writeln!(
                o,
                "<p class=\"error\">The chart could not be drawn: {}</p>",
                escape(&e)
            );
        }
    }
    let _ = writeln!(o, "<figcaption>{}</figcaption>", escape(caption));
    if !notes.is_empty() {
        let _ = writeln!(o, "<ul class=\"notes\">");
        for n in notes {
            let _ = writeln!(o, "<li>{}</li>", escape(&n));
        }
        let _ = writeln!(o, "</ul>");
    }
    let _ = writeln!(o, "</figure>");
}

/// What a legend entry shows beside its name.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Line(RGBAColor, u32),
    Dashed(RGBAColor),
    Shade(RGBAColor),
}

/// The legend's column at the right of every chart (outside the plot, so
/// it never hides a line).
const LEGEND_WIDTH: u32 = 280;
const LEGEND_ROW: i32 = 18;
/// Characters of a legend entry that fit LEGEND_WIDTH at 14 px (longer
/// ones end in `…`).
const LEGEND_CHARS: usize = 34;

/// Draw on an SVG canvas into a string: `draw` gets the plot's area and
/// returns the legend's entries, drawn in a column at the right.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<Vec<(String, Mark)>, String>,
) -> Result<String, String> {
    svg_sized((WIDTH, HEIGHT), LEGEND_WIDTH, draw)
}

/// [`svg`] on a canvas of `size` with a legend column `legend` wide.
fn svg_sized(
    size: (u32, u32),
    legend: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<Vec<(String, Mark)>, String>,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(size.0 - legend);
        let entries = draw(&plot)?;
        draw_legend(&legend, &entries)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

fn draw_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[(String, Mark)],
) -> Result<(), String> {
    let height = area.dim_in_pixel().1 as i32;
    let rows = ((height - 2 * LEGEND_ROW) / LEGEND_ROW).max(1) as usize;
    let style = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, mark)) in entries.iter().enumerate() {
        let y = LEGEND_ROW + LEGEND_ROW * i as i32;
        if i + 1 == rows && entries.len() > rows {
            let more = format!("… {} more (see the tables)", entries.len() - i);
            area.draw(&Text::new(more, (4, y), style.clone()))
                .map_err(err)?;
            break;
        }
        match *mark {
            Mark::Line(c, w) => area
                .draw(&PathElement::new(vec![(4, y), (28, y)], c.stroke_width(w)))
                .map_err(err)?,
            Mark::Dashed(c) => {
                for (a, b) in [(4, 11), (15, 22), (26, 28)] {
                    area.draw(&PathElement::new(vec![(a, y), (b, y)], c.stroke_width(1)))
                        .map_err(err)?;
                }
            }
            Mark::Shade(c) => area
                .draw(&Rectangle::new([(4, y - 6), (28, y + 6)], c.filled()))
                .map_err(err)?,
        }
        let name = if name.chars().count() > LEGEND_CHARS {
            format!(
                "{}…",
                name.chars().take(LEGEND_CHARS - 1).collect::<String>()
            )
        } else {
            name.clone()
        };
        area.draw(&Text::new(name, (34, y), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The x range of the time charts: the intervals' span (the report's
/// duration when there are none).
fn time_range(s: &Series, r: Option<&Report>) -> (f64, f64) {
    match (s.points.first(), s.points.last()) {
        (Some(a), Some(b)) => (a.start_s, b.end_s.max(a.start_s + 1e-3)),
        _ => (0.0, r.map_or(1.0, |r| r.duration_s).max(1.0)),
    }
}

/// The run clock's unit on an axis spanning `span` seconds: its length in
/// seconds and its name. The time charts are drawn in it, so the axis
/// ticks (1-2-5 steps of the coordinate) fall on round seconds, minutes or
/// hours.
fn clock_unit(span: f64) -> (f64, &'static str) {
    if span <= 180.0 {
        (1.0, "s")
    } else if span <= 3.0 * 3600.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

/// A run-clock tick label, `t` in the unit of [`clock_unit`].
fn clock_label(t: f64, unit: &str) -> String {
    format!("{} {unit}", trim(t, 2))
}

/// `x` with at most `digits` decimals, trailing zeros dropped.
fn trim(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn timeline_chart(r: &Report, s: &Series) -> Result<String, String> {
    let (x0, x1) = time_range(s, Some(r));
    let span = x1 - x0;
    let top_devices = s
        .devices
        .values()
        .map(|&d| u64::from(d))
        .chain(
            s.points
                .iter()
                .flat_map(|p| p.profiles.values().filter_map(|v| v.connected)),
        )
        .max()
        .unwrap_or(0)
        .max(1);
    // Room above the lines for the fault labels.
    let y_top = (top_devices as f64 * 1.35).ceil() as i64 + 1;
    // Drawn in the clock's unit (s, min or h).
    let (u, unit) = clock_unit(span);
    let (x0, x1) = (x0 / u, x1 / u);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, 0i64..y_top)
            .map_err(err)?;
        let fmt = |t: &f64| clock_label(*t, unit);
        chart
            .configure_mesh()
            .x_desc("run clock")
            .y_desc("connected devices")
            .x_label_formatter(&fmt)
            .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
            .max_light_lines(2)
            .draw()
            .map_err(err)?;

        let mut legend = Vec::new();
        let shown: Vec<&FaultRecord> = r.faults.iter().filter(|f| shaded(f)).collect();
        if !shown.is_empty() {
            let spans: Vec<(f64, f64)> = shown
                .iter()
                .map(|f| {
                    let a = f.started_at_s.map_or(x0, |t| t / u).clamp(x0, x1);
                    let b = f.healed_at_s.map_or(x1, |t| t / u).clamp(x0, x1);
                    (a, b.max(a))
                })
                .collect();
            chart
                .draw_series(spans.iter().map(|&(a, b)| {
                    Rectangle::new([(a, y_top), (b, 0)], FAULT_COLOR.mix(0.16).filled())
                }))
                .map_err(err)?;
            legend.push((
                "fault in force".to_string(),
                Mark::Shade(FAULT_COLOR.mix(0.3)),
            ));
            let label_style = ("sans-serif", 13).into_font().color(&FAULT_COLOR);
            let labelled = if shown.len() <= MAX_FAULT_LABELS {
                &shown[..]
            } else {
                &shown[..0]
            };
            chart
                .draw_series(
                    labelled
                        .iter()
                        .zip(&spans)
                        .enumerate()
                        .map(|(k, (f, &(a, _)))| {
                            let label = format!(
                                "#{} {}{}",
                                f.index,
                                f.kind,
                                f.target
                                    .as_deref()
                                    .map_or(String::new(), |t| format!(" @ {t}"))
                            );
                            EmptyElement::at((a, y_top))
                                + Text::new(
                                    label,
                                    (4, 4 + 15 * (k as i32 % 4)),
                                    label_style.clone(),
                                )
                        }),
                )
                .map_err(err)?;
        }

        let mut drawn = 0;
        for (i, name) in s.devices.keys().enumerate() {
            let c = color(i);
            let points: Vec<(f64, i64)> = s
                .points
                .iter()
                .filter_map(|p| {
                    let v = p.profiles.get(name)?.connected?;
                    Some((p.end_s / u, v as i64))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            drawn += 1;
            let devices = s.devices[name];
            chart
                .draw_series(
                    LineSeries::new(points.clone(), c.stroke_width(2))
                        .point_size(if points.len() <= 120 { 3 } else { 0 }),
                )
                .map_err(err)?;
            legend.push((
                format!("{name} ({devices} devices)"),
                Mark::Line(c.to_rgba(), 2),
            ));
        }
        if drawn == 0 {
            no_data(root, "connected devices not recorded")?;
        }
        Ok(legend)
    })
}

/// More faults than this are shaded without labels (they would overlap);
/// the faults table names them.
const MAX_FAULT_LABELS: usize = 12;

/// A fault shaded on the connected-devices chart: applied, and from the
/// timeline. A weather event falls on one device and would grey the whole
/// chart out at fleet scale; the weather events table sums them up.
fn shaded(f: &FaultRecord) -> bool {
    f.applied && f.started_at_s.is_some() && f.weather.is_none()
}

fn timeline_notes(r: &Report, s: &Series) -> Vec<String> {
    let mut notes = Vec::new();
    let shown = r.faults.iter().filter(|f| shaded(f)).count();
    if shown > MAX_FAULT_LABELS {
        notes.push(format!(
            "{shown} faults were applied: too many to label on the chart; the faults table below lists each with its times"
        ));
    }
    let weather = r.faults.iter().filter(|f| f.weather.is_some()).count();
    if weather > 0 {
        notes.push(format!(
            "{weather} field weather events, each on one device, are not shaded; the field weather events table below sums them up"
        ));
    }
    for name in s.devices.keys() {
        let recorded = s
            .points
            .iter()
            .any(|p| p.profiles.get(name).is_some_and(|v| v.connected.is_some()));
        if !recorded && !s.points.is_empty() {
            notes.push(format!(
                "{name}: connected devices were not recorded (interval files written by an older version)"
            ));
        }
    }
    notes
}

/// A large grey message in the middle of an empty chart.
fn no_data(area: &DrawingArea<SVGBackend, Shift>, what: &str) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let style = ("sans-serif", 22)
        .into_font()
        .color(&RGBColor(0x88, 0x88, 0x88))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        what.to_string(),
        ((w / 2) as i32, (h / 2) as i32),
        style,
    ))
    .map_err(err)
}

/// Split a line at its gaps.
fn segments(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) => out.last_mut().expect("never empty").push((x, y)),
            None => {
                if out.last().is_some_and(|s| !s.is_empty()) {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Profiles up to which the latency chart is one plot; beyond, one small
/// plot per profile (small multiples) on a shared scale, since a dozen
/// profiles' three lines each in one plot cannot be read apart.
const LATENCY_ONE_PLOT: usize = 4;
/// The size of one small multiple (two a row in the page's width).
const PANEL: (u32, u32) = (500, 230);
const PANEL_LEGEND: u32 = 140;

fn latency_chart(s: &Series) -> Result<String, String> {
    let (x0, x1) = time_range(s, None);
    let span = x1 - x0;
    let values = s
        .points
        .iter()
        .flat_map(|p| p.profiles.values().filter_map(|v| v.e2e_latency));
    let (lo, hi) = values.fold((u64::MAX, 0u64), |(lo, hi), e| {
        (lo.min(e.p50_us.max(1)), hi.max(e.max_us.max(1)))
    });
    let any = hi > 0;
    // Whole decades, so the axis has a label at each end.
    let (lo, hi) = if any {
        (
            10f64.powf((lo as f64).log10().floor()),
            10f64.powf((hi as f64 * 1.01).log10().ceil()),
        )
    } else {
        (100.0, 1e6)
    };
    let (u, unit) = clock_unit(span);
    let axes = LatencyAxes {
        x: (x0 / u, x1 / u),
        u,
        unit,
        y: (lo, hi),
    };
    let names: Vec<&String> = s.devices.keys().collect();
    if names.len() <= LATENCY_ONE_PLOT {
        return svg(|root| {
            let legend = latency_plot(root, s, &axes, &names, true)?;
            if !any {
                no_data(root, "no samples")?;
            }
            Ok(legend)
        });
    }
    let mut out = String::from("<div class=\"multiples\">\n");
    for (i, name) in names.iter().enumerate() {
        let panel = svg_sized(PANEL, PANEL_LEGEND, |root| {
            latency_plot(root, s, &axes, &names[i..=i], false).map(|mut legend| {
                // The profile's name is the panel's caption; the legend
                // keeps the line styles.
                legend.retain(|(n, _)| n != *name);
                legend
            })
        })?;
        out.push_str(&panel);
        out.push('\n');
    }
    out.push_str("</div>");
    Ok(out)
}

/// The shared scales of the latency plots.
struct LatencyAxes {
    /// In the clock's unit.
    x: (f64, f64),
    u: f64,
    unit: &'static str,
    /// µs, whole decades.
    y: (f64, f64),
}

/// Draw the p50/p99/max lines of `names` (colours by their place among
/// all profiles); `whole`: one plot of every profile (axis titles in
/// full), else a small multiple captioned with its profile.
fn latency_plot(
    root: &DrawingArea<SVGBackend, Shift>,
    s: &Series,
    axes: &LatencyAxes,
    names: &[&String],
    whole: bool,
) -> Result<Vec<(String, Mark)>, String> {
    let (x0, x1) = axes.x;
    let (lo, hi) = axes.y;
    let u = axes.u;
    let unit = axes.unit;
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(if whole { 12 } else { 6 })
        .x_label_area_size(if whole { 40 } else { 28 })
        .y_label_area_size(if whole { 72 } else { 64 });
    if !whole {
        builder.caption(names[0].as_str(), ("sans-serif", 15));
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
        .map_err(err)?;
    let xfmt = |t: &f64| clock_label(*t, unit);
    let yfmt = |v: &f64| micros(v.round() as u64);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
        .max_light_lines(2);
    if whole {
        mesh.x_desc("run clock")
            .y_desc("end-to-end latency (log scale)");
    } else {
        mesh.x_labels(6).y_labels(4);
    }
    mesh.draw().map_err(err)?;
    let mut legend = Vec::new();
    let markers = s.points.len() <= 120;
    let all: Vec<&String> = s.devices.keys().collect();
    for name in names {
        let i = all.iter().position(|n| n == name).unwrap_or(0);
        let c = color(i);
        let stat = |f: fn(&super::series::LatencyStats) -> u64| {
            segments(s.points.iter().map(|p| {
                let mid = (p.start_s + p.end_s) / 2.0 / u;
                let v = p.profiles.get(*name).and_then(|v| v.e2e_latency);
                (mid, v.map(|e| f(&e).max(1) as f64))
            }))
        };
        let p50 = c.stroke_width(3);
        let p99 = c.mix(0.75).stroke_width(1);
        for (segs, style) in [(stat(|e| e.p50_us), p50), (stat(|e| e.p99_us), p99)] {
            for seg in segs {
                chart
                    .draw_series(LineSeries::new(seg, style).point_size(if markers {
                        2
                    } else {
                        0
                    }))
                    .map_err(err)?;
            }
        }
        for seg in stat(|e| e.max_us) {
            chart
                .draw_series(DashedLineSeries::new(seg, 5, 4, c.mix(0.6).stroke_width(1)))
                .map_err(err)?;
        }
        legend.push(((*name).clone(), Mark::Line(c.to_rgba(), 3)));
    }
    // The line styles, once for every profile.
    let grey = RGBColor(0x55, 0x55, 0x55);
    legend.push(("p50 (median)".into(), Mark::Line(grey.to_rgba(), 3)));
    legend.push(("p99".into(), Mark::Line(grey.mix(0.75), 1)));
    legend.push(("max".into(), Mark::Dashed(grey.mix(0.6))));
    if !whole
        && !s.points.iter().any(|p| {
            p.profiles
                .get(names[0])
                .is_some_and(|v| v.e2e_latency.is_some())
        })
    {
        no_data(root, "no samples")?;
    }
    Ok(legend)
}

fn latency_notes(r: &Report, s: &Series) -> Vec<String> {
    s.devices
        .keys()
        .filter(|name| {
            !s.points.iter().any(|p| {
                p.profiles
                    .get(*name)
                    .is_some_and(|v| v.e2e_latency.is_some())
            })
        })
        .map(|name| {
            let sent = r.profiles.get(name).map_or(0, |f| f.telemetry.sent);
            format!("{name}: no samples (no telemetry received; {sent} sent)")
        })
        .collect()
}

/// HdrHistogram's percentile axis, in thousandths: `x = 1000 · log10(1 /
/// (1 − p))`, so 0 is the minimum, 1000 is p90, 2000 p99, …, [`X_P9999`]
/// p99.99; the maximum is drawn apart at [`X_MAX`]. (Integers: plotters
/// places labels at given key points only on an integer axis.)
const X_P9999: i64 = 4000;
const X_MAX: i64 = 4600;

/// The key points of the percentile axis and their labels.
const PERCENTILE_TICKS: [(i64, &str); 7] = [
    (0, "min"),
    (301, "50 %"),
    (1000, "90 %"),
    (2000, "99 %"),
    (3000, "99.9 %"),
    (X_P9999, "99.99 %"),
    (X_MAX, "max"),
];

fn x_of_quantile(q: f64) -> i64 {
    if q >= 1.0 {
        X_MAX
    } else {
        ((1.0 / (1.0 - q)).log10() * 1000.0)
            .round()
            .min(X_P9999 as f64) as i64
    }
}

fn percentile_label(x: i64) -> String {
    PERCENTILE_TICKS
        .iter()
        .find(|(t, _)| *t == x)
        .map_or(String::new(), |(_, l)| l.to_string())
}

/// One profile's distribution on a percentile chart.
#[derive(Debug, Clone)]
struct Distribution {
    profile: String,
    /// `(x, µs)` points; empty: nothing to draw (see `note`).
    points: Vec<(i64, f64)>,
    /// Drawn as a curve (a full histogram) or as marked points (a summary).
    curve: bool,
    note: Option<String>,
    /// Zombie episodes never noticed before the heal: no duration to draw
    /// (each lasted at least until the fault healed), so the legend names
    /// them, dashed, instead of leaving the profile out.
    censored: u64,
}

/// The curve of a histogram: quantiles up to p99.99 on the log axis, then the max.
fn histogram_points(h: &Histogram<u64>) -> Vec<(i64, f64)> {
    let mut pts: Vec<(i64, f64)> = (0..=80)
        .map(|k| {
            let x = k * X_P9999 / 80;
            let q = 1.0 - 10f64.powf(-(x as f64) / 1000.0);
            (x, h.value_at_quantile(q) as f64)
        })
        .collect();
    pts[0].1 = h.min() as f64;
    pts.push((X_MAX, h.max() as f64));
    pts
}

/// The points of a report summary.
fn figure_points(d: &DurationFigure) -> Vec<(i64, f64)> {
    [
        (0.0, d.min_us),
        (0.5, d.p50_us),
        (0.9, d.p90_us),
        (0.99, d.p99_us),
        (0.999, d.p999_us),
        (1.0, d.max_us),
    ]
    .into_iter()
    .filter_map(|(q, v)| v.map(|v| (x_of_quantile(q), v as f64)))
    .collect()
}

/// `1 sample`, `2 samples`.
fn samples(n: u64) -> String {
    if n == 1 {
        "1 sample".into()
    } else {
        format!("{n} samples")
    }
}

fn censored_note(d: &DurationFigure, what: &str) -> String {
    match d.censored {
        Some(c) if c > 0 => format!("; {c} {what}"),
        _ => String::new(),
    }
}

fn reconnect_distributions(r: &Report, s: &Series) -> Vec<Distribution> {
    r.profiles
        .iter()
        .map(|(name, f)| {
            let Some(d) = &f.reconnect_after_heal else {
                return Distribution {
                    profile: name.clone(),
                    censored: 0,
                    points: vec![],
                    curve: false,
                    note: Some(format!(
                        "{name}: not measured in this run (no link or broker fault that hit it healed)"
                    )),
                };
            };
            let censored = censored_note(d, "never reconnected before the end");
            if d.count == 0 {
                return Distribution {
                    profile: name.clone(),
                    censored: 0,
                    points: vec![],
                    curve: false,
                    note: Some(format!("{name}: no samples{censored}")),
                };
            }
            let note = Some(format!("{name}: {}{censored}", samples(d.count)));
            match s.reconnect_after_heal.get(name) {
                // The intervals hold the very samples the report summarises.
                Some(h) if h.len() == d.count => Distribution {
                    profile: name.clone(),
                    censored: 0,
                    points: histogram_points(h),
                    curve: true,
                    note,
                },
                _ => Distribution {
                    profile: name.clone(),
                    censored: 0,
                    points: figure_points(d),
                    curve: false,
                    note,
                },
            }
        })
        .collect()
}

fn zombie_distributions(r: &Report) -> Vec<Distribution> {
    r.profiles
        .iter()
        .map(|(name, f)| {
            let Some(d) = &f.zombie_time else {
                return Distribution {
                    profile: name.clone(),
                    censored: 0,
                    points: vec![],
                    curve: false,
                    note: Some(format!(
                        "{name}: not measured in this run (no blackhole-like fault hit it)"
                    )),
                };
            };
            let undetected = censored_note(d, "never noticed before the heal");
            let note = if d.count == 0 {
                format!("{name}: no samples{undetected}")
            } else {
                format!("{name}: {}{undetected}", samples(d.count))
            };
            Distribution {
                profile: name.clone(),
                censored: d.censored.unwrap_or(0),
                points: figure_points(d),
                curve: false,
                note: Some(note),
            }
        })
        .collect()
}

fn distribution_notes(ds: &[Distribution]) -> Vec<String> {
    ds.iter().filter_map(|d| d.note.clone()).collect()
}

fn distribution_chart(what: &str, ds: &[Distribution]) -> Result<String, String> {
    let hi = ds
        .iter()
        .flat_map(|d| d.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let any = ds.iter().any(|d| !d.points.is_empty());
    let y_top = if hi > 0.0 { hi * 1.12 } else { 1_000_000.0 };
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (0..X_MAX + 100).with_key_points(PERCENTILE_TICKS.iter().map(|t| t.0).collect()),
                0.0..y_top,
            )
            .map_err(err)?;
        let xfmt = |x: &i64| percentile_label(*x);
        let yfmt = |v: &f64| micros(v.max(0.0).round() as u64);
        chart
            .configure_mesh()
            .x_desc("percentile (share of samples at or below)")
            .y_desc(what)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .light_line_style(RGBColor(0xF2, 0xF2, 0xF2))
            .max_light_lines(2)
            .draw()
            .map_err(err)?;
        let mut legend = Vec::new();
        for (i, d) in ds.iter().enumerate() {
            let c = color(i);
            let never = (d.censored > 0).then(|| format!("{} unnoticed", d.censored));
            if d.points.is_empty() {
                // Only censored episodes: at least until the heal, no
                // duration to draw; named in the legend, dashed.
                if let Some(never) = never {
                    legend.push((format!("{}: {never}", d.profile), Mark::Dashed(c.to_rgba())));
                }
                continue;
            }
            let series = LineSeries::new(d.points.clone(), c.stroke_width(2))
                .point_size(if d.curve { 0 } else { 4 });
            chart.draw_series(series).map_err(err)?;
            let name = match never {
                Some(never) => format!("{} (+{never})", d.profile),
                None => d.profile.clone(),
            };
            legend.push((name, Mark::Line(c.to_rgba(), 2)));
        }
        if !any {
            no_data(root, "no samples")?;
        }
        Ok(legend)
    })
}

fn secs(s: f64) -> String {
    format!("{s:.3} s")
}

fn secs_short(s: f64) -> String {
    if s < 10.0 {
        format!("{} s", trim(s, 1))
    } else if s < 120.0 {
        format!("{} s", trim(s, 0))
    } else if s < 7200.0 {
        format!("{} min", trim(s / 60.0, 1))
    } else {
        format!("{} h", trim(s / 3600.0, 1))
    }
}

#[cfg(test)]
mod tests;

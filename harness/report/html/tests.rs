//! The page on hand-made reports and series: charts, tables, escaping, and
//! nothing fetched from elsewhere.

use std::collections::BTreeMap;

use super::*;
use crate::ledger::latency_histogram;
use crate::metrics::interval::{IntervalRecord, ProfileInterval};
use crate::report::series::series_of;
use crate::report::tests::report;

/// `n` one-second intervals of profiles `recommended` and `weak`: the
/// connected gauge dips during seconds 12..42, latency samples everywhere,
/// and a reconnect sample of `recommended` after the heal.
fn intervals(n: u64) -> Vec<IntervalRecord> {
    (0..n)
        .map(|i| {
            let mut profiles = BTreeMap::new();
            for (name, devices) in [("recommended", 30u64), ("weak", 20)] {
                let mut p = ProfileInterval {
                    connected: Some(if (12..42).contains(&i) {
                        devices / 2
                    } else {
                        devices
                    }),
                    ..ProfileInterval::default()
                };
                for v in [1_000, 2_000 + i * 10, 250_000] {
                    p.histograms.e2e_latency.record(v).unwrap();
                }
                if name == "recommended" && (i == 42 || i == 43) {
                    p.histograms
                        .reconnect_after_heal
                        .record(if i == 42 { 1_500_000 } else { 2_500_000 })
                        .unwrap();
                }
                profiles.insert(name.to_string(), p);
            }
            IntervalRecord {
                index: i,
                start_ns: i * 1_000_000_000,
                end_ns: (i + 1) * 1_000_000_000,
                last: i + 1 == n,
                unobserved_ns: 0,
                unknown_device_events: 0,
                errors: vec![],
                faults: vec![],
                profiles,
                link_totals: Default::default(),
            }
        })
        .collect()
}

fn devices() -> BTreeMap<String, u32> {
    [("recommended".to_string(), 30), ("weak".to_string(), 20)]
        .into_iter()
        .collect()
}

fn page() -> String {
    html(&report(), &series_of(&intervals(60), devices()))
}

/// The inline SVG elements of a page.
fn svgs(page: &str) -> Vec<&str> {
    page.match_indices("<svg")
        .map(|(i, _)| {
            let end = i + page[i..].find("</svg>").expect("closed") + "</svg>".len();
            &page[i..end]
        })
        .collect()
}

/// The text of the `<figure id=…>` of a chart.
fn figure<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<figure id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let end = start + page[start..].find("</figure>").expect("closed");
    &page[start..end]
}

#[test]
fn escape_replaces_every_character_that_means_something_in_html() {
    assert_eq!(
        escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
    );
    assert_eq!(escape("plain µs · text"), "plain µs · text");
    assert_eq!(escape(""), "");
}

#[test]
fn the_page_has_the_verdict_first_then_four_charts_with_their_axes_and_series() {
    let p = page();
    assert!(p.starts_with("<!DOCTYPE html>"));
    let verdict = p.find("id=\"verdict\"").expect("verdict");
    let slo = p.find("<table id=\"slo\">").expect("SLO table");
    let first_chart = p.find("<figure").expect("charts");
    assert!(verdict < slo && slo < first_chart);
    assert_eq!(svgs(&p).len(), 4);

    let timeline = figure(&p, "chart-timeline");
    for text in [
        "run clock",
        "connected devices",
        "recommended (30 devices)",
        "weak (20 devices)",
        "#0 blackhole @ group-a",
        "fault in force",
    ] {
        assert!(timeline.contains(text), "timeline lacks {text}");
    }
    // The applied fault is shaded; the one never applied is not labelled.
    assert!(timeline.contains("fill=\"#D55E00\""));
    assert!(!timeline.contains("broker_kill"));

    let latency = figure(&p, "chart-latency");
    for text in [
        "end-to-end latency (log scale)",
        ">\nrecommended\n</text>",
        ">\nweak\n</text>",
        ">\np50 (median)\n</text>",
        ">\np99\n</text>",
        ">\nmax\n</text>",
    ] {
        assert!(latency.contains(text), "latency chart lacks {text}");
    }

    let reconnect = figure(&p, "chart-reconnect");
    for text in [
        "percentile",
        "reconnect time",
        "99.9 %",
        "max",
        "recommended: 2 samples; 1 never reconnected",
    ] {
        assert!(reconnect.contains(text), "reconnect chart lacks {text}");
    }
    let zombie = figure(&p, "chart-zombie");
    assert!(
        zombie.contains("recommended: not measured in this run"),
        "{zombie}"
    );
    assert!(
        zombie.contains(">\nno samples\n</text>"),
        "an empty chart says so"
    );
}

#[test]
fn a_profile_with_an_empty_histogram_is_named_as_having_no_samples() {
    let mut r = report();
    let f = r.profiles.get_mut("weak").unwrap();
    f.reconnect_after_heal = Some(DurationFigure::from_histogram(&latency_histogram()));
    f.zombie_time = Some(
        DurationFigure::from_histogram(&crate::report::tests::histogram(&[400_000, 900_000]))
            .with_censored(1),
    );
    let p = html(&r, &series_of(&intervals(60), devices()));
    assert!(figure(&p, "chart-reconnect").contains("weak: no samples"));
    let zombie = figure(&p, "chart-zombie");
    assert!(zombie.contains("weak: 2 samples; 1 never noticed before the heal"));
    // Drawn: a legend entry naming the unnoticed episode too, and no "no
    // samples" placeholder.
    assert!(
        zombie.contains(">\nweak (+1 unnoticed)\n</text>"),
        "{zombie}"
    );
    assert!(!zombie.contains(">\nno samples\n</text>"));
}

#[test]
fn a_profile_whose_zombies_all_went_unnoticed_is_still_in_the_legend() {
    let mut r = report();
    let f = r.profiles.get_mut("weak").unwrap();
    f.zombie_time = Some(
        DurationFigure::from_histogram(&crate::report::tests::histogram(&[])).with_censored(2),
    );
    let p = html(&r, &series_of(&intervals(60), devices()));
    let zombie = figure(&p, "chart-zombie");
    assert!(zombie.contains(">\nweak: 2 unnoticed\n</text>"), "{zombie}");
}

#[test]
fn time_axes_tick_on_round_minutes_and_twelve_profiles_have_twelve_colours() {
    assert_eq!(clock_unit(300.0), (60.0, "min"));
    assert_eq!(clock_unit(120.0), (1.0, "s"));
    assert_eq!(clock_unit(72.0 * 3600.0), (3600.0, "h"));
    assert_eq!(clock_label(2.0, "min"), "2 min");
    assert_eq!(clock_label(0.5, "min"), "0.5 min");
    let colours: std::collections::HashSet<(u8, u8, u8)> = (0..12)
        .map(|i| {
            let c = color(i);
            (c.0, c.1, c.2)
        })
        .collect();
    assert_eq!(colours.len(), 12);
}

#[test]
fn the_tables_carry_the_report_figures_exactly() {
    let r = report();
    let p = page();
    let cell = |profile: &str, figure: &str| -> (String, String) {
        let row_start = p
            .find(&format!("<tr data-profile=\"{profile}\""))
            .expect("row");
        // The figure's cell in any of the profile's rows.
        let mut from = row_start;
        loop {
            let row = &p[from..from + p[from..].find("</tr>").expect("row end")];
            let key = format!("data-figure=\"{figure}\" data-value=\"");
            if let Some(i) = row.find(&key) {
                let rest = &row[i + key.len()..];
                let value = rest[..rest.find('"').unwrap()].to_string();
                let text =
                    rest[rest.find('>').unwrap() + 1..rest.find("</td>").unwrap()].to_string();
                return (value, text);
            }
            from = from
                + p[from + 1..]
                    .find(&format!("<tr data-profile=\"{profile}\""))
                    .expect("figure in some row")
                + 1;
        }
    };
    let weak = &r.profiles["weak"];
    assert_eq!(cell("weak", "lost_after_ack"), ("3".into(), "3".into()));
    assert_eq!(
        cell("weak", "duplicates"),
        (
            weak.telemetry.duplicates.to_string(),
            weak.telemetry.duplicates.to_string()
        )
    );
    assert_eq!(cell("", "sent").0, r.totals.telemetry.sent.to_string());
    assert_eq!(
        cell("weak", "commands.delivered").0,
        weak.commands.delivered.to_string()
    );
    let p50 = weak.telemetry.e2e_latency.p50_us.unwrap();
    assert_eq!(
        cell("weak", "e2e_latency.p50_us"),
        (p50.to_string(), "2.0 ms".into())
    );
    assert_eq!(
        cell("weak", "session_present"),
        ("0.5".into(), "50 %".into())
    );
    assert_eq!(cell("weak", "true_offline"), ("null".into(), "–".into()));
    assert_eq!(
        cell("weak", "reconnect_after_heal.censored"),
        ("1".into(), "1".into())
    );
}

#[test]
fn every_text_of_the_run_is_escaped() {
    let mut r = report();
    r.scenario = "<script>alert(1)</script>".into();
    let f = r.profiles.remove("weak").unwrap();
    r.profiles.insert("w<b>\"&".into(), f);
    r.errors.push(crate::health::Incident::new(
        Some(1.0),
        crate::health::Cause::BrokerExited,
        "broker said <img src=x onerror=alert(1)>",
    ));
    r.faults[0].target = Some("<g>".into());
    r.faults[1].error = Some("</td><script>".into());
    let mut d = devices();
    d.remove("weak");
    d.insert("w<b>\"&".into(), 20);
    let p = html(&r, &series_of(&[], d));
    for raw in ["<script>", "<img", "<b>", "<g>", "</td><script>"] {
        assert!(!p.contains(raw), "{raw} unescaped");
    }
    assert!(p.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(p.contains("data-profile=\"w&lt;b&gt;&quot;&amp;\""));
    assert!(p.contains("broker said &lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn nothing_on_the_page_is_fetched_from_elsewhere() {
    let p = page();
    assert_no_external_reference(&p);
}

/// No script, link, image, stylesheet URL or absolute URL but the SVG
/// namespace declarations.
pub(crate) fn assert_no_external_reference(page: &str) {
    let lower = page.to_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", " src=",
        "srcset=",
    ] {
        assert!(!lower.contains(banned), "{banned} in the page");
    }
    let allowed = ["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"];
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("http") {
        let url = &rest[i..];
        if url.starts_with("http://") || url.starts_with("https://") {
            assert!(
                allowed.iter().any(|a| url.starts_with(a)),
                "external URL: {}",
                &url[..url.len().min(60)]
            );
        }
        rest = &rest[i + 4..];
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("href=") {
        let value = rest[i + 5..].trim_start_matches(['"', '\'']);
        assert!(
            value.starts_with('#'),
            "href to {}",
            &value[..value.len().min(40)]
        );
        rest = &rest[i + 5..];
    }
}

#[test]
fn without_intervals_the_time_charts_say_there_is_nothing_to_plot() {
    let p = html(&report(), &series_of(&[], devices()));
    assert_eq!(svgs(&p).len(), 4);
    assert!(p.contains("No complete interval"));
    assert!(figure(&p, "chart-latency").contains(">\nno samples\n</text>"));
    // The reconnect chart falls back to the report's summary points.
    assert!(figure(&p, "chart-reconnect").contains(">\nrecommended\n</text>"));
}

#[test]
fn a_long_run_is_plotted_with_merged_intervals_and_says_so() {
    let n = 2 * crate::report::series::MAX_POINTS as u64 + 10;
    let s = series_of(&intervals(n), devices());
    assert_eq!(s.per_point, 3);
    let p = html(&report(), &s);
    assert!(
        p.contains("every 3 adjacent intervals are merged into one point"),
        "resolution note"
    );
    // The time axis is in minutes for a run of about 70 minutes.
    assert!(figure(&p, "chart-timeline").contains(" min\n</text>"));
}

#[test]
fn old_interval_files_without_the_gauge_are_named_not_drawn_as_zero() {
    let mut recs = intervals(10);
    for r in &mut recs {
        for p in r.profiles.values_mut() {
            p.connected = None;
        }
    }
    let p = html(&report(), &series_of(&recs, devices()));
    let timeline = figure(&p, "chart-timeline");
    assert!(timeline.contains("weak: connected devices were not recorded"));
    assert!(timeline.contains("connected devices not recorded\n</text>"));
}

#[test]
fn many_faults_are_shaded_without_labels_and_the_page_says_why() {
    let mut r = report();
    let template = r.faults[0].clone();
    r.faults = (0..20)
        .map(|i| FaultRecord {
            index: i,
            started_at_s: Some(2.0 * i as f64),
            healed_at_s: Some(2.0 * i as f64 + 1.0),
            ..template.clone()
        })
        .collect();
    let p = html(&r, &series_of(&intervals(60), devices()));
    let timeline = figure(&p, "chart-timeline");
    assert!(timeline.contains("20 faults were applied: too many to label"));
    assert!(!timeline.contains("#3 blackhole"));
    assert_eq!(
        timeline.matches("fill=\"#D55E00\"").count(),
        20 + 1,
        "20 bands and the legend's"
    );
    // The table still lists each one.
    assert_eq!(p.matches("<tr data-fault=").count(), 20);
}

#[test]
fn the_first_table_says_which_configuration_survives_with_report_md_s_cells() {
    let r = report();
    let p = page();
    let first_table = p.find("<table").expect("tables");
    assert_eq!(
        Some(first_table),
        p.find("<table id=\"survival\">"),
        "the survival table comes first"
    );
    let rows = crate::report::survival::survival(&r);
    assert_eq!(rows.len(), r.profiles.len());
    for row in &rows {
        let start = p
            .find(&format!("<tr data-profile=\"{}\">", row.profile))
            .unwrap_or_else(|| panic!("no row for {}", row.profile));
        let end = start + p[start..].find("</tr>").expect("closed");
        let cells: Vec<String> = p[start..end]
            .split("<td")
            .skip(1)
            .map(|c| {
                let text = &c[c.find('>').unwrap() + 1..];
                text[..text.find("</td>").unwrap()].to_string()
            })
            .collect();
        let want: Vec<String> = crate::report::survival::cells(row)
            .iter()
            .map(|c| escape(c))
            .collect();
        assert_eq!(cells, want, "{}", row.profile);
    }
}

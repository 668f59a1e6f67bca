//! The false-offline sign-off table: per configuration, what its offline
//! reports were worth under field weather — the false-offline rate with its
//! 95 % interval, false reports per device-day, devices affected, missed
//! offline reports, broker detection time p50/p99 (the price of a slow
//! will) and stale offline time. `report.md` and `report.html` open with it
//! when the run had `[[weather]]`, with a line saying what the weather was.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::markdown::micros;
use super::{Figures, Report};
use crate::metrics::rate;

/// The column headers, in order.
pub const COLUMNS: [&str; 9] = [
    "false offline rate (95 % CI)",
    "false / device-day",
    "devices false offline",
    "true offline",
    "false offline",
    "missed offline",
    "broker detect p50",
    "broker detect p99",
    "stale offline max",
];

/// One configuration's row, as text.
pub fn cells(f: &Figures) -> [String; 9] {
    let dash = || "–".to_string();
    let count = |c: Option<u64>| c.map_or_else(dash, |n| n.to_string());
    let bd = f.broker_detect_time.as_ref();
    [
        f.false_offline_rate.map_or_else(dash, |x| {
            rate::percent_with(x, f.false_offline_rate_interval.as_ref())
        }),
        f.false_offline_per_device_day
            .map_or_else(dash, |x| format!("{x:.2}")),
        f.devices_false_offline.map_or_else(dash, rate::percent),
        count(f.true_offline),
        count(f.false_offline),
        count(f.missed_offline),
        bd.and_then(|d| d.p50_us).map_or_else(dash, micros),
        bd.and_then(|d| d.p99_us).map_or_else(dash, micros),
        f.stale_offline_time
            .as_ref()
            .and_then(|d| d.max_us)
            .map_or_else(dash, micros),
    ]
}

/// The run had field weather.
pub fn applies(r: &Report) -> bool {
    r.faults.iter().any(|f| f.weather.is_some())
}

/// What the weather was: events per kind, and the devices it fell on.
pub fn weather_line(r: &Report) -> String {
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut devices = std::collections::BTreeSet::new();
    let mut failed = 0;
    for f in r.faults.iter().filter(|f| f.weather.is_some()) {
        *kinds.entry(f.kind.as_str()).or_default() += 1;
        devices.extend(f.devices.iter());
        failed += u64::from(!f.applied);
    }
    let total: u64 = kinds.values().sum();
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut line = format!(
        "Field weather: {total} events on {} of {} devices ({}) over {:.0} s.",
        devices.len(),
        r.devices,
        list.join(", "),
        r.duration_s
    );
    if failed > 0 {
        let _ = write!(line, " {failed} were not applied (see errors).");
    }
    if let Some(m) = r.min_outage_s {
        let _ = write!(
            line,
            " An offline report is true when the device was away at least {m:.0} s (min_outage)."
        );
    }
    line
}

/// The weather's events of one `[[weather]]` section and kind, summed up:
/// a run of a thousand devices draws thousands, too many to list one by
/// one in report.md and report.html (report.json keeps each).
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherRow {
    /// The `[[weather]]` section (0-based, as in report.json).
    pub section: usize,
    pub kind: &'static str,
    pub events: usize,
    pub applied: usize,
    /// Distinct devices it fell on.
    pub devices: usize,
    /// How long the applied and healed ones were in force, seconds: min,
    /// median, max (`None`: none healed).
    pub in_force_s: Option<(f64, f64, f64)>,
}

/// A fault listed on its own in the faults tables: every timeline fault,
/// and a weather event only when it failed (an error, or never applied),
/// so no failure hides in a summary.
pub fn listed(f: &super::FaultRecord) -> bool {
    f.weather.is_none() || f.error.is_some() || !f.applied
}

/// The weather's events per section and kind, in that order.
pub fn weather_rows(r: &Report) -> Vec<WeatherRow> {
    let mut groups: BTreeMap<(usize, &'static str), Vec<&super::FaultRecord>> = BTreeMap::new();
    for f in &r.faults {
        if let Some(w) = f.weather {
            groups.entry((w, f.kind.as_str())).or_default().push(f);
        }
    }
    groups
        .into_iter()
        .map(|((section, kind), fs)| {
            let mut held: Vec<f64> = fs
                .iter()
                .filter(|f| f.applied)
                .filter_map(|f| Some(f.healed_at_s? - f.started_at_s?))
                .collect();
            held.sort_by(f64::total_cmp);
            let devices: std::collections::BTreeSet<&String> =
                fs.iter().flat_map(|f| f.devices.iter()).collect();
            WeatherRow {
                section,
                kind,
                events: fs.len(),
                applied: fs.iter().filter(|f| f.applied).count(),
                devices: devices.len(),
                in_force_s: (!held.is_empty())
                    .then(|| (held[0], held[held.len() / 2], held[held.len() - 1])),
            }
        })
        .collect()
}

/// The header of the weather events table.
pub const WEATHER_COLUMNS: [&str; 8] = [
    "weather",
    "kind",
    "events",
    "applied",
    "devices",
    "in force min",
    "median",
    "max",
];

/// One row of it, as text.
pub fn weather_cells(w: &WeatherRow) -> [String; 8] {
    let s = |x: f64| format!("{x:.1} s");
    let (lo, mid, hi) = w.in_force_s.map_or_else(
        || ("–".into(), "–".into(), "–".into()),
        |(a, b, c)| (s(a), s(b), s(c)),
    );
    [
        format!("weather[{}]", w.section),
        w.kind.to_string(),
        w.events.to_string(),
        w.applied.to_string(),
        w.devices.to_string(),
        lo,
        mid,
        hi,
    ]
}

/// The sentence under the weather events table.
pub const WEATHER_NOTE: &str = "Each event is in report.json (`faults`, with its `weather` section and `devices`); an event that failed or was never applied is also listed on its own above.";

/// Warnings under the table: a configuration that leaves devices shown
/// offline after they are back (stale offline beyond `settle`) cannot be
/// reported offline again while it shows them so, so its later false
/// reports go uncounted and its rate flatters it.
pub fn caveats(r: &Report) -> Vec<String> {
    const SETTLED_US: u64 = 5_000_000;
    r.profiles
        .iter()
        .filter_map(|(name, f)| {
            let max = f.stale_offline_time.as_ref()?.max_us?;
            (max > SETTLED_US).then(|| {
                format!(
                    "{name} left devices shown offline after they were back (stale offline up to {}): a device still shown offline cannot be reported offline again, so its later false reports are not counted and its false-offline rate flatters it.",
                    micros(max)
                )
            })
        })
        .collect()
}

/// The table in Markdown: one row per profile.
pub fn markdown(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Offline reports under field weather\n");
    let _ = writeln!(o, "{}\n", weather_line(r));
    let _ = writeln!(o, "| configuration | {} |", COLUMNS.join(" | "));
    let _ = writeln!(o, "| --- |{}", " ---: |".repeat(COLUMNS.len()));
    for (name, f) in &r.profiles {
        let _ = writeln!(o, "| {name} | {} |", cells(f).join(" | "));
    }
    o.push('\n');
    for c in caveats(r) {
        let _ = writeln!(o, "**Note:** {c}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::report;
    use crate::report::FaultRecord;
    use crate::scenario::FaultName;

    #[test]
    fn a_weather_run_opens_with_the_offline_table() {
        let mut r = report();
        assert!(!applies(&r));
        for (i, (kind, device)) in [
            (FaultName::LinkDown, "a-0001"),
            (FaultName::LinkDown, "a-0002"),
            (FaultName::Cut, "a-0001"),
        ]
        .into_iter()
        .enumerate()
        {
            r.faults.push(FaultRecord {
                index: 10 + i,
                kind,
                target: Some("group-a".into()),
                scheduled_at_s: Some(5.0),
                requested_at_s: Some(5.0),
                started_at_s: Some(5.0),
                healed_at_s: Some(8.0),
                applied: true,
                error: None,
                weather: Some(0),
                devices: vec![device.into()],
            });
        }
        let weak = r.profiles.get_mut("weak").expect("weak");
        (weak.true_offline, weak.false_offline) = (Some(599), Some(1));
        weak.false_offline_rate = Some(1.0 / 600.0);
        weak.false_offline_rate_interval = rate::wilson95(1, 600);
        weak.false_offline_per_device_day = Some(0.25);
        weak.devices_false_offline = Some(0.001);
        weak.stale_offline_time = None;
        assert!(applies(&r));
        let md = crate::report::markdown(&r);
        let table = md
            .find("## Offline reports under field weather")
            .expect("the table");
        let survival = md
            .find("## Which configuration survives?")
            .expect("survival");
        assert!(table < survival, "{md}");
        assert!(
            md.contains(
                "Field weather: 3 events on 2 of 50 devices (1 cut, 2 link_down) over 60 s."
            ),
            "{md}"
        );
        assert!(
            md.contains("| weak | 0.17 % (95 % CI 0.029–0.94 %) | 0.25 | 0.10 % | 599 | 1 |"),
            "{md}"
        );
        assert!(!md.contains("flatters"), "{md}");
        let weak = r.profiles.get_mut("weak").expect("weak");
        weak.stale_offline_time = Some(crate::report::DurationFigure::from_histogram(
            &crate::report::tests::histogram(&[250_870_000]),
        ));
        let md = crate::report::markdown(&r);
        assert!(
            md.contains("**Note:** weak left devices shown offline after they were back (stale offline up to 250.87 s)"),
            "{md}"
        );
        // The page opens with the same table, before the survival one.
        let devices = r.profiles.keys().map(|p| (p.clone(), 25)).collect();
        let page = crate::report::html(&r, &crate::report::series::series_of(&[], devices));
        let at = page
            .find("<table id=\"signoff\">")
            .expect("the table in the page");
        assert!(at < page.find("<table id=\"survival\">").expect("survival"));
        assert!(page.contains("<td class=\"num\">0.17 % (95 % CI 0.029–0.94 %)</td>"));
    }

    #[test]
    fn weather_events_are_summed_per_section_and_kind_and_only_failures_listed() {
        let mut r = report();
        let mut event =
            |index, kind, device: &str, at: f64, held: Option<f64>, error: Option<&str>| {
                r.faults.push(FaultRecord {
                    index,
                    kind,
                    target: Some(format!("group-a.{device}")),
                    scheduled_at_s: Some(at),
                    requested_at_s: Some(at),
                    started_at_s: error.is_none().then_some(at),
                    healed_at_s: held.map(|h| at + h),
                    applied: error.is_none(),
                    error: error.map(str::to_string),
                    weather: Some(0),
                    devices: vec![device.into()],
                });
            };
        event(11, FaultName::LinkDown, "a-0001", 5.0, Some(2.0), None);
        event(12, FaultName::LinkDown, "a-0002", 6.0, Some(8.0), None);
        event(13, FaultName::LinkDown, "a-0001", 20.0, Some(3.0), None);
        event(14, FaultName::Cut, "a-0003", 7.0, None, Some("proxy gone"));
        let rows = weather_rows(&r);
        assert_eq!(
            rows,
            vec![
                WeatherRow {
                    section: 0,
                    kind: "cut",
                    events: 1,
                    applied: 0,
                    devices: 1,
                    in_force_s: None,
                },
                WeatherRow {
                    section: 0,
                    kind: "link_down",
                    events: 3,
                    applied: 3,
                    devices: 2,
                    in_force_s: Some((2.0, 3.0, 8.0)),
                },
            ]
        );
        let md = crate::report::markdown(&r);
        assert!(
            md.contains("| weather[0] | link_down | 3 | 3 | 2 | 2.0 s | 3.0 s | 8.0 s |"),
            "{md}"
        );
        assert!(
            md.contains("| weather[0] | cut | 1 | 0 | 1 | – | – | – |"),
            "{md}"
        );
        // The failed event is listed on its own; the applied ones are not.
        assert!(md.contains("| 14 | cut | group-a.a-0003 |"), "{md}");
        assert!(!md.contains("| 11 | link_down |"), "{md}");
        let devices = r.profiles.keys().map(|p| (p.clone(), 25)).collect();
        let page = crate::report::html(&r, &crate::report::series::series_of(&[], devices));
        assert!(page.contains("<tr data-fault=\"14\">"), "{page}");
        for hidden in 11..14 {
            assert!(
                !page.contains(&format!("<tr data-fault=\"{hidden}\">")),
                "{page}"
            );
        }
        assert!(page.contains("<table id=\"weather\">"));
        assert!(page.contains("4 field weather events, each on one device, are not shaded"));
    }
}

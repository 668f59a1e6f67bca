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
}

//! `report.html` of a real run (embedded broker, a link outage and a
//! blackhole): one self-contained page with the four charts, whose tables
//! carry `report.json`'s figures, and which `mqtt-chaos report` rebuilds
//! from the interval files alone.

use std::path::Path;
use std::process::Command;

use mqtt_chaos::runner;
use regex::Regex;
use serde_json::Value;

use crate::support;

/// Two profiles of two devices, interval 1 s: `steady` (group `ga`, with a
/// will) loses its link for 1.5 s, `fire` (group `gb`) is blackholed for
/// 4 s, long enough for keepalive 2 s + ping timeout 1 s to notice.
fn scenario() -> String {
    r#"
name = "html-page"
duration = "7s"
drain = "2s"
seed = 5
interval = "1s"

[profiles.steady]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
clean_session = false
will = { topic = "status/{device}", qos = 1, retain = true }
online_republish = true
ack = { wait = true, timeout = "3s", retries = 3 }

[profiles.fire]
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
reconnect = { initial = "200ms", max = "1s", jitter = 0.0 }
ack = { wait = false }

[[fleets]]
name = "s"
count = 2
profile = "steady"
group = "ga"
[[fleets.streams]]
name = "t"
topic = "tele/{device}"
qos = 1
rate = 10.0
payload_size = 32

[[fleets]]
name = "f"
count = 2
profile = "fire"
group = "gb"
[[fleets.streams]]
name = "t"
topic = "tele/{device}"
qos = 1
rate = 10.0
payload_size = 32

[[timeline]]
at = "2s"
duration = "1500ms"
kind = "link_down"
target = "ga"

[[timeline]]
at = "1500ms"
duration = "4s"
kind = "blackhole"
target = "gb"

[slo]
lost_after_ack = "= 0"
"#
    .to_string()
}

/// Everything a page could fetch: a script, stylesheet, image or frame by
/// reference, a CSS `url(…)` or `@import`, an `href` that is not a fragment,
/// and any absolute URL but the SVG and XLink namespace names (names, not
/// fetches).
fn external_references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let tags =
        Regex::new(r"(?i)<\s*(script|link|img|iframe|object|embed|image|use|audio|video|source)\b")
            .unwrap();
    let attrs = Regex::new(
        r#"(?i)\b(src|srcset|xlink:href|href|action|data|poster)\s*=\s*["']?([^"'\s>]*)"#,
    )
    .unwrap();
    let css = Regex::new(r"(?i)url\s*\(|@import").unwrap();
    let urls = Regex::new(r#"(?i)(https?:)?//[^\s"'<>)]+"#).unwrap();
    for m in tags.find_iter(page) {
        found.push(m.as_str().to_string());
    }
    for c in attrs.captures_iter(page) {
        let (name, value) = (&c[1], &c[2]);
        // `data-…` attributes of table cells hold figures, not references.
        let is_data_attribute =
            name.eq_ignore_ascii_case("data") && page[..c.get(1).unwrap().start()].ends_with('-');
        if is_data_attribute || value.starts_with('#') {
            continue;
        }
        found.push(c[0].to_string());
    }
    for m in css.find_iter(page) {
        found.push(m.as_str().to_string());
    }
    for m in urls.find_iter(page) {
        let u = m.as_str();
        if u != "http://www.w3.org/2000/svg" && u != "http://www.w3.org/1999/xlink" {
            found.push(u.to_string());
        }
    }
    found
}

#[test]
fn the_reference_check_finds_what_a_page_could_fetch() {
    let bad = r#"<img src="a.png"><link href="s.css"><script src="https://cdn.example/x.js"></script>
        <style>body { background: url(x.png) } @import "y.css";</style><a href="http://example.com">x</a>
        <svg><image xlink:href="pic.png"/></svg> //cdn.example/font.woff"#;
    let found = external_references(bad);
    for needle in [
        "<img",
        "<link",
        "<script",
        "url(",
        "@import",
        "http://example.com",
        "<image",
        "xlink:href=\"pic.png",
        "//cdn.example/font.woff",
    ] {
        assert!(
            found.iter().any(|f| f.contains(needle)),
            "{needle} not found in {found:?}"
        );
    }
    let good = r##"<svg xmlns="http://www.w3.org/2000/svg"><text>http is a word</text></svg>
        <a href="#slo">SLOs</a><td data-figure="sent" data-value="3">3</td>"##;
    assert_eq!(external_references(good), Vec::<String>::new());
}

/// `(profile, figure) → (data-value, text)` of every table cell of a page.
fn cells(page: &str) -> Vec<(String, String, String, String)> {
    let row = Regex::new(r#"(?s)<tr data-profile="([^"]*)"[^>]*>(.*?)</tr>"#).unwrap();
    let cell =
        Regex::new(r#"<td[^>]*data-figure="([^"]+)" data-value="([^"]*)">([^<]*)</td>"#).unwrap();
    let mut out = Vec::new();
    for r in row.captures_iter(page) {
        for c in cell.captures_iter(&r[2]) {
            out.push((
                r[1].to_string(),
                c[1].to_string(),
                c[2].to_string(),
                c[3].to_string(),
            ));
        }
    }
    out
}

/// The value of figure path `a.b` of a profile (`""`: the totals) in report.json.
fn figure<'a>(report: &'a Value, profile: &str, path: &str) -> &'a Value {
    let mut v = if profile.is_empty() {
        &report["totals"]
    } else {
        &report["profiles"][profile]
    };
    for part in path.split('.') {
        v = &v[part];
    }
    v
}

/// Every cell equals report.json; the loss, duplicate and offline figures
/// of every profile and the totals are there.
fn assert_tables_match(page: &str, report: &Value) {
    let cells = cells(page);
    for (profile, fig, value, text) in &cells {
        let expected = figure(report, profile, fig);
        let got: Value =
            serde_json::from_str(value).unwrap_or_else(|e| panic!("{fig}: {value}: {e}"));
        assert_eq!(&got, expected, "{profile}.{fig}");
        if got.is_null() {
            assert_eq!(text, "–", "{profile}.{fig}");
        } else if got.is_u64() && !fig.ends_with("_us") {
            assert_eq!(text, value, "{profile}.{fig}");
        }
    }
    for profile in ["steady", "fire", ""] {
        for fig in [
            "sent",
            "delivered",
            "lost_after_ack",
            "lost_unacked",
            "silent_loss",
            "duplicates",
            "e2e_latency.p99_us",
            "reconnect_after_heal.p50_us",
            "zombie_time.max_us",
            "true_offline",
            "false_offline",
            "missed_offline",
        ] {
            assert!(
                cells.iter().any(|(p, f, _, _)| p == profile && f == fig),
                "no cell {profile}.{fig}"
            );
        }
    }
}

/// The `<figure id=…>` of a chart.
fn chart<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<figure id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no chart {id}"));
    &page[start..start + page[start..].find("</figure>").unwrap()]
}

fn samples(n: u64) -> String {
    if n == 1 {
        "1 sample".into()
    } else {
        format!("{n} samples")
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_a_self_contained_report_html_that_report_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario()).unwrap();
    let out = dir.path().join("out");
    let opts = support::run_options(path, out.clone());
    let finished = runner::run(&opts).await.expect("the run runs");
    assert!(
        finished.environment_error.is_none(),
        "{:?}",
        finished.environment_error
    );

    let page = read(&out, "report.html");
    let report: Value = serde_json::from_str(&read(&out, "report.json")).unwrap();
    assert_eq!(external_references(&page), Vec::<String>::new());
    assert!(page.contains("<title>mqtt-chaos html-page: "));

    // The four charts, inline SVG.
    assert_eq!(page.matches("<svg").count(), 4);
    let timeline = chart(&page, "chart-timeline");
    for text in [
        "steady (2 devices)",
        "fire (2 devices)",
        "#0 link_down @ ga",
        "#1 blackhole @ gb",
        "connected devices",
    ] {
        assert!(timeline.contains(text), "timeline lacks {text}");
    }
    let latency = chart(&page, "chart-latency");
    for text in [
        ">\nsteady\n</text>",
        ">\nfire\n</text>",
        ">\np50 (median)\n</text>",
    ] {
        assert!(latency.contains(text), "latency chart lacks {text}");
    }
    let rah = &report["profiles"]["steady"]["reconnect_after_heal"];
    let n = rah["count"]
        .as_u64()
        .expect("steady reconnected after the heal");
    assert!(n > 0, "{rah}");
    assert!(
        chart(&page, "chart-reconnect").contains(&format!("steady: {}", samples(n))),
        "{}",
        chart(&page, "chart-reconnect")
    );
    let zombie = &report["profiles"]["fire"]["zombie_time"];
    let zombie_chart = chart(&page, "chart-zombie");
    let z = zombie["count"]
        .as_u64()
        .expect("the blackhole measured zombie time");
    let expected = if z == 0 {
        "fire: no samples".to_string()
    } else {
        format!("fire: {}", samples(z))
    };
    assert!(zombie_chart.contains(&expected), "{zombie_chart}");
    assert!(zombie_chart.contains("steady: not measured in this run"));

    assert_tables_match(&page, &report);

    // The connected gauge the timeline draws: the link outage took steady's
    // devices down, and they were all up at some cut.
    let steady: Vec<u64> = read(&out, "intervals.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        // Interval lines (amendments of earlier intervals carry no gauge).
        .filter(|v| v.get("amends").is_none())
        .map(|v| {
            v["profiles"]["steady"]["connected"]
                .as_u64()
                .expect("gauge")
        })
        .collect();
    assert_eq!(steady.iter().max(), Some(&2), "{steady:?}");
    assert!(steady.iter().any(|&c| c < 2), "{steady:?}");

    // `mqtt-chaos report` rebuilds the page from the interval files alone:
    // the same page, since the report and the series are the same.
    std::fs::remove_file(out.join("report.html")).unwrap();
    std::fs::remove_file(out.join("report.json")).unwrap();
    let status = Command::new(support::bin())
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        matches!(status.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let rebuilt = read(&out, "report.html");
    assert_eq!(rebuilt, page, "the rebuilt page differs");

    // A window gets its own page, charts of its intervals only.
    let status = Command::new(support::bin())
        .args(["report", "--from", "0s", "--to", "3s"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(matches!(status.status.code(), Some(0) | Some(1)));
    let window = read(&out.join("window-0s-3s"), "report.html");
    assert_eq!(window.matches("<svg").count(), 4);
    let resolution = &window[window.find("intervals of").unwrap_or(0)..][..40];
    assert!(
        window.contains("3 intervals of about 1 s;"),
        "window resolution: {resolution}"
    );
    assert_tables_match(
        &window,
        &serde_json::from_str(&read(&out.join("window-0s-3s"), "report.json")).unwrap(),
    );
}

//! `junit.xml`: the SLOs of a [`Report`] as JUnit test cases, for CI systems
//! that show test results (GitLab, Jenkins, GitHub test reporters).
//!
//! One `<testsuite name="mqtt-chaos <scenario>">`, one `<testcase>` per SLO:
//! `classname` is the SLO's profile (or `all` for the totals), `name` the
//! objective (`lost_after_ack = 0`). A failed SLO carries a `<failure>` with
//! observed vs limit; an unknown one too (unknown counts as a breach), with a
//! message saying the figure was not measured. A report without SLOs gives
//! one passing test case, `no SLOs stated`. A run in `error` (METRICS.md,
//! Verdicts) has one more test case, `run health`, with one `<error>`
//! element per incident (cause, time, what), and the suites count them in
//! `errors`, so a CI that reads JUnit shows the run as broken, not green.
//! Pure: reads only the report.

use std::fmt::Write as _;

use super::slo::show;
use super::{Report, SloResult, SloStatus};

/// The name of the one test case of a report without SLOs.
pub const NO_SLOS: &str = "no SLOs stated";
/// The name of the test case that carries a run's errors.
pub const RUN_HEALTH: &str = "run health";

/// The JUnit XML of a report.
pub fn junit(r: &Report) -> String {
    let failures = r.slo.iter().filter(|s| s.breached()).count();
    let errors = r.errors.len();
    let tests = r.slo.len().max(1) + usize::from(errors > 0);
    let suite = format!("mqtt-chaos {}", r.scenario);
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        escape(&suite),
        r.duration_s,
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
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
    if errors > 0 {
        let _ = writeln!(
            o,
            "    <testcase classname=\"harness\" name=\"{}\" time=\"{:.3}\">",
            escape(RUN_HEALTH),
            r.duration_s
        );
        for e in &r.errors {
            let message = match e.at_s {
                Some(t) => format!("{} at {t:.3} s: {}", e.cause, e.message),
                None => format!("{}: {}", e.cause, e.message),
            };
            let _ = writeln!(
                o,
                "      <error type=\"{}\" message=\"{m}\">{m}</error>",
                e.cause,
                m = escape(&message)
            );
        }
        o.push_str("    </testcase>\n");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::tests::{lost_after_ack_is_zero, report};
    use crate::report::{Slo, SloOp, Verdict};

    /// Checks the XML is well formed enough for a CI parser: one root,
    /// balanced and properly nested tags, attributes quoted, and `&` only in
    /// the five predefined entities or character references. Returns the
    /// elements as (name, attributes with entities decoded) in document order.
    fn parse(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
        let body = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("XML declaration");
        let mut elements = Vec::new();
        let mut open: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt]);
            let gt = rest[lt..].find('>').expect("tag closed") + lt;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "close of {name}");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "element name {name:?}"
            );
            if open.is_empty() {
                roots += 1;
            }
            elements.push((name.to_string(), attributes(attrs)));
            if !self_closing {
                open.push(name.to_string());
            }
        }
        check_text(rest);
        assert!(open.is_empty(), "unclosed {open:?}");
        assert_eq!(roots, 1, "one root element");
        elements
    }

    fn attributes(mut s: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        loop {
            s = s.trim_start();
            if s.is_empty() {
                return out;
            }
            let (name, after) = s.split_once("=\"").expect("name=\"value\"");
            let end = after.find('"').expect("closing quote");
            let value = &after[..end];
            assert!(!value.contains('<'), "raw < in {name}");
            check_text(value);
            out.push((name.to_string(), decode(value)));
            s = &after[end + 1..];
        }
    }

    fn check_text(s: &str) {
        assert!(!s.contains('>') || s.trim().is_empty(), "raw > in {s:?}");
        for (i, _) in s.match_indices('&') {
            let entity = &s[i..i + s[i..].find(';').expect("entity closed") + 1];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#13;", "&#9;"]
                    .contains(&entity),
                "entity {entity}"
            );
        }
    }

    fn decode(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#10;", "\n")
            .replace("&#13;", "\r")
            .replace("&#9;", "\t")
            .replace("&amp;", "&")
    }

    fn attr<'a>(e: &'a (String, Vec<(String, String)>), name: &str) -> &'a str {
        e.1.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} has no {name}", e.0))
    }

    fn named<'a>(
        es: &'a [(String, Vec<(String, String)>)],
        name: &str,
    ) -> Vec<&'a (String, Vec<(String, String)>)> {
        es.iter().filter(|e| e.0 == name).collect()
    }

    fn slo(profile: Option<&str>, figure: &str, stat: Option<&str>, op: SloOp, limit: f64) -> Slo {
        Slo {
            profile: profile.map(str::to_string),
            figure: figure.into(),
            stat: stat.map(str::to_string),
            op,
            limit,
            text: String::new(),
        }
    }

    #[test]
    fn a_passing_slo_is_a_testcase_without_failure() {
        let xml = junit(&report());
        let es = parse(&xml);
        let suite = named(&es, "testsuite")[0];
        assert_eq!(attr(suite, "name"), "mqtt-chaos quickstart");
        assert_eq!(attr(suite, "tests"), "1");
        assert_eq!(attr(suite, "failures"), "0");
        let cases = named(&es, "testcase");
        assert_eq!(cases.len(), 1);
        assert_eq!(attr(cases[0], "classname"), "all");
        assert_eq!(attr(cases[0], "name"), "lost_after_ack = 0");
        assert!(named(&es, "failure").is_empty(), "{xml}");
    }

    #[test]
    fn a_breached_slo_fails_with_observed_and_limit() {
        let mut r = report();
        r.profiles
            .get_mut("weak")
            .expect("weak")
            .telemetry
            .lost_after_ack = 3;
        r.check(&[
            slo(Some("weak"), "lost_after_ack", None, SloOp::Eq, 0.0),
            slo(
                Some("recommended"),
                "reconnect_after_heal",
                Some("p99"),
                SloOp::Le,
                2e6,
            ),
        ]);
        assert_eq!(r.verdict, Verdict::Fail);
        let xml = junit(&r);
        let es = parse(&xml);
        let suite = named(&es, "testsuite")[0];
        assert_eq!(attr(suite, "tests"), "2");
        assert_eq!(attr(suite, "failures"), "2");
        let cases = named(&es, "testcase");
        assert_eq!(attr(cases[0], "classname"), "weak");
        assert_eq!(attr(cases[0], "name"), "lost_after_ack = 0");
        assert_eq!(attr(cases[1], "classname"), "recommended");
        assert_eq!(attr(cases[1], "name"), "reconnect_after_heal.p99 <= 2.00 s");
        let failures = named(&es, "failure");
        assert_eq!(failures.len(), 2, "{xml}");
        assert_eq!(attr(failures[0], "type"), "breach");
        assert_eq!(
            attr(failures[0], "message"),
            "lost_after_ack: observed 3, limit = 0 (profile weak)"
        );
        assert_eq!(
            attr(failures[1], "message"),
            "reconnect_after_heal.p99: observed 3.00 s, limit <= 2.00 s (profile recommended)"
        );
    }

    #[test]
    fn an_unknown_slo_fails_saying_the_figure_was_not_measured() {
        let mut r = report();
        r.check(&[
            lost_after_ack_is_zero(),
            slo(None, "broker_detect_time", None, SloOp::Le, 1e6),
            slo(Some("nobody"), "duplicates", None, SloOp::Eq, 0.0),
        ]);
        let xml = junit(&r);
        let es = parse(&xml);
        let suite = named(&es, "testsuite")[0];
        assert_eq!(attr(suite, "tests"), "3");
        assert_eq!(attr(suite, "failures"), "2");
        let failures = named(&es, "failure");
        assert_eq!(failures.len(), 2);
        for f in &failures {
            assert_eq!(attr(f, "type"), "unknown");
            let m = attr(f, "message");
            assert!(
                m.contains("not measured") && m.contains("counts as a breach"),
                "{m}"
            );
        }
        assert!(attr(failures[0], "message").starts_with("broker_detect_time: "));
        assert!(attr(failures[1], "message").contains("profile nobody"));
    }

    #[test]
    fn a_report_without_slos_has_one_passing_testcase() {
        let mut r = report();
        r.check(&[]);
        let es = parse(&junit(&r));
        let suite = named(&es, "testsuite")[0];
        assert_eq!((attr(suite, "tests"), attr(suite, "failures")), ("1", "0"));
        let cases = named(&es, "testcase");
        assert_eq!(cases.len(), 1);
        assert_eq!(attr(cases[0], "name"), NO_SLOS);
        assert!(named(&es, "failure").is_empty());
    }

    #[test]
    fn every_string_is_escaped() {
        let nasty = "a<b>&\"c\"'d'\n</testsuite>";
        let mut r = report();
        r.scenario = nasty.into();
        r.versions.broker = nasty.into();
        r.profiles
            .insert(nasty.into(), crate::report::compare::tests::figures(1));
        r.check(&[slo(Some(nasty), "lost_after_ack", None, SloOp::Lt, 1.0)]);
        let xml = junit(&r);
        let es = parse(&xml);
        assert_eq!(
            attr(named(&es, "testsuite")[0], "name"),
            format!("mqtt-chaos {nasty}")
        );
        assert_eq!(attr(named(&es, "testcase")[0], "classname"), nasty);
        let broker = named(&es, "property")
            .into_iter()
            .find(|p| attr(p, "name") == "broker")
            .expect("broker property");
        assert_eq!(attr(broker, "value"), nasty);
        assert_eq!(escape("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(escape("a\u{1}b"), "a\u{FFFD}b");
    }

    #[test]
    fn counts_match_the_testcases_and_failures() {
        let mut r = report();
        r.totals.telemetry.duplicates = 5;
        r.check(&[
            lost_after_ack_is_zero(),
            slo(None, "duplicates", None, SloOp::Eq, 0.0),
            slo(None, "duplicates", None, SloOp::Le, 10.0),
            slo(None, "zombie_undetected", None, SloOp::Eq, 0.0),
            slo(None, "flaps", None, SloOp::Le, 1.0),
        ]);
        let xml = junit(&r);
        let es = parse(&xml);
        let cases = named(&es, "testcase").len();
        let failures = named(&es, "failure").len();
        assert_eq!((cases, failures), (5, 2), "{xml}");
        for e in named(&es, "testsuite")
            .into_iter()
            .chain(named(&es, "testsuites"))
        {
            assert_eq!(attr(e, "tests"), cases.to_string());
            assert_eq!(attr(e, "failures"), failures.to_string());
        }
    }

    #[test]
    fn the_checker_rejects_unbalanced_or_unescaped_xml() {
        let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a x=\"1 & 2\"/>",
            "<a/><b/>",
            "<a x=\"<\"/>",
        ] {
            let xml = format!("{decl}{bad}");
            let caught = std::panic::catch_unwind(|| parse(&xml));
            assert!(caught.is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn write_junit_writes_the_file_and_names_it_on_error() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let path = dir.join("junit.xml");
        write_junit(&report(), &path).expect("written");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            junit(&report())
        );
        let err = write_junit(&report(), &dir.join("missing/junit.xml"))
            .expect_err("no such directory")
            .to_string();
        assert!(err.contains("missing/junit.xml"), "{err}");
    }
}

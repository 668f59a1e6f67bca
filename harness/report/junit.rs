//! `junit.xml`: the SLOs of a [`Report`] as JUnit test cases, for CI systems
//! that show test results (GitLab, Jenkins, GitHub test reporters).
//!
//! One `<testsuite>` per profile (`mqtt-chaos <scenario>: <profile>`), one
//! for the SLOs on all profiles together (`…: all`), each with the run's
//! time, and one `<testcase>` per SLO: `classname` is the profile (or
//! `all`), `name` the objective (`lost_after_ack = 0`), `time` the run's
//! duration (every objective was measured over the whole run). A failed
//! SLO carries a `<failure>` with the observed value and the limit in their
//! units and what the figure means; an unknown one too (unknown counts as a
//! breach), saying the figure was not measured. An SLO on a figure a
//! known-bad profile must fail on (`expect = { fail = [...] }`) passes when
//! it was breached (a `<system-out>` says so) and fails when it held or was
//! not measured. A report without SLOs gives one passing test case, `no
//! SLOs stated`. A run in `error` (METRICS.md, Verdicts) has one more
//! suite, `…: harness`, whose `run health` case has one `<error>` element
//! per incident (cause, time, what), and the counts include them, so a CI
//! that reads JUnit shows the run as broken, not green. Pure: reads only
//! the report.

use std::fmt::Write as _;

use super::{Expected, Report, SloResult, SloStatus};

/// The name of the one test case of a report without SLOs.
pub const NO_SLOS: &str = "no SLOs stated";
/// The name of the test case that carries a run's errors.
pub const RUN_HEALTH: &str = "run health";

/// The JUnit XML of a report.
pub fn junit(r: &Report) -> String {
    let failures = r.slo.iter().filter(|s| !s.as_expected()).count();
    let errors = r.errors.len();
    let tests = r.slo.len().max(1) + usize::from(errors > 0);
    let run = format!("mqtt-chaos {}", r.scenario);
    let time = r.duration_s;
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        escape(&run),
    );
    let properties = |o: &mut String| {
        o.push_str("    <properties>\n");
        for (name, value) in [
            ("seed", r.seed.to_string()),
            ("verdict", r.verdict.as_str().to_string()),
            ("devices", r.devices.to_string()),
            ("duration_s", format!("{time:.3}")),
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
    };
    let open_suite = |o: &mut String, name: &str, tests: usize, failures: usize, errors: usize| {
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{}\">",
            escape(&format!("{run}: {name}")),
            escape(&r.started_at),
        );
        properties(o);
    };
    if errors > 0 {
        open_suite(&mut o, "harness", 1, 0, errors);
        let _ = writeln!(
            o,
            "    <testcase classname=\"harness\" name=\"{}\" time=\"{time:.3}\">",
            escape(RUN_HEALTH),
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
        o.push_str("    </testcase>\n  </testsuite>\n");
    }
    if r.slo.is_empty() {
        open_suite(&mut o, "all", 1, 0, 0);
        let _ = writeln!(
            o,
            "    <testcase classname=\"all\" name=\"{}\" time=\"{time:.3}\"/>",
            escape(NO_SLOS)
        );
        o.push_str("  </testsuite>\n");
    }
    // Suites in order of first appearance: the totals, then each profile.
    let mut scopes: Vec<&str> = Vec::new();
    for s in &r.slo {
        let scope = s.profile.as_deref().unwrap_or("all");
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.sort_by_key(|s| *s != "all");
    for scope in scopes {
        let mine: Vec<&SloResult> = r
            .slo
            .iter()
            .filter(|s| s.profile.as_deref().unwrap_or("all") == scope)
            .collect();
        let failed = mine.iter().filter(|s| !s.as_expected()).count();
        open_suite(&mut o, scope, mine.len(), failed, 0);
        for s in mine {
            testcase(&mut o, s, scope, time);
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

fn testcase(o: &mut String, s: &SloResult, class: &str, time: f64) {
    let name = objective(s);
    let head = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
        escape(class),
        escape(&name)
    );
    match (failure(s), s.expected) {
        (None, Expected::Hold) => {
            let _ = writeln!(o, "{head}/>");
        }
        (Some((_, message)), Expected::Breach) if s.status == SloStatus::Fail => {
            let _ = writeln!(
                o,
                "{head}>\n      <system-out>{}</system-out>\n    </testcase>",
                escape(&format!("known-bad profile, failed as expected: {message}"))
            );
        }
        (Some((kind, message)), Expected::Hold) => {
            let _ = writeln!(
                o,
                "{head}>\n      <failure type=\"{kind}\" message=\"{m}\">{m}</failure>\n    </testcase>",
                m = escape(&message)
            );
        }
        (f, Expected::Breach) => {
            // Held, or not measured: the mistake the profile stands for
            // did not show.
            let message = match f {
                Some((_, m)) => format!(
                    "expected to fail (known-bad profile), but the mistake was not shown: {m}"
                ),
                None => format!(
                    "expected to fail (known-bad profile), but it held: {}",
                    held(s)
                ),
            };
            let _ = writeln!(
                o,
                "{head}>\n      <failure type=\"expected_breach\" message=\"{m}\">{m}</failure>\n    </testcase>",
                m = escape(&message)
            );
        }
    }
}

/// `zombie_undetected: observed 0 episodes, limit = 0 (profile p)`.
fn held(s: &SloResult) -> String {
    let scope = match &s.profile {
        Some(p) => format!("profile {p}"),
        None => "all devices".to_string(),
    };
    format!(
        "{}: observed {}, limit {} ({scope})",
        objective_figure(s),
        s.observed.map_or("null".into(), |v| with_unit(s, v)),
        s.limit
    )
}

/// A value with its unit ([`super::slo::show_with_unit`]).
fn with_unit(s: &SloResult, v: f64) -> String {
    super::slo::show_with_unit(&s.figure, s.stat.as_deref(), v)
}

/// What a breach of `figure` usually means about the client configuration
/// (METRICS.md), for the failure text.
pub fn hint(figure: &str) -> Option<&'static str> {
    let commands = figure.starts_with("commands.");
    let name = figure.strip_prefix("commands.").unwrap_or(figure);
    Some(match name {
        "lost_after_ack" if commands => "the broker acknowledged commands the device never received: typically a clean session without resubscribing after a reconnect",
        "lost_after_ack" => "the broker acknowledged messages that never reached the subscribers",
        "lost_unacked" => "messages the client gave up on without an acknowledgement (ack timeout, retries exhausted, or the client died with them in flight)",
        "silent_loss" => "the application was told \"sent\" without waiting for the acknowledgement and the message never arrived (publish without waiting for the ack)",
        "lost_qos0" => "QoS 0 messages lost: QoS 0 is not retried across a broken connection",
        "duplicates" => "extra receptions: retries of QoS 1 messages whose ack was lost, as QoS 1 allows",
        "reordered" => "messages received out of their publish order",
        "downgraded" => "messages delivered at a lower QoS than published (the subscription's QoS caps it)",
        "zombie_undetected" => "a client that never noticed its dead connection: no ping timeout, or a keepalive too long for the outage",
        "zombie_time" => "how long a client believed it was connected while nothing got through: keepalive and ping timeout decide it",
        "false_offline" | "false_offline_rate" | "devices_false_offline" | "false_offline_per_device_day" => "offline reports for devices that were back within min_outage: a will without delay reports every short blip",
        "missed_offline" => "devices that died without the monitoring seeing them offline: no will, a QoS 0 will, or a will not retained",
        "stale_offline_time" => "how long a device was shown offline after it was back: no retained \"online\" republished after connect",
        "false_online_time" => "how long a dead device was still shown online",
        "flaps" => "connections torn down again and again: typically two clients sharing one client id",
        "takeovers" => "sessions taken over by another connection with the same client id",
        "first_attempt_delay" | "reconnect_after_heal" | "outage_seen_by_client" | "resume_time" => "reconnect timing: the backoff's initial and maximum delays decide it",
        "broker_detect_time" => "how long the broker took to notice a dead client: keepalive × 1.5 on most brokers",
        "e2e_latency" | "ack_latency" => "latency from the intended send time: a slow broker, retries, or QoS 2's extra round trip",
        _ => return None,
    })
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
    let why = hint(&s.figure).map_or(String::new(), |h| format!("; {h}"));
    match (s.status, s.observed) {
        (SloStatus::Pass, _) => None,
        (SloStatus::Fail, Some(v)) => Some((
            "breach",
            format!(
                "{}: observed {}, limit {} ({scope}){why}",
                objective_figure(s),
                with_unit(s, v),
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
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
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
            expect_breach: false,
        }
    }

    #[test]
    fn a_passing_slo_is_a_testcase_without_failure() {
        let xml = junit(&report());
        let es = parse(&xml);
        let suite = named(&es, "testsuite")[0];
        assert_eq!(attr(suite, "name"), "mqtt-chaos quickstart: all");
        assert_eq!(attr(suite, "tests"), "1");
        assert_eq!(attr(suite, "failures"), "0");
        let cases = named(&es, "testcase");
        assert_eq!(cases.len(), 1);
        assert_eq!(attr(cases[0], "classname"), "all");
        // Measured over the whole run.
        let run = format!("{:.3}", report().duration_s);
        assert_eq!(attr(cases[0], "time"), run);
        assert_eq!(attr(suite, "time"), run);
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
        let all = named(&es, "testsuites")[0];
        assert_eq!((attr(all, "tests"), attr(all, "failures")), ("2", "2"));
        // One suite per profile, in the order of their SLOs.
        let suites = named(&es, "testsuite");
        let names: Vec<&str> = suites.iter().map(|s| attr(s, "name")).collect();
        assert_eq!(
            names,
            [
                "mqtt-chaos quickstart: weak",
                "mqtt-chaos quickstart: recommended"
            ]
        );
        for s in &suites {
            assert_eq!((attr(s, "tests"), attr(s, "failures")), ("1", "1"));
        }
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
            "lost_after_ack: observed 3 messages, limit = 0 (profile weak); the broker acknowledged messages that never reached the subscribers"
        );
        assert_eq!(
            attr(failures[1], "message"),
            "reconnect_after_heal.p99: observed 3.00 s, limit <= 2.00 s (profile recommended); reconnect timing: the backoff's initial and maximum delays decide it"
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
        let all = named(&es, "testsuites")[0];
        assert_eq!((attr(all, "tests"), attr(all, "failures")), ("3", "2"));
        let suites = named(&es, "testsuite");
        assert_eq!(attr(suites[0], "name"), "mqtt-chaos quickstart: all");
        assert_eq!(
            (attr(suites[0], "tests"), attr(suites[0], "failures")),
            ("2", "1")
        );
        assert_eq!(attr(suites[1], "name"), "mqtt-chaos quickstart: nobody");
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
    fn an_slo_a_known_bad_profile_must_breach_passes_when_breached_and_fails_when_held() {
        let mut r = report();
        r.profiles
            .get_mut("weak")
            .expect("weak")
            .telemetry
            .lost_after_ack = 3;
        let breach = |s: Slo| Slo {
            expect_breach: true,
            ..s
        };
        r.check(&[
            breach(slo(Some("weak"), "lost_after_ack", None, SloOp::Eq, 0.0)),
            breach(slo(Some("weak"), "duplicates", None, SloOp::Le, 1e9)),
        ]);
        let xml = junit(&r);
        let es = parse(&xml);
        let all = named(&es, "testsuites")[0];
        assert_eq!(
            (attr(all, "tests"), attr(all, "failures")),
            ("2", "1"),
            "{xml}"
        );
        let failures = named(&es, "failure");
        assert_eq!(failures.len(), 1, "{xml}");
        assert_eq!(attr(failures[0], "type"), "expected_breach");
        assert!(
            attr(failures[0], "message").starts_with(
                "expected to fail (known-bad profile), but it held: duplicates: observed 0 messages"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>known-bad profile, failed as expected: lost_after_ack: observed 3 messages"),
            "{xml}"
        );
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
            format!("mqtt-chaos {nasty}: {nasty}")
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

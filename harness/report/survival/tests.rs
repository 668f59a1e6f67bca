//! The survival rows: who passed what was stated for it, and the key figures.

use super::*;
use crate::report::tests::{histogram, report};
use crate::report::{markdown, Slo, SloOp};

fn slo(profile: Option<&str>, figure: &str, stat: Option<&str>, op: SloOp, limit: f64) -> Slo {
    Slo {
        profile: profile.map(str::to_string),
        figure: figure.into(),
        stat: stat.map(str::to_string),
        op,
        limit,
        text: format!("{figure} {op} {limit}"),
        expect_breach: false,
    }
}

/// `recommended` passes both of its SLOs, `weak` breaches one and cannot
/// show another, `extra` states none; one SLO on the totals, one on a
/// profile the run does not have.
fn checked() -> Report {
    let mut r = report();
    r.profiles
        .insert("extra".into(), r.profiles["recommended"].clone());
    let weak = r.profiles.get_mut("weak").expect("weak");
    weak.zombie_time =
        Some(DurationFigure::from_histogram(&histogram(&[2_000_000])).with_censored(2));
    weak.zombie_undetected = Some(2);
    weak.telemetry.lost_qos0 = 7;
    weak.commands.lost_after_ack = 4;
    weak.commands.duplicates = 5;
    r.check(&[
        slo(None, "lost_after_ack", None, SloOp::Eq, 0.0),
        slo(Some("recommended"), "lost_after_ack", None, SloOp::Eq, 0.0),
        slo(
            Some("recommended"),
            "reconnect_after_heal",
            Some("p99"),
            SloOp::Le,
            15e6,
        ),
        slo(Some("weak"), "lost_qos0", None, SloOp::Eq, 0.0),
        slo(Some("weak"), "missed_offline", None, SloOp::Eq, 0.0),
        slo(
            Some("weak"),
            "commands.lost_after_ack",
            None,
            SloOp::Le,
            10.0,
        ),
        slo(Some("gone"), "flaps", None, SloOp::Eq, 0.0),
    ]);
    r
}

#[test]
fn a_profile_survives_when_every_slo_stated_for_it_passes() {
    let rows = survival(&checked());
    let names: Vec<&str> = rows.iter().map(|r| r.profile.as_str()).collect();
    assert_eq!(names, ["extra", "recommended", "weak"]);
    let by = |n: &str| rows.iter().find(|r| r.profile == n).expect("row");
    let rec = by("recommended");
    assert_eq!((rec.survival, rec.slos), (Survival::Pass, 2));
    assert!(rec.breached.is_empty());
    // The totals breach lost_after_ack (the weak profile lost 3): that
    // does not make the recommended row fail.
    assert_eq!(rec.figures.lost_after_ack, 0);
    let weak = by("weak");
    assert_eq!((weak.survival, weak.slos), (Survival::Fail, 3));
    assert_eq!(
        weak.breached,
        [
            "lost_qos0 = 0 (observed 7 messages)",
            "missed_offline = 0 (unknown: not measured)"
        ]
    );
    let extra = by("extra");
    assert_eq!((extra.survival, extra.slos), (Survival::NoSlo, 0));
}

#[test]
fn slos_on_the_totals_or_on_a_missing_profile_are_listed_apart() {
    let r = checked();
    let overall: Vec<String> = overall(&r).iter().map(|s| describe(s)).collect();
    assert_eq!(
        overall,
        [
            "lost_after_ack = 0 (observed 3 messages)",
            "flaps = 0 (unknown: not measured)"
        ]
    );
}

#[test]
fn key_figures_come_from_the_profile_with_censored_episodes_counted() {
    let rows = survival(&checked());
    let weak = &rows
        .iter()
        .find(|r| r.profile == "weak")
        .expect("weak")
        .figures;
    assert_eq!(weak.lost_after_ack, 3);
    assert_eq!(weak.commands_lost_after_ack, 4);
    assert_eq!(weak.lost_qos0, 7);
    // Telemetry (2) and commands (5) together.
    assert_eq!(weak.duplicates, 7);
    let z = weak.zombie_time_max.expect("measured");
    assert_eq!(z.censored, 2);
    assert!(z.us.is_some_and(|us| (1_999_000..=2_001_000).contains(&us)));
    assert_eq!(weak.false_offline, None);
    assert_eq!(weak.flaps, Some(0.25));
    let rah = weak.reconnect_after_heal_p99.expect("measured");
    assert_eq!(rah.censored, 1);
    assert_eq!(weak.first_attempt_delay_max, None);
}

#[test]
fn cells_show_censored_episodes_and_dashes_for_what_was_not_measured() {
    let rows = survival(&checked());
    let weak = rows.iter().find(|r| r.profile == "weak").expect("weak");
    let c = cells(weak);
    assert_eq!(c.len(), COLUMNS.len());
    assert_eq!(c[0], "weak");
    assert_eq!(c[1], "PASS: NOT as expected");
    assert_eq!(c[2], "FAIL (3 SLOs)");
    assert_eq!(
        c[3],
        "lost_qos0 = 0 (observed 7 messages); missed_offline = 0 (unknown: not measured)"
    );
    assert_eq!(&c[4..9], ["3", "4", "0", "7", "7"]);
    assert_eq!(c[9], "2.00 s + 2 undetected");
    assert_eq!(c[10], "–");
    assert_eq!(c[13], "0.25");
    assert_eq!(c[14], "2.50 s + 1 never reconnected");
    assert_eq!(c[15], "–");
    let extra = rows.iter().find(|r| r.profile == "extra").expect("extra");
    assert_eq!(cells(extra)[1], "no SLO: not judged");
    assert_eq!(cells(extra)[2], "no SLO");
    assert_eq!(cells(extra)[3], "–");
    // Every sample censored: only the count.
    let s = DurationStat {
        us: None,
        censored: 2,
    };
    assert_eq!(stat(Some(s), "undetected"), "2 undetected");
}

#[test]
fn report_md_opens_with_the_survival_table_built_from_the_same_rows() {
    let r = checked();
    let md = markdown(&r);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "# mqtt-chaos `quickstart`: **FAIL**");
    // The answer first, in plain words.
    assert_eq!(lines[2], "## Which configuration is safe to ship?");
    let answer = answer(&r);
    for (i, l) in answer.iter().enumerate() {
        assert_eq!(lines[4 + i], format!("- {l}"));
    }
    assert_eq!(
        answer,
        [
            "Safe to ship: recommended (every SLO held).",
            "Not safe to ship: weak breached lost_qos0 = 0 (observed 7 messages); missed_offline = 0 (unknown: not measured).",
            "Not judged (no SLO names it): extra.",
            "Breached on all profiles together: lost_after_ack = 0 (observed 3 messages); flaps = 0 (unknown: not measured).",
        ]
    );
    let t = 4 + answer.len() + 1;
    assert_eq!(lines[t], "## Which configuration survives?");
    assert_eq!(lines[t + 2], format!("| {} |", COLUMNS.join(" | ")));
    for (i, row) in survival(&r).iter().enumerate() {
        assert_eq!(lines[t + 4 + i], format!("| {} |", cells(row).join(" | ")));
    }
    assert!(md.contains(
        "SLOs on all profiles together (no row can answer them): `lost_after_ack = 0 (observed 3 messages)` **FAIL**, `flaps = 0 (unknown: not measured)` **UNKNOWN**"
    ));
    // It comes before every other table.
    assert!(md.find("## Which configuration survives?") < md.find("## SLOs"));
}

/// `weak` as a known-bad baseline expected to fail on lost_qos0, and the
/// total SLO dropped (the weak profile's acked losses would breach it).
fn expecting(weak_fails_on: &[&str]) -> Report {
    let mut r = report();
    r.profiles
        .insert("extra".into(), r.profiles["recommended"].clone());
    let weak = r.profiles.get_mut("weak").expect("weak");
    weak.telemetry.lost_qos0 = 7;
    weak.zombie_undetected = Some(0);
    let breach = |mut s: Slo| {
        s.expect_breach = weak_fails_on
            .iter()
            .any(|f| crate::scenario::Expect::names(f, &s.figure, s.stat.as_deref()));
        s
    };
    r.check(&[
        slo(Some("recommended"), "lost_after_ack", None, SloOp::Eq, 0.0),
        breach(slo(Some("weak"), "lost_qos0", None, SloOp::Eq, 0.0)),
        breach(slo(Some("weak"), "zombie_undetected", None, SloOp::Eq, 0.0)),
        breach(slo(Some("weak"), "missed_offline", None, SloOp::Eq, 0.0)),
    ]);
    r
}

#[test]
fn a_known_bad_profile_that_fails_on_its_figure_makes_the_run_pass() {
    // zombie_undetected holds (0), missed_offline is not measured: only
    // lost_qos0 is named, and it is breached.
    let r = {
        let mut r = expecting(&["lost_qos0"]);
        r.slo.retain(|s| s.figure != "missed_offline");
        r.settle_verdict();
        r
    };
    assert_eq!(r.verdict, crate::report::Verdict::Pass, "{:#?}", r.slo);
    let rows = survival(&r);
    let weak = rows.iter().find(|r| r.profile == "weak").unwrap();
    assert_eq!(weak.survival, Survival::Fail);
    assert_eq!(weak.expected_fail, ["lost_qos0"]);
    assert!(weak.as_expected && !weak.safe());
    let rec = rows.iter().find(|r| r.profile == "recommended").unwrap();
    assert!(rec.safe() && rec.expected_fail.is_empty());
    let answer = answer(&r);
    assert_eq!(
        answer,
        [
            "Safe to ship: recommended (every SLO held).",
            "Known-bad, as expected: weak failed on lost_qos0.",
            "Not judged (no SLO names it): extra.",
        ]
    );
    let tones: Vec<Tone> = answer_lines(&r).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tones, [Tone::Safe, Tone::Neutral, Tone::Neutral]);
    let md = markdown::markdown(&r);
    assert!(md.contains("Safe to ship: recommended"), "{md}");
}

#[test]
fn an_expected_failure_that_does_not_show_or_cannot_be_measured_fails_the_run() {
    // zombie_undetected held although it was to fail; missed_offline was
    // not measured, which shows no mistake either.
    let r = expecting(&["lost_qos0", "zombie_undetected", "missed_offline"]);
    assert_eq!(r.verdict, crate::report::Verdict::Fail);
    let weak = survival(&r)
        .into_iter()
        .find(|r| r.profile == "weak")
        .unwrap();
    assert!(!weak.as_expected);
    let a = answer(&r).join("\n");
    assert!(
        a.contains("Known-bad, NOT as expected: weak (expected to fail on lost_qos0, zombie_undetected, missed_offline): zombie_undetected did not fail (zombie_undetected = 0, observed 0 zombie episodes never detected); missed_offline did not fail (not measured)."),
        "{a}"
    );
    // Unmarked, the same breach fails the run as before.
    let plain = expecting(&[]);
    assert_eq!(plain.verdict, crate::report::Verdict::Fail);
    let a = answer(&plain).join("\n");
    assert!(
        a.contains("Not safe to ship: weak breached lost_qos0 = 0 (observed 7 messages)"),
        "{a}"
    );
}

#[test]
fn a_breach_of_a_recommended_profile_still_fails_a_run_of_known_bad_ones() {
    let mut r = expecting(&["lost_qos0"]);
    r.slo
        .retain(|s| s.figure != "missed_offline" && s.figure != "zombie_undetected");
    r.profiles
        .get_mut("recommended")
        .unwrap()
        .telemetry
        .lost_after_ack = 2;
    r.check(&[
        slo(Some("recommended"), "lost_after_ack", None, SloOp::Eq, 0.0),
        Slo {
            expect_breach: true,
            ..slo(Some("weak"), "lost_qos0", None, SloOp::Eq, 0.0)
        },
    ]);
    assert_eq!(r.verdict, crate::report::Verdict::Fail);
    let a = answer(&r);
    assert_eq!(
        a[0],
        "Not safe to ship: recommended breached lost_after_ack = 0 (observed 2 messages)."
    );
    assert!(a
        .iter()
        .any(|l| l == "Known-bad, as expected: weak failed on lost_qos0."));
}

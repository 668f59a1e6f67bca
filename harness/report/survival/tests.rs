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
            "lost_qos0 = 0 (observed 7)",
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
            "lost_after_ack = 0 (observed 3)",
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
    assert_eq!(c[1], "FAIL (3 SLOs)");
    assert_eq!(
        c[2],
        "lost_qos0 = 0 (observed 7); missed_offline = 0 (unknown: not measured)"
    );
    assert_eq!(&c[3..8], ["3", "4", "0", "7", "7"]);
    assert_eq!(c[8], "2.00 s + 2 undetected");
    assert_eq!(c[9], "–");
    assert_eq!(c[12], "0.25");
    assert_eq!(c[13], "2.50 s + 1 never reconnected");
    assert_eq!(c[14], "–");
    let extra = rows.iter().find(|r| r.profile == "extra").expect("extra");
    assert_eq!(cells(extra)[1], "no SLO");
    assert_eq!(cells(extra)[2], "–");
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
    assert_eq!(lines[2], "## Which configuration survives?");
    assert_eq!(lines[4], format!("| {} |", COLUMNS.join(" | ")));
    for (i, row) in survival(&r).iter().enumerate() {
        assert_eq!(lines[6 + i], format!("| {} |", cells(row).join(" | ")));
    }
    assert!(md.contains(
        "SLOs on all profiles together (no row can answer them): `lost_after_ack = 0 (observed 3)` **FAIL**, `flaps = 0 (unknown: not measured)` **UNKNOWN**"
    ));
    // It comes before every other table.
    assert!(md.find("## Which configuration survives?") < md.find("## SLOs"));
}

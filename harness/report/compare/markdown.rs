//! A comparison as Markdown, for a CI job summary: warnings first, the runs,
//! the regressions, then a table per population (each profile folded unless
//! it regressed). Rows not measured in any run are left out; the JSON has
//! them.

use std::fmt::Write as _;

use super::figure::Value;
use super::{Comparison, Population, Row, Table};

/// A value as a table shows it; `–` where not measured.
pub fn show(v: Option<Value>) -> String {
    match v {
        None => "–".into(),
        Some(Value::Verdict(v)) => v.as_str().into(),
        Some(Value::Count(n)) => n.to_string(),
        Some(Value::Micros(us)) => crate::report::markdown::micros(us),
        Some(Value::Rate(x)) => rate(x),
    }
}

/// A rate with three significant digits: `0.00172`, `0.25`, `12.5`.
fn rate(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Keep a table cell on one line and its pipes escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(c: &Comparison) -> String {
    let mut o = String::new();
    let baseline = c.runs.first().map_or("", |r| r.label.as_str());
    let _ = writeln!(
        o,
        "# mqtt-chaos compare: {} runs, baseline `{}`\n",
        c.runs.len(),
        cell(baseline)
    );
    for w in &c.warnings {
        let _ = writeln!(o, "> **⚠ Warning:** {}\n", cell(&w.message));
    }
    if c.regressions.is_empty() {
        let _ = writeln!(o, "No regressions against the baseline.\n");
    } else {
        let _ = writeln!(
            o,
            "**{} regression{} against the baseline.**\n",
            c.regressions.len(),
            if c.regressions.len() == 1 { "" } else { "s" }
        );
    }

    o.push_str("| run | scenario | seed | started | duration | devices | verdict |\n");
    o.push_str("| --- | --- | ---: | --- | ---: | ---: | --- |\n");
    for (i, r) in c.runs.iter().enumerate() {
        let _ = writeln!(
            o,
            "| `{}`{} | {} | {} | {} | {} s | {} | {} |",
            cell(&r.label),
            if i == 0 { " (baseline)" } else { "" },
            cell(&r.scenario),
            r.seed,
            cell(&r.started_at),
            crate::report::markdown::number(r.duration_s),
            r.devices,
            r.verdict.as_str()
        );
    }
    o.push('\n');

    if !c.regressions.is_empty() {
        let _ = writeln!(o, "## Regressions against the baseline\n");
        for g in &c.regressions {
            let _ = writeln!(
                o,
                "- `{}` {}: {} {} → {} ({}{})",
                cell(&c.runs[g.run].label),
                g.population.label(),
                g.figure.name,
                show(Some(g.baseline)),
                show(Some(g.later)),
                g.describe(),
                match g.origin {
                    super::Origin::Flag => format!("; --threshold {}={}", g.figure.name, g.limit),
                    super::Origin::Default => String::new(),
                }
            );
        }
        o.push('\n');
    }

    for t in &c.tables {
        population(&mut o, c, t);
    }

    let mut notes = vec![
        "Rows not measured in any run are left out (`--format json` lists every figure).".into(),
        "Defaults: counts and rates worse by more than 10 % or at all from 0, durations \
         worse by more than 20 % and 20 ms; `–` in the threshold column: shown, not judged."
            .to_string(),
    ];
    if !c.thresholds.0.is_empty() {
        let given: Vec<String> = c.thresholds.0.iter().map(|t| format!("`{t}`")).collect();
        notes.push(format!("Thresholds given: {}.", given.join(", ")));
    }
    if !c.not_in_all.is_empty() {
        notes.push(format!(
            "Not compared (not in every run): {}.",
            c.not_in_all
                .iter()
                .map(|p| cell(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for n in notes {
        let _ = writeln!(o, "{n}\n");
    }
    o
}

fn population(o: &mut String, c: &Comparison, t: &Table) {
    let regressed = c
        .regressions
        .iter()
        .filter(|g| g.population == t.population)
        .count();
    let folded = matches!(t.population, Population::Profile(_));
    if folded {
        let _ = writeln!(
            o,
            "<details{}><summary><b>{}</b>: {}</summary>\n",
            if regressed > 0 { " open" } else { "" },
            cell(&t.population.label()),
            match regressed {
                0 => "no regression".to_string(),
                1 => "1 regression".to_string(),
                n => format!("{n} regressions"),
            }
        );
    } else {
        let _ = writeln!(o, "## {}\n", t.population.label());
    }
    o.push_str("| figure |");
    for (i, run) in c.runs.iter().enumerate() {
        let _ = write!(
            o,
            " {}{} |",
            cell(&run.label),
            if i == 0 { " (baseline)" } else { "" }
        );
    }
    o.push_str(" threshold |\n| --- |");
    for _ in &c.runs {
        o.push_str(" ---: |");
    }
    o.push_str(" --- |\n");
    for row in t
        .rows
        .iter()
        .filter(|r| r.values.iter().any(Option::is_some))
    {
        line(o, c, t, row);
    }
    o.push('\n');
    if folded {
        o.push_str("</details>\n\n");
    }
}

fn line(o: &mut String, c: &Comparison, t: &Table, row: &Row) {
    let _ = write!(o, "| {} |", cell(&row.figure.name));
    for (i, v) in row.values.iter().enumerate() {
        let regressed = c.regressions.iter().any(|g| {
            g.run == i && g.population == t.population && g.figure.name == row.figure.name
        });
        if regressed {
            let _ = write!(o, " **{}** ▲ |", show(*v));
        } else {
            let _ = write!(o, " {} |", show(*v));
        }
    }
    let limit = match row.limit {
        None => "–".to_string(),
        Some((l, super::Origin::Default)) => l.to_string(),
        Some((l, super::Origin::Flag)) => format!("{l} (flag)"),
    };
    let _ = writeln!(o, " {} |", cell(&limit));
}

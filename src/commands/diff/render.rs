//! The text table of a diff: one row per difference, hashes shortened, metrics with deltas.

use serde_json::Value;

use super::Report;

pub(super) fn render(report: &Report) -> String {
    let mut lines: Vec<[String; 5]> = vec![[
        "stage".into(),
        "what".into(),
        format!("A ({})", short_name(&report.a.name)),
        format!("B ({})", short_name(&report.b.name)),
        "change".into(),
    ]];
    let mut notes = Vec::new();
    for s in &report.stages {
        if let Some(side) = s.only_in {
            lines.push([
                s.stage.clone(),
                format!("only in {}", side.to_uppercase()),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        }
        for side in &s.unknown_params {
            notes.push(format!(
                "note: stage `{}`: params and inputs of {} are unknown here (its fingerprint is not in this workspace's registry)",
                s.stage,
                side.to_uppercase()
            ));
        }
        for r in &s.rows {
            let what = if r.key.is_empty() {
                r.what.to_string()
            } else {
                format!("{} {}", r.what, r.key)
            };
            let change = match (r.delta, r.relative) {
                (Some(d), Some(rel)) => format!("{d:+.4} ({:+.1}%)", rel * 100.0),
                (Some(d), None) => format!("{d:+.4}"),
                _ if r.changed => String::new(),
                _ => "=".to_string(),
            };
            lines.push([
                s.stage.clone(),
                what,
                cell(&r.a, r.what),
                cell(&r.b, r.what),
                change,
            ]);
        }
    }
    let mut out = String::new();
    if lines.len() == 1 {
        out.push_str(&format!(
            "no differences between {} `{}` and {} `{}`\n",
            report.a.kind, report.a.name, report.b.kind, report.b.name
        ));
    } else {
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for l in &lines {
            let text = (0..5)
                .map(|i| format!("{:w$}", l[i], w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ");
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

fn short_name(name: &str) -> String {
    if name.chars().count() > 40 {
        let tail: String = name
            .chars()
            .rev()
            .take(39)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        name.to_string()
    }
}

/// A value as shown in the table: hashes shortened, metrics with 4 decimals, absent as `-`.
fn cell(v: &Value, what: &str) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) if matches!(what, "fingerprint" | "digest" | "input") => {
            s.get(..12).unwrap_or(s).to_string()
        }
        Value::String(s) => s.clone(),
        Value::Number(n) if what == "metric" => n
            .as_f64()
            .map(|f| format!("{f:.4}"))
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

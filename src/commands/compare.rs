//! `binarylm compare`: the metrics of several artifacts side by side — one row per metric, one
//! column per stage, each value with its standard error when the stage recorded one
//! (`<metric>_stderr`, as eval stages do) and its change from the first column; with `--plot`,
//! their training curves overlaid ([`super::curves`]).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{CompareArgs, GlobalArgs};
use crate::error::CliError;
use crate::workspace;

/// Suffix of the metric that holds another metric's standard error.
const STDERR: &str = "_stderr";

#[derive(Debug, Serialize)]
struct Column {
    /// As typed: a stage name or a digest prefix.
    target: String,
    stage: Option<String>,
    kind: Option<String>,
    digest: registry::Digest,
}

#[derive(Debug, Serialize, PartialEq)]
struct Cell {
    value: f64,
    stderr: Option<f64>,
    /// value − the first column's value (none in the first column, or when it lacks the metric).
    delta: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Comparison {
    columns: Vec<Column>,
    /// metric → one cell per column (none where that artifact has no such metric).
    metrics: BTreeMap<String, Vec<Option<Cell>>>,
}

pub fn compare(args: &CompareArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    if args.targets.len() < 2 {
        return Err(CliError::input(
            "compare needs at least two stages or digests\nhint: binarylm compare base sft",
        ));
    }
    let (manifest, ws) =
        workspace::optional_manifest(args.manifest.as_deref(), g.workspace.as_deref())?;
    let opened = workspace::open(&ws, g.quiet)?;
    let mut columns = Vec::new();
    let mut metrics = Vec::new();
    let mut curves = Vec::new();
    for target in &args.targets {
        let resolved = match &manifest {
            Some(m) => opened
                .registry
                .resolve_in(&m.path.to_string_lossy(), target),
            None => opened.registry.resolve(target),
        }
        .map_err(|e| CliError::input(crate::error::chain(&e)))?;
        let result = resolved.result.as_ref();
        columns.push(Column {
            target: target.clone(),
            stage: result.map(|r| r.stage.clone()),
            kind: result.map(|r| r.kind.clone()),
            digest: resolved.digest.clone(),
        });
        metrics.push(result.map(|r| r.metrics.clone()).unwrap_or_default());
        let curve_file = resolved.path.join(pipelines::artifacts::METRICS_FILE);
        if args.plot.is_some() && curve_file.is_file() {
            let points = pipelines::artifacts::read_curve(&curve_file)
                .map_err(|e| CliError::failure(format!("reading the curve of `{target}`: {e}")))?;
            curves.push(super::curves::Curve {
                label: target.clone(),
                points,
            });
        }
    }
    if let Some(svg) = &args.plot {
        if curves.is_empty() {
            return Err(
                CliError::input("none of these artifacts has a training curve").with_hint(
                    "pretrain, sft and dpo stages record one; compare those with --plot",
                ),
            );
        }
        super::curves::plot(&curves, svg).map_err(CliError::failure)?;
        if !g.quiet {
            eprintln!(
                "wrote the training curves of {} to {}",
                curves
                    .iter()
                    .map(|c| c.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                svg.display()
            );
        }
    }
    let comparison = Comparison {
        columns,
        metrics: table(&metrics, args.all),
    };
    if args.json {
        super::print_json(&comparison)?;
    } else {
        print_table(&comparison);
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows of the comparison. Without `all`, only metrics at least two columns share (what can be
/// compared); standard errors are folded into their metric's cells.
fn table(columns: &[BTreeMap<String, f64>], all: bool) -> BTreeMap<String, Vec<Option<Cell>>> {
    let names: BTreeSet<&String> = columns
        .iter()
        .flat_map(|m| m.keys())
        .filter(|k| !k.ends_with(STDERR))
        .collect();
    let mut rows = BTreeMap::new();
    for name in names {
        let present = columns.iter().filter(|m| m.contains_key(name)).count();
        if !all && present < 2 {
            continue;
        }
        let first = columns[0].get(name).copied();
        let cells = columns
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.get(name).map(|&value| Cell {
                    value,
                    stderr: m.get(&format!("{name}{STDERR}")).copied(),
                    delta: first.filter(|_| i > 0).map(|f| value - f),
                })
            })
            .collect();
        rows.insert(name.clone(), cells);
    }
    rows
}

fn print_table(c: &Comparison) {
    let header: Vec<String> = std::iter::once("metric".to_string())
        .chain(c.columns.iter().map(|col| {
            let short = &col.digest[..col.digest.len().min(12)];
            match &col.stage {
                Some(stage) if *stage == col.target => format!("{stage} ({short})"),
                Some(stage) => format!("{} = {stage} ({short})", col.target),
                None => col.target.clone(),
            }
        }))
        .collect();
    let rows: Vec<Vec<String>> = c
        .metrics
        .iter()
        .map(|(name, cells)| {
            std::iter::once(name.clone())
                .chain(cells.iter().map(|cell| match cell {
                    None => "–".to_string(),
                    Some(cell) => {
                        let mut s = format_value(cell.value);
                        if let Some(se) = cell.stderr {
                            s.push_str(&format!(" ± {}", format_value(se)));
                        }
                        if let Some(d) = cell.delta {
                            s.push_str(&format!(
                                " ({}{})",
                                if d >= 0.0 { "+" } else { "" },
                                format_value(d)
                            ));
                        }
                        s
                    }
                }))
                .collect()
        })
        .collect();
    if rows.is_empty() {
        println!("no metric is shared by two of these artifacts (--all lists every metric)");
        return;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(header[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&header));
    for r in &rows {
        println!("{}", line(r));
    }
}

fn format_value(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_values_with_stderrs_and_deltas() {
        let a = BTreeMap::from([
            ("m/t/acc".to_string(), 0.5),
            ("m/t/acc_stderr".to_string(), 0.05),
            ("only_a".to_string(), 1.0),
        ]);
        let b = BTreeMap::from([("m/t/acc".to_string(), 0.75), ("only_b".to_string(), 2.0)]);
        let rows = table(&[a.clone(), b.clone()], false);
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["m/t/acc"]);
        assert_eq!(
            rows["m/t/acc"],
            vec![
                Some(Cell {
                    value: 0.5,
                    stderr: Some(0.05),
                    delta: None
                }),
                Some(Cell {
                    value: 0.75,
                    stderr: None,
                    delta: Some(0.25)
                }),
            ]
        );
        let all = table(&[a, b], true);
        assert_eq!(all.len(), 3);
        assert_eq!(all["only_b"][0], None);
        assert_eq!(
            all["only_b"][1],
            Some(Cell {
                value: 2.0,
                stderr: None,
                delta: None
            })
        );
    }
}

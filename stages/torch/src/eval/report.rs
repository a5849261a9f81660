//! The eval chart: the accuracies of each model with their error bars, as an SVG (the Markdown
//! table is `EvalResults::markdown`, which `binarylm show` prints too).

use std::path::Path;

use pipelines::artifacts::EvalResults;
use plotters::prelude::*;

/// Metrics the chart draws: fractions in [0, 1], comparable on one axis.
const CHARTED: &[&str] = &["acc", "acc_norm"];

/// One bar per model for each (task, accuracy metric), with ±1 standard error whiskers. With
/// no accuracy to draw (perplexity tasks only), bits per byte instead, on its own scale.
pub fn chart(r: &EvalResults, path: &Path) -> Result<(), String> {
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut metric_names: Vec<&str> = CHARTED.to_vec();
    let collect = |names: &[&str], groups: &mut Vec<(String, Vec<(f64, f64)>)>| {
        for t in &r.tasks {
            for name in names {
                let bars: Vec<(f64, f64)> = t
                    .scores
                    .iter()
                    .filter_map(|s| s.metrics.get(*name).map(|v| (v.value, v.stderr)))
                    .collect();
                if bars.len() == r.models.len() && !bars.is_empty() {
                    groups.push((format!("{} {name}", t.name), bars));
                }
            }
        }
    };
    collect(CHARTED, &mut groups);
    if groups.is_empty() {
        metric_names = vec!["bits_per_byte"];
        collect(&metric_names, &mut groups);
    }
    let top = if metric_names == CHARTED {
        1.0
    } else {
        groups
            .iter()
            .flat_map(|g| g.1.iter().map(|(v, e)| v + e))
            .fold(0.0, f64::max)
            * 1.1
    };
    let n_models = r.models.len().max(1);
    let width = (groups.len() * (n_models + 1)).max(1) as f64;

    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(metric_names.join(" / "), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..width, 0.0..top.max(1e-9))
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    let per_group = (n_models + 1) as f64;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len().max(1))
        .x_label_formatter(&|x| {
            let i = (x / per_group).floor() as usize;
            labels.get(i).cloned().unwrap_or_default()
        })
        .y_desc(metric_names.join(", "))
        .draw()
        .map_err(|e| err(&e))?;
    for (m, model) in r.models.iter().enumerate() {
        let color = Palette99::pick(m).to_rgba();
        let bars: Vec<(f64, f64, f64)> = groups
            .iter()
            .enumerate()
            .map(|(g, (_, bars))| (g as f64 * per_group + m as f64 + 0.5, bars[m].0, bars[m].1))
            .collect();
        chart
            .draw_series(
                bars.iter().map(|&(x, v, _)| {
                    Rectangle::new([(x - 0.45, 0.0), (x + 0.45, v)], color.filled())
                }),
            )
            .map_err(|e| err(&e))?
            .label(model.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(
                bars.iter().map(|&(x, v, e)| {
                    PathElement::new(vec![(x, (v - e).max(0.0)), (x, v + e)], BLACK)
                }),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pipelines::artifacts::{EvalTaskResult, ModelScores, Score};

    use super::*;

    fn results() -> EvalResults {
        let scores = |model: &str, acc: f64| ModelScores {
            model: model.into(),
            metrics: BTreeMap::from([
                (
                    "acc".to_string(),
                    Score {
                        value: acc,
                        stderr: 0.05,
                    },
                ),
                (
                    "acc_norm".to_string(),
                    Score {
                        value: acc,
                        stderr: 0.05,
                    },
                ),
            ]),
        };
        EvalResults {
            format: 1,
            models: vec!["base".into(), "sft".into()],
            tasks: vec![EvalTaskResult {
                name: "stories".into(),
                task: "choice".into(),
                items: 40,
                shots: 2,
                scores: vec![scores("base", 0.5), scores("sft", 0.825)],
            }],
        }
    }

    #[test]
    fn chart_draws_a_bar_per_model_and_metric() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        chart(&results(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("sft") && svg.contains("base"), "legend");
        // 2 models × 2 metrics bars (+ the legend's 2 swatches), all filled rectangles.
        assert!(svg.matches("<rect").count() >= 6, "{svg}");
    }
}

//! `compare --plot`: the training curves of several artifacts overlaid in one SVG, so runs with
//! different settings can be judged by eye — where one pulls ahead, whether one overfits (its
//! validation loss turns up while its training loss keeps falling).

use std::path::Path;

use pipelines::artifacts::CurvePoint;
use plotters::prelude::*;

/// One artifact's curve, under the name the user typed for it.
pub struct Curve {
    pub label: String,
    pub points: Vec<CurvePoint>,
}

/// (step, loss) pairs of one line.
type Points = Vec<(f64, f64)>;

/// Distinct colours for up to eight runs (then they repeat).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Draws every curve's training loss (thin line) and validation loss (thick line with dots)
/// against the step into the SVG `path`. Needs at least one logged loss.
pub fn plot(curves: &[Curve], path: &Path) -> Result<(), String> {
    let series: Vec<(&str, Points, Points)> = curves
        .iter()
        .map(|c| {
            let pick = |f: fn(&CurvePoint) -> Option<f64>| {
                c.points
                    .iter()
                    .filter_map(|p| f(p).filter(|v| v.is_finite()).map(|v| (p.step as f64, v)))
                    .collect::<Vec<_>>()
            };
            (c.label.as_str(), pick(|p| p.loss), pick(|p| p.val_loss))
        })
        .collect();
    let all = || series.iter().flat_map(|(_, t, v)| t.iter().chain(v));
    if all().next().is_none() {
        return Err("none of the artifacts logged a loss".into());
    }
    let max_step = all().map(|p| p.0).fold(1.0, f64::max);
    let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-3);

    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("loss by step", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..max_step, (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy (nats)")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (label, train, val)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if !train.is_empty() {
            chart
                .draw_series(LineSeries::new(train.iter().copied(), colour.mix(0.6)))
                .map_err(|e| err(&e))?
                .label(format!("{label} train"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.mix(0.6)));
        }
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val.iter().copied(), colour.stroke_width(3)))
                .map_err(|e| err(&e))?
                .label(format!("{label} val"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(3))
                });
            chart
                .draw_series(val.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| err(&e))?;
        }
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
    use super::*;

    fn point(step: u64, loss: f64, val: Option<f64>) -> CurvePoint {
        CurvePoint {
            step,
            loss: Some(loss),
            lr: None,
            grad_norm: None,
            val_loss: val,
            val_ppl: None,
            tokens: step * 100,
            extra: Default::default(),
        }
    }

    #[test]
    fn draws_one_line_per_run_and_refuses_curves_without_losses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svg = dir.path().join("curves.svg");
        let curves = vec![
            Curve {
                label: "base".into(),
                points: (1..=5)
                    .map(|s| point(s, 3.0 - s as f64 * 0.2, None))
                    .collect(),
            },
            Curve {
                label: "longer".into(),
                points: (1..=9)
                    .map(|s| point(s, 3.0 - s as f64 * 0.25, (s % 3 == 0).then_some(2.5)))
                    .collect(),
            },
        ];
        plot(&curves, &svg).expect("plot");
        let text = std::fs::read_to_string(&svg).expect("svg");
        for label in ["base train", "longer train", "longer val"] {
            assert!(text.contains(label), "{label} missing from the legend");
        }
        assert!(!text.contains("base val"), "base has no validation points");

        let empty = vec![Curve {
            label: "x".into(),
            points: Vec::new(),
        }];
        assert!(plot(&empty, &svg).is_err());
    }
}

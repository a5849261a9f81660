//! The loss curve of a run as an SVG: training loss per logged step and validation loss.

use std::path::Path;

use plotters::prelude::*;

use super::metrics::MetricsLine;

/// Draws `lines` into an SVG at `path`. Needs at least one logged loss.
pub fn loss_curve(lines: &[MetricsLine], path: &Path) -> Result<(), String> {
    let train: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|l| l.loss.map(|v| (l.step as f64, v)))
        .collect();
    let val: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|l| l.val_loss.map(|v| (l.step as f64, v)))
        .collect();
    let all = || train.iter().chain(&val);
    if all().next().is_none() {
        return Err("no loss was logged".to_string());
    }
    let max_step = all().map(|p| p.0).fold(1.0, f64::max);
    let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-3);

    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("loss", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_step, (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy (nats)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(train.iter().copied(), &BLUE))
        .map_err(|e| err(&e))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(LineSeries::new(val.iter().copied(), RED.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("val")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

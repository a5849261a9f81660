//! `binarylm diff A B`: two runs or two lockfiles, stage by stage — the params, inputs and
//! metrics that differ (like `dvc params diff` and `dvc metrics diff` in one table). This file
//! reads the two sides; `compare` lines them up, `render` prints the table.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use registry::{Lockfile, Registry, StageResult};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{DiffArgs, GlobalArgs};
use crate::error::CliError;
use crate::workspace;

mod compare;
mod render;

use compare::compare;
use render::render;

/// One side's view of a stage.
#[derive(Debug, Default, Clone)]
struct StageView {
    kind: Option<String>,
    fingerprint: Option<String>,
    digest: Option<registry::Digest>,
    /// Flattened params (`train.lr`), when the registry knows the fingerprint.
    params: Option<BTreeMap<String, Value>>,
    inputs: Option<BTreeMap<String, registry::Digest>>,
    seed: Option<u64>,
    metrics: BTreeMap<String, f64>,
}
/// What A or B is.
#[derive(Debug, Serialize)]
struct Side {
    /// "run" or "lockfile".
    kind: &'static str,
    /// The run id or the lockfile's path.
    name: String,
    #[serde(skip)]
    stages: BTreeMap<String, StageView>,
}
#[derive(Debug, Serialize)]
struct Row {
    /// "kind", "fingerprint", "digest", "param", "input", "seed" or "metric".
    what: &'static str,
    /// The param, input or metric name; empty for the others.
    key: String,
    a: Value,
    b: Value,
    changed: bool,
    /// Metrics only: b - a and (b - a) / |a|.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relative: Option<f64>,
}
#[derive(Debug, Serialize)]
struct StageDiff {
    stage: String,
    /// "a" or "b" when the stage is only on that side.
    #[serde(skip_serializing_if = "Option::is_none")]
    only_in: Option<&'static str>,
    /// Params and inputs were unknown on a side (a lockfile stage this registry never saw).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unknown_params: Vec<&'static str>,
    rows: Vec<Row>,
}
#[derive(Debug, Serialize)]
struct Report {
    a: Side,
    b: Side,
    stages: Vec<StageDiff>,
}
pub fn diff(args: &DiffArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let needs_registry = !(is_file(&args.a) && is_file(&args.b));
    // Lockfiles alone need no workspace, but one (when there is one) adds params and inputs.
    let ws = match workspace::find_workspace(g.workspace.as_deref()) {
        Ok(ws) => Some(ws),
        Err(e) if needs_registry => return Err(e),
        Err(_) => None,
    };
    let opened = match &ws {
        Some(ws) => Some(workspace::open(ws, g.quiet)?),
        None => None,
    };
    let registry = opened.as_ref().map(|o| o.registry.as_ref());
    let a = side(&args.a, registry)?;
    let b = side(&args.b, registry)?;
    let stages = compare(&a, &b, args.all);
    let report = Report { a, b, stages };
    if args.json {
        super::print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn is_file(s: &str) -> bool {
    Path::new(s).is_file()
}

/// A lockfile (an existing file) or a run id (or a unique prefix of one).
fn side(spec: &str, registry: Option<&Registry>) -> Result<Side, CliError> {
    if is_file(spec) {
        let lock = Lockfile::read(Path::new(spec))?
            .ok_or_else(|| CliError::input(format!("cannot read lockfile `{spec}`")))?;
        let stages = lock
            .stages
            .into_iter()
            .map(|(name, l)| {
                let mut view = registry
                    .and_then(|r| r.result_record(&l.fingerprint).ok().flatten())
                    .map(|r| view_of(&r))
                    .unwrap_or_default();
                view.kind = Some(l.kind);
                view.fingerprint = Some(l.fingerprint);
                view.digest = Some(l.digest);
                // The lockfile's metrics are what it recorded; they win over the registry's.
                if !l.metrics.is_empty() || view.metrics.is_empty() {
                    view.metrics = l.metrics;
                }
                (name, view)
            })
            .collect();
        return Ok(Side {
            kind: "lockfile",
            name: spec.to_string(),
            stages,
        });
    }
    let Some(registry) = registry else {
        return Err(not_found(spec));
    };
    let runs = registry.runs()?;
    let matching: Vec<_> = runs.iter().filter(|r| r.id.starts_with(spec)).collect();
    let run = match matching.as_slice() {
        [one] => *one,
        [] => return Err(not_found(spec)),
        many => match many.iter().find(|r| r.id == spec) {
            Some(exact) => *exact,
            None => {
                return Err(CliError::input(format!(
                    "`{spec}` matches {} runs ({}…)",
                    many.len(),
                    many.iter()
                        .take(3)
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_hint("give more characters of the run id"))
            }
        },
    };
    let mut stages = BTreeMap::new();
    for o in &run.outcomes {
        let mut view = match &o.fingerprint {
            Some(fp) => registry
                .result_record(fp)?
                .map(|r| view_of(&r))
                .unwrap_or_default(),
            None => StageView::default(),
        };
        view.fingerprint = o.fingerprint.clone();
        view.digest = o.digest.clone();
        stages.insert(o.stage.clone(), view);
    }
    Ok(Side {
        kind: "run",
        name: run.id.clone(),
        stages,
    })
}

fn not_found(spec: &str) -> CliError {
    CliError::input(format!(
        "`{spec}` is neither a lockfile nor a run of this workspace"
    ))
    .with_hint("give a path to a pipeline.lock, or a run id (`binarylm runs` lists them)")
}

fn view_of(r: &StageResult) -> StageView {
    let fi = &r.fingerprint_input;
    let mut params = BTreeMap::new();
    flatten("", fi.get("params").unwrap_or(&Value::Null), &mut params);
    StageView {
        kind: Some(r.kind.clone()),
        fingerprint: Some(r.fingerprint.clone()),
        digest: Some(r.digest.clone()),
        params: Some(params),
        inputs: Some(r.inputs.clone()),
        seed: fi.get("seed").and_then(Value::as_u64),
        metrics: r.metrics.clone(),
    }
}

/// `{"train": {"lr": 1}}` → `train.lr = 1`; lists as `sources[0].path`.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::Null if prefix.is_empty() => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(lr: f64, loss: f64, tok: &str) -> StageView {
        StageView {
            kind: Some("pretrain".into()),
            fingerprint: Some(format!("fp{lr}")),
            digest: Some(registry::Digest::from_hash(blake3::hash(b"d"))),
            params: Some(BTreeMap::from([
                ("train.lr".to_string(), Value::from(lr)),
                ("train.steps".to_string(), Value::from(30)),
            ])),
            inputs: Some(BTreeMap::from([(
                "tok".to_string(),
                registry::Digest::from_hash(blake3::hash(tok.as_bytes())),
            )])),
            seed: Some(5),
            metrics: BTreeMap::from([("val_loss".to_string(), loss)]),
        }
    }

    fn side(stages: Vec<(&str, StageView)>) -> Side {
        Side {
            kind: "run",
            name: "r".into(),
            stages: stages
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
        }
    }

    #[test]
    fn lists_changed_params_inputs_and_metrics_only() {
        let a = side(vec![
            ("base", view(0.01, 2.0, "t1")),
            ("gone", view(1.0, 1.0, "t")),
        ]);
        let b = side(vec![
            ("base", view(0.02, 1.5, "t1")),
            ("new", view(1.0, 1.0, "t")),
        ]);
        let diffs = compare(&a, &b, false);
        let base = diffs.iter().find(|d| d.stage == "base").expect("base");
        let whats: Vec<(&str, &str)> = base.rows.iter().map(|r| (r.what, r.key.as_str())).collect();
        assert_eq!(
            whats,
            [
                ("param", "train.lr"),
                ("fingerprint", ""),
                ("metric", "val_loss")
            ]
        );
        let metric = &base.rows[2];
        assert_eq!(metric.delta, Some(-0.5));
        assert_eq!(metric.relative, Some(-0.25));
        assert_eq!(
            diffs
                .iter()
                .find(|d| d.stage == "gone")
                .and_then(|d| d.only_in),
            Some("a")
        );
        assert_eq!(
            diffs
                .iter()
                .find(|d| d.stage == "new")
                .and_then(|d| d.only_in),
            Some("b")
        );
        let text = render(&Report {
            a,
            b,
            stages: diffs,
        });
        assert!(text.contains("param train.lr"), "{text}");
        assert!(text.contains("-0.5000 (-25.0%)"), "{text}");
        assert!(!text.contains("train.steps"), "{text}");
    }

    #[test]
    fn flattens_nested_params() {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &serde_json::json!({"a": {"b": 1, "c": [true, {"d": "x"}]}, "e": {}}),
            &mut out,
        );
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a.b", "a.c[0]", "a.c[1].d", "e"]);
    }
}

//! Lining two sides up, stage by stage: the rows that differ (or all of them, with `--all`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Row, Side, StageDiff, StageView};

pub(super) fn compare(a: &Side, b: &Side, all: bool) -> Vec<StageDiff> {
    let mut names: Vec<&String> = a.stages.keys().chain(b.stages.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (va, vb) = (a.stages.get(name), b.stages.get(name));
        let (va, vb, only_in) = match (va, vb) {
            (Some(x), Some(y)) => (x.clone(), y.clone(), None),
            (Some(x), None) => (x.clone(), StageView::default(), Some("a")),
            (None, Some(y)) => (StageView::default(), y.clone(), Some("b")),
            (None, None) => continue,
        };
        let mut rows = Vec::new();
        let mut push = |what: &'static str, key: &str, x: Value, y: Value| {
            let changed = x != y;
            let (delta, relative) = match (what, x.as_f64(), y.as_f64()) {
                ("metric", Some(x), Some(y)) if changed => {
                    (Some(y - x), (x != 0.0).then(|| (y - x) / x.abs()))
                }
                _ => (None, None),
            };
            if changed || all {
                rows.push(Row {
                    what,
                    key: key.to_string(),
                    a: x,
                    b: y,
                    changed,
                    delta,
                    relative,
                });
            }
        };
        let opt = |s: &Option<String>| s.clone().map(Value::String).unwrap_or(Value::Null);
        push("kind", "", opt(&va.kind), opt(&vb.kind));
        if only_in.is_none() {
            let mut unknown = Vec::new();
            if let (Some(pa), Some(pb)) = (&va.params, &vb.params) {
                for key in union(pa.keys(), pb.keys()) {
                    let get =
                        |m: &BTreeMap<String, Value>| m.get(key).cloned().unwrap_or(Value::Null);
                    push("param", key, get(pa), get(pb));
                }
            } else {
                if va.params.is_none() {
                    unknown.push("a");
                }
                if vb.params.is_none() {
                    unknown.push("b");
                }
            }
            if let (Some(ia), Some(ib)) = (&va.inputs, &vb.inputs) {
                for key in union(ia.keys(), ib.keys()) {
                    let get = |m: &BTreeMap<String, registry::Digest>| {
                        m.get(key)
                            .map(|d| Value::String(d.to_string()))
                            .unwrap_or(Value::Null)
                    };
                    push("input", key, get(ia), get(ib));
                }
            }
            if va.seed.is_some() && vb.seed.is_some() {
                push("seed", "", va.seed.into(), vb.seed.into());
            }
            push(
                "fingerprint",
                "",
                opt(&va.fingerprint),
                opt(&vb.fingerprint),
            );
            let digest = |d: &Option<registry::Digest>| {
                d.as_ref().map_or(Value::Null, |d| d.to_string().into())
            };
            push("digest", "", digest(&va.digest), digest(&vb.digest));
            for key in union(va.metrics.keys(), vb.metrics.keys()) {
                let get = |m: &BTreeMap<String, f64>| {
                    m.get(key).copied().map(Value::from).unwrap_or(Value::Null)
                };
                push("metric", key, get(&va.metrics), get(&vb.metrics));
            }
            if !rows.is_empty() || all {
                out.push(StageDiff {
                    stage: name.clone(),
                    only_in,
                    unknown_params: unknown,
                    rows,
                });
            }
        } else {
            out.push(StageDiff {
                stage: name.clone(),
                only_in,
                unknown_params: Vec::new(),
                rows,
            });
        }
    }
    out
}

fn union<'a>(
    a: impl Iterator<Item = &'a String>,
    b: impl Iterator<Item = &'a String>,
) -> Vec<&'a String> {
    let mut keys: Vec<&String> = a.chain(b).collect();
    keys.sort();
    keys.dedup();
    keys
}

//! What `run --locked` checks for each stage, decided from the kind's declared
//! [`Reproducibility`]: identical bytes where they are expected, otherwise the fingerprint plus
//! each declared metric within its tolerance (docs/pipelines.md, "What reproducible means").

use std::collections::{BTreeMap, BTreeSet};

use pipelines::{FingerprintInput, KindInfo, Reproducibility};
use registry::{LockedStage, Lockfile, RanWith};

use crate::plan::short;

/// How a stage's output compared with its lock entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The same bytes as locked.
    Exact,
    /// Different bytes, where different bytes are expected, and every declared metric within
    /// its tolerance. Downstream stages are then checked against the locked digest of this one.
    Tolerated(String),
    /// Not reproduced: what differs, in words.
    Mismatch(String),
}

/// The fingerprint the stage would have had if each upstream stage in `tolerated` had produced
/// its locked output: what the lock's fingerprint is compared with downstream of a stage that
/// reproduced within tolerance (its digest differs, so every fingerprint below it does too).
pub(crate) fn fingerprint_under_lock(
    input: &FingerprintInput,
    lock: &Lockfile,
    tolerated: &BTreeSet<String>,
) -> String {
    let mut locked = input.clone();
    for (name, digest) in locked.inputs.iter_mut() {
        if let Some(entry) = lock.stages.get(name).filter(|_| tolerated.contains(name)) {
            *digest = entry.digest.to_string();
        }
    }
    pipelines::fingerprint(&locked)
}

/// What this run's output of a stage is, next to its lock entry.
pub(crate) struct Reproduced<'a> {
    pub digest: &'a str,
    pub metrics: &'a BTreeMap<String, f64>,
    pub ran_with: Option<&'a RanWith>,
    /// Upstream stages that were accepted within tolerance (so the inputs differ from the
    /// locked ones and identical bytes cannot be expected here either).
    pub tolerated_inputs: Vec<String>,
}

/// Compares a stage's output with its lock entry.
pub(crate) fn check_output(info: &KindInfo, entry: &LockedStage, now: &Reproduced) -> Verdict {
    if now.digest == entry.digest {
        return Verdict::Exact;
    }
    let differs = format!(
        "output {} differs from pipeline.lock ({})",
        short(now.digest),
        short(&entry.digest)
    );
    let tolerances = match info.reproducible {
        Reproducibility::Exact if now.tolerated_inputs.is_empty() => {
            return Verdict::Mismatch(format!(
                "{differs}: `{}` stages give identical bytes for identical inputs, so the stage is not reproducible here",
                info.name
            ));
        }
        Reproducibility::Exact => &[][..],
        Reproducibility::SameMachine(tolerances) => {
            if now.tolerated_inputs.is_empty() {
                if let Some(why) = exactness_expected(entry.ran_with.as_ref(), now.ran_with) {
                    return Verdict::Mismatch(format!(
                        "{differs}, although {why}: the stage is not reproducible here"
                    ));
                }
            }
            tolerances
        }
    };
    let why = if now.tolerated_inputs.is_empty() {
        format!(
            "ran with {}, locked with {}",
            describe(now.ran_with),
            describe(entry.ran_with.as_ref())
        )
    } else {
        format!(
            "its input {} reproduced within tolerance",
            now.tolerated_inputs.join(", ")
        )
    };
    let mut moved = Vec::new();
    let mut out_of_bounds = Vec::new();
    for t in tolerances {
        let (Some(&locked), Some(&value)) =
            (entry.metrics.get(t.metric), now.metrics.get(t.metric))
        else {
            out_of_bounds.push(format!(
                "{} is missing (locked: {}, now: {}), so the tolerance cannot be checked",
                t.metric,
                show(entry.metrics.get(t.metric)),
                show(now.metrics.get(t.metric))
            ));
            continue;
        };
        let relative = relative_change(locked, value);
        let text = format!(
            "{} {locked:.6} → {value:.6} ({:+.3} %, tolerance ±{} %)",
            t.metric,
            100.0 * relative,
            100.0 * t.relative
        );
        if relative.abs() <= t.relative {
            moved.push(text);
        } else {
            out_of_bounds.push(text);
        }
    }
    if !out_of_bounds.is_empty() {
        return Verdict::Mismatch(format!(
            "{differs} ({why}) and {}",
            out_of_bounds.join("; ")
        ));
    }
    let checked = if moved.is_empty() {
        "no metric declared; fingerprint checked".to_string()
    } else {
        moved.join("; ")
    };
    Verdict::Tolerated(format!("{differs}, as expected ({why}); {checked}"))
}

/// Why identical bytes are expected, when they are: the output was locked on a CPU, and this
/// run used the same device, thread count and libtorch. `None` when anything differs (or the
/// lock predates the record and this run is not on a CPU).
fn exactness_expected(locked: Option<&RanWith>, now: Option<&RanWith>) -> Option<String> {
    let now = now?;
    if !now.device.starts_with("cpu") {
        return None;
    }
    match locked {
        Some(locked) if locked == now => Some(format!("it ran as the locked output did ({now})")),
        Some(_) => None,
        // A lock written before runs recorded this: nothing says the machine differs.
        None => Some("the lock does not say what it ran with".to_string()),
    }
}

fn describe(r: Option<&RanWith>) -> String {
    r.map_or_else(|| "an unrecorded setup".to_string(), |r| r.to_string())
}

fn show(v: Option<&f64>) -> String {
    v.map_or_else(|| "none".to_string(), |v| format!("{v}"))
}

/// (value − locked) / |locked|, or the absolute change when the locked value is zero.
fn relative_change(locked: f64, value: f64) -> f64 {
    if locked == 0.0 {
        value - locked
    } else {
        (value - locked) / locked.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn pretrain() -> &'static KindInfo {
        pipelines::kind_info("pretrain").expect("pretrain")
    }

    fn cpu(threads: usize) -> RanWith {
        RanWith {
            device: "cpu".into(),
            threads: Some(threads),
            libtorch: Some("2.11.0+cpu".into()),
        }
    }

    fn entry(digest: &str, val_loss: f64, ran_with: Option<RanWith>) -> LockedStage {
        LockedStage {
            kind: "pretrain".into(),
            fingerprint: "f".repeat(64),
            digest: registry::Digest::parse(digest).expect("a digest"),
            metrics: BTreeMap::from([("val_loss".to_string(), val_loss)]),
            ran_with,
        }
    }

    fn now<'a>(
        digest: &'a str,
        metrics: &'a BTreeMap<String, f64>,
        ran_with: Option<&'a RanWith>,
    ) -> Reproduced<'a> {
        Reproduced {
            digest,
            metrics,
            ran_with,
            tolerated_inputs: Vec::new(),
        }
    }

    #[test]
    fn same_bytes_are_exact_whatever_the_machine() {
        let m = BTreeMap::new();
        let gpu = RanWith {
            device: "cuda:0".into(),
            threads: Some(8),
            libtorch: None,
        };
        let e = entry(AA, 1.0, Some(cpu(2)));
        assert_eq!(
            check_output(pretrain(), &e, &now(AA, &m, Some(&gpu))),
            Verdict::Exact
        );
    }

    #[test]
    fn same_cpu_setup_expects_identical_bytes() {
        let m = BTreeMap::from([("val_loss".to_string(), 1.0)]);
        let e = entry(AA, 1.0, Some(cpu(2)));
        let v = check_output(pretrain(), &e, &now(BB, &m, Some(&cpu(2))));
        let Verdict::Mismatch(msg) = v else {
            panic!("{v:?}")
        };
        assert!(
            msg.contains("it ran as the locked output did (cpu, 2 threads"),
            "{msg}"
        );
    }

    #[test]
    fn another_thread_count_checks_the_metric_within_tolerance() {
        let e = entry(AA, 2.0, Some(cpu(2)));
        let close = BTreeMap::from([("val_loss".to_string(), 2.01)]);
        let v = check_output(pretrain(), &e, &now(BB, &close, Some(&cpu(4))));
        let Verdict::Tolerated(msg) = v else {
            panic!("{v:?}")
        };
        assert!(msg.contains("ran with cpu, 4 threads"), "{msg}");
        assert!(
            msg.contains("val_loss 2.000000 → 2.010000 (+0.500 %, tolerance ±1 %)"),
            "{msg}"
        );

        let far = BTreeMap::from([("val_loss".to_string(), 2.1)]);
        let v = check_output(pretrain(), &e, &now(BB, &far, Some(&cpu(4))));
        let Verdict::Mismatch(msg) = v else {
            panic!("{v:?}")
        };
        assert!(msg.contains("(+5.000 %, tolerance ±1 %)"), "{msg}");

        let none = BTreeMap::new();
        let v = check_output(pretrain(), &e, &now(BB, &none, Some(&cpu(4))));
        assert!(
            matches!(v, Verdict::Mismatch(ref m) if m.contains("val_loss is missing")),
            "{v:?}"
        );
    }

    #[test]
    fn exact_kinds_never_tolerate_on_their_own() {
        let info = pipelines::kind_info("tokenizer").expect("tokenizer");
        let m = BTreeMap::new();
        let e = entry(AA, 1.0, Some(cpu(2)));
        let v = check_output(info, &e, &now(BB, &m, Some(&cpu(4))));
        assert!(
            matches!(v, Verdict::Mismatch(ref m) if m.contains("identical bytes for identical inputs")),
            "{v:?}"
        );
        // Downstream of a tolerated stage, its inputs differ: the fingerprint is what counts.
        let four = cpu(4);
        let mut r = now(BB, &m, Some(&four));
        r.tolerated_inputs = vec!["base".into()];
        let v = check_output(info, &e, &r);
        assert!(
            matches!(v, Verdict::Tolerated(ref m) if m.contains("its input base reproduced within tolerance")),
            "{v:?}"
        );
    }

    #[test]
    fn downstream_fingerprints_use_the_locked_digest_of_tolerated_inputs() {
        let mut lock = Lockfile::new("p");
        lock.stages
            .insert("base".into(), entry(&"1".repeat(64), 1.0, None));
        let input = FingerprintInput {
            kind: "deploy".into(),
            impl_version: 1,
            params: serde_json::json!({}),
            seed: 1,
            inputs: BTreeMap::from([("base".to_string(), "2".repeat(64))]),
            deps: BTreeMap::new(),
        };
        let mut as_locked = input.clone();
        as_locked.inputs.insert("base".into(), "1".repeat(64));
        let tolerated = BTreeSet::from(["base".to_string()]);
        assert_eq!(
            fingerprint_under_lock(&input, &lock, &tolerated),
            pipelines::fingerprint(&as_locked)
        );
        assert_eq!(
            fingerprint_under_lock(&input, &lock, &BTreeSet::new()),
            pipelines::fingerprint(&input)
        );
    }
}

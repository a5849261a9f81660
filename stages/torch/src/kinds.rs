//! The stage kinds `binarylm-torch run-stage` carries out: one line in [`TORCH_KINDS`] for each
//! kind whose descriptor (`pipelines::KindInfo`) says `runner: Runner::Torch`. The job file
//! brings the params already typed; the kind's run function gets its own params struct.

use std::collections::BTreeMap;

use pipelines::{
    DeployParams, DpoParams, EvalParams, ExportParams, PretrainParams, QuantizeParams, SftParams,
    TorchJob,
};

use crate::train::Observer;
use crate::{deploy, dpo, eval, export, pretrain, quantize, sft};

/// What a finished torch stage reports to `binarylm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub metrics: BTreeMap<String, f64>,
    /// The device the work ran on (`cpu`, `cuda:0`).
    pub device: String,
}

/// A failed torch stage's error, with its cause chain intact.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

/// How `binarylm-torch` runs one kind.
pub struct TorchKind {
    pub name: &'static str,
    pub run: fn(&TorchJob, &dyn Observer) -> Result<Finished, RunError>,
}

/// Every kind this executable runs.
pub static TORCH_KINDS: &[TorchKind] = &[
    TorchKind {
        name: "pretrain",
        run: run_pretrain,
    },
    TorchKind {
        name: "sft",
        run: run_sft,
    },
    TorchKind {
        name: "dpo",
        run: run_dpo,
    },
    TorchKind {
        name: "deploy",
        run: run_deploy,
    },
    TorchKind {
        name: "eval",
        run: run_eval,
    },
    TorchKind {
        name: "quantize",
        run: run_quantize,
    },
    TorchKind {
        name: "export",
        run: run_export,
    },
];

/// The entry for `kind`, if this build runs it.
pub fn find(kind: &str) -> Option<&'static TorchKind> {
    TORCH_KINDS.iter().find(|k| k.name == kind)
}

/// The job's params as kind `K`'s struct.
fn params<K: 'static>(job: &TorchJob) -> Result<&K, RunError> {
    job.params.get::<K>().ok_or_else(|| {
        format!(
            "the job for stage `{}` carries `{}` params, not `{}` ones",
            job.stage,
            job.params.kind(),
            job.kind
        )
        .into()
    })
}

fn run_pretrain(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let trained = pretrain::run(job, params::<PretrainParams>(job)?, obs)?;
    Ok(Finished {
        metrics: trained.summary.metrics(&trained.run),
        device: trained.device,
    })
}

fn run_sft(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let tuned = sft::run(job, params::<SftParams>(job)?, obs)?;
    Ok(Finished {
        metrics: tuned.summary.metrics(&tuned.run),
        device: tuned.device,
    })
}

fn run_dpo(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let aligned = dpo::run(job, params::<DpoParams>(job)?, obs)?;
    Ok(Finished {
        metrics: aligned.summary.metrics(&aligned.run),
        device: aligned.device,
    })
}

fn run_deploy(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let deployed = deploy::run(job, params::<DeployParams>(job)?, obs)?;
    Ok(Finished {
        metrics: deployed.metrics(),
        device: deployed.device.clone(),
    })
}

fn run_eval(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let evaluated = eval::run(job, params::<EvalParams>(job)?, obs)?;
    Ok(Finished {
        metrics: evaluated.results.metrics(),
        device: evaluated.device,
    })
}

fn run_quantize(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let done = quantize::run(job, params::<QuantizeParams>(job)?, obs)?;
    Ok(Finished {
        metrics: done.metrics,
        device: done.device,
    })
}

fn run_export(job: &TorchJob, obs: &dyn Observer) -> Result<Finished, RunError> {
    let done = export::run(job, params::<ExportParams>(job)?, obs)?;
    Ok(Finished {
        metrics: done.metrics,
        device: done.device,
    })
}

#[cfg(test)]
mod tests {
    use pipelines::Runner;

    /// The table and the descriptors agree: every torch kind of the schema runs here, and
    /// nothing here is missing from the schema.
    #[test]
    fn every_torch_kind_has_an_entry() {
        for info in pipelines::kind_infos().filter(|k| k.runner == Runner::Torch) {
            assert!(
                super::find(info.name).is_some(),
                "no entry for `{}`",
                info.name
            );
        }
        for k in super::TORCH_KINDS {
            let info = pipelines::kind_info(k.name).expect("a kind of the schema");
            assert_eq!(
                info.runner,
                Runner::Torch,
                "`{}` is not a torch kind",
                k.name
            );
        }
    }
}

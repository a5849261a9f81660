//! Checkpoints in the stage's work directory: `checkpoint/` holds `model.safetensors`,
//! `optimizer.safetensors` (AdamW moments) and `state.json` (step, seed, tokens seen, the model
//! and training config).
//!
//! A new checkpoint is written to `checkpoint.tmp/`, then swapped in by renames
//! (`checkpoint` → `checkpoint.old`, `checkpoint.tmp` → `checkpoint`, remove `.old`), so a kill at
//! any moment leaves one complete checkpoint: [`Checkpoint::find`] falls back to `.old`.
//!
//! There is no random-generator state to save: window starts and dropout masks are keyed by
//! `(seed, step)` (see `sampler`), so the step *is* the generator state.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::ModelConfig;
use pipelines::TrainParams;

pub const STATE_FILE: &str = "state.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    pub format: u32,
    /// Optimizer steps completed.
    pub step: u64,
    pub seed: u64,
    /// How window starts and dropout masks are drawn: keyed by (seed, step), no stored state.
    pub rng: String,
    pub tokens_seen: u64,
    /// Training wall time before this checkpoint, seconds.
    pub elapsed_s: f64,
    pub model: ModelConfig,
    pub train: TrainParams,
}

pub const RNG_SCHEME: &str =
    "splitmix64 keyed by (seed, stream, step, micro, row); torch seeded by (seed, step)";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    #[error("{path}: not a valid checkpoint state ({source})")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> CheckpointError {
    move |source| CheckpointError::Io { context, source }
}

pub struct Checkpoint {
    pub dir: PathBuf,
    pub state: CheckpointState,
}

impl Checkpoint {
    /// The newest complete checkpoint under `work_dir`, if any.
    pub fn find(work_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        for name in ["checkpoint", "checkpoint.old"] {
            let dir = work_dir.join(name);
            let state_path = dir.join(STATE_FILE);
            // state.json is written last: its presence means the directory is complete.
            let text = match std::fs::read_to_string(&state_path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(format!("reading {}", state_path.display()))(e)),
            };
            let state = serde_json::from_str(&text).map_err(|source| CheckpointError::State {
                path: state_path.clone(),
                source,
            })?;
            return Ok(Some(Checkpoint { dir, state }));
        }
        Ok(None)
    }

    pub fn optimizer_tensors(&self) -> Result<Vec<(String, Tensor)>, CheckpointError> {
        let path = self.dir.join(OPTIMIZER_FILE);
        Tensor::read_safetensors(&path).map_err(|source| CheckpointError::Torch {
            context: format!("reading {}", path.display()),
            source,
        })
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }
}

/// Writes a checkpoint and swaps it in atomically (see the module docs).
pub fn write(
    work_dir: &Path,
    state: &CheckpointState,
    model: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
) -> Result<(), CheckpointError> {
    let tmp = work_dir.join("checkpoint.tmp");
    let current = work_dir.join("checkpoint");
    let old = work_dir.join("checkpoint.old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(format!("clearing {}", tmp.display())))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    for (file, tensors) in [(MODEL_FILE, model), (OPTIMIZER_FILE, optimizer)] {
        let path = tmp.join(file);
        Tensor::write_safetensors(tensors, &path).map_err(|source| CheckpointError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })?;
        sync(&path)?;
    }
    let state_path = tmp.join(STATE_FILE);
    let text = serde_json::to_string_pretty(state).expect("checkpoint state serializes");
    std::fs::write(&state_path, text).map_err(io(format!("writing {}", state_path.display())))?;
    sync(&state_path)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(format!("removing {}", old.display())))?;
    }
    if current.exists() {
        std::fs::rename(&current, &old).map_err(io(format!("moving {}", current.display())))?;
    }
    std::fs::rename(&tmp, &current).map_err(io(format!("moving {}", tmp.display())))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(format!("removing {}", old.display())))?;
    }
    Ok(())
}

fn sync(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", path.display())))
}

//! Finding the manifest and the workspace, and opening the registry under the workspace lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipelines::Manifest;
use registry::{Registry, WorkspaceLock};

use crate::error::CliError;

/// Name of the workspace directory created beside a manifest.
pub const WORKSPACE_DIR: &str = ".binarylm";

pub fn load_manifest(path: &Path) -> Result<Manifest, CliError> {
    if !path.exists() {
        let mut err = CliError::input(format!("manifest `{}` not found", path.display()));
        if path == Path::new("pipeline.yaml") {
            err = err.with_hint(
                "pass a manifest path (e.g. `binarylm run examples/quickstart/pipeline.yaml`) or cd into a directory with a pipeline.yaml",
            );
        }
        return Err(err);
    }
    pipelines::load(path).map_err(|errors| CliError::input(errors.to_string()))
}

/// The manifest of `binarylm run`/`plan` and the stages named after it (empty: all).
pub fn load_selection(
    arg: &crate::cli::ManifestAndStages,
) -> Result<(Manifest, Vec<String>), CliError> {
    let (path, targets) = arg.manifest_and_targets();
    if let Some(first) = targets.first() {
        if !path.exists() {
            // `binarylm run mypipeline` in the wrong directory: say how the word was read.
            return Err(CliError::input(format!(
                "manifest `{}` not found; `{first}` was read as a stage to run",
                path.display()
            ))
            .with_hint(format!(
                "name the manifest first (`binarylm run path/to/pipeline.yaml {first}`; a manifest's name ends in .yaml or .yml), or cd into the directory that holds pipeline.yaml"
            )));
        }
    }
    Ok((load_manifest(&path)?, targets))
}

/// The workspace of a manifest: `--workspace` when given, else `.binarylm/` beside it.
pub fn workspace_for(manifest: &Manifest, explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(dir) => dir.to_path_buf(),
        None => manifest.dir.join(WORKSPACE_DIR),
    }
}

/// For commands without a manifest: `--workspace`, else `./pipeline.yaml`'s, else the nearest
/// `.binarylm/` in the current directory or its parents.
pub fn find_workspace(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    let cwd =
        std::env::current_dir().map_err(|e| CliError::failure(format!("current dir: {e}")))?;
    let mut dir: Option<&Path> = Some(&cwd);
    while let Some(d) = dir {
        let candidate = d.join(WORKSPACE_DIR);
        if candidate.is_dir() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(CliError::input(format!(
        "no {WORKSPACE_DIR}/ workspace in {} or its parents",
        cwd.display()
    ))
    .with_hint("run a pipeline first (`binarylm run pipeline.yaml`), or pass --workspace DIR"))
}

/// For commands where the manifest is optional (`status`, `show`, `lineage`): the manifest given,
/// else `./pipeline.yaml` when it exists; and the workspace that goes with it (or the nearest
/// one when there is no manifest).
pub fn optional_manifest(
    given: Option<&Path>,
    explicit_workspace: Option<&Path>,
) -> Result<(Option<Manifest>, PathBuf), CliError> {
    let path: Option<PathBuf> = match given {
        Some(p) => Some(p.to_path_buf()),
        None if Path::new("pipeline.yaml").exists() => Some(PathBuf::from("pipeline.yaml")),
        None => None,
    };
    let manifest = match &path {
        Some(p) => Some(load_manifest(p)?),
        None => None,
    };
    let ws = match &manifest {
        Some(m) => workspace_for(m, explicit_workspace),
        None => find_workspace(explicit_workspace)?,
    };
    Ok((manifest, ws))
}

/// An open registry with the workspace lock held for as long as it lives.
pub struct Opened {
    pub registry: Arc<Registry>,
    // Dropped after the registry (fields drop in order).
    _lock: WorkspaceLock,
}

pub fn open(dir: &Path, quiet: bool) -> Result<Opened, CliError> {
    let lock = WorkspaceLock::acquire(dir, || {
        if !quiet {
            let who = WorkspaceLock::holder_pid(dir)
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            eprintln!(
                "waiting for another binarylm process{who} to release the workspace {}…",
                dir.display()
            );
        }
    })?;
    let registry = Registry::open(dir).map_err(|e| {
        CliError::from(e).with_hint("if the registry database is corrupt, `binarylm verify --rebuild` rebuilds it from the store")
    })?;
    Ok(Opened {
        registry: Arc::new(registry),
        _lock: lock,
    })
}

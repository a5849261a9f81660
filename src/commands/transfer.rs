//! `binarylm push` and `binarylm pull`: the stages of a lockfile, to or from a remote cache.

use std::process::ExitCode;

use pipelines::Manifest;
use registry::{LockedStage, Lockfile, StageResult};

use crate::cli::{GlobalArgs, TransferArgs};
use crate::error::CliError;
use crate::workspace;

pub fn push(args: &TransferArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let manifest = workspace::load_manifest(&args.manifest)?;
    let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
    let remote = super::remote::open(args.remote.as_deref(), &ws, &manifest)?;
    let stages = selected(&manifest, &args.stages)?;
    let opened = workspace::open(&ws, g.quiet)?;
    let registry = &opened.registry;
    let mut results = Vec::new();
    for (name, locked) in &stages {
        results.push(local_result(registry, name, locked)?);
    }
    let transfer = block_on(remote::push(&remote, registry, &results, g.quiet))??;
    report(args, g, &remote, &transfer, "pushed", "on the remote")
}

pub fn pull(args: &TransferArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let manifest = workspace::load_manifest(&args.manifest)?;
    let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
    let remote = super::remote::open(args.remote.as_deref(), &ws, &manifest)?;
    let stages = selected(&manifest, &args.stages)?;
    let wanted: Vec<remote::Wanted> = stages
        .iter()
        .map(|(name, locked)| remote::Wanted {
            stage: name.clone(),
            fingerprint: locked.fingerprint.clone(),
            digest: Some(locked.digest.clone()),
        })
        .collect();
    let opened = workspace::open(&ws, g.quiet)?;
    let manifest_key = manifest.path.to_string_lossy().into_owned();
    let transfer = block_on(remote::pull(
        &remote,
        &opened.registry,
        &manifest_key,
        &wanted,
        g.quiet,
    ))??;
    report(args, g, &remote, &transfer, "pulled", "here")
}

fn report(
    args: &TransferArgs,
    g: &GlobalArgs,
    remote: &remote::Remote,
    transfer: &remote::Transfer,
    verb: &str,
    side: &str,
) -> Result<ExitCode, CliError> {
    if args.json {
        super::print_json(&serde_json::json!({
            "remote": remote.name,
            "location": remote.location,
            "objects": transfer.objects,
            "objects_present": transfer.objects_present,
            "files": transfer.files,
            "bytes": transfer.bytes,
            "records": transfer.records,
        }))?;
    }
    if !g.quiet {
        eprintln!(
            "{} — remote `{}` ({})",
            transfer.summary(verb, side),
            remote.name,
            remote.location
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The lockfile's entries for `names` (all when empty), refusing names it does not have.
fn selected(manifest: &Manifest, names: &[String]) -> Result<Vec<(String, LockedStage)>, CliError> {
    let path = runtime::executor::lockfile_path(manifest);
    let lock = Lockfile::read(&path)?.ok_or_else(|| {
        CliError::input(format!("no lockfile at {}", path.display())).with_hint(
            "push and pull move the stages a lockfile records: run the pipeline once \
             (`binarylm run`) to write it, or copy the pipeline.lock you want to reproduce \
             beside the manifest",
        )
    })?;
    if names.is_empty() {
        return Ok(lock.stages.into_iter().collect());
    }
    let mut out = Vec::new();
    for name in names {
        match lock.stages.get(name) {
            Some(entry) => out.push((name.clone(), entry.clone())),
            None => {
                let known: Vec<&str> = lock.stages.keys().map(String::as_str).collect();
                return Err(CliError::input(format!(
                    "stage `{name}` is not in {} (it has: {})",
                    path.display(),
                    known.join(", ")
                ))
                .with_hint("run the pipeline so that the lockfile records the stage"));
            }
        }
    }
    Ok(out)
}

/// This workspace's result for a locked stage; it must be the locked artifact.
fn local_result(
    registry: &registry::Registry,
    name: &str,
    locked: &LockedStage,
) -> Result<StageResult, CliError> {
    let result = registry
        .result_record(&locked.fingerprint)?
        .ok_or_else(|| {
            CliError::failure(format!(
                "stage `{name}`: this workspace has no result for its locked fingerprint {}",
                short(&locked.fingerprint)
            ))
            .with_hint("run the pipeline (`binarylm run`) or pull it first")
        })?;
    if result.digest != locked.digest {
        return Err(CliError::failure(format!(
            "stage `{name}`: pipeline.lock pins artifact {} but this workspace produced {}",
            short(&locked.digest),
            short(&result.digest)
        ))
        .with_hint("run the pipeline to update the lockfile, then push"));
    }
    if !registry.has_object(&result.digest) {
        return Err(CliError::failure(format!(
            "stage `{name}`: its artifact {} is no longer in the store (collected or deleted)",
            short(&result.digest)
        ))
        .with_hint("run the pipeline to recreate it, then push"));
    }
    Ok(result)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Run a transfer on a runtime of its own (the commands are otherwise synchronous).
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("starting the async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

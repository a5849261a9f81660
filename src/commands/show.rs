use std::process::ExitCode;

use registry::{Registry, Resolved};
use serde::Serialize;

use crate::cli::{GlobalArgs, ShowArgs};
use crate::error::CliError;
use crate::workspace;

/// Files listed in the text output (all of them go into `--json`).
const MAX_FILES_SHOWN: usize = 20;

#[derive(Serialize)]
struct FileDoc {
    path: String,
    size: u64,
    blake3: String,
}

#[derive(Serialize)]
struct ShowDoc {
    digest: registry::Digest,
    path: String,
    size: u64,
    created_at: Option<String>,
    stage: Option<String>,
    kind: Option<String>,
    pipeline: Option<String>,
    manifest: Option<String>,
    fingerprint: Option<String>,
    run_id: Option<String>,
    started_at: Option<String>,
    duration_ms: Option<u64>,
    device: Option<String>,
    /// What the output was computed with (device, threads, libtorch).
    ran_with: Option<registry::RanWith>,
    params: serde_json::Value,
    inputs: std::collections::BTreeMap<String, registry::Digest>,
    metrics: std::collections::BTreeMap<String, f64>,
    headline: Option<String>,
    files: Vec<FileDoc>,
}

/// Opens the workspace and resolves a stage name or digest, preferring the current manifest.
pub(crate) fn resolve(
    args: &ShowArgs,
    g: &GlobalArgs,
) -> Result<(workspace::Opened, Resolved), CliError> {
    let (manifest, ws) =
        workspace::optional_manifest(args.manifest.as_deref(), g.workspace.as_deref())?;
    let opened = workspace::open(&ws, g.quiet)?;
    let resolved = match &manifest {
        Some(m) => opened
            .registry
            .resolve_in(&m.path.to_string_lossy(), &args.target),
        None => opened.registry.resolve(&args.target),
    }
    .map_err(|e| CliError::input(crate::error::chain(&e)))?;
    Ok((opened, resolved))
}

fn describe(reg: &Registry, r: &Resolved) -> Result<ShowDoc, CliError> {
    let meta = reg.object_meta(&r.digest)?;
    let res = r.result.as_ref();
    Ok(ShowDoc {
        digest: r.digest.clone(),
        path: r.path.display().to_string(),
        size: meta.as_ref().map_or(0, |m| m.total_size),
        created_at: meta.as_ref().map(|m| m.created_at.clone()),
        stage: res.map(|x| x.stage.clone()),
        kind: res.map(|x| x.kind.clone()),
        pipeline: res.map(|x| x.pipeline.clone()),
        manifest: res.map(|x| x.manifest.clone()),
        fingerprint: res.map(|x| x.fingerprint.clone()),
        run_id: res.map(|x| x.run_id.clone()),
        started_at: res.map(|x| x.started_at.clone()),
        duration_ms: res.map(|x| x.duration_ms),
        device: res.map(|x| x.device.clone()),
        ran_with: res.map(|x| x.ran_with()),
        params: res
            .map(|x| x.fingerprint_input["params"].clone())
            .unwrap_or(serde_json::Value::Null),
        inputs: res.map(|x| x.inputs.clone()).unwrap_or_default(),
        metrics: res.map(|x| x.metrics.clone()).unwrap_or_default(),
        headline: res.and_then(|x| x.headline.clone()),
        files: meta
            .map(|m| {
                m.files
                    .into_iter()
                    .map(|f| FileDoc {
                        path: f.path,
                        size: f.size,
                        blake3: f.blake3,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub fn show(args: &ShowArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (opened, resolved) = resolve(args, g)?;
    let doc = describe(&opened.registry, &resolved)?;
    if args.json {
        super::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("artifact {}", doc.digest);
    println!("  path       {}", doc.path);
    println!("  size       {}", human_bytes(doc.size));
    if let (Some(stage), Some(kind)) = (&doc.stage, &doc.kind) {
        println!(
            "  stage      {stage} (kind {kind}, pipeline {})",
            doc.pipeline.as_deref().unwrap_or("?")
        );
    }
    if let Some(m) = &doc.manifest {
        println!("  manifest   {m}");
    }
    if let Some(run) = &doc.run_id {
        println!(
            "  run        {run}, started {}, took {}",
            doc.started_at.as_deref().unwrap_or("?"),
            runtime::report::format_duration(doc.duration_ms.unwrap_or(0))
        );
    }
    if let Some(r) = &doc.ran_with {
        println!("  ran with   {r}");
    } else if let Some(d) = &doc.device {
        println!("  device     {d}");
    }
    if !doc.params.is_null() {
        println!("  params     {}", doc.params);
    }
    for (name, digest) in &doc.inputs {
        println!("  input      {name} ← {}", runtime::plan::short(digest));
    }
    for (name, value) in &doc.metrics {
        let star = if doc.headline.as_deref() == Some(name) {
            " *"
        } else {
            ""
        };
        println!("  metric     {name} = {value}{star}");
    }
    println!("  files      {}", doc.files.len());
    for f in doc.files.iter().take(MAX_FILES_SHOWN) {
        println!("    {:>10}  {}", human_bytes(f.size), f.path);
    }
    if doc.files.len() > MAX_FILES_SHOWN {
        println!(
            "    … {} more (see --json)",
            doc.files.len() - MAX_FILES_SHOWN
        );
    }
    if let Some(kind) = &doc.kind {
        // The kind's own summary of its files (stats, samples), when it has one.
        match stages::render_artifact(kind, std::path::Path::new(&doc.path)) {
            Some(Ok(text)) => {
                println!();
                print!("{text}");
            }
            Some(Err(e)) => println!("  (no {kind} summary: {e})"),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lineage(args: &ShowArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (opened, resolved) = resolve(args, g)?;
    let tree = opened.registry.lineage(&resolved.digest)?;
    if args.json {
        super::print_json(&tree)?;
    } else {
        let text = tree.to_string();
        println!("{}", text.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

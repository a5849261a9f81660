use std::process::ExitCode;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::error::CliError;
use crate::workspace;

pub fn plan(args: &PlanArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (manifest, targets) = workspace::load_selection(&args.manifest)?;
    // The stages asked for and what they need, as `binarylm run STAGE…` would run them.
    let manifest = if targets.is_empty() {
        manifest
    } else {
        manifest
            .select(&targets)
            .map_err(|e| CliError::input(e.to_string()))?
    };
    let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
    let opened = workspace::open(&ws, g.quiet)?;
    let plan = runtime::plan(
        &manifest,
        &opened.registry,
        &super::run::kinds(),
        &args.force,
    )?;
    if args.json {
        super::print_json(&plan)?;
    } else {
        println!("pipeline `{}` ({})", plan.pipeline, manifest.path.display());
        println!("{plan}");
    }
    Ok(ExitCode::SUCCESS)
}

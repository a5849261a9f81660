//! `binarylm runs`: every recorded run of the workspace, newest first (ids for `diff`).

use std::process::ExitCode;

use crate::cli::{GlobalArgs, RunsArgs};
use crate::error::CliError;
use crate::workspace;

pub fn runs(args: &RunsArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let ws = workspace::find_workspace(g.workspace.as_deref())?;
    let opened = workspace::open(&ws, g.quiet)?;
    let mut runs = opened.registry.runs()?;
    if let Some(n) = args.limit {
        runs.truncate(n);
    }
    if args.json {
        super::print_json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet");
    }
    for r in &runs {
        let count =
            |st: registry::OutcomeStatus| r.outcomes.iter().filter(|o| o.status == st).count();
        println!(
            "{}  {:9}  {}  {} ran, {} cached, {} failed",
            r.id,
            format!("{:?}", r.status).to_lowercase(),
            r.pipeline,
            count(registry::OutcomeStatus::Ran),
            count(registry::OutcomeStatus::Cached),
            count(registry::OutcomeStatus::Failed),
        );
    }
    Ok(ExitCode::SUCCESS)
}

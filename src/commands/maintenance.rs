use std::path::PathBuf;
use std::process::ExitCode;

use registry::{GcPolicy, Lockfile};

use crate::cli::{GcArgs, GlobalArgs, VerifyArgs};
use crate::error::{CliError, EXIT_FAILURE};
use crate::workspace;

pub fn gc(args: &GcArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let ws = workspace::find_workspace(g.workspace.as_deref())?;
    let opened = workspace::open(&ws, g.quiet)?;
    let reg = &opened.registry;
    reg.mark_stale_runs_interrupted()?;
    // Every lockfile a run ever wrote that still exists protects what it references.
    let mut lockfiles: Vec<PathBuf> = reg
        .runs()?
        .into_iter()
        .filter_map(|r| r.lockfile.map(PathBuf::from))
        .filter(|p| p.exists())
        .collect();
    lockfiles.sort();
    lockfiles.dedup();
    for path in &lockfiles {
        // A lockfile that cannot be read must stop gc: it might protect anything.
        Lockfile::read(path)?;
    }
    let policy = GcPolicy {
        keep_runs: args.keep_runs,
        keep_lockfiles: lockfiles,
    };
    let report = reg.gc(&policy, args.dry_run)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: &VerifyArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let ws = workspace::find_workspace(g.workspace.as_deref())?;
    if args.rebuild {
        let _lock = registry::WorkspaceLock::acquire(&ws, || {
            eprintln!(
                "waiting for another binarylm process to release {}…",
                ws.display()
            )
        })?;
        let (_reg, rebuilt) = registry::Registry::open_rebuilding(&ws)?;
        println!("{rebuilt}");
    }
    let opened = workspace::open(&ws, g.quiet)?;
    let report = opened.registry.verify()?;
    print!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

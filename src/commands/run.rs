use std::process::ExitCode;
use std::sync::Arc;

use registry::RunStatus;
use runtime::progress::Mode;
use runtime::{Reporter, RunOptions};
use tokio_util::sync::CancellationToken;

use crate::cli::{GlobalArgs, RunArgs};
use crate::error::{CliError, EXIT_FAILURE, EXIT_INTERRUPTED};
use crate::workspace;

pub fn run(args: &RunArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (manifest, targets) = workspace::load_selection(&args.manifest)?;
    let manifest = Arc::new(manifest);
    let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
    let opened = workspace::open(&ws, g.quiet)?;
    let reporter = if g.quiet {
        Reporter::new(Mode::Quiet)
    } else {
        Reporter::auto()
    };
    let mut opts = RunOptions::new(reporter.clone());
    if let Some(j) = args.jobs {
        opts.jobs = j.max(1);
    }
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    opts.keep_going = args.keep_going;
    opts.force = args.force.clone();
    opts.targets = targets;
    opts.locked = args.locked;
    if args.pull {
        let remote = super::remote::open(args.remote.as_deref(), &ws, &manifest)?;
        opts.fetcher = Some(Arc::new(super::remote::RemoteFetcher { remote }));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("starting the async runtime: {e}")))?;
    let cancel = opts.cancel.clone();
    let report = rt.block_on(async move {
        tokio::spawn(watch_signals(cancel, reporter.clone()));
        runtime::run(manifest, opened.registry.clone(), kinds(), opts).await
    })?;
    // Do not wait for blocked signal watchers.
    rt.shutdown_background();

    if args.json {
        super::print_json(&report)?;
    }
    if !g.quiet {
        eprintln!("\n{}", report.summary_table());
        if let Some(lock) = &report.lockfile {
            eprintln!("lockfile: {lock}");
        }
    }
    for s in &report.stages {
        if s.status == registry::OutcomeStatus::Failed {
            if let Some(err) = &s.error {
                eprintln!("\nerror: stage `{}` failed: {err}", s.stage);
            }
        }
    }
    Ok(match report.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Cancelled => ExitCode::from(EXIT_INTERRUPTED),
        RunStatus::Failed | RunStatus::Running => ExitCode::from(EXIT_FAILURE),
    })
}

/// The stage kinds this binary can run.
pub fn kinds() -> runtime::Kinds {
    stages::kinds()
}

/// First Ctrl-C or SIGTERM: cancel the run gracefully. Second: exit at once.
async fn watch_signals(cancel: CancellationToken, reporter: Reporter) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        return;
    };
    let mut first = true;
    loop {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        if first {
            reporter.say("interrupted: stopping running stages (again to quit at once)…");
            cancel.cancel();
            first = false;
        } else {
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
    }
}

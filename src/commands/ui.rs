//! `binarylm ui`: resolves the workspace, the manifest and who may connect, then serves the
//! `ui` crate's web UI until Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{GlobalArgs, UiArgs};
use crate::error::CliError;
use crate::workspace;

pub fn ui(args: &UiArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (manifest, ws) =
        workspace::optional_manifest(args.manifest.as_deref(), g.workspace.as_deref())?;
    if !ws.is_dir() {
        return Err(
            CliError::input(format!("no workspace at {}", ws.display())).with_hint(
                "run the pipeline first (`binarylm run pipeline.yaml`), or pass --workspace DIR",
            ),
        );
    }
    let host = args.host.to_string();
    let access = match (&args.token, args.host.is_loopback()) {
        (Some(t), _) => ui::Access::token(t.clone(), &host),
        (None, true) => Ok(ui::Access::loopback()),
        (None, false) => ui::generate_token().and_then(|t| ui::Access::token(t, &host)),
    }
    .map_err(CliError::input)?;
    let opts = ui::UiOptions {
        workspace: ws.clone(),
        manifest: manifest.map(|m| m.path),
        host: args.host,
        port: args.port,
        access,
        kinds: super::run::kinds(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("starting the async runtime: {e}")))?;
    rt.block_on(async move {
        let bound = ui::bind(opts).await.map_err(|e| match e {
            ui::UiError::Bind { .. } => CliError::input(e.to_string()).with_hint(
                "another process uses that port: pick another with --port (0: any free port)",
            ),
            ui::UiError::Workspace { .. } => CliError::input(crate::error::chain(&e))
                .with_hint("`binarylm verify` checks the workspace"),
            other => CliError::failure(other.to_string()),
        })?;
        // The link is the one line on stdout, so scripts (and the tests) can read it.
        println!("{}", bound.url());
        let _ = std::io::stdout().flush();
        if !g.quiet {
            eprintln!(
                "binarylm ui: workspace {} (read-only); Ctrl-C stops it",
                ws.display()
            );
            if !bound.addr().ip().is_loopback() {
                eprintln!(
                    "binarylm ui: listening on {} — every request needs the token in the link; the traffic is not encrypted",
                    bound.addr()
                );
            }
        }
        bound
            .serve(shutdown_signal())
            .await
            .map_err(|e| CliError::failure(e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

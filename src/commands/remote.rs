//! `binarylm remote add|list|remove`, which remote a command uses, and the `--pull` fetcher.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use pipelines::{Manifest, RemoteConfig};
use registry::Registry;
use runtime::{FetchFuture, FetchRequest, Fetcher};

use crate::cli::{GlobalArgs, RemoteCommand};
use crate::error::CliError;
use crate::workspace;

pub fn remote(cmd: &RemoteCommand, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    match cmd {
        RemoteCommand::Add(args) => {
            let manifest = workspace::load_manifest(&args.manifest)?;
            let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
            let config = RemoteConfig {
                url: args.url.clone(),
                endpoint: args.endpoint.clone(),
                region: args.region.clone(),
                default: args.default,
            };
            remote::add_to_config(&ws, &args.name, config)?;
            if !g.quiet {
                eprintln!(
                    "added remote `{}` to {}",
                    args.name,
                    remote::config_path(&ws).display()
                );
            }
        }
        RemoteCommand::Remove(args) => {
            let manifest = workspace::load_manifest(&args.manifest)?;
            let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
            if !remote::remove_from_config(&ws, &args.name)? {
                return Err(CliError::input(format!(
                    "no remote `{}` in {}",
                    args.name,
                    remote::config_path(&ws).display()
                ))
                .with_hint("`binarylm remote list` shows the remotes; those of the manifest are edited there"));
            }
        }
        RemoteCommand::List(args) => {
            let manifest = workspace::load_manifest(&args.manifest)?;
            let ws = workspace::workspace_for(&manifest, g.workspace.as_deref());
            let all = remote::configured(&ws, Some((&manifest.remotes, &manifest.dir)))?;
            if args.json {
                super::print_json(&all)?;
            } else if all.is_empty() {
                println!("no remotes (add one with `binarylm remote add NAME URL`)");
            } else {
                let width = all.iter().map(|c| c.name.len()).max().unwrap_or(4);
                for c in &all {
                    let from = match c.source {
                        remote::Source::Config => "config",
                        remote::Source::Manifest => "manifest",
                        remote::Source::Flag => "flag",
                    };
                    let mut line = format!("{:width$}  {}", c.name, c.config.url);
                    if let Some(e) = &c.config.endpoint {
                        line.push_str(&format!("  endpoint {e}"));
                    }
                    if c.config.default {
                        line.push_str("  (default)");
                    }
                    println!("{line}  [{from}]");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Open the remote a command names (`--remote`) or the default one.
pub fn open(
    flag: Option<&str>,
    ws: &Path,
    manifest: &Manifest,
) -> Result<remote::Remote, CliError> {
    let resolved = remote::resolve(flag, ws, Some((&manifest.remotes, &manifest.dir)))?;
    Ok(remote::Remote::open(&resolved)?)
}

/// `run --pull`: asks the remote for a stage's result before it runs.
pub struct RemoteFetcher {
    pub remote: remote::Remote,
}

impl Fetcher for RemoteFetcher {
    fn describe(&self) -> String {
        format!("remote `{}`", self.remote.name)
    }

    fn fetch(&self, registry: Arc<Registry>, request: FetchRequest) -> FetchFuture<'_> {
        Box::pin(async move {
            let wanted = remote::Wanted {
                stage: request.stage,
                fingerprint: request.fingerprint,
                digest: request.digest,
            };
            remote::fetch(&self.remote, &registry, &request.manifest, &wanted)
                .await
                .map_err(|e| crate::error::chain(&e))
        })
    }
}

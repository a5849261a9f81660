//! `binarylm serve <stage|digest|dir>`: finds the model directory and its tokenizer, then hands
//! over (exec) to `binarylm-torch serve`, which links libtorch and runs the HTTP server. The
//! workspace (its lock and registry) is closed before the hand-over: a long-running server must
//! not block `binarylm run`, and stored objects are content-addressed, so they cannot change
//! under it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use registry::LineageTree;
use stages::kinds::torch_job::{torch_exe, TORCH_EXE};

use crate::cli::{GlobalArgs, ServeArgs};
use crate::error::CliError;
use crate::workspace;

/// The tokenizer file a model directory or one of its ancestors holds.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A deploy bundle's description; its `name` is the default model id.
const BUNDLE_FILE: &str = "bundle.json";

/// What to serve, resolved.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub model_dir: PathBuf,
    pub tokenizer: PathBuf,
    /// Default model id: the stage name (None: let the server pick the bundle's or the
    /// directory's name).
    pub name: Option<String>,
}

pub fn serve(args: &ServeArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let target = resolve_target(args, g)?;
    let Ok(exe) = torch_exe() else {
        return Err(CliError::failure(format!(
            "{TORCH_EXE} not found beside this binary: the model server needs it"
        ))
        .with_hint("build the whole workspace: `cargo build --release --workspace`"));
    };
    // The server gets the user's flags with the resolved tokenizer and default name filled in.
    let mut flags = args.flags.clone();
    flags.tokenizer = Some(target.tokenizer.clone());
    flags.name = flags.name.or(target.name.clone());
    let mut cmd = Command::new(&exe);
    cmd.arg("serve")
        .arg(&target.model_dir)
        .args(flags.to_args());
    exec(cmd, &exe)
}

#[cfg(unix)]
fn exec(mut cmd: Command, exe: &Path) -> Result<ExitCode, CliError> {
    use std::os::unix::process::CommandExt;
    // Replacing this process hands Ctrl-C and SIGTERM straight to the server, which shuts down
    // gracefully.
    let err = cmd.exec();
    Err(CliError::failure(format!(
        "running {}: {err}",
        exe.display()
    )))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command, exe: &Path) -> Result<ExitCode, CliError> {
    let status = cmd
        .status()
        .map_err(|e| CliError::failure(format!("running {}: {e}", exe.display())))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A directory given as such, or a stage name / digest looked up in the workspace.
pub fn resolve_target(args: &ServeArgs, g: &GlobalArgs) -> Result<Target, CliError> {
    let as_dir = Path::new(&args.target);
    if as_dir.is_dir() {
        let tokenizer = match &args.flags.tokenizer {
            Some(t) => tokenizer_file(t)?,
            None => {
                let t = as_dir.join(TOKENIZER_FILE);
                if !t.is_file() {
                    return Err(CliError::input(format!(
                        "{} holds no {TOKENIZER_FILE}",
                        as_dir.display()
                    ))
                    .with_hint("pass --tokenizer FILE (a tokenizer stage's tokenizer.json)"));
                }
                t
            }
        };
        return Ok(Target {
            model_dir: as_dir.to_path_buf(),
            tokenizer,
            name: None,
        });
    }
    let (manifest, ws) =
        workspace::optional_manifest(args.manifest.as_deref(), g.workspace.as_deref()).map_err(
            |e| {
                e.with_hint(format!(
                    "`{}` is not a directory, so it was looked up as a stage name or digest",
                    args.target
                ))
            },
        )?;
    let opened = workspace::open(&ws, g.quiet)?;
    let reg = &opened.registry;
    let resolved = match &manifest {
        Some(m) => reg.resolve_in(&m.path.to_string_lossy(), &args.target),
        None => reg.resolve(&args.target),
    }
    .map_err(|e| {
        CliError::input(crate::error::chain(&e))
            .with_hint("name a stage that produced a model (`binarylm status`), a digest, or a model directory")
    })?;
    // A deploy bundle names itself; any other artifact is served under its stage's name.
    let name = if resolved.path.join(BUNDLE_FILE).is_file() {
        None
    } else {
        Some(
            resolved
                .result
                .as_ref()
                .map(|r| r.stage.clone())
                .unwrap_or_else(|| resolved.digest[..12.min(resolved.digest.len())].to_string()),
        )
    };
    let tokenizer = match &args.flags.tokenizer {
        Some(t) => tokenizer_file(t)?,
        None => {
            let tree = reg.lineage(&resolved.digest)?;
            nearest_tokenizer(&tree, &|d| reg.object_path(d)).ok_or_else(|| {
                CliError::input(format!(
                    "no {TOKENIZER_FILE} in `{}` ({}) or the artifacts it was built from",
                    args.target,
                    resolved.path.display()
                ))
                .with_hint("pass --tokenizer FILE")
            })?
        }
    };
    Ok(Target {
        model_dir: resolved.path,
        tokenizer,
        name,
    })
}

fn tokenizer_file(given: &Path) -> Result<PathBuf, CliError> {
    let file = if given.is_dir() {
        given.join(TOKENIZER_FILE)
    } else {
        given.to_path_buf()
    };
    if file.is_file() {
        Ok(file)
    } else {
        Err(
            CliError::input(format!("no tokenizer file at {}", file.display())).with_hint(
                "give a tokenizer.json, or the directory of a tokenizer stage's artifact",
            ),
        )
    }
}

/// The tokenizer closest to the model in its lineage (breadth first: the model's own
/// directory, then its inputs, then theirs), so a fine-tuned model finds the tokenizer its base
/// was trained with.
fn nearest_tokenizer(tree: &LineageTree, path_of: &dyn Fn(&str) -> PathBuf) -> Option<PathBuf> {
    let mut queue = VecDeque::from([tree]);
    while let Some(t) = queue.pop_front() {
        if t.present {
            let candidate = path_of(&t.digest).join(TOKENIZER_FILE);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
        if !t.cycle {
            queue.extend(t.inputs.iter().map(|i| &i.tree));
        }
    }
    None
}

//! `binarylm generate <stage|artifact|dir> --prompt …`: sample text from a trained model.
//!
//! The sampling needs libtorch, so this resolves the model's artifact directory (a stage name or
//! digest through the registry, or a directory given directly) and replaces itself with
//! `binarylm-torch generate <dir> …`, which streams tokens to the terminal as they come.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use crate::cli::{GenerateArgs, GlobalArgs, ShowArgs};
use crate::error::CliError;

pub fn generate(args: &GenerateArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let dir = artifact_dir(args, g)?;
    if !dir.join("config.json").is_file() || !dir.join("model.safetensors").is_file() {
        return Err(CliError::input(format!(
            "{} holds no model (config.json and model.safetensors)",
            dir.display()
        ))
        .with_hint("name a pretrain stage or its artifact"));
    }
    let exe = super::doctor::torch_exe().ok_or_else(|| {
        CliError::failure(format!(
            "`{}` is not beside this binary; build it with `cargo build -p stages-torch`",
            super::doctor::TORCH_EXE
        ))
    })?;
    let mut cmd = Command::new(exe);
    cmd.arg("generate")
        .arg(&dir)
        .arg("--prompt")
        .arg(&args.prompt);
    cmd.args(["--max-tokens", &args.max_tokens.to_string()]);
    cmd.args(["--temperature", &args.temperature.to_string()]);
    cmd.args(["--top-k", &args.top_k.to_string()]);
    cmd.args(["--top-p", &args.top_p.to_string()]);
    cmd.args(["--seed", &args.seed.to_string()]);
    cmd.args(["--device", &args.device]);
    if args.no_kv_cache {
        cmd.arg("--no-kv-cache");
    }
    // exec only returns on failure.
    let err = cmd.exec();
    Err(CliError::failure(format!(
        "starting {}: {err}",
        super::doctor::TORCH_EXE
    )))
}

/// The directory itself when `target` is one, else the artifact the registry resolves it to.
fn artifact_dir(args: &GenerateArgs, g: &GlobalArgs) -> Result<PathBuf, CliError> {
    let as_path = PathBuf::from(&args.target);
    if as_path.is_dir() {
        return Ok(as_path);
    }
    let show = ShowArgs {
        target: args.target.clone(),
        manifest: args.manifest.clone(),
        json: false,
    };
    let (_, resolved) = super::show::resolve(&show, g)?;
    Ok(resolved.path)
}

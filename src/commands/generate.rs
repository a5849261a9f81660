//! `binarylm generate`: sample text from a trained model. The model runs in `binarylm-torch`
//! (this binary never loads libtorch); this side resolves the stage name or digest to the
//! artifact directory and hands over the terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use stages::kinds::torch_job::{torch_exe, TORCH_EXE};

use crate::cli::{ChatArgs, GenerateArgs, GlobalArgs, ShowArgs};
use crate::error::CliError;

/// The files that make a directory a model `binarylm-torch` can load.
const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// A quantized model (`quantize` stage) holds its weights here instead of model.safetensors.
const QUANTIZED_WEIGHTS: &str = "quantized.safetensors";

/// A model artifact's directory: given directly, or a stage name / digest resolved in the
/// workspace (the stage's latest result, as `binarylm show` picks it).
pub fn locate_model_dir(
    target: &str,
    manifest: Option<&Path>,
    g: &GlobalArgs,
) -> Result<PathBuf, CliError> {
    let given = Path::new(target);
    let (dir, what) = if given.is_dir() {
        (given.to_path_buf(), given.display().to_string())
    } else {
        let show = ShowArgs {
            target: target.to_string(),
            manifest: manifest.map(Path::to_path_buf),
            json: false,
        };
        let (_opened, resolved) = super::show::resolve(&show, g)?;
        let what = format!(
            "artifact {} ({target})",
            runtime::plan::short(&resolved.digest)
        );
        (resolved.path, what)
    };
    let missing: Vec<&str> = MODEL_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .filter(|f| !(*f == "model.safetensors" && dir.join(QUANTIZED_WEIGHTS).is_file()))
        .collect();
    if !missing.is_empty() {
        return Err(CliError::input(format!(
            "{what} is not a model: it has no {}",
            missing.join(", ")
        ))
        .with_hint("name a model stage (`pretrain`, `quantize`), or a directory holding config.json, model.safetensors and tokenizer.json"));
    }
    Ok(dir)
}

pub fn generate(args: &GenerateArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let dir = locate_model_dir(&args.model, args.manifest.as_deref(), g)?;
    run_torch_generate(&dir, &args.flags, g)
}

/// `binarylm chat`: `binarylm-torch generate --chat --interactive`, stdin and the terminal
/// handed over.
pub fn chat(args: &ChatArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let dir = locate_model_dir(&args.model, args.manifest.as_deref(), g)?;
    run_torch_generate(&dir, &args.flags.to_generate(), g)
}

fn run_torch_generate(
    dir: &Path,
    flags: &serve::GenerateFlags,
    g: &GlobalArgs,
) -> Result<ExitCode, CliError> {
    let exe = torch_exe().map_err(|_| {
        CliError::failure(format!(
            "{TORCH_EXE} not found beside this binary: models cannot run"
        ))
        .with_hint("build the whole workspace: `cargo build --release --workspace`")
    })?;
    let mut cmd = Command::new(&exe);
    cmd.arg("generate").arg(dir);
    cmd.args(flags.to_args());
    if g.quiet {
        cmd.arg("--quiet");
    }
    let status = cmd
        .status()
        .map_err(|e| CliError::failure(format!("running {}: {e}", exe.display())))?;
    // The torch side already printed its error; pass its exit code on (2 bad input, 1 failure).
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(crate::error::EXIT_INTERRUPTED),
    })
}

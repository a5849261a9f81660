use std::path::PathBuf;
use std::process::{Command, ExitCode};

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// Name of the executable that links libtorch (built from the `stages-torch` crate).
pub const TORCH_EXE: &str = "binarylm-torch";

/// `binarylm-torch` beside this executable.
pub fn torch_exe() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let candidate = me.parent()?.join(TORCH_EXE);
    candidate.exists().then_some(candidate)
}

/// What a user checks first when something is off: which libtorch, which device, which workspace.
pub fn doctor(g: &GlobalArgs) -> Result<ExitCode, CliError> {
    println!("binarylm {}", env!("CARGO_PKG_VERSION"));
    match crate::workspace::find_workspace(g.workspace.as_deref()) {
        Ok(ws) => println!("workspace:    {}", ws.display()),
        Err(_) => println!("workspace:    none here yet (created by the first `binarylm run`)"),
    }
    let Some(exe) = torch_exe() else {
        return Err(CliError::failure(format!(
            "{TORCH_EXE} not found beside this binary: libtorch stages cannot run"
        ))
        .with_hint("build the whole workspace: `cargo build --release --workspace` (or `bash scripts/setup.sh` first on a fresh machine)"));
    };
    let status = Command::new(&exe)
        .arg("doctor")
        .status()
        .map_err(|e| CliError::failure(format!("running {}: {e}", exe.display())))?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::failure(format!(
            "{} doctor failed ({status}): libtorch does not load or compute correctly",
            exe.display()
        ))
        .with_hint("re-run `bash scripts/setup.sh` to repair the torch virtualenv"))
    }
}

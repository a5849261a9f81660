use std::process::{Command, ExitCode};

use stages::kinds::torch_job::{torch_exe, TORCH_EXE};

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// What a user checks first when something is off: which libtorch, which device, which workspace.
pub fn doctor(g: &GlobalArgs) -> Result<ExitCode, CliError> {
    println!("binarylm {}", env!("CARGO_PKG_VERSION"));
    match crate::workspace::find_workspace(g.workspace.as_deref()) {
        Ok(ws) => println!("workspace:    {}", ws.display()),
        Err(_) => println!("workspace:    none here yet (created by the first `binarylm run`)"),
    }
    let Ok(exe) = torch_exe() else {
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

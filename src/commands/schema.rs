use std::process::ExitCode;

use crate::error::CliError;

pub fn schema() -> Result<ExitCode, CliError> {
    super::print_json(&pipelines::json_schema())?;
    Ok(ExitCode::SUCCESS)
}

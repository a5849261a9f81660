pub mod compare;
pub mod curves;
pub mod diff;
pub mod doctor;
pub mod generate;
pub mod maintenance;
pub mod plan;
pub mod remote;
pub mod run;
pub mod runs;
pub mod schema;
pub mod serve;
pub mod show;
pub mod status;
pub mod tokenize;
pub mod transfer;
pub mod ui;

/// Writes a value as pretty JSON on stdout (the one document `--json` promises).
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), crate::error::CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::CliError::failure(format!("encoding JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

//! How the binary reports failure: `error:` with its causes, an optional `hint:`, and an exit
//! code chosen by the class of error.

use std::fmt::Display;
use std::process::ExitCode;

/// Exit code for bad input (manifest, arguments, missing files) — nothing ran.
pub const EXIT_INPUT: u8 = 2;
/// Exit code for a failed run, a verify that found corruption, a `--locked` mismatch.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code after Ctrl-C / SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn input(message: impl Display) -> Self {
        CliError {
            code: EXIT_INPUT,
            message: message.to_string(),
            hint: None,
        }
    }

    pub fn failure(message: impl Display) -> Self {
        CliError {
            code: EXIT_FAILURE,
            message: message.to_string(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    /// Prints the error with its source chain on stderr and returns the exit code.
    pub fn report(&self) -> ExitCode {
        // A manifest error renders its own `error[...]` headers and snippets.
        if self.message.starts_with("error") {
            eprintln!("{}", self.message);
        } else {
            eprintln!("error: {}", self.message);
        }
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
        ExitCode::from(self.code)
    }
}

impl From<registry::RegistryError> for CliError {
    fn from(e: registry::RegistryError) -> Self {
        CliError::failure(chain(&e))
    }
}

impl From<remote::RemoteError> for CliError {
    fn from(e: remote::RemoteError) -> Self {
        let code = if e.is_input_error() {
            EXIT_INPUT
        } else {
            EXIT_FAILURE
        };
        CliError {
            code,
            message: chain(&e),
            hint: None,
        }
    }
}

impl From<runtime::RuntimeError> for CliError {
    fn from(e: runtime::RuntimeError) -> Self {
        let code = if e.is_input_error() {
            EXIT_INPUT
        } else {
            EXIT_FAILURE
        };
        CliError {
            code,
            message: chain(&e),
            hint: None,
        }
    }
}

/// "what failed: why: why" from an error and its sources.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    for cause in common::error::new_causes(e) {
        out.push_str("\n  caused by: ");
        out.push_str(&cause);
    }
    out
}

use thiserror::Error;

/// Why a single stage did not produce an artifact.
#[derive(Debug, Error)]
pub enum StageError {
    /// The stage's own work failed (non-zero exit, bad data, …). The message is for the user.
    #[error("{0}")]
    Failed(String),
    /// The run was cancelled (Ctrl-C, SIGTERM, or fail-fast after another stage failed).
    #[error("cancelled")]
    Cancelled,
    #[error("i/o error in {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl StageError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Errors of the executor itself, before or around stage runs.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("stage `{stage}`: dependency `{path}` cannot be read ({source})")]
    Dependency {
        stage: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no implementation for stage kind `{0}` in this build")]
    UnknownKind(String),
    #[error("--force names unknown stage `{0}`")]
    UnknownForce(String),
    #[error("{0}")]
    Locked(String),
    #[error("executor: {0}")]
    Internal(String),
}

impl RuntimeError {
    /// True for errors in what the user gave us (exit code 2), as opposed to run failures.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            RuntimeError::Dependency { .. }
                | RuntimeError::UnknownKind(_)
                | RuntimeError::UnknownForce(_)
        )
    }
}

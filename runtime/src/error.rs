use thiserror::Error;

/// Why a single stage did not produce an artifact.
#[derive(Debug, Error)]
pub enum StageError {
    /// The stage's own work failed (non-zero exit, bad data, …). The message is for the user.
    #[error("{0}")]
    Failed(String),
    /// The stage's own work failed with a typed error, whose causes [`StageError::render`]
    /// lists.
    #[error(transparent)]
    Error(Box<dyn std::error::Error + Send + Sync>),
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

    /// A typed error of the stage's own, kept whole so its causes can be shown.
    pub fn from_error(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StageError::Error(Box::new(e))
    }

    /// The message, then a `Caused by:` line for each cause that the text above it does not
    /// already quote (many messages embed their cause).
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        for cause in common::error::new_causes(self) {
            out.push_str("\nCaused by: ");
            out.push_str(&cause);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the corpus")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn render_lists_causes_not_already_in_the_message() {
        let e = StageError::from_error(Outer(std::io::Error::other("disk on fire")));
        assert_eq!(e.render(), "reading the corpus\nCaused by: disk on fire");
        // A cause the message already quotes is not repeated.
        let io = StageError::io("writing x", std::io::Error::other("full"));
        assert_eq!(io.render(), "i/o error in writing x: full");
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
    #[error(transparent)]
    UnknownTarget(#[from] pipelines::UnknownStage),
    #[error("--force names stage `{stage}`, which this run does not include (it runs {}); name it as a stage to run too", selected.join(", "))]
    ForceNotSelected {
        stage: String,
        selected: Vec<String>,
    },
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
                | RuntimeError::UnknownTarget(_)
                | RuntimeError::ForceNotSelected { .. }
        )
    }
}

//! `kind: command` — a user's own step, cached like any other.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Invalid, KindInfo, LocalFilesError, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: command` — a user's own step, cached like any other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Shell command, run with `sh -c` in the manifest's directory. Required.
    pub run: String,
    /// Upstream stages whose artifact paths arrive as `$BINARYLM_INPUT_<NAME>`. Default: none.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Files or directories (relative to the manifest) whose content is part of the fingerprint.
    /// Default: none.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Extra environment variables for the command (part of the fingerprint). Default: none.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// Prefix of the variables binarylm itself sets for a command (`BINARYLM_OUT`, inputs).
const RESERVED_ENV_PREFIX: &str = "BINARYLM_";

impl StageKind for CommandParams {
    const INFO: KindInfo = KindInfo {
        name: "command",
        // 1: first version.
        version: 1,
        // Nothing is known about what a command writes, so no typed key accepts it.
        produces: ArtifactType::Files,
        runner: Runner::InProcess,
        // The command names its own headline in metrics.json.
        headline: None,
    };

    fn references(&self) -> Vec<Reference> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, stage)| Reference {
                stage: stage.clone(),
                key: format!("inputs[{i}]"),
                // The command itself decides what it can read; binarylm only passes paths.
                accepts: Reference::ANY,
            })
            .collect()
    }

    /// `deps:` as written: files whose content is part of the command's fingerprint.
    fn local_files(&self, _manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        Ok(self.deps.clone())
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        if self.run.trim().is_empty() {
            problems.push(Invalid {
                path: "run".to_string(),
                on_key: false,
                message: "`run` is empty".to_string(),
                hint: Some(
                    "give the shell command to run, e.g. `run: python score.py`".to_string(),
                ),
            });
        }
        for (i, dep) in self.deps.iter().enumerate() {
            if dep.trim().is_empty() {
                problems.push(Invalid {
                    path: format!("deps[{i}]"),
                    on_key: false,
                    message: format!("`deps[{i}]` is empty"),
                    hint: Some("list files or directories, relative to the manifest".to_string()),
                });
            }
        }
        for name in self.env.keys() {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                problems.push(Invalid {
                    path: format!("env.{name}"),
                    on_key: true,
                    message: format!("`{name}` is not a valid environment variable name"),
                    hint: Some(
                        "use letters, digits and `_`, not starting with a digit".to_string(),
                    ),
                });
            } else if name.starts_with(RESERVED_ENV_PREFIX) {
                problems.push(Invalid {
                    path: format!("env.{name}"),
                on_key: true,
                    message: format!("environment variable `{name}` is reserved"),
                    hint: Some(format!(
                        "binarylm sets `{RESERVED_ENV_PREFIX}OUT` and `{RESERVED_ENV_PREFIX}INPUT_<NAME>` itself; pick another name"
                    )),
                });
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> CommandParams {
        CommandParams {
            run: "python score.py".to_string(),
            inputs: vec!["report".to_string(), "base".to_string()],
            deps: vec!["score.py".to_string()],
            env: BTreeMap::from([("MODE".to_string(), "fast".to_string())]),
        }
    }

    #[test]
    fn references_name_the_input_keys() {
        let refs = StageKind::references(&params());
        assert_eq!(refs[1].stage, "base");
        assert_eq!(refs[1].key, "inputs[1]");
    }

    #[test]
    fn validation_flags_empty_run_and_bad_env_names() {
        let mut p = params();
        p.run = "  ".to_string();
        p.env.insert("1X".to_string(), "v".to_string());
        p.env.insert("BINARYLM_OUT".to_string(), "v".to_string());
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, vec!["run", "env.1X", "env.BINARYLM_OUT"]);
        assert!(params().validate().is_empty());
    }
}

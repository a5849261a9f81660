//! `kind: command` — a user's own step, cached like any other.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Invalid, KindInfo, LocalFilesError, Reproducibility, Runner, StageKind};
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
    /// What the command writes, so that typed keys of other stages can read it: `tokenizer`
    /// (a tokenizer.json and token shards, as a tokenizer stage writes them), `model`,
    /// `corpus`, …; the reading stage checks the files when it runs. Default: `files`, which
    /// only other commands read.
    #[serde(default = "files", skip_serializing_if = "is_files")]
    pub produces: ArtifactType,
}

fn files() -> ArtifactType {
    ArtifactType::Files
}

// Left out of the canonical params when it is the default, so that fingerprints of existing
// command stages did not change when the key was added.
fn is_files(t: &ArtifactType) -> bool {
    *t == ArtifactType::Files
}

/// Prefix of the variables binarylm itself sets for a command (`BINARYLM_OUT`, inputs).
const RESERVED_ENV_PREFIX: &str = "BINARYLM_";

impl StageKind for CommandParams {
    const INFO: KindInfo = KindInfo {
        name: "command",
        // 1: first version.
        version: 1,
        // Unless the stage declares `produces:`, nothing is known about what a command writes.
        produces: ArtifactType::Files,
        runner: Runner::InProcess,
        // The command names its own headline in metrics.json.
        headline: None,
        // What a command writes is the command's business; binarylm holds it to its bytes.
        reproducible: Reproducibility::Exact,
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

    fn produces(&self) -> ArtifactType {
        self.produces
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
            produces: ArtifactType::Files,
        }
    }

    /// The key is left out of the canonical params at its default, so fingerprints of command
    /// stages written before it existed are unchanged; declared, it is part of them.
    #[test]
    fn produces_is_canonical_only_when_declared() {
        let mut p = params();
        assert!(serde_json::to_value(&p).unwrap().get("produces").is_none());
        p.produces = ArtifactType::Tokenizer;
        assert_eq!(serde_json::to_value(&p).unwrap()["produces"], "tokenizer");
        assert_eq!(StageKind::produces(&p), ArtifactType::Tokenizer);
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

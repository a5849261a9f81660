// CONTRACT (written by the lead; the pipelines helper may move these into proper modules but must
// keep names, fields and signatures — runtime and the binary are written against them).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// 1-based line and column of a node in the manifest source, plus its byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub path: PathBuf,
    /// Directory of the manifest: relative paths (deps, workspace) resolve against it.
    pub dir: PathBuf,
    pub name: String,
    /// Default 1337.
    pub seed: u64,
    /// In file order.
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub params: StageParams,
    pub resources: Resources,
    /// Span of the stage's key in the `stages:` mapping.
    pub span: Span,
}

/// `resources:` on any stage. Defaults: no GPU, threads = None (share of the budget).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub gpu: bool,
    #[serde(default)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageParams {
    Command(CommandParams),
}

/// `kind: command` — a user's own step, cached like any other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Shell command, run with `sh -c` in the manifest's directory.
    pub run: String,
    /// Upstream stages whose artifact paths arrive as `$BINARYLM_INPUT_<NAME>`.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Files or directories (relative to the manifest) whose content is part of the fingerprint.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Extra environment variables for the command (part of the fingerprint).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A reference from one stage to another: `key` is where it was written (e.g. `inputs[1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub stage: String,
    pub key: String,
}

// impl StageParams {
//     pub fn kind(&self) -> &'static str;
//     pub fn references(&self) -> Vec<Reference>;
//     /// Resolved params (defaults applied) as JSON with sorted object keys.
//     pub fn canonical(&self) -> serde_json::Value;
// }

/// Everything a stage's fingerprint covers. Also stored with each result so that `plan` can
/// say what changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FingerprintInput {
    pub kind: String,
    pub impl_version: u32,
    pub params: serde_json::Value,
    pub seed: u64,
    /// input stage name → output digest of that stage.
    pub inputs: BTreeMap<String, String>,
    /// dependency path (as written) → content digest.
    pub deps: BTreeMap<String, String>,
}

/// One difference between two fingerprint inputs, for `plan` ("param `train.lr` changed").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Change {
    Kind { from: String, to: String },
    ImplVersion { from: u32, to: u32 },
    /// Dotted path into params, e.g. `train.lr` or `deps[0]`.
    Param { path: String },
    Seed { from: u64, to: u64 },
    Input { name: String },
    Dependency { path: String },
}
// impl Display for Change: "param `train.lr` changed", "input `corpus` changed",
// "dependency `scripts/x.py` changed", "seed changed (1 → 2)", "implementation version bumped (1 → 2)".

// pub fn fingerprint(input: &FingerprintInput) -> String;  // 64 lowercase hex
// pub fn explain(old: &FingerprintInput, new: &FingerprintInput) -> Vec<Change>;
// pub fn hash_path(path: &Path) -> std::io::Result<String>; // content digest of a file or dir (blake3 hex), for deps

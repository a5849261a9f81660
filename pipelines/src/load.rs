//! Loading: YAML text → node tree → typed, validated [`Manifest`], collecting every error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::artifact::{self, ArtifactType};
use crate::dag;
use crate::de::{from_node, Issue, IssueKind};
use crate::diagnostics::{nearest, ErrorCode, ManifestErrors, Reporter};
use crate::manifest::{Manifest, Resources, Stage};
use crate::params::{
    find_kind, kinds_producing, DpoParams, ExportParams, KindEntry, PretrainParams, QuantizeParams,
    SftParams, TokenizerParams, KINDS,
};
use crate::remotes::{self, RemoteConfig};
use crate::schema;
use crate::yaml::{parse_tree, Node, NodeValue, TreeError, ALIAS_NODE_BUDGET, MAX_DEPTH};

/// `seed:` when the manifest does not set one.
pub const DEFAULT_SEED: u64 = 1337;

/// Longest stage name accepted.
const MAX_STAGE_NAME: usize = 64;

const TOP_LEVEL_KEYS: &[&str] = &["name", "seed", "stages", "remotes"];

/// Keys every stage may have besides its kind's own params.
const STAGE_KEYS: &[&str] = &["kind", "resources"];

const STAGE_EXAMPLE: &str = "e.g. `prep: { kind: command, run: \"make data\" }`";

/// Reads and parses the manifest at `path`.
///
/// # Errors
/// Every problem found, each with its position; an unreadable file is a single `manifest::io`.
pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
    match std::fs::read_to_string(path) {
        Ok(source) => parse(&source, path),
        Err(error) => {
            let mut reporter = Reporter::new(path, "");
            let hint = match error.kind() {
                std::io::ErrorKind::NotFound => {
                    Some("check the path; manifests are usually called `pipeline.yaml`".to_string())
                }
                std::io::ErrorKind::InvalidData => {
                    Some("save the manifest as UTF-8 text".to_string())
                }
                _ => None,
            };
            reporter.file(
                ErrorCode::Io,
                format!("cannot read manifest: {error}"),
                hint,
            );
            Err(reporter
                .finish()
                .unwrap_or(ManifestErrors { errors: Vec::new() }))
        }
    }
}

/// Parses manifest text; `path` names the file in errors (as given) and is made absolute for
/// [`Manifest::path`].
///
/// # Errors
/// Every problem found in the manifest, each with its position, snippet and hint.
pub fn parse(source: &str, path: &Path) -> Result<Manifest, ManifestErrors> {
    let mut reporter = Reporter::new(path, source);
    let parsed = match parse_tree(source) {
        Ok(root) => check_root(&root, &mut reporter),
        Err(error) => {
            report_tree_error(&error, &mut reporter);
            None
        }
    };
    let absolute = absolute(path);
    match (parsed, reporter.finish()) {
        (_, Some(errors)) => Err(errors),
        (Some((name, seed, stages, remotes)), None) => {
            let dir = absolute
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| absolute.clone());
            Ok(Manifest {
                path: absolute,
                dir,
                name,
                seed,
                stages,
                remotes,
            })
        }
        (None, None) => {
            // Unreachable in practice: every `None` above comes with an error. Still, never
            // return a manifest we did not fully check.
            let mut reporter = Reporter::new(path, source);
            reporter.file(ErrorCode::Syntax, "manifest could not be read", None);
            Err(reporter
                .finish()
                .unwrap_or(ManifestErrors { errors: Vec::new() }))
        }
    }
}

/// The canonical path if the file exists, else the path made absolute against the current
/// directory (for manifests parsed from memory).
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn report_tree_error(error: &TreeError, r: &mut Reporter<'_>) {
    match error {
        TreeError::Syntax { span, message } => r.at(
            ErrorCode::Syntax,
            *span,
            1,
            format!("invalid YAML: {message}"),
            Some("check indentation, `key: value` spacing, and unclosed brackets or quotes".to_string()),
        ),
        // Reported at 1:1 so that every manifest error has a line and column to jump to.
        TreeError::Empty => r.at(
            ErrorCode::Empty,
            crate::Span {
                line: 1,
                col: 1,
                offset: 0,
            },
            1,
            "the manifest is empty (no YAML content, only whitespace or comments)",
            Some("start with `name: my-pipeline` and a `stages:` mapping".to_string()),
        ),
        TreeError::MultipleDocuments { span } => r.at(
            ErrorCode::MultipleDocuments,
            *span,
            3,
            "a manifest holds a single YAML document, but a second one starts here",
            Some("remove this `---` and everything after it, or merge the documents".to_string()),
        ),
        TreeError::AliasBomb { span } => r.at(
            ErrorCode::AliasBomb,
            *span,
            1,
            format!("aliases expand to more than {ALIAS_NODE_BUDGET} nodes"),
            Some("this looks like an alias bomb; write the values out or share fewer, smaller anchors".to_string()),
        ),
        TreeError::TooDeep { span } => r.at(
            ErrorCode::TooDeep,
            *span,
            1,
            format!("nesting deeper than {MAX_DEPTH} levels"),
            Some("manifests are shallow; check for runaway brackets".to_string()),
        ),
        TreeError::ComplexKey { span } => r.at(
            ErrorCode::ComplexKey,
            *span,
            1,
            "a mapping key must be a plain value, not a list or mapping",
            None,
        ),
        TreeError::UnsupportedTag { span, tag } => r.at(
            ErrorCode::UnsupportedTag,
            *span,
            tag.chars().count(),
            format!("unsupported YAML tag `{tag}`"),
            Some("manifests use plain YAML values; remove the tag".to_string()),
        ),
    }
}

/// Validates the whole document; returns name, seed and stages if the top level was usable.
fn check_root(root: &Node, r: &mut Reporter<'_>) -> Option<(String, u64, Vec<Stage>, Remotes)> {
    let Some(entries) = root.as_map() else {
        r.at(
            ErrorCode::NotAMapping,
            root.span,
            root.width,
            format!(
                "the manifest must be a mapping, but it is {}",
                root.describe()
            ),
            Some(
                "a manifest has `name:`, optional `seed:` and `stages:` at the top level"
                    .to_string(),
            ),
        );
        return None;
    };
    let stages_node = entries
        .iter()
        .find(|(k, _)| k.text() == Some("stages"))
        .map(|(_, v)| v);
    report_duplicates(root, stages_node.map(|n| n.id), r);

    let mut name = None;
    let mut seed = DEFAULT_SEED;
    let mut stages = None;
    let mut remotes = Remotes::new();
    let mut seen = HashSet::new();
    for (key, value) in entries {
        let text = key.text().unwrap_or("");
        if !seen.insert(text) {
            continue;
        }
        match text {
            "name" => match from_node::<String>(value) {
                Ok(n) if n.trim().is_empty() => r.at(
                    ErrorCode::InvalidValue,
                    value.span,
                    value.width,
                    "`name` is empty",
                    Some("name the pipeline, e.g. `name: quickstart`".to_string()),
                ),
                Ok(n) => name = Some(n),
                Err(issues) => report_issues(issues, &Where::top("name"), r),
            },
            "seed" => match from_node::<u64>(value) {
                Ok(s) => seed = s,
                Err(issues) => report_issues(issues, &Where::top("seed"), r),
            },
            "stages" => stages = Some(check_stages(value, r)),
            "remotes" => remotes = remotes::check_remotes(value, r, report_remote_issues),
            other => r.at(
                ErrorCode::UnknownKey,
                key.span,
                key.width,
                format!("unknown top-level key `{other}`"),
                Some(keys_hint(other, TOP_LEVEL_KEYS.iter().copied())),
            ),
        }
    }
    for (key, found) in [
        ("name", name.is_some() || seen.contains("name")),
        ("stages", stages.is_some()),
    ] {
        if !found {
            r.at(
                ErrorCode::MissingKey,
                root.span,
                1,
                format!("missing required top-level key `{key}`"),
                schema::top_level_doc(key).map(|d| format!("add `{key}:` — {d}")),
            );
        }
    }
    Some((name?, seed, stages?, remotes))
}

/// Remote names → their config, as `remotes:` gives them.
type Remotes = BTreeMap<String, RemoteConfig>;

fn report_remote_issues(issues: Vec<Issue>, prefix: &str, r: &mut Reporter<'_>) {
    report_issues(issues, &Where::top(prefix), r);
}

/// Reports repeated keys in every mapping; in `stages` they are duplicate stage names.
fn report_duplicates(node: &Node, stages_id: Option<u32>, r: &mut Reporter<'_>) {
    match &node.value {
        NodeValue::Map(entries) => {
            let mut first: HashMap<&str, &Node> = HashMap::new();
            for (key, value) in entries {
                let text = key.text().unwrap_or("");
                if let Some(previous) = first.get(text) {
                    if Some(node.id) == stages_id {
                        r.at(
                            ErrorCode::DuplicateStage,
                            key.span,
                            key.width,
                            format!(
                                "stage `{text}` is defined twice (first on line {})",
                                previous.span.line
                            ),
                            Some("rename one of them; stage names must be unique".to_string()),
                        );
                    } else {
                        r.at(
                            ErrorCode::DuplicateKey,
                            key.span,
                            key.width,
                            format!(
                                "duplicate key `{text}` (first on line {})",
                                previous.span.line
                            ),
                            Some("YAML mappings hold each key once; keep one of them".to_string()),
                        );
                    }
                } else {
                    first.insert(text, key);
                }
                report_duplicates(value, stages_id, r);
            }
        }
        NodeValue::Seq(items) => items
            .iter()
            .for_each(|item| report_duplicates(item, stages_id, r)),
        NodeValue::Scalar(_) => {}
    }
}

/// A stage that passed its own checks, kept with its node for reference spans.
struct Checked {
    stage: Stage,
    params_node: Node,
}

fn check_stages(node: &Node, r: &mut Reporter<'_>) -> Vec<Stage> {
    let entries = match node.as_map() {
        Some(entries) if !entries.is_empty() => entries,
        _ => {
            let message = if node.is_null() || node.as_map().is_some() {
                "`stages` is empty".to_string()
            } else {
                format!(
                    "`stages` must be a mapping of stage names to stages, but it is {}",
                    node.describe()
                )
            };
            r.at(
                ErrorCode::InvalidStages,
                node.span,
                node.width,
                message,
                Some(format!(
                    "add at least one stage under `stages:`, {STAGE_EXAMPLE}"
                )),
            );
            return Vec::new();
        }
    };

    let mut names = Vec::new();
    // The kind of every stage whose `kind` is known, even if its params are not valid: what it
    // produces is enough to check the references to it.
    let mut kinds: HashMap<&str, &'static KindEntry> = HashMap::new();
    let mut checked = Vec::new();
    for (key, value) in entries {
        let name = key.text().unwrap_or("");
        if names.contains(&name) {
            continue; // reported as a duplicate stage
        }
        names.push(name);
        // A stage with a bad name or bad resources still takes part in the reference checks
        // below; its own errors are already recorded, so no manifest is returned anyway.
        check_stage_name(key, r);
        let (kind, stage) = check_stage(name, key, value, r);
        if let Some(kind) = kind {
            kinds.insert(name, kind);
        }
        if let Some(c) = stage {
            checked.push(c);
        }
    }

    check_references(&checked, &names, &kinds, r);
    check_exports(&checked, r);
    checked.into_iter().map(|c| c.stage).collect()
}

fn check_stage_name(key: &Node, r: &mut Reporter<'_>) {
    let name = key.text().unwrap_or("");
    let valid = name.len() <= MAX_STAGE_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        let suggestion: String = name
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let suggestion = suggestion.trim_start_matches(['_', '-']).to_string();
        let mut hint = format!(
            "stage names use lowercase letters, digits, `_` and `-`, start with a letter or digit, and have at most {MAX_STAGE_NAME} characters"
        );
        if !suggestion.is_empty() && suggestion.len() <= MAX_STAGE_NAME {
            hint.push_str(&format!(", e.g. `{suggestion}`"));
        }
        r.at(
            ErrorCode::InvalidStageName,
            key.span,
            key.width,
            format!("invalid stage name `{name}`"),
            Some(hint),
        );
    }
}

/// The stage's kind (when it is known) and the stage itself (when its params are valid too).
fn check_stage(
    name: &str,
    key: &Node,
    node: &Node,
    r: &mut Reporter<'_>,
) -> (Option<&'static KindEntry>, Option<Checked>) {
    let Some(entries) = node.as_map() else {
        r.at(
            ErrorCode::StageNotAMapping,
            node.span,
            node.width,
            format!(
                "stage `{name}` must be a mapping, but it is {}",
                node.describe()
            ),
            Some(format!(
                "a stage has a `kind:` and that kind's keys, {STAGE_EXAMPLE}"
            )),
        );
        return (None, None);
    };
    let first = |k: &str| entries.iter().find(|(key, _)| key.text() == Some(k));
    let known = KINDS
        .iter()
        .map(|k| format!("`{}`", k.info.name))
        .collect::<Vec<_>>()
        .join(", ");

    let kind = match first("kind") {
        None => {
            r.at(
                ErrorCode::MissingKind,
                key.span,
                key.width,
                format!("stage `{name}` has no `kind`"),
                Some(format!("add `kind:` with one of: {known}")),
            );
            None
        }
        Some((_, value)) => match from_node::<String>(value) {
            Err(issues) => {
                report_issues(issues, &Where::stage(name, None, "kind"), r);
                None
            }
            Ok(kind) => match find_kind(&kind) {
                Some(entry) => Some(entry),
                None => {
                    let guess = nearest(&kind, KINDS.iter().map(|k| k.info.name))
                        .map(|g| format!("did you mean `{g}`? "))
                        .unwrap_or_default();
                    r.at(
                        ErrorCode::UnknownKind,
                        value.span,
                        value.width,
                        format!("unknown stage kind `{kind}` in stage `{name}`"),
                        Some(format!("{guess}known kinds: {known}")),
                    );
                    None
                }
            },
        },
    };

    let resources = match first("resources") {
        None => Some(Resources::default()),
        Some((_, value)) => check_resources(name, value, r),
    };

    let Some(kind) = kind else {
        return (None, None);
    };
    // The kind's params are the stage's mapping without the keys every stage shares. It takes
    // the stage key's position, so "missing `run`" points at the stage that lacks it.
    let params_node = Node {
        span: key.span,
        width: key.width,
        value: NodeValue::Map(
            entries
                .iter()
                .filter(|(k, _)| !STAGE_KEYS.contains(&k.text().unwrap_or("")))
                .cloned()
                .collect(),
        ),
        ..node.clone()
    };
    let params = match (kind.parse)(&params_node) {
        Ok(params) => Some(params),
        Err(issues) => {
            report_issues(issues, &Where::stage(name, Some(kind.info.name), ""), r);
            None
        }
    };
    let checked = params.map(|params| Checked {
        stage: Stage {
            name: name.to_string(),
            params,
            resources: resources.unwrap_or_default(),
            span: key.span,
        },
        params_node,
    });
    (Some(kind), checked)
}

fn check_resources(stage: &str, node: &Node, r: &mut Reporter<'_>) -> Option<Resources> {
    let place = Where::stage(stage, None, "resources");
    match from_node::<Resources>(node) {
        Err(issues) => {
            report_issues(issues, &place, r);
            None
        }
        Ok(Resources {
            threads: Some(0), ..
        }) => {
            let at = node.at_path("threads").unwrap_or(node);
            r.at(
                ErrorCode::InvalidResources,
                at.span,
                at.width,
                format!("`resources.threads` of stage `{stage}` is 0"),
                Some(
                    "give at least 1 thread, or leave `threads` out to share the run's budget"
                        .to_string(),
                ),
            );
            None
        }
        Ok(resources) => Some(resources),
    }
}

/// Unknown stages, self-references, references to the wrong artifact type and cycles, once
/// every stage's own checks are done. `kinds` holds the kind of each stage that has a known one.
fn check_references(
    checked: &[Checked],
    declared: &[&str],
    kinds: &HashMap<&str, &'static KindEntry>,
    r: &mut Reporter<'_>,
) {
    let index: BTreeMap<&str, usize> = checked
        .iter()
        .enumerate()
        .map(|(i, c)| (c.stage.name.as_str(), i))
        .collect();
    // What each stage produces: its params say (a command stage may declare it), else its
    // kind's descriptor (a stage whose params did not load).
    let produced = |name: &str| -> Option<(&'static str, ArtifactType)> {
        match index.get(name) {
            Some(&j) => {
                let p = &checked[j].stage.params;
                Some((p.kind(), p.produces()))
            }
            None => kinds.get(name).map(|k| (k.info.name, k.info.produces)),
        }
    };
    let mut upstream = vec![Vec::new(); checked.len()];
    for (i, c) in checked.iter().enumerate() {
        for reference in c.stage.params.references() {
            let at = c
                .params_node
                .at_path(&reference.key)
                .unwrap_or(&c.params_node);
            let target = reference.stage.as_str();
            if target == c.stage.name {
                r.at(
                    ErrorCode::SelfReference,
                    at.span,
                    at.width,
                    format!("stage `{target}` references itself in `{}`", reference.key),
                    Some(
                        "a stage cannot read its own output; reference an upstream stage"
                            .to_string(),
                    ),
                );
            } else if let Some(&j) = index.get(target) {
                upstream[i].push((j, at.span, at.width, reference.key.clone()));
            } else if !declared.contains(&target) {
                let guess = nearest(target, declared.iter().copied())
                    .map(|g| format!("did you mean `{g}`? "))
                    .unwrap_or_default();
                r.at(
                    ErrorCode::UnknownStage,
                    at.span,
                    at.width,
                    format!(
                        "stage `{}` references unknown stage `{target}` in `{}`",
                        c.stage.name, reference.key
                    ),
                    Some(format!(
                        "{guess}stages in this manifest: {}",
                        declared.join(", ")
                    )),
                );
            }
            if target == c.stage.name {
                continue;
            }
            let Some((target_kind, target_produces)) = produced(target) else {
                continue; // unknown stage, or one without a valid kind: reported above
            };
            if !reference.accepts_type(target_produces) {
                let fits: Vec<&str> = declared
                    .iter()
                    .copied()
                    .filter(|&name| name != c.stage.name)
                    .filter(|name| produced(name).is_some_and(|(_, t)| reference.accepts_type(t)))
                    .collect();
                r.at(
                    ErrorCode::WrongArtifactType,
                    at.span,
                    at.width,
                    format!(
                        "stage `{}` key `{}` needs {}, but `{target}` is a `{}` stage (it produces {})",
                        c.stage.name,
                        reference.key,
                        artifact::describe(reference.accepts),
                        target_kind,
                        target_produces.with_article(),
                    ),
                    Some(accepts_hint(&reference.key, reference.accepts, &fits)),
                );
            }
        }
    }
    let edges: Vec<Vec<usize>> = upstream
        .iter()
        .map(|refs| refs.iter().map(|(j, ..)| *j).collect())
        .collect();
    for cycle in dag::find_cycles(&edges) {
        // Report at the reference from the cycle's first stage to the next one.
        let (from, to) = (cycle[0], cycle[1 % cycle.len()]);
        let Some((_, span, width, key)) = upstream[from].iter().find(|(j, ..)| *j == to) else {
            continue;
        };
        let mut path: Vec<&str> = cycle
            .iter()
            .map(|&i| checked[i].stage.name.as_str())
            .collect();
        path.push(checked[from].stage.name.as_str());
        r.at(
            ErrorCode::Cycle,
            *span,
            *width,
            format!("stages form a cycle: {}", path.join(" → ")),
            Some(format!(
                "each stage needs the next one's output; remove one of these references (this one is `{}` in stage `{}`)",
                key, checked[from].stage.name
            )),
        );
    }
}

/// An export whose model the manifest already describes (its `model` chain reaches a
/// `pretrain` stage) and that the export's format cannot express — the architecture, or for
/// GGUF a tokenizer stage that trains a character-level tokenizer — is refused now, at its
/// `model` key, rather than after the model has trained.
fn check_exports(checked: &[Checked], r: &mut Reporter<'_>) {
    for c in checked {
        let Some(export) = c.stage.params.get::<ExportParams>() else {
            continue;
        };
        let Some(pretrain) = source_pretrain(checked, &export.model) else {
            continue;
        };
        let tokenizer = checked
            .iter()
            .find(|t| t.stage.name == pretrain.tokenizer)
            .and_then(|t| t.stage.params.get::<TokenizerParams>());
        let architecture = export.architecture(&pretrain.model.resolve()).err().map(|why| {
            (why, "export a GPT-2-style or Llama-style model (docs/export.md), or serve this one with `binarylm serve`")
        });
        let tokenizer = tokenizer.and_then(|t| export.tokenizer_refusal(t)).map(|why| {
            (why, "train the model with a byte-level BPE tokenizer (`model: bpe`, the default), or export it with `format: hf`")
        });
        if let Some((why, hint)) = architecture.or(tokenizer) {
            let at = c.params_node.at_path("model").unwrap_or(&c.params_node);
            r.at(
                ErrorCode::InvalidValue,
                at.span,
                at.width,
                format!(
                    "stage `{}` cannot export `{}`: {why}",
                    c.stage.name, export.model
                ),
                Some(hint.to_string()),
            );
        }
    }
}

/// The `pretrain` stage a model stage starts from: the stage itself, or, through the stages
/// that keep their source's architecture and tokenizer (`sft`, `dpo`, `quantize`), the one
/// they start from. `None` when the manifest does not say (a `command` stage, a broken chain).
fn source_pretrain<'c>(checked: &'c [Checked], name: &str) -> Option<&'c PretrainParams> {
    let mut name = name;
    // A chain longer than the stage count is a cycle, reported elsewhere.
    for _ in 0..=checked.len() {
        let params = &checked.iter().find(|c| c.stage.name == name)?.stage.params;
        if let Some(p) = params.get::<PretrainParams>() {
            return Some(p);
        }
        name = if let Some(p) = params.get::<SftParams>() {
            &p.model
        } else if let Some(p) = params.get::<DpoParams>() {
            &p.model
        } else if let Some(p) = params.get::<QuantizeParams>() {
            &p.model
        } else {
            return None;
        };
    }
    None
}

/// What a key accepts and which stages of the manifest would fit:
/// "`tokenizer` accepts a `tokenizer` stage; in this manifest: tok".
fn accepts_hint(key: &str, accepts: &[artifact::ArtifactType], fits: &[&str]) -> String {
    let producers = kinds_producing(accepts);
    let what = match producers.as_slice() {
        [] => format!(
            "{}, which no stage kind produces yet",
            artifact::describe(accepts)
        ),
        [one] => format!("a `{one}` stage"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|k| format!("`{k}`")).collect();
            format!("a {} or `{last}` stage", init.join(", "))
        }
    };
    // A user's own step can stand in for any typed kind by declaring what it writes.
    let what = match accepts.first() {
        Some(t) => format!("{what} (or a `command` stage with `produces: {}`)", t.key()),
        None => what,
    };
    if fits.is_empty() {
        format!("`{key}` accepts {what}; this manifest has none, so add one")
    } else {
        format!(
            "`{key}` accepts {what}; in this manifest: {}",
            fits.join(", ")
        )
    }
}

/// Where an issue was found, for messages: the stage (if any), its kind, and the key prefix.
struct Where<'a> {
    stage: Option<&'a str>,
    kind: Option<&'static str>,
    /// Key path of the node that was deserialized (`resources`, `seed`), empty for params.
    prefix: &'a str,
}

impl<'a> Where<'a> {
    fn top(key: &'a str) -> Self {
        Where {
            stage: None,
            kind: None,
            prefix: key,
        }
    }

    fn stage(stage: &'a str, kind: Option<&'static str>, prefix: &'a str) -> Self {
        Where {
            stage: Some(stage),
            kind,
            prefix,
        }
    }

    fn key(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.to_string(),
            (false, false) => format!("{}.{path}", self.prefix),
        }
    }

    /// " in stage `train` (kind `command`)", or "" at the top level.
    fn suffix(&self) -> String {
        match (self.stage, self.kind) {
            (Some(s), Some(k)) => format!(" in stage `{s}` (kind `{k}`)"),
            (Some(s), None) => format!(" in stage `{s}`"),
            _ => String::new(),
        }
    }

    fn doc(&self, key: &str) -> Option<String> {
        match (self.stage, self.kind) {
            (None, _) => schema::top_level_doc(key).map(str::to_string),
            (Some(_), Some(kind)) => schema::param_doc(kind, key),
            (Some(_), None) => schema::stage_key_doc(key),
        }
    }

    fn is_resources(&self) -> bool {
        self.prefix == "resources"
    }
}

fn keys_hint<'k>(key: &str, valid: impl Iterator<Item = &'k str> + Clone) -> String {
    let list = valid.clone().collect::<Vec<_>>().join(", ");
    match nearest(key, valid) {
        Some(guess) => format!("did you mean `{guess}`? valid keys: {list}"),
        None => format!("valid keys: {list}"),
    }
}

fn report_issues(issues: Vec<Issue>, place: &Where<'_>, r: &mut Reporter<'_>) {
    for issue in issues {
        let key = place.key(&issue.path);
        let top_key = key.split(['.', '[']).next().unwrap_or("").to_string();
        let doc_hint = |fallback: String| match (place.doc(&key), place.doc(&top_key)) {
            (Some(d), _) => format!("`{key}`: {d}"),
            (None, Some(d)) => format!("`{top_key}`: {d}"),
            (None, None) => fallback,
        };
        let resources = place.is_resources();
        let (code, message, hint) = match issue.kind {
            IssueKind::UnknownKey {
                key: unknown,
                expected,
            } => {
                let parent = key.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                let (where_, hint) = if parent.is_empty() {
                    // Params of a kind sit beside the keys every stage has.
                    let shared: &[&str] = if place.kind.is_some() {
                        &["resources"]
                    } else {
                        &[]
                    };
                    let valid = expected.iter().chain(shared).copied();
                    (place.suffix(), keys_hint(&unknown, valid))
                } else {
                    (
                        format!(" under `{parent}`{}", place.suffix()),
                        keys_hint(&unknown, expected.iter().copied()),
                    )
                };
                let context = match (place.stage, place.kind) {
                    (Some(_), _) => where_,
                    (None, _) => format!("{where_} at the top level"),
                };
                (
                    ErrorCode::UnknownKey,
                    format!("unknown key `{unknown}`{context}"),
                    Some(hint),
                )
            }
            IssueKind::MissingKey { key: missing } => {
                let full = place.key(&join(&issue.path, missing));
                let code = if place.kind.is_some() {
                    ErrorCode::MissingParam
                } else {
                    ErrorCode::MissingKey
                };
                let what = match place.kind {
                    Some(kind) => format!(
                        "stage `{}` (kind `{kind}`) is missing required key `{full}`",
                        place.stage.unwrap_or("")
                    ),
                    None => format!("missing required key `{full}`{}", place.suffix()),
                };
                let hint = place
                    .doc(&full)
                    .map(|d| format!("add `{full}:` — {d}"))
                    .unwrap_or_else(|| format!("add `{full}:`"));
                (code, what, Some(hint))
            }
            IssueKind::WrongType { expected, found } => {
                let code = if resources {
                    ErrorCode::InvalidResources
                } else {
                    ErrorCode::WrongType
                };
                (
                    code,
                    format!(
                        "wrong type for `{key}`{}: expected {expected}, found {found}",
                        place.suffix()
                    ),
                    Some(doc_hint(format!("write {expected} here"))),
                )
            }
            IssueKind::InvalidValue { expected, found } => {
                let code = if resources {
                    ErrorCode::InvalidResources
                } else {
                    ErrorCode::InvalidValue
                };
                (
                    code,
                    format!(
                        "invalid value for `{key}`{}: expected {expected}, found {found}",
                        place.suffix()
                    ),
                    Some(doc_hint(format!("write {expected} here"))),
                )
            }
            IssueKind::UnknownVariant { variant, expected } => (
                ErrorCode::InvalidValue,
                format!("unknown value `{variant}` for `{key}`{}", place.suffix()),
                Some(match nearest(&variant, expected.iter().copied()) {
                    Some(g) => format!("did you mean `{g}`? valid values: {}", expected.join(", ")),
                    None => format!("valid values: {}", expected.join(", ")),
                }),
            ),
            IssueKind::Invalid { message, hint } => {
                let code = if resources {
                    ErrorCode::InvalidResources
                } else {
                    ErrorCode::InvalidValue
                };
                (code, format!("{message}{}", place.suffix()), hint)
            }
            IssueKind::Other(message) => (
                ErrorCode::InvalidValue,
                format!("invalid `{key}`{}: {message}", place.suffix()),
                None,
            ),
        };
        r.at(code, issue.span, issue.width, message, hint);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

//! `kind: data` — a corpus read from files, tables or built-in generators, cleaned and split.

use super::{Invalid, StageKind};
use crate::manifest::{Reference, StageParams};

/// `kind: data` — documents from local files, table columns or built-in generators, cleaned,
/// deduplicated and split into `train.parquet` and `val.parquet` (plus `stats.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataParams {
    /// Where the documents come from; at least one. Each entry is exactly one of `path`,
    /// `jsonl`, `csv`, `parquet` or `synthetic`. Required.
    pub sources: Vec<DataSource>,
    /// Cleaning, applied to every document in this order: UTF-8 repair, normalization, control
    /// characters, whitespace, length filters, deduplication. Default: each key's default.
    #[serde(default)]
    pub clean: CleanParams,
    /// How documents not pinned by their source are split into train and validation.
    /// Default: `val_fraction: 0.05`.
    #[serde(default)]
    pub split: SplitParams,
}

/// One source of documents. Paths are relative to the manifest's directory.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// Text files: one file, a directory (every file under it, in path order) or a glob such as
    /// `texts/*.txt`. One document per file unless `separator` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With `path`: split each file into documents at this string (e.g. "\n\n"). Default: one
    /// document per file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// A JSON Lines file (one object per line); the text is the field named by `column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<String>,
    /// A CSV file with a header row; the text is the column named by `column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// A Parquet file; the text is the string column named by `column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<String>,
    /// With `jsonl`, `csv` or `parquet`: the column holding the text. Default: `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A built-in generator, seeded by the manifest's `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticSource>,
    /// Put every document of this source in one split (`val` for a corpus that ships its own
    /// validation file). Default: split by content hash, like the other documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitName>,
}

/// `synthetic:` — documents made by a built-in generator, deterministic given the seed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSource {
    /// `stories` (short stories whose later sentences depend on earlier facts), `instructions`
    /// (question → answer pairs about a story: fields `prompt`, `response`) or `preferences`
    /// (`prompt`, `chosen` = the correct answer, `rejected` = a plausible wrong one). Required.
    pub generator: Generator,
    /// How many documents (or pairs) to generate; at least 1. Required.
    #[schemars(range(min = 1))]
    pub documents: usize,
}

/// A built-in synthetic generator.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    Stories,
    Instructions,
    Preferences,
}

/// Train or validation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Val,
}

/// The record shape a source produces; all sources of one stage must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordShape {
    /// One `text` column.
    Text,
    /// `prompt`, `response`.
    Instruction,
    /// `prompt`, `chosen`, `rejected`.
    Preference,
}

impl RecordShape {
    /// The output columns, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            RecordShape::Text => &["text"],
            RecordShape::Instruction => &["prompt", "response"],
            RecordShape::Preference => &["prompt", "chosen", "rejected"],
        }
    }
}

/// What a source reads, once validation has checked that exactly one key is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceSpec<'a> {
    Path {
        path: &'a str,
        separator: Option<&'a str>,
    },
    Jsonl {
        path: &'a str,
        column: &'a str,
    },
    Csv {
        path: &'a str,
        column: &'a str,
    },
    Parquet {
        path: &'a str,
        column: &'a str,
    },
    Synthetic(&'a SyntheticSource),
}

/// Column read from a table source when `column` is not given.
pub const DEFAULT_COLUMN: &str = "text";

impl DataSource {
    /// The one thing this source reads, or `None` if zero or several of `path`, `jsonl`, `csv`,
    /// `parquet`, `synthetic` are set (which validation reports).
    pub fn spec(&self) -> Option<SourceSpec<'_>> {
        let column = self.column.as_deref().unwrap_or(DEFAULT_COLUMN);
        let mut found = Vec::new();
        if let Some(path) = &self.path {
            found.push(SourceSpec::Path {
                path,
                separator: self.separator.as_deref(),
            });
        }
        if let Some(path) = &self.jsonl {
            found.push(SourceSpec::Jsonl { path, column });
        }
        if let Some(path) = &self.csv {
            found.push(SourceSpec::Csv { path, column });
        }
        if let Some(path) = &self.parquet {
            found.push(SourceSpec::Parquet { path, column });
        }
        if let Some(s) = &self.synthetic {
            found.push(SourceSpec::Synthetic(s));
        }
        match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The local file or pattern this source reads, if any (relative to the manifest).
    pub fn local_path(&self) -> Option<&str> {
        match self.spec()? {
            SourceSpec::Path { path, .. }
            | SourceSpec::Jsonl { path, .. }
            | SourceSpec::Csv { path, .. }
            | SourceSpec::Parquet { path, .. } => Some(path),
            SourceSpec::Synthetic(_) => None,
        }
    }

    /// The record shape this source produces.
    pub fn shape(&self) -> RecordShape {
        match self.synthetic.as_ref().map(|s| s.generator) {
            Some(Generator::Instructions) => RecordShape::Instruction,
            Some(Generator::Preferences) => RecordShape::Preference,
            Some(Generator::Stories) | None => RecordShape::Text,
        }
    }
}

/// `clean:` — per-document cleaning and filtering.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanParams {
    /// Unicode normalization: `nfc`, `nfkc` or `none`. Default `nfc`.
    #[serde(default)]
    pub normalize: Normalize,
    /// Remove control characters other than newline and tab. Default `true`.
    #[serde(default = "yes")]
    pub strip_control: bool,
    /// Turn runs of spaces and tabs into one space, drop trailing spaces on each line, keep at
    /// most one blank line in a row and trim the document's ends. Default `false`.
    #[serde(default)]
    pub collapse_whitespace: bool,
    /// `exact` drops every document whose cleaned content repeats an earlier one; `none`
    /// keeps them. Default `exact`.
    #[serde(default)]
    pub dedup: Dedup,
    /// Drop documents with fewer characters than this (after cleaning). Default 1 (drop empty
    /// documents).
    #[serde(default = "one")]
    pub min_chars: usize,
    /// Drop documents with more characters than this (after cleaning). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
    /// Bytes that are not valid UTF-8: `repair` replaces them with U+FFFD and counts them;
    /// `error` fails the stage naming the file. Default `repair`.
    #[serde(default)]
    pub invalid_utf8: InvalidUtf8,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Default for CleanParams {
    fn default() -> Self {
        CleanParams {
            normalize: Normalize::default(),
            strip_control: true,
            collapse_whitespace: false,
            dedup: Dedup::default(),
            min_chars: 1,
            max_chars: None,
            invalid_utf8: InvalidUtf8::default(),
        }
    }
}

/// Unicode normalization form.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    #[default]
    Nfc,
    Nfkc,
    None,
}

/// Deduplication mode.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Dedup {
    #[default]
    Exact,
    None,
}

/// What to do with bytes that are not valid UTF-8.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum InvalidUtf8 {
    #[default]
    Repair,
    Error,
}

/// `split:` — how many unpinned documents go to validation; give at most one of the two keys.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    /// Share of documents for validation, in [0, 1), chosen by a hash of each document's
    /// content (independent of input order). Default 0.05 when `val_docs` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_fraction: Option<f64>,
    /// Exactly this many documents for validation (those with the smallest content hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_docs: Option<usize>,
}

/// `val_fraction` when neither key of `split:` is given.
pub const DEFAULT_VAL_FRACTION: f64 = 0.05;

/// How validation documents are chosen, resolved from [`SplitParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValSelection {
    Fraction(f64),
    Count(usize),
}

impl SplitParams {
    pub fn selection(&self) -> ValSelection {
        match (self.val_docs, self.val_fraction) {
            (Some(n), _) => ValSelection::Count(n),
            (None, f) => ValSelection::Fraction(f.unwrap_or(DEFAULT_VAL_FRACTION)),
        }
    }
}

impl DataParams {
    /// The record shape of the stage's output (that of its first source; validation checks
    /// that all agree).
    pub fn shape(&self) -> RecordShape {
        self.sources
            .first()
            .map(DataSource::shape)
            .unwrap_or(RecordShape::Text)
    }
}

const SOURCE_KEYS: &str = "`path`, `jsonl`, `csv`, `parquet` or `synthetic`";

impl StageKind for DataParams {
    const KIND: &'static str = "data";

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn into_params(self) -> StageParams {
        StageParams::Data(self)
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let mut invalid = |path: String, message: String, hint: &str| {
            problems.push(Invalid {
                path,
                on_key: false,
                message,
                hint: Some(hint.to_string()),
            })
        };
        if self.sources.is_empty() {
            invalid(
                "sources".to_string(),
                "`sources` is empty".to_string(),
                "list at least one source, e.g. `sources: [{ path: texts/ }]`",
            );
        }
        let shape = self.shape();
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            let set = [
                s.path.is_some(),
                s.jsonl.is_some(),
                s.csv.is_some(),
                s.parquet.is_some(),
                s.synthetic.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set != 1 {
                invalid(
                    at.clone(),
                    format!("source {i} sets {set} of {SOURCE_KEYS}; it needs exactly one"),
                    "write one source per list entry, e.g. `- jsonl: data.jsonl`",
                );
                continue;
            }
            if s.separator.is_some() && s.path.is_none() {
                invalid(
                    format!("{at}.separator"),
                    "`separator` only applies to a `path` source".to_string(),
                    "remove it, or read the text files with `path:`",
                );
            }
            if s.column.is_some() && s.jsonl.is_none() && s.csv.is_none() && s.parquet.is_none() {
                invalid(
                    format!("{at}.column"),
                    "`column` only applies to a `jsonl`, `csv` or `parquet` source".to_string(),
                    "remove it",
                );
            }
            if s.separator.as_deref() == Some("") {
                invalid(
                    format!("{at}.separator"),
                    "`separator` is empty".to_string(),
                    "give the string between documents, e.g. \"\\n\\n\"",
                );
            }
            if s.column.as_deref().is_some_and(|c| c.trim().is_empty()) {
                invalid(
                    format!("{at}.column"),
                    "`column` is empty".to_string(),
                    "name the column holding the text",
                );
            }
            if let Some(path) = s.local_path() {
                if path.trim().is_empty() {
                    invalid(
                        at.clone(),
                        "the source's path is empty".to_string(),
                        "give a file, directory or glob relative to the manifest",
                    );
                }
            }
            if let Some(syn) = &s.synthetic {
                if syn.documents == 0 {
                    invalid(
                        format!("{at}.synthetic.documents"),
                        "`documents` is 0".to_string(),
                        "generate at least one document",
                    );
                }
            }
            if s.shape() != shape {
                invalid(
                    at.clone(),
                    format!(
                        "source {i} produces records with columns {:?}, source 0 with {:?}",
                        s.shape().columns(),
                        shape.columns()
                    ),
                    "put sources of different shapes (text, instructions, preferences) in separate data stages",
                );
            }
        }
        if let Some(max) = self.clean.max_chars {
            if max < self.clean.min_chars {
                invalid(
                    "clean.max_chars".to_string(),
                    format!(
                        "`max_chars` ({max}) is below `min_chars` ({})",
                        self.clean.min_chars
                    ),
                    "raise `max_chars` or lower `min_chars`",
                );
            }
        }
        if let Some(f) = self.split.val_fraction {
            if !(0.0..1.0).contains(&f) {
                invalid(
                    "split.val_fraction".to_string(),
                    format!("`val_fraction` is {f}, outside [0, 1)"),
                    "use a share such as 0.05",
                );
            }
            if self.split.val_docs.is_some() {
                invalid(
                    "split.val_docs".to_string(),
                    "both `val_fraction` and `val_docs` are set".to_string(),
                    "keep one of them",
                );
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_source(path: &str) -> DataSource {
        DataSource {
            path: Some(path.to_string()),
            ..DataSource::default()
        }
    }

    fn params(sources: Vec<DataSource>) -> DataParams {
        DataParams {
            sources,
            clean: CleanParams::default(),
            split: SplitParams::default(),
        }
    }

    #[test]
    fn a_source_must_set_exactly_one_kind() {
        let mut two = text_source("a.txt");
        two.jsonl = Some("b.jsonl".to_string());
        let p = params(vec![text_source("a.txt"), two, DataSource::default()]);
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, vec!["sources[1]", "sources[2]"]);
        assert!(params(vec![text_source("a.txt")]).validate().is_empty());
    }

    #[test]
    fn mixed_shapes_and_bad_split_are_reported() {
        let syn = DataSource {
            synthetic: Some(SyntheticSource {
                generator: Generator::Instructions,
                documents: 3,
            }),
            ..DataSource::default()
        };
        let mut p = params(vec![text_source("a.txt"), syn]);
        p.split.val_fraction = Some(1.5);
        p.split.val_docs = Some(3);
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            vec!["sources[1]", "split.val_fraction", "split.val_docs"]
        );
    }

    #[test]
    fn split_defaults_to_five_percent() {
        assert_eq!(
            SplitParams::default().selection(),
            ValSelection::Fraction(0.05)
        );
        let docs = SplitParams {
            val_fraction: None,
            val_docs: Some(7),
        };
        assert_eq!(docs.selection(), ValSelection::Count(7));
    }
}

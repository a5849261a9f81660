//! `kind: data` — a corpus read from files, tables or built-in generators, cleaned and split.

use std::path::Path;

use super::{Invalid, KindInfo, LocalFilesError, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

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
    /// An `http(s)://` address, downloaded once into the workspace's download cache and read
    /// like a local file of `format`. Requires `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// With `url`: the SHA-256 of the file, 64 hex digits. A download that does not match is
    /// an error and is not kept. Required with `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// With `url`: how to read the file, `text`, `jsonl`, `csv` or `parquet`. Default: from the
    /// address's extension (`.jsonl`/`.ndjson`, `.csv`, `.parquet`; anything else is text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SourceFormat>,
    /// With `jsonl`, `csv`, `parquet` or a table `url`: the column holding the text.
    /// Default: `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// With `jsonl` (or a JSON Lines `url`): what each line holds. `text` (the field named by
    /// `column`), `instructions` (`prompt`, `response`), `preferences` (`prompt`, `chosen`,
    /// `rejected`) or `messages` (an OpenAI-style conversation, `{"messages": [{"role":
    /// "user", "content": "…"}, …]}`, for sft). Default: `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordShape>,
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

/// How a downloaded file is read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Text,
    Jsonl,
    Csv,
    Parquet,
}

impl SourceFormat {
    /// The format an address's file extension suggests (query and fragment ignored).
    pub fn from_url(url: &str) -> SourceFormat {
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .to_ascii_lowercase();
        if path.ends_with(".jsonl") || path.ends_with(".ndjson") {
            SourceFormat::Jsonl
        } else if path.ends_with(".csv") {
            SourceFormat::Csv
        } else if path.ends_with(".parquet") {
            SourceFormat::Parquet
        } else {
            SourceFormat::Text
        }
    }
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

/// The record shape a source produces; all sources of one stage must agree. As a `jsonl`
/// source's `records:` key, it says which fields each line holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum RecordShape {
    /// One `text` column.
    #[serde(rename = "text")]
    Text,
    /// `prompt`, `response`: one user turn and the assistant's answer.
    #[serde(rename = "instructions")]
    Instruction,
    /// `prompt`, `chosen`, `rejected` (TRL's preference layout).
    #[serde(rename = "preferences")]
    Preference,
    /// `messages`: an OpenAI-style conversation, `[{"role", "content"}, …]` with roles
    /// `system`, `user` and `assistant`; one or more assistant turns. Written to the split as
    /// the conversation's JSON text.
    #[serde(rename = "messages")]
    Messages,
}

impl RecordShape {
    /// The output columns, in order (for `jsonl` sources, the fields each line must have).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            RecordShape::Text => &["text"],
            RecordShape::Instruction => &["prompt", "response"],
            RecordShape::Preference => &["prompt", "chosen", "rejected"],
            RecordShape::Messages => &["messages"],
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
    Url {
        url: &'a str,
        sha256: &'a str,
        format: SourceFormat,
        column: &'a str,
        separator: Option<&'a str>,
    },
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
        if let Some(url) = &self.url {
            found.push(SourceSpec::Url {
                url,
                sha256: self.sha256.as_deref().unwrap_or(""),
                format: self.format.unwrap_or_else(|| SourceFormat::from_url(url)),
                column,
                separator: self.separator.as_deref(),
            });
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
            SourceSpec::Synthetic(_) | SourceSpec::Url { .. } => None,
        }
    }

    /// The record shape this source produces.
    pub fn shape(&self) -> RecordShape {
        match self.synthetic.as_ref().map(|s| s.generator) {
            Some(Generator::Instructions) => RecordShape::Instruction,
            Some(Generator::Preferences) => RecordShape::Preference,
            Some(Generator::Stories) => RecordShape::Text,
            None => self.records.unwrap_or(RecordShape::Text),
        }
    }
}

/// `clean:` — per-document cleaning and filtering. Steps run in this order: HTML stripping,
/// normalization, control characters, whitespace, length filters, language filter, quality
/// heuristics, exact deduplication, near-duplicate removal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanParams {
    /// Parse each document as HTML and keep only its text: tags go, entities (`&amp;`) are
    /// decoded, `<script>`/`<style>` contents are dropped, block elements become line breaks.
    /// Only documents containing `<` or `&` are parsed. Default `false`.
    #[serde(default)]
    pub strip_html: bool,
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
    /// Keep only documents in these languages, detected by whatlang: ISO 639-1 (`en`) or
    /// 639-3 (`eng`) codes. Default: no language filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// With `languages`: also drop documents whose detection confidence (0–1) is below this.
    /// Default 0 (any confidence).
    #[serde(default)]
    pub min_language_confidence: f64,
    /// Gopher-style quality heuristics; `quality: {}` turns them on with the defaults below,
    /// and a threshold set to `null` is skipped. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityParams>,
    /// MinHash + LSH near-duplicate removal; `near_dedup: {}` turns it on with the defaults.
    /// Of each group of near-duplicates the document with the smallest content hash is kept,
    /// so the result does not depend on input order. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_dedup: Option<NearDedupParams>,
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
            strip_html: false,
            languages: None,
            min_language_confidence: 0.0,
            quality: None,
            near_dedup: None,
        }
    }
}

/// `clean.quality:` — the document filters of Gopher (Rae et al. 2021, appendix A), each a
/// threshold; words are whitespace-separated tokens, lines are split at `\n`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityParams {
    /// Fewest words. Default 50.
    #[serde(default = "q_min_words")]
    pub min_words: Option<usize>,
    /// Most words. Default 100000.
    #[serde(default = "q_max_words")]
    pub max_words: Option<usize>,
    /// Lowest mean word length, in characters. Default 3.
    #[serde(default = "q_min_mean_word")]
    pub min_mean_word_length: Option<f64>,
    /// Highest mean word length, in characters. Default 10.
    #[serde(default = "q_max_mean_word")]
    pub max_mean_word_length: Option<f64>,
    /// Highest ratio of `#` and ellipses (`...`, `…`) to words. Default 0.1.
    #[serde(default = "q_symbols")]
    pub max_symbol_word_ratio: Option<f64>,
    /// Highest share of non-empty lines starting with a bullet (`•`, `-`, `*`, `‣`, `◦`, `·`).
    /// Default 0.9.
    #[serde(default = "q_bullets")]
    pub max_bullet_lines: Option<f64>,
    /// Highest share of non-empty lines ending with an ellipsis. Default 0.3.
    #[serde(default = "q_ellipsis")]
    pub max_ellipsis_lines: Option<f64>,
    /// Lowest share of words containing an alphabetic character. Default 0.8.
    #[serde(default = "q_alpha")]
    pub min_alpha_words: Option<f64>,
    /// Highest share of non-empty lines that repeat an earlier line of the document.
    /// Default 0.3.
    #[serde(default = "q_dup_lines")]
    pub max_duplicate_lines: Option<f64>,
    /// Fewest distinct English stop words (the, be, to, of, and, that, have, with). Default
    /// `null` (off): set it to 2, as Gopher does, for English corpora.
    #[serde(default)]
    pub min_stop_words: Option<usize>,
}

fn q_min_words() -> Option<usize> {
    Some(50)
}
fn q_max_words() -> Option<usize> {
    Some(100_000)
}
fn q_min_mean_word() -> Option<f64> {
    Some(3.0)
}
fn q_max_mean_word() -> Option<f64> {
    Some(10.0)
}
fn q_symbols() -> Option<f64> {
    Some(0.1)
}
fn q_bullets() -> Option<f64> {
    Some(0.9)
}
fn q_ellipsis() -> Option<f64> {
    Some(0.3)
}
fn q_alpha() -> Option<f64> {
    Some(0.8)
}
fn q_dup_lines() -> Option<f64> {
    Some(0.3)
}

impl Default for QualityParams {
    fn default() -> Self {
        QualityParams {
            min_words: q_min_words(),
            max_words: q_max_words(),
            min_mean_word_length: q_min_mean_word(),
            max_mean_word_length: q_max_mean_word(),
            max_symbol_word_ratio: q_symbols(),
            max_bullet_lines: q_bullets(),
            max_ellipsis_lines: q_ellipsis(),
            min_alpha_words: q_alpha(),
            max_duplicate_lines: q_dup_lines(),
            min_stop_words: None,
        }
    }
}

/// `clean.near_dedup:` — MinHash signatures of word shingles, grouped by LSH banding.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NearDedupParams {
    /// Estimated Jaccard similarity of word shingles above which two documents count as
    /// near-duplicates, in (0, 1). Default 0.8.
    #[serde(default = "nd_threshold")]
    pub threshold: f64,
    /// Words per shingle. Default 5.
    #[serde(default = "nd_shingle")]
    pub shingle_words: usize,
    /// MinHash permutations; the bands and rows per band are chosen from this and `threshold`.
    /// Default 128.
    #[serde(default = "nd_perm")]
    pub permutations: usize,
}

fn nd_threshold() -> f64 {
    0.8
}
fn nd_shingle() -> usize {
    5
}
fn nd_perm() -> usize {
    128
}

impl Default for NearDedupParams {
    fn default() -> Self {
        NearDedupParams {
            threshold: nd_threshold(),
            shingle_words: nd_shingle(),
            permutations: nd_perm(),
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

const SOURCE_KEYS: &str = "`path`, `jsonl`, `csv`, `parquet`, `url` or `synthetic`";

impl StageKind for DataParams {
    const INFO: KindInfo = KindInfo {
        name: "data",
        // 1: first version. 2: streaming passes; output ordered by content hash within buckets
        // written as several row groups; HTML, language, quality and near-duplicate steps.
        // 3: `instructions`/`preferences` ask where someone or something was at the start (was:
        // at the end); `records:` on JSON Lines sources (`messages` conversations).
        // 4: `instructions`/`preferences` ask about the one event of its kind in the story.
        version: 4,
        produces: ArtifactType::Corpus,
        runner: Runner::InProcess,
        headline: Some("documents_train"),
        // Parallel work is merged in content-hash order: no thread count changes a byte.
        reproducible: Reproducibility::Exact,
    };

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    /// Every local file the sources read, directories and globs expanded (sorted, so the order
    /// never depends on the file system). A source that matches nothing is an error.
    fn local_files(&self, manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        let mut out = Vec::new();
        for pattern in self.sources.iter().filter_map(|s| s.local_path()) {
            let files = crate::local::expand_local(manifest_dir, pattern).map_err(|source| {
                LocalFilesError {
                    pattern: pattern.to_string(),
                    source,
                }
            })?;
            for file in files {
                let relative = file.strip_prefix(manifest_dir).unwrap_or(&file);
                out.push(relative.to_string_lossy().into_owned());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
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
                s.url.is_some(),
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
            let url_format = s
                .url
                .as_ref()
                .map(|u| s.format.unwrap_or(SourceFormat::from_url(u)));
            let url_text = url_format == Some(SourceFormat::Text);
            let url_table = url_format.is_some() && !url_text;
            if s.separator.is_some() && s.path.is_none() && !url_text {
                invalid(
                    format!("{at}.separator"),
                    "`separator` only applies to a `path` source or a text `url`".to_string(),
                    "remove it, or read the text files with `path:`",
                );
            }
            if s.column.is_some()
                && s.jsonl.is_none()
                && s.csv.is_none()
                && s.parquet.is_none()
                && !url_table
            {
                invalid(
                    format!("{at}.column"),
                    "`column` only applies to a `jsonl`, `csv`, `parquet` or table `url` source"
                        .to_string(),
                    "remove it",
                );
            }
            let url_jsonl = url_format == Some(SourceFormat::Jsonl);
            if s.records.is_some() && s.jsonl.is_none() && !url_jsonl {
                invalid(
                    format!("{at}.records"),
                    "`records` only applies to a `jsonl` source or a JSON Lines `url`".to_string(),
                    "remove it, or read the file with `jsonl:`",
                );
            }
            if s.column.is_some() && s.records.is_some_and(|r| r != RecordShape::Text) {
                invalid(
                    format!("{at}.column"),
                    "`column` names the text field of `records: text`; other records have fixed fields"
                        .to_string(),
                    "remove `column`",
                );
            }
            if s.url.is_none() && (s.sha256.is_some() || s.format.is_some()) {
                invalid(
                    at.clone(),
                    "`sha256` and `format` only apply to a `url` source".to_string(),
                    "remove them, or add the `url:` they describe",
                );
            }
            if let Some(url) = &s.url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    invalid(
                        format!("{at}.url"),
                        format!("`{url}` is not an http:// or https:// address"),
                        "give the full address, or use `path:` for a local file",
                    );
                }
                match &s.sha256 {
                    None => invalid(
                        format!("{at}.sha256"),
                        "a `url` source needs a `sha256` pin".to_string(),
                        "add `sha256: <64 hex digits>` (e.g. from `sha256sum file`), so the download is checked and cached",
                    ),
                    Some(h) if !is_sha256(h) => invalid(
                        format!("{at}.sha256"),
                        format!("`{h}` is not 64 hex digits"),
                        "copy the digest printed by `sha256sum file`",
                    ),
                    Some(_) => {}
                }
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
                    "put sources of different shapes (text, instructions, preferences, messages) in separate data stages",
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
        if let Some(langs) = &self.clean.languages {
            if langs.is_empty() {
                invalid(
                    "clean.languages".to_string(),
                    "`languages` is empty, which would drop every document".to_string(),
                    "list the languages to keep, e.g. `[en]`, or remove the key",
                );
            }
        }
        if !(0.0..=1.0).contains(&self.clean.min_language_confidence) {
            invalid(
                "clean.min_language_confidence".to_string(),
                format!(
                    "`min_language_confidence` is {}, outside [0, 1]",
                    self.clean.min_language_confidence
                ),
                "use a confidence such as 0.5",
            );
        }
        if let Some(q) = &self.clean.quality {
            let shares = [
                ("max_symbol_word_ratio", q.max_symbol_word_ratio),
                ("max_bullet_lines", q.max_bullet_lines),
                ("max_ellipsis_lines", q.max_ellipsis_lines),
                ("min_alpha_words", q.min_alpha_words),
                ("max_duplicate_lines", q.max_duplicate_lines),
            ];
            for (key, value) in shares {
                if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                    invalid(
                        format!("clean.quality.{key}"),
                        format!("`{key}` is {v}, outside [0, 1]"),
                        "give a share between 0 and 1, or `null` to skip this check",
                    );
                }
            }
            if let (Some(lo), Some(hi)) = (q.min_words, q.max_words) {
                if hi < lo {
                    invalid(
                        "clean.quality.max_words".to_string(),
                        format!("`max_words` ({hi}) is below `min_words` ({lo})"),
                        "raise `max_words` or lower `min_words`",
                    );
                }
            }
            if let (Some(lo), Some(hi)) = (q.min_mean_word_length, q.max_mean_word_length) {
                if hi < lo {
                    invalid(
                        "clean.quality.max_mean_word_length".to_string(),
                        format!(
                            "`max_mean_word_length` ({hi}) is below `min_mean_word_length` ({lo})"
                        ),
                        "raise the maximum or lower the minimum",
                    );
                }
            }
        }
        if let Some(nd) = &self.clean.near_dedup {
            if !(nd.threshold > 0.0 && nd.threshold < 1.0) {
                invalid(
                    "clean.near_dedup.threshold".to_string(),
                    format!("`threshold` is {}, outside (0, 1)", nd.threshold),
                    "use a Jaccard similarity such as 0.8",
                );
            }
            if nd.shingle_words == 0 {
                invalid(
                    "clean.near_dedup.shingle_words".to_string(),
                    "`shingle_words` is 0".to_string(),
                    "use at least 1 word per shingle (5 is usual)",
                );
            }
            if !(2..=1024).contains(&nd.permutations) {
                invalid(
                    "clean.near_dedup.permutations".to_string(),
                    format!("`permutations` is {}, outside 2..=1024", nd.permutations),
                    "128 is usual",
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

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
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
    fn records_apply_to_json_lines_only_and_set_the_shape() {
        let chats = DataSource {
            jsonl: Some("chats.jsonl".to_string()),
            records: Some(RecordShape::Messages),
            ..DataSource::default()
        };
        assert_eq!(chats.shape(), RecordShape::Messages);
        assert!(params(vec![chats.clone()]).validate().is_empty());
        let mut on_text = text_source("a.txt");
        on_text.records = Some(RecordShape::Messages);
        let mut with_column = chats.clone();
        with_column.column = Some("body".to_string());
        let p = params(vec![chats, on_text, with_column]);
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, vec!["sources[1].records", "sources[2].column"]);
    }

    #[test]
    fn a_url_needs_a_well_formed_pin_and_an_address() {
        let url = |u: &str, sha: Option<&str>| DataSource {
            url: Some(u.to_string()),
            sha256: sha.map(str::to_string),
            ..DataSource::default()
        };
        let good = "ab".repeat(32);
        assert!(params(vec![url("https://x.org/a.txt", Some(&good))])
            .validate()
            .is_empty());
        let p = params(vec![
            url("https://x.org/a.txt", None),
            url("https://x.org/a.txt", Some("abc")),
            url("ftp://x.org/a.txt", Some(&good)),
        ]);
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            vec!["sources[0].sha256", "sources[1].sha256", "sources[2].url"]
        );
        let mut stray = text_source("a.txt");
        stray.sha256 = Some(good);
        assert_eq!(params(vec![stray]).validate().len(), 1);
    }

    #[test]
    fn url_format_follows_the_extension_unless_given() {
        assert_eq!(
            SourceFormat::from_url("https://h/x.JSONL?x=1"),
            SourceFormat::Jsonl
        );
        assert_eq!(SourceFormat::from_url("https://h/x.csv"), SourceFormat::Csv);
        assert_eq!(
            SourceFormat::from_url("https://h/x.parquet#f"),
            SourceFormat::Parquet
        );
        assert_eq!(SourceFormat::from_url("https://h/book"), SourceFormat::Text);
        let mut s = DataSource {
            url: Some("https://h/x.csv".to_string()),
            sha256: Some("0".repeat(64)),
            column: Some("body".to_string()),
            ..DataSource::default()
        };
        assert!(params(vec![s.clone()]).validate().is_empty());
        s.format = Some(SourceFormat::Text);
        // A text download has no columns.
        assert_eq!(params(vec![s]).validate().len(), 1);
    }

    #[test]
    fn cleaning_thresholds_are_checked() {
        let mut p = params(vec![text_source("a.txt")]);
        p.clean.languages = Some(Vec::new());
        p.clean.min_language_confidence = 2.0;
        p.clean.quality = Some(QualityParams {
            max_bullet_lines: Some(1.5),
            min_words: Some(10),
            max_words: Some(5),
            ..QualityParams::default()
        });
        p.clean.near_dedup = Some(NearDedupParams {
            threshold: 1.0,
            shingle_words: 0,
            permutations: 1,
        });
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            vec![
                "clean.languages",
                "clean.min_language_confidence",
                "clean.quality.max_bullet_lines",
                "clean.quality.max_words",
                "clean.near_dedup.threshold",
                "clean.near_dedup.shingle_words",
                "clean.near_dedup.permutations",
            ]
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

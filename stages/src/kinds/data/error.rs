//! What can go wrong in a data stage, each naming the file and how to fix it.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("source `{pattern}`: {source}")]
    Expand {
        pattern: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "{path}: invalid UTF-8 at byte {offset} (hint: fix the file, or set `clean: {{ invalid_utf8: repair }}` to replace bad bytes with U+FFFD)"
    )]
    InvalidUtf8 { path: PathBuf, offset: usize },
    #[error(
        "{path}{line}: no column `{column}`; columns there: {available} (hint: set `column:` on the source to one of them)",
        line = line.map(|l| format!(":{l}")).unwrap_or_default(),
        available = if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    MissingColumn {
        path: PathBuf,
        /// 1-based line, for JSON Lines.
        line: Option<usize>,
        column: String,
        available: Vec<String>,
    },
    #[error(
        "{path}{line}: column `{column}` holds {found}, not text (hint: point `column:` at a string column)",
        line = line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    NotText {
        path: PathBuf,
        line: Option<usize>,
        column: String,
        found: String,
    },
    #[error(
        "{path}:{line}: not a JSON object: {message} (hint: JSON Lines needs one object per line)"
    )]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}:{line}: no field `{field}`; fields there: {available} (hint: `records: {records}` lines need the fields {needed})",
        available = if available.is_empty() { "none".to_string() } else { available.join(", ") },
        records = serde_json::to_value(records).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        needed = records.columns().join(", "),
    )]
    MissingField {
        path: PathBuf,
        line: usize,
        field: &'static str,
        records: pipelines::RecordShape,
        available: Vec<String>,
    },
    #[error(
        "{path}:{line}: {source} (hint: each line needs `\"messages\": [{{\"role\": \"user\", \"content\": \"…\"}}, {{\"role\": \"assistant\", \"content\": \"…\"}}]`, roles system, user or assistant)"
    )]
    Messages {
        path: PathBuf,
        line: usize,
        #[source]
        source: records::messages::MessagesError,
    },
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error(
        "no documents left after cleaning ({removed}) (hint: check the sources, or loosen `clean:` filters such as `min_chars`/`max_chars`)"
    )]
    Empty { removed: String },
    #[error(
        "`clean.languages`: unknown language `{code}` (hint: use an ISO 639-1 or 639-3 code; known: {known})"
    )]
    UnknownLanguage { code: String, known: String },
    #[error("{url}: {message}")]
    Download { url: String, message: String },
    #[error(
        "{url}: the download's SHA-256 is {actual}, but the manifest pins {expected}; nothing was kept (hint: check the address, or update `sha256:` if the file legitimately changed)"
    )]
    Sha256Mismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("cancelled")]
    Cancelled,
}

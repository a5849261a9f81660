//! Reading a source's documents: text files, JSON Lines, CSV and Parquet columns, and the
//! built-in generators.

mod table;
mod text;

use std::path::{Path, PathBuf};

use pipelines::{DataSource, InvalidUtf8, SourceSpec};

use super::doc::Doc;
use super::error::DataError;
use super::synthetic;

/// Documents read from one source, and what decoding had to repair.
#[derive(Debug, Default)]
pub struct Read {
    pub docs: Vec<Doc>,
    /// Documents in which invalid UTF-8 was replaced by U+FFFD.
    pub repaired_docs: usize,
    /// Rows without a value (null) in the text column, skipped.
    pub null_rows: usize,
}

/// Reads source number `index` of a stage whose manifest lives in `dir`.
pub fn read(
    dir: &Path,
    index: usize,
    source: &DataSource,
    seed: u64,
    utf8: InvalidUtf8,
) -> Result<Read, DataError> {
    let pinned = source.split;
    let Some(spec) = source.spec() else {
        // Validation at load time guarantees exactly one kind; this is a programming error.
        return Err(DataError::Table {
            path: PathBuf::from(format!("sources[{index}]")),
            message: "the source sets no reader".to_string(),
        });
    };
    let files = |pattern: &str| {
        pipelines::expand_local(dir, pattern).map_err(|source| DataError::Expand {
            pattern: pattern.to_string(),
            source,
        })
    };
    let mut read = match spec {
        SourceSpec::Path { path, separator } => text::read_files(&files(path)?, separator, utf8)?,
        SourceSpec::Jsonl { path, column } => table::read_jsonl(&files(path)?, column, utf8)?,
        SourceSpec::Csv { path, column } => table::read_csv(&files(path)?, column, utf8)?,
        SourceSpec::Parquet { path, column } => table::read_parquet(&files(path)?, column)?,
        SourceSpec::Synthetic(s) => Read {
            docs: synthetic::generate(s.generator, s.documents, seed, index as u64)
                .into_iter()
                .map(|fields| Doc {
                    fields,
                    pinned: None,
                })
                .collect(),
            ..Read::default()
        },
    };
    for d in &mut read.docs {
        d.pinned = pinned;
    }
    Ok(read)
}

/// Bytes as UTF-8: as is when valid; otherwise repaired (U+FFFD, `true` returned) or an error
/// naming the file and the byte offset.
pub fn decode(bytes: Vec<u8>, path: &Path, utf8: InvalidUtf8) -> Result<(String, bool), DataError> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok((s, false)),
        Err(e) => match utf8 {
            InvalidUtf8::Error => Err(DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                offset: e.utf8_error().valid_up_to(),
            }),
            InvalidUtf8::Repair => Ok((String::from_utf8_lossy(e.as_bytes()).into_owned(), true)),
        },
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

//! Reading a source's documents — text files, JSON Lines, CSV and Parquet columns, pinned
//! downloads and the built-in generators — handed on in batches so that memory holds one
//! batch, not the corpus.

pub mod download;
mod table;
mod text;

use std::path::{Path, PathBuf};

use pipelines::{DataSource, InvalidUtf8, SourceFormat, SourceSpec};

use super::doc::Doc;
use super::error::DataError;
use super::synthetic;

/// A batch is handed on once it holds this many documents…
const BATCH_DOCS: usize = 4096;
/// …or this many bytes of text.
const BATCH_BYTES: usize = 8 << 20;

/// What one source gave.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub documents: usize,
    pub chars: usize,
    /// UTF-8 bytes of the documents' text.
    pub bytes: usize,
    /// Rows without a value (null) in the text column, skipped.
    pub null_rows: usize,
    /// Documents in which invalid UTF-8 was replaced by U+FFFD.
    pub repaired_docs: usize,
}

/// Collects documents into batches for `sink`, counting them.
pub struct Batcher<'a> {
    docs: Vec<Doc>,
    bytes: usize,
    pinned: Option<pipelines::SplitName>,
    sink: &'a mut dyn FnMut(Vec<Doc>) -> Result<(), DataError>,
    pub totals: Totals,
}

impl<'a> Batcher<'a> {
    pub fn new(
        pinned: Option<pipelines::SplitName>,
        sink: &'a mut dyn FnMut(Vec<Doc>) -> Result<(), DataError>,
    ) -> Self {
        Batcher {
            docs: Vec::new(),
            bytes: 0,
            pinned,
            sink,
            totals: Totals::default(),
        }
    }

    /// Adds one record (its fields in the output's column order).
    pub fn push(&mut self, fields: Vec<String>) -> Result<(), DataError> {
        let bytes: usize = fields.iter().map(String::len).sum();
        let doc = Doc {
            fields,
            pinned: self.pinned,
        };
        self.totals.documents += 1;
        self.totals.chars += doc.chars();
        self.totals.bytes += bytes;
        self.bytes += bytes;
        self.docs.push(doc);
        if self.docs.len() >= BATCH_DOCS || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), DataError> {
        if self.docs.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        (self.sink)(std::mem::take(&mut self.docs))
    }
}

/// Where a source gets what it needs besides its own parameters.
pub struct Env<'a> {
    /// The manifest's directory (relative paths start here).
    pub dir: &'a Path,
    pub seed: u64,
    pub utf8: InvalidUtf8,
    /// Where downloads are cached by SHA-256.
    pub downloads: &'a Path,
    /// Download progress (bytes so far, total if known) and cancellation.
    pub observer: &'a dyn common::observe::Observer,
}

/// Reads source number `index` into `sink`, batch by batch.
pub fn read(
    env: &Env,
    index: usize,
    source: &DataSource,
    sink: &mut dyn FnMut(Vec<Doc>) -> Result<(), DataError>,
) -> Result<Totals, DataError> {
    let Some(spec) = source.spec() else {
        // Validation at load time guarantees exactly one kind; this is a programming error.
        return Err(DataError::Table {
            path: PathBuf::from(format!("sources[{index}]")),
            message: "the source sets no reader".to_string(),
        });
    };
    let files = |pattern: &str| {
        pipelines::expand_local(env.dir, pattern).map_err(|source| DataError::Expand {
            pattern: pattern.to_string(),
            source,
        })
    };
    let mut out = Batcher::new(source.split, sink);
    let utf8 = env.utf8;
    match spec {
        SourceSpec::Path { path, separator } => {
            text::read_files(&files(path)?, separator, utf8, &mut out)?
        }
        SourceSpec::Jsonl { path, column } => {
            table::read_jsonl(&files(path)?, column, source.shape(), utf8, &mut out)?
        }
        SourceSpec::Csv { path, column } => table::read_csv(&files(path)?, column, utf8, &mut out)?,
        SourceSpec::Parquet { path, column } => {
            table::read_parquet(&files(path)?, column, &mut out)?
        }
        SourceSpec::Synthetic(s) => {
            for fields in synthetic::generate(s.generator, s.documents, env.seed, index as u64) {
                out.push(fields)?;
            }
        }
        SourceSpec::Url {
            url,
            sha256,
            format,
            column,
            separator,
        } => {
            let file = download::fetch(
                &download::Request {
                    url,
                    sha256,
                    cache: env.downloads,
                    policy: download::RetryPolicy::default(),
                },
                &|done, total| env.observer.progress(done, total),
                &|| env.observer.cancelled(),
            )?;
            let files = [file];
            match format {
                SourceFormat::Text => text::read_files(&files, separator, utf8, &mut out)?,
                SourceFormat::Jsonl => {
                    table::read_jsonl(&files, column, source.shape(), utf8, &mut out)?
                }
                SourceFormat::Csv => table::read_csv(&files, column, utf8, &mut out)?,
                SourceFormat::Parquet => table::read_parquet(&files, column, &mut out)?,
            }
        }
    }
    out.flush()?;
    Ok(out.totals)
}

/// Bytes as UTF-8: as is when valid; otherwise repaired (U+FFFD, `true` returned) or an error
/// naming the file and the byte offset (`base` is where `bytes` start in the file).
pub fn decode(
    bytes: Vec<u8>,
    path: &Path,
    base: usize,
    utf8: InvalidUtf8,
) -> Result<(String, bool), DataError> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok((s, false)),
        Err(e) => match utf8 {
            InvalidUtf8::Error => Err(DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                offset: base + e.utf8_error().valid_up_to(),
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

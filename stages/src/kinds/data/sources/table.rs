//! `jsonl:`, `csv:` and `parquet:` sources: one document per row, from the column `column`.

use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

use pipelines::{InvalidUtf8, RecordShape};
use polars::prelude::{CsvReadOptions, DataFrame, ParquetReader, SerReader};
use records::messages::json_type;

use super::{decode, read_bytes, Batcher};
use crate::kinds::data::error::DataError;

/// Streams the file line by line: memory holds one line and the current batch. Each line gives
/// the fields of `shape`: the text field `column`, or a chat record's fixed fields.
pub fn read_jsonl(
    files: &[PathBuf],
    column: &str,
    shape: RecordShape,
    utf8: InvalidUtf8,
    out: &mut Batcher,
) -> Result<(), DataError> {
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| DataError::Read {
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        let mut offset = 0usize;
        let mut line_no = 0usize;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| DataError::Read {
                    path: path.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let (line, repaired) = decode(std::mem::take(&mut buf), path, offset, utf8)?;
            offset += n;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| DataError::Json {
                    path: path.clone(),
                    line: line_no,
                    message: e.to_string(),
                })?;
            let serde_json::Value::Object(mut object) = value else {
                return Err(DataError::Json {
                    path: path.clone(),
                    line: line_no,
                    message: format!("found {}", json_type(&value)),
                });
            };
            if shape != RecordShape::Text {
                let fields = chat_fields(&mut object, shape, path, line_no)?;
                out.push(fields)?;
                continue;
            }
            match object.remove(column) {
                Some(serde_json::Value::String(s)) => {
                    if repaired && s.contains(char::REPLACEMENT_CHARACTER) {
                        out.totals.repaired_docs += 1;
                    }
                    out.push(vec![s])?;
                }
                Some(serde_json::Value::Null) => out.totals.null_rows += 1,
                Some(other) => {
                    return Err(DataError::NotText {
                        path: path.clone(),
                        line: Some(line_no),
                        column: column.to_string(),
                        found: json_type(&other).to_string(),
                    })
                }
                None => {
                    return Err(DataError::MissingColumn {
                        path: path.clone(),
                        line: Some(line_no),
                        column: column.to_string(),
                        available: object.keys().cloned().collect(),
                    })
                }
            }
        }
    }
    Ok(())
}

/// The fields of a chat record (`instructions`, `preferences`, `messages`) from one JSON Lines
/// object: text fields as they are; a conversation checked and written as its canonical JSON.
fn chat_fields(
    object: &mut serde_json::Map<String, serde_json::Value>,
    shape: RecordShape,
    path: &Path,
    line: usize,
) -> Result<Vec<String>, DataError> {
    shape
        .columns()
        .iter()
        .map(|&field| {
            let value = object
                .remove(field)
                .ok_or_else(|| DataError::MissingField {
                    path: path.to_path_buf(),
                    line,
                    field,
                    records: shape,
                    available: object.keys().cloned().collect(),
                })?;
            if shape == RecordShape::Messages {
                return records::messages::from_value(&value)
                    .map(|m| records::messages::to_json(&m))
                    .map_err(|source| DataError::Messages {
                        path: path.to_path_buf(),
                        line,
                        source,
                    });
            }
            match value {
                serde_json::Value::String(s) => Ok(s),
                other => Err(DataError::NotText {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: field.to_string(),
                    found: json_type(&other).to_string(),
                }),
            }
        })
        .collect()
}

/// Each file is read whole by polars (memory: one file's column at a time).
pub fn read_csv(
    files: &[PathBuf],
    column: &str,
    utf8: InvalidUtf8,
    out: &mut Batcher,
) -> Result<(), DataError> {
    for path in files {
        // Decoding here (not in polars) gives CSV the same repair-or-error rule as text files.
        let (text, _) = decode(read_bytes(path)?, path, 0, utf8)?;
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(text.into_bytes()))
            .finish()
            .map_err(|e| table_error(path, e))?;
        column_into(&df, path, column, out)?;
    }
    Ok(())
}

/// Each file is read whole by polars, only the text column (memory: one file's column).
pub fn read_parquet(files: &[PathBuf], column: &str, out: &mut Batcher) -> Result<(), DataError> {
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| DataError::Read {
            path: path.clone(),
            source,
        })?;
        let mut reader = ParquetReader::new(file);
        let available: Vec<String> = reader
            .schema()
            .map_err(|e| table_error(path, e))?
            .iter_names()
            .map(|c| c.to_string())
            .collect();
        if !available.iter().any(|c| c == column) {
            return Err(DataError::MissingColumn {
                path: path.clone(),
                line: None,
                column: column.to_string(),
                available,
            });
        }
        let df = reader
            .with_columns(Some(vec![column.to_string()]))
            .finish()
            .map_err(|e| table_error(path, e))?;
        column_into(&df, path, column, out)?;
    }
    Ok(())
}

fn table_error(path: &Path, e: polars::error::PolarsError) -> DataError {
    DataError::Table {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Appends the non-null values of `column` as documents.
fn column_into(
    df: &DataFrame,
    path: &Path,
    column: &str,
    out: &mut Batcher,
) -> Result<(), DataError> {
    let Ok(col) = df.column(column) else {
        return Err(DataError::MissingColumn {
            path: path.to_path_buf(),
            line: None,
            column: column.to_string(),
            available: df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        });
    };
    let values = col.str().map_err(|_| DataError::NotText {
        path: path.to_path_buf(),
        line: None,
        column: column.to_string(),
        found: col.dtype().to_string(),
    })?;
    for v in values.iter() {
        match v {
            Some(s) => out.push(vec![s.to_string()])?,
            None => out.totals.null_rows += 1,
        }
    }
    Ok(())
}

//! `jsonl:`, `csv:` and `parquet:` sources: one document per row, from the column `column`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pipelines::InvalidUtf8;
use polars::prelude::{CsvReadOptions, DataFrame, ParquetReader, SerReader};

use super::{decode, read_bytes, Read};
use crate::data::doc::Doc;
use crate::data::error::DataError;

pub fn read_jsonl(files: &[PathBuf], column: &str, utf8: InvalidUtf8) -> Result<Read, DataError> {
    let mut read = Read::default();
    for path in files {
        let (text, _) = decode(read_bytes(path)?, path, utf8)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let line_no = i + 1;
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| DataError::Json {
                    path: path.clone(),
                    line: line_no,
                    message: e.to_string(),
                })?;
            let serde_json::Value::Object(object) = value else {
                return Err(DataError::Json {
                    path: path.clone(),
                    line: line_no,
                    message: format!("found {}", json_type(&value)),
                });
            };
            match object.get(column) {
                Some(serde_json::Value::String(s)) => {
                    if s.contains(char::REPLACEMENT_CHARACTER) {
                        read.repaired_docs += 1;
                    }
                    read.docs.push(Doc::text(s.clone(), None));
                }
                Some(serde_json::Value::Null) => read.null_rows += 1,
                Some(other) => {
                    return Err(DataError::NotText {
                        path: path.clone(),
                        line: Some(line_no),
                        column: column.to_string(),
                        found: json_type(other).to_string(),
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
    Ok(read)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

pub fn read_csv(files: &[PathBuf], column: &str, utf8: InvalidUtf8) -> Result<Read, DataError> {
    let mut read = Read::default();
    for path in files {
        // Decoding here (not in polars) gives CSV the same repair-or-error rule as text files.
        let (text, _) = decode(read_bytes(path)?, path, utf8)?;
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(Cursor::new(text.into_bytes()))
            .finish()
            .map_err(|e| table_error(path, e))?;
        column_into(&df, path, column, &mut read)?;
    }
    Ok(read)
}

pub fn read_parquet(files: &[PathBuf], column: &str) -> Result<Read, DataError> {
    let mut read = Read::default();
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| DataError::Read {
            path: path.clone(),
            source,
        })?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| table_error(path, e))?;
        column_into(&df, path, column, &mut read)?;
    }
    Ok(read)
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
    read: &mut Read,
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
            Some(s) => read.docs.push(Doc::text(s.to_string(), None)),
            None => read.null_rows += 1,
        }
    }
    Ok(())
}

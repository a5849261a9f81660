//! Writing a split as Parquet: one string column per field of the record shape.

use std::path::Path;

use pipelines::RecordShape;
use polars::prelude::{Column, DataFrame, ParquetWriter};

use super::doc::Doc;
use super::error::DataError;

/// Writes `docs` to `path` with the columns of `shape`.
pub fn write_parquet(path: &Path, shape: RecordShape, docs: &[Doc]) -> Result<(), DataError> {
    let fail = |message: String| DataError::Write {
        path: path.to_path_buf(),
        message,
    };
    let columns: Vec<Column> = shape
        .columns()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<&str> = docs.iter().map(|d| d.fields[i].as_str()).collect();
            Column::new((*name).into(), values)
        })
        .collect();
    let mut df = DataFrame::new(docs.len(), columns).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| fail(e.to_string()))?;
    ParquetWriter::new(file)
        .finish(&mut df)
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

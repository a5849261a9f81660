//! Writing a split as Parquet, batch by batch: one string column per field of the record
//! shape, each batch a row group, so memory holds one batch rather than the split.

use std::fs::File;
use std::path::{Path, PathBuf};

use pipelines::RecordShape;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{Column, DataFrame, DataType, Field, ParquetWriter, Schema};

use super::doc::Doc;
use super::error::DataError;

/// Rows per row group…
const GROUP_DOCS: usize = 16_384;
/// …or bytes of text, whichever comes first.
const GROUP_BYTES: usize = 32 << 20;

pub struct SplitWriter {
    path: PathBuf,
    shape: RecordShape,
    writer: BatchedWriter<File>,
    pending: Vec<Doc>,
    pending_bytes: usize,
}

impl SplitWriter {
    pub fn create(path: &Path, shape: RecordShape) -> Result<SplitWriter, DataError> {
        let fail = |message: String| DataError::Write {
            path: path.to_path_buf(),
            message,
        };
        let schema: Schema = shape
            .columns()
            .iter()
            .map(|c| Field::new((*c).into(), DataType::String))
            .collect();
        let file = File::create(path).map_err(|e| fail(e.to_string()))?;
        let writer = ParquetWriter::new(file)
            .batched(&schema)
            .map_err(|e| fail(e.to_string()))?;
        Ok(SplitWriter {
            path: path.to_path_buf(),
            shape,
            writer,
            pending: Vec::new(),
            pending_bytes: 0,
        })
    }

    pub fn push(&mut self, doc: Doc) -> Result<(), DataError> {
        self.pending_bytes += doc.fields.iter().map(String::len).sum::<usize>();
        self.pending.push(doc);
        if self.pending.len() >= GROUP_DOCS || self.pending_bytes >= GROUP_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DataError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let columns: Vec<Column> = self
            .shape
            .columns()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values: Vec<&str> = self.pending.iter().map(|d| d.fields[i].as_str()).collect();
                Column::new((*name).into(), values)
            })
            .collect();
        let df = DataFrame::new(self.pending.len(), columns).map_err(|e| self.fail(e))?;
        self.writer.write_batch(&df).map_err(|e| self.fail(e))?;
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Writes what is pending and the file's footer.
    pub fn finish(mut self) -> Result<(), DataError> {
        self.flush()?;
        self.writer.finish().map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn fail(&self, e: impl std::fmt::Display) -> DataError {
        DataError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{ParquetReader, SerReader};

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(File::open(path).expect("open"))
            .finish()
            .expect("parquet")
    }

    #[test]
    fn batches_become_one_file_and_an_empty_split_is_still_valid() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("train.parquet");
        let mut w = SplitWriter::create(&path, RecordShape::Instruction).expect("create");
        for i in 0..(GROUP_DOCS + 10) {
            w.push(Doc {
                fields: vec![format!("q{i}"), format!("a{i}")],
                pinned: None,
            })
            .expect("push");
        }
        w.finish().expect("finish");
        let df = read(&path);
        assert_eq!(df.height(), GROUP_DOCS + 10);
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(names, ["prompt", "response"]);
        let last = df
            .column("response")
            .expect("col")
            .str()
            .expect("str")
            .get(GROUP_DOCS + 9);
        assert_eq!(last, Some(format!("a{}", GROUP_DOCS + 9).as_str()));

        let empty = dir.path().join("val.parquet");
        SplitWriter::create(&empty, RecordShape::Text)
            .expect("create")
            .finish()
            .expect("finish");
        let df = read(&empty);
        assert_eq!(df.height(), 0);
        assert!(df.column("text").is_ok());
    }
}

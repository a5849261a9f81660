//! `path:` sources: text files, one document per file or split at a separator. Each file is
//! read whole (a single file larger than memory needs splitting beforehand).

use std::path::PathBuf;

use pipelines::InvalidUtf8;

use super::{decode, read_bytes, Batcher};
use crate::kinds::data::error::DataError;

pub fn read_files(
    files: &[PathBuf],
    separator: Option<&str>,
    utf8: InvalidUtf8,
    out: &mut Batcher,
) -> Result<(), DataError> {
    for path in files {
        let (text, repaired) = decode(read_bytes(path)?, path, 0, utf8)?;
        let mut push = |doc: &str| -> Result<(), DataError> {
            if repaired && doc.contains(char::REPLACEMENT_CHARACTER) {
                out.totals.repaired_docs += 1;
            }
            out.push(vec![doc.to_string()])
        };
        match separator {
            Some(sep) => {
                for doc in text.split(sep) {
                    push(doc)?;
                }
            }
            None => push(&text)?,
        }
    }
    Ok(())
}

//! `path:` sources: text files, one document per file or split at a separator.

use std::path::PathBuf;

use pipelines::InvalidUtf8;

use super::{decode, read_bytes, Read};
use crate::data::doc::Doc;
use crate::data::error::DataError;

pub fn read_files(
    files: &[PathBuf],
    separator: Option<&str>,
    utf8: InvalidUtf8,
) -> Result<Read, DataError> {
    let mut read = Read::default();
    for path in files {
        let (text, repaired) = decode(read_bytes(path)?, path, utf8)?;
        let before = read.docs.len();
        match separator {
            Some(sep) => read
                .docs
                .extend(text.split(sep).map(|d| Doc::text(d.to_string(), None))),
            None => read.docs.push(Doc::text(text, None)),
        }
        if repaired {
            read.repaired_docs += read.docs[before..]
                .iter()
                .filter(|d| d.fields[0].contains(char::REPLACEMENT_CHARACTER))
                .count();
        }
    }
    Ok(read)
}

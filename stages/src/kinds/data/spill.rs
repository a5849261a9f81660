//! Kept documents parked on disk between the two passes, partitioned by the first bits of
//! their content hash. Near-duplicates can only be decided once every document has been seen,
//! and the output is ordered by content hash (so it does not depend on input order); bucketing
//! by hash gives both with memory for one bucket (≈ 1/64 of the corpus) at a time.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use pipelines::SplitName;

use super::doc::Doc;
use super::error::DataError;

pub const BUCKETS: usize = 64;

pub struct Spill {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
}

fn bucket_of(hash: &[u8; 32]) -> usize {
    (hash[0] as usize * BUCKETS) >> 8
}

fn bucket_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("bucket-{i:02}.bin"))
}

impl Spill {
    /// Starts an empty spill in `dir` (whatever was there is removed: a data stage restarts
    /// from its sources after an interruption).
    pub fn create(dir: &Path) -> Result<Spill, DataError> {
        let fail = |e: std::io::Error| DataError::Write {
            path: dir.to_path_buf(),
            message: e.to_string(),
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(fail)?;
        }
        std::fs::create_dir_all(dir).map_err(fail)?;
        let files = (0..BUCKETS)
            .map(|i| {
                File::create(bucket_path(dir, i)).map(|f| BufWriter::with_capacity(64 << 10, f))
            })
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            files,
        })
    }

    pub fn push(&mut self, hash: &[u8; 32], doc: &Doc) -> Result<(), DataError> {
        let i = bucket_of(hash);
        let w = &mut self.files[i];
        let pinned = match doc.pinned {
            None => 0u8,
            Some(SplitName::Train) => 1,
            Some(SplitName::Val) => 2,
        };
        let mut write = || -> std::io::Result<()> {
            w.write_all(hash)?;
            w.write_all(&[pinned])?;
            w.write_all(&(doc.fields.len() as u32).to_le_bytes())?;
            for f in &doc.fields {
                w.write_all(&(f.len() as u64).to_le_bytes())?;
                w.write_all(f.as_bytes())?;
            }
            Ok(())
        };
        write().map_err(|e| DataError::Write {
            path: bucket_path(&self.dir, i),
            message: e.to_string(),
        })
    }

    /// Flushes every bucket; they are then read back with [`read_bucket`].
    pub fn finish(mut self) -> Result<PathBuf, DataError> {
        for (i, f) in self.files.iter_mut().enumerate() {
            f.flush().map_err(|e| DataError::Write {
                path: bucket_path(&self.dir, i),
                message: e.to_string(),
            })?;
        }
        Ok(self.dir)
    }
}

/// Bucket `i` of the spill in `dir`, sorted by content hash.
pub fn read_bucket(dir: &Path, i: usize) -> Result<Vec<([u8; 32], Doc)>, DataError> {
    let path = bucket_path(dir, i);
    let fail = |e: std::io::Error| DataError::Read {
        path: path.clone(),
        source: e,
    };
    let mut r = BufReader::with_capacity(1 << 20, File::open(&path).map_err(fail)?);
    let mut out = Vec::new();
    let mut hash = [0u8; 32];
    loop {
        match r.read_exact(&mut hash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(fail(e)),
        }
        let mut small = [0u8; 5];
        r.read_exact(&mut small).map_err(fail)?;
        let pinned = match small[0] {
            1 => Some(SplitName::Train),
            2 => Some(SplitName::Val),
            _ => None,
        };
        let n = u32::from_le_bytes([small[1], small[2], small[3], small[4]]) as usize;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let mut len = [0u8; 8];
            r.read_exact(&mut len).map_err(fail)?;
            let mut bytes = vec![0u8; u64::from_le_bytes(len) as usize];
            r.read_exact(&mut bytes).map_err(fail)?;
            // Written from a String a moment ago; anything else is a corrupted scratch file.
            let s = String::from_utf8(bytes)
                .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            fields.push(s);
        }
        out.push((hash, Doc { fields, pinned }));
    }
    out.sort_unstable_by_key(|a| a.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_back_sorted_within_their_bucket() {
        let dir = tempfile::tempdir().expect("tmp");
        let spill_dir = dir.path().join("spill");
        let mut spill = Spill::create(&spill_dir).expect("create");
        let docs: Vec<Doc> = (0..500)
            .map(|i| Doc {
                fields: vec![format!("doc {i}"), "é".repeat(i % 3)],
                pinned: [None, Some(SplitName::Val), Some(SplitName::Train)][i % 3],
            })
            .collect();
        for d in &docs {
            spill.push(&d.content_hash(), d).expect("push");
        }
        let dir2 = spill.finish().expect("finish");
        let mut back = Vec::new();
        for i in 0..BUCKETS {
            let bucket = read_bucket(&dir2, i).expect("read");
            assert!(bucket.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(bucket
                .iter()
                .all(|(h, d)| bucket_of(h) == i && d.content_hash() == *h));
            back.extend(bucket.into_iter().map(|(_, d)| d));
        }
        assert_eq!(back.len(), docs.len());
        for d in &docs {
            assert!(back.contains(d));
        }
    }
}

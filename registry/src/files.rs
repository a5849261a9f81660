//! The file store: everything the workspace keeps as files — objects and their metadata, stage
//! records, run records, staging directories — and the truth the index is rebuilt from. It
//! knows paths and commit protocols (write to a temp name, then rename), nothing of sled.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::{list_dir, read_json, remove_file_if_exists, write_json};
use crate::layout::{Layout, CACHE};
use crate::owner::write_owner;
use crate::run_record::RunRecord;
use crate::stage_result::StageResult;

pub(crate) const RECORD_HINT: &str =
    "the stage record is damaged; delete it to forget that result (the stage will run again)";
pub(crate) const RUN_HINT: &str = "delete the file to forget the run";

/// The files of one workspace.
#[derive(Debug, Clone)]
pub(crate) struct FileStore {
    pub layout: Layout,
}

impl FileStore {
    /// The store of `root`, creating its directories.
    pub fn open(root: &Path) -> Result<FileStore> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        for dir in [
            layout.objects(),
            layout.records(),
            layout.runs(),
            layout.tmp(),
            layout.logs(),
        ] {
            fs::create_dir_all(&dir).at("create directory", &dir)?;
        }
        Ok(FileStore { layout })
    }

    /// The store of `root` as it is, creating nothing (for readers that must not write).
    pub fn existing(root: &Path) -> FileStore {
        FileStore {
            layout: Layout {
                root: root.to_path_buf(),
            },
        }
    }

    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.layout.root.join(CACHE)
    }

    pub fn log_dir(&self, run_id: &str) -> PathBuf {
        self.layout.logs().join(run_id)
    }

    /// Whether any object, record or run file exists (an index missing beside them is rebuilt).
    pub fn has_files(&self) -> Result<bool> {
        for dir in [
            self.layout.objects(),
            self.layout.records(),
            self.layout.runs(),
        ] {
            if !list_dir(&dir)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // --- stage records: records/<fp[0..2]>/<fingerprint>.json ---

    pub fn record(&self, fingerprint: &str) -> Result<Option<StageResult>> {
        read_json(
            &self.layout.record(fingerprint),
            "stage record",
            RECORD_HINT,
        )
    }

    pub fn has_record(&self, fingerprint: &str) -> bool {
        self.layout.record(fingerprint).is_file()
    }

    pub fn write_record(&self, result: &StageResult) -> Result<()> {
        write_json(
            &self.layout.record(&result.fingerprint),
            result,
            "stage record",
        )
    }

    pub fn remove_record(&self, fingerprint: &str) -> Result<()> {
        remove_file_if_exists(&self.layout.record(fingerprint))
    }

    /// Every stage record file, sorted.
    pub fn record_files(&self) -> Result<Vec<PathBuf>> {
        json_files_in_shards(&self.layout.records())
    }

    // --- run records: runs/<run_id>.json, and runs/<run_id>.owner while one executes ---

    pub fn write_run(&self, run: &RunRecord) -> Result<()> {
        write_json(&self.layout.run(&run.id), run, "run record")
    }

    pub fn run_owner(&self, id: &str) -> PathBuf {
        self.layout.run_owner(id)
    }

    pub fn claim_run(&self, id: &str) -> Result<()> {
        write_owner(&self.layout.run_owner(id))
    }

    /// (run id, path) of every run file, sorted by id.
    pub fn run_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.layout.runs();
        Ok(list_dir(&dir)?
            .into_iter()
            .filter_map(|name| {
                let id = name.strip_suffix(".json")?.to_string();
                Some((id, dir.join(&name)))
            })
            .collect())
    }

    // --- tmp/: staging directories and leftovers ---

    pub fn tmp(&self) -> PathBuf {
        self.layout.tmp()
    }

    /// Names of the entries of `tmp/`.
    pub fn tmp_entries(&self) -> Result<Vec<String>> {
        list_dir(&self.layout.tmp())
    }
}

/// `<dir>/<aa>/<name>.json` files, sorted.
pub(crate) fn json_files_in_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for shard in list_dir(dir)? {
        let shard_dir = dir.join(&shard);
        if !shard_dir.is_dir() {
            continue;
        }
        for name in list_dir(&shard_dir)? {
            if name.ends_with(".json") {
                out.push(shard_dir.join(name));
            }
        }
    }
    Ok(out)
}

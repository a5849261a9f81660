//! Rebuilding every index from the files of the workspace: object metadata, stage records and
//! run records. Used when the index is lost or corrupt; the files are the truth.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::{RegistryError, Result};
use crate::fsutil::{list_dir, read_json};
use crate::meta::ObjectMeta;
use crate::records::RECORD_HINT;
use crate::registry::{encode, stage_key, Registry};
use crate::run_record::{OutcomeStatus, RunRecord};
use crate::stage_result::StageResult;
use crate::store::META_HINT;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub objects: usize,
    pub results: usize,
    pub runs: usize,
    /// Files that could not be read and were left out, with the reason.
    pub skipped: Vec<String>,
}

impl fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rebuilt the index: {} object(s), {} stage result(s), {} run(s)",
            self.objects, self.results, self.runs
        )?;
        for s in &self.skipped {
            write!(f, "\n  skipped {s}")?;
        }
        Ok(())
    }
}

/// Orders candidates for "latest result of a stage": start time, then run id.
type Recency = (String, String);

impl Registry {
    /// Drop every index and rebuild it from the files.
    pub fn rebuild(&self) -> Result<RebuildReport> {
        for t in [
            &self.results,
            &self.stage_latest,
            &self.artifacts,
            &self.lineage,
            &self.consumers,
            &self.runs,
        ] {
            t.clear()
                .map_err(RegistryError::index("clearing the index"))?;
        }
        let mut report = RebuildReport::default();
        self.rebuild_objects(&mut report)?;

        let mut latest: BTreeMap<String, (Recency, String)> = BTreeMap::new();
        let mut offer = |key: String, recency: Recency, fp: &str| {
            let newer = latest.get(&key).is_none_or(|(r, _)| recency >= *r);
            if newer {
                latest.insert(key, (recency, fp.to_string()));
            }
        };

        for path in json_files_in_shards(&self.layout.records())? {
            match read_json::<StageResult>(&path, "stage record", RECORD_HINT) {
                Ok(Some(r)) => {
                    self.index_result(&r, false)?;
                    offer(
                        stage_key(&r.manifest, &r.stage),
                        (r.started_at.clone(), r.run_id.clone()),
                        &r.fingerprint,
                    );
                    report.results += 1;
                }
                Ok(None) => {}
                Err(e) => report.skipped.push(e.to_string()),
            }
        }

        let runs_dir = self.layout.runs();
        for name in list_dir(&runs_dir)? {
            if !name.ends_with(".json") {
                continue;
            }
            let path = runs_dir.join(&name);
            match read_json::<RunRecord>(&path, "run record", "delete the file to forget the run") {
                Ok(Some(run)) => {
                    self.runs
                        .insert(run.id.as_bytes(), encode(&run, "run record")?)
                        .map_err(RegistryError::index("recording a run"))?;
                    // A cached outcome also makes a result the stage's latest.
                    for o in &run.outcomes {
                        let (Some(fp), OutcomeStatus::Ran | OutcomeStatus::Cached) =
                            (&o.fingerprint, o.status)
                        else {
                            continue;
                        };
                        if self.layout.record(fp).is_file() {
                            offer(
                                stage_key(&run.manifest, &o.stage),
                                (run.started_at.clone(), run.id.clone()),
                                fp,
                            );
                        }
                    }
                    report.runs += 1;
                }
                Ok(None) => {}
                Err(e) => report.skipped.push(e.to_string()),
            }
        }

        for (key, (_, fp)) in latest {
            self.stage_latest
                .insert(key.as_bytes(), fp.as_bytes())
                .map_err(RegistryError::index(
                    "recording the latest result of a stage",
                ))?;
        }
        self.flush()?;
        Ok(report)
    }

    fn rebuild_objects(&self, report: &mut RebuildReport) -> Result<()> {
        for path in json_files_in_shards(&self.layout.objects())? {
            // Metadata whose directory is absent belongs to a store that never committed.
            if !path.with_extension("").is_dir() {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            match read_json::<ObjectMeta>(&path, "object metadata", META_HINT) {
                Ok(Some(meta)) if meta.digest != stem => report.skipped.push(format!(
                    "`{}`: it describes object {}",
                    path.display(),
                    meta.digest
                )),
                Ok(Some(meta)) => {
                    self.artifacts
                        .insert(meta.digest.as_bytes(), encode(&meta, "object metadata")?)
                        .map_err(RegistryError::index("recording an artifact"))?;
                    report.objects += 1;
                }
                Ok(None) => {}
                Err(e) => report.skipped.push(e.to_string()),
            }
        }
        Ok(())
    }
}

/// `<dir>/<aa>/<name>.json` files, sorted.
pub(crate) fn json_files_in_shards(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
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

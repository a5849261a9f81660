//! Rebuilding every index from the files of the workspace: object metadata, stage records and
//! run records. Used when the index is lost or corrupt; the files are the truth.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Result;
use crate::files::{RECORD_HINT, RUN_HINT};
use crate::fsutil::read_json;
use crate::meta::ObjectMeta;
use crate::registry::Registry;
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
        self.index.clear()?;
        let mut report = RebuildReport::default();
        self.rebuild_objects(&mut report)?;

        // (manifest, stage) → the most recent result of that stage seen so far.
        let mut latest: BTreeMap<(String, String), (Recency, String)> = BTreeMap::new();
        let mut offer = |key: (String, String), recency: Recency, fp: &str| {
            let newer = latest.get(&key).is_none_or(|(r, _)| recency >= *r);
            if newer {
                latest.insert(key, (recency, fp.to_string()));
            }
        };

        for path in self.files.record_files()? {
            match read_json::<StageResult>(&path, "stage record", RECORD_HINT) {
                Ok(Some(r)) => {
                    self.index.put_result(&r, false)?;
                    offer(
                        (r.manifest.clone(), r.stage.clone()),
                        (r.started_at.clone(), r.run_id.clone()),
                        &r.fingerprint,
                    );
                    report.results += 1;
                }
                Ok(None) => {}
                Err(e) => report.skipped.push(e.to_string()),
            }
        }

        for (_, path) in self.files.run_files()? {
            match read_json::<RunRecord>(&path, "run record", RUN_HINT) {
                Ok(Some(run)) => {
                    self.index.put_run(&run)?;
                    // A cached outcome also makes a result the stage's latest.
                    for o in &run.outcomes {
                        let (Some(fp), OutcomeStatus::Ran | OutcomeStatus::Cached) =
                            (&o.fingerprint, o.status)
                        else {
                            continue;
                        };
                        if self.files.has_record(fp) {
                            offer(
                                (run.manifest.clone(), o.stage.clone()),
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

        for ((manifest, stage), (_, fp)) in latest {
            self.index.set_latest(&manifest, &stage, &fp)?;
        }
        self.index.flush()?;
        Ok(report)
    }

    fn rebuild_objects(&self, report: &mut RebuildReport) -> Result<()> {
        for path in self.files.object_meta_files()? {
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
                    self.index.put_artifact(&meta)?;
                    report.objects += 1;
                }
                Ok(None) => {}
                Err(e) => report.skipped.push(e.to_string()),
            }
        }
        Ok(())
    }
}

//! `verify`: re-hash every object and cross-check the metadata, the stage records and the
//! indexes against each other. Problems that mean lost or wrong data are issues; leftovers of
//! interrupted work (temp dirs, metadata of a store that never committed) are notes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use common::Digest;

use crate::error::Result;
use crate::files::{RECORD_HINT, RUN_HINT};
use crate::fsutil::read_json;
use crate::index::tree;
use crate::layout::{check_digest, short};
use crate::merkle::{hash_dir, FileEntry};
use crate::meta::ObjectMeta;
use crate::registry::Registry;
use crate::run_record::RunRecord;
use crate::stage_result::StageResult;
use crate::store::META_HINT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyIssue {
    /// The content no longer hashes to its digest.
    CorruptObject {
        digest: Digest,
        path: PathBuf,
        detail: String,
    },
    /// The content is intact but its metadata disagrees with it.
    BadMetadata {
        digest: Digest,
        path: PathBuf,
        detail: String,
    },
    /// A stage record names an object that is not in the store.
    MissingObject {
        digest: String,
        referenced_by: String,
    },
    /// A stage or run record file that cannot be read or is misnamed.
    BadRecord { path: PathBuf, detail: String },
    /// The index disagrees with the files (fixed by `rebuild`).
    IndexMismatch {
        tree: &'static str,
        key: String,
        detail: String,
    },
}

impl fmt::Display for VerifyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyIssue::CorruptObject {
                digest,
                path,
                detail,
            } => write!(
                f,
                "corrupt object {} at `{}`: {detail}",
                short(digest),
                path.display()
            ),
            VerifyIssue::BadMetadata {
                digest,
                path,
                detail,
            } => write!(
                f,
                "metadata of object {} at `{}`: {detail}",
                short(digest),
                path.display()
            ),
            VerifyIssue::MissingObject {
                digest,
                referenced_by,
            } => write!(
                f,
                "missing object {}: referenced by {referenced_by}",
                short(digest)
            ),
            VerifyIssue::BadRecord { path, detail } => {
                write!(f, "bad record `{}`: {detail}", path.display())
            }
            VerifyIssue::IndexMismatch { tree, key, detail } => {
                write!(f, "index `{tree}` entry `{key}`: {detail}")
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub objects_checked: usize,
    pub bytes_checked: u64,
    pub issues: Vec<VerifyIssue>,
    /// Harmless leftovers, for information.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// No issue found (notes do not count).
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty()
    }

    /// Whether every issue is in the index only, so `rebuild` fixes them all.
    pub fn only_index_issues(&self) -> bool {
        self.issues
            .iter()
            .all(|i| matches!(i, VerifyIssue::IndexMismatch { .. }))
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checked {} object(s), {} byte(s): ",
            self.objects_checked, self.bytes_checked
        )?;
        if self.is_clean() {
            write!(f, "no problems found")?;
        } else {
            write!(f, "{} problem(s)", self.issues.len())?;
            for issue in &self.issues {
                write!(f, "\n  error: {issue}")?;
            }
            if self.only_index_issues() {
                write!(
                    f,
                    "\nhint: only the index is affected; `binarylm verify --rebuild` rebuilds it"
                )?;
            } else {
                write!(
                    f,
                    "\nhint: run `binarylm gc` to drop records of missing objects, and run the \
                     affected stages again to recreate corrupt artifacts"
                )?;
            }
        }
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

impl Registry {
    /// Check the whole store and index. Reads every byte of every object.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let metas = self.verify_objects(&mut report)?;
        let records = self.verify_records(&mut report)?;
        self.verify_index(&mut report, &metas, &records)?;
        self.verify_runs(&mut report)?;
        for name in self.files.tmp_entries()? {
            if !name.ends_with(".owner") {
                report.notes.push(format!(
                    "leftover temp dir `{}` (an interrupted stage; `binarylm gc` removes it)",
                    self.files.tmp().join(name).display()
                ));
            }
        }
        Ok(report)
    }

    /// Re-hash objects; returns the readable metadata by digest.
    fn verify_objects(&self, report: &mut VerifyReport) -> Result<BTreeMap<Digest, ObjectMeta>> {
        let mut metas = BTreeMap::new();
        for digest in self.object_digests()? {
            let dir = self.files.object_dir(&digest);
            let meta_path = self.files.object_meta_path(&digest);
            let meta = match read_json::<ObjectMeta>(&meta_path, "object metadata", META_HINT) {
                Ok(m) => m,
                Err(e) => {
                    report.issues.push(VerifyIssue::BadMetadata {
                        digest: digest.clone(),
                        path: meta_path.clone(),
                        detail: e.to_string(),
                    });
                    None
                }
            };
            report.objects_checked += 1;
            match hash_dir(&dir) {
                Err(e) => report.issues.push(VerifyIssue::CorruptObject {
                    digest: digest.clone(),
                    path: dir.clone(),
                    detail: e.to_string(),
                }),
                Ok(tree) => {
                    report.bytes_checked += tree.total_size();
                    if tree.digest != digest {
                        let detail = match &meta {
                            Some(m) => describe_changes(&m.files, &tree.files),
                            None => format!("content hashes to {}", short(&tree.digest)),
                        };
                        report.issues.push(VerifyIssue::CorruptObject {
                            digest: digest.clone(),
                            path: dir.clone(),
                            detail,
                        });
                    } else if let Some(m) = &meta {
                        if m.digest != digest || m.files != tree.files {
                            report.issues.push(VerifyIssue::BadMetadata {
                                digest: digest.clone(),
                                path: meta_path.clone(),
                                detail: "its digest or file listing differs from the content"
                                    .into(),
                            });
                        }
                    }
                }
            }
            match meta {
                Some(m) => {
                    metas.insert(digest, m);
                }
                None if meta_path.exists() => {}
                None => report.issues.push(VerifyIssue::BadMetadata {
                    digest,
                    path: meta_path,
                    detail: "the metadata file is missing".into(),
                }),
            }
        }
        for path in self.files.object_meta_files()? {
            if !path.with_extension("").is_dir() {
                report.notes.push(format!(
                    "metadata `{}` has no object (a store that did not complete; `binarylm gc` \
                     removes it)",
                    path.display()
                ));
            }
        }
        Ok(metas)
    }

    /// Read every stage record; returns them by fingerprint.
    fn verify_records(&self, report: &mut VerifyReport) -> Result<BTreeMap<String, StageResult>> {
        let mut records = BTreeMap::new();
        for path in self.files.record_files()? {
            let r = match read_json::<StageResult>(&path, "stage record", RECORD_HINT) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    report.issues.push(VerifyIssue::BadRecord {
                        path,
                        detail: e.to_string(),
                    });
                    continue;
                }
            };
            if path.file_stem().and_then(|s| s.to_str()) != Some(r.fingerprint.as_str()) {
                report.issues.push(VerifyIssue::BadRecord {
                    path,
                    detail: format!("it holds fingerprint {}", r.fingerprint),
                });
                continue;
            }
            if check_digest(&r.digest).is_err() || !self.has_object(&r.digest) {
                report.issues.push(VerifyIssue::MissingObject {
                    digest: r.digest.to_string(),
                    referenced_by: format!(
                        "stage `{}` of {} (fingerprint {})",
                        r.stage,
                        r.manifest,
                        short(&r.fingerprint)
                    ),
                });
            }
            records.insert(r.fingerprint.clone(), r);
        }
        Ok(records)
    }

    fn verify_index(
        &self,
        report: &mut VerifyReport,
        metas: &BTreeMap<Digest, ObjectMeta>,
        records: &BTreeMap<String, StageResult>,
    ) -> Result<()> {
        let mut mismatch = |tree: &'static str, key: &str, detail: &str| {
            report.issues.push(VerifyIssue::IndexMismatch {
                tree,
                key: key.to_string(),
                detail: detail.to_string(),
            })
        };

        let mut indexed = BTreeSet::new();
        for entry in self.index.results()? {
            let key = entry.key;
            match (entry.value, records.get(&key)) {
                (Err(_), _) => mismatch(tree::RESULTS, &key, "unreadable entry"),
                (Ok(_), None) => mismatch(tree::RESULTS, &key, "no record file"),
                (Ok(r), Some(file)) if r != *file => {
                    mismatch(tree::RESULTS, &key, "differs from its record file")
                }
                _ => {}
            }
            indexed.insert(key);
        }
        for fp in records.keys().filter(|fp| !indexed.contains(*fp)) {
            mismatch(tree::RESULTS, fp, "record file not in the index");
        }

        let mut indexed = BTreeSet::new();
        for entry in self.index.artifacts()? {
            let key = entry.key;
            match (entry.value, metas.get(key.as_str())) {
                (Err(_), _) => mismatch(tree::ARTIFACTS, &key, "unreadable entry"),
                (Ok(_), None) => mismatch(tree::ARTIFACTS, &key, "no such object in the store"),
                (Ok(m), Some(file)) if m != *file => {
                    mismatch(tree::ARTIFACTS, &key, "differs from the object's metadata")
                }
                _ => {}
            }
            indexed.insert(key);
        }
        for digest in metas.keys().filter(|d| !indexed.contains(d.as_str())) {
            mismatch(tree::ARTIFACTS, digest, "object not in the index");
        }

        for latest in self.index.latest_all()? {
            let fp = &latest.fingerprint;
            if !records.contains_key(fp) {
                let name = latest
                    .stage
                    .map(|(m, s)| format!("{s} ({m})"))
                    .unwrap_or(latest.raw_key);
                mismatch(
                    tree::STAGE_LATEST,
                    &name,
                    &format!("points at unknown fingerprint {}", short(fp)),
                );
            }
        }

        for entry in self.index.lineage_entries()? {
            let key = entry.key;
            match entry.value {
                Err(_) => mismatch(tree::LINEAGE, &key, "unreadable entry"),
                Ok(e) if !records.contains_key(&e.fingerprint) => mismatch(
                    tree::LINEAGE,
                    &key,
                    &format!("names unknown fingerprint {}", short(&e.fingerprint)),
                ),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    fn verify_runs(&self, report: &mut VerifyReport) -> Result<()> {
        let mut files = BTreeMap::new();
        for (id, path) in self.files.run_files()? {
            match read_json::<RunRecord>(&path, "run record", RUN_HINT) {
                Ok(Some(run)) => {
                    files.insert(id, run);
                }
                Ok(None) => {}
                Err(e) => report.issues.push(VerifyIssue::BadRecord {
                    path,
                    detail: e.to_string(),
                }),
            }
        }
        let mut indexed = BTreeSet::new();
        for entry in self.index.runs()? {
            let key = entry.key;
            let detail = match (entry.value, files.get(&key)) {
                (Err(_), _) => Some("unreadable entry"),
                (Ok(_), None) => Some("no run file"),
                (Ok(r), Some(file)) if r != *file => Some("differs from its run file"),
                _ => None,
            };
            if let Some(detail) = detail {
                report.issues.push(VerifyIssue::IndexMismatch {
                    tree: tree::RUNS,
                    key: key.clone(),
                    detail: detail.into(),
                });
            }
            indexed.insert(key);
        }
        for id in files.keys().filter(|id| !indexed.contains(*id)) {
            report.issues.push(VerifyIssue::IndexMismatch {
                tree: tree::RUNS,
                key: id.clone(),
                detail: "run file not in the index".into(),
            });
        }
        Ok(())
    }
}

/// Which files differ between the recorded listing and the content now.
fn describe_changes(recorded: &[FileEntry], now: &[FileEntry]) -> String {
    let before: BTreeMap<&str, &FileEntry> =
        recorded.iter().map(|f| (f.path.as_str(), f)).collect();
    let after: BTreeMap<&str, &FileEntry> = now.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut changes = Vec::new();
    for (path, old) in &before {
        match after.get(path) {
            None => changes.push(format!("`{path}` is missing")),
            Some(new) if new.blake3 != old.blake3 || new.size != old.size => {
                changes.push(format!("`{path}` changed"))
            }
            Some(new) if new.executable != old.executable => {
                changes.push(format!("`{path}` changed mode"))
            }
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changes.push(format!("`{path}` was added"));
    }
    if changes.is_empty() {
        "content does not match its digest".into()
    } else {
        changes.join(", ")
    }
}

//! Garbage collection: remove objects that nothing worth keeping refers to, the records of
//! those objects, and temp dirs that no live process owns.
//!
//! Kept (with everything upstream of them, so a kept artifact's lineage stays whole): the
//! latest result of every (manifest, stage), the outputs of the `keep_runs` most recent runs
//! and of any run still going, and every digest named by a kept lockfile.

use common::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use crate::error::Result;
use crate::fsutil::{remove_file_if_exists, remove_tree, tree_size};
use crate::layout::{check_fingerprint, short};
use crate::lockfile::Lockfile;
use crate::owner::owner_alive;
use crate::registry::Registry;
use crate::run_record::RunStatus;
use crate::stage_result::StageResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcPolicy {
    /// Keep the outputs of this many most recent runs.
    pub keep_runs: usize,
    /// Keep every digest these lockfiles name (missing files are ignored).
    pub keep_lockfiles: Vec<PathBuf>,
}

impl Default for GcPolicy {
    fn default() -> GcPolicy {
        GcPolicy {
            keep_runs: 10,
            keep_lockfiles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    /// Objects kept.
    pub kept: usize,
    /// Digests of the objects removed (or that would be, in a dry run).
    pub removed: Vec<Digest>,
    /// Stage records removed because their object is gone.
    pub records_removed: usize,
    /// Temp dirs (interrupted stages, no live owner) removed.
    pub tmp_removed: Vec<PathBuf>,
    pub bytes_freed: u64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        write!(
            f,
            "{verb} {} object(s), {} stage record(s) and {} temp dir(s), freeing {}; kept {} object(s)",
            self.removed.len(),
            self.records_removed,
            self.tmp_removed.len(),
            human_bytes(self.bytes_freed),
            self.kept
        )?;
        for d in &self.removed {
            write!(f, "\n  {}", short(d))?;
        }
        Ok(())
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Registry {
    /// Collect garbage under `policy`; with `dry_run`, only report what would go.
    pub fn gc(&self, policy: &GcPolicy, dry_run: bool) -> Result<GcReport> {
        let keep = self.live_digests(policy)?;
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };

        let results = self.results()?;
        let mut by_digest: BTreeMap<&str, Vec<&StageResult>> = BTreeMap::new();
        for r in &results {
            by_digest.entry(r.digest.as_str()).or_default().push(r);
        }

        for digest in self.object_digests()? {
            if keep.contains(&digest) {
                report.kept += 1;
                continue;
            }
            report.bytes_freed += tree_size(&self.files.object_dir(&digest))
                + tree_size(&self.files.object_meta_path(&digest));
            if !dry_run {
                for r in by_digest.get(digest.as_str()).into_iter().flatten() {
                    self.forget_result(r)?;
                }
                self.index.forget_lineage(&digest)?;
                self.remove_object(&digest)?;
            }
            report.removed.push(digest);
        }

        // Records whose object was already gone before this gc: lookups miss them anyway.
        for r in &results {
            let collected_now = report.removed.binary_search(&r.digest).is_ok();
            if collected_now || !self.has_object(&r.digest) {
                report.records_removed += 1;
                if !dry_run && !collected_now {
                    self.forget_result(r)?;
                }
            }
        }

        self.collect_orphan_metadata(&mut report, dry_run)?;
        self.collect_tmp(&mut report, dry_run)?;
        if !dry_run {
            self.index.flush()?;
        }
        Ok(report)
    }

    /// Digests to keep: the roots of `policy` and everything upstream of them.
    fn live_digests(&self, policy: &GcPolicy) -> Result<BTreeSet<Digest>> {
        let mut roots: Vec<Digest> = Vec::new();
        for latest in self.index.latest_all()? {
            if check_fingerprint(&latest.fingerprint).is_err() {
                continue;
            }
            if let Some(r) = self.lookup(&latest.fingerprint)? {
                roots.push(r.digest);
            }
        }
        for (i, run) in self.runs()?.into_iter().enumerate() {
            if i < policy.keep_runs || run.status == RunStatus::Running {
                roots.extend(run.digests().cloned());
            }
        }
        for path in &policy.keep_lockfiles {
            // A lockfile that exists but cannot be read is an error: collecting what it names
            // would break the reproducibility it promises.
            if let Some(lock) = Lockfile::read(path)? {
                roots.extend(lock.stages.into_values().map(|s| s.digest));
            }
        }

        let mut keep = BTreeSet::new();
        while let Some(digest) = roots.pop() {
            if !keep.insert(digest.clone()) {
                continue;
            }
            if let Some(entry) = self.index.lineage(&digest)? {
                roots.extend(entry.inputs.into_values());
            }
        }
        Ok(keep)
    }

    /// Remove a stage result: its record file and its index entries.
    fn forget_result(&self, r: &StageResult) -> Result<()> {
        self.files.remove_record(&r.fingerprint)?;
        self.index.remove_result(r)
    }

    /// Metadata files whose object directory never appeared (a store interrupted before its
    /// rename).
    fn collect_orphan_metadata(&self, report: &mut GcReport, dry_run: bool) -> Result<()> {
        for path in self.files.object_meta_files()? {
            if path.with_extension("").is_dir() {
                continue;
            }
            report.bytes_freed += tree_size(&path);
            if !dry_run {
                remove_file_if_exists(&path)?;
            }
        }
        Ok(())
    }

    /// Staging dirs whose owner process is gone, and leftovers of object removal.
    fn collect_tmp(&self, report: &mut GcReport, dry_run: bool) -> Result<()> {
        let tmp = self.files.tmp();
        for name in self.files.tmp_entries()? {
            let path = tmp.join(&name);
            if let Some(owned) = name.strip_suffix(".owner") {
                // A marker without its dir is useless; with its dir it goes with the dir.
                if !tmp.join(owned).exists() && !dry_run {
                    remove_file_if_exists(&path)?;
                }
                continue;
            }
            let owner = tmp.join(format!("{name}.owner"));
            if owner_alive(&owner) {
                continue;
            }
            report.bytes_freed += tree_size(&path);
            if !dry_run {
                remove_tree(&path)?;
                remove_file_if_exists(&owner)?;
            }
            report.tmp_removed.push(path);
        }
        Ok(())
    }
}

//! Assembling a stage's [`FingerprintInput`] from the manifest, its dependency files and the
//! digests of its inputs. The hashing itself lives in `pipelines::fingerprint`.

use registry::Digest;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use pipelines::{FingerprintInput, Manifest, Stage};

use crate::error::RuntimeError;

/// Content digests of the files a stage depends on (see [`declared_deps`]), keyed by their
/// path relative to the manifest. Content only: touching a file changes nothing.
pub fn dep_digests(
    manifest: &Manifest,
    stage: &Stage,
    hashes: &DepHashes,
) -> Result<BTreeMap<String, String>, RuntimeError> {
    let deps = declared_deps(manifest, stage)?;
    let mut out = BTreeMap::new();
    for dep in deps {
        let path = manifest.dir.join(&dep);
        let digest = hashes
            .hash(&path)
            .map_err(|source| RuntimeError::Dependency {
                stage: stage.name.clone(),
                path: dep.clone(),
                source,
            })?;
        out.insert(dep, digest);
    }
    Ok(out)
}

/// The dependency files hashed so far in one run, so that a run that plans before it runs
/// (`Shared::width_of_what_runs`) reads a large corpus once, not twice. Keyed by size and
/// modification time too, so a file rewritten during the run is hashed again. Directories are
/// hashed every time (their own modification time does not follow their files').
#[derive(Debug, Default)]
pub struct DepHashes(Mutex<HashMap<(PathBuf, u64, SystemTime), String>>);

impl DepHashes {
    fn hash(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return pipelines::hash_path(path);
        }
        let key = (path.to_path_buf(), meta.len(), meta.modified()?);
        if let Some(d) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(d);
        }
        let digest = pipelines::hash_path(path)?;
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, digest.clone());
        }
        Ok(digest)
    }
}

/// The files whose content is part of a stage's fingerprint, as paths relative to the
/// manifest: what the stage's kind declares (`deps:` of a command stage as written; for a data
/// stage, every local file its sources read, globs expanded and sorted). Errors name a source
/// that matches nothing.
pub fn declared_deps(manifest: &Manifest, stage: &Stage) -> Result<Vec<String>, RuntimeError> {
    stage
        .params
        .local_files(&manifest.dir)
        .map_err(|e| RuntimeError::Dependency {
            stage: stage.name.clone(),
            path: e.pattern,
            source: e.source,
        })
}

/// A stage's fingerprint and what it was computed from, given the digests of its upstream
/// stages and of its dependency files ([`dep_digests`]): the one definition `plan` and `run`
/// share.
pub fn fingerprint_stage(
    manifest: &Manifest,
    stage: &Stage,
    inputs: &BTreeMap<String, Digest>,
    deps: BTreeMap<String, String>,
) -> (String, FingerprintInput) {
    // The fingerprint encodes digests as the strings they serialize to.
    let inputs = inputs
        .iter()
        .map(|(name, digest)| (name.clone(), digest.to_string()))
        .collect();
    let input = input_for(manifest, stage, inputs, deps);
    (pipelines::fingerprint(&input), input)
}

/// The full fingerprint input of `stage`, given the digests of its upstream stages.
pub fn input_for(
    manifest: &Manifest,
    stage: &Stage,
    inputs: BTreeMap<String, String>,
    deps: BTreeMap<String, String>,
) -> FingerprintInput {
    FingerprintInput {
        kind: stage.params.kind().to_string(),
        impl_version: stage.params.info().version,
        params: stage.params.canonical(),
        seed: manifest.seed,
        inputs,
        deps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_manifest(dir: &std::path::Path) -> Manifest {
        let path = dir.join("pipeline.yaml");
        std::fs::write(
            &path,
            "name: t\nstages:\n  corpus:\n    kind: data\n    sources:\n      - path: \"texts/*.txt\"\n      - jsonl: extra.jsonl\n      - synthetic: { generator: stories, documents: 3 }\n",
        )
        .expect("write manifest");
        pipelines::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn data_sources_are_content_hashed_with_globs_expanded() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path();
        std::fs::create_dir(dir.join("texts"))?;
        std::fs::write(dir.join("texts/b.txt"), "bee")?;
        std::fs::write(dir.join("texts/a.txt"), "ay")?;
        std::fs::write(dir.join("texts/notes.md"), "not matched")?;
        std::fs::write(dir.join("extra.jsonl"), "{\"text\": \"x\"}\n")?;
        let m = data_manifest(dir);
        let stage = &m.stages[0];
        let deps = declared_deps(&m, stage).expect("deps");
        assert_eq!(deps, ["extra.jsonl", "texts/a.txt", "texts/b.txt"]);
        let first = dep_digests(&m, stage, &DepHashes::default()).expect("digests");

        // Same content, new mtime: nothing changes.
        let a = std::fs::File::options()
            .append(true)
            .open(dir.join("texts/a.txt"))?;
        a.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))?;
        assert_eq!(
            dep_digests(&m, stage, &DepHashes::default()).expect("digests"),
            first
        );

        // New content in one file: exactly that entry changes.
        std::fs::write(dir.join("texts/a.txt"), "ay!")?;
        let edited = dep_digests(&m, stage, &DepHashes::default()).expect("digests");
        assert_ne!(edited["texts/a.txt"], first["texts/a.txt"]);
        assert_eq!(edited["texts/b.txt"], first["texts/b.txt"]);

        // A new file matching the glob joins the fingerprint.
        std::fs::write(dir.join("texts/c.txt"), "sea")?;
        assert_eq!(
            dep_digests(&m, stage, &DepHashes::default())
                .expect("digests")
                .len(),
            4
        );
        Ok(())
    }

    #[test]
    fn a_glob_matching_nothing_names_the_source() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("extra.jsonl"), "")?;
        let m = data_manifest(tmp.path());
        let err = declared_deps(&m, &m.stages[0]).expect_err("no texts");
        let text = err.to_string();
        assert!(
            text.contains("texts/*.txt") && text.contains("corpus"),
            "{text}"
        );
        Ok(())
    }
}

//! Assembling a stage's [`FingerprintInput`] from the manifest, its dependency files and the
//! digests of its inputs. The hashing itself lives in `pipelines::fingerprint`.

use std::collections::BTreeMap;

use pipelines::{FingerprintInput, Manifest, Stage, StageParams};

use crate::error::RuntimeError;

/// Content digests of the files a stage declares as dependencies (`deps:` of a command stage),
/// keyed by the path as written. Content only: touching a file changes nothing.
pub fn dep_digests(
    manifest: &Manifest,
    stage: &Stage,
) -> Result<BTreeMap<String, String>, RuntimeError> {
    let deps = declared_deps(stage);
    let mut out = BTreeMap::new();
    for dep in deps {
        let path = manifest.dir.join(dep);
        let digest = pipelines::hash_path(&path).map_err(|source| RuntimeError::Dependency {
            stage: stage.name.clone(),
            path: dep.clone(),
            source,
        })?;
        out.insert(dep.clone(), digest);
    }
    Ok(out)
}

/// The dependency files a stage declares (paths relative to the manifest).
pub fn declared_deps(stage: &Stage) -> &[String] {
    match &stage.params {
        StageParams::Command(p) => &p.deps,
    }
}

/// The full fingerprint input of `stage`, given the digests of its upstream stages.
pub fn input_for(
    manifest: &Manifest,
    stage: &Stage,
    impl_version: u32,
    inputs: BTreeMap<String, String>,
    deps: BTreeMap<String, String>,
) -> FingerprintInput {
    FingerprintInput {
        kind: stage.params.kind().to_string(),
        impl_version,
        params: stage.params.canonical(),
        seed: manifest.seed,
        inputs,
        deps,
    }
}

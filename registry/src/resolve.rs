//! Turning what a user types (`serve base`, `show 3c4d5e`) into an artifact.

use common::Digest;
use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::{RegistryError, Result};
use crate::layout::{is_hex, short, MIN_PREFIX_LEN};
use crate::registry::Registry;
use crate::stage_result::StageResult;

/// How a query matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedBy {
    /// The latest result of a stage of this manifest.
    Stage {
        manifest: String,
    },
    Digest,
    DigestPrefix,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub digest: Digest,
    /// The object's directory in the store.
    pub path: PathBuf,
    /// The stage result that produced it, when recorded.
    pub result: Option<StageResult>,
    pub by: ResolvedBy,
}

impl Registry {
    /// Resolve a stage name (its latest stored result), a full digest, or a unique digest
    /// prefix of at least 6 hex characters. A stage name in several manifests is ambiguous.
    pub fn resolve(&self, query: &str) -> Result<Resolved> {
        self.resolve_with(None, query)
    }

    /// Like `resolve`, but a stage name found in several manifests resolves to the one of
    /// `manifest` (the pipeline the user is working in).
    pub fn resolve_in(&self, manifest: &str, query: &str) -> Result<Resolved> {
        self.resolve_with(Some(manifest), query)
    }

    fn resolve_with(&self, manifest: Option<&str>, query: &str) -> Result<Resolved> {
        // Stage names win over digests: a stage named `cafe42` is what a user would mean.
        let stages = self.stage_candidates(query)?;
        let preferred = manifest.and_then(|m| stages.iter().find(|(sm, _)| sm == m));
        let chosen = match (preferred, stages.as_slice()) {
            (Some(c), _) => Some(c),
            (None, [only]) => Some(only),
            (None, []) => None,
            (None, many) => {
                return Err(RegistryError::Ambiguous {
                    query: query.to_string(),
                    candidates: many
                        .iter()
                        .map(|(m, r)| {
                            format!(
                                "stage `{}` of {m} (pipeline {}): {}",
                                r.stage,
                                r.pipeline,
                                short(&r.digest)
                            )
                        })
                        .collect(),
                    hint: "run the command with the manifest you mean, or name the artifact by \
                           a digest prefix",
                })
            }
        };
        if let Some((manifest, result)) = chosen {
            return Ok(Resolved {
                digest: result.digest.clone(),
                path: self.object_path(&result.digest),
                result: Some(result.clone()),
                by: ResolvedBy::Stage {
                    manifest: manifest.clone(),
                },
            });
        }

        if !query.is_empty() && is_hex(query) {
            if let (true, Ok(digest)) = (self.has_object(query), Digest::parse(query)) {
                return self.resolved_digest(digest, ResolvedBy::Digest);
            }
            if query.len() >= MIN_PREFIX_LEN {
                let matches: Vec<Digest> = self
                    .object_digests()?
                    .into_iter()
                    .filter(|d| d.starts_with(query))
                    .collect();
                match matches.as_slice() {
                    [] => {}
                    [one] => return self.resolved_digest(one.clone(), ResolvedBy::DigestPrefix),
                    many => {
                        return Err(RegistryError::Ambiguous {
                            query: query.to_string(),
                            candidates: many.iter().map(Digest::to_string).collect(),
                            hint: "give more characters of the digest",
                        })
                    }
                }
            }
        }
        Err(self.not_found(query)?)
    }

    /// (manifest, result) for every manifest whose latest result of stage `name` is stored.
    fn stage_candidates(&self, name: &str) -> Result<Vec<(String, StageResult)>> {
        let mut out = Vec::new();
        for latest in self.index.latest_all()? {
            let Some((manifest, stage)) = latest.stage else {
                continue;
            };
            if stage != name {
                continue;
            }
            if let Some(result) = self.lookup(&latest.fingerprint)? {
                out.push((manifest, result));
            }
        }
        Ok(out)
    }

    fn resolved_digest(&self, digest: Digest, by: ResolvedBy) -> Result<Resolved> {
        let result = match self.index.lineage(&digest)? {
            Some(entry) => self.index.result(&entry.fingerprint)?,
            None => None,
        };
        Ok(Resolved {
            path: self.object_path(&digest),
            digest,
            result,
            by,
        })
    }

    fn not_found(&self, query: &str) -> Result<RegistryError> {
        let mut stages = BTreeSet::new();
        for latest in self.index.latest_all()? {
            if let Some((_, stage)) = latest.stage {
                stages.insert(stage);
            }
        }
        let objects = self.object_digests()?.len();
        let mut known = if stages.is_empty() {
            "no stage has a recorded result".to_string()
        } else {
            let list: Vec<String> = stages.into_iter().collect();
            format!("known stages: {}", list.join(", "))
        };
        known.push_str(&format!("; {objects} object(s) in the store"));
        if is_hex(query) && !query.is_empty() && query.len() < MIN_PREFIX_LEN {
            known.push_str(&format!(
                "; a digest prefix needs at least {MIN_PREFIX_LEN} characters"
            ));
        }
        Ok(RegistryError::NotFound {
            query: query.to_string(),
            known,
        })
    }
}

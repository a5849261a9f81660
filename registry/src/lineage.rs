//! Lineage: where an artifact came from (its producing stage and, recursively, the artifacts
//! that stage consumed) and which artifacts were built from it.

use common::Digest;
use std::collections::BTreeSet;
use std::fmt;

use crate::error::Result;
use crate::layout::{parse_digest, short};
use crate::registry::Registry;

/// Upstream tree of an artifact, plus its direct consumers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LineageTree {
    pub digest: Digest,
    /// Whether the object is still in the store.
    pub present: bool,
    /// The stage execution that produced it; None for an artifact with no recorded producer.
    pub producer: Option<Producer>,
    /// The producer's inputs, in input-name order, each with its own lineage.
    pub inputs: Vec<LineageInput>,
    /// Artifacts built directly from this one (filled for the root only).
    pub consumers: Vec<Consumer>,
    /// Set when this digest already appears above it (a corrupt index could form a loop).
    pub cycle: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Producer {
    pub stage: String,
    pub kind: String,
    pub fingerprint: String,
    /// Pipeline name, when the stage's record is still there.
    pub pipeline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LineageInput {
    /// The input's name in the producer (usually the upstream stage's name).
    pub name: String,
    pub tree: LineageTree,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Consumer {
    pub digest: Digest,
    pub fingerprint: String,
    pub stage: Option<String>,
}

impl Registry {
    /// The lineage of `digest`.
    pub fn lineage(&self, digest: &str) -> Result<LineageTree> {
        let digest = parse_digest(digest)?;
        let mut ancestors = BTreeSet::new();
        let mut root = self.upstream(&digest, &mut ancestors)?;
        root.consumers = self.consumers_of(&digest)?;
        Ok(root)
    }

    fn upstream(&self, digest: &Digest, ancestors: &mut BTreeSet<Digest>) -> Result<LineageTree> {
        let mut node = LineageTree {
            digest: digest.clone(),
            present: self.has_object(digest),
            producer: None,
            inputs: Vec::new(),
            consumers: Vec::new(),
            cycle: false,
        };
        if !ancestors.insert(digest.clone()) {
            node.cycle = true;
            return Ok(node);
        }
        if let Some(entry) = self.index.lineage(digest)? {
            let record = self.index.result(&entry.fingerprint)?;
            node.producer = Some(Producer {
                stage: entry.stage,
                kind: entry.kind,
                fingerprint: entry.fingerprint,
                pipeline: record.map(|r| r.pipeline),
            });
            for (name, input) in entry.inputs {
                let tree = self.upstream(&input, ancestors)?;
                node.inputs.push(LineageInput { name, tree });
            }
        }
        ancestors.remove(digest);
        Ok(node)
    }

    /// Artifacts whose recorded inputs include `digest`, sorted by digest.
    pub fn consumers_of(&self, digest: &str) -> Result<Vec<Consumer>> {
        let mut out = Vec::new();
        for (consumer, fingerprint) in self.index.consumers(digest)? {
            let stage = self.index.result(&fingerprint)?.map(|r| r.stage);
            out.push(Consumer {
                digest: consumer,
                fingerprint,
                stage,
            });
        }
        Ok(out)
    }
}

impl LineageTree {
    fn label(&self) -> String {
        let mut s = short(&self.digest).to_string();
        match &self.producer {
            Some(p) => {
                s.push_str(&format!(
                    "  {} ({})  fp {}",
                    p.stage,
                    p.kind,
                    short(&p.fingerprint)
                ));
                if let Some(pipeline) = &p.pipeline {
                    s.push_str(&format!("  pipeline {pipeline}"));
                }
            }
            None => s.push_str("  (no recorded producer)"),
        }
        if !self.present {
            s.push_str("  [not in store]");
        }
        if self.cycle {
            s.push_str("  [cycle]");
        }
        s
    }

    fn draw(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        for (i, input) in self.inputs.iter().enumerate() {
            let last = i + 1 == self.inputs.len();
            let (branch, next) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            writeln!(f, "{indent}{branch}{}: {}", input.name, input.tree.label())?;
            input.tree.draw(f, &format!("{indent}{next}"))?;
        }
        Ok(())
    }
}

impl fmt::Display for LineageTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.label())?;
        self.draw(f, "")?;
        if self.consumers.is_empty() {
            write!(f, "used by: nothing recorded")
        } else {
            write!(f, "used by:")?;
            for c in &self.consumers {
                write!(f, "\n  {}", short(&c.digest))?;
                if let Some(stage) = &c.stage {
                    write!(f, "  {stage}")?;
                }
            }
            Ok(())
        }
    }
}

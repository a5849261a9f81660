//! `stats.json`: what each source gave, what each step did, why documents were removed, and
//! the length distribution of what was kept.

use std::collections::BTreeMap;

use super::doc::Doc;

#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    pub sources: Vec<SourceStats>,
    pub steps: Vec<StepStats>,
    /// Removal reason → documents removed for it.
    pub removed: BTreeMap<String, usize>,
    /// Documents in which invalid UTF-8 was replaced by U+FFFD.
    pub repaired_utf8_documents: usize,
    pub train: SplitStats,
    pub val: SplitStats,
    /// Documents kept, by character count: bucket `i` holds lengths in [2^i, 2^(i+1)).
    pub length_histogram: Vec<Bucket>,
}

#[derive(Debug, serde::Serialize)]
pub struct SourceStats {
    /// The source as written (`jsonl: data.jsonl`, `synthetic: stories`).
    pub source: String,
    pub documents: usize,
    pub chars: usize,
    /// Rows whose text column was null (skipped).
    pub null_rows: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct StepStats {
    pub name: String,
    pub documents_in: usize,
    pub documents_out: usize,
    pub chars_in: usize,
    pub chars_out: usize,
    /// Documents the step rewrote (for steps that rewrite rather than drop).
    pub changed: usize,
}

impl StepStats {
    pub fn start(name: &str, docs: &[Doc]) -> StepStats {
        StepStats {
            name: name.to_string(),
            documents_in: docs.len(),
            documents_out: 0,
            chars_in: total_chars(docs),
            chars_out: 0,
            changed: 0,
        }
    }

    pub fn finish(&mut self, docs: &[Doc]) {
        self.documents_out = docs.len();
        self.chars_out = total_chars(docs);
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub struct SplitStats {
    pub documents: usize,
    pub chars: usize,
}

impl SplitStats {
    pub fn of(docs: &[Doc]) -> SplitStats {
        SplitStats {
            documents: docs.len(),
            chars: total_chars(docs),
        }
    }
}

#[derive(Debug, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub min_chars: usize,
    pub max_chars: usize,
    pub documents: usize,
}

pub fn total_chars(docs: &[Doc]) -> usize {
    docs.iter().map(Doc::chars).sum()
}

/// Power-of-two buckets from 1 character up to the longest document (empty buckets kept, so
/// the shape is visible; a document of 0 characters counts in the first).
pub fn length_histogram<'a>(docs: impl Iterator<Item = &'a Doc>) -> Vec<Bucket> {
    let mut counts: Vec<usize> = Vec::new();
    for d in docs {
        let n = d.chars().max(1);
        let i = (usize::BITS - 1 - n.leading_zeros()) as usize;
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, documents)| Bucket {
            min_chars: 1 << i,
            max_chars: (1 << (i + 1)) - 1,
            documents,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_powers_of_two() {
        let docs: Vec<Doc> = ["a", "abc", "abcd", "abcdefg"]
            .iter()
            .map(|t| Doc::text(t.to_string(), None))
            .collect();
        let h = length_histogram(docs.iter());
        let counts: Vec<(usize, usize, usize)> = h
            .iter()
            .map(|b| (b.min_chars, b.max_chars, b.documents))
            .collect();
        assert_eq!(counts, [(1, 1, 1), (2, 3, 1), (4, 7, 2)]);
    }
}

//! `stats.json`: what each source gave, what each step did, why documents were removed, and
//! the length distribution of what was kept.

use std::collections::BTreeMap;

use super::doc::Doc;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    pub sources: Vec<SourceStats>,
    pub steps: Vec<StepStats>,
    /// Removal reason → documents removed for it.
    pub removed: BTreeMap<String, usize>,
    /// Documents in which invalid UTF-8 was replaced by U+FFFD.
    pub repaired_utf8_documents: usize,
    /// UTF-8 bytes of text read from all sources (the throughput's numerator).
    pub input_bytes: usize,
    /// The LSH layout near-duplicate removal used, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_dedup: Option<NearDedupLayout>,
    pub train: SplitStats,
    pub val: SplitStats,
    /// Documents kept, by character count: bucket `i` holds lengths in [2^i, 2^(i+1)).
    pub length_histogram: Vec<Bucket>,
    /// The output's column names, and the first few training records (in output order),
    /// each field cut to [`SAMPLE_CHARS`] characters.
    pub columns: Vec<String>,
    pub samples: Vec<Vec<String>>,
}

/// Characters kept of each sample field.
pub const SAMPLE_CHARS: usize = 400;
/// Training records kept as samples.
pub const SAMPLES: usize = 3;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct NearDedupLayout {
    pub permutations: usize,
    pub bands: usize,
    pub rows: usize,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SourceStats {
    /// The source as written (`jsonl: data.jsonl`, `synthetic: stories`).
    pub source: String,
    pub documents: usize,
    pub chars: usize,
    /// UTF-8 bytes of the documents' text.
    pub bytes: usize,
    /// Rows whose text column was null (skipped).
    pub null_rows: usize,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    pub name: String,
    pub documents_in: usize,
    pub documents_out: usize,
    pub chars_in: usize,
    pub chars_out: usize,
    /// Documents the step rewrote (for steps that rewrite rather than drop).
    pub changed: usize,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SplitStats {
    pub documents: usize,
    pub chars: usize,
}

impl SplitStats {
    pub fn add(&mut self, doc: &Doc) {
        self.documents += 1;
        self.chars += doc.chars();
    }
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub min_chars: usize,
    pub max_chars: usize,
    pub documents: usize,
}

/// Counts documents into power-of-two length buckets, one at a time.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: Vec<usize>,
}

impl Histogram {
    /// A document of 0 characters counts in the first bucket.
    pub fn add(&mut self, chars: usize) {
        let n = chars.max(1);
        let i = (usize::BITS - 1 - n.leading_zeros()) as usize;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    /// Buckets from 1 character up to the longest document (empty buckets kept, so the shape
    /// is visible): bucket `i` holds lengths in [2^i, 2^(i+1)).
    pub fn finish(self) -> Vec<Bucket> {
        self.counts
            .into_iter()
            .enumerate()
            .map(|(i, documents)| Bucket {
                min_chars: 1 << i,
                max_chars: (1 << (i + 1)) - 1,
                documents,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_powers_of_two() {
        let mut h = Histogram::default();
        for n in [1, 3, 4, 7] {
            h.add(n);
        }
        let h = h.finish();
        let counts: Vec<(usize, usize, usize)> = h
            .iter()
            .map(|b| (b.min_chars, b.max_chars, b.documents))
            .collect();
        assert_eq!(counts, [(1, 1, 1), (2, 3, 1), (4, 7, 2)]);
    }
}

//! The BPE model: a vocabulary, an ordered list of merges, and how a piece's first symbols are
//! found (bytes for byte-level BPE, characters with a byte fallback for the char tokenizer).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// How a piece becomes its initial symbols, before any merge.
#[derive(Debug, Clone)]
pub enum Alphabet {
    /// Byte-level: each byte has a token (GPT-2's mapped character); every input is covered.
    Bytes(Box<[u32; 256]>),
    /// Characters: each character that is in the vocabulary is a symbol; any other becomes its
    /// UTF-8 bytes as `<0xNN>` tokens (`byte_fallback`) or else the unknown token.
    Chars {
        byte_fallback: Option<Box<[u32; 256]>>,
        unk: Option<u32>,
    },
}

/// A BPE model. `tokens[id]` are the bytes an id decodes to.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// Token string (Hugging Face form) → id, for the model's own vocabulary.
    pub(crate) vocab: FxHashMap<String, u32>,
    /// Merges in rank order: (left, right) → merged id.
    pub(crate) merges: Vec<(u32, u32, u32)>,
    /// (left, right) → (rank, merged id).
    pub(crate) ranks: FxHashMap<(u32, u32), (u32, u32)>,
    pub(crate) alphabet: Alphabet,
    /// Emit a piece that is itself a token without merging (Hugging Face `ignore_merges`).
    pub(crate) ignore_merges: bool,
}

/// Words at least this long merge through a heap (O(n log n)) instead of rescanning.
const HEAP_THRESHOLD: usize = 48;

impl Bpe {
    pub(crate) fn new(
        vocab: FxHashMap<String, u32>,
        merges: Vec<(u32, u32, u32)>,
        alphabet: Alphabet,
        ignore_merges: bool,
    ) -> Bpe {
        let ranks = merges
            .iter()
            .enumerate()
            .map(|(rank, &(a, b, m))| ((a, b), (rank as u32, m)))
            .collect();
        Bpe {
            vocab,
            merges,
            ranks,
            alphabet,
            ignore_merges,
        }
    }

    /// The merges, in rank order, as (left, right, merged) ids.
    pub fn merges(&self) -> &[(u32, u32, u32)] {
        &self.merges
    }

    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    /// Appends the ids of one piece to `out`.
    pub(crate) fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        let start = out.len();
        match &self.alphabet {
            Alphabet::Bytes(ids) => {
                if self.ignore_merges {
                    if let Some(&id) = self.vocab.get(&crate::bytelevel::encode(piece)) {
                        out.push(id);
                        return;
                    }
                }
                out.extend(piece.iter().map(|&b| ids[b as usize]));
            }
            Alphabet::Chars { byte_fallback, unk } => {
                let text = String::from_utf8_lossy(piece);
                if self.ignore_merges {
                    if let Some(&id) = self.vocab.get(text.as_ref()) {
                        out.push(id);
                        return;
                    }
                }
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    let s = c.encode_utf8(&mut buf);
                    if let Some(&id) = self.vocab.get(&*s) {
                        out.push(id);
                    } else if let Some(fallback) = byte_fallback {
                        out.extend(s.bytes().map(|b| fallback[b as usize]));
                    } else if let Some(unk) = unk {
                        out.push(*unk);
                    }
                }
            }
        }
        if self.ranks.is_empty() {
            return;
        }
        let merged = self.merge(out[start..].to_vec());
        out.truncate(start);
        out.extend(merged);
    }

    /// Applies the merges to a symbol sequence: repeatedly the lowest-ranked adjacent pair,
    /// leftmost first (the same order as Hugging Face's priority queue).
    pub(crate) fn merge(&self, mut symbols: Vec<u32>) -> Vec<u32> {
        if symbols.len() >= HEAP_THRESHOLD {
            return self.merge_heap(symbols);
        }
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..symbols.len().saturating_sub(1) {
                if let Some(&(rank, id)) = self.ranks.get(&(symbols[i], symbols[i + 1])) {
                    if best.is_none_or(|(r, _, _)| rank < r) {
                        best = Some((rank, i, id));
                    }
                }
            }
            let Some((_, i, id)) = best else {
                return symbols;
            };
            symbols[i] = id;
            symbols.remove(i + 1);
        }
    }

    /// The same merge order over a linked list with a heap of (rank, position) candidates;
    /// stale candidates (a side already merged away) are skipped when popped.
    fn merge_heap(&self, mut symbols: Vec<u32>) -> Vec<u32> {
        const NONE: usize = usize::MAX;
        let n = symbols.len();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, symbols: &[u32], i: usize, j: usize| {
            if let Some(&(rank, _)) = self.ranks.get(&(symbols[i], symbols[j])) {
                heap.push(Reverse((rank, i, symbols[i], symbols[j])));
            }
        };
        for i in 0..n - 1 {
            push(&mut heap, &symbols, i, i + 1);
        }
        while let Some(Reverse((rank, i, left, right))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j == NONE || symbols[i] != left || symbols[j] != right {
                continue;
            }
            let (_, id) = self.ranks[&(left, right)];
            debug_assert_eq!(self.ranks[&(left, right)].0, rank);
            symbols[i] = id;
            alive[j] = false;
            next[i] = next[j];
            if next[j] != NONE {
                prev[next[j]] = i;
            }
            if prev[i] != NONE {
                push(&mut heap, &symbols, prev[i], i);
            }
            if next[i] != NONE {
                push(&mut heap, &symbols, i, next[i]);
            }
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i != NONE {
            out.push(symbols[i]);
            i = next[i];
        }
        out
    }
}

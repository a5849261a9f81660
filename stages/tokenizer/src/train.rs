//! Training: byte-level BPE and the char tokenizer.
//!
//! BPE starts from the 256 bytes and repeatedly adds the most frequent adjacent pair of tokens
//! as a new token, until the vocabulary is full. Pairs never cross pre-tokenizer pieces, so the
//! corpus is first reduced to its distinct pieces ("words") with their counts — in parallel —
//! and all further work is on those. Pair counts are kept up to date incrementally: a merge
//! only touches the words that contain the pair (an index from pair to words says which), and
//! a max-heap hands out the next pair. Heap entries go stale when a pair's count drops; a
//! popped entry whose count no longer matches is pushed back with its current count (lazy
//! deletion). That is sound because a pair's count can only grow in the merge that creates it:
//! later merges only ever remove occurrences of existing pairs.
//!
//! Ties (equal counts) go to the pair with the smaller (left id, right id), so training is
//! deterministic whatever the thread count or hash order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::TokenizerError;
use crate::model::{Alphabet, Bpe};
use crate::pretokenize::{Pattern, PreTokenizer};
use crate::tokenizer::{AddedToken, Tokenizer};

/// Special tokens added when a config names none: document boundaries, padding and the chat
/// markers that instruction tuning renders conversations with.
pub const DEFAULT_SPECIAL_TOKENS: &[&str] = &[
    "<|bos|>",
    "<|eos|>",
    "<|pad|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
];

/// Settings of the BPE trainer.
#[derive(Debug, Clone)]
pub struct BpeConfig {
    /// Total ids wanted: 256 bytes + merges + special tokens.
    pub vocab_size: usize,
    pub pattern: Pattern,
    /// A pair seen fewer times than this is never merged (training may stop early).
    pub min_frequency: u64,
    /// Added after the merges, in this order.
    pub special_tokens: Vec<String>,
}

/// Settings of the char tokenizer.
#[derive(Debug, Clone)]
pub struct CharConfig {
    /// Characters seen fewer times than this are left to the byte fallback.
    pub min_frequency: u64,
    pub special_tokens: Vec<String>,
}

/// Trains a byte-level BPE tokenizer on `docs`. Ids: 0–255 the bytes, then one per merge, then
/// the special tokens. `cancelled` is polled and `progress(done, total)` called every few
/// hundred merges.
pub fn train_bpe<S: AsRef<str> + Sync>(
    docs: &[S],
    config: &BpeConfig,
    cancelled: &(dyn Fn() -> bool + Sync),
    progress: &dyn Fn(usize, usize),
) -> Result<Tokenizer, TokenizerError> {
    check_specials(&config.special_tokens)?;
    let floor = 256 + config.special_tokens.len();
    if config.vocab_size < floor {
        return Err(TokenizerError::Config(format!(
            "vocab_size {} is too small: byte-level BPE needs 256 byte tokens plus {} special \
             tokens = {floor} ids before any merge",
            config.vocab_size,
            config.special_tokens.len()
        )));
    }
    let pre = PreTokenizer::new(&config.pattern)?;
    let words = count_words(docs, &pre, cancelled)?;
    let target = config.vocab_size - config.special_tokens.len();
    let min_frequency = config.min_frequency.max(1) as i64;
    let merges = learn_merges(words, target, min_frequency, cancelled, progress)?;

    let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
    for b in 0..=255u8 {
        vocab.insert(crate::bytelevel::encode(&[b]), b as u32);
    }
    for (bytes, id) in &merges.tokens {
        vocab.insert(crate::bytelevel::encode(bytes), *id);
    }
    let next = 256 + merges.tokens.len() as u32;
    let added = specials(&config.special_tokens, next);
    let ids: [u32; 256] = std::array::from_fn(|b| b as u32);
    let bpe = Bpe::new(vocab, merges.merges, Alphabet::Bytes(Box::new(ids)), false);
    Tokenizer::from_parts(bpe, pre, false, added).map_err(TokenizerError::Config)
}

/// Builds a character-level tokenizer: one id per character seen at least `min_frequency`
/// times (in code point order), then 256 `<0xNN>` byte-fallback tokens so that any input
/// round-trips, then the special tokens.
pub fn train_char<S: AsRef<str> + Sync>(
    docs: &[S],
    config: &CharConfig,
) -> Result<Tokenizer, TokenizerError> {
    check_specials(&config.special_tokens)?;
    let counts = docs
        .par_iter()
        .fold(FxHashMap::<char, u64>::default, |mut m, d| {
            for c in d.as_ref().chars() {
                *m.entry(c).or_default() += 1;
            }
            m
        })
        .reduce(FxHashMap::default, merge_counts);
    let mut chars: Vec<char> = counts
        .into_iter()
        .filter(|&(_, n)| n >= config.min_frequency.max(1))
        .map(|(c, _)| c)
        .collect();
    chars.sort_unstable();
    let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
    for (i, c) in chars.iter().enumerate() {
        vocab.insert(c.to_string(), i as u32);
    }
    let base = chars.len() as u32;
    let fallback: [u32; 256] = std::array::from_fn(|b| base + b as u32);
    for b in 0..=255u32 {
        vocab.insert(format!("<0x{b:02X}>"), base + b);
    }
    let added = specials(&config.special_tokens, base + 256);
    let bpe = Bpe::new(
        vocab,
        Vec::new(),
        Alphabet::Chars {
            byte_fallback: Some(Box::new(fallback)),
            unk: None,
        },
        false,
    );
    Tokenizer::from_parts(bpe, PreTokenizer::None, false, added).map_err(TokenizerError::Config)
}

fn check_specials(specials: &[String]) -> Result<(), TokenizerError> {
    let mut seen = FxHashSet::default();
    for s in specials {
        if s.is_empty() {
            return Err(TokenizerError::Config("a special token is empty".into()));
        }
        if !seen.insert(s) {
            return Err(TokenizerError::Config(format!(
                "special token {s:?} is listed twice"
            )));
        }
    }
    Ok(())
}

fn specials(names: &[String], first: u32) -> Vec<AddedToken> {
    names
        .iter()
        .enumerate()
        .map(|(i, s)| AddedToken {
            id: first + i as u32,
            content: s.clone(),
            special: true,
        })
        .collect()
}

fn merge_counts<K: std::hash::Hash + Eq>(
    mut a: FxHashMap<K, u64>,
    b: FxHashMap<K, u64>,
) -> FxHashMap<K, u64> {
    let (mut big, small) = if a.len() >= b.len() {
        (a, b)
    } else {
        (b, std::mem::take(&mut a))
    };
    for (k, v) in small {
        *big.entry(k).or_default() += v;
    }
    big
}

/// The distinct pieces of the corpus with their counts, counted in parallel.
fn count_words<'d, S: AsRef<str> + Sync>(
    docs: &'d [S],
    pre: &PreTokenizer,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<FxHashMap<&'d str, u64>, TokenizerError> {
    let counts = docs
        .par_chunks(256)
        .try_fold(FxHashMap::<&'d str, u64>::default, |mut m, chunk| {
            if cancelled() {
                return Err(TokenizerError::Cancelled);
            }
            for d in chunk {
                pre.split(d.as_ref(), |piece| *m.entry(piece).or_default() += 1);
            }
            Ok(m)
        })
        .try_reduce(FxHashMap::default, |a, b| Ok(merge_counts(a, b)))?;
    Ok(counts)
}

struct Learned {
    /// (left, right, merged id) in the order learned.
    merges: Vec<(u32, u32, u32)>,
    /// New tokens' bytes and ids (ids from 256 on, dense).
    tokens: Vec<(Vec<u8>, u32)>,
}

/// The merge loop. `target` counts the 256 byte tokens.
fn learn_merges(
    word_counts: FxHashMap<&str, u64>,
    target: usize,
    min_frequency: i64,
    cancelled: &(dyn Fn() -> bool + Sync),
    progress: &dyn Fn(usize, usize),
) -> Result<Learned, TokenizerError> {
    // Words in a fixed order (by bytes) so that word indices, and so everything after, do not
    // depend on hash order.
    let mut entries: Vec<(&str, u64)> = word_counts.into_iter().collect();
    entries.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    let counts: Vec<i64> = entries.iter().map(|&(_, n)| n as i64).collect();
    let mut words: Vec<Vec<u32>> = entries
        .iter()
        .map(|(w, _)| w.bytes().map(u32::from).collect())
        .collect();
    drop(entries);

    let mut pair_counts: FxHashMap<(u32, u32), i64> = FxHashMap::default();
    let mut where_: FxHashMap<(u32, u32), Vec<u32>> = FxHashMap::default();
    for (w, word) in words.iter().enumerate() {
        for p in word.windows(2) {
            let pair = (p[0], p[1]);
            *pair_counts.entry(pair).or_default() += counts[w];
            let list = where_.entry(pair).or_default();
            if list.last() != Some(&(w as u32)) {
                list.push(w as u32);
            }
        }
    }
    let mut heap: BinaryHeap<(i64, Reverse<(u32, u32)>)> = pair_counts
        .iter()
        .map(|(&pair, &n)| (n, Reverse(pair)))
        .collect();

    let mut token_bytes: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut token_ids: FxHashMap<Vec<u8>, u32> = token_bytes
        .iter()
        .enumerate()
        .map(|(i, b)| (b.clone(), i as u32))
        .collect();
    let mut learned = Learned {
        merges: Vec::new(),
        tokens: Vec::new(),
    };
    let total = target.saturating_sub(256);
    let mut touched: FxHashSet<(u32, u32)> = FxHashSet::default();
    let mut merged_word: Vec<u32> = Vec::new();

    while token_bytes.len() < target {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        let current = pair_counts.get(&pair).copied().unwrap_or(0);
        if current != count {
            if current > 0 {
                heap.push((current, Reverse(pair)));
            }
            continue;
        }
        if count < min_frequency {
            break;
        }
        if learned.merges.len().is_multiple_of(256) {
            if cancelled() {
                return Err(TokenizerError::Cancelled);
            }
            progress(token_bytes.len() - 256, total);
        }
        let (a, b) = pair;
        let mut bytes = token_bytes[a as usize].clone();
        bytes.extend_from_slice(&token_bytes[b as usize]);
        // Two merge paths can spell the same bytes ("a"+"bc", "ab"+"c"); like Hugging Face's
        // trainer, the later merge reuses the existing token.
        let new_id = match token_ids.get(&bytes) {
            Some(&id) => id,
            None => {
                let id = token_bytes.len() as u32;
                token_ids.insert(bytes.clone(), id);
                token_bytes.push(bytes.clone());
                learned.tokens.push((bytes, id));
                id
            }
        };
        learned.merges.push((a, b, new_id));

        // The index may list a word twice (added in different merges); once is enough.
        let mut affected = where_.remove(&pair).unwrap_or_default();
        affected.sort_unstable();
        affected.dedup();
        touched.clear();
        for &w in &affected {
            let word = &mut words[w as usize];
            if !word.windows(2).any(|p| p[0] == a && p[1] == b) {
                continue; // a stale index entry: an earlier merge consumed the pair here
            }
            let c = counts[w as usize];
            merged_word.clear();
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == a && word[i + 1] == b {
                    merged_word.push(new_id);
                    i += 2;
                } else {
                    merged_word.push(word[i]);
                    i += 1;
                }
            }
            for p in word.windows(2) {
                *pair_counts.entry((p[0], p[1])).or_default() -= c;
            }
            for p in merged_word.windows(2) {
                let q = (p[0], p[1]);
                *pair_counts.entry(q).or_default() += c;
                if q.0 == new_id || q.1 == new_id {
                    touched.insert(q);
                    let list = where_.entry(q).or_default();
                    if list.last() != Some(&w) {
                        list.push(w);
                    }
                }
            }
            std::mem::swap(word, &mut merged_word);
        }
        pair_counts.remove(&pair);
        for &q in &touched {
            let n = pair_counts[&q];
            if n > 0 {
                heap.push((n, Reverse(q)));
            }
        }
    }
    progress(total, total);
    Ok(learned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vocab_size: usize) -> BpeConfig {
        BpeConfig {
            vocab_size,
            pattern: Pattern::Gpt2,
            min_frequency: 1,
            special_tokens: vec!["<|eos|>".into()],
        }
    }

    fn merge_strings(t: &Tokenizer) -> Vec<(String, String)> {
        let s = |id: u32| String::from_utf8(t.token_bytes(id).unwrap().to_vec()).unwrap();
        t.model()
            .merges()
            .iter()
            .map(|&(a, b, _)| (s(a), s(b)))
            .collect()
    }

    /// Worked by hand. Pieces (GPT-2 pattern) of "aaab aab ab": "aaab" ×1, " aab" ×1,
    /// " ab" ×1. Pair counts: (a,a) 3, (a,b) 3, ( ,a) 2. Tie between (a,a)=(97,97) and
    /// (a,b)=(97,98) → (a,a) wins on the smaller right id. "aaab" → [aa,a,b]; " aab" →
    /// [ ,aa,b]. Now (a,b) 2 (from "aaab" and " ab"), (aa,b) 1, (aa,a) 1, ( ,aa) 1, ( ,a) 1:
    /// (a,b) wins → "aaab" → [aa,ab], " ab" → [ ,ab]. Then (aa,ab) 1, ( ,aa) 1, (aa,b) 1,
    /// ( ,ab) 1 all tie at 1; smallest ids: ( ,aa) = (32, 256) wins.
    #[test]
    fn merges_on_a_tiny_corpus_match_the_hand_computation() {
        let t = train_bpe(
            &["aaab aab ab"],
            &config(256 + 3 + 1),
            &|| false,
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(
            merge_strings(&t),
            [
                ("a".to_string(), "a".to_string()),
                ("a".to_string(), "b".to_string()),
                (" ".to_string(), "aa".to_string()),
            ]
        );
        assert_eq!(t.vocab_size(), 260);
        assert_eq!(t.token_to_id("<|eos|>"), Some(259));
        assert_eq!(t.encode_ordinary(" aab"), [258, 98]);
    }

    #[test]
    fn counts_weigh_by_frequency_and_min_frequency_stops() {
        let docs = ["xy xy xy zw"];
        let mut c = config(300);
        c.min_frequency = 2;
        let t = train_bpe(&docs, &c, &|| false, &|_, _| {}).unwrap();
        // (" ",x) 2, (x,y) 3, (z,w) 1: x+y first, then " "+xy (2); nothing else reaches 2.
        assert_eq!(
            merge_strings(&t),
            [
                ("x".to_string(), "y".to_string()),
                (" ".to_string(), "xy".to_string())
            ]
        );
    }

    #[test]
    fn training_is_deterministic_across_thread_counts() {
        let docs: Vec<String> = (0..300)
            .map(|i| format!("doc {i}: the quick brown fox {} jumps", i % 7))
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train_bpe(&docs, &config(400), &|| false, &|_, _| {}).unwrap())
        };
        assert_eq!(run(1).model().merges(), run(3).model().merges());
    }

    #[test]
    fn too_small_vocab_and_duplicate_specials_are_errors() {
        let e = train_bpe(&["x"], &config(100), &|| false, &|_, _| {}).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let mut c = config(300);
        c.special_tokens = vec!["<|a|>".into(), "<|a|>".into()];
        assert!(train_bpe(&["x"], &c, &|| false, &|_, _| {}).is_err());
    }

    #[test]
    fn char_tokenizer_covers_everything() {
        let t = train_char(
            &["hello"],
            &CharConfig {
                min_frequency: 1,
                special_tokens: vec!["<|eos|>".into()],
            },
        )
        .unwrap();
        assert_eq!(t.vocab_size(), 4 + 256 + 1);
        assert_eq!(t.encode_ordinary("hello"), [1, 0, 2, 2, 3]);
        let odd = "hé😀";
        assert_eq!(t.decode_lossy(&t.encode_ordinary(odd)), odd);
        assert_eq!(t.encode_ordinary("é").len(), 2);
    }
}

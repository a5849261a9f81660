//! [`Tokenizer`]: added (special) tokens, pre-tokenizer and BPE model together; encoding and
//! decoding.

use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use rayon::prelude::*;

use crate::cache;
use crate::error::TokenizerError;
use crate::model::{Alphabet, Bpe};
use crate::pretokenize::{with_prefix_space, PreTokenizer};

/// Spellings of the end-of-document token, tried in order: ours first, then those of common
/// pretrained tokenizers (GPT-2's `<|endoftext|>`, SentencePiece's `</s>`).
pub const EOS_NAMES: &[&str] = &["<|eos|>", "<|endoftext|>", "</s>", "<eos>"];
/// Spellings of the beginning-of-document token, tried in order.
pub const BOS_NAMES: &[&str] = &["<|bos|>", "<s>", "<bos>"];
/// Spellings of the padding token, tried in order.
pub const PAD_NAMES: &[&str] = &["<|pad|>", "<pad>"];

/// A token matched as a whole before pre-tokenization (`<|eos|>`, chat markers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedToken {
    pub id: u32,
    pub content: String,
    /// Hugging Face's `special` flag (skipped by its `decode(skip_special_tokens)`).
    pub special: bool,
}

/// What kind of tokenizer this is, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Byte-level BPE (GPT-2 style): every byte string is representable.
    ByteLevelBpe,
    /// Characters, with `<0xNN>` byte fallback for anything unseen.
    Char,
    /// A character-alphabet BPE with merges (a loaded tokenizer.json).
    CharBpe,
}

/// A piece of input for [`Tokenizer::encode_segments`]: text is always text (a literal
/// `<|eos|>` in it is encoded as characters); a special token is looked up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Special(&'a str),
}

/// A tokenizer ready to encode and decode.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pub(crate) bpe: Bpe,
    pub(crate) pre: PreTokenizer,
    /// Hugging Face `ByteLevel.add_prefix_space`: a space is put before each text segment
    /// that does not start with one.
    pub(crate) add_prefix_space: bool,
    pub(crate) added: Vec<AddedToken>,
    matcher: Option<AhoCorasick>,
    /// id → the bytes it decodes to (empty for an id no token uses).
    bytes: Vec<Vec<u8>>,
    /// id → its string in tokenizer.json.
    strings: Vec<String>,
    used: Vec<bool>,
    cache_owner: u64,
}

impl Tokenizer {
    /// Assembles a tokenizer; fails on an id used twice or a byte-level token string that is
    /// not made of mapped bytes.
    pub(crate) fn from_parts(
        bpe: Bpe,
        pre: PreTokenizer,
        add_prefix_space: bool,
        added: Vec<AddedToken>,
    ) -> Result<Tokenizer, String> {
        let size = bpe
            .vocab
            .values()
            .copied()
            .chain(added.iter().map(|a| a.id))
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut bytes = vec![Vec::new(); size];
        let mut strings = vec![String::new(); size];
        let mut used = vec![false; size];
        let fallback_byte = |s: &str| -> Option<u8> {
            let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
            if hex.len() != 2 {
                return None;
            }
            u8::from_str_radix(hex, 16).ok()
        };
        for (s, &id) in &bpe.vocab {
            let b = match &bpe.alphabet {
                Alphabet::Bytes(_) => crate::bytelevel::decode(s)
                    .ok_or_else(|| format!("token {s:?} (id {id}) is not a byte-level token"))?,
                Alphabet::Chars { byte_fallback, .. } => match fallback_byte(s) {
                    Some(b) if byte_fallback.is_some() => vec![b],
                    _ => s.as_bytes().to_vec(),
                },
            };
            bytes[id as usize] = b;
            strings[id as usize] = s.clone();
            used[id as usize] = true;
        }
        for a in &added {
            let i = a.id as usize;
            if used[i] && strings[i] != a.content {
                return Err(format!(
                    "added token {:?} has id {} which the vocabulary gives to {:?}",
                    a.content, a.id, strings[i]
                ));
            }
            bytes[i] = a.content.as_bytes().to_vec();
            strings[i] = a.content.clone();
            used[i] = true;
        }
        let matcher = if added.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(added.iter().map(|a| a.content.as_str()))
                    .map_err(|e| format!("cannot index the added tokens: {e}"))?,
            )
        };
        Ok(Tokenizer {
            bpe,
            pre,
            add_prefix_space,
            added,
            matcher,
            bytes,
            strings,
            used,
            cache_owner: cache::new_owner(),
        })
    }

    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        crate::hf::load(path.as_ref())
    }

    /// Writes this tokenizer as a Hugging Face `tokenizer.json`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TokenizerError> {
        crate::hf::save(self, path.as_ref())
    }

    pub fn kind(&self) -> TokenizerKind {
        match (&self.bpe.alphabet, self.bpe.merges.is_empty()) {
            (Alphabet::Bytes(_), _) => TokenizerKind::ByteLevelBpe,
            (Alphabet::Chars { .. }, true) => TokenizerKind::Char,
            (Alphabet::Chars { .. }, false) => TokenizerKind::CharBpe,
        }
    }

    /// Number of ids (one more than the largest id).
    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    pub fn pre_tokenizer(&self) -> &PreTokenizer {
        &self.pre
    }

    pub fn model(&self) -> &Bpe {
        &self.bpe
    }

    pub fn added_tokens(&self) -> &[AddedToken] {
        &self.added
    }

    /// The first of `names` the vocabulary has, with its id: how a role (end of document,
    /// padding, …) is found in tokenizers that spell it differently ([`EOS_NAMES`], …).
    pub fn find_special<'n>(&self, names: &[&'n str]) -> Option<(&'n str, u32)> {
        names
            .iter()
            .find_map(|&n| self.token_to_id(n).map(|id| (n, id)))
    }

    /// The id of a token given by its string (an added token's content, or a vocabulary entry
    /// as tokenizer.json writes it, e.g. `Ġthe`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.added
            .iter()
            .find(|a| a.content == token)
            .map(|a| a.id)
            .or_else(|| self.bpe.vocab.get(token).copied())
    }

    /// The tokenizer.json string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        let i = id as usize;
        (i < self.used.len() && self.used[i]).then(|| self.strings[i].as_str())
    }

    /// The bytes an id decodes to.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        (i < self.used.len() && self.used[i]).then(|| self.bytes[i].as_slice())
    }

    /// Whether `id` is an added (special) token.
    pub fn is_added(&self, id: u32) -> bool {
        self.added.iter().any(|a| a.id == id)
    }

    /// Encodes text as Hugging Face does: added tokens written in the text (`<|eos|>`) become
    /// their ids. For untrusted text use [`Tokenizer::encode_ordinary`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        match &self.matcher {
            None => self.encode_text(text, &mut out),
            Some(matcher) => {
                let mut last = 0;
                for m in matcher.find_iter(text) {
                    self.encode_text(&text[last..m.start()], &mut out);
                    out.push(self.added[m.pattern().as_usize()].id);
                    last = m.end();
                }
                self.encode_text(&text[last..], &mut out);
            }
        }
        out
    }

    /// Encodes text as text only: an added token's content in it is encoded like any other
    /// characters, so documents cannot inject control tokens.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.encode_text(text, &mut out);
        out
    }

    /// Encodes any bytes, valid UTF-8 or not, as ordinary text; `decode` gives them back.
    /// Invalid sequences are encoded as raw bytes (byte-level) or byte-fallback tokens.
    pub fn encode_bytes(&self, bytes: &[u8]) -> Vec<u32> {
        let mut out = Vec::with_capacity(bytes.len() / 3);
        for chunk in bytes.utf8_chunks() {
            self.encode_text(chunk.valid(), &mut out);
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            match &self.bpe.alphabet {
                Alphabet::Bytes(_) => self.bpe.encode_piece(invalid, &mut out),
                Alphabet::Chars { byte_fallback, unk } => {
                    for &b in invalid {
                        match (byte_fallback, unk) {
                            (Some(f), _) => out.push(f[b as usize]),
                            (None, Some(u)) => out.push(*u),
                            (None, None) => {}
                        }
                    }
                }
            }
        }
        out
    }

    /// Encodes text and named special tokens; fails on a name that is not an added token.
    pub fn encode_segments(&self, segments: &[Segment<'_>]) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        for s in segments {
            match s {
                Segment::Text(t) => self.encode_text(t, &mut out),
                Segment::Special(name) => {
                    let id = self
                        .added
                        .iter()
                        .find(|a| a.content == *name)
                        .ok_or_else(|| {
                            TokenizerError::Config(format!(
                                "the tokenizer has no special token {name:?}"
                            ))
                        })?;
                    out.push(id.id);
                }
            }
        }
        Ok(out)
    }

    /// [`Tokenizer::encode_ordinary`] over many texts in parallel (rayon's pool), in order.
    pub fn encode_ordinary_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        texts
            .par_iter()
            .map(|t| self.encode_ordinary(t.as_ref()))
            .collect()
    }

    /// [`Tokenizer::encode`] over many texts in parallel (rayon's pool), in order.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        texts.par_iter().map(|t| self.encode(t.as_ref())).collect()
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let text = with_prefix_space(text, self.add_prefix_space);
        let owner = self.cache_owner;
        let needs_cache = !self.bpe.ranks.is_empty();
        self.pre.split(&text, |piece| {
            let piece = piece.as_bytes();
            if needs_cache && piece.len() > 1 {
                cache::cached(owner, piece, out, |out| self.bpe.encode_piece(piece, out));
            } else {
                self.bpe.encode_piece(piece, out);
            }
        });
    }

    /// The bytes of `ids`, or the first id that is not in the vocabulary.
    pub fn try_decode(&self, ids: &[u32]) -> Result<Vec<u8>, u32> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id).ok_or(id)?);
        }
        Ok(out)
    }

    /// The bytes of `ids`; an id outside the vocabulary decodes to U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.token_bytes(id) {
                Some(b) => out.extend_from_slice(b),
                None => out.extend_from_slice("\u{FFFD}".as_bytes()),
            }
        }
        out
    }

    /// [`Tokenizer::decode`] as a string, invalid UTF-8 replaced by U+FFFD.
    pub fn decode_lossy(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode(ids)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{train_bpe, BpeConfig};
    use crate::Pattern;
    use proptest::prelude::*;

    fn small() -> Tokenizer {
        let docs = [
            "the cat sat on the mat. the cat ate.",
            "héllo wörld 😀 1234567 \n\n  tabs\tand  spaces",
        ];
        let config = BpeConfig {
            vocab_size: 300,
            pattern: Pattern::Gpt4,
            min_frequency: 1,
            special_tokens: crate::DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        train_bpe(&docs, &config, &|| false, &|_, _| {}).unwrap()
    }

    #[test]
    fn special_roles_are_found_under_any_known_spelling() {
        let t = small();
        let eos = t.token_to_id("<|eos|>").unwrap();
        assert_eq!(t.find_special(EOS_NAMES), Some(("<|eos|>", eos)));
        assert_eq!(
            t.find_special(&["</s>", "<|pad|>"]).map(|(n, _)| n),
            Some("<|pad|>")
        );
        assert_eq!(t.find_special(&["<unk>"]), None);
    }

    #[test]
    fn specials_are_explicit() {
        let t = small();
        let eos = t.token_to_id("<|eos|>").unwrap();
        assert_eq!(t.encode("a<|eos|>b").len(), 3);
        assert!(t.encode("a<|eos|>b").contains(&eos));
        assert!(!t.encode_ordinary("a<|eos|>b").contains(&eos));
        assert_eq!(t.decode_lossy(&t.encode_ordinary("a<|eos|>b")), "a<|eos|>b");
        let ids = t
            .encode_segments(&[Segment::Special("<|user|>"), Segment::Text("hi")])
            .unwrap();
        assert_eq!(ids[0], t.token_to_id("<|user|>").unwrap());
        assert!(t.encode_segments(&[Segment::Special("<|nope|>")]).is_err());
    }

    #[test]
    fn batch_equals_single() {
        let t = small();
        let texts = ["the cat", "wörld 😀", "", "1234567"];
        let batch = t.encode_ordinary_batch(&texts);
        for (text, ids) in texts.iter().zip(batch) {
            assert_eq!(ids, t.encode_ordinary(text));
        }
    }

    #[test]
    fn long_words_merge_like_short_ones() {
        let t = small();
        let word = "thecatsatonthemat".repeat(8);
        let symbols: Vec<u32> = word.bytes().map(u32::from).collect();
        let heap = t.bpe.merge(symbols.clone());
        // The scan loop on the same input, forced by merging in short windows is not the same
        // thing; instead compare with a straightforward reference implementation.
        let mut reference = symbols;
        loop {
            let best = (0..reference.len().saturating_sub(1))
                .filter_map(|i| {
                    t.bpe
                        .ranks
                        .get(&(reference[i], reference[i + 1]))
                        .map(|r| (r.0, i, r.1))
                })
                .min();
            let Some((_, i, id)) = best else { break };
            reference[i] = id;
            reference.remove(i + 1);
        }
        assert_eq!(heap, reference);
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let t = small();
            prop_assert_eq!(t.decode(&t.encode_bytes(&bytes)), bytes);
        }

        #[test]
        fn any_string_round_trips(text in "\\PC*") {
            let t = small();
            prop_assert_eq!(t.decode_lossy(&t.encode_ordinary(&text)), text.clone());
            prop_assert_eq!(t.decode_lossy(&t.encode(&text)), text);
        }
    }
}

//! Text ↔ token conversions the HTTP layer shares: special-token-aware encoding and the
//! printable form of single tokens used in log-probability reports.

use crate::chat::{ASSISTANT_MARKER, END_MARKER, SYSTEM_MARKER, USER_MARKER};
use crate::engine::{Codec, ModelInfo, SpecialToken};

/// Special tokens recognised by spelling inside completion prompts and `/tokenize` text, as
/// Hugging Face tokenizers do with added tokens: end/begin of sequence, padding and the chat
/// markers (so a chat rendered client-side from `/tokenizer_info`'s template tokenizes as the
/// server's own template does). Chat message *content* is never scanned for them: there a
/// typed marker would forge a turn.
pub fn prompt_specials(info: &ModelInfo, codec: &dyn Codec) -> Vec<SpecialToken> {
    let markers = [SYSTEM_MARKER, USER_MARKER, ASSISTANT_MARKER, END_MARKER]
        .into_iter()
        .filter_map(|m| SpecialToken::lookup(codec, m));
    let mut s: Vec<SpecialToken> = [&info.eos_token, &info.bos_token, &info.pad_token]
        .into_iter()
        .flatten()
        .cloned()
        .chain(markers)
        .collect();
    // Longest first, so a spelling that contains another wins.
    s.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.text.cmp(&b.text)));
    s.dedup_by(|a, b| a.text == b.text);
    s
}

/// Encodes `text`, mapping exact spellings of `specials` to their ids.
pub fn encode_with_specials(codec: &dyn Codec, specials: &[SpecialToken], text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = specials
            .iter()
            .filter(|s| !s.text.is_empty())
            .filter_map(|s| rest.find(&s.text).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        match next {
            Some((at, special)) => {
                if at > 0 {
                    out.extend(codec.encode(&rest[..at]));
                }
                out.push(special.id);
                rest = &rest[at + special.text.len()..];
            }
            None => {
                if !rest.is_empty() {
                    out.extend(codec.encode(rest));
                }
                return out;
            }
        }
    }
}

/// The text of one token as reported in log-probabilities (lossy for partial characters).
pub fn token_text(codec: &dyn Codec, id: u32) -> String {
    String::from_utf8_lossy(&codec.decode(&[id])).into_owned()
}

/// Text of a token sequence (lossy for invalid UTF-8).
pub fn text_of(codec: &dyn Codec, ids: &[u32]) -> String {
    String::from_utf8_lossy(&codec.decode(ids)).into_owned()
}

//! Text ↔ token conversions the HTTP layer shares: special-token-aware encoding and the
//! printable form of single tokens used in log-probability reports.

use crate::engine::{Codec, ModelInfo, SpecialToken};

/// Special tokens recognised by spelling inside prompt text (as Hugging Face tokenizers do with
/// added tokens): end/begin of sequence and padding. Chat role markers are deliberately absent:
/// chat messages are rendered by the template, and text must not forge a turn.
pub fn prompt_specials(info: &ModelInfo) -> Vec<SpecialToken> {
    let mut s: Vec<SpecialToken> = [&info.eos_token, &info.bos_token, &info.pad_token]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    // Longest first, so a spelling that contains another wins.
    s.sort_by(|a, b| b.text.len().cmp(&a.text.len()));
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

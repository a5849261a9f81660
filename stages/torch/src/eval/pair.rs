//! How a (context, continuation) pair becomes the two token lists the scorer reads, the way
//! lm-evaluation-harness makes them for a causal model, so the same question gets the same
//! tokens here and through `binarylm serve` driven by `lm_eval`:
//!
//! - whitespace at the end of the context moves to the start of the continuation: `"Answer: "`
//!   then `"A"` is scored as `"Answer:"` then `" A"` (byte-level BPE vocabularies hold `" A"`,
//!   and the model saw the space joined to the word in training);
//! - the continuation's tokens are those of the *whole* text after the context's own tokens:
//!   `encode(context + continuation)[len(encode(context))..]`. Encoding the continuation alone
//!   gives different tokens wherever a merge crosses the boundary.

use tokenizer::{Segment, Tokenizer, TokenizerError};

use super::items::Piece;

/// The context's tokens and the continuation's.
pub fn encode_pair(
    tok: &Tokenizer,
    context: &[Piece],
    continuation: &[Piece],
) -> Result<(Vec<u32>, Vec<u32>), TokenizerError> {
    let (context, whole) = split(context, continuation);
    let context_ids = encode(tok, &context)?;
    let whole_ids = encode(tok, &whole)?;
    let cut = context_ids.len().min(whole_ids.len());
    Ok((context_ids, whole_ids[cut..].to_vec()))
}

fn encode(tok: &Tokenizer, pieces: &[Piece]) -> Result<Vec<u32>, TokenizerError> {
    let segments: Vec<Segment<'_>> = pieces.iter().map(Piece::segment).collect();
    tok.encode_segments(&segments)
}

/// The context without its trailing whitespace, and the whole text (context + continuation)
/// with adjacent text pieces joined, so the tokenizer sees the boundary as one string.
fn split(context: &[Piece], continuation: &[Piece]) -> (Vec<Piece>, Vec<Piece>) {
    let mut whole: Vec<Piece> = Vec::with_capacity(context.len() + continuation.len());
    for p in context.iter().chain(continuation) {
        match (whole.last_mut(), p) {
            (Some(Piece::Text(prev)), Piece::Text(t)) => prev.push_str(t),
            _ => whole.push(p.clone()),
        }
    }
    let mut trimmed = context.to_vec();
    if let Some(Piece::Text(last)) = trimmed.last_mut() {
        last.truncate(last.trim_end().len());
        if last.is_empty() {
            trimmed.pop();
        }
    }
    // A context of nothing but whitespace keeps it: the scorer needs a token to start from.
    if trimmed.is_empty() {
        trimmed = context.to_vec();
    }
    (trimmed, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Piece {
        Piece::Text(s.to_string())
    }

    #[test]
    fn trailing_space_moves_to_the_continuation_and_texts_join() {
        let (context, whole) = split(&[text("Answer: ")], &[text("A")]);
        assert_eq!(context, vec![text("Answer:")]);
        assert_eq!(whole, vec![text("Answer: A")]);

        let (context, whole) = split(&[text("Q\nAnswer:")], &[text(" yes")]);
        assert_eq!(context, vec![text("Q\nAnswer:")]);
        assert_eq!(whole, vec![text("Q\nAnswer: yes")]);

        // Special tokens stay separate pieces; text on both sides of one is not joined.
        let (context, whole) = split(
            &[
                Piece::Special("<|user|>"),
                text("hi"),
                Piece::Special("<|assistant|>"),
            ],
            &[text("hello"), Piece::Special("<|end|>")],
        );
        assert_eq!(context.len(), 3);
        assert_eq!(
            whole,
            vec![
                Piece::Special("<|user|>"),
                text("hi"),
                Piece::Special("<|assistant|>"),
                text("hello"),
                Piece::Special("<|end|>"),
            ]
        );

        let (context, _) = split(&[text("  ")], &[text("x")]);
        assert_eq!(context, vec![text("  ")], "an all-space context is kept");
    }
}

//! `binarylm show <tokenizer stage>`: vocabulary, tokens per split, compression, and how the
//! start of a validation document was cut.

use std::fmt::Write;
use std::path::Path;

use tokenizer::shards::Shards;
use tokenizer::{Tokenizer, TokenizerKind};

/// Tokens of the sample shown.
const SAMPLE_TOKENS: usize = 24;

/// The report for the tokenizer artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let mut o = String::new();
    let tok = match Tokenizer::from_file(dir.join("tokenizer.json")) {
        Ok(t) => t,
        Err(e) => return Err(format!("tokenizer.json unreadable: {e}")),
    };
    let kind = match tok.kind() {
        TokenizerKind::ByteLevelBpe => "byte-level BPE",
        TokenizerKind::Char => "char",
        TokenizerKind::CharBpe => "char BPE",
    };
    let pattern = match tok.pre_tokenizer().pattern() {
        Some(tokenizer::Pattern::Gpt2) => "gpt2".to_string(),
        Some(tokenizer::Pattern::Gpt4) => "gpt4".to_string(),
        Some(tokenizer::Pattern::Custom(p)) => format!("{p:?}"),
        None => "none".to_string(),
    };
    let _ = writeln!(
        o,
        "  tokenizer  {kind}, vocab {} ({} merges, {} special), pattern {pattern}",
        tok.vocab_size(),
        tok.model().merges().len(),
        tok.added_tokens().len()
    );
    let shards = match Shards::open(dir) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(o, "  shards     unreadable: {e}");
            return Ok(o);
        }
    };
    for (name, s) in &shards.meta().splits {
        let _ = writeln!(
            o,
            "  {name:<10} {} tokens, {} documents, {:.3} bytes/token, \
             unigram entropy {:.3} nats",
            s.tokens, s.documents, s.bytes_per_token, s.unigram_entropy_nats
        );
    }
    let Some(split) = ["val", "train"].into_iter().find_map(|n| {
        shards
            .split(n)
            .filter(|s| s.documents() > 0)
            .map(|s| (n, s))
    }) else {
        return Ok(o);
    };
    let (name, split) = split;
    let doc = split.document(0);
    let n = doc.len().min(SAMPLE_TOKENS);
    let mut ids = vec![0i64; n];
    split.window(doc.start, n, &mut ids);
    let pieces: Vec<String> = ids
        .iter()
        .map(|&id| {
            let bytes = tok.token_bytes(id as u32).unwrap_or_default();
            tokenizer::quoted(bytes)
        })
        .collect();
    let _ = writeln!(o, "  sample     {name} document 0, first {n} tokens:");
    let _ = writeln!(o, "    {}", pieces.join(" "));
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    let _ = writeln!(o, "    {}", ids.join(" "));
    Ok(o)
}

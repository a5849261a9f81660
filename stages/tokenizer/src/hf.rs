//! Hugging Face `tokenizer.json`: writing ours, reading theirs.
//!
//! What we write (byte-level BPE): a `BPE` model (vocab, merges as pairs), no normalizer, the
//! pre-tokenizer as `ByteLevel` with its built-in regex (GPT-2 pattern) or as a `Sequence` of a
//! `Split` (the pattern, `Isolated`) and a `ByteLevel` without regex, a `ByteLevel` decoder and
//! the special tokens as `added_tokens`. The char tokenizer is a `BPE` model without merges
//! whose `byte_fallback` covers unseen characters, no pre-tokenizer, and a `ByteFallback` +
//! `Fuse` decoder.
//!
//! What we read: those shapes and the common variations (merges as `"a b"` strings,
//! `ignore_merges`, `add_prefix_space`, an `unk_token`). Anything that would make our ids
//! differ from Hugging Face's (a normalizer, a WordPiece/Unigram model, other pre-tokenizers)
//! is an error naming the component, never a silent approximation. The post-processor is
//! ignored: binarylm places `<|bos|>`/`<|eos|>` itself.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde_json::{json, Map, Value};

use crate::error::TokenizerError;
use crate::model::{Alphabet, Bpe};
use crate::pretokenize::{Pattern, PreTokenizer};
use crate::tokenizer::{AddedToken, Tokenizer};

/// The JSON document of a tokenizer.
pub fn to_json(t: &Tokenizer) -> Value {
    let vocab: Map<String, Value> = {
        let mut entries: Vec<(&String, &u32)> = t.bpe.vocab.iter().collect();
        entries.sort_by_key(|&(_, id)| *id);
        entries
            .into_iter()
            .map(|(s, id)| (s.clone(), json!(id)))
            .collect()
    };
    let name = |id: u32| t.id_to_token(id).unwrap_or_default().to_string();
    let merges: Vec<Value> = t
        .bpe
        .merges
        .iter()
        .map(|&(a, b, _)| json!([name(a), name(b)]))
        .collect();
    let byte_level = matches!(t.bpe.alphabet, Alphabet::Bytes(_));
    let byte_fallback = matches!(
        t.bpe.alphabet,
        Alphabet::Chars {
            byte_fallback: Some(_),
            ..
        }
    );
    let unk = match &t.bpe.alphabet {
        Alphabet::Chars { unk: Some(u), .. } => json!(name(*u)),
        _ => Value::Null,
    };
    let byte_level_step = |use_regex: bool| {
        json!({
            "type": "ByteLevel",
            "add_prefix_space": t.add_prefix_space,
            "trim_offsets": true,
            "use_regex": use_regex,
        })
    };
    let pre_tokenizer = match t.pre.pattern() {
        None if byte_level => byte_level_step(false),
        None => Value::Null,
        Some(Pattern::Gpt2) if byte_level => byte_level_step(true),
        Some(p) => {
            let split = json!({
                "type": "Split",
                "pattern": { "Regex": p.regex() },
                "behavior": "Isolated",
                "invert": false,
            });
            if byte_level {
                json!({ "type": "Sequence", "pretokenizers": [split, byte_level_step(false)] })
            } else {
                split
            }
        }
    };
    let decoder = if byte_level {
        byte_level_step(true)
    } else {
        json!({ "type": "Sequence", "decoders": [{ "type": "ByteFallback" }, { "type": "Fuse" }] })
    };
    let added: Vec<Value> = t
        .added
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "content": a.content,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": a.special,
            })
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": decoder,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": unk,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": byte_fallback,
            "ignore_merges": t.bpe.ignore_merges,
            "vocab": vocab,
            "merges": merges,
        },
    })
}

/// Writes `t` to `path` (pretty-printed, keys in a fixed order, so equal tokenizers give equal
/// files).
pub fn save(t: &Tokenizer, path: &Path) -> Result<(), TokenizerError> {
    let text = serde_json::to_string_pretty(&to_json(t)).expect("JSON values serialize");
    std::fs::write(path, text).map_err(|source| TokenizerError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a tokenizer.json from `path`.
pub fn load(path: &Path) -> Result<Tokenizer, TokenizerError> {
    let text = std::fs::read(path).map_err(|source| TokenizerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&text).map_err(|source| TokenizerError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    from_json(&value, path)
}

/// Builds a tokenizer from a parsed tokenizer.json; `path` names it in errors.
pub fn from_json(v: &Value, path: &Path) -> Result<Tokenizer, TokenizerError> {
    let unsupported = |what: String, hint: &str| TokenizerError::Unsupported {
        path: path.to_path_buf(),
        what,
        hint: hint.to_string(),
    };
    let invalid = |message: String| TokenizerError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let Some(obj) = v.as_object() else {
        return Err(invalid("the top level is not a JSON object".into()));
    };
    if !obj.get("normalizer").is_none_or(Value::is_null) {
        return Err(unsupported(
            format!("normalizer {}", type_of(&obj["normalizer"])),
            "binarylm reads tokenizers without a normalizer (GPT-2/GPT-4 style byte-level BPE); \
             normalize text in the data stage (`clean: { normalize: nfc }`) instead",
        ));
    }
    let model = obj
        .get("model")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("no `model` object".into()))?;
    let model_type = model.get("type").and_then(Value::as_str).unwrap_or("BPE");
    if model_type != "BPE" {
        return Err(unsupported(
            format!("model type {model_type}"),
            "only BPE models are supported; train one with `kind: tokenizer`",
        ));
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if let Some(s) = model.get(key).and_then(Value::as_str) {
            if !s.is_empty() {
                return Err(unsupported(
                    format!("BPE `{key}` {s:?}"),
                    "only BPE without subword prefixes/suffixes is supported",
                ));
            }
        }
    }
    if model
        .get("dropout")
        .and_then(Value::as_f64)
        .is_some_and(|d| d > 0.0)
    {
        return Err(unsupported(
            "BPE dropout".into(),
            "dropout makes encoding random; remove `dropout` from the file",
        ));
    }

    let (pattern, byte_level, add_prefix_space) = read_pre_tokenizer(
        obj.get("pre_tokenizer").unwrap_or(&Value::Null),
        &unsupported,
    )?;

    let vocab_obj = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("model has no `vocab` object".into()))?;
    let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
    for (token, id) in vocab_obj {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| invalid(format!("vocab entry {token:?} has no valid id")))?;
        vocab.insert(token.clone(), id);
    }

    let merges_v = model
        .get("merges")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut merges = Vec::with_capacity(merges_v.len());
    for (rank, m) in merges_v.iter().enumerate() {
        let (a, b) = match m {
            Value::String(s) => s
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| invalid(format!("merge {rank} {s:?} is not `left right`")))?,
            Value::Array(pair) if pair.len() == 2 => match (&pair[0], &pair[1]) {
                (Value::String(a), Value::String(b)) => (a.clone(), b.clone()),
                _ => return Err(invalid(format!("merge {rank} is not two strings"))),
            },
            _ => {
                return Err(invalid(format!(
                    "merge {rank} is neither a string nor a pair"
                )))
            }
        };
        let id = |s: &str| {
            vocab.get(s).copied().ok_or_else(|| {
                invalid(format!(
                    "merge {rank} uses {s:?}, which is not in the vocab"
                ))
            })
        };
        let merged = format!("{a}{b}");
        merges.push((id(&a)?, id(&b)?, id(&merged)?));
    }

    let byte_fallback = model
        .get("byte_fallback")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let unk = match model.get("unk_token").and_then(Value::as_str) {
        Some(u) => Some(
            vocab
                .get(u)
                .copied()
                .ok_or_else(|| invalid(format!("unk_token {u:?} is not in the vocab")))?,
        ),
        None => None,
    };
    let alphabet = if byte_level {
        let mut ids = [0u32; 256];
        for b in 0..=255u8 {
            let s = crate::bytelevel::encode(&[b]);
            ids[b as usize] = *vocab.get(&s).ok_or_else(|| {
                invalid(format!(
                    "byte-level vocab lacks the token {s:?} for byte 0x{b:02X}, so some text \
                     could not be encoded"
                ))
            })?;
        }
        Alphabet::Bytes(Box::new(ids))
    } else {
        let fallback = if byte_fallback {
            let mut ids = [0u32; 256];
            for (b, slot) in ids.iter_mut().enumerate() {
                let s = format!("<0x{b:02X}>");
                *slot = *vocab.get(&s).ok_or_else(|| {
                    invalid(format!("byte_fallback is on but the vocab lacks {s:?}"))
                })?;
            }
            Some(Box::new(ids))
        } else {
            None
        };
        if fallback.is_none() && unk.is_none() {
            return Err(unsupported(
                "a character-level BPE with neither `byte_fallback` nor `unk_token`".into(),
                "such a tokenizer cannot encode unseen characters; set one of the two",
            ));
        }
        Alphabet::Chars {
            byte_fallback: fallback,
            unk,
        }
    };
    let ignore_merges = model
        .get("ignore_merges")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut added = Vec::new();
    for (i, a) in obj
        .get("added_tokens")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let id = a
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| invalid(format!("added_tokens[{i}] has no valid `id`")))?;
        let content = a
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("added_tokens[{i}] has no `content`")))?;
        for flag in ["single_word", "lstrip", "rstrip"] {
            if a.get(flag).and_then(Value::as_bool) == Some(true) {
                return Err(unsupported(
                    format!("added token {content:?} with `{flag}: true`"),
                    "only added tokens matched exactly (single_word/lstrip/rstrip false) are supported",
                ));
            }
        }
        added.push(AddedToken {
            id,
            content: content.to_string(),
            special: a.get("special").and_then(Value::as_bool).unwrap_or(false),
        });
    }

    let pre = match pattern {
        Some(p) => PreTokenizer::new(&p).map_err(|e| {
            unsupported(
                format!("split pattern: {e}"),
                "custom patterns run on the `regex` crate (no look-around); GPT-2's and GPT-4's \
                 patterns are built in",
            )
        })?,
        None => PreTokenizer::None,
    };
    let bpe = Bpe::new(vocab, merges, alphabet, ignore_merges);
    Tokenizer::from_parts(bpe, pre, add_prefix_space, added).map_err(invalid)
}

fn type_of(v: &Value) -> String {
    v.get("type")
        .and_then(Value::as_str)
        .unwrap_or("(untyped)")
        .to_string()
}

/// (pattern, byte-level?, add_prefix_space) of a pre_tokenizer value.
fn read_pre_tokenizer(
    v: &Value,
    unsupported: &dyn Fn(String, &str) -> TokenizerError,
) -> Result<(Option<Pattern>, bool, bool), TokenizerError> {
    const HINT: &str = "supported pre-tokenizers: none, ByteLevel, Split (regex, Isolated), and a \
                        Sequence of a Split followed by a ByteLevel without regex";
    if v.is_null() {
        return Ok((None, false, false));
    }
    let flag = |step: &Value, key: &str, default: bool| {
        step.get(key).and_then(Value::as_bool).unwrap_or(default)
    };
    let split = |step: &Value| -> Result<Pattern, TokenizerError> {
        let regex = step
            .get("pattern")
            .and_then(|p| p.get("Regex").or_else(|| p.get("String")))
            .and_then(Value::as_str);
        let is_regex = step.get("pattern").and_then(|p| p.get("Regex")).is_some();
        let behavior = step.get("behavior").and_then(Value::as_str).unwrap_or("");
        match (regex, is_regex, behavior, flag(step, "invert", false)) {
            (Some(r), true, "Isolated", false) => Ok(Pattern::parse(r)),
            _ => Err(unsupported(
                format!("Split pre-tokenizer {step}"),
                "only `Split` with a Regex pattern, behavior Isolated and invert false is supported",
            )),
        }
    };
    match type_of(v).as_str() {
        "ByteLevel" => {
            let pattern = flag(v, "use_regex", true).then_some(Pattern::Gpt2);
            Ok((pattern, true, flag(v, "add_prefix_space", true)))
        }
        "Split" => Ok((Some(split(v)?), false, false)),
        "Sequence" => {
            let steps = v
                .get("pretokenizers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match steps {
                [s, b]
                    if type_of(s) == "Split"
                        && type_of(b) == "ByteLevel"
                        && !flag(b, "use_regex", true) =>
                {
                    Ok((Some(split(s)?), true, flag(b, "add_prefix_space", true)))
                }
                [b] if type_of(b) == "ByteLevel" => {
                    let pattern = flag(b, "use_regex", true).then_some(Pattern::Gpt2);
                    Ok((pattern, true, flag(b, "add_prefix_space", true)))
                }
                _ => Err(unsupported(format!("pre-tokenizer Sequence {v}"), HINT)),
            }
        }
        other => Err(unsupported(format!("pre-tokenizer {other}"), HINT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{train_bpe, train_char, BpeConfig, CharConfig};

    #[test]
    fn save_then_load_gives_the_same_ids() {
        let dir = tempfile::tempdir().unwrap();
        for pattern in [
            Pattern::Gpt2,
            Pattern::Gpt4,
            Pattern::Custom(r"\w+|\W".into()),
        ] {
            let config = BpeConfig {
                vocab_size: 320,
                pattern,
                min_frequency: 1,
                special_tokens: vec!["<|eos|>".into(), "<|user|>".into()],
            };
            let docs = [
                "the theme of these themes: 12345 ünïcödé\n\n  x",
                "more text, more",
            ];
            let t = train_bpe(&docs, &config, &|| false, &|_, _| {}).unwrap();
            let path = dir.path().join("tokenizer.json");
            t.save(&path).unwrap();
            let u = Tokenizer::from_file(&path).unwrap();
            let text = "the themes<|user|> 999 ünï\t\tx";
            assert_eq!(t.encode(text), u.encode(text));
            assert_eq!(t.vocab_size(), u.vocab_size());
            assert_eq!(u.decode_lossy(&u.encode(text)), text);
        }
        let c = train_char(
            &["abc"],
            &CharConfig {
                min_frequency: 1,
                special_tokens: vec![],
            },
        )
        .unwrap();
        let path = dir.path().join("char.json");
        c.save(&path).unwrap();
        let d = Tokenizer::from_file(&path).unwrap();
        assert_eq!(c.encode("abcé"), d.encode("abcé"));
    }

    #[test]
    fn unsupported_components_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(
            &path,
            r#"{"normalizer":{"type":"NFKC"},"model":{"type":"BPE","vocab":{},"merges":[]}}"#,
        )
        .unwrap();
        let e = Tokenizer::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("normalizer NFKC"), "{e}");
        std::fs::write(&path, r#"{"model":{"type":"WordPiece","vocab":{}}}"#).unwrap();
        let e = Tokenizer::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("model type WordPiece"), "{e}");
        std::fs::write(&path, "{not json").unwrap();
        let e = Tokenizer::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        std::fs::write(
            &path,
            r#"{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}"#,
        )
        .unwrap();
        let e = Tokenizer::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("lacks the token"), "{e}");
    }
}

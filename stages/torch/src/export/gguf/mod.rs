//! A model as one GGUF file for llama.cpp: architecture `gpt2` or `llama`, the matrices as
//! f32, f16, Q8_0 or Q4_0 ([`blocks`]), and the tokenizer as GGUF's BPE tokenizer metadata, so
//! llama.cpp needs no other file.
//!
//! Tensor names are llama.cpp's (`token_embd`, `blk.N.attn_q`, …). Weights keep our `[out,
//! in]` layout, which is ggml's `{in, out}`; GPT-2's `attn_qkv` is our fused `qkv` as it is
//! (llama.cpp splits it by `head_count_kv`, so grouped-query attention needs no repeat). Two
//! changes of layout:
//! - llama.cpp's `llama` rotates *adjacent* pairs of a head's channels (RoPE "normal"), ours
//!   (and Hugging Face's) rotate channel `i` with `i + d/2`. So the rows of each query and key
//!   head are interleaved, row `2i + a` taking our row `a·d/2 + i`: the same rotation applied
//!   to renamed channels, which leaves `q·k` unchanged.
//! - GPT-2 in llama.cpp always has biases: a model without gets zeros.

pub mod blocks;
pub mod file;

use pipelines::{ExportArchitecture, GgufDtype};
use serde_json::Value as Json;
use tch::{Kind, Tensor as TchTensor};
use tokenizer::{Alphabet, Pattern, Tokenizer, BOS_NAMES, EOS_NAMES, PAD_NAMES};

use self::blocks::{GgmlType, BLOCK};
use self::file::{Gguf, Tensor, Value, ALIGNMENT};
use super::{ExportError, Weights};
use crate::model::ModelConfig;

/// The file a GGUF export holds.
pub const GGUF_FILE: &str = "model.gguf";

/// How a tensor of `shape` is stored for `dtype`: vectors (norms, biases) in f32; matrices in
/// the asked type, except that a quantized type needs rows of whole 32-weight blocks (a
/// matrix whose rows are not falls back to f16).
pub fn storage(dtype: GgufDtype, shape: &[usize]) -> GgmlType {
    if shape.len() < 2 {
        return GgmlType::F32;
    }
    let whole_blocks = shape.last().is_some_and(|&n| n % BLOCK == 0);
    match dtype {
        GgufDtype::F32 => GgmlType::F32,
        GgufDtype::F16 => GgmlType::F16,
        GgufDtype::Q8_0 if whole_blocks => GgmlType::Q8_0,
        GgufDtype::Q4_0 if whole_blocks => GgmlType::Q4_0,
        GgufDtype::Q8_0 | GgufDtype::Q4_0 => GgmlType::F16,
    }
}

/// `general.file_type`: llama.cpp's name for what most tensors are.
fn file_type(dtype: GgufDtype) -> u32 {
    match dtype {
        GgufDtype::F32 => 0,  // ALL_F32
        GgufDtype::F16 => 1,  // MOSTLY_F16
        GgufDtype::Q4_0 => 2, // MOSTLY_Q4_0
        GgufDtype::Q8_0 => 7, // MOSTLY_Q8_0
    }
}

/// What a chat model adds: the Jinja template and the end-of-turn token.
pub struct Chat {
    pub template: String,
    pub end_token: Option<u32>,
}

/// The GGUF file of a model.
pub fn build(
    cfg: &ModelConfig,
    arch: ExportArchitecture,
    dtype: GgufDtype,
    ours: &Weights,
    tok: &Tokenizer,
    name: &str,
    chat: Option<&Chat>,
) -> Result<Gguf, ExportError> {
    let mut g = Gguf::default();
    let a = arch.gguf_arch();
    let key = |k: &str| format!("{a}.{k}");
    let u32_ = |n: usize| Value::U32(n as u32);
    g.set("general.architecture", Value::Str(a.to_string()));
    g.set("general.name", Value::Str(name.to_string()));
    g.set("general.file_type", Value::U32(file_type(dtype)));
    g.set("general.alignment", u32_(ALIGNMENT));
    if matches!(dtype, GgufDtype::Q8_0 | GgufDtype::Q4_0) {
        g.set("general.quantization_version", Value::U32(2));
    }
    g.set(&key("context_length"), u32_(cfg.block_size));
    g.set(&key("embedding_length"), u32_(cfg.n_embd));
    g.set(&key("feed_forward_length"), u32_(cfg.mlp_hidden));
    g.set(&key("block_count"), u32_(cfg.n_layer));
    g.set(&key("attention.head_count"), u32_(cfg.n_head));
    g.set(&key("attention.head_count_kv"), u32_(cfg.n_kv_head));
    g.set(&key("vocab_size"), u32_(cfg.vocab_size));
    match arch {
        ExportArchitecture::Gpt2 => {
            g.set(
                &key("attention.layer_norm_epsilon"),
                Value::F32(cfg.norm_eps as f32),
            );
        }
        ExportArchitecture::Llama => {
            g.set(
                &key("attention.layer_norm_rms_epsilon"),
                Value::F32(cfg.norm_eps as f32),
            );
            g.set(&key("rope.freq_base"), Value::F32(cfg.rope_theta as f32));
            g.set(&key("rope.dimension_count"), u32_(cfg.head_dim()));
        }
    }
    tokenizer_metadata(&mut g, tok, cfg.vocab_size, chat)?;

    for (name, t) in tensors(cfg, arch, ours)? {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(&t.reshape([-1])).map_err(|e| ExportError::Gguf {
            what: format!("reading `{name}`: {e}"),
        })?;
        let ty = storage(dtype, &shape);
        g.tensors.push(Tensor {
            name,
            data: blocks::encode(&values, ty),
            shape,
            ty,
        });
    }
    Ok(g)
}

/// Our weights under llama.cpp's names, fp32 and contiguous, in PyTorch shape order.
fn tensors(
    cfg: &ModelConfig,
    arch: ExportArchitecture,
    ours: &Weights,
) -> Result<Vec<(String, TchTensor)>, ExportError> {
    let w = |name: &str| ours.need(name);
    let zeros = |len: usize| TchTensor::zeros([len as i64], (Kind::Float, tch::Device::Cpu));
    // GPT-2 needs every bias; Llama takes them when the model has them.
    let bias = |name: &str, len: usize| -> Option<TchTensor> {
        match (ours.get(name), arch) {
            (Some(b), _) => Some(b),
            (None, ExportArchitecture::Gpt2) => Some(zeros(len)),
            (None, ExportArchitecture::Llama) => None,
        }
    };
    let c = cfg.n_embd;
    let hd = cfg.head_dim() as i64;
    let (q_rows, kv_rows) = (cfg.n_head as i64 * hd, cfg.n_kv_head as i64 * hd);
    let mut out: Vec<(String, Option<TchTensor>)> =
        vec![("token_embd.weight".into(), Some(w("tok_emb.weight")?))];
    if arch == ExportArchitecture::Gpt2 {
        out.push(("position_embd.weight".into(), Some(w("pos_emb.weight")?)));
    }
    for i in 0..cfg.n_layer {
        let ours = |s: &str| format!("blocks.{i}.{s}");
        let theirs = |s: &str| format!("blk.{i}.{s}");
        out.push((theirs("attn_norm.weight"), Some(w(&ours("norm1.weight"))?)));
        out.push((theirs("attn_norm.bias"), bias(&ours("norm1.bias"), c)));
        out.push((theirs("ffn_norm.weight"), Some(w(&ours("norm2.weight"))?)));
        out.push((theirs("ffn_norm.bias"), bias(&ours("norm2.bias"), c)));
        let qkv = w(&ours("attn.qkv.weight"))?;
        let qkv_b = bias(&ours("attn.qkv.bias"), (q_rows + 2 * kv_rows) as usize);
        match arch {
            ExportArchitecture::Gpt2 => {
                out.push((theirs("attn_qkv.weight"), Some(qkv)));
                out.push((theirs("attn_qkv.bias"), qkv_b));
                out.push((theirs("ffn_up.weight"), Some(w(&ours("mlp.fc.weight"))?)));
                out.push((
                    theirs("ffn_up.bias"),
                    bias(&ours("mlp.fc.bias"), cfg.mlp_hidden),
                ));
            }
            ExportArchitecture::Llama => {
                let parts = qkv.split_with_sizes([q_rows, kv_rows, kv_rows], 0);
                out.push((theirs("attn_q.weight"), Some(interleave(&parts[0], hd))));
                out.push((theirs("attn_k.weight"), Some(interleave(&parts[1], hd))));
                out.push((theirs("attn_v.weight"), Some(parts[2].shallow_clone())));
                if let Some(b) = qkv_b {
                    let parts = b.split_with_sizes([q_rows, kv_rows, kv_rows], 0);
                    out.push((theirs("attn_q.bias"), Some(interleave(&parts[0], hd))));
                    out.push((theirs("attn_k.bias"), Some(interleave(&parts[1], hd))));
                    out.push((theirs("attn_v.bias"), Some(parts[2].shallow_clone())));
                }
                out.push((
                    theirs("ffn_gate.weight"),
                    Some(w(&ours("mlp.gate.weight"))?),
                ));
                out.push((
                    theirs("ffn_gate.bias"),
                    bias(&ours("mlp.gate.bias"), cfg.mlp_hidden),
                ));
                out.push((theirs("ffn_up.weight"), Some(w(&ours("mlp.up.weight"))?)));
                out.push((
                    theirs("ffn_up.bias"),
                    bias(&ours("mlp.up.bias"), cfg.mlp_hidden),
                ));
            }
        }
        out.push((
            theirs("attn_output.weight"),
            Some(w(&ours("attn.proj.weight"))?),
        ));
        out.push((theirs("attn_output.bias"), bias(&ours("attn.proj.bias"), c)));
        out.push((
            theirs("ffn_down.weight"),
            Some(w(&ours("mlp.proj.weight"))?),
        ));
        out.push((theirs("ffn_down.bias"), bias(&ours("mlp.proj.bias"), c)));
    }
    out.push(("output_norm.weight".into(), Some(w("norm_f.weight")?)));
    if arch == ExportArchitecture::Gpt2 {
        out.push(("output_norm.bias".into(), bias("norm_f.bias", c)));
    }
    // Without `output.weight`, llama.cpp uses the token embedding as the head: a tied head.
    if !cfg.tied_head {
        out.push(("output.weight".into(), Some(w("lm_head.weight")?)));
    }
    Ok(out
        .into_iter()
        .filter_map(|(name, t)| t.map(|t| (name, t.contiguous())))
        .collect())
}

/// Rows of each head (`hd` rows, or values for a bias) from the half-split order RoPE uses
/// here to the adjacent-pair order of llama.cpp's `llama`: row `2i + a` ← row `a·hd/2 + i`.
fn interleave(t: &TchTensor, hd: i64) -> TchTensor {
    let shape = t.size();
    let heads = shape[0] / hd;
    let rest: i64 = shape[1..].iter().product();
    t.reshape([heads, 2, hd / 2, rest])
        .transpose(1, 2)
        .reshape(shape.as_slice())
}

/// GGUF's token type ids.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The pre-tokenizer name a GGUF file declares for our split, or why llama.cpp has none that
/// splits the same way. `gpt4` (cl100k) is llama.cpp's `llama3` regex; its `llama-bpe` name
/// also turns on `ignore_merges` (a piece that is itself a token skips the merges) and a BOS
/// at the start, while `dbrx` selects the same regex alone. So a tokenizer that applies its
/// merges to every piece, as ours do, declares `dbrx`, and one with `ignore_merges` declares
/// `llama-bpe` (its BOS is turned off by `tokenizer.ggml.add_bos_token`).
pub fn pre_tokenizer(
    pattern: Option<&Pattern>,
    ignore_merges: bool,
) -> Result<&'static str, String> {
    match (pattern, ignore_merges) {
        (Some(Pattern::Gpt4), false) => Ok("dbrx"),
        (Some(Pattern::Gpt4), true) => Ok("llama-bpe"),
        (Some(Pattern::Gpt2), false) => Ok("gpt-2"),
        (Some(Pattern::Gpt2), true) => Err("llama.cpp's `gpt-2` pre-tokenizer does not skip merges for whole-token pieces (`ignore_merges`)".into()),
        (Some(Pattern::Custom(re)), _) => Err(format!("llama.cpp has no pre-tokenizer for the split regex `{re}`; use `pattern: gpt4` or `gpt2`")),
        (None, _) => Err("the tokenizer has no split pattern; llama.cpp's BPE needs one".into()),
    }
}

fn tokenizer_metadata(
    g: &mut Gguf,
    tok: &Tokenizer,
    vocab_size: usize,
    chat: Option<&Chat>,
) -> Result<(), ExportError> {
    let refuse = |what: String| ExportError::Gguf { what };
    if !matches!(tok.model().alphabet(), Alphabet::Bytes(_)) {
        return Err(refuse(
            "GGUF's `gpt2` tokenizer is byte-level BPE; this model's tokenizer is character-level"
                .into(),
        ));
    }
    // The flags the tokenizer crate writes into its Hugging Face JSON (the one public view).
    let json = tokenizer::hf::to_json(tok);
    let ignore_merges = json["model"]["ignore_merges"].as_bool().unwrap_or(false);
    let prefix = |v: &Json| v["add_prefix_space"].as_bool().unwrap_or(false);
    let pre = &json["pre_tokenizer"];
    let add_prefix = prefix(pre)
        || pre["pretokenizers"]
            .as_array()
            .is_some_and(|steps| steps.iter().any(prefix));
    if add_prefix {
        return Err(refuse(
            "the tokenizer adds a space before each text (`add_prefix_space`), which llama.cpp's BPE does not".into(),
        ));
    }
    let pre_name = pre_tokenizer(tok.pre_tokenizer().pattern(), ignore_merges).map_err(refuse)?;

    let n = tok.vocab_size();
    if n != vocab_size {
        return Err(refuse(format!(
            "the tokenizer has {n} tokens but the model's embedding {vocab_size} rows"
        )));
    }
    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for id in 0..n as u32 {
        let text = tok
            .id_to_token(id)
            .ok_or_else(|| refuse(format!("token id {id} has no text")))?;
        tokens.push(text.to_string());
        let added = tok.added_tokens().iter().find(|a| a.id == id);
        types.push(match added {
            Some(a) if a.special => CONTROL,
            Some(_) => USER_DEFINED,
            None => NORMAL,
        });
    }
    let name = |id: u32| tok.id_to_token(id).unwrap_or_default();
    let merges = tok
        .model()
        .merges()
        .iter()
        .map(|&(a, b, _)| format!("{} {}", name(a), name(b)))
        .collect();
    g.set("tokenizer.ggml.model", Value::Str("gpt2".into()));
    g.set("tokenizer.ggml.pre", Value::Str(pre_name.into()));
    g.set("tokenizer.ggml.tokens", Value::Strs(tokens));
    g.set("tokenizer.ggml.token_type", Value::I32s(types));
    g.set("tokenizer.ggml.merges", Value::Strs(merges));
    let special = |names: &[&str]| tok.find_special(names).map(|(_, id)| id);
    if let Some(id) = special(BOS_NAMES) {
        g.set("tokenizer.ggml.bos_token_id", Value::U32(id));
    }
    if let Some(id) = special(EOS_NAMES) {
        g.set("tokenizer.ggml.eos_token_id", Value::U32(id));
    }
    if let Some(id) = special(PAD_NAMES) {
        g.set("tokenizer.ggml.padding_token_id", Value::U32(id));
    }
    // binarylm puts no BOS or EOS around a text; neither should llama.cpp.
    g.set("tokenizer.ggml.add_bos_token", Value::Bool(false));
    g.set("tokenizer.ggml.add_eos_token", Value::Bool(false));
    if let Some(chat) = chat {
        g.set("tokenizer.chat_template", Value::Str(chat.template.clone()));
        if let Some(id) = chat.end_token {
            g.set("tokenizer.ggml.eot_token_id", Value::U32(id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_moves_row_i_plus_half_next_to_row_i() {
        // Two heads of 4 rows: rows 0..4 then 4..8.
        let t = TchTensor::arange(8, (Kind::Float, tch::Device::Cpu)).reshape([8, 1]);
        let v = Vec::<f32>::try_from(&interleave(&t, 4).reshape([-1])).unwrap();
        assert_eq!(v, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    }

    #[test]
    fn vectors_stay_f32_and_partial_blocks_fall_back_to_f16() {
        assert_eq!(storage(GgufDtype::Q4_0, &[64]), GgmlType::F32);
        assert_eq!(storage(GgufDtype::Q4_0, &[48, 64]), GgmlType::Q4_0);
        assert_eq!(storage(GgufDtype::Q8_0, &[64, 48]), GgmlType::F16);
        assert_eq!(storage(GgufDtype::F32, &[64, 48]), GgmlType::F32);
    }

    /// Special tokens are control tokens, the ids name them, and neither BOS nor EOS is added;
    /// a chat model carries its template and end-of-turn token.
    #[test]
    fn tokenizer_metadata_says_what_binarylm_does() {
        use tokenizer::{train_bpe, BpeConfig, DEFAULT_SPECIAL_TOKENS};
        let config = BpeConfig {
            vocab_size: 300,
            pattern: Pattern::Gpt4,
            min_frequency: 1,
            special_tokens: DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let tok = train_bpe(&["the cat sat on the mat"], &config, &|| false, &|_, _| {}).unwrap();
        let n = tok.vocab_size();
        let eos = tok.token_to_id("<|eos|>").unwrap();
        let end = tok.token_to_id("<|end|>").unwrap();
        let chat = Chat {
            template: "T".into(),
            end_token: Some(end),
        };
        let mut g = Gguf::default();
        tokenizer_metadata(&mut g, &tok, n, Some(&chat)).unwrap();
        let get = |k: &str| {
            g.metadata
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("tokenizer.ggml.pre"), Some(Value::Str("dbrx".into())));
        assert_eq!(get("tokenizer.ggml.eos_token_id"), Some(Value::U32(eos)));
        assert_eq!(get("tokenizer.ggml.eot_token_id"), Some(Value::U32(end)));
        assert_eq!(
            get("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(false))
        );
        assert_eq!(get("tokenizer.chat_template"), Some(Value::Str("T".into())));
        let Some(Value::I32s(types)) = get("tokenizer.ggml.token_type") else {
            panic!("no token types")
        };
        assert_eq!(types.len(), n);
        assert_eq!(types[eos as usize], CONTROL);
        assert_eq!(types[0], NORMAL);
        // The embedding must have a row per token.
        assert!(tokenizer_metadata(&mut Gguf::default(), &tok, n + 1, None).is_err());
    }

    #[test]
    fn the_declared_pre_tokenizer_splits_as_ours_or_is_refused() {
        assert_eq!(pre_tokenizer(Some(&Pattern::Gpt4), false), Ok("dbrx"));
        assert_eq!(pre_tokenizer(Some(&Pattern::Gpt2), false), Ok("gpt-2"));
        assert!(pre_tokenizer(Some(&Pattern::Custom(r"\w+".into())), false)
            .unwrap_err()
            .contains(r"`\w+`"));
    }
}

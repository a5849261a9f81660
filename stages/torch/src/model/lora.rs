//! LoRA: low-rank adapters on the linear layers of a frozen model.
//!
//! An adapted layer computes `y = x·Wᵀ + b + (α/r)·(drop(x)·Aᵀ)·Bᵀ` with `A` `[r, in]` and
//! `B` `[out, r]`, so the weight it acts with is `W + ΔW`, `ΔW = (α/r)·B·A`, a matrix of rank at
//! most `r`. `A` starts Kaiming-uniform and `B` at zero: the adapted model starts exactly equal
//! to the base model, and the first gradients reach `B` (through `A·x ≠ 0`) while `A`'s are
//! zero until `B` moves, which is what makes the start stable.
//!
//! The fused attention projection `qkv` holds three matrices stacked by rows; an adapter on
//! `q`, `k` or `v` covers only its block of rows (`offset`, `width`) and adds zeros elsewhere.
//! Adapters live in their own [`VarStore`], so the optimizer and checkpoints see only them,
//! and [`Lora::merge`] folds them into the base weights (`W[rows] += ΔW`), after which the
//! model is an ordinary one.
//!
//! Besides the adapters, the rows of the token embedding for a few given tokens — the chat
//! template's role markers — are trained (as PEFT's `trainable_token_indices` does). A model
//! pretrained on plain text has never seen its markers: their rows are still their random
//! initialisation, and with every embedding frozen the fine-tuned model cannot tell
//! `<|user|>` from `<|assistant|>` or learn to emit `<|end|>` (on `examples/assistant`, a LoRA
//! SFT's held-out loss per answer token fell from 1.88 to 1.42 with these rows trained;
//! BENCHMARKS.md). They start at their current
//! values, so the adapted model still starts equal to the base model; with a tied head the
//! same rows are the markers' output weights too.
//!
//! Names in `adapters.safetensors`: `blocks.{i}.attn.{q,k,v,o}.lora_{a,b}`,
//! `blocks.{i}.mlp.{fc,gate,up,proj}.lora_{a,b}`, and `tok_emb.rows` (`[k, C]`, the rows of
//! the token ids listed in `adapter_config.json`'s `trainable_token_ids`, in that order).

use pipelines::{LoraParams, LoraTarget};
use tch::nn::{self, Init, VarStore};
use tch::{Device, Tensor};

use super::embedding::TrainedRows;
use super::gpt::{Gpt, ModelError};
use super::linear::Linear;
use super::mlp::Mlp;

/// One adapter on (a block of rows of) a linear layer.
#[derive(Debug)]
pub struct Adapter {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[width, r]`.
    pub b: Tensor,
    /// The rows of the layer's output it adds to.
    pub offset: i64,
    pub width: i64,
    /// α / r.
    pub scale: f64,
    pub dropout: f64,
}

impl Adapter {
    /// The update of the layer's full output `[…, out]` for input `x`.
    pub fn forward(&self, x: &Tensor, out: i64, train: bool) -> Tensor {
        let kind = x.kind();
        let h = x.dropout(self.dropout, train);
        let d = h
            .linear(&self.a.to_kind(kind), None::<Tensor>)
            .linear(&self.b.to_kind(kind), None::<Tensor>)
            * self.scale;
        if self.offset == 0 && self.width == out {
            d
        } else {
            // Zeros before and after this adapter's rows of the fused output.
            d.constant_pad_nd([self.offset, out - self.offset - self.width])
        }
    }

    /// `ΔW = scale · B·A`, `[width, in]`.
    pub fn delta(&self) -> Tensor {
        self.b.matmul(&self.a) * self.scale
    }
}

/// The adapters of a model: their variables, and where each sits.
pub struct Lora {
    vs: VarStore,
    params: LoraParams,
    token_ids: Vec<i64>,
}

impl Lora {
    /// Attaches fresh adapters to the `targets` layers of `model`, makes the token embedding
    /// rows of `token_ids` trainable, and freezes the model's own weights. Draws `A` from
    /// libtorch's generator: seed it first for a reproducible init.
    pub fn attach(model: &mut Gpt, params: &LoraParams, token_ids: &[u32]) -> Lora {
        let token_ids: Vec<i64> = token_ids.iter().map(|&id| i64::from(id)).collect();
        let vs = VarStore::new(model.device());
        let root = vs.root();
        let cfg = model.config().clone();
        let head = cfg.head_dim() as i64;
        let q_width = cfg.n_head as i64 * head;
        let kv_width = cfg.n_kv_head as i64 * head;
        let new = |path: nn::Path, layer: &Linear, offset: i64, width: i64| {
            let in_dim = layer.weight.size()[1];
            let r = params.r as i64;
            // Kaiming-uniform with a = √5, as torch.nn.Linear (and PEFT) initialise A: a
            // uniform bound of 1/√in.
            let bound = 1.0 / (in_dim as f64).sqrt();
            let a = path.var(
                "lora_a",
                &[r, in_dim],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            );
            let b = path.var("lora_b", &[width, r], Init::Const(0.0));
            Adapter {
                a,
                b,
                offset,
                width,
                scale: params.alpha / params.r as f64,
                dropout: params.dropout,
            }
        };
        let mut targets = params.targets.clone();
        targets.sort();
        for (i, block) in model.blocks.iter_mut().enumerate() {
            let at = &root / "blocks" / i;
            for &t in &targets {
                let attn = &mut block.attn;
                match t {
                    LoraTarget::Q => {
                        let a = new(&at / "attn" / "q", &attn.qkv, 0, q_width);
                        attn.qkv.adapters.push(a);
                    }
                    LoraTarget::K => {
                        let a = new(&at / "attn" / "k", &attn.qkv, q_width, kv_width);
                        attn.qkv.adapters.push(a);
                    }
                    LoraTarget::V => {
                        let a = new(&at / "attn" / "v", &attn.qkv, q_width + kv_width, kv_width);
                        attn.qkv.adapters.push(a);
                    }
                    LoraTarget::O => {
                        let out = attn.proj.weight.size()[0];
                        let a = new(&at / "attn" / "o", &attn.proj, 0, out);
                        attn.proj.adapters.push(a);
                    }
                    LoraTarget::Mlp => {
                        for (name, layer) in block.mlp.layers_mut() {
                            let out = layer.weight.size()[0];
                            let a = new(&at / "mlp" / name, layer, 0, out);
                            layer.adapters.push(a);
                        }
                    }
                }
            }
        }
        if !token_ids.is_empty() {
            let emb = model.tok_emb_mut();
            let ids = Tensor::from_slice(&token_ids).to_device(emb.weight.device());
            let start = tch::no_grad(|| emb.weight.index_select(0, &ids));
            let values = (&root / "tok_emb").var_copy("rows", &start);
            emb.rows = Some(TrainedRows { ids, values });
        }
        model.var_store_mut().freeze();
        Lora {
            vs,
            params: params.clone(),
            token_ids,
        }
    }

    /// The token ids whose embedding rows are trained.
    pub fn token_ids(&self) -> &[i64] {
        &self.token_ids
    }

    /// The adapters' variables (what the optimizer trains and checkpoints hold).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    pub fn params(&self) -> &LoraParams {
        &self.params
    }

    /// Number of trained parameters: the adapters and the embedding rows.
    pub fn num_params(&self) -> usize {
        self.vs.variables().values().map(|t| t.numel()).sum()
    }

    /// Writes the adapters as safetensors.
    pub fn save(&self, path: &std::path::Path) -> Result<(), ModelError> {
        self.vs.save(path).map_err(|source| ModelError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    }

    /// Replaces the adapters' values with those of a file written by [`Lora::save`].
    pub fn load(&mut self, path: &std::path::Path) -> Result<(), ModelError> {
        self.vs.load(path).map_err(|source| ModelError::Torch {
            context: format!("loading adapters from {}", path.display()),
            source,
        })
    }

    /// Folds every adapter into its layer's weight (`W[rows] += (α/r)·B·A`) and the trained
    /// embedding rows into the table, and detaches them: the model then computes what it
    /// computed with the adapters, as an ordinary model.
    pub fn merge(self, model: &mut Gpt) {
        let _guard = tch::no_grad_guard();
        let emb = model.tok_emb_mut();
        if let Some(rows) = emb.rows.take() {
            let values = rows.values.to_kind(emb.weight.kind());
            let _ = emb.weight.index_copy_(0, &rows.ids, &values);
        }
        for block in model.blocks.iter_mut() {
            let mut layers: Vec<&mut Linear> = vec![&mut block.attn.qkv, &mut block.attn.proj];
            layers.extend(block.mlp.layers_mut().into_iter().map(|(_, l)| l));
            for layer in layers {
                for a in std::mem::take(&mut layer.adapters) {
                    let delta = a.delta().to_kind(layer.weight.kind());
                    let _ = layer.weight.narrow(0, a.offset, a.width).g_add_(&delta);
                }
            }
        }
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }
}

impl Mlp {
    /// The MLP's linear layers by name (`fc`, `gate`, `up`, `proj`).
    pub(crate) fn layers_mut(&mut self) -> Vec<(&'static str, &mut Linear)> {
        match self {
            Mlp::Gelu { fc, proj } => vec![("fc", fc), ("proj", proj)],
            Mlp::SwiGlu { gate, up, proj } => vec![("gate", gate), ("up", up), ("proj", proj)],
        }
    }
}

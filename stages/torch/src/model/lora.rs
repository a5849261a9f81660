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
//! `also_train` adds base weights trained in full (the embedding, biases, norms): the model's
//! own tensors enter the adapters' store (shared, not copied), so the optimizer moves them in
//! place and nothing is merged. On `examples/assistant` it is what LoRA lacks: full
//! fine-tuning there moves every tensor by about its own norm, the embedding included, and
//! adapters alone stop at 6 % exact against 96 % with `[embedding, bias, norm]` (BENCHMARKS.md).
//!
//! Names in `adapters.safetensors`: `blocks.{i}.attn.{q,k,v,o}.lora_{a,b}`,
//! `blocks.{i}.mlp.{fc,gate,up,proj}.lora_{a,b}`, `tok_emb.rows` (`[k, C]`, the rows of
//! the token ids listed in `adapter_config.json`'s `trainable_token_ids`, in that order), and
//! `full.<name>` for each weight `also_train` trains.

use pipelines::{LoraAlsoTrain, LoraParams, LoraTarget};
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
        // With the whole embedding trained (below), the markers' rows are trained with it.
        let token_ids = if params.also_train.contains(&LoraAlsoTrain::Embedding) {
            Vec::new()
        } else {
            token_ids
        };
        if !token_ids.is_empty() {
            let emb = model.tok_emb_mut();
            let ids = Tensor::from_slice(&token_ids).to_device(emb.weight.device());
            let start = tch::no_grad(|| emb.weight.index_select(0, &ids));
            let values = (&root / "tok_emb").var_copy("rows", &start);
            emb.rows = Some(TrainedRows { ids, values });
        }
        model.var_store_mut().freeze();
        // Base weights trained in full: the same tensors (shared, not copied) enter the
        // adapters' store, so the optimizer and checkpoints see them, and the model, which
        // computes with them and saves them, needs nothing merged.
        let mut base: Vec<(String, Tensor)> = model
            .var_store()
            .variables()
            .into_iter()
            .filter(|(name, _)| params.also_train.iter().any(|f| f.covers(name)))
            .collect();
        base.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in base {
            // Stored as `full.<its name in the model>`.
            let mut parts: Vec<&str> = name.split('.').collect();
            let last = parts.pop().expect("a variable has a name");
            let path = parts.iter().fold(&root / "full", |p, part| &p / *part);
            let _ = path.add(last, t.shallow_clone(), true);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use pipelines::{Mlp as MlpKind, ModelPreset, Positions};
    use tch::Kind;

    /// 2 layers, 4 heads, 32 wide, a 16-token window, vocabulary 50.
    fn small_config() -> ModelConfig {
        ModelConfig {
            n_layer: 2,
            n_head: 4,
            n_kv_head: 4,
            n_embd: 32,
            block_size: 16,
            mlp_hidden: 64,
            ..ModelConfig::preset(ModelPreset::Tiny, 50)
        }
    }

    fn rel_diff(got: &Tensor, want: &Tensor) -> f64 {
        let d = (got - want).abs().max().double_value(&[]);
        d / want.abs().max().double_value(&[]).max(1e-12)
    }

    /// The gradients the adapters and the trained rows get are the chain rule's: with
    /// `G = ∂L/∂W[rows]` the gradient of the (unfrozen, for the test) weight an adapter adds to,
    /// `∂L/∂B = s·G·Aᵀ` and `∂L/∂A = s·Bᵀ·G`; a trained row gets what the same row of the
    /// table gets once the rows are merged in (input and, tied, output use), and the frozen
    /// table's own copies of those rows get nothing.
    #[test]
    fn every_adapter_and_trained_row_gets_the_chain_rule_gradient() {
        for mlp in [MlpKind::Gelu, MlpKind::SwiGlu] {
            tch::manual_seed(5);
            let cfg = ModelConfig {
                n_kv_head: 2,
                positions: Positions::Rope,
                mlp,
                ..small_config()
            };
            let mut model = Gpt::new(&cfg, Device::Cpu).unwrap();
            let params = LoraParams {
                r: 4,
                alpha: 8.0,
                dropout: 0.0,
                targets: vec![
                    LoraTarget::Q,
                    LoraTarget::K,
                    LoraTarget::V,
                    LoraTarget::O,
                    LoraTarget::Mlp,
                ],
                also_train: Vec::new(),
            };
            let ids = [1_u32, 4, 7];
            let lora = Lora::attach(&mut model, &params, &ids);
            tch::no_grad(|| {
                for (n, mut t) in lora.var_store().variables() {
                    if n.ends_with("lora_b") || n == "tok_emb.rows" {
                        t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.2));
                    }
                }
            });
            let trained: usize = lora
                .var_store()
                .trainable_variables()
                .iter()
                .map(|t| t.numel())
                .sum();
            assert_eq!(trained, lora.num_params());
            model.var_store_mut().unfreeze();
            let x = Tensor::randint(50, [3, 16], (Kind::Int64, Device::Cpu));
            let y = Tensor::randint(50, [3, 16], (Kind::Int64, Device::Cpu));
            model.loss(&x, &y, true).backward();

            let mut checked = 0;
            for block in model.blocks.iter_mut() {
                let mut layers: Vec<&mut Linear> = vec![&mut block.attn.qkv, &mut block.attn.proj];
                layers.extend(block.mlp.layers_mut().into_iter().map(|(_, l)| l));
                for layer in layers {
                    let gw = layer.weight.grad();
                    for a in &layer.adapters {
                        let g = gw.narrow(0, a.offset, a.width);
                        let want_b = g.matmul(&a.a.tr()) * a.scale;
                        let want_a = a.b.tr().matmul(&g) * a.scale;
                        assert!(a.b.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
                        assert!(a.a.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
                        assert!(rel_diff(&a.b.grad(), &want_b) < 1e-4);
                        assert!(rel_diff(&a.a.grad(), &want_a) < 1e-4);
                        checked += 1;
                    }
                }
            }
            let per_block = 4 + if mlp == MlpKind::Gelu { 2 } else { 3 };
            assert_eq!(checked, 2 * per_block);

            let emb = model.tok_emb_mut();
            let id_t = Tensor::from_slice(&[1_i64, 4, 7]);
            let rows = emb.rows.as_ref().unwrap();
            let rows_grad = rows.values.grad().copy();
            assert!(rows_grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
            let frozen_copy = emb.weight.grad().index_select(0, &id_t);
            assert_eq!(frozen_copy.abs().sum(Kind::Float).double_value(&[]), 0.0);

            // Merged: the same function, so the table's rows get what the trained rows got.
            lora.merge(&mut model);
            for (_, t) in model.var_store().variables() {
                let mut g = t.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            model.loss(&x, &y, true).backward();
            let merged = model.tok_emb_mut().weight.grad().index_select(0, &id_t);
            assert!(
                rel_diff(&rows_grad, &merged) < 1e-4,
                "{}",
                rel_diff(&rows_grad, &merged)
            );
        }
    }

    /// `also_train` puts the base model's own tensors (shared, not copied) among the trained
    /// variables: they get gradients, the optimizer moves them, and the model computes and
    /// saves with the moved values; the markers' rows are then part of the trained table.
    #[test]
    fn also_train_trains_the_base_weights_themselves() {
        tch::manual_seed(6);
        let cfg = small_config();
        let mut model = Gpt::new(&cfg, Device::Cpu).unwrap();
        let params = LoraParams {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
            also_train: vec![
                LoraAlsoTrain::Embedding,
                LoraAlsoTrain::Bias,
                LoraAlsoTrain::Norm,
            ],
        };
        let lora = Lora::attach(&mut model, &params, &[1, 4, 7]);
        assert!(lora.token_ids().is_empty(), "the whole table is trained");
        let vars = lora.var_store().variables();
        let full: Vec<&String> = vars.keys().filter(|n| n.starts_with("full.")).collect();
        // tok_emb, pos_emb; per block the qkv, proj, fc and proj biases and norm1's and norm2's
        // weight and bias; norm_f's weight and bias.
        assert_eq!(full.len(), 2 + 2 * (4 + 4) + 2, "{full:?}");
        let adapters = 2 * 2 * 4 * (32 + 32);
        let emb = 50 * 32 + 16 * 32;
        let biases = 2 * (96 + 32 + 64 + 32);
        let norms = 2 * 4 * 32 + 2 * 32;
        assert_eq!(lora.num_params(), adapters + emb + biases + norms);
        let frozen = model.var_store().variables()["blocks.0.attn.qkv.weight"].requires_grad();
        assert!(!frozen);

        let mut opt = crate::train::adamw::AdamW::new(
            lora.var_store(),
            crate::train::adamw::AdamWConfig {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        let before: Vec<(String, Tensor)> = model
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect();
        let x = Tensor::randint(50, [2, 16], (Kind::Int64, Device::Cpu));
        let y = Tensor::randint(50, [2, 16], (Kind::Int64, Device::Cpu));
        opt.zero_grad();
        model.loss(&x, &y, true).backward();
        opt.step(1e-2);
        let after = model.var_store().variables();
        for (name, old) in &before {
            let moved = (&after[name] - old).abs().max().double_value(&[]) > 0.0;
            let trained = params.also_train.iter().any(|f| f.covers(name));
            assert_eq!(moved, trained, "{name}");
        }
        let logits = tch::no_grad(|| model.forward(&x, false));
        lora.merge(&mut model);
        let merged = tch::no_grad(|| model.forward(&x, false));
        assert!(rel_diff(&merged, &logits) < 1e-5);
    }
}

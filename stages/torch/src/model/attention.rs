//! Causal self-attention with grouped-query heads.
//!
//! `q = x·W_q`, `k = x·W_k`, `v = x·W_v` (one fused `qkv` matrix), split into `n_head` query
//! heads and `n_kv_head` key/value heads; each KV head serves `n_head / n_kv_head` query heads.
//! `y = softmax(q·kᵀ / √d + causal mask)·v` through `scaled_dot_product_attention`, which picks
//! the flash / memory-efficient kernels on CUDA and a fused kernel on the CPU; then `proj(y)`.

use tch::nn;
use tch::{Kind, Tensor};

use super::linear::Linear;
use super::rope::Rope;

#[derive(Debug)]
pub struct Attention {
    pub(crate) qkv: Linear,
    pub(crate) proj: Linear,
    n_head: i64,
    n_kv_head: i64,
    head_dim: i64,
    dropout: f64,
}

/// What the attention of one layer needs besides its input.
pub struct AttnInput<'a> {
    pub rope: Option<&'a Rope>,
    /// Positions of the new tokens: `(T,)` or `(B, T)`.
    pub positions: &'a Tensor,
    /// Which keys each query may see, `(B, 1, T, T)` bool, replacing the plain causal mask
    /// (packed sequences: causal within each example, nothing across them).
    pub mask: Option<&'a Tensor>,
    pub train: bool,
}

impl Attention {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vs: nn::Path,
        n_embd: usize,
        n_head: usize,
        n_kv_head: usize,
        bias: bool,
        dropout: f64,
        std: f64,
        proj_std: f64,
    ) -> Attention {
        let head_dim = n_embd / n_head;
        let qkv_out = (n_head + 2 * n_kv_head) * head_dim;
        Attention {
            qkv: Linear::new(&vs / "qkv", n_embd, qkv_out, bias, std),
            proj: Linear::new(&vs / "proj", n_embd, n_embd, bias, proj_std),
            n_head: n_head as i64,
            n_kv_head: n_kv_head as i64,
            head_dim: head_dim as i64,
            dropout,
        }
    }

    /// `x (B, T, C)` → q `(B, nh, T, hd)`, k and v `(B, nkv, T, hd)`, positions applied.
    fn project(&self, x: &Tensor, input: &AttnInput) -> (Tensor, Tensor, Tensor) {
        let (b, t) = (x.size()[0], x.size()[1]);
        let qkv = self.qkv.forward_t(x, input.train); // (B, T, (nh + 2·nkv)·hd)
        let q_width = self.n_head * self.head_dim;
        let kv_width = self.n_kv_head * self.head_dim;
        let parts = qkv.split_with_sizes([q_width, kv_width, kv_width], 2);
        let heads = |t_: &Tensor, h: i64| t_.view([b, t, h, self.head_dim]).transpose(1, 2);
        let mut q = heads(&parts[0], self.n_head);
        let mut k = heads(&parts[1], self.n_kv_head);
        let v = heads(&parts[2], self.n_kv_head);
        if let Some(rope) = input.rope {
            q = rope.apply(&q, input.positions);
            k = rope.apply(&k, input.positions);
        }
        (q, k, v)
    }

    /// `(B, nh, T, hd)` heads back to `(B, T, C)` and through the output projection.
    fn merge(&self, y: Tensor, train: bool) -> Tensor {
        let (b, t) = (y.size()[0], y.size()[2]);
        let y = y
            .transpose(1, 2)
            .contiguous()
            .view([b, t, self.n_head * self.head_dim]);
        self.proj.forward_t(&y, train).dropout(self.dropout, train)
    }

    fn gqa(&self) -> bool {
        self.n_kv_head != self.n_head
    }

    /// Full causal attention over `x (B, T, C)` (training, evaluation, uncached generation).
    pub fn forward(&self, x: &Tensor, input: &AttnInput) -> Tensor {
        let (q, k, v) = self.project(x, input);
        let p = if input.train { self.dropout } else { 0.0 };
        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            input.mask,
            p,
            input.mask.is_none(),
            None,
            self.gqa(),
        );
        self.merge(y, input.train)
    }

    /// The attention probabilities `(B, nh, T, T)` that `forward` computes inside its fused
    /// kernel: `softmax(q·kᵀ/√d + causal mask)` in fp32, each KV head repeated for the query
    /// heads it serves. Each row (a query) sums to 1 over the keys it may see. For the
    /// inspector: training and generation never materialise this `T×T` matrix.
    pub fn weights(&self, x: &Tensor, input: &AttnInput) -> Tensor {
        let (q, k, _) = self.project(x, input);
        let groups = self.n_head / self.n_kv_head;
        let k = if groups > 1 {
            k.repeat_interleave_self_int(groups, Some(1), None::<i64>)
        } else {
            k
        };
        let t = q.size()[2];
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = q
            .to_kind(Kind::Float)
            .matmul(&k.to_kind(Kind::Float).transpose(-2, -1))
            * scale; // (B, nh, T, T)
        let visible = match input.mask {
            Some(m) => m.shallow_clone(),
            None => Tensor::ones([t, t], (Kind::Bool, q.device())).tril(0),
        };
        scores
            .masked_fill(&visible.logical_not(), f64::NEG_INFINITY)
            .softmax(-1, Kind::Float)
    }

    /// Attention for `x (1, T, C)` continuing a sequence whose first `past` tokens are in
    /// `keys`/`values`; the new keys and values are written after them.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        input: &AttnInput,
        keys: &mut Tensor,
        values: &mut Tensor,
        past: i64,
    ) -> Tensor {
        let (q, k, v) = self.project(x, input);
        let t = q.size()[2];
        keys.narrow(2, past, t).copy_(&k); // a view: the copy lands in the cache
        values.narrow(2, past, t).copy_(&v);
        let total = past + t;
        let k_all = keys.narrow(2, 0, total);
        let v_all = values.narrow(2, 0, total);
        let y = if past == 0 {
            Tensor::scaled_dot_product_attention(
                &q,
                &k_all,
                &v_all,
                None::<Tensor>,
                0.0,
                true,
                None,
                self.gqa(),
            )
        } else if t == 1 {
            // One new token sees everything before it: no mask needed.
            Tensor::scaled_dot_product_attention(
                &q,
                &k_all,
                &v_all,
                None::<Tensor>,
                0.0,
                false,
                None,
                self.gqa(),
            )
        } else {
            // New token i (at position past + i) sees keys 0..=past + i.
            let device = q.device();
            let rows = Tensor::arange(t, (Kind::Int64, device)).unsqueeze(1) + past;
            let cols = Tensor::arange(total, (Kind::Int64, device)).unsqueeze(0);
            let mask = cols.le_tensor(&rows); // (T, total) bool
            Tensor::scaled_dot_product_attention(
                &q,
                &k_all,
                &v_all,
                Some(mask),
                0.0,
                false,
                None,
                self.gqa(),
            )
        };
        self.merge(y, false)
    }

    /// One new token for each of `B` sequences of different lengths `lens` (continuous
    /// batching): `x (B, 1, C)`; sequence `i` writes its key/value at `lens[i]` in its own
    /// buffers and attends to its first `lens[i] + 1` entries.
    pub fn decode_batch(
        &self,
        x: &Tensor,
        input: &AttnInput,
        keys: &mut [&mut Tensor],
        values: &mut [&mut Tensor],
        lens: &[i64],
    ) -> Tensor {
        let (q, k, v) = self.project(x, input); // q (B, nh, 1, hd), k/v (B, nkv, 1, hd)
        let longest = lens.iter().copied().max().unwrap_or(0) + 1;
        let mut k_rows = Vec::with_capacity(lens.len());
        let mut v_rows = Vec::with_capacity(lens.len());
        for (i, &len) in lens.iter().enumerate() {
            let i = i as i64;
            keys[i as usize].narrow(2, len, 1).copy_(&k.narrow(0, i, 1));
            values[i as usize]
                .narrow(2, len, 1)
                .copy_(&v.narrow(0, i, 1));
            k_rows.push(keys[i as usize].narrow(2, 0, longest));
            v_rows.push(values[i as usize].narrow(2, 0, longest));
        }
        let k_all = Tensor::cat(&k_rows, 0); // (B, nkv, L, hd)
        let v_all = Tensor::cat(&v_rows, 0);
        let device = q.device();
        let lens_t = Tensor::from_slice(lens)
            .to_device(device)
            .view([-1, 1, 1, 1]);
        let cols = Tensor::arange(longest, (Kind::Int64, device)).view([1, 1, 1, -1]);
        let mask = cols.le_tensor(&lens_t); // (B, 1, 1, L): key j valid iff j <= len
        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k_all,
            &v_all,
            Some(mask),
            0.0,
            false,
            None,
            self.gqa(),
        );
        self.merge(y, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The probabilities `weights` shows are the ones the fused kernel uses: multiplying them
    /// by the values gives `forward`'s output (with grouped-query heads too).
    #[test]
    fn weights_times_values_is_what_forward_computes() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let attn = Attention::new(vs.root(), 32, 4, 2, false, 0.0, 0.2, 0.2);
        let rope = Rope::new(8, 16, 10_000.0, Device::Cpu);
        let x = Tensor::randn([2, 7, 32], (Kind::Float, Device::Cpu));
        let positions = Tensor::arange(7, (Kind::Int64, Device::Cpu));
        let input = AttnInput {
            rope: Some(&rope),
            positions: &positions,
            mask: None,
            train: false,
        };
        let w = attn.weights(&x, &input); // (B, nh, T, T)
        let sums = w.sum_dim_intlist(-1, false, Kind::Float);
        assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-6, false));
        assert_eq!(
            w.triu(1).abs().max().double_value(&[]),
            0.0,
            "a query saw the future"
        );
        let (_, _, v) = attn.project(&x, &input);
        let v = v.repeat_interleave_self_int(2, Some(1), None::<i64>);
        let manual = attn.merge(w.matmul(&v), false);
        let fused = attn.forward(&x, &input);
        assert!(manual.allclose(&fused, 1e-4, 1e-5, false));
    }
}

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

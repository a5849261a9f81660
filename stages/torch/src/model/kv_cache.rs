//! Keys and values of the tokens a sequence has seen, per layer, so decoding a new token
//! attends to them without recomputing them.
//!
//! Each layer holds `(1, n_kv_head, block_size, head_dim)` buffers filled from the front;
//! `len` tokens are valid. Preallocating the whole context keeps every step a copy into place
//! rather than a growing concatenation.

use tch::{Device, Kind, Tensor};

/// The cache of one sequence across all layers.
#[derive(Debug)]
pub struct KvCache {
    pub(crate) keys: Vec<Tensor>,
    pub(crate) values: Vec<Tensor>,
    pub(crate) len: usize,
    capacity: usize,
}

impl KvCache {
    pub(crate) fn new(
        n_layer: usize,
        n_kv_head: usize,
        capacity: usize,
        head_dim: usize,
        kind: Kind,
        device: Device,
    ) -> KvCache {
        let shape = [1, n_kv_head as i64, capacity as i64, head_dim as i64];
        let zeros = || Tensor::zeros(shape, (kind, device));
        KvCache {
            keys: (0..n_layer).map(|_| zeros()).collect(),
            values: (0..n_layer).map(|_| zeros()).collect(),
            len: 0,
            capacity,
        }
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens that still fit (the model's context length minus `len`).
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    /// Forgets every token (the buffers are reused).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

//! Packing conversations into rows of `block_size` tokens.
//!
//! An example of `n` tokens gives `n − 1` (input, target) pairs: input token `i` predicts token
//! `i + 1`, and the pair counts in the loss only when token `i + 1` is the assistant's (its
//! target is [`IGNORE`] otherwise). Examples are laid one after another into a row while they
//! fit; the rest of a row is padding. Each token carries its example's number in the row
//! (`segments`) and its position inside the example (`positions`, from 0), from which the model
//! builds a block-diagonal causal mask ([`crate::model::Gpt::forward_packed`]): an example
//! attends only to itself and sees the positions it would see alone, so packing changes the
//! work per step, not the result. Padding is a segment of its own with ignored targets.
//!
//! Examples longer than a row are left out (counted, and reported): cutting one would train on
//! an answer without the question it answers.

use tch::{Device, Tensor};

/// Target of a pair the loss skips (PyTorch's `ignore_index` default).
pub const IGNORE: i64 = -100;

/// A tokenized conversation: its tokens and whether each is the assistant's to predict.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub targets: Vec<bool>,
}

impl Example {
    /// (input, target) pairs it contributes to a row.
    pub fn pairs(&self) -> usize {
        self.tokens.len().saturating_sub(1)
    }
}

/// Rows of packed examples, row-major `[rows, block]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub block: usize,
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub positions: Vec<i64>,
    pub segments: Vec<i64>,
    /// Examples packed, and examples left out for being longer than a row.
    pub examples: usize,
    pub too_long: usize,
}

impl Packed {
    pub fn rows(&self) -> usize {
        self.inputs.len() / self.block.max(1)
    }

    /// Targets that count in the loss.
    pub fn target_count(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE).count()
    }

    /// Targets that count in row `r`.
    pub fn row_targets(&self, r: usize) -> usize {
        self.targets[r * self.block..(r + 1) * self.block]
            .iter()
            .filter(|&&t| t != IGNORE)
            .count()
    }

    /// The given rows as `(inputs, targets, positions, segments)`, int64 `(B, T)` on `device`.
    pub fn batch(&self, rows: &[usize], device: Device) -> Batch {
        let t = self.block;
        let gather = |v: &Vec<i64>| {
            let mut out = Vec::with_capacity(rows.len() * t);
            for &r in rows {
                out.extend_from_slice(&v[r * t..(r + 1) * t]);
            }
            Tensor::from_slice(&out)
                .view([rows.len() as i64, t as i64])
                .to_device(device)
        };
        Batch {
            inputs: gather(&self.inputs),
            targets: gather(&self.targets),
            positions: gather(&self.positions),
            segments: gather(&self.segments),
        }
    }
}

/// One batch of packed rows.
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub positions: Tensor,
    pub segments: Tensor,
}

/// Packs `examples`, in order, into rows of `block` pairs. Examples without a target (nothing
/// for the assistant to say) carry no signal and are skipped.
pub fn pack(examples: &[Example], block: usize) -> Packed {
    let mut p = Packed {
        block,
        inputs: Vec::new(),
        targets: Vec::new(),
        positions: Vec::new(),
        segments: Vec::new(),
        examples: 0,
        too_long: 0,
    };
    // Fill of the current row, and the number of examples in it.
    let mut used = block;
    let mut segment = 0i64;
    let finish_row = |p: &mut Packed, used: usize, segment: i64| {
        // Padding: its own segment, positions from 0, nothing to predict.
        for i in 0..block - used {
            p.inputs.push(0);
            p.targets.push(IGNORE);
            p.positions.push(i as i64);
            p.segments.push(segment);
        }
    };
    for ex in examples {
        let n = ex.pairs();
        if n == 0 || !ex.targets.iter().skip(1).any(|&t| t) {
            continue;
        }
        if n > block {
            p.too_long += 1;
            continue;
        }
        if used + n > block {
            if used < block {
                finish_row(&mut p, used, segment);
            }
            used = 0;
            segment = 0;
        }
        for i in 0..n {
            p.inputs.push(i64::from(ex.tokens[i]));
            p.targets.push(if ex.targets[i + 1] {
                i64::from(ex.tokens[i + 1])
            } else {
                IGNORE
            });
            p.positions.push(i as i64);
            p.segments.push(segment);
        }
        used += n;
        segment += 1;
        p.examples += 1;
    }
    if used < block {
        finish_row(&mut p, used, segment);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(tokens: &[u32], answer_from: usize) -> Example {
        Example {
            tokens: tokens.to_vec(),
            targets: (0..tokens.len()).map(|i| i >= answer_from).collect(),
        }
    }

    #[test]
    fn examples_fill_rows_with_their_own_segments_and_positions() {
        let examples = [
            ex(&[1, 2, 3, 4], 2),   // 3 pairs, targets 3, 4
            ex(&[5, 6, 7], 2),      // 2 pairs, target 7
            ex(&[8, 9, 10, 11], 3), // 3 pairs: does not fit after 5, starts a row
            ex(&[1; 9], 1),         // 8 pairs > block 6: left out
            ex(&[4, 5], 0),         // the first token is never a target: pair 4→5 counts
        ];
        let p = pack(&examples, 6);
        assert_eq!((p.rows(), p.examples, p.too_long), (2, 4, 1));
        assert_eq!(p.inputs, [1, 2, 3, 5, 6, 0, 8, 9, 10, 4, 0, 0]);
        assert_eq!(
            p.targets,
            [IGNORE, 3, 4, IGNORE, 7, IGNORE, IGNORE, IGNORE, 11, 5, IGNORE, IGNORE]
        );
        assert_eq!(p.positions, [0, 1, 2, 0, 1, 0, 0, 1, 2, 0, 0, 1]);
        assert_eq!(p.segments, [0, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2, 2]);
        assert_eq!(p.target_count(), 5);
        assert_eq!((p.row_targets(0), p.row_targets(1)), (3, 2));
    }
}

//! ggml's tensor storage types that a GGUF export writes, byte for byte as ggml lays them out
//! (its `*_ref` quantizers, the ones meant for writing model files).
//!
//! Quantized types cut each row (ggml's innermost dimension, our `in` of an `[out, in]`
//! weight) into blocks of 32 weights, each block with one f16 scale `d`:
//!
//! - **Q8_0** (34 bytes): `d = max|x| / 127`, then 32 × int8 `q = round(x / d)` (half away from
//!   zero); `x ≈ q·d`. The quotient uses the f32 `d`; the file keeps `d` as f16.
//! - **Q4_0** (18 bytes): `d = m / −8` where `m` is the block's weight of largest magnitude
//!   with its sign, then 16 bytes: byte `j` holds weight `j` in its low nibble and weight
//!   `j + 16` in its high nibble, each `min(15, trunc(x / d + 8.5))`; `x ≈ (q − 8)·d`. The sign
//!   of `d` puts `m` itself at `q = 0` exactly (−8·d = m); the other end of the range reaches
//!   only +7·d.
//!
//! All values are little-endian.

use half::f16;

/// Weights per quantized block.
pub const BLOCK: usize = 32;

/// A ggml type id as GGUF stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q8_0 = 8,
}

impl GgmlType {
    /// Bytes that `n` values take (`n` a multiple of [`BLOCK`] for quantized types).
    pub fn bytes(self, n: usize) -> usize {
        match self {
            GgmlType::F32 => 4 * n,
            GgmlType::F16 => 2 * n,
            GgmlType::Q8_0 => n / BLOCK * 34,
            GgmlType::Q4_0 => n / BLOCK * 18,
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, GgmlType::Q8_0 | GgmlType::Q4_0)
    }
}

/// `values` (row-major, rows a multiple of [`BLOCK`] long for quantized types) as `ty`.
pub fn encode(values: &[f32], ty: GgmlType) -> Vec<u8> {
    let mut out = Vec::with_capacity(ty.bytes(values.len()));
    match ty {
        GgmlType::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => values
            .iter()
            .for_each(|&v| out.extend_from_slice(&f16::from_f32(v).to_le_bytes())),
        GgmlType::Q8_0 => values
            .chunks_exact(BLOCK)
            .for_each(|b| q8_0_block(b, &mut out)),
        GgmlType::Q4_0 => values
            .chunks_exact(BLOCK)
            .for_each(|b| q4_0_block(b, &mut out)),
    }
    out
}

fn q8_0_block(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|&v| (v * id).round() as i8 as u8));
}

fn q4_0_block(x: &[f32], out: &mut Vec<u8>) {
    // The weight of largest magnitude, sign kept (the first one on a tie, as ggml).
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    // `as i8` truncates toward zero, as C's (int8_t) cast; x·id + 8.5 lies in [0.5, 16.5].
    let nibble = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    let half = BLOCK / 2;
    out.extend((0..half).map(|j| nibble(x[j]) | (nibble(x[j + half]) << 4)));
}

/// The values `bytes` of type `ty` stand for (what ggml's `dequantize_row_*` computes).
pub fn decode(bytes: &[u8], ty: GgmlType) -> Vec<f32> {
    let scale = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    match ty {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        GgmlType::Q8_0 => bytes
            .chunks_exact(34)
            .flat_map(|b| {
                let d = scale(b);
                b[2..].iter().map(move |&q| f32::from(q as i8) * d)
            })
            .collect(),
        GgmlType::Q4_0 => bytes
            .chunks_exact(18)
            .flat_map(|b| {
                let d = scale(b);
                let low = b[2..].iter().map(move |&q| f32::from(q & 0x0F) - 8.0);
                let high = b[2..].iter().map(move |&q| f32::from(q >> 4) - 8.0);
                low.chain(high).map(move |q| q * d).collect::<Vec<_>>()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seed: u32) -> Vec<f32> {
        // A spread of magnitudes and signs, deterministic.
        (0..BLOCK as u32)
            .map(|i| (((i * 37 + seed * 11) % 29) as f32 - 14.0) / 9.0)
            .collect()
    }

    #[test]
    fn q8_0_blocks_are_34_bytes_within_half_a_step() {
        let x = [block(1), block(2)].concat();
        let bytes = encode(&x, GgmlType::Q8_0);
        assert_eq!(bytes.len(), 2 * 34);
        let back = decode(&bytes, GgmlType::Q8_0);
        for (b, chunk) in x.chunks(BLOCK).enumerate() {
            let d = chunk.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (j, &v) in chunk.iter().enumerate() {
                // Half a step, plus the f16 rounding of the scale (≤ 2⁻¹¹ relative) at |q| ≤ 127.
                let err = (back[b * BLOCK + j] - v).abs();
                assert!(err <= 0.5 * d + 127.0 * d / 2048.0, "{err} > step {d}");
            }
        }
        // The block's largest weight maps to ±127.
        assert_eq!(
            bytes[2..34].iter().map(|&q| (q as i8).unsigned_abs()).max(),
            Some(127)
        );
    }

    #[test]
    fn q4_0_packs_weight_j_low_and_j_plus_16_high() {
        let mut x = vec![0f32; BLOCK];
        x[0] = -2.0; // the largest magnitude: d = -2 / -8 = 0.25, stored at q = 0
        x[16] = 0.5; // 0.5 / 0.25 + 8.5 = 10.5 → 10
        x[1] = 1.0; // 4 + 8.5 = 12.5 → 12
        let bytes = encode(&x, GgmlType::Q4_0);
        assert_eq!(bytes.len(), 18);
        assert_eq!(f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), 0.25);
        assert_eq!(bytes[2], 10 << 4); // low nibble 0
        assert_eq!(bytes[3], 12 | (8 << 4));
        let back = decode(&bytes, GgmlType::Q4_0);
        assert_eq!((back[0], back[16], back[1], back[2]), (-2.0, 0.5, 1.0, 0.0));
    }

    #[test]
    fn f16_and_f32_round_trip() {
        let x = block(3);
        assert_eq!(decode(&encode(&x, GgmlType::F32), GgmlType::F32), x);
        let h = decode(&encode(&x, GgmlType::F16), GgmlType::F16);
        assert!(x
            .iter()
            .zip(&h)
            .all(|(a, b)| (a - b).abs() <= a.abs() / 1024.0));
    }
}

//! Weight-only round-to-nearest quantization, and the file format of a quantized model.
//!
//! int8, per output channel: for each row w of a weight `[out, in]`, s = max|w| / 127 and
//! q = round(w / s) ∈ [−127, 127]; w ≈ q·s. One f32 scale per row.
//!
//! int4, group-wise: each row is cut into groups of G inputs, each with its own
//! s = max|w_g| / 7 and q = round(w / s) ∈ [−7, 7], stored offset by 8 (0…15), two per byte
//! (the even input in the low nibble). A scale per group follows the weights more closely than
//! one per row, at the cost of in/G scales per row.
//!
//! A quantized artifact holds `quantized.safetensors` (per quantized weight `<name>.q` and
//! `<name>.scale`; every other tensor as it was) and `quantization.json` ([`QuantInfo`]) beside
//! the usual `config.json` and `tokenizer.json`. [`load_quantized`] dequantizes into an ordinary
//! fp32 [`Gpt`]: the file is smaller, the model in memory is not, and matrix products run in
//! fp32 (libtorch's int8 CPU kernels are not reachable through tch; docs/quantization.md).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{Gpt, ModelError};

pub const QUANT_INFO_FILE: &str = "quantization.json";
pub const QUANT_WEIGHTS_FILE: &str = "quantized.safetensors";

/// `quantization.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantInfo {
    /// `1`.
    pub format: u32,
    /// `int8` or `int4`.
    pub scheme: String,
    /// Inputs per scale (int4); none for int8 (one scale per row).
    pub group_size: Option<usize>,
    /// Names of the quantized weights, sorted.
    pub quantized: Vec<String>,
}

/// One weight, quantized.
pub struct Quantized {
    /// int8 `[out, in]`, or uint8 `[out, in / 2]` (int4, two per byte).
    pub q: Tensor,
    /// f32 `[out]` (int8) or `[out, in / G]` (int4).
    pub scale: Tensor,
}

/// int8 per output channel of a 2-D weight.
pub fn quantize_int8(w: &Tensor) -> Quantized {
    let w = w.to_kind(Kind::Float).to_device(Device::Cpu);
    // An all-zero row keeps scale 1 rather than dividing by zero; its q are 0 anyway.
    let absmax = w.abs().amax([1i64].as_slice(), true);
    let scale = (&absmax / 127.0).where_self(&absmax.gt(0.0), &absmax.ones_like());
    let q = (&w / &scale)
        .round()
        .clamp(-127.0, 127.0)
        .to_kind(Kind::Int8);
    Quantized {
        q,
        scale: scale.squeeze_dim(1),
    }
}

/// int4 with `group` inputs per scale; `in` must be a multiple of `group` (and even).
pub fn quantize_int4(w: &Tensor, group: usize) -> Quantized {
    let w = w.to_kind(Kind::Float).to_device(Device::Cpu);
    let (out, inp) = (w.size()[0], w.size()[1]);
    let g = group as i64;
    let grouped = w.view([out, inp / g, g]);
    let absmax = grouped.abs().amax([2i64].as_slice(), true);
    let scale = (&absmax / 7.0).where_self(&absmax.gt(0.0), &absmax.ones_like());
    let q = (&grouped / &scale).round().clamp(-7.0, 7.0) + 8.0;
    let q = q.to_kind(Kind::Uint8).view([out, inp / 2, 2]);
    let packed = q.select(2, 0) + q.select(2, 1) * 16;
    Quantized {
        q: packed.to_kind(Kind::Uint8),
        scale: scale.squeeze_dim(2),
    }
}

/// The fp32 weight `[out, in]` a quantized one stands for.
pub fn dequantize(q: &Quantized, scheme: &str) -> Result<Tensor, String> {
    match scheme {
        "int8" => Ok(q.q.to_kind(Kind::Float) * q.scale.unsqueeze(1)),
        "int4" => {
            let (out, half) = (q.q.size()[0], q.q.size()[1]);
            let bytes = q.q.to_kind(Kind::Int64);
            let low = bytes.remainder(16);
            let high = bytes.floor_divide_scalar(16);
            let values = Tensor::stack(&[low, high], 2).view([out, half * 2]) - 8;
            let groups = q.scale.size()[1];
            let g = half * 2 / groups;
            let w = values.to_kind(Kind::Float).view([out, groups, g]) * q.scale.unsqueeze(2);
            Ok(w.view([out, half * 2]))
        }
        other => Err(format!("unknown quantization scheme `{other}`")),
    }
}

/// Whether `dir` holds a quantized model.
pub fn is_quantized(dir: &Path) -> bool {
    dir.join(QUANT_INFO_FILE).is_file()
}

/// The files holding the weights of the model in `dir` (what a bundle copies): the quantized
/// pair, or `model.safetensors`.
pub fn weight_files(dir: &Path) -> &'static [&'static str] {
    if is_quantized(dir) {
        &[QUANT_WEIGHTS_FILE, QUANT_INFO_FILE]
    } else {
        &[super::WEIGHTS_FILE]
    }
}

/// Loads the weights of a quantized artifact into `model` (built from its `config.json`),
/// dequantizing each quantized weight.
pub fn load_quantized(model: &mut Gpt, dir: &Path) -> Result<(), ModelError> {
    let info_path = dir.join(QUANT_INFO_FILE);
    let io = |context: String| move |source: std::io::Error| ModelError::Io { context, source };
    let text = std::fs::read_to_string(&info_path)
        .map_err(io(format!("reading {}", info_path.display())))?;
    let info: QuantInfo = serde_json::from_str(&text).map_err(|source| ModelError::BadConfig {
        path: info_path.display().to_string(),
        source,
    })?;
    let file = dir.join(QUANT_WEIGHTS_FILE);
    let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&file)
        .map_err(|source| ModelError::Torch {
            context: format!("reading {}", file.display()),
            source,
        })?
        .into_iter()
        .collect();
    let bad = |what: String| ModelError::Quantized {
        path: file.display().to_string(),
        what,
    };
    let vars = model.var_store().variables();
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vars {
        let value = if info.quantized.contains(&name) {
            let get = |suffix: &str| {
                tensors
                    .get(&format!("{name}.{suffix}"))
                    .map(|t| t.shallow_clone())
                    .ok_or_else(|| bad(format!("`{name}.{suffix}` is missing")))
            };
            let q = Quantized {
                q: get("q")?,
                scale: get("scale")?,
            };
            dequantize(&q, &info.scheme).map_err(bad)?
        } else {
            tensors
                .get(&name)
                .map(|t| t.shallow_clone())
                .ok_or_else(|| bad(format!("`{name}` is missing")))?
        };
        if value.size() != var.size() {
            return Err(bad(format!(
                "`{name}` has shape {:?}, the model expects {:?}",
                value.size(),
                var.size()
            )));
        }
        var.copy_(&value.to_kind(var.kind()).to_device(var.device()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight() -> Tensor {
        // Deterministic without the global RNG, which tests running in parallel share: a
        // seeded `randn` here drew other numbers whenever another test drew in between.
        let w = (Tensor::arange(6 * 64, (Kind::Float, Device::Cpu)) * 0.7).sin() * 0.02;
        let w = w.reshape([6, 64]);
        // An outlier and an all-zero row, the cases scales must handle.
        let _ = w.get(1).get(3).fill_(0.5);
        let _ = w.get(4).zero_();
        w
    }

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    #[test]
    fn int8_rounds_each_weight_to_within_half_a_step() {
        let w = weight();
        let q = quantize_int8(&w);
        assert_eq!(q.q.kind(), Kind::Int8);
        assert_eq!(q.scale.size(), [6]);
        let back = dequantize(&q, "int8").unwrap();
        let step = q.scale.unsqueeze(1);
        // Half a step, plus float rounding of the product scale × level.
        let err = (&back - &w).abs() - &step * (0.5 + 1e-6) - 1e-7;
        assert!(
            max_abs(&err.clamp_min(0.0)) == 0.0,
            "an error exceeds half a step"
        );
        // The row's largest weight is exact (it defines the scale).
        assert!((back.get(1).get(3).double_value(&[]) - 0.5).abs() < 1e-6);
        assert_eq!(max_abs(&back.get(4)), 0.0);
    }

    #[test]
    fn int4_packs_two_per_byte_and_rounds_within_half_a_step() {
        let w = weight();
        let q = quantize_int4(&w, 32);
        assert_eq!(q.q.size(), [6, 32]);
        assert_eq!(q.q.kind(), Kind::Uint8);
        assert_eq!(q.scale.size(), [6, 2]);
        let back = dequantize(&q, "int4").unwrap();
        assert_eq!(back.size(), [6, 64]);
        let step = q.scale.repeat_interleave_self_int(32, 1, None::<i64>);
        // Half a step, plus float rounding of the product scale × level.
        let err = (&back - &w).abs() - &step * (0.5 + 1e-6) - 1e-7;
        assert!(
            max_abs(&err.clamp_min(0.0)) == 0.0,
            "an error exceeds half a step"
        );
        // The outlier only coarsens its own group: the row's other group keeps a fine scale.
        let groups = Vec::<f32>::try_from(q.scale.get(1)).unwrap();
        assert!(groups[0] > 10.0 * groups[1], "{groups:?}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let q = quantize_int8(&weight());
        assert!(dequantize(&q, "int3").is_err());
    }
}

//! The GGUF v3 container (ggml's `docs/gguf.md`), little-endian throughout:
//!
//! ```text
//! "GGUF"  u32 version = 3  u64 tensor_count  u64 metadata_kv_count
//! metadata: per key   string key, u32 value type, value
//! tensor infos: per tensor   string name, u32 n_dims, u64 dims[n_dims], u32 ggml type,
//!                            u64 offset (from the start of the data section)
//! zero padding to `general.alignment` (32)
//! tensor data, each tensor starting at a multiple of the alignment
//! ```
//!
//! A string is a u64 byte length and UTF-8 bytes, no terminator. An array value is a u32
//! element type, a u64 count and the elements. `dims` are ggml's `ne`, innermost first: the
//! reverse of the PyTorch shape (an `[out, in]` weight has dims `[in, out]`).

use std::io::Write;

use super::blocks::GgmlType;

/// Where tensor data starts and each tensor is placed: GGUF's default, so no key is needed
/// to say it (we write `general.alignment` anyway).
pub const ALIGNMENT: usize = 32;

/// A metadata value (the types a model file needs).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

// GGUF's value type ids.
const UINT32: u32 = 4;
const INT32: u32 = 5;
const FLOAT32: u32 = 6;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// One tensor: its name, its PyTorch-order shape, how it is stored and its bytes.
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

/// A GGUF file being assembled in memory.
#[derive(Default)]
pub struct Gguf {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn value(out: &mut Vec<u8>, v: &Value) {
    let u32_ = |out: &mut Vec<u8>, x: u32| out.extend_from_slice(&x.to_le_bytes());
    match v {
        Value::U32(x) => {
            u32_(out, UINT32);
            u32_(out, *x);
        }
        Value::I32(x) => {
            u32_(out, INT32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::F32(x) => {
            u32_(out, FLOAT32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Bool(x) => {
            u32_(out, BOOL);
            out.push(u8::from(*x));
        }
        Value::Str(s) => {
            u32_(out, STRING);
            string(out, s);
        }
        Value::Strs(items) => {
            u32_(out, ARRAY);
            u32_(out, STRING);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|s| string(out, s));
        }
        Value::I32s(items) => {
            u32_(out, ARRAY);
            u32_(out, INT32);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
    }
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
}

impl Gguf {
    pub fn set(&mut self, key: &str, v: Value) {
        self.metadata.push((key.to_string(), v));
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, v) in &self.metadata {
            string(&mut out, key);
            value(&mut out, v);
        }
        let mut offset = 0usize;
        for t in &self.tensors {
            string(&mut out, &t.name);
            out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for &d in t.shape.iter().rev() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            out.extend_from_slice(&(t.ty as u32).to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset = (offset + t.data.len()).next_multiple_of(ALIGNMENT);
        }
        pad(&mut out);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            pad(&mut out);
        }
        out
    }

    /// Writes the file to `w`.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_metadata_and_aligned_tensor_data() {
        let mut g = Gguf::default();
        g.set("general.architecture", Value::Str("llama".into()));
        g.tensors.push(Tensor {
            name: "a".into(),
            shape: vec![2, 3],
            ty: GgmlType::F32,
            data: vec![1; 24],
        });
        g.tensors.push(Tensor {
            name: "b".into(),
            shape: vec![1],
            ty: GgmlType::F32,
            data: vec![2; 4],
        });
        let bytes = g.to_bytes();
        assert_eq!(&bytes[..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 1);
        // key: length 20 + text, then type STRING, then length 5 + "llama"
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), 20);
        assert_eq!(&bytes[32..52], b"general.architecture");
        assert_eq!(
            u32::from_le_bytes(bytes[52..56].try_into().unwrap()),
            STRING
        );
        // Tensor `a`: dims reversed ([3, 2]); `b` starts at the next 32-byte boundary.
        let info = 56 + 8 + 5;
        assert_eq!(&bytes[info + 8..info + 9], b"a");
        let dims = info + 9 + 4;
        assert_eq!(
            u64::from_le_bytes(bytes[dims..dims + 8].try_into().unwrap()),
            3
        );
        assert_eq!(
            u64::from_le_bytes(bytes[dims + 8..dims + 16].try_into().unwrap()),
            2
        );
        let data_start = bytes.len() - 64;
        assert_eq!(data_start % ALIGNMENT, 0);
        assert_eq!(bytes[data_start], 1);
        assert_eq!(bytes[data_start + 32], 2);
    }
}

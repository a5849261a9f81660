//! A codec for unit tests of chat layouts, here and in the crates that fine-tune with them: no
//! tokenizer file, and ids that can be read at a glance.

use crate::chat::{ASSISTANT_MARKER, END_MARKER, SYSTEM_MARKER, USER_MARKER};
use crate::engine::Codec;

/// Bytes are ids 0..256; `<|system|>`, `<|user|>`, `<|assistant|>` and `<|end|>` are 256..260.
pub struct ByteCodec;

impl Codec for ByteCodec {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn decode(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter().filter(|&&i| i < 256).map(|&i| i as u8).collect()
    }
    fn token_to_id(&self, token: &str) -> Option<u32> {
        [SYSTEM_MARKER, USER_MARKER, ASSISTANT_MARKER, END_MARKER]
            .iter()
            .position(|m| *m == token)
            .map(|i| 256 + i as u32)
    }
    fn vocab_size(&self) -> usize {
        260
    }
}

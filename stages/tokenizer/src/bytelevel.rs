//! GPT-2's byte ↔ unicode mapping.
//!
//! Byte-level BPE works on bytes, but `tokenizer.json` stores tokens as JSON strings. GPT-2
//! (and Hugging Face's `ByteLevel` pre-tokenizer) map every byte to a printable character:
//! the 188 bytes that are already printable Latin-1 characters map to themselves, the other 68
//! (controls, space, soft hyphen…) to U+0100 onwards, in byte order. A token's string is its
//! bytes mapped one by one, so `" the"` is stored as `"Ġthe"`.

use std::sync::OnceLock;

fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

struct Tables {
    to_char: [char; 256],
    /// Indexed by code point (all mapped characters are below U+0144).
    to_byte: [Option<u8>; 0x144],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut to_char = ['\0'; 256];
        let mut to_byte = [None; 0x144];
        let mut next = 256u32;
        for b in 0..=255u8 {
            let c = if is_printable(b) {
                b as u32
            } else {
                next += 1;
                next - 1
            };
            let c = char::from_u32(c).expect("mapped code points are below U+0144");
            to_char[b as usize] = c;
            to_byte[c as usize] = Some(b);
        }
        Tables { to_char, to_byte }
    })
}

/// The character that stands for byte `b`.
pub fn byte_to_char(b: u8) -> char {
    tables().to_char[b as usize]
}

/// The byte a mapped character stands for, or `None` if `c` is not one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    tables().to_byte.get(c as usize).copied().flatten()
}

/// The token string of a byte sequence.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// The bytes of a token string, or `None` if it holds a character outside the mapping.
pub fn decode(token: &str) -> Option<Vec<u8>> {
    token.chars().map(char_to_byte).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_a_bijection_with_gpt2_landmarks() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0), 'Ā');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
        assert_eq!(decode(&encode(b"\xff hi\n")).unwrap(), b"\xff hi\n");
    }
}

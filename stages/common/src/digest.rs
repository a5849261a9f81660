//! The name of an artifact: the BLAKE3 digest of its directory listing ([`crate::tree`]), as
//! 64 lowercase hex characters. A type of its own so that a digest is checked once, where it
//! enters the program (parsed from a record, a lockfile or a user's argument), and cannot be
//! confused with a fingerprint, a run id or a path — all of which are strings too.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Length of a full digest in hex.
pub const DIGEST_HEX_LEN: usize = 64;

/// An artifact digest. Serialized as its hex string, so files that held a `String` read the
/// same.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

/// A string that is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a digest: expected {DIGEST_HEX_LEN} lowercase hex characters")]
pub struct BadDigest {
    pub value: String,
}

impl Digest {
    /// Parse a full digest (as `blake3`'s `to_hex` writes it).
    pub fn parse(value: &str) -> Result<Digest, BadDigest> {
        let ok = value.len() == DIGEST_HEX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Digest(value.to_string()))
        } else {
            Err(BadDigest {
                value: value.to_string(),
            })
        }
    }

    /// The digest of a BLAKE3 hasher's output.
    pub fn from_hash(hash: blake3::Hash) -> Digest {
        Digest(hash.to_hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, for messages and tables.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for Digest {
    type Error = BadDigest;
    fn try_from(value: String) -> Result<Digest, BadDigest> {
        Digest::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl std::str::FromStr for Digest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Digest, BadDigest> {
        Digest::parse(s)
    }
}

impl Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for Digest {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

// Maps keyed by digest can be queried with a `&str` (the ordering and hash are the string's).
impl Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_blake3_hex_and_refuses_anything_else() {
        let hex = blake3::hash(b"x").to_hex().to_string();
        let d = Digest::parse(&hex).expect("a blake3 digest");
        assert_eq!(d, hex);
        assert_eq!(d.short(), &hex[..12]);
        for bad in [
            "",
            "abc",
            &hex.to_uppercase(),
            &hex[1..],
            &format!("{hex}0"),
            "../etc",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn serializes_as_the_plain_string_and_checks_on_the_way_in() {
        let d = Digest::from_hash(blake3::hash(b"y"));
        let json = serde_json::to_string(&d).expect("serialize");
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("read back"), d);
        assert!(serde_json::from_str::<Digest>("\"not-a-digest\"").is_err());
    }
}

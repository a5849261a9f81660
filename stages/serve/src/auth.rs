//! Optional API keys. Keys come from a file (one per line, `#` comments) and/or an environment
//! variable (comma-separated); they are compared in constant time and never logged or echoed.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::ServeError;

/// Environment variable holding comma-separated API keys.
pub const API_KEYS_ENV: &str = "BINARYLM_API_KEYS";

/// The accepted keys; empty means no authentication.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<Vec<u8>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the keys themselves.
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

impl ApiKeys {
    /// No authentication.
    pub fn none() -> ApiKeys {
        ApiKeys::default()
    }

    pub fn from_list<I: IntoIterator<Item = S>, S: AsRef<str>>(keys: I) -> ApiKeys {
        ApiKeys {
            keys: keys
                .into_iter()
                .map(|k| k.as_ref().trim().as_bytes().to_vec())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Keys from `file` (if given) plus those in `env_value` (the variable's value, if set).
    /// A key file that exists but holds no key is an error: it would silently disable auth.
    pub fn load(file: Option<&Path>, env_value: Option<&str>) -> Result<ApiKeys, ServeError> {
        let mut keys = ApiKeys::none();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ServeError::KeyFile {
                path: path.to_path_buf(),
                source,
            })?;
            let from_file = ApiKeys::from_list(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#')),
            );
            if from_file.is_empty() {
                return Err(ServeError::EmptyKeyFile {
                    path: path.to_path_buf(),
                });
            }
            keys.keys.extend(from_file.keys);
        }
        if let Some(v) = env_value {
            keys.keys.extend(ApiKeys::from_list(v.split(',')).keys);
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether an `Authorization` header value is accepted.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let Some(value) = authorization else {
            return false;
        };
        let Some(token) = strip_bearer(value) else {
            return false;
        };
        // Check every key (no early exit) so timing reveals nothing about which one matched.
        let mut ok = subtle::Choice::from(0u8);
        for k in &self.keys {
            ok |= k.as_slice().ct_eq(token);
        }
        ok.into()
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let prefix = b"bearer ";
    if value.len() > prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(value[prefix.len()..].trim_ascii())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_set_allows_everything() {
        assert!(ApiKeys::none().allows(None));
    }

    #[test]
    fn bearer_keys_are_checked() {
        let keys = ApiKeys::from_list(["k1", " k2 "]);
        assert!(keys.allows(Some(b"Bearer k1")));
        assert!(keys.allows(Some(b"bearer k2")));
        assert!(!keys.allows(Some(b"Bearer k3")));
        assert!(!keys.allows(Some(b"Bearer k")));
        assert!(!keys.allows(Some(b"k1")));
        assert!(!keys.allows(Some(b"Basic k1")));
        assert!(!keys.allows(None));
    }

    #[test]
    fn debug_never_shows_keys() {
        let keys = ApiKeys::from_list(["secret-value"]);
        assert!(!format!("{keys:?}").contains("secret"));
    }

    #[test]
    fn key_file_with_comments_and_env() {
        let dir = std::env::temp_dir().join(format!("binarylm-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        std::fs::write(&path, "# team keys\nalpha\n\n beta \n").unwrap();
        let keys = ApiKeys::load(Some(&path), Some("gamma,,delta")).unwrap();
        assert_eq!(keys.len(), 4);
        assert!(keys.allows(Some(b"Bearer beta")));
        assert!(keys.allows(Some(b"Bearer delta")));
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(
            ApiKeys::load(Some(&path), None),
            Err(ServeError::EmptyKeyFile { .. })
        ));
        assert!(matches!(
            ApiKeys::load(Some(&dir.join("missing")), None),
            Err(ServeError::KeyFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

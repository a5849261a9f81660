//! Stage fingerprints: what a stage's cached result depends on, hashed stably.
//!
//! The hash is BLAKE3 over a canonical encoding in which every value carries a type tag and
//! every string or collection its length, so distinct inputs can never encode alike (no
//! separator games, `1` ≠ `"1"` ≠ `true`, object keys in sorted order). Never `std::hash`:
//! its output is not stable across Rust versions or platforms.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::Path;

/// Version of the encoding below. Bumping it changes every fingerprint, which invalidates every
/// cached stage result: do it only when the encoding itself changes.
pub const FINGERPRINT_FORMAT_VERSION: u32 = 1;

/// Everything a stage's fingerprint covers. Also stored with each result so that `plan` can
/// say what changed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FingerprintInput {
    /// The stage kind (`command`).
    pub kind: String,
    /// The kind's implementation version, bumped whenever its output would change.
    pub impl_version: u32,
    /// Resolved params ([`crate::StageParams::canonical`]).
    pub params: serde_json::Value,
    /// The manifest's seed.
    pub seed: u64,
    /// input stage name → output digest of that stage.
    pub inputs: BTreeMap<String, String>,
    /// dependency path (as written) → content digest.
    pub deps: BTreeMap<String, String>,
}

/// One difference between two fingerprint inputs, for `plan` ("param `train.lr` changed").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Change {
    /// The stage kind changed.
    Kind {
        /// Old kind.
        from: String,
        /// New kind.
        to: String,
    },
    /// The kind's implementation version changed.
    ImplVersion {
        /// Old version.
        from: u32,
        /// New version.
        to: u32,
    },
    /// Dotted path into params, e.g. `train.lr` or `deps[0]`.
    Param {
        /// Path of the changed (added or removed) value.
        path: String,
    },
    /// The manifest's seed changed.
    Seed {
        /// Old seed.
        from: u64,
        /// New seed.
        to: u64,
    },
    /// An input's digest changed, or the input was added or removed.
    Input {
        /// Name of the input stage.
        name: String,
    },
    /// A dependency's content changed, or it was added or removed.
    Dependency {
        /// The dependency path as written.
        path: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Kind { from, to } => write!(f, "kind changed (`{from}` → `{to}`)"),
            Change::ImplVersion { from, to } => {
                write!(f, "implementation version bumped ({from} → {to})")
            }
            Change::Param { path } => write!(f, "param `{path}` changed"),
            Change::Seed { from, to } => write!(f, "seed changed ({from} → {to})"),
            Change::Input { name } => write!(f, "input `{name}` changed"),
            Change::Dependency { path } => write!(f, "dependency `{path}` changed"),
        }
    }
}

/// Type tags of the canonical encoding.
mod tag {
    pub const NULL: u8 = b'n';
    pub const FALSE: u8 = b'f';
    pub const TRUE: u8 = b't';
    pub const UINT: u8 = b'u';
    pub const INT: u8 = b'i';
    pub const FLOAT: u8 = b'd';
    pub const STR: u8 = b's';
    pub const LIST: u8 = b'l';
    pub const MAP: u8 = b'm';
}

/// Writes values into a hasher in the canonical encoding.
struct Encoder {
    hasher: blake3::Hasher,
}

impl Encoder {
    fn new(domain: &str, version: u32) -> Self {
        let mut e = Encoder {
            hasher: blake3::Hasher::new(),
        };
        e.str(domain);
        e.hasher.update(&version.to_le_bytes());
        e
    }

    fn len(&mut self, n: usize) {
        self.hasher.update(&(n as u64).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.hasher.update(&[tag::STR]);
        self.len(s.len());
        self.hasher.update(s.as_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.hasher.update(&[tag::UINT]);
        self.hasher.update(&n.to_le_bytes());
    }

    fn value(&mut self, value: &serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::Null => {
                self.hasher.update(&[tag::NULL]);
            }
            Value::Bool(false) => {
                self.hasher.update(&[tag::FALSE]);
            }
            Value::Bool(true) => {
                self.hasher.update(&[tag::TRUE]);
            }
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.u64(u);
                } else if let Some(i) = n.as_i64() {
                    self.hasher.update(&[tag::INT]);
                    self.hasher.update(&i.to_le_bytes());
                } else {
                    // Integers never reach here, so `1` and `1.0` stay distinct.
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    self.hasher.update(&[tag::FLOAT]);
                    self.hasher.update(&f.to_bits().to_le_bytes());
                }
            }
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.hasher.update(&[tag::LIST]);
                self.len(items.len());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(map) => {
                // Sorted here, whatever order the map iterates in.
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                self.hasher.update(&[tag::MAP]);
                self.len(entries.len());
                for (k, v) in entries {
                    self.str(k);
                    self.value(v);
                }
            }
        }
    }

    fn string_map(&mut self, map: &BTreeMap<String, String>) {
        self.hasher.update(&[tag::MAP]);
        self.len(map.len());
        for (k, v) in map {
            self.str(k);
            self.str(v);
        }
    }

    /// A named field: the name is part of the encoding so reordering fields cannot collide.
    fn field(&mut self, name: &str) {
        self.str(name);
    }

    fn finish(self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// The stage's fingerprint: 64 lowercase hex characters.
pub fn fingerprint(input: &FingerprintInput) -> String {
    let mut e = Encoder::new("binarylm-stage-fingerprint", FINGERPRINT_FORMAT_VERSION);
    e.field("kind");
    e.str(&input.kind);
    e.field("impl_version");
    e.u64(u64::from(input.impl_version));
    e.field("params");
    e.value(&input.params);
    e.field("seed");
    e.u64(input.seed);
    e.field("inputs");
    e.string_map(&input.inputs);
    e.field("deps");
    e.string_map(&input.deps);
    e.finish()
}

/// What differs between two fingerprint inputs, in a stable order: kind, implementation version,
/// seed, params (by path), inputs, dependencies.
pub fn explain(old: &FingerprintInput, new: &FingerprintInput) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.kind != new.kind {
        changes.push(Change::Kind {
            from: old.kind.clone(),
            to: new.kind.clone(),
        });
    }
    if old.impl_version != new.impl_version {
        changes.push(Change::ImplVersion {
            from: old.impl_version,
            to: new.impl_version,
        });
    }
    if old.seed != new.seed {
        changes.push(Change::Seed {
            from: old.seed,
            to: new.seed,
        });
    }
    let mut paths = Vec::new();
    diff_values(&old.params, &new.params, String::new(), &mut paths);
    changes.extend(paths.into_iter().map(|path| Change::Param { path }));
    changes.extend(
        changed_keys(&old.inputs, &new.inputs)
            .into_iter()
            .map(|name| Change::Input { name }),
    );
    changes.extend(
        changed_keys(&old.deps, &new.deps)
            .into_iter()
            .map(|path| Change::Dependency { path }),
    );
    changes
}

fn changed_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

/// Appends `key` to a param path: `train.lr`, or `env["A.B"]` for keys that would be ambiguous.
fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", serde_json::Value::from(key)),
    }
}

fn diff_values(
    old: &serde_json::Value,
    new: &serde_json::Value,
    path: String,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = child_path(&path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_values(x, y, sub, out),
                    _ => out.push(sub),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let sub = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_values(x, y, sub, out),
                    _ => out.push(sub),
                }
            }
        }
        (a, b) if same_scalar(a, b) => {}
        _ => out.push(if path.is_empty() {
            "(all params)".to_string()
        } else {
            path
        }),
    }
}

/// Equality as the fingerprint sees it (float bits, integers distinct from floats).
fn same_scalar(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let encode = |v: &serde_json::Value| {
        let mut e = Encoder::new("compare", 0);
        e.value(v);
        e.finish()
    };
    encode(a) == encode(b)
}

/// Content digest (BLAKE3, 64 hex) of a file, or of a directory tree.
///
/// A file's digest is the BLAKE3 of its bytes (what `b3sum` prints). A directory's is the digest
/// `common::tree` gives stored artifacts (paths, contents and executable bits; timestamps and
/// empty directories never count), except that symbolic links are followed: a dependency that
/// links to a file elsewhere changes the fingerprint when that file changes.
///
/// # Errors
/// Any I/O error reading the tree, a link that points nowhere, or links that form a loop.
pub fn hash_path(path: &Path) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(common::tree::hash_file(path)?.1);
    }
    let files = common::tree::list(path, common::tree::Links::Follow).map_err(|e| match e {
        common::tree::TreeError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    Ok(common::tree::digest(&files).into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(params: serde_json::Value) -> FingerprintInput {
        FingerprintInput {
            kind: "command".to_string(),
            impl_version: 1,
            params,
            seed: 1337,
            inputs: BTreeMap::from([("corpus".to_string(), "ab".repeat(32))]),
            deps: BTreeMap::from([("score.py".to_string(), "cd".repeat(32))]),
        }
    }

    #[test]
    fn fingerprints_are_64_lowercase_hex_and_deterministic() {
        let fp = fingerprint(&input(json!({"run": "x"})));
        assert_eq!(fp.len(), 64);
        assert!(fp
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(fp, fingerprint(&input(json!({"run": "x"}))));
    }

    #[test]
    fn key_order_does_not_matter() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"a": 1, "b": {"x": 1, "y": 2}}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{"b": {"y": 2, "x": 1}, "a": 1}"#).expect("json");
        assert_eq!(fingerprint(&input(a)), fingerprint(&input(b)));
    }

    #[test]
    fn every_field_counts() {
        let base = input(json!({"run": "x"}));
        let fp = fingerprint(&base);
        let mut changed = vec![];
        let mut c = base.clone();
        c.kind = "data".into();
        changed.push(c);
        let mut c = base.clone();
        c.impl_version = 2;
        changed.push(c);
        let mut c = base.clone();
        c.seed = 1;
        changed.push(c);
        let mut c = base.clone();
        c.params = json!({"run": "y"});
        changed.push(c);
        let mut c = base.clone();
        c.inputs.insert("corpus".into(), "ef".repeat(32));
        changed.push(c);
        let mut c = base.clone();
        c.deps.clear();
        changed.push(c);
        for c in changed {
            assert_ne!(fingerprint(&c), fp, "{c:?}");
        }
    }

    #[test]
    fn naive_concatenation_collisions_are_impossible() {
        let pairs = [
            (json!(["a\nb", "c"]), json!(["a", "b\nc"])),
            (json!(["ab", ""]), json!(["a", "b"])),
            (json!(1), json!("1")),
            (json!(1), json!(true)),
            (json!(1), json!(1.0)),
            (json!(null), json!("")),
            (json!([]), json!({})),
            (json!({"a": "bc"}), json!({"ab": "c"})),
            (json!([["a"], "b"]), json!([["a", "b"]])),
        ];
        for (a, b) in pairs {
            assert_ne!(
                fingerprint(&input(a.clone())),
                fingerprint(&input(b.clone())),
                "{a} vs {b}"
            );
        }
        let mut x = input(json!({}));
        x.inputs = BTreeMap::from([("a".into(), "bc".into())]);
        let mut y = input(json!({}));
        y.inputs = BTreeMap::from([("ab".into(), "c".into())]);
        assert_ne!(fingerprint(&x), fingerprint(&y));
    }

    #[test]
    fn explain_names_each_difference() {
        let old = input(
            json!({"train": {"lr": 0.001, "steps": 10}, "deps": ["a.py"], "env": {"FOO": "1"}}),
        );
        let mut new = input(
            json!({"train": {"lr": 0.002, "steps": 10}, "deps": ["b.py"], "env": {"FOO": "2", "a.b": "x"}}),
        );
        new.seed = 7;
        new.impl_version = 2;
        new.inputs.insert("tok".into(), "00".repeat(32));
        new.deps.insert("score.py".into(), "ee".repeat(32));
        let shown: Vec<String> = explain(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            vec![
                "implementation version bumped (1 → 2)",
                "seed changed (1337 → 7)",
                "param `deps[0]` changed",
                "param `env.FOO` changed",
                "param `env[\"a.b\"]` changed",
                "param `train.lr` changed",
                "input `tok` changed",
                "dependency `score.py` changed",
            ]
        );
        assert!(explain(&old, &old).is_empty());
    }

    #[test]
    fn explain_sees_what_the_fingerprint_sees() {
        let a = input(json!({"n": 1}));
        let b = input(json!({"n": 1.0}));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(explain(&a, &b), vec![Change::Param { path: "n".into() }]);
    }

    #[test]
    fn changes_serialize_with_a_tag() {
        let json = serde_json::to_value(Change::Seed { from: 1, to: 2 }).expect("json");
        assert_eq!(json, json!({"what": "seed", "from": 1, "to": 2}));
    }

    #[test]
    fn hash_path_covers_content_and_names_not_times() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub"))?;
        std::fs::write(root.join("a.txt"), "hello")?;
        std::fs::write(root.join("sub/b.txt"), "world")?;
        let first = hash_path(root)?;
        assert_eq!(
            hash_path(&root.join("a.txt"))?,
            blake3::hash(b"hello").to_hex().to_string()
        );

        // Rewriting the same bytes (new mtime) changes nothing.
        std::fs::write(root.join("a.txt"), "hello")?;
        assert_eq!(hash_path(root)?, first);

        std::fs::write(root.join("sub/b.txt"), "world!")?;
        let edited = hash_path(root)?;
        assert_ne!(edited, first);

        std::fs::rename(root.join("sub/b.txt"), root.join("sub/c.txt"))?;
        assert_ne!(hash_path(root)?, edited);

        // An empty directory holds nothing a stage could read, as in stored artifacts.
        let renamed = hash_path(root)?;
        std::fs::create_dir(root.join("empty"))?;
        assert_eq!(hash_path(root)?, renamed);

        // A linked file counts by its content: editing the target changes the digest.
        #[cfg(unix)]
        {
            let outside = dir.path().with_extension("target.txt");
            std::fs::write(&outside, "v1")?;
            std::os::unix::fs::symlink(&outside, root.join("link.txt"))?;
            let linked = hash_path(root)?;
            std::fs::write(&outside, "v2")?;
            let edited_target = hash_path(root)?;
            std::fs::remove_file(&outside)?;
            assert_ne!(linked, edited_target);
        }
        Ok(())
    }

    #[test]
    fn hash_path_reports_missing_files() {
        assert!(hash_path(Path::new("/definitely/not/here")).is_err());
    }
}

//! Typed errors of the registry. Each says what went wrong, where (a path or an id) and, when
//! there is one, how to fix it, so the binary can print it as is.

use std::path::PathBuf;

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the registry index `{}` could not be opened: {source}\n\
         hint: the index only caches what the store holds; run `binarylm verify --rebuild` to \
         move it aside and rebuild it from the files",
        path.display()
    )]
    IndexOpen {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },

    #[error(
        "the registry index `{}` is already open in another process or elsewhere in this one\n\
         hint: hold the `WorkspaceLock` before opening the registry, and open it once per process \
         (clone the `Registry` to share it)",
        path.display()
    )]
    IndexBusy { path: PathBuf },

    #[error(
        "the registry index failed while {action}: {source}\n\
         hint: run `binarylm verify --rebuild` to rebuild the index from the store"
    )]
    Index {
        action: &'static str,
        #[source]
        source: sled::Error,
    },

    #[error(
        "the registry index holds an unreadable entry in `{tree}` for `{key}`: {source}\n\
         hint: run `binarylm verify --rebuild` to rebuild the index from the store"
    )]
    CorruptIndexEntry {
        tree: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{}` is not valid {what}: {source}\nhint: {hint}", path.display())]
    CorruptFile {
        path: PathBuf,
        what: &'static str,
        hint: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{}` is not a valid binarylm lockfile: {source}\nhint: {hint}", path.display())]
    CorruptLockfile {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: serde_yaml::Error,
    },

    #[error("could not encode the lockfile as YAML: {source}")]
    EncodeLockfile {
        #[source]
        source: serde_yaml::Error,
    },

    #[error("could not encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "`{value}` is not a valid {what}: expected lowercase hex, at least {min_len} characters"
    )]
    InvalidId {
        what: &'static str,
        value: String,
        min_len: usize,
    },

    #[error("`{value}` is not a valid run id (expected letters, digits, `-` and `_` only)")]
    InvalidRunId { value: String },

    #[error(
        "artifact output contains a symbolic link: `{}`\n\
         hint: stages must write real files into their output directory; copy the target instead \
         of linking to it",
        path.display()
    )]
    SymlinkInOutput { path: PathBuf },

    #[error(
        "artifact output contains `{}`, which is neither a file nor a directory\n\
         hint: only regular files and directories can be stored",
        path.display()
    )]
    UnsupportedFileType { path: PathBuf },

    #[error(
        "artifact output contains a file name that is not valid UTF-8: `{}`\n\
         hint: rename it; stored paths must be portable",
        path.display()
    )]
    NonUtf8Path { path: PathBuf },

    #[error(
        "the output directory `{}` does not exist\n\
         hint: a stage must create its output under `Staging::out_dir()` before it is stored",
        path.display()
    )]
    MissingOutput { path: PathBuf },

    #[error(
        "cannot commit stage `{stage}` (fingerprint {fingerprint}): its object {digest} is not in \
         the store at `{}`\nhint: store the artifact with `Registry::store` before committing it",
        path.display()
    )]
    ObjectMissing {
        stage: String,
        fingerprint: String,
        digest: String,
        path: PathBuf,
    },

    #[error("`{}` has format version {found}, but this binarylm understands version {expected}\nhint: {hint}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
        hint: &'static str,
    },

    #[error(
        "refused object {digest}: its content hashes to {found}, so it was altered or damaged \
         on the way\nhint: nothing was stored; the copy it came from is corrupt (push it again \
         from a workspace that holds a good copy, or run the stage)"
    )]
    DigestMismatch { digest: String, found: String },

    #[error("no run `{id}` in the registry\nhint: `binarylm status` lists the recorded runs")]
    RunNotFound { id: String },

    #[error("nothing matches `{query}`: {known}")]
    NotFound { query: String, known: String },

    #[error("`{query}` is ambiguous; it matches:\n{}\nhint: {hint}", candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
        hint: &'static str,
    },
}

impl RegistryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RegistryError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn index(action: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| RegistryError::Index { action, source }
    }
}

/// Attach an action and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| RegistryError::io(action, path, e))
    }
}

//! Typed errors of the remote cache. Each names the remote, the key or path, and how to fix it.

use std::path::PathBuf;

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "unknown remote `{name}`: {known}\nhint: name a configured remote, give a directory \
         path or `s3://bucket/prefix` directly, or add one (`binarylm remote add NAME URL`, or \
         `remotes:` in the manifest)"
    )]
    UnknownRemote { name: String, known: String },

    #[error(
        "no remote is configured\nhint: pass `--remote DIR` or `--remote s3://bucket/prefix`, \
         add one with `binarylm remote add NAME URL`, or list it under `remotes:` in the manifest"
    )]
    NoRemote,

    #[error(
        "several remotes are configured ({names}) and none is the default\nhint: pass \
         `--remote NAME`, or mark one `default: true` (`binarylm remote add NAME URL --default`)"
    )]
    NoDefault { names: String },

    #[error(
        "remote `{name}`: the directory `{}` does not exist or is not a directory\nhint: \
         create it first (`mkdir -p {}`) or fix the path; binarylm does not create a remote's \
         root, so that a typo cannot scatter a cache",
        path.display(), path.display()
    )]
    MissingDir { name: String, path: PathBuf },

    #[error("remote `{name}`: cannot use `{location}`: {source}")]
    Setup {
        name: String,
        location: String,
        // Boxed: object_store's error is large, and every `Result` here would carry its size.
        #[source]
        source: Box<object_store::Error>,
    },

    #[error(
        "remote `{name}` ({location}): could not {action} `{key}`: {source}\nhint: check that \
         the remote is reachable and writable; for S3, the bucket, `endpoint`, `region` and the \
         AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables"
    )]
    Store {
        name: String,
        location: String,
        action: &'static str,
        key: String,
        // Boxed: object_store's error is large, and every `Result` here would carry its size.
        #[source]
        source: Box<object_store::Error>,
    },

    #[error(
        "remote `{name}`: refused `{key}`: {detail}; the artifact it belongs to was not stored\nhint: the remote copy \
         is damaged or was altered; delete it from the remote and push it again from a \
         workspace that holds a good copy"
    )]
    Tampered {
        name: String,
        key: String,
        detail: String,
    },

    #[error(
        "stage `{stage}` (fingerprint {fingerprint}) is not on remote `{name}`\nhint: push it \
         from a workspace that ran it (`binarylm push {stage}`), or run the stage here"
    )]
    NotOnRemote {
        name: String,
        stage: String,
        fingerprint: String,
    },

    #[error(
        "stage `{stage}`: its artifact {digest} is not in this workspace\nhint: run the \
         pipeline (`binarylm run`) or pull it before pushing"
    )]
    NotLocal { stage: String, digest: String },

    #[error(
        "stage `{stage}`: the local file `{}` does not match the store's record of it; it was \
         not pushed\nhint: run `binarylm verify` to see what is damaged",
        path.display()
    )]
    LocalCorrupt { stage: String, path: PathBuf },

    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{}`: {detail}\nhint: fix or delete the file; `binarylm remote add` rewrites it", path.display())]
    Config { path: PathBuf, detail: String },

    #[error(transparent)]
    Registry(#[from] registry::RegistryError),

    #[error("a transfer task failed: {0}")]
    Task(String),
}

impl RemoteError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RemoteError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Bad input (exit 2) rather than a failed transfer: configuration and names.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            RemoteError::UnknownRemote { .. }
                | RemoteError::NoRemote
                | RemoteError::NoDefault { .. }
                | RemoteError::MissingDir { .. }
                | RemoteError::Config { .. }
        )
    }
}

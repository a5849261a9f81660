//! Where things live on a remote (see the crate docs for the layout).

use object_store::path::Path;

fn shard(id: &str) -> &str {
    id.get(..2).unwrap_or(id)
}

/// A file's content, by the BLAKE3 of its bytes.
pub(crate) fn blob(blake3: &str) -> Path {
    Path::from(format!("blobs/{}/{blake3}", shard(blake3)))
}

/// An object's metadata (its Merkle listing); present once every blob it lists is.
pub(crate) fn object(digest: &str) -> Path {
    Path::from(format!("objects/{}/{digest}.json", shard(digest)))
}

/// The folder of every stage result recorded for a fingerprint.
pub(crate) fn records_of(fingerprint: &str) -> Path {
    Path::from(format!("records/{}/{fingerprint}", shard(fingerprint)))
}

/// The stage result of `fingerprint` that produced `digest`.
pub(crate) fn record(fingerprint: &str, digest: &str) -> Path {
    Path::from(format!(
        "records/{}/{fingerprint}/{digest}.json",
        shard(fingerprint)
    ))
}

/// Whether `id` is lowercase hex of a plausible length (it becomes part of a local path).
pub(crate) fn is_hex_id(id: &str) -> bool {
    (2..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

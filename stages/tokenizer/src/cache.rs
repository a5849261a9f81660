//! A per-thread cache of piece encodings.
//!
//! Natural text repeats its pieces (" the", " and") constantly, so remembering each piece's ids
//! skips most BPE work. A cache per thread needs no locks in parallel batch encoding; it
//! belongs to one tokenizer at a time (switching tokenizers on a thread clears it) and is
//! cleared when full rather than evicting entry by entry, which keeps lookups cheap.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

/// Entries kept per thread before the cache is cleared.
const CAPACITY: usize = 1 << 18;
/// Longer pieces are rare and not worth keeping.
const MAX_PIECE: usize = 64;

struct WordCache {
    owner: u64,
    map: FxHashMap<Box<[u8]>, Box<[u32]>>,
}

thread_local! {
    static CACHE: RefCell<WordCache> = RefCell::new(WordCache {
        owner: 0,
        map: FxHashMap::default(),
    });
}

/// A fresh owner id for a tokenizer's cache entries (0 is never handed out).
pub(crate) fn new_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Appends the ids of `piece` to `out`, from the cache or from `encode` (then remembered).
pub(crate) fn cached(
    owner: u64,
    piece: &[u8],
    out: &mut Vec<u32>,
    encode: impl FnOnce(&mut Vec<u32>),
) {
    if piece.len() > MAX_PIECE {
        encode(out);
        return;
    }
    CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if cache.owner != owner {
            cache.owner = owner;
            cache.map.clear();
        }
        if let Some(ids) = cache.map.get(piece) {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        encode(out);
        if cache.map.len() >= CAPACITY {
            cache.map.clear();
        }
        cache.map.insert(piece.into(), out[start..].into());
    });
}

//! The train/validation split: by a hash of each document's content, so it depends neither on
//! input order nor on the other documents (except for `val_docs`, which takes the documents
//! with the smallest hashes).

use pipelines::{SplitName, ValSelection};

use super::doc::Doc;

/// Splits `docs` into (train, val). Pinned documents go where their source put them; the
/// others by `selection`. Each side comes out sorted by content hash, so the output files are
/// the same whatever order the inputs came in.
pub fn split(docs: Vec<Doc>, selection: ValSelection) -> (Vec<Doc>, Vec<Doc>) {
    let mut keyed: Vec<([u8; 32], Doc)> = docs.into_iter().map(|d| (d.content_hash(), d)).collect();
    keyed.sort_by_key(|(hash, _)| *hash);
    let mut train = Vec::new();
    let mut val = Vec::new();
    let mut free = Vec::new();
    for (hash, doc) in keyed {
        match doc.pinned {
            Some(SplitName::Train) => train.push(doc),
            Some(SplitName::Val) => val.push(doc),
            None => free.push((hash, doc)),
        }
    }
    match selection {
        ValSelection::Fraction(f) => {
            for (hash, doc) in free {
                if unit_interval(&hash) < f {
                    val.push(doc);
                } else {
                    train.push(doc);
                }
            }
        }
        ValSelection::Count(n) => {
            for (i, (_, doc)) in free.into_iter().enumerate() {
                if i < n {
                    val.push(doc);
                } else {
                    train.push(doc);
                }
            }
        }
    }
    let order = |docs: &mut Vec<Doc>| docs.sort_by_cached_key(Doc::content_hash);
    order(&mut train);
    order(&mut val);
    (train, val)
}

/// The first 8 bytes of a hash as a number in [0, 1).
fn unit_interval(hash: &[u8; 32]) -> f64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(n: usize) -> Vec<Doc> {
        (0..n)
            .map(|i| Doc::text(format!("document number {i}"), None))
            .collect()
    }

    #[test]
    fn the_split_ignores_input_order() {
        let docs = corpus(500);
        let mut shuffled = docs.clone();
        shuffled.reverse();
        shuffled.rotate_left(123);
        let a = split(docs, ValSelection::Fraction(0.1));
        let b = split(shuffled, ValSelection::Fraction(0.1));
        assert_eq!(a, b);
        // Roughly the requested share (500 documents: 50 ± a wide margin).
        assert!((25..=80).contains(&a.1.len()), "{}", a.1.len());
    }

    #[test]
    fn val_docs_takes_exactly_that_many_and_pins_win() {
        let mut docs = corpus(50);
        docs[0].pinned = Some(SplitName::Val);
        docs[1].pinned = Some(SplitName::Train);
        let (train, val) = split(docs.clone(), ValSelection::Count(5));
        assert_eq!((train.len(), val.len()), (44, 6));
        assert!(val.contains(&docs[0]));
        assert!(train.contains(&docs[1]));
        let (train, val) = split(docs, ValSelection::Fraction(0.0));
        assert_eq!((train.len(), val.len()), (49, 1));
    }
}

//! The train/validation split: by a hash of each document's content, so it depends neither on
//! input order nor on the other documents (except for `val_docs`, which takes the documents
//! with the smallest hashes). Documents arrive in content-hash order (see `spill`), so one
//! pass decides them all.

use pipelines::{SplitName, ValSelection};

pub struct Splitter {
    selection: ValSelection,
    /// Unpinned documents sent to validation so far (for `val_docs`).
    val_taken: usize,
}

impl Splitter {
    pub fn new(selection: ValSelection) -> Splitter {
        Splitter {
            selection,
            val_taken: 0,
        }
    }

    /// The split of the next document, given in increasing content-hash order. A pinned
    /// document goes where its source put it.
    pub fn assign(&mut self, hash: &[u8; 32], pinned: Option<SplitName>) -> SplitName {
        if let Some(p) = pinned {
            return p;
        }
        let val = match self.selection {
            ValSelection::Fraction(f) => unit_interval(hash) < f,
            ValSelection::Count(n) => self.val_taken < n,
        };
        if val {
            self.val_taken += 1;
            SplitName::Val
        } else {
            SplitName::Train
        }
    }
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
    use crate::kinds::data::doc::Doc;

    /// Splits in hash order, as the stage does; returns the texts of each side.
    fn split(docs: &[Doc], selection: ValSelection) -> (Vec<String>, Vec<String>) {
        let mut keyed: Vec<([u8; 32], &Doc)> = docs.iter().map(|d| (d.content_hash(), d)).collect();
        keyed.sort_by_key(|(h, _)| *h);
        let mut s = Splitter::new(selection);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (h, d) in keyed {
            match s.assign(&h, d.pinned) {
                SplitName::Train => train.push(d.fields[0].clone()),
                SplitName::Val => val.push(d.fields[0].clone()),
            }
        }
        (train, val)
    }

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
        let a = split(&docs, ValSelection::Fraction(0.1));
        let b = split(&shuffled, ValSelection::Fraction(0.1));
        assert_eq!(a, b);
        // Roughly the requested share (500 documents: 50 ± a wide margin).
        assert!((25..=80).contains(&a.1.len()), "{}", a.1.len());
    }

    #[test]
    fn val_docs_takes_exactly_that_many_and_pins_win() {
        let mut docs = corpus(50);
        docs[0].pinned = Some(SplitName::Val);
        docs[1].pinned = Some(SplitName::Train);
        let (train, val) = split(&docs, ValSelection::Count(5));
        assert_eq!((train.len(), val.len()), (44, 6));
        assert!(val.contains(&docs[0].fields[0]));
        assert!(train.contains(&docs[1].fields[0]));
        let (train, val) = split(&docs, ValSelection::Fraction(0.0));
        assert_eq!((train.len(), val.len()), (49, 1));
    }
}

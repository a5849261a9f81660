//! A document: one record of the corpus, as its fields in the output's column order.

use pipelines::SplitName;

#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// One field (`text`) or the structured fields (`prompt`, `response`, …).
    pub fields: Vec<String>,
    /// The split its source pinned it to, if any.
    pub pinned: Option<SplitName>,
}

impl Doc {
    pub fn text(text: String, pinned: Option<SplitName>) -> Doc {
        Doc {
            fields: vec![text],
            pinned,
        }
    }

    /// Characters (Unicode scalar values) over all fields.
    pub fn chars(&self) -> usize {
        self.fields.iter().map(|f| f.chars().count()).sum()
    }

    /// The fields as one text (separated by a blank line), for steps that judge the whole
    /// record: language, quality, near-duplicates.
    pub fn joined(&self) -> std::borrow::Cow<'_, str> {
        match self.fields.as_slice() {
            [one] => std::borrow::Cow::Borrowed(one.as_str()),
            many => std::borrow::Cow::Owned(many.join("\n\n")),
        }
    }

    /// BLAKE3 of the fields, each prefixed by its length, so that field boundaries count
    /// (`["ab", "c"]` and `["a", "bc"]` differ).
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&(self.fields.len() as u64).to_le_bytes());
        for f in &self.fields {
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let a = Doc {
            fields: vec!["ab".into(), "c".into()],
            pinned: None,
        };
        let b = Doc {
            fields: vec!["a".into(), "bc".into()],
            pinned: None,
        };
        assert_ne!(a.content_hash(), b.content_hash());
        assert_eq!(a.chars(), 3);
    }
}

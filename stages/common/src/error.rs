//! Showing an error with its causes.

/// The texts of `e`'s causes (its `source()` chain) that the text before them does not already
/// quote: many messages embed their cause (`reading x: permission denied`), and repeating it on
/// a `caused by` line says nothing new. Callers choose how to print them.
pub fn new_causes(e: &dyn std::error::Error) -> Vec<String> {
    let mut shown = e.to_string();
    let mut out = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !shown.contains(&text) {
            shown.push('\n');
            shown.push_str(&text);
            out.push(text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_quoted_above_are_left_out() {
        let e = E(
            "reading x: disk full",
            Some(Box::new(E("disk full", Some(Box::new(E("quota", None)))))),
        );
        assert_eq!(new_causes(&e), ["quota"]);
        assert!(new_causes(&E("alone", None)).is_empty());
    }
}

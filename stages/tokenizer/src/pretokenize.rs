//! Pre-tokenization: splitting text into pieces ("words") that BPE merges never cross.
//!
//! The two built-in patterns are GPT-2's and GPT-4's (cl100k) split regexes. Both end in
//! `\s+(?!\S)|\s+`, a look-ahead that the linear-time `regex` crate cannot run; only a
//! backtracking engine (oniguruma, Python's `regex`) can. We run an equivalent pattern without
//! the look-ahead on `regex` and fix its one difference by hand: where `\s+` swallowed a
//! whitespace run that is followed by a non-space, the look-ahead version stops one character
//! short, leaving that last space to start the next piece (`"  x"` → `" "`, `" x"`). A test
//! (`tests/split_parity.rs`) checks the scanner against Python's `regex` module running the
//! original patterns on thousands of random strings. A custom pattern runs on the `regex`
//! crate as written, so it cannot use look-around or backreferences.

use std::borrow::Cow;

use crate::error::TokenizerError;

/// GPT-2's split pattern (also Hugging Face's `ByteLevel` pre-tokenizer with `use_regex`).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GPT-4's (cl100k) split pattern: case-insensitive contractions, at most three digits per
/// piece, newlines kept apart from other whitespace.
pub const GPT4_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";

/// The GPT-2 pattern with the trailing look-ahead alternative dropped (see the module docs).
const GPT2_FAST: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// The GPT-4 pattern without the look-ahead; its possessive quantifiers become greedy ones,
/// which match the same here because what follows them can never match what they gave up.
const GPT4_FAST: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+";

/// Which split pattern a tokenizer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Gpt2,
    Gpt4,
    /// Any regex the `regex` crate accepts (no look-around); text between matches becomes
    /// pieces too.
    Custom(String),
}

impl Pattern {
    /// `gpt2`, `gpt4`, or a regex. A regex equal to a built-in pattern is that pattern.
    pub fn parse(s: &str) -> Pattern {
        match s {
            "gpt2" => Pattern::Gpt2,
            "gpt4" => Pattern::Gpt4,
            s if s == GPT2_PATTERN => Pattern::Gpt2,
            s if s == GPT4_PATTERN => Pattern::Gpt4,
            s => Pattern::Custom(s.to_string()),
        }
    }

    /// The regex source.
    pub fn regex(&self) -> &str {
        match self {
            Pattern::Gpt2 => GPT2_PATTERN,
            Pattern::Gpt4 => GPT4_PATTERN,
            Pattern::Custom(s) => s,
        }
    }
}

/// A compiled pre-tokenizer. `None` keeps each segment whole (the char tokenizer).
#[derive(Debug, Clone)]
pub enum PreTokenizer {
    None,
    /// A built-in pattern on the `regex` crate plus the whitespace fix-up.
    Fast {
        pattern: Pattern,
        regex: regex::Regex,
        /// GPT-4's pattern has a newline alternative before `\s+`; its matches end in `\r`/`\n`
        /// and must not be shortened.
        newline_alternative: bool,
    },
    Custom {
        pattern: Pattern,
        regex: regex::Regex,
    },
}

impl PreTokenizer {
    pub fn new(pattern: &Pattern) -> Result<PreTokenizer, TokenizerError> {
        let fast = |src: &str, newline_alternative| {
            let regex = regex::Regex::new(src).expect("built-in patterns compile");
            PreTokenizer::Fast {
                pattern: pattern.clone(),
                regex,
                newline_alternative,
            }
        };
        Ok(match pattern {
            Pattern::Gpt2 => fast(GPT2_FAST, false),
            Pattern::Gpt4 => fast(GPT4_FAST, true),
            Pattern::Custom(src) => {
                let regex = regex::Regex::new(src).map_err(|e| TokenizerError::Pattern {
                    pattern: src.clone(),
                    message: e.to_string(),
                })?;
                PreTokenizer::Custom {
                    pattern: pattern.clone(),
                    regex,
                }
            }
        })
    }

    /// The pattern, if any.
    pub fn pattern(&self) -> Option<&Pattern> {
        match self {
            PreTokenizer::None => None,
            PreTokenizer::Fast { pattern, .. } | PreTokenizer::Custom { pattern, .. } => {
                Some(pattern)
            }
        }
    }

    /// Calls `f` with each piece of `text`, in order; the pieces concatenate to `text`.
    pub fn split<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) {
        if text.is_empty() {
            return;
        }
        match self {
            PreTokenizer::None => f(text),
            PreTokenizer::Fast {
                regex,
                newline_alternative,
                ..
            } => split_fast(regex, *newline_alternative, text, f),
            PreTokenizer::Custom { regex, .. } => {
                let mut last = 0;
                let mut pos = 0;
                while pos < text.len() {
                    let Some(m) = regex.find_at(text, pos) else {
                        break;
                    };
                    if m.start() == m.end() {
                        // An empty match splits nothing; step over one character.
                        pos = m.end() + text[m.end()..].chars().next().map_or(1, char::len_utf8);
                        continue;
                    }
                    if m.start() > last {
                        f(&text[last..m.start()]);
                    }
                    f(m.as_str());
                    last = m.end();
                    pos = m.end();
                }
                if last < text.len() {
                    f(&text[last..]);
                }
            }
        }
    }

    /// The pieces of `text` as a vector (for tests and display).
    pub fn pieces<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        self.split(text, |p| out.push(p));
        out
    }
}

fn split_fast<'t>(
    regex: &regex::Regex,
    newline_alt: bool,
    text: &'t str,
    mut f: impl FnMut(&'t str),
) {
    let mut pos = 0;
    let mut last = 0;
    while pos < text.len() {
        let Some(m) = regex.find_at(text, pos) else {
            break;
        };
        let mut end = m.end();
        let piece = m.as_str();
        // Only an all-whitespace match can come from `\s+`; GPT-4's newline alternative (which
        // wins whenever the run holds a newline) ends in a newline and is left alone.
        let last_char = piece.chars().next_back();
        if last_char.is_some_and(char::is_whitespace)
            && !(newline_alt && matches!(last_char, Some('\r' | '\n')))
            && piece.chars().all(char::is_whitespace)
            && text[end..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
        {
            let last_len = last_char.map_or(0, char::len_utf8);
            if piece.len() > last_len {
                end -= last_len;
            }
        }
        if m.start() > last {
            f(&text[last..m.start()]);
        }
        f(&text[m.start()..end]);
        last = end;
        pos = end;
    }
    if last < text.len() {
        f(&text[last..]);
    }
}

/// Cow helper for callers that may need to prepend a space (`add_prefix_space`).
pub(crate) fn with_prefix_space(text: &str, add: bool) -> Cow<'_, str> {
    if add && !text.starts_with(' ') {
        Cow::Owned(format!(" {text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(p: Pattern, text: &str) -> Vec<String> {
        PreTokenizer::new(&p)
            .unwrap()
            .pieces(text)
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn gpt2_examples() {
        assert_eq!(
            fast(Pattern::Gpt2, "Hello world's  end\n\n  x 123"),
            ["Hello", " world", "'s", " ", " end", "\n\n ", " x", " 123"]
        );
        // A run before a word keeps all but its last character, which only an ASCII space
        // would join to the word.
        assert_eq!(
            fast(Pattern::Gpt2, "a \t\u{a0}b"),
            ["a", " \t", "\u{a0}", "b"]
        );
    }

    #[test]
    fn gpt4_examples() {
        assert_eq!(
            fast(Pattern::Gpt4, "I'LL pay 12345!!\n\n  ok  \n"),
            ["I", "'LL", " pay", " ", "123", "45", "!!\n\n", " ", " ok", "  \n"]
        );
    }

    #[test]
    fn custom_pieces_cover_the_text_and_bad_patterns_are_errors() {
        let p = PreTokenizer::new(&Pattern::Custom(r"\p{L}+".into())).unwrap();
        assert_eq!(p.pieces("ab, cd!"), ["ab", ", ", "cd", "!"]);
        assert_eq!(p.pieces("").len(), 0);
        let e = PreTokenizer::new(&Pattern::Custom(r"a(?!b)".into())).unwrap_err();
        assert!(e.to_string().contains("a(?!b)"), "{e}");
    }
}

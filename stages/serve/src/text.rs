//! Incremental detokenization with stop strings.
//!
//! Tokens arrive one at a time as raw bytes; a byte-level BPE token can end in the middle of a
//! UTF-8 character, and a stop string can span several tokens. [`TextStream`] keeps the bytes
//! that do not yet form characters, and holds back any tail of the text that could still become
//! a stop string, so a streaming client never receives text that is later cut off.

/// Text produced by one generated sequence.
#[derive(Debug)]
pub struct TextStream {
    stops: Vec<String>,
    /// Bytes of an unfinished UTF-8 character.
    partial: Vec<u8>,
    /// Everything decoded so far (never beyond a stop string).
    text: String,
    /// How much of `text` has been handed out.
    emitted: usize,
}

/// What one pushed token did to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// New text the client may see now.
    pub delta: String,
    /// A stop string was completed; the text ends before it.
    pub stopped: bool,
}

impl TextStream {
    pub fn new(stops: Vec<String>) -> TextStream {
        TextStream {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            partial: Vec::new(),
            text: String::new(),
            emitted: 0,
        }
    }

    /// Appends one token's bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Pushed {
        self.partial.extend_from_slice(bytes);
        let searched_from = self.text.len();
        decode_complete(&mut self.partial, &mut self.text);
        if let Some(at) = self.find_stop(searched_from) {
            self.text.truncate(at);
            self.partial.clear();
            let delta = self.text[self.emitted.min(at)..].to_string();
            self.emitted = self.text.len();
            return Pushed {
                delta,
                stopped: true,
            };
        }
        let safe = self.safe_len();
        let delta = if safe > self.emitted {
            self.text[self.emitted..safe].to_string()
        } else {
            String::new()
        };
        self.emitted = self.emitted.max(safe);
        Pushed {
            delta,
            stopped: false,
        }
    }

    /// The end of the sequence: whatever was held back goes out (an unfinished character as
    /// U+FFFD).
    pub fn finish(&mut self) -> String {
        if !self.partial.is_empty() {
            self.text.push_str(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
        let delta = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        delta
    }

    /// The full text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Earliest stop string in `text` that ends after `searched_from` (earlier ones were found
    /// already).
    fn find_stop(&self, searched_from: usize) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|stop| {
                let start = floor_char_boundary(
                    &self.text,
                    searched_from.saturating_sub(stop.len().saturating_sub(1)),
                );
                self.text[start..].find(stop.as_str()).map(|i| start + i)
            })
            .min()
    }

    /// Length of the prefix of `text` that can no longer turn into a stop string.
    fn safe_len(&self) -> usize {
        let mut hold = 0;
        for stop in &self.stops {
            // Longest proper prefix of `stop` that is a suffix of `text`.
            let max = (stop.len() - 1).min(self.text.len());
            for k in (1..=max).rev() {
                if stop.is_char_boundary(k) && self.text.ends_with(&stop[..k]) {
                    hold = hold.max(k);
                    break;
                }
            }
        }
        floor_char_boundary(&self.text, self.text.len() - hold)
    }
}

/// Moves every complete character from `bytes` into `out`; invalid sequences become U+FFFD,
/// an incomplete character at the end stays in `bytes`.
fn decode_complete(bytes: &mut Vec<u8>, out: &mut String) {
    let mut rest: &[u8] = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // Safe: from_utf8 just said these bytes are valid.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &bad[n..];
                    }
                    None => {
                        rest = bad;
                        break;
                    }
                }
            }
        }
    }
    *bytes = rest.to_vec();
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], tokens: &[&[u8]]) -> (Vec<String>, bool, String) {
        let mut t = TextStream::new(stops.iter().map(|s| s.to_string()).collect());
        let mut deltas = Vec::new();
        for tok in tokens {
            let p = t.push(tok);
            deltas.push(p.delta);
            if p.stopped {
                return (deltas, true, t.text().to_string());
            }
        }
        deltas.push(t.finish());
        (deltas, false, t.text().to_string())
    }

    #[test]
    fn plain_text_streams_as_it_comes() {
        let (d, stopped, text) = run(&[], &[b"he", b"llo"]);
        assert_eq!(d, ["he", "llo", ""]);
        assert!(!stopped);
        assert_eq!(text, "hello");
    }

    #[test]
    fn split_utf8_character_is_held_until_complete() {
        let e = "é".as_bytes();
        let (d, _, text) = run(&[], &[b"caf", &e[..1], &e[1..]]);
        assert_eq!(d, ["caf", "", "é", ""]);
        assert_eq!(text, "café");
    }

    #[test]
    fn unfinished_character_at_the_end_is_replaced() {
        let (d, _, _) = run(&[], &[b"a", &"é".as_bytes()[..1]]);
        assert_eq!(d, ["a", "", "\u{FFFD}"]);
    }

    #[test]
    fn stop_string_across_tokens_is_never_streamed() {
        let (d, stopped, text) = run(&["\nUser:"], &[b"hi", b"\nUs", b"er:", b"more"]);
        assert!(stopped);
        assert_eq!(text, "hi");
        assert_eq!(d.concat(), "hi");
        assert_eq!(d, ["hi", "", ""]);
    }

    #[test]
    fn held_back_prefix_is_released_when_it_diverges() {
        let (d, stopped, text) = run(&["STOP"], &[b"ab ST", b"ART"]);
        assert!(!stopped);
        assert_eq!(d, ["ab ", "START", ""]);
        assert_eq!(text, "ab START");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (_, stopped, text) = run(&["c", "b"], &[b"abc"]);
        assert!(stopped);
        assert_eq!(text, "a");
    }

    #[test]
    fn stop_inside_one_token() {
        let (d, stopped, text) = run(&["."], &[b"one. two"]);
        assert!(stopped);
        assert_eq!(text, "one");
        assert_eq!(d, ["one"]);
    }
}

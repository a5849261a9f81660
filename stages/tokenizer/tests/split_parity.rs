//! The fast GPT-2/GPT-4 split (the `regex` crate plus a whitespace fix-up, see
//! `src/pretokenize.rs`) against the original look-ahead patterns run by Python's `regex`
//! module (a backtracking engine, installed in the project venv with tiktoken), on thousands
//! of random strings over the characters where the patterns disagree most easily.
//!
//! A missing interpreter or module fails the test with a message: scripts/setup.sh installs it.

use std::path::Path;
use std::process::{Command, Stdio};

use common::rng::{SplitMix64, GOLDEN_GAMMA};
use tokenizer::pretokenize::{GPT2_PATTERN, GPT4_PATTERN};
use tokenizer::{Pattern, PreTokenizer};

const ALPHABET: &[char] = &[
    'a', 'Z', 'é', '中', '1', '٣', ' ', ' ', ' ', '\t', '\n', '\r', '\u{a0}', '\u{3000}', '\u{85}',
    '\'', 's', 'l', 'L', 'v', 'e', 'D', '!', '.', '😀', '_', '-', '\u{300}',
];

/// Deterministic random strings (SplitMix64), lengths 0..40.
fn strings(n: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(GOLDEN_GAMMA);
    let mut next = move || rng.next_u64();
    (0..n)
        .map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn python_pieces(pattern: &str, texts: &[String]) -> Vec<Vec<String>> {
    let venv = std::env::var_os("BINARYLM_VENV").unwrap_or_else(|| {
        panic!("BINARYLM_VENV is not set: run `source scripts/env.sh` (after scripts/setup.sh)")
    });
    let python = Path::new(&venv).join("bin/python");
    let script = r#"
import json, sys
import regex
pattern = regex.compile(sys.argv[1])
texts = json.load(sys.stdin)
print(json.dumps([pattern.findall(t) for t in texts]))
"#;
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(pattern)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run scripts/setup.sh", python.display()));
    serde_json::to_writer(child.stdin.take().unwrap(), texts).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed (is the `regex` module installed? scripts/setup.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(pattern: Pattern, source: &str) {
    let texts = strings(4000);
    let expected = python_pieces(source, &texts);
    let pre = PreTokenizer::new(&pattern).unwrap();
    for (text, want) in texts.iter().zip(expected) {
        let got: Vec<String> = pre.pieces(text).into_iter().map(String::from).collect();
        assert_eq!(got, want, "{pattern:?} on {text:?}");
    }
}

#[test]
fn fast_gpt2_split_equals_the_lookahead_pattern() {
    check(Pattern::Gpt2, GPT2_PATTERN);
}

#[test]
fn fast_gpt4_split_equals_the_lookahead_pattern() {
    check(Pattern::Gpt4, GPT4_PATTERN);
}

//! Parity with the Python `tokenizers` package, both ways: a tokenizer.json we write gives the
//! same ids in Hugging Face, and one Hugging Face trains gives the same ids in binarylm.
//!
//! The package is installed into the project venv by `scripts/setup.sh` (pinned in
//! scripts/requirements-test.txt). A missing interpreter or package fails the test with a
//! message saying so: skipping would let a broken setup pass silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokenizer::{train_bpe, train_char, BpeConfig, CharConfig, Pattern, Tokenizer};

/// Text with the cases that break tokenizers: code, Unicode, whitespace runs, numbers,
/// contractions in both cases, CRLF, emoji with modifiers, a literal special token.
const PROBE: &str = "fn main() {\n    let x = 3.14159; // pi\n\treturn x*2;\n}\r\n\
    I'm sure they'LL say it's 1234567890 or 12,345.67 — naïve café Straße 東京 Привет мир \
    👩‍💻🏽 ok\n\n\n   trailing   \t\n  x  y\u{a0}z\u{3000}w 'tis DON'T won't <|eos|> end  ";

fn corpus() -> Vec<String> {
    let base = [
        "The quick brown fox jumps over the lazy dog. It's 2024; the dog isn't amused.",
        "def add(a, b):\n    return a + b  # adds\n\nprint(add(40, 2))",
        "Naïve café owners in Zürich sold 1,234 crêpes — über lecker! 東京 is big.",
        "   indented\t\ttabs\n\n\nand   runs    of     spaces 😀😀 emoji 👍🏽",
    ];
    // Made-up words from a fixed generator give the trainer many distinct pairs to merge.
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sho", "te", "vy", "ä", "ß", "ни", "東",
    ];
    let mut state = 7u64;
    let mut word = || {
        let mut w = String::new();
        for _ in 0..2 + state % 3 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.push_str(syllables[(state >> 33) as usize % syllables.len()]);
        }
        w
    };
    (0..400)
        .map(|i| {
            let words: Vec<String> = (0..12).map(|_| word()).collect();
            format!("{} {} {}", base[i % 4], words.join(" "), i)
        })
        .collect()
}

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").unwrap_or_else(|| {
        panic!("BINARYLM_VENV is not set: run `source scripts/env.sh` (after scripts/setup.sh)")
    });
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "{} does not exist: run scripts/setup.sh to create the project venv",
        python.display()
    );
    python
}

/// Runs a Python snippet with `args`; returns stdout. Fails the test, with stderr, on error.
fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed (is `tokenizers` installed? scripts/setup.sh installs \
         scripts/requirements-test.txt):\n{stderr}"
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Hugging Face's ids for `text` under the tokenizer.json at `path`.
fn hf_ids(path: &Path, text: &str) -> Vec<u32> {
    let script = r#"
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
print(json.dumps(t.encode(sys.argv[2]).ids))
"#;
    serde_json::from_str(&run_python(script, &[path.to_str().unwrap(), text])).unwrap()
}

fn probes() -> Vec<String> {
    let mut p: Vec<String> = PROBE.split_inclusive('\n').map(String::from).collect();
    p.push(PROBE.to_string());
    p.push(corpus()[3].clone());
    p
}

#[test]
fn our_files_encode_identically_in_hugging_face() {
    let dir = tempfile::tempdir().unwrap();
    let docs = corpus();
    for (name, pattern) in [
        ("gpt2", Pattern::Gpt2),
        ("gpt4", Pattern::Gpt4),
        (
            "custom",
            Pattern::Custom(r"\p{L}+|\p{N}|[^\p{L}\p{N}]+".into()),
        ),
    ] {
        let config = BpeConfig {
            vocab_size: 700,
            pattern,
            min_frequency: 2,
            special_tokens: tokenizer::DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let t = train_bpe(&docs, &config, &|| false, &|_, _| {}).unwrap();
        assert!(
            t.model().merges().len() > 300,
            "{name}: training learned merges"
        );
        let path = dir.path().join(format!("{name}.json"));
        t.save(&path).unwrap();
        for text in probes() {
            assert_eq!(
                t.encode(&text),
                hf_ids(&path, &text),
                "pattern {name}, text {text:?}"
            );
        }
    }
    let c = train_char(
        &docs,
        &CharConfig {
            min_frequency: 1,
            special_tokens: vec!["<|eos|>".into()],
        },
    )
    .unwrap();
    let path = dir.path().join("char.json");
    c.save(&path).unwrap();
    for text in probes() {
        assert_eq!(c.encode(&text), hf_ids(&path, &text), "char, text {text:?}");
    }
}

#[test]
fn hugging_face_trained_files_encode_identically_in_binarylm() {
    let dir = tempfile::tempdir().unwrap();
    let corpus_path = dir.path().join("corpus.txt");
    std::fs::write(&corpus_path, corpus().join("\n")).unwrap();
    let script = r#"
import json, sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, Regex
corpus, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
t = Tokenizer(models.BPE())
if kind == "gpt2":
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
elif kind == "prefix":
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
else:
    pat = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pat), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
t.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2,
    special_tokens=["<|eos|>", "<|pad|>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
t.train([corpus], trainer)
t.save(out)
"#;
    for kind in ["gpt2", "gpt4", "prefix"] {
        let path = dir.path().join(format!("hf-{kind}.json"));
        run_python(
            script,
            &[corpus_path.to_str().unwrap(), path.to_str().unwrap(), kind],
        );
        let ours = Tokenizer::from_file(&path).unwrap();
        assert!(
            ours.model().merges().len() > 300,
            "{kind}: Hugging Face learned merges"
        );
        for text in probes() {
            let ids = ours.encode(&text);
            if text == PROBE {
                assert!(ids.len() < text.len(), "{kind}: merges apply to the probe");
            }
            assert_eq!(ids, hf_ids(&path, &text), "{kind}: text {text:?}");
            assert_eq!(ours.decode_lossy(&ids).trim_start(), text.trim_start());
        }
    }
}

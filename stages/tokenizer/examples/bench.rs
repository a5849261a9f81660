//! The Rust side of `bench/tokenizer.sh` (see BENCHMARKS.md). Reads a JSON Lines corpus (one
//! `{"text": …}` per line) and prints one JSON object of timings on stdout.
//!
//! ```text
//! bench train  <corpus.jsonl> <vocab_size> <out tokenizer.json>   (threads: RAYON_NUM_THREADS)
//! bench encode <corpus.jsonl> <tokenizer.json> <threads> <repeats> [<ids out>]
//! ```
//!
//! With `<ids out>`, the ids of the last repeat are written there (per document a u32 count,
//! then its ids, all little-endian), so the driver can check that every encoder produced the
//! same ids before it compares their speeds.

use std::time::Instant;

use tokenizer::{train_bpe, BpeConfig, Pattern, Tokenizer};

fn read_corpus(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["text"].as_str().expect("a text field").to_string()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench train <corpus> <vocab> <out> | bench encode <corpus> <tokenizer.json> <threads> <repeats> [<ids out>]";
    match args.get(1).map(String::as_str) {
        Some("train") if args.len() == 5 => {
            let docs = read_corpus(&args[2]);
            let vocab_size: usize = args[3].parse().expect(usage);
            let config = BpeConfig {
                vocab_size,
                pattern: Pattern::Gpt4,
                min_frequency: 2,
                special_tokens: vec!["<|eos|>".to_string()],
            };
            let start = Instant::now();
            let t = train_bpe(&docs, &config, &|| false, &|_, _| {}).expect("training");
            let seconds = start.elapsed().as_secs_f64();
            t.save(&args[4]).expect("saving");
            println!(
                "{}",
                serde_json::json!({ "seconds": seconds, "vocab_size": t.vocab_size(), "merges": t.model().merges().len() })
            );
        }
        Some("encode") if args.len() == 6 || args.len() == 7 => {
            let docs = read_corpus(&args[2]);
            let threads: usize = args[4].parse().expect(usage);
            let repeats: usize = args[5].parse().expect(usage);
            let bytes: usize = docs.iter().map(String::len).sum();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut times = Vec::new();
            let mut tokens = 0;
            let mut last = Vec::new();
            for _ in 0..repeats {
                // A fresh tokenizer per repeat: its word cache starts empty, as in a real run.
                let t = Tokenizer::from_file(&args[3]).expect("loading");
                let start = Instant::now();
                let ids = if threads == 1 {
                    docs.iter()
                        .map(|d| t.encode_ordinary(d))
                        .collect::<Vec<_>>()
                } else {
                    pool.install(|| t.encode_ordinary_batch(&docs))
                };
                times.push(start.elapsed().as_secs_f64());
                tokens = ids.iter().map(Vec::len).sum::<usize>();
                last = ids;
            }
            if let Some(out) = args.get(6) {
                let mut bytes = Vec::with_capacity(4 * (tokens + last.len()));
                for doc in &last {
                    bytes.extend_from_slice(&(doc.len() as u32).to_le_bytes());
                    for id in doc {
                        bytes.extend_from_slice(&id.to_le_bytes());
                    }
                }
                std::fs::write(out, bytes).unwrap_or_else(|e| panic!("{out}: {e}"));
            }
            let seconds = median(times);
            println!(
                "{}",
                serde_json::json!({ "seconds": seconds, "bytes": bytes, "tokens": tokens, "mb_per_s": bytes as f64 / 1e6 / seconds })
            );
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

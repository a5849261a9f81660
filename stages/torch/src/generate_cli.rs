//! `binarylm-torch generate <model dir> …`: load a `pretrain` artifact (weights, config,
//! tokenizer.json) and stream sampled text to stdout. `binarylm generate` resolves a stage name
//! or digest to the directory and runs this.
//!
//! Flags are parsed by hand: this executable is normally driven by `binarylm`, whose clap
//! definitions (`binarylm generate --help`) are what users read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokenizer::{Tokenizer, EOS_NAMES};

use crate::device::{self, DeviceChoice};
use crate::generate::{generate, Sampling};
use crate::model::load_artifact;
use crate::pretrain::TOKENIZER_FILE;

/// What `generate` was asked to do.
#[derive(Debug, Clone)]
pub struct GenerateArgs {
    pub model_dir: PathBuf,
    pub prompt: String,
    pub sampling: Sampling,
    /// Independent samples, each from seed, seed+1, …
    pub samples: usize,
    pub device: DeviceChoice,
    /// Print one JSON object per sample instead of streaming text.
    pub json: bool,
    /// No timing line on stderr.
    pub quiet: bool,
}

/// Why a generate invocation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Usage(String),
    #[error("{dir}: {message}")]
    Artifact { dir: String, message: String },
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Device(#[from] device::DeviceError),
    #[error("writing to stdout: {0}")]
    Stdout(#[from] std::io::Error),
}

impl GenerateError {
    /// Exit code: 2 for bad input, 1 when the work itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            GenerateError::Usage(_) | GenerateError::Artifact { .. } => 2,
            _ => 1,
        }
    }
}

fn value<'a>(
    flag: &str,
    it: &mut impl Iterator<Item = &'a String>,
) -> Result<&'a str, GenerateError> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| GenerateError::Usage(format!("{flag} needs a value")))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, GenerateError> {
    text.parse()
        .map_err(|_| GenerateError::Usage(format!("{flag}: `{text}` is not a valid number")))
}

/// Parses `<model dir> --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K]
/// [--top-p P] [--seed S] [--samples N] [--no-kv-cache] [--device D] [--json] [--quiet]`.
pub fn parse_args(args: &[String]) -> Result<GenerateArgs, GenerateError> {
    let mut dir = None;
    let mut prompt = None;
    let mut s = Sampling::default();
    let mut samples = 1usize;
    let mut device = DeviceChoice::Auto;
    let mut json = false;
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--prompt" => prompt = Some(value(a, &mut it)?.to_string()),
            "--max-tokens" => s.max_tokens = number(a, value(a, &mut it)?)?,
            "--temperature" => s.temperature = number(a, value(a, &mut it)?)?,
            "--top-k" => s.top_k = number(a, value(a, &mut it)?)?,
            "--top-p" => s.top_p = number(a, value(a, &mut it)?)?,
            "--seed" => s.seed = number(a, value(a, &mut it)?)?,
            "--samples" => samples = number(a, value(a, &mut it)?)?,
            "--no-kv-cache" => s.kv_cache = false,
            "--json" => json = true,
            "--quiet" => quiet = true,
            "--device" => {
                let v = value(a, &mut it)?;
                device = v
                    .parse()
                    .map_err(|e| GenerateError::Usage(format!("--device: {e}")))?;
            }
            flag if flag.starts_with("--") => {
                return Err(GenerateError::Usage(format!("unknown flag {flag}")))
            }
            path if dir.is_none() => dir = Some(PathBuf::from(path)),
            extra => {
                return Err(GenerateError::Usage(format!(
                    "unexpected argument `{extra}`"
                )))
            }
        }
    }
    if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
        return Err(GenerateError::Usage(format!(
            "--temperature must be ≥ 0 (0 is greedy), got {}",
            s.temperature
        )));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(GenerateError::Usage(format!(
            "--top-p must be in (0, 1], got {}",
            s.top_p
        )));
    }
    if samples == 0 {
        return Err(GenerateError::Usage("--samples must be at least 1".into()));
    }
    Ok(GenerateArgs {
        model_dir: dir.ok_or_else(|| GenerateError::Usage("give the model directory".into()))?,
        prompt: prompt.unwrap_or_default(),
        sampling: s,
        samples,
        device,
        json,
        quiet,
    })
}

/// Writes the longest valid UTF-8 prefix of `pending` and keeps the rest: a byte-level BPE
/// token can end in the middle of a character whose remaining bytes come with the next token.
fn flush_utf8(pending: &mut Vec<u8>, out: &mut impl Write) -> std::io::Result<()> {
    let valid = match std::str::from_utf8(pending) {
        Ok(s) => s.len(),
        Err(e) if e.error_len().is_some() => {
            // Bytes that can never become valid: show them replaced rather than stall.
            let text = String::from_utf8_lossy(pending).into_owned();
            out.write_all(text.as_bytes())?;
            pending.clear();
            return out.flush();
        }
        Err(e) => e.valid_up_to(),
    };
    out.write_all(&pending[..valid])?;
    pending.drain(..valid);
    out.flush()
}

fn load_tokenizer(dir: &Path) -> Result<Tokenizer, GenerateError> {
    let path = dir.join(TOKENIZER_FILE);
    Tokenizer::from_file(&path).map_err(|e| GenerateError::Artifact {
        dir: dir.display().to_string(),
        message: format!(
            "cannot read {TOKENIZER_FILE}: {e} (is this the artifact of a `pretrain` stage?)"
        ),
    })
}

/// Runs `generate`: streams each sample's text to stdout (or prints JSON), and a short timing
/// line to stderr.
pub fn run(args: &GenerateArgs) -> Result<(), GenerateError> {
    if !args.model_dir.is_dir() {
        return Err(GenerateError::Artifact {
            dir: args.model_dir.display().to_string(),
            message: "not a directory".into(),
        });
    }
    let tok = load_tokenizer(&args.model_dir)?;
    let dev = device::resolve(args.device)?;
    let (model, cfg) = load_artifact(&args.model_dir, dev)?;
    // The token the tokenizer stage put between documents (`<|eos|>`, or a pretrained
    // tokenizer's own spelling such as `<|endoftext|>`).
    let eos = tok.find_special(EOS_NAMES).map(|(_, id)| i64::from(id));
    // An empty prompt starts from <|eos|>: the model saw it before every document's start.
    let prompt: Vec<i64> =
        if args.prompt.is_empty() {
            match eos {
                Some(id) => vec![id],
                None => return Err(GenerateError::Usage(
                    "give a --prompt (this tokenizer has no end-of-document token to start from)"
                        .into(),
                )),
            }
        } else {
            tok.encode(&args.prompt)
                .into_iter()
                .map(i64::from)
                .collect()
        };
    let mut stdout = std::io::stdout().lock();
    for i in 0..args.samples {
        let mut s = args.sampling.clone();
        s.seed = s.seed.wrapping_add(i as u64);
        s.stop = eos;
        if !args.json {
            if args.samples > 1 {
                writeln!(stdout, "--- sample {} (seed {}) ---", i + 1, s.seed)?;
            }
            stdout.write_all(args.prompt.as_bytes())?;
            stdout.flush()?;
        }
        let start = Instant::now();
        let mut pending = Vec::new();
        let mut write_err = None;
        let tokens = generate(&model, &prompt, &s, |id| {
            if args.json || write_err.is_some() {
                return;
            }
            if let Some(bytes) = u32::try_from(id).ok().and_then(|id| tok.token_bytes(id)) {
                pending.extend_from_slice(bytes);
            }
            if let Err(e) = flush_utf8(&mut pending, &mut stdout) {
                write_err = Some(e);
            }
        })?;
        if let Some(e) = write_err {
            return Err(e.into());
        }
        let secs = start.elapsed().as_secs_f64();
        let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
        let stopped = tokens.len() < s.max_tokens;
        if args.json {
            let doc = serde_json::json!({
                "prompt": args.prompt,
                "text": tok.decode_lossy(&ids),
                "tokens": ids,
                "prompt_tokens": prompt.len(),
                "seed": s.seed,
                "finish_reason": if stopped { "stop" } else { "length" },
                "seconds": secs,
            });
            writeln!(stdout, "{doc}")?;
        } else {
            if !pending.is_empty() {
                stdout.write_all(String::from_utf8_lossy(&pending).as_bytes())?;
            }
            writeln!(stdout)?;
            stdout.flush()?;
            if args.quiet {
                continue;
            }
            eprintln!(
                "[{} tokens in {:.2} s, {:.1} tokens/s, {}{}, {} on {}]",
                tokens.len(),
                secs,
                tokens.len() as f64 / secs.max(1e-9),
                if s.kv_cache { "KV cache" } else { "no cache" },
                if stopped {
                    ", stopped at end of document"
                } else {
                    ""
                },
                format_args!("{:.1}M-parameter model", cfg.param_count() as f64 / 1e6),
                device::describe(dev),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_flags_and_rejects_bad_values() {
        let a = parse_args(&args(&[
            "dir",
            "--prompt",
            "Once",
            "--max-tokens",
            "7",
            "--temperature",
            "0",
            "--top-k",
            "5",
            "--top-p",
            "0.9",
            "--seed",
            "3",
            "--no-kv-cache",
        ]))
        .unwrap();
        assert_eq!(a.model_dir, PathBuf::from("dir"));
        assert_eq!(a.prompt, "Once");
        assert_eq!(a.sampling.max_tokens, 7);
        assert_eq!(a.sampling.temperature, 0.0);
        assert_eq!(a.sampling.top_k, 5);
        assert!(!a.sampling.kv_cache);
        for bad in [
            &["dir", "--top-p", "0"][..],
            &["dir", "--temperature", "-1"],
            &["dir", "--max-tokens", "many"],
            &["dir", "--frobnicate"],
            &["--prompt", "x"],
            &["dir", "--samples", "0"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn utf8_is_held_back_until_the_character_is_complete() {
        let mut out = Vec::new();
        let mut pending = "é".as_bytes()[..1].to_vec();
        flush_utf8(&mut pending, &mut out).unwrap();
        assert!(out.is_empty());
        pending.push("é".as_bytes()[1]);
        pending.extend_from_slice(b"x");
        flush_utf8(&mut pending, &mut out).unwrap();
        assert_eq!(out, "éx".as_bytes());
        assert!(pending.is_empty());
    }
}

//! `binarylm-torch generate <model dir> …`: load a `pretrain` artifact (weights, config,
//! tokenizer.json) and stream sampled text to stdout. `binarylm generate` resolves a stage name
//! or digest to the directory and runs this.
//!
//! The flags are [`serve::GenerateFlags`], the same clap definitions `binarylm generate` reads,
//! so the two cannot drift apart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serve::GenerateFlags;
use tokenizer::{Tokenizer, EOS_NAMES};

use crate::device::{self, DeviceChoice};
use crate::generate::{generate, Sampling};
use crate::model::load_artifact;
use crate::pretrain::TOKENIZER_FILE;
use crate::server::engine::TokenizerCodec;
use serve::chat::ChatTemplate;

/// What `generate` was asked to do.
#[derive(Debug, Clone)]
pub struct GenerateArgs {
    pub model_dir: PathBuf,
    pub prompt: String,
    pub sampling: Sampling,
    /// Independent samples, each from seed, seed+1, …
    pub samples: usize,
    pub device: DeviceChoice,
    /// CPU threads for libtorch (0: its default, one per core).
    pub threads: usize,
    /// Print one JSON object per sample instead of streaming text.
    pub json: bool,
    /// No timing line on stderr.
    pub quiet: bool,
    /// The prompt is a user's message, rendered with the chat template.
    pub chat: bool,
    /// A conversation on stdin (`binarylm chat`): see [`super::chat`].
    pub interactive: bool,
    /// With `chat`: a system message before the user's.
    pub system: Option<String>,
}

/// Why a generate invocation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Usage(String),
    /// A bad command line, as clap renders it (it starts with `error:` and ends with usage).
    #[error("{0}")]
    Cli(String),
    /// `--help`: not a failure; the text goes to stdout.
    #[error("{0}")]
    Help(String),
    #[error("{dir}: {message}")]
    Artifact { dir: String, message: String },
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Device(#[from] device::DeviceError),
    #[error("writing to stdout: {0}")]
    Stdout(#[from] std::io::Error),
    #[error("reading stdin: {0}")]
    Stdin(std::io::Error),
}

impl GenerateError {
    /// Exit code: 2 for bad input, 1 when the work itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            GenerateError::Help(_) => 0,
            GenerateError::Usage(_) | GenerateError::Cli(_) | GenerateError::Artifact { .. } => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "binarylm-torch generate",
    about = "Sample text from a model directory (normally run through `binarylm generate`)"
)]
struct GenerateCli {
    /// A pretrain artifact's directory (config.json, model.safetensors, tokenizer.json).
    model_dir: PathBuf,
    #[command(flatten)]
    flags: GenerateFlags,
    /// No timing line on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Parses `<model dir>` and the [`GenerateFlags`]. `--help` comes back as a usage "error"
/// whose text is the help; the caller prints it.
pub fn parse_args(args: &[String]) -> Result<GenerateArgs, GenerateError> {
    use clap::Parser;
    let argv = std::iter::once("binarylm-torch generate".to_string()).chain(args.iter().cloned());
    let cli = GenerateCli::try_parse_from(argv).map_err(|e| {
        if e.use_stderr() {
            GenerateError::Cli(e.render().to_string())
        } else {
            GenerateError::Help(e.render().to_string())
        }
    })?;
    let f = cli.flags;
    let device = f
        .decode
        .device
        .parse()
        .map_err(|e| GenerateError::Usage(format!("--device: {e}")))?;
    Ok(GenerateArgs {
        model_dir: cli.model_dir,
        prompt: f.prompt,
        sampling: Sampling {
            temperature: f.decode.temperature,
            top_k: f.decode.top_k,
            top_p: f.decode.top_p,
            seed: f.decode.seed,
            max_tokens: f.decode.max_tokens,
            stop: None,
            kv_cache: !f.no_kv_cache,
        },
        samples: usize::try_from(f.samples).unwrap_or(usize::MAX),
        device,
        threads: f.decode.threads,
        json: f.json,
        quiet: cli.quiet,
        chat: f.chat,
        interactive: f.interactive,
        system: f.system,
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

/// Generates after `prompt`, writing each token's text to `out` as it comes when `streaming`.
/// Returns the new tokens and the bytes still held back (an incomplete UTF-8 character).
pub(crate) fn stream(
    model: &crate::model::Gpt,
    prompt: &[i64],
    s: &Sampling,
    tok: &Tokenizer,
    streaming: bool,
    out: &mut impl Write,
) -> Result<(Vec<i64>, Vec<u8>), GenerateError> {
    let mut pending = Vec::new();
    let mut write_err = None;
    let tokens = generate(model, prompt, s, |id| {
        if !streaming || write_err.is_some() {
            return;
        }
        if let Some(bytes) = u32::try_from(id).ok().and_then(|id| tok.token_bytes(id)) {
            pending.extend_from_slice(bytes);
        }
        if let Err(e) = flush_utf8(&mut pending, out) {
            write_err = Some(e);
        }
    })?;
    match write_err {
        Some(e) => Err(e.into()),
        None => Ok((tokens, pending)),
    }
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
    // One load of tokenizer.json: the chat template reads the same tokenizer as the codec.
    let codec = TokenizerCodec(load_tokenizer(&args.model_dir)?);
    let tok = &codec.0;
    if args.threads > 0 {
        device::set_threads(args.threads);
    }
    let dev = device::resolve(args.device)?;
    let (model, cfg) = load_artifact(&args.model_dir, dev)?;
    if args.interactive {
        return super::chat::converse(args, &model, cfg.block_size, &codec);
    }
    // The token the tokenizer stage put between documents (`<|eos|>`, or a pretrained
    // tokenizer's own spelling such as `<|endoftext|>`).
    let eos = tok.find_special(EOS_NAMES).map(|(_, id)| i64::from(id));
    // A chat: the server's template, ending at `<|assistant|>`; the answer ends at `<|end|>`.
    let chat_stop = if args.chat {
        let template = ChatTemplate::for_codec(&codec);
        let mut conversation = super::chat::Conversation::new(args.system.as_deref());
        conversation.ask(&args.prompt);
        let ids = template.render(&codec, conversation.messages());
        let stop = template.end_token().map(i64::from);
        Some((ids.into_iter().map(i64::from).collect::<Vec<i64>>(), stop))
    } else {
        None
    };
    // An empty prompt starts from <|eos|>: the model saw it before every document's start.
    let prompt: Vec<i64> =
        if let Some((ids, _)) = &chat_stop {
            ids.clone()
        } else if args.prompt.is_empty() {
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
        s.stop = match &chat_stop {
            Some((_, Some(end))) => Some(*end),
            _ => eos,
        };
        if !args.json {
            if args.samples > 1 {
                writeln!(stdout, "--- sample {} (seed {}) ---", i + 1, s.seed)?;
            }
            // A chat prints the answer alone; a continuation follows its prompt.
            if !args.chat {
                stdout.write_all(args.prompt.as_bytes())?;
            }
            stdout.flush()?;
        }
        let start = Instant::now();
        let (tokens, pending) = stream(&model, &prompt, &s, tok, !args.json, &mut stdout)?;
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
                match (stopped, args.chat) {
                    (true, true) => ", stopped at end of turn",
                    (true, false) => ", stopped at end of document",
                    (false, _) => "",
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

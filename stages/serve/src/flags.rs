//! The command-line flags of `serve` and `generate`, defined once for both binaries:
//! `binarylm serve|generate` (which resolves a stage name to a model directory) and
//! `binarylm-torch serve|generate` (which loads the model). The first hands its flags to the
//! second through `to_args`, so a flag added here reaches the model without a second list to
//! keep in step, and both print the same `--help`.

use std::ffi::OsString;
use std::path::PathBuf;

/// Flags of `serve`, after the model argument.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ServeFlags {
    /// Address to listen on. Default: loopback only.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0: any free port; the address is printed once the model is loaded).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,

    /// tokenizer.json (or, for `binarylm serve`, a directory holding it). Default: the one in
    /// the model's directory or the nearest artifact it was built from.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,

    /// The model id clients pass as `model`. Default: a bundle's name, else the stage name
    /// (or directory name).
    #[arg(long)]
    pub name: Option<String>,

    /// Server settings as JSON (max_batch, queue_capacity, timeouts, …; see docs/serving.md).
    /// Default: a bundle's server.json, else the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Most requests decoded together (continuous batching); 1 serves one at a time.
    /// Overrides the config's max_batch.
    #[arg(long, value_name = "N")]
    pub max_batch: Option<usize>,

    /// Requests that may wait for a slot before new ones get 429. Overrides the config's
    /// queue_capacity.
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<usize>,

    /// File of accepted API keys, one per line (also: BINARYLM_API_KEYS=k1,k2).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// auto (the first GPU when there is one), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Matrix products in auto (bf16 on a GPU, fp32 on the CPU), fp32 or bf16.
    #[arg(long, default_value = "auto")]
    pub precision: String,

    /// CPU threads for the model (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ServeFlags {
    /// The same flags as command-line words, every one spelled out (defaults too), so that
    /// parsing them again gives back `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("--host", self.host.clone().into());
        push("--port", self.port.to_string().into());
        if let Some(t) = &self.tokenizer {
            push("--tokenizer", t.clone().into());
        }
        if let Some(n) = &self.name {
            push("--name", n.clone().into());
        }
        if let Some(c) = &self.config {
            push("--config", c.clone().into());
        }
        if let Some(n) = self.max_batch {
            push("--max-batch", n.to_string().into());
        }
        if let Some(n) = self.queue_capacity {
            push("--queue-capacity", n.to_string().into());
        }
        if let Some(k) = &self.api_key_file {
            push("--api-key-file", k.clone().into());
        }
        push("--device", self.device.clone().into());
        push("--precision", self.precision.clone().into());
        push("--threads", self.threads.to_string().into());
        args
    }
}

/// How `generate` and `chat` pick tokens, and where the model runs.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct DecodeFlags {
    /// The most tokens to generate per sample (per answer in a chat).
    #[arg(short = 'n', long, default_value_t = 200)]
    pub max_tokens: usize,

    /// Sharpness of sampling: 0 is greedy, 1 the model's own distribution.
    #[arg(short, long, default_value_t = 0.8, value_parser = temperature)]
    pub temperature: f64,

    /// Sample only among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,

    /// Nucleus sampling: the smallest set of tokens whose probability reaches p.
    #[arg(long, default_value_t = 1.0, value_parser = top_p)]
    pub top_p: f64,

    /// Random seed; sample (or answer) i uses seed + i.
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,

    /// Where the model runs: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// CPU threads for the model (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl DecodeFlags {
    /// The flags as command-line words.
    fn to_args(&self) -> Vec<OsString> {
        let words = [
            ("--max-tokens", self.max_tokens.to_string()),
            ("--temperature", self.temperature.to_string()),
            ("--top-k", self.top_k.to_string()),
            ("--top-p", self.top_p.to_string()),
            ("--seed", self.seed.to_string()),
            ("--device", self.device.clone()),
            ("--threads", self.threads.to_string()),
        ];
        words
            .into_iter()
            .flat_map(|(flag, value)| [OsString::from(flag), OsString::from(value)])
            .collect()
    }
}

/// Flags of `generate`, after the model argument.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct GenerateFlags {
    /// The text to continue (default: start a new document).
    #[arg(short, long, default_value = "")]
    pub prompt: String,

    #[command(flatten)]
    pub decode: DecodeFlags,

    /// How many independent samples.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub samples: u64,

    /// Recompute the whole window every token (slower; for comparison).
    #[arg(long)]
    pub no_kv_cache: bool,

    /// One JSON object per sample on stdout instead of streamed text.
    #[arg(long)]
    pub json: bool,

    /// Treat the prompt as a user's chat message: render it with the chat template (as the
    /// server's /v1/chat/completions does), print only the answer, and stop at `<|end|>`.
    #[arg(long)]
    pub chat: bool,

    /// With --chat: a conversation. Each line of stdin is the user's next message, answered
    /// with the whole conversation so far in the prompt (what `binarylm chat` runs).
    #[arg(long, requires = "chat")]
    pub interactive: bool,

    /// With --chat: a system message before the user's.
    #[arg(long, requires = "chat", value_name = "TEXT")]
    pub system: Option<String>,
}

fn temperature(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if t >= 0.0 && t.is_finite() => Ok(t),
        _ => Err(format!("`{text}` is not a temperature ≥ 0 (0 is greedy)")),
    }
}

fn top_p(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(format!("`{text}` is not a probability in (0, 1]")),
    }
}

impl GenerateFlags {
    /// The same flags as command-line words, every one spelled out, so that parsing them again
    /// gives back `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        // `--prompt=…` as one word: a prompt starting with `-` must not read as a flag.
        let mut args: Vec<OsString> = vec![format!("--prompt={}", self.prompt).into()];
        args.extend(self.decode.to_args());
        args.extend(["--samples".into(), self.samples.to_string().into()]);
        if self.no_kv_cache {
            args.push("--no-kv-cache".into());
        }
        if self.json {
            args.push("--json".into());
        }
        if self.chat {
            args.push("--chat".into());
        }
        if self.interactive {
            args.push("--interactive".into());
        }
        if let Some(system) = &self.system {
            args.push(format!("--system={system}").into());
        }
        args
    }
}

/// Flags of `chat`, after the model argument: the sampling flags of `generate` that a
/// conversation uses, and a system message.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ChatFlags {
    /// A system message that opens the conversation (the model's instructions).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    #[command(flatten)]
    pub decode: DecodeFlags,

    /// One JSON object per answer on stdout instead of streamed text.
    #[arg(long)]
    pub json: bool,
}

impl ChatFlags {
    /// The `generate` flags that hold this conversation.
    pub fn to_generate(&self) -> GenerateFlags {
        GenerateFlags {
            prompt: String::new(),
            decode: self.decode.clone(),
            samples: 1,
            no_kv_cache: false,
            json: self.json,
            chat: true,
            interactive: true,
            system: self.system.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Gen {
        #[command(flatten)]
        flags: GenerateFlags,
    }

    /// `flags` handed over as words and parsed back.
    fn assert_round_trip(flags: &GenerateFlags) {
        let words: Vec<String> = flags
            .to_args()
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(&parse_generate(&words).unwrap(), flags);
    }

    fn parse_generate(words: &[&str]) -> Result<GenerateFlags, clap::Error> {
        Gen::try_parse_from(std::iter::once("generate").chain(words.iter().copied()))
            .map(|g| g.flags)
    }

    #[test]
    fn generate_flags_survive_the_hand_over() {
        let flags = GenerateFlags {
            prompt: "-- Mia said".into(),
            decode: DecodeFlags {
                max_tokens: 7,
                temperature: 0.0,
                top_k: 5,
                top_p: 0.9,
                seed: 3,
                device: "cpu".into(),
                threads: 1,
            },
            samples: 2,
            no_kv_cache: true,
            json: true,
            chat: true,
            interactive: true,
            system: Some("-- be brief".into()),
        };
        assert_round_trip(&flags);
    }

    #[test]
    fn chat_flags_become_generate_flags_that_survive_the_hand_over() {
        #[derive(Parser)]
        struct Chat {
            #[command(flatten)]
            flags: ChatFlags,
        }
        let chat =
            Chat::try_parse_from(["chat", "--system", "Answer briefly.", "-t", "0", "-n", "9"])
                .unwrap()
                .flags;
        let flags = chat.to_generate();
        assert!(flags.chat && flags.interactive);
        assert_eq!(flags.system.as_deref(), Some("Answer briefly."));
        assert_round_trip(&flags);
    }

    #[test]
    fn generate_flags_refuse_bad_values() {
        for bad in [
            &["--temperature", "-1"][..],
            &["--top-p", "0"],
            &["--top-p", "1.5"],
            &["--samples", "0"],
            &["--interactive"],
            &["--system", "hi"],
        ] {
            assert!(parse_generate(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ServeFlags,
    }

    fn parse(words: &[OsString]) -> ServeFlags {
        let argv = std::iter::once(OsString::from("serve")).chain(words.iter().cloned());
        Cli::try_parse_from(argv).expect("flags parse").flags
    }

    #[test]
    fn every_flag_survives_the_hand_over() {
        // Each optional flag set, so a flag `to_args` forgot would come back as None.
        let flags = ServeFlags {
            host: "0.0.0.0".into(),
            port: 0,
            tokenizer: Some("tok/tokenizer.json".into()),
            name: Some("story".into()),
            config: Some("server.json".into()),
            max_batch: Some(3),
            queue_capacity: Some(17),
            api_key_file: Some("keys.txt".into()),
            device: "cuda:1".into(),
            precision: "bf16".into(),
            threads: 5,
        };
        assert_eq!(parse(&flags.to_args()), flags);
    }

    #[test]
    fn defaults_survive_the_hand_over() {
        let defaults = parse(&[]);
        assert_eq!(parse(&defaults.to_args()), defaults);
        assert_eq!((defaults.host.as_str(), defaults.port), ("127.0.0.1", 8000));
    }
}

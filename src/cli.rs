//! Command-line interface: the arguments as typed. `main.rs` turns them into library calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Build language models end to end from one YAML manifest.";

const LONG_ABOUT: &str = "\
Build language models end to end from one YAML manifest.

A manifest (pipeline.yaml) names stages — data prep, tokenizer, pretraining, fine-tuning,
evaluation, quantization, deployment, or your own commands — and how they feed each other.
binarylm turns it into a DAG, fingerprints every stage by content (params, seed, input
artifacts, dependency files, implementation version), runs only what changed — independent
stages in parallel — and records every artifact and its lineage in the workspace registry
(.binarylm/ beside the manifest). pipeline.lock records what each stage produced, so a run
can be shared and reproduced.";

const AFTER_HELP: &str = "\
Examples:
  binarylm run                        run ./pipeline.yaml: what is stale, reuse the rest
  binarylm plan examples/quickstart/pipeline.yaml
                                      what would run, and why
  binarylm run base                   only stage `base` and the stages it needs
  binarylm run -j 4 --keep-going      4 stages at once; don't stop at the first failure
  binarylm run --force train          re-run one stage even though it is cached
  binarylm run --locked               fail unless everything matches pipeline.lock
  binarylm show train                 the artifact of stage `train`: params, metrics, files
  binarylm lineage train              which artifacts it was built from
  binarylm compare base sft           two stages' metrics side by side
  binarylm gc --dry-run               what garbage collection would remove
  binarylm push --remote /mnt/team/cache
                                      share this pipeline's artifacts through a directory
  binarylm pull && binarylm run --locked
                                      fetch a colleague's artifacts, then check they reproduce
  binarylm diff pipeline.lock ../other/pipeline.lock
                                      what params, inputs and metrics differ

Exit codes: 0 success, 1 a stage failed (or verify/--locked found a difference),
2 bad input (manifest, arguments, missing files), 130 interrupted.";

#[derive(Debug, Parser)]
#[command(name = "binarylm", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors and requested output; no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Workspace directory (default: .binarylm/ beside the manifest, or the nearest
    /// .binarylm/ in the current directory or its parents).
    #[arg(long, global = true, env = "BINARYLM_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the stages whose content changed; reuse the rest from the registry.
    #[command(after_help = "\
A stage runs when its fingerprint is new: a param, the seed, a dependency file, an input
artifact or the stage kind's implementation changed. When a re-run stage reproduces a
byte-identical artifact, its downstream stages stay cached (early cutoff).

Ctrl-C (or SIGTERM) stops running stages; nothing partial enters the store and the run is
recorded as cancelled. An interrupted training stage resumes from its last checkpoint when
the same fingerprint runs again.

Stages named after the manifest (`binarylm run base`, `binarylm run exp.yaml base eval`) run
with everything they need and nothing downstream of them; pipeline.lock keeps its entries for
the stages left out. The first word is the manifest when it ends in .yaml or .yml or names a
file; otherwise every word is a stage of ./pipeline.yaml.")]
    Run(RunArgs),
    /// Show what `run` would do, stage by stage, and why.
    #[command(after_help = "\
`binarylm plan base` plans what `binarylm run base` would run: `base` and the stages it needs.")]
    Plan(PlanArgs),
    /// Show each stage of a manifest: up to date or stale, its artifact and metric; recent runs.
    Status(StatusArgs),
    /// Show an artifact: the stage that made it, params, inputs, metrics, files.
    Show(ShowArgs),
    /// Show the artifacts an artifact was built from (and what was built from it).
    Lineage(ShowArgs),
    /// Compare the metrics of several stages (or artifacts) side by side, with deltas.
    #[command(after_help = "\
Each row is a metric that at least two of the artifacts recorded; each column one artifact,
with its change from the first column in parentheses and, where the stage recorded one (eval
stages do), its standard error after ±. Two scores within about two standard errors of each
other are not shown different by that task.

Examples:
  binarylm compare base sft                  two model stages of ./pipeline.yaml
  binarylm compare scores 3f2a91c0 --all     an eval stage against an older artifact of it
  binarylm compare base sft --json")]
    Compare(CompareArgs),
    /// Remove artifacts nothing references (lockfiles, recent runs and latest results are kept).
    Gc(GcArgs),
    /// Re-hash every object in the store; name corrupt or missing ones (exit 1 if any).
    Verify(VerifyArgs),
    /// Print the JSON Schema of pipeline manifests (for editor completion).
    Schema,
    /// Show the libtorch build, devices and workspace this binary would use.
    Doctor,
    /// Send stages' artifacts (default: every stage in pipeline.lock) to a remote cache.
    #[command(after_help = REMOTE_HELP)]
    Push(TransferArgs),
    /// Fetch stages' artifacts (default: every stage in pipeline.lock) from a remote cache.
    #[command(after_help = REMOTE_HELP)]
    Pull(TransferArgs),
    /// Manage the remote caches of this workspace (.binarylm/config.yaml).
    #[command(subcommand, after_help = REMOTE_HELP)]
    Remote(RemoteCommand),
    /// List the recorded runs of the workspace, newest first (their ids are what `diff` takes).
    Runs(RunsArgs),
    /// Compare two runs or two lockfiles: params, inputs and metrics that differ, side by side.
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Show how a tokenizer cuts text into tokens: the pieces and their ids.
    #[command(after_help = "\
Examples:
  binarylm tokenize tok \"Hello, world!\"       a tokenizer stage of ./pipeline.yaml
  binarylm tokenize path/to/tokenizer.json \"naïve café 😀\"
  echo text | binarylm tokenize tok            the text from stdin")]
    Tokenize(TokenizeArgs),
    /// Sample text from a trained model (a `pretrain` stage), streamed as it is generated.
    #[command(after_help = "\
Each token is drawn from the model's next-token distribution: divided by --temperature
(0 = always the most likely token), cut to the --top-k most likely and to the smallest set
whose probability reaches --top-p, then sampled with --seed (the same seed gives the same
text). Generation stops at <|eos|> (the end of a document) or after --max-tokens. The KV
cache keeps each layer's keys and values, so a step costs one token, not the whole window.

Examples:
  binarylm generate base --prompt \"Once upon a time\"
  binarylm generate base --prompt \"Mia had\" --temperature 0 --max-tokens 40
  binarylm generate base --samples 3 --top-k 50 --seed 7      three samples from <|eos|>
  binarylm generate path/to/artifact --prompt x --json          machine-readable")]
    Generate(GenerateArgs),
    /// Talk with a fine-tuned model (an `sft` or `dpo` stage) in its chat template.
    #[command(after_help = "\
Type a message and press Enter; the answer streams back. Every answer is generated from the
whole conversation so far, rendered in the model's chat template (<|system|>, <|user|>,
<|assistant|>, <|end|>) exactly as `binarylm serve` renders /v1/chat/completions; when it
outgrows the model's context window the oldest exchanges are dropped. /reset forgets the
conversation, /exit or Ctrl-D ends it. A message of several lines goes between two lines of
\"\"\" (as in Ollama). Messages can also be piped in, one per line.

Examples:
  binarylm chat aligned
  binarylm chat assistant --temperature 0 --system \"Answer in one sentence.\"
  printf 'Hi\\nWhat did Ada pick up?\\n' | binarylm chat aligned --json      one object per answer")]
    Chat(ChatArgs),
    /// Serve a model over HTTP with the OpenAI API (completions, chat, streaming, logprobs).
    #[command(after_help = "\
Examples:
  binarylm serve base                     stage `base` of ./pipeline.yaml, on 127.0.0.1:8000
  binarylm serve api --port 9000          a deploy stage's bundle (its server settings and name)
  binarylm serve 3fa9c2 --device cpu      an artifact by digest prefix
  binarylm serve ./model --tokenizer tok.json   a model directory outside the workspace

Then, from another terminal:
  curl http://127.0.0.1:8000/v1/models
  curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
       -d '{\"model\": \"base\", \"prompt\": \"Once upon a time\", \"max_tokens\": 32}'
  curl -N http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stream\": true}'

Any OpenAI client works: base_url http://127.0.0.1:8000/v1. Also: GET /health, GET /metrics
(Prometheus), POST /tokenize, POST /detokenize, GET /tokenizer_info.
API keys: --api-key-file FILE (one per line) and/or BINARYLM_API_KEYS=k1,k2; clients then send
`Authorization: Bearer <key>`. Ctrl-C finishes in-flight requests, then exits. See docs/serving.md.")]
    Serve(ServeArgs),
    /// A web UI over the workspace: pipelines, runs, stages, curves (read-only).
    #[command(after_help = "\
Examples:
  binarylm ui                             ./pipeline.yaml's workspace on http://127.0.0.1:8470/
  binarylm ui -f examples/quickstart/pipeline.yaml --port 0
                                          any free port (the link is printed)
  binarylm ui --host 0.0.0.0              reachable from other machines: prints a link with a
                                          generated token, which every request must carry

The UI only reads the workspace (it never takes its lock, so `binarylm run` can run meanwhile
and the UI shows its progress). Ctrl-C stops it. See docs/ui.md.")]
    Ui(UiArgs),
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The manifest to show first (default: ./pipeline.yaml when it exists). Every pipeline
    /// the workspace has runs of is shown too.
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// Address to listen on. Anything but a loopback address needs a token.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub host: std::net::IpAddr,

    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8470, value_name = "PORT")]
    pub port: u16,

    /// The token requests must carry (default: none on loopback, a generated one elsewhere).
    #[arg(
        long,
        env = "BINARYLM_UI_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// An sft or dpo stage's name, an artifact digest, or a model directory.
    pub model: String,

    #[command(flatten)]
    pub flags: serve::ChatFlags,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A pretrain (or deploy) stage's name, an artifact digest, or a model directory.
    pub model: String,

    #[command(flatten)]
    pub flags: serve::GenerateFlags,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A stage name, an artifact digest (or unique prefix), or a model directory.
    pub target: String,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    #[command(flatten)]
    pub flags: serve::ServeFlags,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// A tokenizer stage's name, an artifact digest, a tokenizer.json, or a directory holding one.
    pub tokenizer: String,

    /// The text to tokenize (default, or `-`: read stdin).
    pub text: Option<String>,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// Encode special tokens written in the text (`<|eos|>`) as text, not as their ids.
    #[arg(long)]
    pub ordinary: bool,

    /// Print the tokens as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ManifestArg {
    /// The pipeline manifest.
    #[arg(default_value = "pipeline.yaml", value_name = "MANIFEST")]
    pub manifest: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifest: ManifestAndStages,

    /// Stages to run at once (default: number of CPU cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// CPU threads shared among running stages (default: number of CPU cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// After a failure, keep running the stages that do not depend on it.
    #[arg(short, long)]
    pub keep_going: bool,

    /// Re-run this stage even if it is cached (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,

    /// Fail unless every fingerprint and artifact matches pipeline.lock (which is not rewritten).
    #[arg(long)]
    pub locked: bool,

    /// Before running a stage that is not cached here, fetch its result from the remote cache
    /// when the remote has it (see `binarylm push --help`).
    #[arg(long)]
    pub pull: bool,

    /// The remote for --pull: a configured name, a directory, or s3://bucket/prefix (default:
    /// the default remote). Used only with --pull.
    #[arg(long, env = "BINARYLM_REMOTE", value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Print the run report as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `[MANIFEST] [STAGE]…` of `run` and `plan`.
#[derive(Debug, Args)]
pub struct ManifestAndStages {
    /// The pipeline manifest (default: pipeline.yaml), then the stages to run with what they
    /// need (default: every stage).
    #[arg(value_name = "MANIFEST|STAGE")]
    pub words: Vec<String>,
}

impl ManifestAndStages {
    /// The manifest and the stages asked for: the first word is the manifest when it ends in
    /// `.yaml`/`.yml` or names a file, as in `binarylm run exp.yaml base`; otherwise every
    /// word is a stage of `pipeline.yaml`, as in `binarylm run base`.
    pub fn manifest_and_targets(&self) -> (PathBuf, Vec<String>) {
        match self.words.split_first() {
            Some((first, rest)) if names_a_manifest(first) => (PathBuf::from(first), rest.to_vec()),
            _ => (PathBuf::from("pipeline.yaml"), self.words.clone()),
        }
    }
}

fn names_a_manifest(word: &str) -> bool {
    let path = std::path::Path::new(word);
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) || path.is_file()
}

const REMOTE_HELP: &str = "\
A remote cache holds artifacts by content digest, so a colleague (or a CI job) reuses what
was computed once instead of recomputing it. It is a directory on a shared file system or an
S3-compatible bucket, named in the manifest

  remotes:
    team: /mnt/shared/binarylm-cache          # a directory (relative to the manifest)
    bucket:
      url: s3://my-bucket/binarylm
      endpoint: http://minio.local:9000       # S3-compatible servers; default: AWS
      region: eu-west-1
      default: true                           # used when --remote is not given

or in this workspace's .binarylm/config.yaml (`binarylm remote add NAME URL`), or given with
--remote. S3 credentials come from the standard AWS variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), never from the manifest.

Every file is checked on arrival: a remote file whose bytes do not hash to what its artifact
lists is refused, and that artifact is not stored. Transfers are atomic on both sides and resumable: an
interrupted push or pull leaves no partial object and skips what is complete when run again;
two pushes at once are safe.

Examples:
  binarylm push                          every stage in ./pipeline.lock, to the default remote
  binarylm push base tok --remote team   two stages
  binarylm pull && binarylm run --locked in a fresh clone: nothing runs
  binarylm run --pull                    fetch what the remote has, run the rest
  binarylm run --pull --remote bucket    the same, from another remote
  binarylm remote add team /mnt/shared/binarylm-cache --default";

const DIFF_HELP: &str = "\
A and B are run ids (`binarylm runs` lists them; a unique prefix will do) or lockfiles (pipeline.lock, or a
copy from another branch or colleague). For each stage in either, diff shows the params,
input artifacts and metrics that differ (params and inputs come from this workspace's
registry; a lockfile stage it has never seen shows only its fingerprint, digest and metrics).
Metrics show B - A and the relative change.

Examples:
  binarylm diff 20261130T010203Z-ab12cd34 20261130T020304Z-ef56ab78
  binarylm diff pipeline.lock /tmp/theirs.lock
  binarylm diff pipeline.lock other.lock --all --json";

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Stages to transfer (default: every stage in the lockfile).
    #[arg(value_name = "STAGE")]
    pub stages: Vec<String>,

    /// The pipeline manifest whose lockfile names the stages.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "pipeline.yaml",
        value_name = "MANIFEST"
    )]
    pub manifest: PathBuf,

    /// A configured remote's name, a directory, or s3://bucket/prefix (default: the default
    /// remote).
    #[arg(short, long, env = "BINARYLM_REMOTE", value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Print what was transferred as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add (or replace) a remote in .binarylm/config.yaml.
    Add(RemoteAddArgs),
    /// List the remotes of the workspace and the manifest.
    List(RemoteListArgs),
    /// Remove a remote from .binarylm/config.yaml.
    Remove(RemoteRemoveArgs),
}

#[derive(Debug, Args)]
pub struct RemoteAddArgs {
    /// Name to use with --remote (lowercase letters, digits, `_`, `-`).
    pub name: String,
    /// A directory (stored as an absolute path) or s3://bucket/prefix.
    pub url: String,
    /// S3-compatible server to use instead of AWS (e.g. http://localhost:9000).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The bucket's region.
    #[arg(long)]
    pub region: Option<String>,
    /// Make it the remote used when --remote is not given.
    #[arg(long)]
    pub default: bool,
    /// The manifest whose workspace to configure.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "pipeline.yaml",
        value_name = "MANIFEST"
    )]
    pub manifest: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoteListArgs {
    /// The manifest whose remotes to list.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "pipeline.yaml",
        value_name = "MANIFEST"
    )]
    pub manifest: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoteRemoveArgs {
    pub name: String,
    /// The manifest whose workspace to configure.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "pipeline.yaml",
        value_name = "MANIFEST"
    )]
    pub manifest: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show only the N most recent runs.
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the run records as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A run id or a lockfile path.
    pub a: String,
    /// A run id or a lockfile path.
    pub b: String,
    /// Also list stages and values that did not change.
    #[arg(long)]
    pub all: bool,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestAndStages,

    /// Plan as if these stages were forced (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,

    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The manifest whose stages to show (default: ./pipeline.yaml when it exists).
    #[arg(value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A stage name, or an artifact digest (a unique prefix of at least 6 characters).
    pub target: String,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Stage names, or artifact digests (unique prefixes of at least 6 characters): two or more.
    #[arg(required = true, num_args = 2..)]
    pub targets: Vec<String>,

    /// Resolve stage names in this manifest (default: ./pipeline.yaml when it exists).
    #[arg(short = 'f', long = "file", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// List every metric, also those only one artifact has.
    #[arg(long)]
    pub all: bool,

    /// Also draw the training curves (train and validation loss by step) of the artifacts that
    /// have one (pretrain, sft, dpo) into this SVG file, one colour per artifact.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep the artifacts of this many most recent runs.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub keep_runs: usize,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also rebuild the registry indexes from the store (after a crash or a corrupt database).
    #[arg(long)]
    pub rebuild: bool,
}

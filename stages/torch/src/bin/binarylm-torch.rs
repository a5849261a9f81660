//! `binarylm-torch`: the half of binarylm that links libtorch.
//!
//! The `binarylm` CLI stays free of libtorch so that planning, status and cached re-runs start
//! in milliseconds; work that needs torch runs in this executable, which `binarylm` finds
//! beside itself. It answers `doctor` (which libtorch, which devices) and runs the stage kinds
//! that need torch: `run-stage <job.json>` (see `pipelines::job` for the protocol).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use pipelines::{TorchEvent, TorchJob, TORCH_JOB_FORMAT};
use stages_torch::device::{self, DeviceChoice};
use stages_torch::generate::cli::GenerateError;
use stages_torch::train::Observer;

const USAGE: &str = "usage: binarylm-torch doctor [--json]\n       \
binarylm-torch run-stage <job.json>\n       \
binarylm-torch generate <model dir> [--prompt TEXT] [--max-tokens N] [--temperature T]\n         \
[--top-k K] [--top-p P] [--seed S] [--samples N] [--no-kv-cache] [--device D] [--threads N]\n         \
[--json] [--quiet] [--chat [--system TEXT] [--interactive]]\n       \
binarylm-torch serve <model dir> [--port N] [...]   (see `binarylm-torch serve --help`)\n       \
binarylm-torch logits <model dir>   (a JSON array of texts on stdin)\n       \
binarylm-torch inspect <model dir>\n\n\
doctor: reports the libtorch this build links, whether its CUDA backend is linked, the devices\n\
it sees and the CPU threads it would use. Normally run through `binarylm doctor`.\n\
run-stage: runs one torch stage from a job file written by `binarylm run`; events go to stdout\n\
as JSON lines, the log to stderr.\n\
generate: samples text from a pretrain artifact directory; normally run through\n\
`binarylm generate` (see its --help); with --chat --interactive, `binarylm chat`.\n\
serve: serves a model directory with the OpenAI API. Normally run through `binarylm serve`.\n\
logits: prints each text's token ids and the model's logits after every token, as JSON (what\n\
exports are checked against; docs/export.md).\n\
inspect: loads a model directory once and answers JSON requests, one per line on stdin\n\
({\"op\":\"prompt\",\"text\":…} or {\"op\":\"embeddings\",\"token\":…}) with one JSON line each;\n\
`binarylm ui` runs it for its model inspector.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("doctor") => doctor(args.iter().any(|a| a == "--json")),
        Some("run-stage") if args.len() == 2 => run_stage(Path::new(&args[1])),
        Some("generate") => generate(&args[1..]),
        Some("serve") => stages_torch::server::cli::main(&args[1..]),
        Some("logits") if args.len() == 2 => logits(Path::new(&args[1])),
        Some("inspect") if args.len() == 2 => inspect(Path::new(&args[1])),
        Some("-h") | Some("--help") => {
            // `| head` may close stdout early: that is not a failure.
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn inspect(dir: &Path) -> ExitCode {
    let inspector = match stages_torch::inspect::Inspector::load(dir) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let stdin = std::io::stdin().lock();
    match stages_torch::inspect::serve_lines(&inspector, stdin, std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (the UI stopped): nothing more to answer.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &[String]) -> ExitCode {
    let result = stages_torch::generate::cli::parse_args(args)
        .and_then(|a| stages_torch::generate::cli::run(&a));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(GenerateError::Help(text)) => {
            let _ = write!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        // The reader stopped (`binarylm generate … | head`): it has what it wanted. SIGPIPE
        // stays ignored in this binary, whose server must outlive clients that hang up.
        Err(GenerateError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        // clap's own message already starts with `error:`.
        Err(GenerateError::Cli(text)) => {
            eprint!("{text}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn logits(dir: &Path) -> ExitCode {
    match stages_torch::logits::main(dir) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn doctor(json: bool) -> ExitCode {
    let auto = match device::resolve(DeviceChoice::Auto) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A real computation, so a broken libtorch shows up here rather than in the first stage.
    let check = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(auto);
    let sum = check.dot(&check).double_value(&[]);
    let ok = (sum - 14.0).abs() < 1e-6;
    let report = serde_json::json!({
        "libtorch": option_env!("BINARYLM_LIBTORCH_LIB"),
        "libtorch_version": option_env!("BINARYLM_LIBTORCH_VERSION"),
        "cuda_backend_linked": device::cuda_backend_linked(),
        "cuda_devices": device::cuda_device_count(),
        "device": device::describe(auto),
        "threads": device::threads(),
        "compute_check": if ok { "ok" } else { "WRONG RESULT" },
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "libtorch:     {} ({})",
            option_env!("BINARYLM_LIBTORCH_VERSION").unwrap_or("version unknown"),
            option_env!("BINARYLM_LIBTORCH_LIB").unwrap_or("?")
        );
        println!(
            "cuda backend: {}",
            if device::cuda_backend_linked() {
                "linked"
            } else {
                "not linked"
            }
        );
        println!("cuda devices: {}", device::cuda_device_count());
        println!("device auto:  {}", device::describe(auto));
        println!("cpu threads:  {}", device::threads());
        println!(
            "compute:      {}",
            if ok {
                "ok (1·1+2·2+3·3 = 14)"
            } else {
                "WRONG RESULT"
            }
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reports progress as JSON lines on stdout and log lines on stderr. Cancellation needs no
/// channel: `binarylm` stops a torch stage by ending its process group, and the stage resumes
/// from its last checkpoint.
#[derive(Default)]
struct JsonLines {
    /// The last phase, sent with each progress event.
    phase: std::sync::Mutex<String>,
}

fn emit(event: &TorchEvent) {
    let mut out = std::io::stdout().lock();
    // A parent that stopped reading is going away anyway; the work itself must not fail.
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string(event).expect("events serialize")
    );
    let _ = out.flush();
}

impl Observer for JsonLines {
    fn phase(&self, text: &str) {
        if let Ok(mut phase) = self.phase.lock() {
            *phase = text.to_string();
        }
    }

    fn progress(&self, done: u64, total: Option<u64>) {
        let message = self.phase.lock().map(|p| p.clone()).unwrap_or_default();
        emit(&TorchEvent::Progress {
            step: done,
            total,
            message,
        });
    }

    fn log(&self, line: &str) {
        eprintln!("{line}");
    }
}

fn run_stage(job_path: &Path) -> ExitCode {
    let job: TorchJob = match std::fs::read_to_string(job_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(e) => {
            eprintln!("error: job file {}: {e}", job_path.display());
            return ExitCode::from(2);
        }
    };
    if job.format != TORCH_JOB_FORMAT {
        eprintln!(
            "error: job format {} is not {TORCH_JOB_FORMAT}: binarylm and binarylm-torch come from different builds",
            job.format
        );
        return ExitCode::from(2);
    }
    let Some(kind) = stages_torch::kinds::find(&job.kind) else {
        eprintln!("error: binarylm-torch has no stage kind `{}`", job.kind);
        return ExitCode::from(2);
    };
    match (kind.run)(&job, &JsonLines::default()) {
        Ok(done) => {
            emit(&TorchEvent::Metrics {
                metrics: done.metrics,
                headline: pipelines::kind_info(kind.name)
                    .and_then(|k| k.headline)
                    .map(str::to_string),
                device: Some(done.device),
                libtorch: option_env!("BINARYLM_LIBTORCH_VERSION").map(str::to_string),
            });
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// `error:` and one `Caused by:` line per cause not already quoted in the message above it
/// (many messages embed their cause's text).
fn report_error(e: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {e}");
    for cause in common::error::new_causes(e) {
        eprintln!("Caused by: {cause}");
    }
}

//! Stage kinds that run in the `binarylm-torch` executable (those whose descriptor says
//! `runner: Runner::Torch`: `pretrain`, `deploy`, and later `sft`, `dpo`, `eval`): the `binarylm`
//! process never links libtorch, so such a kind here is one generic adapter.
//!
//! [`TorchJobKind`] writes a [`TorchJob`] (params, input directories, out and work
//! directories, seed, threads) into the work directory, runs
//! `binarylm-torch run-stage <job.json>` in its own process group (killed with its tree on
//! cancel, and by the kernel if binarylm dies), sends its stderr to the stage log and turns its
//! stdout — one [`TorchEvent`] per line — into progress and the stage's final metrics.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipelines::{TorchEvent, TorchJob, TORCH_JOB_FORMAT};
use runtime::command::{kill_group, own_group_dies_with_parent};
use runtime::{StageContext, StageError, StageKind, StageMetrics};

/// Name of the executable that links libtorch, looked for beside the running binary.
pub const TORCH_EXE: &str = "binarylm-torch";

/// Environment variable naming the `binarylm-torch` to use instead (tests, unusual installs).
pub const TORCH_EXE_ENV: &str = "BINARYLM_TORCH";

/// Lines of the log quoted in the error when the torch process fails.
const ERROR_TAIL_LINES: usize = 20;

/// A stage kind carried out by `binarylm-torch run-stage`: one for each kind whose descriptor
/// says [`pipelines::Runner::Torch`] (see [`crate::kinds`]).
pub struct TorchJobKind {
    name: &'static str,
}

impl TorchJobKind {
    pub const fn new(name: &'static str) -> TorchJobKind {
        TorchJobKind { name }
    }
}

/// The `binarylm-torch` executable: `$BINARYLM_TORCH`, else beside the current executable.
pub fn torch_exe() -> Result<PathBuf, StageError> {
    if let Some(path) = std::env::var_os(TORCH_EXE_ENV) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().map_err(|e| StageError::io("finding binarylm itself", e))?;
    let candidate = me.with_file_name(TORCH_EXE);
    if candidate.exists() {
        Ok(candidate)
    } else {
        Err(StageError::Failed(format!(
            "this stage needs `{TORCH_EXE}`, which is not beside {} (build it with `cargo build -p stages-torch`, or set {TORCH_EXE_ENV})",
            me.display()
        )))
    }
}

impl StageKind for TorchJobKind {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError> {
        let exe = torch_exe()?;
        std::fs::create_dir_all(&ctx.work_dir)
            .map_err(|e| StageError::io(format!("creating {}", ctx.work_dir.display()), e))?;
        let job = TorchJob {
            format: TORCH_JOB_FORMAT,
            kind: self.name.to_string(),
            stage: ctx.stage.name.clone(),
            manifest_dir: ctx.manifest.dir.clone(),
            params: ctx.stage.params.clone(),
            inputs: ctx.inputs.clone(),
            out_dir: ctx.out_dir.clone(),
            work_dir: ctx.work_dir.clone(),
            resumed: ctx.resumed,
            seed: ctx.seed,
            threads: ctx.threads,
            fingerprint: ctx.fingerprint.clone(),
        };
        let job_path = ctx.work_dir.join("job.json");
        let text = serde_json::to_string_pretty(&job).expect("a job serializes");
        std::fs::write(&job_path, text)
            .map_err(|e| StageError::io(format!("writing {}", job_path.display()), e))?;

        let stderr = ctx
            .log
            .try_clone_file()
            .map_err(|e| StageError::io("opening the stage log", e))?;
        ctx.log.line(&format!(
            "$ {} run-stage {}",
            exe.display(),
            job_path.display()
        ));
        let mut cmd = Command::new(&exe);
        cmd.arg("run-stage")
            .arg(&job_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("OMP_NUM_THREADS", ctx.threads.to_string())
            // Lets cuBLAS use TF32 for fp32 matrix products on GPUs that have it.
            .env("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1");
        own_group_dies_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| StageError::io(format!("starting {}", exe.display()), e))?;
        let pgid = child.id() as i32;

        let stdout = child.stdout.take().expect("stdout is piped");
        let metrics: Arc<Mutex<Option<StageMetrics>>> = Arc::default();
        let reader = {
            let metrics = Arc::clone(&metrics);
            let progress = ctx.progress.clone();
            let log = ctx.log.clone();
            std::thread::spawn(move || {
                let mut length = None;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<TorchEvent>(&line) {
                        Ok(TorchEvent::Progress {
                            step,
                            total,
                            message,
                        }) => {
                            if let Some(total) = total.filter(|&t| length != Some(t)) {
                                progress.set_length(total);
                                length = Some(total);
                            }
                            // The message first: plain (non-terminal) output prints it with
                            // the position update.
                            progress.set_message(message);
                            progress.set_position(step);
                        }
                        Ok(TorchEvent::Metrics {
                            metrics: m,
                            headline,
                            device,
                            libtorch,
                        }) => {
                            if let Ok(mut slot) = metrics.lock() {
                                *slot = Some(StageMetrics {
                                    metrics: m,
                                    headline,
                                    device,
                                    libtorch,
                                });
                            }
                        }
                        // Anything else a library printed to stdout still belongs in the log.
                        Err(_) => log.line(&line),
                    }
                }
            })
        };

        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(StageError::io("waiting for binarylm-torch", e)),
            }
            if ctx.cancel.is_cancelled() {
                kill_group(pgid, &mut child);
                let _ = reader.join();
                return Err(StageError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = reader.join();
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(StageError::Failed(format!(
                "{TORCH_EXE} {how}\n--- last lines of {} ---\n{}",
                ctx.log.path().display(),
                ctx.log.tail(ERROR_TAIL_LINES)
            )));
        }
        let reported = metrics.lock().ok().and_then(|mut m| m.take());
        reported.ok_or_else(|| {
            StageError::Failed(format!(
                "{TORCH_EXE} finished without reporting metrics (see {})",
                ctx.log.path().display()
            ))
        })
    }
}

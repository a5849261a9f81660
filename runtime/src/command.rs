//! `kind: command` — a user's own step (a script, a converter, a scorer), cached like any other.
//!
//! Runs `sh -c "<run>"` in the manifest's directory with
//! - `BINARYLM_OUT`: the directory to write the artifact into (starts empty);
//! - `BINARYLM_INPUT_<NAME>`: the artifact directory of each declared input (read-only), NAME
//!   being the stage name upper-cased with `-` turned into `_`;
//! - `BINARYLM_SEED`, `BINARYLM_THREADS` (also as `OMP_NUM_THREADS`), `BINARYLM_STAGE`;
//! - the stage's own `env:`.
//!
//! stdout and stderr go to the stage log. A non-zero exit fails the stage with the log's tail.
//!
//! Metrics: if the command writes `$BINARYLM_OUT/metrics.json` — a flat JSON object of numbers —
//! those become the stage's metrics (shown by `run`, `show`, `status` and kept in the
//! lockfile). The headline metric is the key named by `"headline"` in that object when
//! present, else the first key in alphabetical order.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::context::StageContext;
use crate::error::StageError;
use crate::kind::{StageKind, StageMetrics};

pub struct CommandKind;

/// Lines of the log quoted in the error when a command fails.
const ERROR_TAIL_LINES: usize = 20;

/// Environment variable that carries the artifact path of input stage `name`.
pub fn input_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("BINARYLM_INPUT_{upper}")
}

impl StageKind for CommandKind {
    fn name(&self) -> &'static str {
        "command"
    }

    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError> {
        let params = ctx.params::<pipelines::CommandParams>()?;
        // A command is not resumable: whatever an interrupted attempt left is discarded.
        if ctx.resumed {
            clear_dir(&ctx.out_dir)?;
        }
        let stdout = ctx
            .log
            .try_clone_file()
            .map_err(|e| StageError::io("opening the stage log", e))?;
        let stderr = ctx
            .log
            .try_clone_file()
            .map_err(|e| StageError::io("opening the stage log", e))?;
        ctx.log.line(&format!("$ {}", params.run));

        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&params.run)
            .current_dir(&ctx.manifest.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .env("BINARYLM_OUT", &ctx.out_dir)
            .env("BINARYLM_STAGE", &ctx.stage.name)
            .env("BINARYLM_SEED", ctx.seed.to_string())
            .env("BINARYLM_THREADS", ctx.threads.to_string())
            .env("OMP_NUM_THREADS", ctx.threads.to_string());
        for (name, path) in &ctx.inputs {
            cmd.env(input_var(name), path);
        }
        for (k, v) in &params.env {
            cmd.env(k, v);
        }
        own_group_dies_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| StageError::io("starting `sh -c` for the command", e))?;
        let pgid = child.id() as i32;

        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if status.success() {
                        return read_metrics(&ctx.out_dir.join(METRICS_FILE));
                    }
                    let how = match status.code() {
                        Some(code) => format!("exited with status {code}"),
                        None => "was killed by a signal".to_string(),
                    };
                    return Err(StageError::Failed(format!(
                        "command {how}\n--- last lines of {} ---\n{}",
                        ctx.log.path().display(),
                        ctx.log.tail(ERROR_TAIL_LINES)
                    )));
                }
                Ok(None) => {}
                Err(e) => return Err(StageError::io("waiting for the command", e)),
            }
            if ctx.cancel.is_cancelled() {
                kill_group(pgid, &mut child);
                return Err(StageError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// File in the output directory whose numbers become the stage's metrics.
pub const METRICS_FILE: &str = "metrics.json";

fn read_metrics(path: &std::path::Path) -> Result<StageMetrics, StageError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StageMetrics::default()),
        Err(e) => return Err(StageError::io(format!("reading {}", path.display()), e)),
    };
    parse_metrics(&text).map_err(|why| {
        StageError::Failed(format!(
            "{}: {why} (expected a flat JSON object of numbers, e.g. {{\"accuracy\": 0.91}})",
            path.display()
        ))
    })
}

fn parse_metrics(text: &str) -> Result<StageMetrics, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("not a JSON object".to_string());
    };
    let mut out = StageMetrics::default();
    let mut headline = None;
    for (k, v) in map {
        match v {
            serde_json::Value::Number(n) => {
                let x = n.as_f64().ok_or_else(|| format!("`{k}` is out of range"))?;
                out.metrics.insert(k, x);
            }
            serde_json::Value::String(s) if k == "headline" => headline = Some(s),
            other => return Err(format!("`{k}` is {other}, not a number")),
        }
    }
    if let Some(h) = &headline {
        if !out.metrics.contains_key(h) {
            return Err(format!("headline names `{h}`, which is not a metric"));
        }
    }
    out.headline = headline.or_else(|| out.metrics.keys().next().cloned());
    Ok(out)
}

/// Puts the child in its own process group, so cancelling kills its whole tree (a shell and its
/// children), and has the kernel kill it if binarylm itself dies (even by SIGKILL).
pub fn own_group_dies_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// SIGTERM to the group, a grace period, then SIGKILL; always reaps the child.
pub fn kill_group(pgid: i32, child: &mut std::process::Child) {
    // SAFETY: plain syscall on a process group we created.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    for _ in 0..50 {
        if let Ok(Some(_)) = child.try_wait() {
            // The shell is gone; make sure stragglers in its group are too.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

fn clear_dir(dir: &std::path::Path) -> Result<(), StageError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| StageError::io(format!("clearing {}", dir.display()), e))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| StageError::io(format!("creating {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::input_var;

    #[test]
    fn metrics_file_is_a_flat_object_of_numbers() {
        let m = super::parse_metrics(r#"{"loss": 2.5, "acc": 0.5, "headline": "loss"}"#).unwrap();
        assert_eq!(m.metrics.len(), 2);
        assert_eq!(m.headline.as_deref(), Some("loss"));
        let m = super::parse_metrics(r#"{"b": 1, "a": 2}"#).unwrap();
        assert_eq!(m.headline.as_deref(), Some("a"));
        assert!(super::parse_metrics(r#"{"a": "x"}"#).is_err());
        assert!(super::parse_metrics(r#"{"a": 1, "headline": "b"}"#).is_err());
        assert!(super::parse_metrics("[1]").is_err());
    }

    #[test]
    fn input_variable_names_are_shell_safe() {
        assert_eq!(input_var("corpus"), "BINARYLM_INPUT_CORPUS");
        assert_eq!(input_var("my-data_2"), "BINARYLM_INPUT_MY_DATA_2");
    }
}

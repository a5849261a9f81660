//! The model inspector's torch half runs in `binarylm-torch inspect <model dir>` (this crate,
//! like the `binarylm` binary, never links libtorch): one long-lived process per model
//! artifact, started on the first request for it, loaded once, asked one JSON line at a time.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::error::ApiError;

/// Model processes kept at once (the least recently started goes first).
const MAX_PROCESSES: usize = 4;

struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Process {
    fn start(dir: &Path) -> Result<Process, ApiError> {
        let exe = stages::kinds::torch_job::torch_exe().map_err(|e| {
            ApiError::internal(format!("the model inspector needs binarylm-torch: {e}"))
        })?;
        let mut child = Command::new(&exe)
            .arg("inspect")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ApiError::internal(format!("starting {}: {e}", exe.display())))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut ready = String::new();
        let read = stdout.read_line(&mut ready).unwrap_or(0);
        if read == 0 || !ready.contains("\"ready\"") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(ApiError::internal(format!(
                "the model inspector did not start: {}",
                err.trim()
            )));
        }
        Ok(Process {
            child,
            stdin,
            stdout,
        })
    }

    /// One answer line, as written.
    fn ask(&mut self, request: &Value) -> std::io::Result<String> {
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the model inspector exited",
            ));
        }
        Ok(line)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
pub struct Inspectors {
    /// By artifact digest, in start order.
    procs: Mutex<Vec<(String, Arc<Mutex<Process>>)>>,
}

impl Inspectors {
    /// Sends `request` to the inspector of the model stored at `dir` (object `digest`) and
    /// returns its answer's JSON text. An answer (`{"ok":…}`, as `binarylm-torch inspect` writes
    /// it) is passed on without being parsed and written again: it holds every attention
    /// probability of the prompt, megabytes for a long one.
    pub fn ask(&self, digest: &str, dir: &Path, request: &Value) -> Result<String, ApiError> {
        let process = self.process(digest, dir)?;
        let mut p = process.lock().unwrap_or_else(|e| e.into_inner());
        let line = p.ask(request).map_err(|e| {
            // A dead process is started again by the next request.
            self.forget(digest);
            ApiError::internal(format!("the model inspector failed: {e}"))
        })?;
        let line = line.trim_end();
        if let Some(ok) = line
            .strip_prefix(r#"{"ok":"#)
            .and_then(|r| r.strip_suffix('}'))
        {
            return Ok(ok.to_string());
        }
        match serde_json::from_str::<Value>(line) {
            Ok(answer) => match answer.get("error") {
                Some(Value::String(e)) => Err(ApiError::bad_request(e.clone())),
                _ => Err(ApiError::internal(format!(
                    "the model inspector answered {answer}"
                ))),
            },
            Err(e) => Err(ApiError::internal(format!(
                "the model inspector wrote a line that is not JSON ({e})"
            ))),
        }
    }

    fn process(&self, digest: &str, dir: &Path) -> Result<Arc<Mutex<Process>>, ApiError> {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = procs.iter().find(|(d, _)| d == digest) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(Mutex::new(Process::start(dir)?));
        if procs.len() >= MAX_PROCESSES {
            procs.remove(0);
        }
        procs.push((digest.to_string(), Arc::clone(&p)));
        Ok(p)
    }

    fn forget(&self, digest: &str) {
        let mut procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs.retain(|(d, _)| d != digest);
    }
}

//! What a running stage sees: its params, where to write, where its inputs are, a log, a
//! progress handle, a cancellation token and its share of the machine.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pipelines::{Manifest, Stage};
use tokio_util::sync::CancellationToken;

use crate::progress::Bar;

/// The stage's log file (`.binarylm/logs/<run>/<stage>.log`). Cloneable; lines from several
/// threads never interleave mid-line.
#[derive(Clone)]
pub struct StageLog {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl StageLog {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(path)?;
        Ok(StageLog {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line. Logging must never fail a stage, so write errors are ignored here
    /// (the stage's own output is what matters).
    pub fn line(&self, text: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{text}");
        }
    }

    /// A second handle on the same file, for a child process's stdout/stderr.
    pub fn try_clone_file(&self) -> std::io::Result<File> {
        let f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("log mutex poisoned"))?;
        f.try_clone()
    }

    /// The last `n` lines of the log, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        lines[start..].join("\n")
    }
}

/// Progress of one stage: a bar on a TTY, a few plain lines otherwise.
#[derive(Clone)]
pub struct StageProgress {
    bar: Bar,
}

impl StageProgress {
    pub(crate) fn new(bar: Bar) -> Self {
        StageProgress { bar }
    }

    /// Total units of work (steps, bytes, documents); switches the spinner to a bar.
    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    pub fn inc(&self, delta: u64) {
        self.bar.inc(delta);
    }

    /// Short status text shown after the bar (e.g. "loss 2.31").
    pub fn set_message(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }
}

/// Everything a [`crate::StageKind`] needs to run one stage.
pub struct StageContext<'a> {
    pub manifest: &'a Manifest,
    pub stage: &'a Stage,
    /// Where the artifact's files go. Empty at start unless `resumed`.
    pub out_dir: PathBuf,
    /// Scratch space that survives an interruption of this exact fingerprint (checkpoints).
    pub work_dir: PathBuf,
    /// True when `work_dir` was left by an interrupted run of the same fingerprint.
    pub resumed: bool,
    /// The workspace's shared cache (downloads by pin): outlives this stage and is shared by
    /// every stage and pipeline of the workspace. Create it when needed.
    pub cache_dir: PathBuf,
    /// Input stage name → path of that stage's artifact in the store (read-only).
    pub inputs: BTreeMap<String, PathBuf>,
    pub fingerprint: String,
    pub seed: u64,
    /// CPU threads this stage may use.
    pub threads: usize,
    pub log: StageLog,
    pub progress: StageProgress,
    pub cancel: CancellationToken,
}

impl StageContext<'_> {
    /// The stage's params as the struct of kind `K` (`ctx.params::<DataParams>()?`). Fails only
    /// when an implementation was registered under another kind's name.
    pub fn params<K: 'static>(&self) -> Result<&K, crate::StageError> {
        self.stage.params.get::<K>().ok_or_else(|| {
            crate::StageError::Failed(format!(
                "stage `{}` of kind `{}` was handed to the implementation of another kind",
                self.stage.name,
                self.stage.params.kind()
            ))
        })
    }
}

/// A stage in process reports through its context: phases and counts to its bar, lines to its
/// log, and cancellation from the run's token. Library code takes `&dyn Observer`, so the same
/// functions run under `binarylm-torch`, which implements it too.
impl common::observe::Observer for StageContext<'_> {
    fn phase(&self, text: &str) {
        self.progress.set_message(text);
    }

    fn progress(&self, done: u64, total: Option<u64>) {
        if let Some(total) = total {
            self.progress.set_length(total);
        }
        self.progress.set_position(done);
    }

    fn log(&self, line: &str) {
        self.log.line(line);
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

//! The workspace lock: one exclusive OS file lock on `<workspace>/lock`, held by every command
//! that opens the registry (sled must only be opened by one process at a time). The OS drops
//! the lock when the process dies, so a crash never leaves the workspace locked.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, RegistryError, Result};
use crate::layout::lock_path;

/// Exclusive hold on a workspace; released when dropped.
#[derive(Debug)]
pub struct WorkspaceLock {
    file: File,
    path: PathBuf,
}

impl WorkspaceLock {
    /// Lock `workspace_dir` (created if missing). When another process holds it, `on_wait` is
    /// called once (to tell the user why nothing happens) and then this blocks until it is free.
    pub fn acquire(workspace_dir: &Path, on_wait: impl FnOnce()) -> Result<WorkspaceLock> {
        fs::create_dir_all(workspace_dir).at("create workspace directory", workspace_dir)?;
        let path = lock_path(workspace_dir);
        // No truncation on open: the current holder's pid must stay readable while we wait.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("open lock file", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                file.lock().at("lock", &path)?;
            }
            Err(TryLockError::Error(e)) => return Err(RegistryError::io("lock", &path, e)),
        }
        let mut lock = WorkspaceLock { file, path };
        lock.write_pid()?;
        Ok(lock)
    }

    /// The pid recorded by the process holding (or that last held) the lock of `workspace_dir`,
    /// for a "waiting for process N" message. None when unknown.
    pub fn holder_pid(workspace_dir: &Path) -> Option<u32> {
        fs::read_to_string(lock_path(workspace_dir))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_pid(&mut self) -> Result<()> {
        let pid = std::process::id().to_string();
        self.file.set_len(0).at("truncate", &self.path)?;
        self.file.seek(SeekFrom::Start(0)).at("seek", &self.path)?;
        self.file
            .write_all(pid.as_bytes())
            .at("write", &self.path)?;
        self.file.flush().at("write", &self.path)
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        // Clear the pid so a later reader does not blame a finished process; the lock itself
        // is released when the file is closed right after.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn records_holder_pid_and_clears_it_on_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        let lock = WorkspaceLock::acquire(&ws, || panic!("nobody else holds it")).expect("lock");
        assert_eq!(WorkspaceLock::holder_pid(&ws), Some(std::process::id()));
        drop(lock);
        assert_eq!(WorkspaceLock::holder_pid(&ws), None);
    }

    #[test]
    fn second_acquire_waits_and_reports_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().to_path_buf();
        let first = WorkspaceLock::acquire(&ws, || panic!("first acquire must not wait"))
            .expect("first lock");

        let (tx, rx) = mpsc::channel::<&'static str>();
        let waiter = {
            let ws = ws.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let on_wait_tx = tx.clone();
                let lock = WorkspaceLock::acquire(&ws, move || {
                    on_wait_tx.send("waiting").expect("send");
                })
                .expect("second lock");
                tx.send("acquired").expect("send");
                drop(lock);
            })
        };

        // The waiter must announce that it waits before it can get the lock, and it cannot get
        // the lock while `first` is alive.
        assert_eq!(rx.recv().expect("recv"), "waiting");
        assert!(
            rx.try_recv().is_err(),
            "acquired while the first lock was held"
        );
        drop(first);
        assert_eq!(rx.recv().expect("recv"), "acquired");
        waiter.join().expect("join");
    }
}

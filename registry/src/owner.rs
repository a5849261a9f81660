//! Owner markers: a small file naming the process (pid and, on Linux, its start time) that is
//! using a staging directory or executing a run. They let `gc` leave the temp dirs of a live
//! process alone and let `mark_stale_runs_interrupted` tell a crashed run from a running one.
//! The start time guards against a recycled pid being taken for the original owner.

use std::fs;
use std::path::Path;

use crate::error::Result;
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub start_time: Option<u64>,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_time: process_start_time(pid),
        }
    }

    fn encode(&self) -> String {
        match self.start_time {
            Some(t) => format!("{} {t}\n", self.pid),
            None => format!("{}\n", self.pid),
        }
    }

    fn decode(text: &str) -> Option<Owner> {
        let mut parts = text.split_whitespace();
        let pid = parts.next()?.parse().ok()?;
        let start_time = parts.next().and_then(|t| t.parse().ok());
        Some(Owner { pid, start_time })
    }

    /// Whether this process still exists. Where that cannot be checked (no `/proc`), a
    /// foreign owner counts as alive: keeping a temp dir is safer than deleting live work.
    pub fn is_alive(&self) -> bool {
        if self.pid == std::process::id() {
            return self.start_time == process_start_time(self.pid);
        }
        if !Path::new("/proc/self").exists() {
            return true;
        }
        match process_start_time(self.pid) {
            None => false,
            Some(now) => self.start_time.is_none_or(|t| t == now),
        }
    }
}

pub(crate) fn write_owner(path: &Path) -> Result<()> {
    write_atomic(path, Owner::current().encode().as_bytes())
}

pub(crate) fn read_owner(path: &Path) -> Option<Owner> {
    fs::read_to_string(path)
        .ok()
        .as_deref()
        .and_then(Owner::decode)
}

/// Whether the marker at `path` names a live process; a missing or unreadable marker does not.
pub(crate) fn owner_alive(path: &Path) -> bool {
    read_owner(path).is_some_and(|o| o.is_alive())
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`), or None
/// when the process does not exist or the platform has no `/proc`.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); the start time is field 22.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.owner");
        write_owner(&path).expect("write owner");
        let owner = read_owner(&path).expect("read owner");
        assert_eq!(owner, Owner::current());
        assert!(owner_alive(&path));
        assert!(!owner_alive(&dir.path().join("missing.owner")));
    }

    #[test]
    fn a_recycled_pid_is_not_the_owner() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let me = Owner::current();
        let impostor = Owner {
            pid: me.pid,
            start_time: me.start_time.map(|t| t + 1),
        };
        assert!(!impostor.is_alive());
    }
}

//! Run records: `runs/<run_id>.json` plus the `runs` index. While a run executes, a marker
//! `runs/<run_id>.owner` names its process, so a run left `running` by a crash can be told
//! apart from one that is still going.

use crate::error::Result;
use crate::fsutil::remove_file_if_exists;
use crate::layout::check_run_id;
use crate::owner::owner_alive;
use crate::registry::Registry;
use crate::run_record::{RunRecord, RunStatus};

impl Registry {
    /// Record a run that starts now (status normally `Running`), owned by this process.
    pub fn begin_run(&self, run: &RunRecord) -> Result<()> {
        check_run_id(&run.id)?;
        self.files.claim_run(&run.id)?;
        self.save_run(run)
    }

    /// Overwrite a run's record with its final status and outcomes.
    pub fn finish_run(&self, run: &RunRecord) -> Result<()> {
        check_run_id(&run.id)?;
        self.save_run(run)?;
        if run.status != RunStatus::Running {
            remove_file_if_exists(&self.files.run_owner(&run.id))?;
        }
        Ok(())
    }

    /// Every recorded run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.index
            .runs()?
            .into_iter()
            .map(|entry| entry.value)
            .collect()
    }

    /// One run by id.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        check_run_id(id)?;
        self.index.run(id)
    }

    /// Runs still marked `running` whose process is gone (killed, crashed, machine rebooted)
    /// are set to `cancelled`; returns their ids. Call it while holding the workspace lock.
    pub fn mark_stale_runs_interrupted(&self) -> Result<Vec<String>> {
        let mut marked = Vec::new();
        for mut run in self.runs()? {
            if run.status != RunStatus::Running {
                continue;
            }
            let owner = self.files.run_owner(&run.id);
            if owner_alive(&owner) {
                continue;
            }
            run.status = RunStatus::Cancelled;
            self.save_run(&run)?;
            remove_file_if_exists(&owner)?;
            marked.push(run.id);
        }
        Ok(marked)
    }

    fn save_run(&self, run: &RunRecord) -> Result<()> {
        self.files.write_run(run)?;
        self.index.put_run(run)?;
        self.index.flush()
    }
}

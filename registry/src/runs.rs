//! Run records: `runs/<run_id>.json` plus the `runs` index. While a run executes, a marker
//! `runs/<run_id>.owner` names its process, so a run left `running` by a crash can be told
//! apart from one that is still going.

use crate::error::{RegistryError, Result};
use crate::fsutil::{remove_file_if_exists, write_json};
use crate::layout::check_run_id;
use crate::owner::{owner_alive, write_owner};
use crate::registry::{decode, encode, get_json, tree, Registry};
use crate::run_record::{RunRecord, RunStatus};

impl Registry {
    /// Record a run that starts now (status normally `Running`), owned by this process.
    pub fn begin_run(&self, run: &RunRecord) -> Result<()> {
        check_run_id(&run.id)?;
        write_owner(&self.layout.run_owner(&run.id))?;
        self.save_run(run)
    }

    /// Overwrite a run's record with its final status and outcomes.
    pub fn finish_run(&self, run: &RunRecord) -> Result<()> {
        check_run_id(&run.id)?;
        self.save_run(run)?;
        if run.status != RunStatus::Running {
            remove_file_if_exists(&self.layout.run_owner(&run.id))?;
        }
        Ok(())
    }

    /// Every recorded run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        // Run ids start with their UTC start time, so key order is start order.
        for item in self.runs.iter().rev() {
            let (key, value) = item.map_err(RegistryError::index("listing runs"))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            out.push(decode(tree::RUNS, &key, &value)?);
        }
        Ok(out)
    }

    /// One run by id.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        check_run_id(id)?;
        get_json(&self.runs, tree::RUNS, id)
    }

    /// Runs still marked `running` whose process is gone (killed, crashed, machine rebooted)
    /// are set to `cancelled`; returns their ids. Call it while holding the workspace lock.
    pub fn mark_stale_runs_interrupted(&self) -> Result<Vec<String>> {
        let mut marked = Vec::new();
        for mut run in self.runs()? {
            if run.status != RunStatus::Running {
                continue;
            }
            let owner = self.layout.run_owner(&run.id);
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
        write_json(&self.layout.run(&run.id), run, "run record")?;
        self.runs
            .insert(run.id.as_bytes(), encode(run, "run record")?)
            .map_err(RegistryError::index("recording a run"))?;
        self.flush()
    }
}

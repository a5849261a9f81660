//! Sharing the machine between stages that run at the same time.
//!
//! Three budgets, always acquired in the same order (job slot → GPU → CPU threads) so that two
//! stages can never each hold what the other waits for:
//! - `jobs`: how many stages run at once (`--jobs`);
//! - `gpu`: one GPU stage at a time (two training runs on one GPU thrash its memory);
//! - `threads`: the CPU thread budget, shared out; a stage asks for its `resources.threads`
//!   or, by default, an even share of the budget among the stages that can run at once.
//!
//! That default share is sized when the first stage is about to run, from how many of the
//! stages that will run can run side by side: cached stages take no threads, so a run that
//! re-executes one stage of a wide graph gives it the whole budget.

use std::sync::{Arc, OnceLock};

use pipelines::Resources;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Budget {
    jobs: Arc<Semaphore>,
    gpu: Arc<Semaphore>,
    threads: Arc<Semaphore>,
    total_threads: usize,
    /// Job slots (`--jobs`).
    slots: usize,
    /// Threads of a stage that does not ask for a number: set once, by [`Budget::size_once`].
    default_share: OnceLock<usize>,
}

/// Held while a stage runs; dropping it returns everything.
pub struct Grant {
    _job: OwnedSemaphorePermit,
    _gpu: Option<OwnedSemaphorePermit>,
    _threads: OwnedSemaphorePermit,
    pub threads: usize,
}

impl Budget {
    pub fn new(jobs: usize, total_threads: usize) -> Self {
        let jobs = jobs.max(1);
        let total_threads = total_threads.max(1);
        Budget {
            jobs: Arc::new(Semaphore::new(jobs)),
            gpu: Arc::new(Semaphore::new(1)),
            threads: Arc::new(Semaphore::new(total_threads)),
            total_threads,
            slots: jobs,
            default_share: OnceLock::new(),
        }
    }

    /// Sizes the default thread share, the first time it is called, for a run where at most
    /// `width()` stages can run at once: a chain of stages gives each one every thread rather
    /// than `threads / jobs`. Later calls (and their `width`) change nothing, so every stage of
    /// a run gets the same share.
    pub fn size_once(&self, width: impl FnOnce() -> usize) {
        self.default_share.get_or_init(|| self.even_share(width()));
    }

    /// The budget split evenly among `parallel` stages, as many as there are job slots at most.
    fn even_share(&self, parallel: usize) -> usize {
        (self.total_threads / parallel.clamp(1, self.slots)).max(1)
    }

    /// Threads a stage with these resources will get. Unsized, the default is an even share
    /// among the job slots.
    pub fn threads_for(&self, res: &Resources) -> usize {
        let share = self
            .default_share
            .get()
            .copied()
            .unwrap_or_else(|| self.even_share(self.slots));
        res.threads.unwrap_or(share).clamp(1, self.total_threads)
    }

    /// Waits until the stage may start. Returns `None` if the budget was closed (run cancelled).
    pub async fn acquire(&self, res: &Resources) -> Option<Grant> {
        let job = self.jobs.clone().acquire_owned().await.ok()?;
        let gpu = if res.gpu {
            Some(self.gpu.clone().acquire_owned().await.ok()?)
        } else {
            None
        };
        let n = self.threads_for(res);
        let threads = self
            .threads
            .clone()
            .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
            .await
            .ok()?;
        Some(Grant {
            _job: job,
            _gpu: gpu,
            _threads: threads,
            threads: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_share_splits_threads_between_jobs() {
        let b = Budget::new(2, 8);
        assert_eq!(b.threads_for(&Resources::default()), 4);
        let wants_many = Resources {
            gpu: false,
            threads: Some(64),
        };
        assert_eq!(b.threads_for(&wants_many), 8, "clamped to the budget");
    }

    #[test]
    fn a_chain_gives_each_stage_every_thread() {
        let chain = Budget::new(2, 8);
        chain.size_once(|| 1);
        assert_eq!(chain.threads_for(&Resources::default()), 8);
        chain.size_once(|| 5);
        assert_eq!(
            chain.threads_for(&Resources::default()),
            8,
            "sized once for the run"
        );
        let wide = Budget::new(2, 8);
        wide.size_once(|| 5);
        assert_eq!(wide.threads_for(&Resources::default()), 4);
    }

    #[tokio::test]
    async fn one_gpu_stage_at_a_time() {
        let b = Budget::new(4, 4);
        let gpu = Resources {
            gpu: true,
            threads: Some(1),
        };
        let first = b.acquire(&gpu).await.expect("first grant");
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), b.acquire(&gpu));
        assert!(second.await.is_err(), "second GPU stage must wait");
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), b.acquire(&gpu));
        assert!(third.await.expect("granted after release").is_some());
    }
}

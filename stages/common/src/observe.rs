//! What long work reports to and asks whether to stop: one interface for every stage kind,
//! whether it runs inside `binarylm` (the runtime's `StageContext` implements it over the
//! stage's bar, log and cancellation token) or in `binarylm-torch` (which turns it into JSON
//! events the parent reads). Library code written against it runs unchanged in either place,
//! and in tests with [`Quiet`].

/// A sink for progress, log lines, and the question "should I stop?".
///
/// Methods take `&self` so one observer can be shared by the threads of a parallel phase
/// (with `dyn Observer + Sync`); implementations use interior mutability where they keep state.
pub trait Observer {
    /// What the work is doing now ("tokenizing train", "loss 2.31"); shown beside the bar.
    fn phase(&self, text: &str);

    /// `done` units of work (steps, documents, bytes) out of `total`, when the total is known.
    fn progress(&self, done: u64, total: Option<u64>);

    /// One line for the stage's log.
    fn log(&self, line: &str);

    /// Polled between units of work: `true` once the work should stop where it is (Ctrl-C, a
    /// failed sibling stage). Work that checkpoints stops as a kill would, but cleanly.
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that shows nothing and never cancels (tests, tools, benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn phase(&self, _text: &str) {}
    fn progress(&self, _done: u64, _total: Option<u64>) {}
    fn log(&self, _line: &str) {}
}

/// [`Quiet`], except that it reports cancellation from the start (tests of the cancelled path).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlreadyCancelled;

impl Observer for AlreadyCancelled {
    fn phase(&self, _text: &str) {}
    fn progress(&self, _done: u64, _total: Option<u64>) {}
    fn log(&self, _line: &str) {}
    fn cancelled(&self) -> bool {
        true
    }
}

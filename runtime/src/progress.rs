//! One reporter for the whole run: a bar per running stage on a terminal, plain timestamped
//! lines when stderr is not a TTY (CI logs, pipes), and nothing at all in quiet mode.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// The process-wide bar area. Log output goes through [`LogWriter`], which hides the bars
/// while a line is written so they never tear.
fn multi() -> &'static MultiProgress {
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A `tracing_subscriber` writer that cooperates with the bars.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        multi().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber_writer::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Re-exported so the binary can name the trait without depending on the exact crate path.
pub mod tracing_subscriber_writer {
    pub use tracing_subscriber::fmt::MakeWriter;
}

#[derive(Clone)]
pub struct Reporter {
    mode: Mode,
    start: Instant,
}

impl Reporter {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Reporter::new(mode)
    }

    pub fn new(mode: Mode) -> Self {
        Reporter {
            mode,
            start: Instant::now(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A line of text that is not tied to a stage.
    pub fn say(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => multi().suspend(|| eprintln!("{text}")),
            Mode::Lines => eprintln!("[{:>7.1}s] {text}", self.start.elapsed().as_secs_f64()),
        }
    }

    /// A bar for a stage that is starting to run.
    pub(crate) fn stage_bar(&self, stage: &str) -> Bar {
        match self.mode {
            Mode::Bars => {
                let pb = multi().add(ProgressBar::new_spinner());
                pb.set_style(spinner_style());
                pb.set_prefix(stage.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                Bar {
                    inner: Arc::new(BarInner::Tty(pb)),
                }
            }
            Mode::Lines | Mode::Quiet => Bar {
                inner: Arc::new(BarInner::Plain(Mutex::new(PlainState {
                    stage: stage.to_string(),
                    reporter: self.clone(),
                    total: None,
                    pos: 0,
                    last_decile: 0,
                    message: None,
                    started: Instant::now(),
                }))),
            },
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {elapsed:>5} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner:.cyan} {prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {elapsed}<{eta} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

struct PlainState {
    stage: String,
    reporter: Reporter,
    total: Option<u64>,
    pos: u64,
    last_decile: u64,
    /// The stage's latest status text (e.g. a training loss), shown with each line.
    message: Option<String>,
    started: Instant,
}

impl PlainState {
    /// Plain mode prints at most one line per 10% so CI logs stay readable; each line carries
    /// the stage's latest message and, before the end, an estimate of the time left.
    fn maybe_report(&mut self) {
        let Some(total) = self.total.filter(|t| *t > 0) else {
            return;
        };
        let decile = (self.pos.min(total) * 10) / total;
        if decile > self.last_decile {
            self.last_decile = decile;
            let mut extra = self
                .message
                .as_deref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            let done = self.pos.min(total);
            if done > 0 && done < total {
                let left =
                    self.started.elapsed().as_secs_f64() * (total - done) as f64 / done as f64;
                extra.push_str(&format!(" (eta {})", eta(left)));
            }
            self.reporter.say(&format!(
                "  {} {}/{} ({}%){extra}",
                self.stage,
                self.pos,
                total,
                decile * 10
            ));
        }
    }
}

/// "42s", "3m05s", "1h02m": short enough for a progress line.
fn eta(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

enum BarInner {
    Tty(ProgressBar),
    Plain(Mutex<PlainState>),
}

#[derive(Clone)]
pub(crate) struct Bar {
    inner: Arc<BarInner>,
}

impl Bar {
    pub fn set_length(&self, total: u64) {
        match &*self.inner {
            BarInner::Tty(pb) => {
                pb.set_style(bar_style());
                pb.set_length(total);
            }
            BarInner::Plain(s) => {
                if let Ok(mut s) = s.lock() {
                    s.total = Some(total);
                }
            }
        }
    }

    pub fn set_position(&self, pos: u64) {
        match &*self.inner {
            BarInner::Tty(pb) => pb.set_position(pos),
            BarInner::Plain(s) => {
                if let Ok(mut s) = s.lock() {
                    s.pos = pos;
                    s.maybe_report();
                }
            }
        }
    }

    pub fn inc(&self, delta: u64) {
        match &*self.inner {
            BarInner::Tty(pb) => pb.inc(delta),
            BarInner::Plain(s) => {
                if let Ok(mut s) = s.lock() {
                    s.pos += delta;
                    s.maybe_report();
                }
            }
        }
    }

    pub fn set_message(&self, msg: String) {
        match &*self.inner {
            BarInner::Tty(pb) => pb.set_message(msg),
            BarInner::Plain(s) => {
                if let Ok(mut s) = s.lock() {
                    s.message = Some(msg);
                }
            }
        }
    }

    /// Removes the bar; the executor prints the stage's outcome line itself.
    pub fn finish(&self) {
        if let BarInner::Tty(pb) = &*self.inner {
            pb.finish_and_clear();
            multi().remove(pb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_short() {
        assert_eq!(eta(4.4), "4s");
        assert_eq!(eta(185.0), "3m05s");
        assert_eq!(eta(3720.0), "1h02m");
    }
}

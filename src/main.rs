//! The `binarylm` binary: parses arguments, calls the library crates, prints, and picks the
//! exit code. All real work lives in `pipelines`, `registry`, `runtime` and `stages`.

mod cli;
mod commands;
mod error;
mod logging;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `binarylm status | head` would panic on the closed pipe. Restore
    // the default, as command-line tools do: the process just ends when its reader goes away.
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; usage errors exit 2 (clap's own convention).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { error::EXIT_INPUT } else { 0 });
        }
    };
    logging::init(cli.global.verbose, cli.global.quiet);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let g = &cli.global;
    match &cli.command {
        Command::Run(args) => commands::run::run(args, g),
        Command::Plan(args) => commands::plan::plan(args, g),
        Command::Status(args) => commands::status::status(args, g),
        Command::Show(args) => commands::show::show(args, g),
        Command::Lineage(args) => commands::show::lineage(args, g),
        Command::Compare(args) => commands::compare::compare(args, g),
        Command::Gc(args) => commands::maintenance::gc(args, g),
        Command::Verify(args) => commands::maintenance::verify(args, g),
        Command::Schema => commands::schema::schema(),
        Command::Doctor => commands::doctor::doctor(g),
        Command::Push(args) => commands::transfer::push(args, g),
        Command::Pull(args) => commands::transfer::pull(args, g),
        Command::Remote(cmd) => commands::remote::remote(cmd, g),
        Command::Runs(args) => commands::runs::runs(args, g),
        Command::Diff(args) => commands::diff::diff(args, g),
        Command::Tokenize(args) => commands::tokenize::tokenize(args, g),
        Command::Generate(args) => commands::generate::generate(args, g),
        Command::Chat(args) => commands::generate::chat(args, g),
        Command::Serve(args) => commands::serve::serve(args, g),
        Command::Ui(args) => commands::ui::ui(args, g),
    }
}

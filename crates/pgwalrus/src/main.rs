//! pgwalrus command-line entry point: parse, dispatch, map the outcome to an exit code.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

use pgwalrus::cli::{Cli, Command};
use pgwalrus::exit::Exit;
use pgwalrus::failure::Report;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return if e.use_stderr() && pgwalrus::restore::invoked(std::env::args_os()) {
                // A restore_command that cannot run must stop recovery, not end it.
                Exit::AbortRecovery.into()
            } else if e.use_stderr() {
                Exit::Config.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    // The daemon's log format is in its configuration file (read again, and checked, by
    // the command itself).
    let json = match &cli.command {
        Command::Daemon(args) => pgwalrus::daemon::config::load(&args.config)
            .is_ok_and(|c| c.log_format == pgwalrus::daemon::config::LogFormat::Json),
        _ => false,
    };
    pgwalrus::logging::init(cli.verbose, cli.quiet, json);
    let outcome = match cli.command {
        Command::Check(args) => pgwalrus::check::run(&args),
        Command::Receive(args) => pgwalrus::receive::run(&args, cli.quiet),
        Command::Verify(args) => pgwalrus::verify::run(&args, cli.quiet),
        Command::Dump(args) => pgwalrus::dump::run(&args),
        Command::Restore(args) => pgwalrus::restore::run(&args),
        Command::Prune(args) => pgwalrus::prune::run(&args),
        Command::Daemon(args) => pgwalrus::daemon::run(&args.config, args.check),
        Command::Status(args) => pgwalrus::status::run(&args),
    };
    match outcome {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            // Reported once, here, in the form PostgreSQL's own tools use.
            let _ = match failure.report {
                Report::Error => writeln!(std::io::stderr().lock(), "pgwalrus: error: {failure}"),
                Report::Info => writeln!(std::io::stderr().lock(), "pgwalrus: {failure}"),
            };
            failure.exit.into()
        }
    }
}

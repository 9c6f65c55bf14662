//! `genlogs-auth`: seed, check and use a GenLogs token store from the shell (feature `cli`).
//!
//! A thin front end: parse the arguments, call the library, print. Secrets never come from
//! argv. Errors are one line on stderr, with what to do; exit codes are documented in `--help`.

mod args;
mod commands;
mod output;
mod rescue;
mod secrets;
mod store_url;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command};
use output::{paint, Colours, Paint};

/// Exit code: a failure, or `status` could not tell.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: new tokens are required (monitoring pages on it: nothing else may use it).
pub const EXIT_NEW_TOKENS: u8 = 2;
/// Exit code: the command line is wrong (`EX_USAGE` of sysexits.h), never 2.
pub const EXIT_USAGE: u8 = 64;

/// What a command printed and how it ends.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub code: u8,
    /// The only copy of new tokens, when stdout carries them (a raw refresh): if stdout cannot
    /// be written, they go to a rescue file instead of being lost.
    pub rescue: Option<genlogs_auth::StoredTokens>,
}

/// A command that failed: the line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// A failure described by `message` (configuration, input, I/O): exit 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_FAILURE,
        }
    }

    /// A command line that must be changed: exit 64.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    /// A library error, its whole chain on one line.
    pub fn from_error(error: &(dyn std::error::Error + 'static), code: u8) -> Self {
        Self {
            message: output::one_line(error),
            code,
        }
    }
}

fn init_tracing(colour: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = Targets::new().with_target("genlogs_auth", LevelFilter::DEBUG);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .with_filter(filter),
        )
        .init();
}

async fn run(cli: &Cli, colours: Colours) -> Result<Outcome, Failure> {
    let global = &cli.global;
    match &cli.command {
        Command::Init(args) => commands::init::run(global, args).await,
        Command::Status => commands::status::run(global, colours.stdout).await,
        Command::Token => commands::headers::token(global).await,
        Command::Headers(args) => commands::headers::headers(global, args).await,
        Command::Refresh(args) => commands::refresh::run(global, args).await,
        Command::KeepAlive(args) => commands::keep_alive::run(global, args).await,
        Command::Mock(args) => commands::mock::run(global, args).await,
    }
}

/// Parses argv. clap's own errors exit 2, which monitoring reads as "new tokens required":
/// here they exit 64; `--help` and `--version` still exit 0.
fn parse() -> Result<Cli, ExitCode> {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    match parsed {
        Ok((mut cli, matches)) => {
            cli.global.store_in_argv = args::given_in_argv(&matches, "store");
            Ok(cli)
        }
        Err(error) => {
            let _ = error.print();
            Err(if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let colours = Colours::detect();
    if cli.global.verbose {
        init_tracing(colours.stderr);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("genlogs-auth: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli, colours)) {
        Ok(outcome) => {
            let mut stdout = std::io::stdout();
            if let Err(e) = stdout
                .write_all(outcome.stdout.as_bytes())
                .and_then(|()| stdout.flush())
            {
                let cause = format!("stdout could not be written ({})", e.kind());
                let message = match &outcome.rescue {
                    Some(tokens) => rescue::failure(tokens, None, cause, EXIT_FAILURE).message,
                    None => cause,
                };
                let label = paint("error:", Paint::Red, colours.stderr);
                eprintln!("genlogs-auth: {label} {message}");
                return ExitCode::from(EXIT_FAILURE);
            }
            ExitCode::from(outcome.code)
        }
        Err(failure) => {
            let label = paint("error:", Paint::Red, colours.stderr);
            eprintln!("genlogs-auth: {label} {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

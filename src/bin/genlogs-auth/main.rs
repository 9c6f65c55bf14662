//! `genlogs-auth`: seed, check and use a GenLogs token store from the shell (feature `cli`).
//!
//! A thin front end: parse the arguments, call the library, print. Secrets never come from
//! argv. Errors are one line on stderr, with what to do; exit codes are documented in `--help`.
//!
//! # What it does, for its users
//!
//! `genlogs-auth` seeds a token store, checks it, and gets a valid `Access-Token` into a shell
//! script, with the library doing the work (`cargo install --path . --features cli`). **Secrets never
//! come from argv**, which every user sees in `ps` and which shell history keeps: the api key comes
//! from `GENLOGS_API_KEY` or `--api-key-file PATH` (refused unless only its owner can read it), tokens
//! from stdin. The store is `--store` or `GENLOGS_STORE`, the base URL `--base-url` or
//! `GENLOGS_BASE_URL`. Stores:
//!
//! | `GENLOGS_STORE` | store |
//! |---|---|
//! | `file:/path`, or a path | a token file |
//! | `redis://[[user]:password@]host:port[/db]` | one Redis server |
//! | `redis+sentinel://[[user]:password@]host:port[,host:port…]/SERVICE[/DB]` | the primary the sentinels name for `SERVICE` |
//! | `redis+cluster://[[user]:password@]host:port[,host:port…]` | a Redis Cluster, found from the nodes named |
//!
//! Each Redis form takes `rediss` for TLS (`rediss+sentinel://`, `rediss+cluster://`) and needs
//! `--features cli,redis`. The grant is named by `GENLOGS_STORE_NAME` (default `default`); the
//! tokens are encrypted with the 64-hex-digit key in `GENLOGS_STORE_KEY` when it is set; a save
//! counts once `GENLOGS_STORE_MIN_REPLICAS` replicas have it, when that is set (waiting up to
//! `GENLOGS_STORE_REPLICA_WAIT_MS`, default 1000); plain `redis://` to a host that is not loopback
//! only with `GENLOGS_STORE_ALLOW_PLAINTEXT=1`. A URL with a password only through
//! `GENLOGS_STORE`, never `--store`.
//!
//! | command | what it does |
//! |---|---|
//! | `init [--force]` | seeds the store from stdin: the JSON `POST /auth/token` returned, a token document, or a bare refresh token; refuses to replace tokens that may still be in use without `--force` |
//! | `status [--json]` | whether the tokens are usable, their expiries and time left, the persisted state (dead, possibly rotated), the last refresh; never a token; reads the store only |
//! | `token` | a valid access token on stdout, refreshed (and saved) through the manager if due |
//! | `headers [--format http\|curl\|json]` | `Access-Token` and `x-api-key`, as header lines (`curl -H @file`), a curl config (`curl -K file`) or JSON |
//! | `refresh` | refreshes the stored tokens now and saves them, in one process under the store's lock; prints their expiries, never a token |
//! | `refresh --stdin` | one raw refresh of the token on stdin; the new session as GenLogs-shaped JSON on stdout (the secrets are the point; nothing is stored) |
//! | `keep-alive [--margin SHARE]` | for cron: renews the grant only when less than that share (default 0.25) of the refresh token's lifetime is left, so an idle service keeps it; exits as `status` |
//! | `mock [--port P]` | the stand-in (`genlogs_auth::testing::MockGenLogs`) on 127.0.0.1, printing its base URL, api key and a seeded refresh token, for tests in any language |
//!
//! ```sh
//! export GENLOGS_API_KEY GENLOGS_STORE=/var/lib/myapp/genlogs-tokens.json
//! genlogs-auth init < first-tokens.json     # the POST /auth/token body, or a bare refresh token
//! genlogs-auth refresh                      # rotate now: refreshed and saved by one process
//! curl -K <(genlogs-auth headers --format curl) https://api.genlogs.io/carriers/recommendations
//! ```
//!
//! Prefer `genlogs-auth refresh` to `genlogs-auth refresh --stdin | genlogs-auth init`: in the pipe
//! the token is spent before `init` has saved its successor. The command never loses one, though:
//! when the store does not take tokens (`init` cannot open it, a save fails, live tokens and no
//! `--force`; a rotation by `token`, `headers` or `refresh` that still cannot be saved after a few
//! retries), it writes them to a **rescue file**, a new file of mode 0600 in the first directory that
//! takes it (beside a file store, `$XDG_STATE_HOME/genlogs-auth` or `~/.local/state/genlogs-auth`, the
//! current directory, the temporary directory), prints its path on stderr (never a token) and exits
//! with 1. Put them back with `genlogs-auth init --force < PATH` once the store works, then delete
//! the file.
//!
//! Exit codes, for monitoring: **0** success (`status`: usable), **2** new tokens are required
//! (create them with `POST /auth/token` and run `init --force`), **1** any other failure, `status`
//! could not tell (an unreadable store, a refresh whose outcome is pending), a refresh whose outcome
//! is unknown (retry later: the same token is sent again, and only a rejection then means new
//! tokens), or tokens kept in a rescue file; **64** a wrong command line (clap's usage errors, a
//! password in `--store`), never 2. Errors are one line on stderr ending with what to do; `--verbose`
//! adds the library's tracing events (never a token).
//! Colour only on a terminal, never with `NO_COLOR`. `genlogs-auth status`:
//!
//! ```text
//! store:          file:/var/lib/myapp/genlogs-tokens.json
//! status:         usable
//! state:          usable
//! access token:   expires 2026-11-26T10:29:59Z (in 29m 59s)
//! refresh token:  expires 2026-12-03T09:30:00Z (in 6d 23h)
//! last refresh:   2026-11-26T09:59:59Z (1s ago)
//! version:        1
//! ```
//!
//! `--json` gives the same as one object (`status`: `usable`, `new_tokens_required` or `unknown`;
//! `access_seconds_left`, `refresh_seconds_left`, …). The outputs of `--help` and `status` are golden
//! files under `tests/snapshots/cli/`.

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

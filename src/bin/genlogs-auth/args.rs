//! The command line, as clap reads it. Secrets have no flag on purpose: argv is visible to every
//! user in `ps` and lands in shell history, so the api key comes from `GENLOGS_API_KEY` or
//! `--api-key-file`, and tokens from stdin.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0   success (status: the tokens are usable)
  1   failure, or status could not tell (unreadable store, a refresh whose outcome is unknown:
      retry later), or tokens kept in a rescue file because the store could not take them
  2   new tokens are required: create them (POST /auth/token) and run `genlogs-auth init --force`
  64  the command line is wrong (an unknown option, a password in --store)

Secrets are never taken from the command line: the api key comes from GENLOGS_API_KEY or
--api-key-file (owner-only), tokens from stdin, a Redis password only from GENLOGS_STORE.

Redis stores (feature `redis`) read GENLOGS_STORE_NAME (the grant, default `default`),
GENLOGS_STORE_KEY (64 hex digits: encryption at rest), GENLOGS_STORE_MIN_REPLICAS and
GENLOGS_STORE_REPLICA_WAIT_MS (a save counts once that many replicas have it, waiting up to
that long, default 1000) and GENLOGS_STORE_ALLOW_PLAINTEXT=1 (plain redis:// to a remote host).";

/// Seed, check and use a GenLogs token store from the shell.
#[derive(Debug, Parser)]
#[command(name = "genlogs-auth", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The token store: `file:/path`, a path, `redis://…`, `redis+sentinel://…/SERVICE` or
    /// `redis+cluster://…` (`rediss…` for TLS; feature `redis`; a password only through
    /// GENLOGS_STORE)
    #[arg(long, env = "GENLOGS_STORE", hide_env_values = true, global = true)]
    pub store: Option<String>,

    /// Whether `--store` was on the command line (visible in `ps`), not from GENLOGS_STORE.
    #[arg(skip)]
    pub store_in_argv: bool,

    /// GenLogs' auth base URL
    #[arg(
        long,
        env = "GENLOGS_BASE_URL",
        hide_env_values = true,
        global = true,
        default_value = genlogs_auth::client::DEFAULT_BASE_URL
    )]
    pub base_url: String,

    /// Read the api key from this file, readable by its owner only (default: the GENLOGS_API_KEY
    /// environment variable)
    #[arg(long, value_name = "PATH", global = true)]
    pub api_key_file: Option<PathBuf>,

    /// Print JSON for tools instead of text for people
    #[arg(long, global = true)]
    pub json: bool,

    /// Show the library's tracing events on stderr (never a token)
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seed a store with tokens read from stdin
    #[command(after_help = "\
Reads one of these from stdin:
  - the JSON body that POST /auth/token returned (both tokens and their expiries)
  - a token document as stores keep it ({\"refresh_token\": …, …})
  - a bare refresh token

All of stdin is read and checked before the store is touched. If the store cannot be opened or
does not take the tokens (a failed save, or live tokens there and no --force), they are written
to a rescue file, so that a pipe into `init` never loses the only valid refresh token. It is a
new file of mode 0600 in the first of these directories where one can be created: beside a file
store, $XDG_STATE_HOME/genlogs-auth (default ~/.local/state/genlogs-auth), the current directory,
the temporary directory. Its path (never a token) is on stderr; once the store works, run
`genlogs-auth init --force < PATH` and delete the file.

Example:
  curl -sX POST \"https://api.genlogs.io/auth/token?email=$EMAIL&password=$PASSWORD\" \\
       -H @<(printf 'x-api-key: %s' \"$GENLOGS_API_KEY\") \\
    | genlogs-auth init --store /var/lib/myapp/genlogs-tokens.json")]
    Init(InitArgs),

    /// Whether a store's tokens are usable, their expiries and state (never a token)
    #[command(after_help = "\
Reads the store only: nothing is sent to GenLogs and no api key is needed.
Exit codes, for monitoring: 0 usable, 2 new tokens required, 1 could not tell.

Example:
  genlogs-auth status --store /var/lib/myapp/genlogs-tokens.json --json")]
    Status,

    /// Print a valid access token, refreshing (and saving) it if due
    #[command(after_help = "\
A refresh whose new tokens the store does not take is saved again a few times, then the tokens
go to a rescue file (see `genlogs-auth init --help`) and the command exits 1.

Example:
  export GENLOGS_API_KEY GENLOGS_STORE=/var/lib/myapp/genlogs-tokens.json
  curl -H \"Access-Token: $(genlogs-auth token)\" -H @<(printf 'x-api-key: %s' \"$GENLOGS_API_KEY\") \\
       https://api.genlogs.io/carriers/recommendations")]
    Token,

    /// Print both headers for a GenLogs call (Access-Token and x-api-key)
    #[command(after_help = "\
Refreshes like `token` (rescue file included).

Formats:
  http  header lines, for `curl -H @file`
  curl  a curl config file, for `curl -K file`
  json  {\"Access-Token\": …, \"x-api-key\": …}

Example (the secrets stay out of curl's argv):
  curl -K <(genlogs-auth headers --format curl) https://api.genlogs.io/carriers/recommendations")]
    Headers(HeadersArgs),

    /// Refresh the stored tokens now and save them (--stdin: a token read from stdin)
    #[command(after_help = "\
With a store (--store or GENLOGS_STORE): refreshes the stored refresh token now and saves the new
tokens under the store's lock, in this one process, then prints when they expire (never a
token). A save that keeps failing leaves the new tokens in a rescue file (see
`genlogs-auth init --help`).

With --stdin, or without a store: one raw refresh of the refresh token read from stdin. The new
session is printed on stdout in the shape of GenLogs' own response: the secrets are the point,
so send stdout somewhere safe. The token read is dead afterwards and nothing is stored; prefer
the store form to `refresh --stdin | init`.

A refresh whose outcome is unknown exits 1: retry later with the same token (a rejection then
exits 2).

Examples:
  genlogs-auth refresh --store /var/lib/myapp/genlogs-tokens.json
  genlogs-auth refresh --stdin < first-refresh-token.txt > session.json")]
    Refresh(RefreshArgs),

    /// Renew the grant if its refresh token is near its expiry (for cron); else do nothing
    #[command(after_help = "\
Renews (refreshes and saves, like `refresh`) only when less than --margin of the refresh token's
lifetime is left, so that a service idle for longer than a refresh token lives keeps its grant.
A refresh token whose issue time is unknown (seeded by `init` from POST /auth/token) is renewed
at the first run, which records it. Prints what it did and when (never a token).
Exit codes as `status`: 0 the grant is alive, 2 new tokens required, 1 failure (retry later).

Example (crontab: every hour):
  0 * * * *  GENLOGS_STORE=/var/lib/myapp/genlogs-tokens.json genlogs-auth keep-alive")]
    KeepAlive(KeepAliveArgs),

    /// Run a local GenLogs stand-in; prints its base URL, api key and a seeded refresh token
    #[command(after_help = "\
Rotating single-use refresh tokens, reuse detection revoking the token family, and a protected
endpoint checking Access-Token and x-api-key, on 127.0.0.1. Runs until interrupted.

Example:
  genlogs-auth mock --port 8765 > mock.env &
  sleep 1; . ./mock.env; genlogs-auth refresh <<< \"$GENLOGS_REFRESH_TOKEN\"")]
    Mock(MockArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace tokens that are still usable (otherwise refused)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Refresh the token read from stdin and print the new session (nothing is stored)
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Debug, Args)]
pub struct KeepAliveArgs {
    /// Renew when less than this share of the refresh token's lifetime is left (0 to 1;
    /// default 0.25)
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub margin: Option<f64>,
}

/// A share between 0 and 1 (a usage error otherwise: a margin of 25 would renew on every run).
fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!(
            "`{text}` is not a share between 0 and 1 (e.g. 0.25)"
        )),
    }
}

#[derive(Debug, Args)]
pub struct HeadersArgs {
    /// How to print the headers
    #[arg(long, value_enum, default_value_t = HeaderFormat::Http)]
    pub format: HeaderFormat,
}

/// How `headers` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeaderFormat {
    /// `Name: value` lines
    Http,
    /// A curl config file (`header = "Name: value"`)
    Curl,
    /// A JSON object
    Json,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// The loopback port (0: a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Access token lifetime, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub access_lifetime: u64,

    /// Refresh token lifetime, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 24 * 3600)]
    pub refresh_lifetime: u64,

    /// Reject a reused refresh token without revoking its family
    #[arg(long)]
    pub no_revoke_on_reuse: bool,
}

/// Whether the global argument `id` was given on the command line, in `matches` or in the
/// subcommand's (a global may follow the subcommand), rather than taken from its environment
/// variable: the two look alike once parsed.
pub fn given_in_argv(matches: &ArgMatches, id: &str) -> bool {
    let mut level = Some(matches);
    while let Some(current) = level {
        if current.value_source(id) == Some(ValueSource::CommandLine) {
            return true;
        }
        level = current.subcommand().map(|(_, sub)| sub);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn store_in_argv(argv: &[&str]) -> bool {
        let matches = Cli::command().try_get_matches_from(argv).unwrap();
        Cli::from_arg_matches(&matches).unwrap();
        given_in_argv(&matches, "store")
    }

    #[test]
    fn a_store_on_the_command_line_is_told_from_one_in_the_environment() {
        assert!(store_in_argv(&["genlogs-auth", "--store", "x", "status"]));
        assert!(store_in_argv(&["genlogs-auth", "status", "--store=x"]));
        assert!(!store_in_argv(&["genlogs-auth", "status"]));
    }
}

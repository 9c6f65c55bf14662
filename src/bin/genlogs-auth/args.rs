//! The command line, as clap reads it. Secrets have no flag on purpose: argv is visible to every
//! user in `ps` and lands in shell history, so the api key comes from `GENLOGS_API_KEY` or
//! `--api-key-file`, and tokens from stdin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (status: the tokens are usable)
  1  failure, or status could not tell (unreadable store, a refresh's outcome pending)
  2  new tokens are required: create them (POST /auth/token) and run `genlogs-auth init --force`

Secrets are never taken from the command line: the api key comes from GENLOGS_API_KEY or
--api-key-file, tokens from stdin.";

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
    /// The token store: `file:/path`, a path, or `redis://…`/`rediss://…` (feature `redis`)
    #[arg(long, env = "GENLOGS_STORE", hide_env_values = true, global = true)]
    pub store: Option<String>,

    /// GenLogs' auth base URL
    #[arg(
        long,
        env = "GENLOGS_BASE_URL",
        hide_env_values = true,
        global = true,
        default_value = genlogs_auth::DEFAULT_BASE_URL
    )]
    pub base_url: String,

    /// Read the api key from this file (default: the GENLOGS_API_KEY environment variable)
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
Example:
  export GENLOGS_API_KEY GENLOGS_STORE=/var/lib/myapp/genlogs-tokens.json
  curl -H \"Access-Token: $(genlogs-auth token)\" -H @<(printf 'x-api-key: %s' \"$GENLOGS_API_KEY\") \\
       https://api.genlogs.io/carriers/recommendations")]
    Token,

    /// Print both headers for a GenLogs call (Access-Token and x-api-key)
    #[command(after_help = "\
Formats:
  http  header lines, for `curl -H @file`
  curl  a curl config file, for `curl -K file`
  json  {\"Access-Token\": …, \"x-api-key\": …}

Example (the secrets stay out of curl's argv):
  curl -K <(genlogs-auth headers --format curl) https://api.genlogs.io/carriers/recommendations")]
    Headers(HeadersArgs),

    /// One raw refresh of a refresh token read from stdin; prints the new tokens as JSON
    #[command(after_help = "\
Prints the new session on stdout in the shape of GenLogs' own response: the secrets are the
point of this command, so send stdout somewhere safe. The refresh token read is dead afterwards.
Nothing is stored; pipe the output into `genlogs-auth init --force` to keep it.

Example:
  genlogs-auth refresh < old-refresh-token.txt | genlogs-auth init --force --store tokens.json")]
    Refresh,

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

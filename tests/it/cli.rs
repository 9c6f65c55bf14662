//! The `genlogs-auth` command, run as a real binary against the crate's GenLogs stand-in:
//! golden outputs for help and status, exit codes, and no secret on stdout/stderr (except where
//! printing it is the command's point) or in any argv.

#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    store::NewTokensReason, store::TokenState, AccessToken, FileStore, RefreshToken, StoredTokens,
    TokenStore,
};
use tokio::io::AsyncWriteExt;

use crate::support::leak::assert_no_leak;

const BIN: &str = env!("CARGO_BIN_EXE_genlogs-auth");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts that the command exited with `code`.
    #[track_caller]
    fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
    }

    /// Asserts that the command's stderr says `text`.
    #[track_caller]
    fn assert_stderr_has(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }
}

/// The command's world in a test: the stand-in it talks to, a scratch directory it runs in,
/// and the environment it gets (nothing else: secrets go through env and stdin only).
struct CliFixture {
    genlogs: MockGenLogs,
    scratch: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl CliFixture {
    /// A new stand-in and the environment a deployment would set: api key, base URL and a
    /// file store, no argv.
    async fn new() -> Self {
        Self::with(MockGenLogs::start().await)
    }

    /// The same, around `genlogs`.
    fn with(genlogs: MockGenLogs) -> Self {
        let env = vec![
            ("GENLOGS_API_KEY".into(), genlogs.api_key().into()),
            ("GENLOGS_BASE_URL".into(), genlogs.base_url()),
            ("GENLOGS_STORE".into(), "file:tokens.json".into()),
        ];
        Self {
            genlogs,
            scratch: crate::support::scratch(),
            env,
        }
    }

    /// The same with exactly `env` (none of the deployment's settings).
    async fn with_env(env: &[(&str, &str)]) -> Self {
        let mut cli = Self::new().await;
        cli.env = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        cli
    }

    fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Sets `name` to `value` for the runs from now on.
    fn set(&mut self, name: &str, value: &str) {
        self.unset(name);
        self.env.push((name.into(), value.into()));
    }

    fn unset(&mut self, name: &str) {
        self.env.retain(|(set, _)| set != name);
    }

    /// Every credential the stand-in ever issued, and its api key.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.genlogs.issued_tokens();
        secrets.push(self.genlogs.api_key().to_string());
        secrets
    }

    /// A new refresh token from the stand-in, as text.
    fn issue_refresh_token(&self) -> String {
        self.genlogs
            .issue_tokens()
            .refresh_token()
            .expose_secret()
            .to_string()
    }

    /// The file store at `tokens.json` in the scratch directory.
    fn store(&self) -> FileStore {
        FileStore::new(self.dir().join("tokens.json"))
    }

    /// What the file store holds (it must hold something).
    async fn stored(&self) -> StoredTokens {
        self.store().load().await.unwrap().unwrap()
    }

    /// Runs the binary in the scratch directory with only the fixture's environment set and
    /// `stdin` piped in. Asserts that no secret of the stand-in is in the argv it passes, and
    /// that no colour goes to a pipe.
    async fn run(&self, args: &[&str], stdin: &str) -> Run {
        for arg in args {
            for secret in self.secrets() {
                assert!(!arg.contains(secret.as_str()), "a secret in argv: {arg}");
            }
        }
        let mut child = tokio::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(self.dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert!(
            !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
            "colour on a pipe"
        );
        run
    }

    /// Asserts that no secret of the stand-in is in any of `runs`' stdout or stderr.
    #[track_caller]
    fn assert_no_leak_in(&self, runs: &[&Run]) {
        let secrets = self.secrets();
        for run in runs {
            assert_no_leak(&run.stdout, &secrets);
            assert_no_leak(&run.stderr, &secrets);
        }
    }
}

#[tokio::test]
async fn help_of_every_subcommand_matches_its_golden_file() {
    let cli = CliFixture::with_env(&[]).await;
    for command in [
        "",
        "init",
        "status",
        "token",
        "headers",
        "refresh",
        "keep-alive",
        "mock",
    ] {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let help = cli.run(&args, "").await;
        help.assert_exit(0);
        let name = if command.is_empty() { "main" } else { command };
        expectorate::assert_contents(format!("tests/snapshots/cli/help-{name}.txt"), &help.stdout);
        // No flag takes a secret.
        for flag in [
            "--api-key ",
            "--api-key=",
            "--token",
            "--refresh-token",
            "--password",
        ] {
            assert!(!help.stdout.contains(flag), "{name}: {flag}");
        }
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn status_human_and_json_match_golden_files_and_exit_codes() {
    let now = "2026-11-26T10:00:00Z";
    let cli =
        CliFixture::with_env(&[("GENLOGS_AUTH_NOW", now), ("GENLOGS_STORE", "tokens.json")]).await;
    let secrets = ["rt-status-s3cret", "at-status-s3cret"];
    let store = cli.store();

    let empty = cli.run(&["status"], "").await;
    empty.assert_exit(2);
    expectorate::assert_contents("tests/snapshots/cli/status-empty.txt", &empty.stdout);

    let usable = StoredTokens::from_refresh_token(RefreshToken::new(secrets[0]))
        .with_refresh_expires(Some(at("2026-12-03T09:30:00Z")))
        .with_access_token(
            AccessToken::new(secrets[1]),
            Some(at("2026-11-26T10:29:59Z")),
        )
        .with_refreshed_at(Some(at("2026-11-26T09:59:59Z")));
    store.replace(&usable).await.unwrap();
    let human = cli.run(&["status"], "").await;
    human.assert_exit(0);
    expectorate::assert_contents("tests/snapshots/cli/status-usable.txt", &human.stdout);
    let json = cli.run(&["status", "--json"], "").await;
    json.assert_exit(0);
    expectorate::assert_contents("tests/snapshots/cli/status-usable.json", &json.stdout);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["access_seconds_left"], 1799);

    let possibly = usable.clone().with_state(TokenState::PossiblyRotated {
        since: at("2026-11-26T09:58:00Z"),
        attempts: 1,
        last_attempt: at("2026-11-26T09:58:00Z"),
        deadline: None,
    });
    store.replace(&possibly).await.unwrap();
    let unknown = cli.run(&["status"], "").await;
    unknown.assert_exit(1);
    assert!(
        unknown.stdout.contains("could not tell"),
        "{}",
        unknown.stdout
    );

    let dead = usable.with_state(TokenState::Dead {
        reason: NewTokensReason::RefreshTokenRejected,
        since: at("2026-11-26T09:00:00Z"),
    });
    store.replace(&dead).await.unwrap();
    let dead = cli.run(&["status"], "").await;
    dead.assert_exit(2);
    expectorate::assert_contents("tests/snapshots/cli/status-dead.txt", &dead.stdout);

    for output in [&empty, &human, &json, &unknown, &dead] {
        assert_no_leak(&output.stdout, &secrets);
        assert_no_leak(&output.stderr, &secrets);
    }
}

#[tokio::test]
async fn a_status_that_cannot_read_the_store_exits_one_and_says_so_in_json() {
    let cli = CliFixture::with_env(&[("GENLOGS_STORE", "tokens.json")]).await;
    std::fs::write(cli.dir().join("tokens.json"), "not json").unwrap();
    std::fs::set_permissions(
        cli.dir().join("tokens.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let status = cli.run(&["status", "--json"], "").await;
    status.assert_exit(1);
    let parsed: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(parsed["status"], "unknown");
    status.assert_stderr_has("not a token document");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_token_and_headers_refresh_through_the_store() {
    let cli = CliFixture::new().await;
    let genlogs = &cli.genlogs;

    let init = cli.run(&["init"], &cli.issue_refresh_token()).await;
    init.assert_exit(0);
    assert_eq!(
        init.stdout,
        "saved new tokens in file:tokens.json (version 1)\n"
    );

    let token = cli.run(&["token"], "").await;
    token.assert_exit(0);
    let access = token.stdout.trim().to_string();
    assert!(genlogs.is_valid_access_token(&access));
    assert_eq!(genlogs.refreshes(), 1);
    let stored = cli.stored().await;
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));

    // Cached now: no second refresh, and every format carries both headers.
    for (format, expected) in [
        (
            "http",
            format!("Access-Token: {access}\nx-api-key: {}\n", genlogs.api_key()),
        ),
        (
            "curl",
            format!(
                "header = \"Access-Token: {access}\"\nheader = \"x-api-key: {}\"\n",
                genlogs.api_key()
            ),
        ),
        (
            "json",
            format!(
                "{{\"Access-Token\":\"{access}\",\"x-api-key\":\"{}\"}}\n",
                genlogs.api_key()
            ),
        ),
    ] {
        let headers = cli.run(&["headers", "--format", format], "").await;
        headers.assert_exit(0);
        assert_eq!(headers.stdout, expected);
        assert_no_leak(&headers.stderr, &cli.secrets());
    }
    assert_eq!(genlogs.refreshes(), 1);
    for output in [&init, &token] {
        assert_no_leak(&output.stderr, &cli.secrets());
    }
    assert_no_leak(&init.stdout, &cli.secrets());

    // The printed headers work against the protected endpoint.
    let answer = reqwest::Client::new()
        .get(genlogs.protected_url())
        .header("Access-Token", access)
        .header("x-api-key", genlogs.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_to_overwrite_live_tokens_without_force() {
    let cli = CliFixture::new().await;
    let first = cli
        .run(
            &["init", "--json"],
            &cli.genlogs.issue_token_body().to_string(),
        )
        .await;
    first.assert_exit(0);
    assert_eq!(
        first.stdout,
        "{\"store\":\"file:tokens.json\",\"version\":1}\n"
    );
    let stored = cli.stored().await;
    assert!(stored.access_token().is_some() && stored.refresh_expires().is_some());

    let other = cli.genlogs.issue_token_body().to_string();
    let refused = cli.run(&["init"], &other).await;
    refused.assert_exit(1);
    refused.assert_stderr_has("--force");
    assert_no_leak(&refused.stderr, &cli.secrets());

    let forced = cli.run(&["init", "--force"], &other).await;
    forced.assert_exit(0);
    assert!(forced.stdout.contains("version 2"), "{}", forced.stdout);

    let garbage = "{\"refresh_token_data\": {\"token\": 5}}";
    let bad = cli.run(&["init", "--force"], garbage).await;
    bad.assert_exit(1);
    bad.assert_stderr_has("refresh_token_data.token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_prints_the_session_and_a_rejection_exits_two_with_advice() {
    let cli = CliFixture::new().await;
    let genlogs = &cli.genlogs;
    let old = cli.issue_refresh_token();

    let refreshed = cli.run(&["refresh", "--stdin"], &old).await;
    refreshed.assert_exit(0);
    let session: serde_json::Value = serde_json::from_str(&refreshed.stdout).unwrap();
    let new = session["refresh_token_data"]["token"].as_str().unwrap();
    assert!(genlogs.is_valid_refresh_token(new));
    assert_eq!(session["user_id"], "user-42");

    // The output is what `init` reads.
    let init = cli.run(&["init"], &refreshed.stdout).await;
    init.assert_exit(0);

    let reused = cli.run(&["refresh", "--stdin"], &old).await;
    reused.assert_exit(2);
    reused.assert_stderr_has("create new tokens");
    assert_eq!(reused.stderr.lines().count(), 1, "{}", reused.stderr);
    assert!(reused.stdout.is_empty());
    assert_no_leak(&reused.stderr, &cli.secrets());
    assert_eq!(genlogs.reuses(), 1);

    // The reuse revoked the family, the stored refresh token included: with no access token
    // cached, `token` must refresh, is refused, and exits 2.
    let bare = cli.run(&["init", "--force"], new).await;
    bare.assert_exit(0);
    let token = cli.run(&["token", "--verbose"], "").await;
    token.assert_exit(2);
    token.assert_stderr_has("new GenLogs tokens must be created");
    assert!(
        token.stderr.contains("genlogs_auth"),
        "tracing events: {}",
        token.stderr
    );
    assert_no_leak(&token.stderr, &cli.secrets());
    let status = cli.run(&["status"], "").await;
    status.assert_exit(2);
}

#[tokio::test]
async fn configuration_errors_say_what_to_set() {
    let mut cli = CliFixture::with_env(&[("GENLOGS_STORE", "t.json")]).await;
    let no_key = cli.run(&["token"], "").await;
    no_key.assert_exit(1);
    no_key.assert_stderr_has("GENLOGS_API_KEY");
    no_key.assert_stderr_has("--api-key-file");

    cli.unset("GENLOGS_STORE");
    let no_store = cli.run(&["status"], "").await;
    no_store.assert_exit(1);
    no_store.assert_stderr_has("GENLOGS_STORE");

    cli.set("GENLOGS_STORE", "rediss://:pw-s3cret@cache:6380/0");
    let redis = cli.run(&["status"], "").await;
    redis.assert_exit(1);
    // Without the feature the command says it has no Redis store; with it, that this one cannot
    // be reached. Never the password.
    let expected = if cfg!(feature = "redis") {
        "the token store is unreachable"
    } else {
        "feature `redis`"
    };
    redis.assert_stderr_has(expected);
    assert_no_leak(&redis.stderr, &["pw-s3cret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_can_come_from_a_file() {
    let mut cli = CliFixture::new().await;
    cli.env.clear();
    let key = cli.dir().join("key");
    std::fs::write(&key, format!("{}\n", cli.genlogs.api_key())).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let old = cli.issue_refresh_token();
    let base = cli.genlogs.base_url();
    let args = [
        "refresh",
        "--api-key-file",
        "key",
        "--base-url",
        base.as_str(),
    ];
    let refreshed = cli.run(&args, &old).await;
    refreshed.assert_exit(0);
    assert_eq!(cli.genlogs.refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_serves_a_working_stand_in_and_prints_how_to_reach_it() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(BIN)
        .args(["mock", "--json"])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let printed: serde_json::Value = serde_json::from_str(&line).unwrap();
    let refresh = printed["tokens"]["refresh_token_data"]["token"]
        .as_str()
        .unwrap();
    let client = genlogs_auth::AuthClient::builder(printed["api_key"].as_str().unwrap())
        .with_base_url(printed["base_url"].as_str().unwrap())
        .build()
        .unwrap();
    let session = client.refresh(&RefreshToken::new(refresh)).await.unwrap();
    let reused = client
        .refresh(&RefreshToken::new(refresh))
        .await
        .unwrap_err();
    assert!(reused.is_token_rejected());
    // The secrets it printed were never in its argv.
    let pid = child.id().unwrap();
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv = String::from_utf8_lossy(&argv);
    assert!(!argv.contains(refresh) && !argv.contains(session.refresh_token.expose_secret()));
    child.kill().await.unwrap();
}

/// `init`, `token` and `status` on the store `url` (with `extra` settings), as a deployment
/// runs them: everything from the environment, no secret in any output. Returns the fixture,
/// for more checks.
#[cfg(feature = "redis")]
async fn init_token_and_status_on(url: &str, extra: &[(&str, &str)]) -> CliFixture {
    let mut cli = CliFixture::new().await;
    cli.set("GENLOGS_STORE", url);
    cli.set("GENLOGS_STORE_NAME", "cli-test");
    for (name, value) in extra {
        cli.set(name, value);
    }
    let init = cli.run(&["init"], &cli.issue_refresh_token()).await;
    init.assert_exit(0);
    let token = cli.run(&["token"], "").await;
    token.assert_exit(0);
    assert!(cli.genlogs.is_valid_access_token(token.stdout.trim()));
    let status = cli.run(&["status", "--json"], "").await;
    status.assert_exit(0);
    cli.assert_no_leak_in(&[&init, &status]);
    assert_no_leak(&token.stderr, &cli.secrets());
    assert_eq!(cli.genlogs.refreshes(), 1);
    cli
}

/// `host:port` of each Redis URL.
#[cfg(feature = "redis")]
fn hosts(urls: &[String]) -> String {
    let hosts: Vec<&str> = urls
        .iter()
        .map(|url| url.trim_start_matches("redis://").trim_end_matches('/'))
        .collect();
    hosts.join(",")
}

/// The same flow on a Redis store (`GENLOGS_STORE=redis://…`), encrypted at rest.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_and_token_work_on_a_redis_store() {
    let redis = crate::support::redis::RedisServer::start();
    let key = "11".repeat(32);
    let mut cli = init_token_and_status_on(&redis.url(), &[("GENLOGS_STORE_KEY", &key)]).await;
    // Without the key, the encrypted document cannot be read: status says it could not tell.
    cli.unset("GENLOGS_STORE_KEY");
    let status = cli.run(&["status"], "").await;
    status.assert_exit(1);
}

/// `redis+sentinel://sentinel,sentinel/SERVICE`: the primary the sentinels name, with the
/// durability setting applied (one replica has each save; two cannot, so `init` fails).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_and_token_work_on_a_sentinel_managed_primary_with_durable_saves() {
    use crate::support::sentinel::{SentinelSet, SERVICE};
    if let Some(why) = SentinelSet::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let sentinels = SentinelSet::start();
    let url = format!("redis+sentinel://{}/{SERVICE}", hosts(&sentinels.urls()));
    let durable = [("GENLOGS_STORE_MIN_REPLICAS", "1")];
    let mut cli = init_token_and_status_on(&url, &durable).await;
    let stored = crate::support::redis::redis_cli(&[
        "-p",
        &sentinels.primary_port().to_string(),
        "EXISTS",
        "{genlogs:cli-test}:tokens",
    ]);
    assert_eq!(String::from_utf8_lossy(&stored.stdout).trim(), "1");

    // Two replicas cannot have the save: `init --force` fails, and says why.
    cli.set("GENLOGS_STORE_MIN_REPLICAS", "2");
    cli.set("GENLOGS_STORE_REPLICA_WAIT_MS", "200");
    let refused = cli
        .run(&["init", "--force"], &cli.issue_refresh_token())
        .await;
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    refused.assert_stderr_has("replica");
    assert_no_leak(&refused.stderr, &cli.secrets());
}

/// `redis+cluster://node,node`: a Redis Cluster found from two of its nodes.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_and_token_work_on_a_redis_cluster() {
    let cluster = crate::support::redis::RedisCluster::start();
    let url = format!("redis+cluster://{}", hosts(&cluster.urls()[..2]));
    init_token_and_status_on(&url, &[]).await;
}

/// The rescue files in `dir`.
fn rescue_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with("genlogs-auth-rescue-"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Asserts that `dir` holds exactly one rescue file, owner-only, named in `stderr`, holding
/// `refresh`; returns its content.
fn assert_rescued(dir: &Path, stderr: &str, refresh: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let files = rescue_files(dir);
    assert_eq!(files.len(), 1, "{files:?}: {stderr}");
    let path = &files[0];
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("init --force"),
        "the path and what to do: {stderr}"
    );
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(path).unwrap();
    let rescued: StoredTokens = serde_json::from_str(&text).unwrap();
    assert_eq!(rescued.refresh_token().expose_secret(), refresh);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_keeps_the_tokens_in_a_rescue_file_when_the_store_cannot_be_opened() {
    let mut cli = CliFixture::new().await;
    let dir = cli.dir().to_path_buf();
    // The store's directory is a file: nothing can be locked or written there.
    std::fs::write(dir.join("sub"), "").unwrap();
    let state = dir.join("state");
    cli.env.clear();
    cli.set("GENLOGS_STORE", "sub/tokens.json");
    cli.set("XDG_STATE_HOME", &state.display().to_string());
    let body = cli.genlogs.issue_token_body();
    let refresh = body["refresh_token_data"]["token"].as_str().unwrap();
    let init = cli.run(&["init"], &body.to_string()).await;
    init.assert_exit(1);
    init.assert_stderr_has("sub/tokens.json");
    assert!(init.stdout.is_empty());
    assert_no_leak(&init.stderr, &cli.secrets());
    // Beside the store is impossible: the XDG state directory it is.
    let rescued = assert_rescued(&state.join("genlogs-auth"), &init.stderr, refresh);

    // Once there is a store, the rescue file seeds it.
    cli.env.clear();
    cli.set("GENLOGS_STORE", "tokens.json");
    let seeded = cli.run(&["init", "--force"], &rescued).await;
    seeded.assert_exit(0);
    let stored = cli.stored().await;
    assert_eq!(stored.refresh_token().expose_secret(), refresh);
    assert!(stored.access_token().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refused_without_force_keeps_the_tokens_in_a_rescue_file() {
    let cli = CliFixture::new().await;
    let first = cli.genlogs.issue_token_body().to_string();
    let init = cli.run(&["init"], &first).await;
    init.assert_exit(0);
    assert!(rescue_files(cli.dir()).is_empty());

    let other = cli.genlogs.issue_token_body();
    let other_refresh = other["refresh_token_data"]["token"].as_str().unwrap();
    let refused = cli.run(&["init"], &other.to_string()).await;
    refused.assert_exit(1);
    refused.assert_stderr_has("--force");
    assert_no_leak(&refused.stderr, &cli.secrets());
    assert!(refused.stdout.is_empty());
    // Beside the file store (here the current directory).
    assert_rescued(cli.dir(), &refused.stderr, other_refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_a_store_rotates_and_saves_in_one_process() {
    let mut cli = CliFixture::new().await;
    let genlogs = cli.genlogs.clone();
    let seeded = genlogs.issue_tokens();
    let init = cli
        .run(&["init"], &serde_json::to_string(&seeded).unwrap())
        .await;
    init.assert_exit(0);

    // The seeded access token is still valid: `refresh` rotates anyway, and saves.
    cli.unset("GENLOGS_STORE");
    let refreshed = cli.run(&["refresh", "--store", "tokens.json"], "").await;
    refreshed.assert_exit(0);
    assert!(
        refreshed
            .stdout
            .starts_with("refreshed the tokens in file:tokens.json (version 3);"),
        "{}",
        refreshed.stdout
    );
    assert_eq!(genlogs.refreshes(), 1);
    let stored = cli.stored().await;
    assert!(!stored.same_refresh_token(&seeded));
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
    assert_eq!(stored.state(), TokenState::Usable);
    cli.assert_no_leak_in(&[&refreshed]);

    // Once more, as JSON: one more rotation, the store follows.
    let again = cli
        .run(&["refresh", "--json", "--store", "tokens.json"], "")
        .await;
    again.assert_exit(0);
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["version"], 5);
    assert!(report["access_expires"].is_string() && report["refresh_expires"].is_string());
    assert_eq!(genlogs.refreshes(), 2);
    let newest = cli.stored().await;
    assert!(genlogs.is_valid_refresh_token(newest.refresh_token().expose_secret()));
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test]
async fn usage_errors_exit_64_never_2_and_help_exits_0() {
    let cli = CliFixture::with_env(&[]).await;
    for args in [
        &["--bogus"][..],
        &[][..],
        &["headers", "--format", "xml"][..],
        &["init", "--forse"][..],
    ] {
        let usage = cli.run(args, "").await;
        assert_eq!(usage.code, 64, "{args:?}: {}", usage.stderr);
        assert!(
            usage.stderr.contains("--help"),
            "{args:?}: {}",
            usage.stderr
        );
    }
    for args in [&["--version"][..], &["--help"][..], &["status", "-h"][..]] {
        let help = cli.run(args, "").await;
        assert_eq!(help.code, 0, "{args:?}: {}", help.stderr);
        assert!(!help.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_exits_1_with_advice_to_retry_not_2() {
    use genlogs_auth::testing::Fault;
    let cli = CliFixture::new().await;
    let genlogs = &cli.genlogs;

    // A raw refresh whose connection drops after GenLogs rotated the token.
    let old = cli.issue_refresh_token();
    genlogs.fail_next(1, Fault::Drop { rotate: true });
    let dropped = cli.run(&["refresh", "--stdin"], &old).await;
    dropped.assert_exit(1);
    dropped.assert_stderr_has("retry later");
    assert!(dropped.stdout.is_empty());
    assert_no_leak(&dropped.stderr, &cli.secrets());

    // Through the store: a 504 after the work was done leaves the token possibly rotated.
    let init = cli.run(&["init"], &cli.issue_refresh_token()).await;
    init.assert_exit(0);
    genlogs.fail_next(1, Fault::after_processing(Fault::gateway_timeout()));
    let token = cli.run(&["token"], "").await;
    token.assert_exit(1);
    token.assert_stderr_has("retry later");
    assert_no_leak(&token.stderr, &cli.secrets());
    let status = cli.run(&["status"], "").await;
    assert_eq!(status.code, 1, "could not tell: {}", status.stdout);
    assert!(
        status.stdout.contains("possibly rotated"),
        "{}",
        status.stdout
    );
}

#[tokio::test]
async fn a_password_in_store_argv_is_refused_but_accepted_from_genlogs_store() {
    let mut cli = CliFixture::with_env(&[]).await;
    let url = "redis://:pw-s3cret@127.0.0.1:1/0";
    let secrets = ["pw-s3cret"];
    for args in [
        vec!["status", "--store", url],
        vec!["--store", url, "status"],
        vec!["status", "--store=redis://:pw-s3cret@127.0.0.1:1/0"],
    ] {
        let refused = cli.run(&args, "").await;
        assert_eq!(refused.code, 64, "{args:?}: {}", refused.stderr);
        refused.assert_stderr_has("GENLOGS_STORE");
        assert_no_leak(&refused.stderr, &secrets);
    }
    // The same URL from the environment is used (here: nothing listens, so it cannot tell).
    cli.set("GENLOGS_STORE", url);
    let accepted = cli.run(&["status"], "").await;
    accepted.assert_exit(1);
    assert_no_leak(&accepted.stderr, &secrets);
    cli.env.clear();
    // A URL without a password is fine on the command line.
    let plain = cli
        .run(&["status", "--store", "redis://127.0.0.1:1/0"], "")
        .await;
    plain.assert_exit(1);

    // `init` refuses it too, after keeping the tokens it read.
    let init = cli.run(&["init", "--store", url], "rt-argv-s3cret").await;
    init.assert_exit(64);
    assert_no_leak(&init.stderr, &["pw-s3cret", "rt-argv-s3cret"]);
    assert_rescued(cli.dir(), &init.stderr, "rt-argv-s3cret");
}

#[tokio::test]
async fn a_group_readable_api_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cli = CliFixture::with_env(&[]).await;
    let key = cli.dir().join("key");
    std::fs::write(&key, "key-s3cret\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let args = ["token", "--api-key-file", "key", "--store", "tokens.json"];
    let refused = cli.run(&args, "").await;
    refused.assert_exit(1);
    assert!(
        refused.stderr.contains("mode 640") && refused.stderr.contains("chmod 600"),
        "{}",
        refused.stderr
    );
    assert_no_leak(&refused.stderr, &["key-s3cret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_the_store_does_not_take_is_retried_then_rescued() {
    use genlogs_auth::testing::{ExpiresFormat, Fault};
    let cli = CliFixture::new().await;
    let genlogs = &cli.genlogs;
    let dir = cli.dir();
    let init = cli.run(&["init"], &cli.issue_refresh_token()).await;
    init.assert_exit(0);

    // GenLogs answers after a pause; meanwhile the token file becomes a directory, which no
    // save can replace (permissions would not stop root).
    genlogs.fail_next(
        1,
        Fault::delayed(
            std::time::Duration::from_millis(1500),
            Fault::Expires(ExpiresFormat::GENLOGS),
        ),
    );
    let replace_the_file_mid_refresh = async {
        let started = std::time::Instant::now();
        while genlogs.refresh_requests() == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        std::fs::remove_file(dir.join("tokens.json")).unwrap();
        std::fs::create_dir(dir.join("tokens.json")).unwrap();
    };
    let (token, ()) = tokio::join!(cli.run(&["token"], ""), replace_the_file_mid_refresh);
    token.assert_exit(1);
    assert!(
        token.stdout.is_empty(),
        "no token printed: {}",
        token.stdout
    );
    assert_no_leak(&token.stderr, &cli.secrets());
    token.assert_stderr_has("4 attempts");
    assert_eq!(genlogs.refreshes(), 1);
    let rotated = genlogs
        .issued_tokens()
        .into_iter()
        .find(|t| genlogs.is_valid_refresh_token(t))
        .expect("the rotated refresh token");
    let rescued = assert_rescued(dir, &token.stderr, &rotated);

    // The store is fixed; the rescue file puts the grant back, and it works.
    std::fs::remove_dir(dir.join("tokens.json")).unwrap();
    let restored = cli.run(&["init", "--force"], &rescued).await;
    restored.assert_exit(0);
    let token = cli.run(&["token"], "").await;
    token.assert_exit(0);
    assert!(genlogs.is_valid_access_token(token.stdout.trim()));
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_renews_only_inside_the_margin_and_exits_like_status() {
    // Access tokens expire within the test: an expired access token is the normal state of an
    // idle grant, and no reason to rotate.
    let cli = CliFixture::with(
        MockGenLogs::builder()
            .with_access_lifetime(Duration::from_secs(1))
            .start()
            .await,
    );
    let genlogs = &cli.genlogs;
    let init = cli
        .run(&["init"], &genlogs.issue_token_body().to_string())
        .await;
    init.assert_exit(0);

    // Seeded from POST /auth/token: the refresh token's issue time is unknown, so the first run
    // renews (which records it).
    let first = cli.run(&["keep-alive"], "").await;
    first.assert_exit(0);
    assert!(
        first
            .stdout
            .starts_with("file:tokens.json: renewed; the refresh token now expires 20"),
        "{}",
        first.stdout
    );
    assert_eq!(genlogs.refreshes(), 1);

    // Just renewed, with 7 days to live: nothing to do, although the access token has expired.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = cli.run(&["--json", "keep-alive"], "").await;
    second.assert_exit(0);
    let report: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(report["action"], "not-due", "{report}");
    assert!(report["renew_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(genlogs.refreshes(), 1);

    // A margin of the whole lifetime: always due.
    let third = cli.run(&["keep-alive", "--margin", "1"], "").await;
    third.assert_exit(0);
    assert_eq!(genlogs.refreshes(), 2);
    let stored = cli.stored().await;
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));

    // A margin that is no share: a usage error, nothing sent.
    let wrong = cli.run(&["keep-alive", "--margin", "25"], "").await;
    wrong.assert_exit(64);
    assert_eq!(genlogs.refreshes(), 2);

    // A revoked grant: exit 2, as `status` would.
    genlogs.revoke_all();
    let dead = cli.run(&["keep-alive", "--margin", "1"], "").await;
    dead.assert_exit(2);
    cli.assert_no_leak_in(&[&first, &second, &third, &dead]);
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_refresh_whose_stdout_fails_keeps_the_new_tokens_in_a_rescue_file() {
    let cli = CliFixture::new().await;
    let (genlogs, dir) = (&cli.genlogs, cli.dir());
    let sent = genlogs.issue_tokens().into_refresh_token();
    let base = genlogs.base_url();
    // stdout is /dev/full: every write fails (ENOSPC), as on a full disk or a closed pipe.
    let mut child = tokio::process::Command::new(BIN)
        .args(["refresh", "--stdin"])
        .env_clear()
        .envs([
            ("GENLOGS_API_KEY", genlogs.api_key()),
            ("GENLOGS_BASE_URL", base.as_str()),
            ("XDG_STATE_HOME", dir.to_str().unwrap()),
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(sent.expose_secret().as_bytes())
        .await
        .unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(genlogs.refreshes(), 1, "the token sent is spent");
    assert_no_leak(&stderr, &cli.secrets());
    let rescued = rescue_files(&dir.join("genlogs-auth"));
    assert_eq!(rescued.len(), 1, "{stderr}");
    let kept: StoredTokens =
        serde_json::from_str(&std::fs::read_to_string(&rescued[0]).unwrap()).unwrap();
    assert!(genlogs.is_valid_refresh_token(kept.refresh_token().expose_secret()));
    assert!(stderr.contains(rescued[0].to_str().unwrap()), "{stderr}");
}

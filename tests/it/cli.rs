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

/// Runs the binary with only `env` set and `stdin` piped in. Secrets go through env and stdin
/// only: this asserts that none of `secrets` is in the argv it passes.
async fn run(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
    secrets: &[String],
) -> Run {
    for arg in args {
        for secret in secrets {
            assert!(!arg.contains(secret.as_str()), "a secret in argv: {arg}");
        }
    }
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
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

/// Every credential the stand-in ever issued, and its api key.
fn secrets_of(genlogs: &MockGenLogs) -> Vec<String> {
    let mut secrets = genlogs.issued_tokens();
    secrets.push(genlogs.api_key().to_string());
    secrets
}

/// The environment a deployment would set: api key, base URL and store, no argv.
fn env_for<'a>(genlogs_url: &'a str, key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GENLOGS_API_KEY", key),
        ("GENLOGS_BASE_URL", genlogs_url),
        ("GENLOGS_STORE", "file:tokens.json"),
    ]
}

#[tokio::test]
async fn help_of_every_subcommand_matches_its_golden_file() {
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
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
        let help = run(&dir, &args, &[], "", &[]).await;
        assert_eq!(help.code, 0, "{}", help.stderr);
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
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let now = "2026-11-26T10:00:00Z";
    let env = [("GENLOGS_AUTH_NOW", now), ("GENLOGS_STORE", "tokens.json")];
    let secrets = vec![
        "rt-status-s3cret".to_string(),
        "at-status-s3cret".to_string(),
    ];
    let store = FileStore::new(dir.join("tokens.json"));

    let empty = run(&dir, &["status"], &env, "", &secrets).await;
    assert_eq!(empty.code, 2);
    expectorate::assert_contents("tests/snapshots/cli/status-empty.txt", &empty.stdout);

    let usable = StoredTokens {
        refresh_token: RefreshToken::new(secrets[0].clone()),
        refresh_expires: Some(at("2026-12-03T09:30:00Z")),
        access_token: Some(AccessToken::new(secrets[1].clone())),
        access_expires: Some(at("2026-11-26T10:29:59Z")),
        state: TokenState::Usable,
        refreshed_at: Some(at("2026-11-26T09:59:59Z")),
        version: 0,
        lineage: Default::default(),
    };
    store.replace(&usable).await.unwrap();
    let human = run(&dir, &["status"], &env, "", &secrets).await;
    assert_eq!(human.code, 0, "{}", human.stderr);
    expectorate::assert_contents("tests/snapshots/cli/status-usable.txt", &human.stdout);
    let json = run(&dir, &["status", "--json"], &env, "", &secrets).await;
    assert_eq!(json.code, 0);
    expectorate::assert_contents("tests/snapshots/cli/status-usable.json", &json.stdout);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["access_seconds_left"], 1799);

    let possibly = StoredTokens {
        state: TokenState::PossiblyRotated {
            since: at("2026-11-26T09:58:00Z"),
            attempts: 1,
            last_attempt: at("2026-11-26T09:58:00Z"),
            deadline: None,
        },
        ..usable.clone()
    };
    store.replace(&possibly).await.unwrap();
    let unknown = run(&dir, &["status"], &env, "", &secrets).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stdout.contains("could not tell"),
        "{}",
        unknown.stdout
    );

    let dead = StoredTokens {
        state: TokenState::Dead {
            reason: NewTokensReason::RefreshTokenRejected,
            since: at("2026-11-26T09:00:00Z"),
        },
        ..usable
    };
    store.replace(&dead).await.unwrap();
    let dead = run(&dir, &["status"], &env, "", &secrets).await;
    assert_eq!(dead.code, 2);
    expectorate::assert_contents("tests/snapshots/cli/status-dead.txt", &dead.stdout);

    for output in [&empty, &human, &json, &unknown, &dead] {
        assert_no_leak(&output.stdout, &secrets);
        assert_no_leak(&output.stderr, &secrets);
    }
}

#[tokio::test]
async fn a_status_that_cannot_read_the_store_exits_one_and_says_so_in_json() {
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    std::fs::write(dir.join("tokens.json"), "not json").unwrap();
    std::fs::set_permissions(
        dir.join("tokens.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let env = [("GENLOGS_STORE", "tokens.json")];
    let status = run(&dir, &["status", "--json"], &env, "", &[]).await;
    assert_eq!(status.code, 1);
    let parsed: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(parsed["status"], "unknown");
    assert!(
        status.stderr.contains("not a token document"),
        "{}",
        status.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_token_and_headers_refresh_through_the_store() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());
    let seeded = genlogs.issue_tokens();
    let seeded_refresh = seeded.refresh_token.expose_secret().to_string();

    let init = run(
        &dir,
        &["init"],
        &env,
        &seeded_refresh,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert_eq!(
        init.stdout,
        "saved new tokens in file:tokens.json (version 1)\n"
    );

    let token = run(&dir, &["token"], &env, "", &secrets_of(&genlogs)).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    let access = token.stdout.trim().to_string();
    assert!(genlogs.is_valid_access_token(&access));
    assert_eq!(genlogs.refreshes(), 1);
    let stored = FileStore::new(dir.join("tokens.json"))
        .load()
        .await
        .unwrap()
        .unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token.expose_secret()));

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
        let headers = run(
            &dir,
            &["headers", "--format", format],
            &env,
            "",
            &secrets_of(&genlogs),
        )
        .await;
        assert_eq!(headers.code, 0, "{}", headers.stderr);
        assert_eq!(headers.stdout, expected);
        assert_no_leak(&headers.stderr, &secrets_of(&genlogs));
    }
    assert_eq!(genlogs.refreshes(), 1);
    for output in [&init, &token] {
        assert_no_leak(&output.stderr, &secrets_of(&genlogs));
    }
    assert_no_leak(&init.stdout, &secrets_of(&genlogs));

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
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());
    let body = genlogs.issue_token_body().to_string();
    let first = run(
        &dir,
        &["init", "--json"],
        &env,
        &body,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        first.stdout,
        "{\"store\":\"file:tokens.json\",\"version\":1}\n"
    );
    let stored = FileStore::new(dir.join("tokens.json"))
        .load()
        .await
        .unwrap()
        .unwrap();
    assert!(stored.access_token.is_some() && stored.refresh_expires.is_some());

    let other = genlogs.issue_token_body().to_string();
    let refused = run(&dir, &["init"], &env, &other, &secrets_of(&genlogs)).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_no_leak(&refused.stderr, &secrets_of(&genlogs));

    let forced = run(
        &dir,
        &["init", "--force"],
        &env,
        &other,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stdout.contains("version 2"), "{}", forced.stdout);

    let garbage = "{\"refresh_token_data\": {\"token\": 5}}";
    let bad = run(&dir, &["init", "--force"], &env, garbage, &[]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("refresh_token_data.token"),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_prints_the_session_and_a_rejection_exits_two_with_advice() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());
    let old = genlogs
        .issue_tokens()
        .refresh_token
        .expose_secret()
        .to_string();

    let refreshed = run(
        &dir,
        &["refresh", "--stdin"],
        &env,
        &old,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    let session: serde_json::Value = serde_json::from_str(&refreshed.stdout).unwrap();
    let new = session["refresh_token_data"]["token"].as_str().unwrap();
    assert!(genlogs.is_valid_refresh_token(new));
    assert_eq!(session["user_id"], "user-42");

    // The output is what `init` reads.
    let init = run(
        &dir,
        &["init"],
        &env,
        &refreshed.stdout,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);

    let reused = run(
        &dir,
        &["refresh", "--stdin"],
        &env,
        &old,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(reused.code, 2);
    assert!(
        reused.stderr.contains("create new tokens"),
        "{}",
        reused.stderr
    );
    assert_eq!(reused.stderr.lines().count(), 1, "{}", reused.stderr);
    assert!(reused.stdout.is_empty());
    assert_no_leak(&reused.stderr, &secrets_of(&genlogs));
    assert_eq!(genlogs.reuses(), 1);

    // The reuse revoked the family, the stored refresh token included: with no access token
    // cached, `token` must refresh, is refused, and exits 2.
    let bare = run(&dir, &["init", "--force"], &env, new, &secrets_of(&genlogs)).await;
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    let token = run(
        &dir,
        &["token", "--verbose"],
        &env,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(token.code, 2, "{}", token.stderr);
    assert!(
        token.stderr.contains("new GenLogs tokens must be created"),
        "{}",
        token.stderr
    );
    assert!(
        token.stderr.contains("genlogs_auth"),
        "tracing events: {}",
        token.stderr
    );
    assert_no_leak(&token.stderr, &secrets_of(&genlogs));
    let status = run(&dir, &["status"], &env, "", &[]).await;
    assert_eq!(status.code, 2, "{}", status.stdout);
}

#[tokio::test]
async fn configuration_errors_say_what_to_set() {
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let no_key = run(&dir, &["token"], &[("GENLOGS_STORE", "t.json")], "", &[]).await;
    assert_eq!(no_key.code, 1);
    assert!(
        no_key.stderr.contains("GENLOGS_API_KEY"),
        "{}",
        no_key.stderr
    );
    assert!(
        no_key.stderr.contains("--api-key-file"),
        "{}",
        no_key.stderr
    );

    let no_store = run(&dir, &["status"], &[], "", &[]).await;
    assert_eq!(no_store.code, 1);
    assert!(
        no_store.stderr.contains("GENLOGS_STORE"),
        "{}",
        no_store.stderr
    );

    let redis = run(
        &dir,
        &["status"],
        &[("GENLOGS_STORE", "rediss://:pw-s3cret@cache:6380/0")],
        "",
        &[],
    )
    .await;
    assert_eq!(redis.code, 1);
    // Without the feature the command says it has no Redis store; with it, that this one cannot
    // be reached. Never the password.
    let expected = if cfg!(feature = "redis") {
        "the token store is unreachable"
    } else {
        "feature `redis`"
    };
    assert!(redis.stderr.contains(expected), "{}", redis.stderr);
    assert_no_leak(&redis.stderr, &["pw-s3cret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_can_come_from_a_file() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    std::fs::write(dir.join("key"), format!("{}\n", genlogs.api_key())).unwrap();
    std::fs::set_permissions(
        dir.join("key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let old = genlogs
        .issue_tokens()
        .refresh_token
        .expose_secret()
        .to_string();
    let base = genlogs.base_url();
    let args = [
        "refresh",
        "--api-key-file",
        "key",
        "--base-url",
        base.as_str(),
    ];
    let refreshed = run(&dir, &args, &[], &old, &secrets_of(&genlogs)).await;
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    assert_eq!(genlogs.refreshes(), 1);
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
/// runs them: everything from the environment, no secret in any output. Returns the stand-in,
/// the scratch directory and the environment used, for more checks.
#[cfg(feature = "redis")]
async fn init_token_and_status_on(
    url: &str,
    extra: &[(&'static str, String)],
) -> (MockGenLogs, tempfile::TempDir, Vec<(&'static str, String)>) {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let mut env = vec![
        ("GENLOGS_API_KEY", genlogs.api_key().to_string()),
        ("GENLOGS_BASE_URL", genlogs.base_url()),
        ("GENLOGS_STORE", url.to_string()),
        ("GENLOGS_STORE_NAME", "cli-test".to_string()),
    ];
    env.extend(extra.iter().cloned());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let seeded = genlogs.issue_tokens();
    let secrets = secrets_of(&genlogs);
    let dir = scratch.path();
    let init = run(
        dir,
        &["init"],
        &pairs,
        seeded.refresh_token.expose_secret(),
        &secrets,
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    let token = run(dir, &["token"], &pairs, "", &secrets).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    assert!(genlogs.is_valid_access_token(token.stdout.trim()));
    let status = run(dir, &["status", "--json"], &pairs, "", &secrets).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let secrets = secrets_of(&genlogs);
    for output in [&init, &token, &status] {
        assert_no_leak(&output.stderr, &secrets);
    }
    assert_no_leak(&status.stdout, &secrets);
    assert_eq!(genlogs.refreshes(), 1);
    (genlogs, scratch, env)
}

/// The same flow on a Redis store (`GENLOGS_STORE=redis://…`), encrypted at rest.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_and_token_work_on_a_redis_store() {
    let redis = crate::support::redis::RedisServer::start();
    let key = "11".repeat(32);
    let (genlogs, scratch, env) =
        init_token_and_status_on(&redis.url(), &[("GENLOGS_STORE_KEY", key)]).await;
    // Without the key, the encrypted document cannot be read: status says it could not tell.
    let without_key: Vec<(&str, &str)> = env
        .iter()
        .filter(|(name, _)| *name != "GENLOGS_STORE_KEY")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let status = run(
        scratch.path(),
        &["status"],
        &without_key,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(status.code, 1, "{}", status.stdout);
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
    let hosts: Vec<String> = sentinels
        .urls()
        .iter()
        .map(|url| {
            url.trim_start_matches("redis://")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let url = format!("redis+sentinel://{}/{SERVICE}", hosts.join(","));
    let durable = [("GENLOGS_STORE_MIN_REPLICAS", "1".to_string())];
    let (genlogs, scratch, mut env) = init_token_and_status_on(&url, &durable).await;
    let stored = crate::support::redis::redis_cli(&[
        "-p",
        &sentinels.primary_port().to_string(),
        "EXISTS",
        "{genlogs:cli-test}:tokens",
    ]);
    assert_eq!(String::from_utf8_lossy(&stored.stdout).trim(), "1");

    // Two replicas cannot have the save: `init --force` fails, and says why.
    env.retain(|(name, _)| *name != "GENLOGS_STORE_MIN_REPLICAS");
    env.push(("GENLOGS_STORE_MIN_REPLICAS", "2".to_string()));
    env.push(("GENLOGS_STORE_REPLICA_WAIT_MS", "200".to_string()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let seeded = genlogs.issue_tokens();
    let refused = run(
        scratch.path(),
        &["init", "--force"],
        &pairs,
        seeded.refresh_token.expose_secret(),
        &secrets_of(&genlogs),
    )
    .await;
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(refused.stderr.contains("replica"), "{}", refused.stderr);
    assert_no_leak(&refused.stderr, &secrets_of(&genlogs));
}

/// `redis+cluster://node,node`: a Redis Cluster found from two of its nodes.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_status_and_token_work_on_a_redis_cluster() {
    let cluster = crate::support::redis::RedisCluster::start();
    let hosts: Vec<String> = cluster.urls()[..2]
        .iter()
        .map(|url| {
            url.trim_start_matches("redis://")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let url = format!("redis+cluster://{}", hosts.join(","));
    let (_genlogs, _scratch, _env) = init_token_and_status_on(&url, &[]).await;
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
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
    assert_eq!(rescued.refresh_token.expose_secret(), refresh);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_keeps_the_tokens_in_a_rescue_file_when_the_store_cannot_be_opened() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    // The store's directory is a file: nothing can be locked or written there.
    std::fs::write(dir.join("sub"), "").unwrap();
    let state = dir.join("state");
    let state_text = state.display().to_string();
    let body = genlogs.issue_token_body();
    let refresh = body["refresh_token_data"]["token"].as_str().unwrap();
    let env = [
        ("GENLOGS_STORE", "sub/tokens.json"),
        ("XDG_STATE_HOME", state_text.as_str()),
    ];
    let secrets = secrets_of(&genlogs);
    let init = run(&dir, &["init"], &env, &body.to_string(), &secrets).await;
    assert_eq!(init.code, 1, "{}", init.stderr);
    assert!(init.stderr.contains("sub/tokens.json"), "{}", init.stderr);
    assert!(init.stdout.is_empty());
    assert_no_leak(&init.stderr, &secrets);
    // Beside the store is impossible: the XDG state directory it is.
    let rescued = assert_rescued(&state.join("genlogs-auth"), &init.stderr, refresh);

    // Once there is a store, the rescue file seeds it.
    let env = [("GENLOGS_STORE", "tokens.json")];
    let seeded = run(&dir, &["init", "--force"], &env, &rescued, &secrets).await;
    assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    let stored = FileStore::new(dir.join("tokens.json"))
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token.expose_secret(), refresh);
    assert!(stored.access_token.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refused_without_force_keeps_the_tokens_in_a_rescue_file() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());
    let first = genlogs.issue_token_body().to_string();
    let init = run(&dir, &["init"], &env, &first, &secrets_of(&genlogs)).await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(rescue_files(&dir).is_empty());

    let other = genlogs.issue_token_body();
    let other_refresh = other["refresh_token_data"]["token"].as_str().unwrap();
    let refused = run(
        &dir,
        &["init"],
        &env,
        &other.to_string(),
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_no_leak(&refused.stderr, &secrets_of(&genlogs));
    assert!(refused.stdout.is_empty());
    // Beside the file store (here the current directory).
    assert_rescued(&dir, &refused.stderr, other_refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_a_store_rotates_and_saves_in_one_process() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let seeded = genlogs.issue_tokens();
    let secrets = secrets_of(&genlogs);
    let env = env_for(&base, genlogs.api_key());
    let init = run(
        &dir,
        &["init"],
        &env,
        &serde_json::to_string(&seeded).unwrap(),
        &secrets,
    )
    .await;
    assert_eq!(init.code, 0, "{}", init.stderr);

    // The seeded access token is still valid: `refresh` rotates anyway, and saves.
    let env = [
        ("GENLOGS_API_KEY", genlogs.api_key()),
        ("GENLOGS_BASE_URL", base.as_str()),
    ];
    let refreshed = run(
        &dir,
        &["refresh", "--store", "tokens.json"],
        &env,
        "",
        &secrets,
    )
    .await;
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    assert!(
        refreshed
            .stdout
            .starts_with("refreshed the tokens in file:tokens.json (version 3);"),
        "{}",
        refreshed.stdout
    );
    assert_eq!(genlogs.refreshes(), 1);
    let store = FileStore::new(dir.join("tokens.json"));
    let stored = store.load().await.unwrap().unwrap();
    assert!(!stored.same_refresh_token(&seeded));
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token.expose_secret()));
    assert_eq!(stored.state, TokenState::Usable);
    let secrets = secrets_of(&genlogs);
    assert_no_leak(&refreshed.stdout, &secrets);
    assert_no_leak(&refreshed.stderr, &secrets);

    // Once more, as JSON: one more rotation, the store follows.
    let again = run(
        &dir,
        &["refresh", "--json", "--store", "tokens.json"],
        &env,
        "",
        &secrets,
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["version"], 5);
    assert!(report["access_expires"].is_string() && report["refresh_expires"].is_string());
    assert_eq!(genlogs.refreshes(), 2);
    let newest = store.load().await.unwrap().unwrap();
    assert!(genlogs.is_valid_refresh_token(newest.refresh_token.expose_secret()));
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test]
async fn usage_errors_exit_64_never_2_and_help_exits_0() {
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    for args in [
        &["--bogus"][..],
        &[][..],
        &["headers", "--format", "xml"][..],
        &["init", "--forse"][..],
    ] {
        let usage = run(&dir, args, &[], "", &[]).await;
        assert_eq!(usage.code, 64, "{args:?}: {}", usage.stderr);
        assert!(
            usage.stderr.contains("--help"),
            "{args:?}: {}",
            usage.stderr
        );
    }
    for args in [&["--version"][..], &["--help"][..], &["status", "-h"][..]] {
        let help = run(&dir, args, &[], "", &[]).await;
        assert_eq!(help.code, 0, "{args:?}: {}", help.stderr);
        assert!(!help.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_exits_1_with_advice_to_retry_not_2() {
    use genlogs_auth::testing::Fault;
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());

    // A raw refresh whose connection drops after GenLogs rotated the token.
    let old = genlogs
        .issue_tokens()
        .refresh_token
        .expose_secret()
        .to_string();
    genlogs.fail_next(1, Fault::Drop { rotate: true });
    let dropped = run(
        &dir,
        &["refresh", "--stdin"],
        &env,
        &old,
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(dropped.code, 1, "{}", dropped.stderr);
    assert!(dropped.stderr.contains("retry later"), "{}", dropped.stderr);
    assert!(dropped.stdout.is_empty());
    assert_no_leak(&dropped.stderr, &secrets_of(&genlogs));

    // Through the store: a 504 after the work was done leaves the token possibly rotated.
    let seeded = genlogs
        .issue_tokens()
        .refresh_token
        .expose_secret()
        .to_string();
    let init = run(&dir, &["init"], &env, &seeded, &secrets_of(&genlogs)).await;
    assert_eq!(init.code, 0, "{}", init.stderr);
    genlogs.fail_next(1, Fault::after_processing(Fault::gateway_timeout()));
    let token = run(&dir, &["token"], &env, "", &secrets_of(&genlogs)).await;
    assert_eq!(token.code, 1, "{}", token.stderr);
    assert!(token.stderr.contains("retry later"), "{}", token.stderr);
    assert_no_leak(&token.stderr, &secrets_of(&genlogs));
    let status = run(&dir, &["status"], &env, "", &[]).await;
    assert_eq!(status.code, 1, "could not tell: {}", status.stdout);
    assert!(
        status.stdout.contains("possibly rotated"),
        "{}",
        status.stdout
    );
}

#[tokio::test]
async fn a_password_in_store_argv_is_refused_but_accepted_from_genlogs_store() {
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let url = "redis://:pw-s3cret@127.0.0.1:1/0";
    let secrets = ["pw-s3cret".to_string()];
    for args in [
        vec!["status", "--store", url],
        vec!["--store", url, "status"],
        vec!["status", "--store=redis://:pw-s3cret@127.0.0.1:1/0"],
    ] {
        let refused = run(&dir, &args, &[], "", &[]).await;
        assert_eq!(refused.code, 64, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("GENLOGS_STORE"),
            "{}",
            refused.stderr
        );
        assert_no_leak(&refused.stderr, &secrets);
    }
    // The same URL from the environment is used (here: nothing listens, so it cannot tell).
    let accepted = run(&dir, &["status"], &[("GENLOGS_STORE", url)], "", &[]).await;
    assert_eq!(accepted.code, 1, "{}", accepted.stderr);
    assert_no_leak(&accepted.stderr, &secrets);
    // A URL without a password is fine on the command line.
    let plain = run(
        &dir,
        &["status", "--store", "redis://127.0.0.1:1/0"],
        &[],
        "",
        &[],
    )
    .await;
    assert_eq!(plain.code, 1, "{}", plain.stderr);

    // `init` refuses it too, after keeping the tokens it read.
    let init = run(&dir, &["init", "--store", url], &[], "rt-argv-s3cret", &[]).await;
    assert_eq!(init.code, 64, "{}", init.stderr);
    assert_no_leak(&init.stderr, &["pw-s3cret", "rt-argv-s3cret"]);
    assert_rescued(&dir, &init.stderr, "rt-argv-s3cret");
}

#[tokio::test]
async fn a_group_readable_api_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    std::fs::write(dir.join("key"), "key-s3cret\n").unwrap();
    std::fs::set_permissions(dir.join("key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let args = ["token", "--api-key-file", "key", "--store", "tokens.json"];
    let refused = run(&dir, &args, &[], "", &[]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
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
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let seeded = genlogs
        .issue_tokens()
        .refresh_token
        .expose_secret()
        .to_string();
    let env: Vec<(String, String)> = env_for(&base, genlogs.api_key())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let init = run(&dir, &["init"], &refs(&env), &seeded, &secrets_of(&genlogs)).await;
    assert_eq!(init.code, 0, "{}", init.stderr);

    // GenLogs answers after a pause; meanwhile the token file becomes a directory, which no
    // save can replace (permissions would not stop root).
    genlogs.fail_next(
        1,
        Fault::delayed(
            std::time::Duration::from_millis(1500),
            Fault::Expires(ExpiresFormat::GENLOGS),
        ),
    );
    let token = {
        let (dir, env) = (dir.clone(), env.clone());
        tokio::spawn(async move { run(&dir, &["token"], &refs(&env), "", &[]).await })
    };
    let started = std::time::Instant::now();
    while genlogs.refresh_requests() == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    std::fs::remove_file(dir.join("tokens.json")).unwrap();
    std::fs::create_dir(dir.join("tokens.json")).unwrap();
    let token = token.await.unwrap();
    assert_eq!(token.code, 1, "{}", token.stderr);
    assert!(
        token.stdout.is_empty(),
        "no token printed: {}",
        token.stdout
    );
    let secrets = secrets_of(&genlogs);
    assert_no_leak(&token.stderr, &secrets);
    assert!(token.stderr.contains("4 attempts"), "{}", token.stderr);
    assert_eq!(genlogs.refreshes(), 1);
    let rotated = genlogs
        .issued_tokens()
        .into_iter()
        .find(|t| genlogs.is_valid_refresh_token(t))
        .expect("the rotated refresh token");
    let rescued = assert_rescued(&dir, &token.stderr, &rotated);

    // The store is fixed; the rescue file puts the grant back, and it works.
    std::fs::remove_dir(dir.join("tokens.json")).unwrap();
    let env = refs(&env);
    let restored = run(&dir, &["init", "--force"], &env, &rescued, &secrets).await;
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    let token = run(&dir, &["token"], &env, "", &secrets).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    assert!(genlogs.is_valid_access_token(token.stdout.trim()));
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_renews_only_inside_the_margin_and_exits_like_status() {
    // Access tokens expire within the test: an expired access token is the normal state of an
    // idle grant, and no reason to rotate.
    let genlogs = MockGenLogs::builder()
        .with_access_lifetime(Duration::from_secs(1))
        .start()
        .await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let base = genlogs.base_url();
    let env = env_for(&base, genlogs.api_key());
    let seeded = genlogs.issue_token_body().to_string();
    let init = run(&dir, &["init"], &env, &seeded, &secrets_of(&genlogs)).await;
    assert_eq!(init.code, 0, "{}", init.stderr);

    // Seeded from POST /auth/token: the refresh token's issue time is unknown, so the first run
    // renews (which records it).
    let first = run(&dir, &["keep-alive"], &env, "", &secrets_of(&genlogs)).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
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
    let second = run(
        &dir,
        &["--json", "keep-alive"],
        &env,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(report["action"], "not-due", "{report}");
    assert!(report["renew_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(genlogs.refreshes(), 1);

    // A margin of the whole lifetime: always due.
    let third = run(
        &dir,
        &["keep-alive", "--margin", "1"],
        &env,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(genlogs.refreshes(), 2);
    let stored = FileStore::new(dir.join("tokens.json"))
        .load()
        .await
        .unwrap()
        .unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token.expose_secret()));

    // A margin that is no share: a usage error, nothing sent.
    let wrong = run(
        &dir,
        &["keep-alive", "--margin", "25"],
        &env,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(wrong.code, 64, "{}", wrong.stderr);
    assert_eq!(genlogs.refreshes(), 2);

    // A revoked grant: exit 2, as `status` would.
    genlogs.revoke_all();
    let dead = run(
        &dir,
        &["keep-alive", "--margin", "1"],
        &env,
        "",
        &secrets_of(&genlogs),
    )
    .await;
    assert_eq!(dead.code, 2, "{}", dead.stderr);
    for output in [&first, &second, &third, &dead] {
        assert_no_leak(&output.stdout, &secrets_of(&genlogs));
        assert_no_leak(&output.stderr, &secrets_of(&genlogs));
    }
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_refresh_whose_stdout_fails_keeps_the_new_tokens_in_a_rescue_file() {
    let genlogs = MockGenLogs::start().await;
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let sent = genlogs.issue_tokens().refresh_token;
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
        .current_dir(&dir)
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
    assert_no_leak(&stderr, &secrets_of(&genlogs));
    let rescued = rescue_files(&dir.join("genlogs-auth"));
    assert_eq!(rescued.len(), 1, "{stderr}");
    let kept: StoredTokens =
        serde_json::from_str(&std::fs::read_to_string(&rescued[0]).unwrap()).unwrap();
    assert!(genlogs.is_valid_refresh_token(kept.refresh_token.expose_secret()));
    assert!(stderr.contains(rescued[0].to_str().unwrap()), "{stderr}");
}

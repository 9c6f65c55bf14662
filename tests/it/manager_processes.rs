//! The manager with another process on the same store: the other process is this test binary
//! re-run as a child (`support::child`), on a `FileStore` both open.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::child::{read_marker, spawn_child};
use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{AuthClient, FileStore, StoredTokens, TokenError, TokenManager, TokenStore};
use serde_json::json;

const API_KEY: &str = "process-test-key";

fn manager(base_url: &str, path: &Path) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(base_url)
        .with_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    TokenManager::builder(client, FileStore::new(path))
        .with_retry_cooldown(Duration::from_secs(1))
        .build()
}

/// A manager in a cooldown after `fault` (its first refresh's answer) still serves, at once and
/// without sending anything, the valid tokens another process refreshed and saved meanwhile: a
/// cooldown limits sending refreshes, never reading the store.
async fn a_manager_cooling_down_serves_what_another_process_saved(fault: Fault) {
    let genlogs = MockGenLogs::builder().with_api_key(API_KEY).start().await;
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    FileStore::new(&path)
        .replace(&StoredTokens::from_refresh_token(
            genlogs.issue_tokens().into_refresh_token(),
        ))
        .await
        .unwrap();
    let cooling = manager(&genlogs.base_url(), &path);
    genlogs.fail_next(1, fault);
    assert!(cooling.access_token().await.is_err());

    // Another process on the same file refreshes and saves (once the first attempt can no
    // longer be in flight, when its outcome is unknown).
    let mut other = spawn_child(
        module_path!(),
        "refresh",
        &[
            ("GENLOGS_TEST_BASE_URL", genlogs.base_url()),
            ("GENLOGS_TEST_STORE", path.display().to_string()),
        ],
    );
    let saved = tokio::task::spawn_blocking(move || {
        let access = read_marker(&mut other, "ACCESS=");
        assert!(other.wait().unwrap().success());
        access
    })
    .await
    .unwrap();
    assert!(genlogs.is_valid_access_token(&saved));
    let sent = genlogs.refresh_requests();

    // Callers of the manager cooling down get them, every time, for the next 5 s.
    let (started, mut calls, mut errors) = (Instant::now(), 0, Vec::new());
    while started.elapsed() < Duration::from_secs(5) {
        calls += 1;
        match cooling.access_token().await {
            Ok(token) => assert_eq!(token.expose_secret(), saved),
            Err(error) => errors.push(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        errors.is_empty(),
        "{} of {calls} calls failed: {errors:?}",
        errors.len()
    );
    assert_eq!(genlogs.refresh_requests(), sent, "nothing more was sent");
    assert_eq!(genlogs.reuses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_manager_serves_the_tokens_another_process_saved() {
    // A huge `Retry-After`: the cooldown is capped at 15 minutes, far longer than the test.
    a_manager_cooling_down_serves_what_another_process_saved(
        Fault::json(429, json!({ "message": "Too Many Requests" }))
            .with_header("retry-after", "100000"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_whose_refresh_outcome_is_unknown_serves_the_tokens_another_process_saved() {
    // Not processed, but the manager cannot know: it waits, and so does the other process.
    a_manager_cooling_down_serves_what_another_process_saved(Fault::json(
        522,
        json!({ "message": "Connection timed out" }),
    ))
    .await;
}

/// Not a test: the body of the child processes above, selected by `GENLOGS_TEST_CHILD`.
#[test]
#[ignore = "run by the tests above as a child process"]
fn child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        match var("GENLOGS_TEST_CHILD").as_str() {
            "refresh" => {
                let path = std::path::PathBuf::from(var("GENLOGS_TEST_STORE"));
                let manager = manager(&var("GENLOGS_TEST_BASE_URL"), &path);
                // Another host's refresh may still be in flight: retried once it cannot be.
                let mut access = manager.access_token().await;
                while let Err(TokenError::OutcomeUnknown { retry_at }) = &access {
                    let wait = (*retry_at - chrono::Utc::now())
                        .to_std()
                        .unwrap_or_default();
                    tokio::time::sleep(
                        wait.min(Duration::from_secs(20)) + Duration::from_millis(100),
                    )
                    .await;
                    access = manager.access_token().await;
                }
                println!("ACCESS={}", access.unwrap().expose_secret());
            }
            role => panic!("unknown role {role}"),
        }
    });
}

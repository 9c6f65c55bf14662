//! The file store: permissions, atomic replacement under SIGKILL, and two processes sharing one
//! token file. Child processes are this test binary, re-run on the ignored `child` test.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use genlogs_auth::{AuthClient, FileStore, StoreError, TokenManager, TokenStore};

use crate::support::child::{read_marker, spawn_child};
use crate::support::fixture::{stored_refresh, Fixture, API_KEY};
use crate::support::store::tokens;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_token_file_is_owner_only_and_round_trips() {
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    let store = FileStore::new(&path);
    assert!(store.load().await.unwrap().is_none());
    store.replace(&tokens("rt-1")).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(stored_refresh(&store).await, "rt-1");
}

#[tokio::test]
async fn an_existing_wider_file_is_replaced_as_owner_only() {
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    std::fs::write(&path, "{}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    FileStore::new(&path)
        .replace(&tokens("rt-2"))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn a_token_file_readable_by_others_is_refused_on_load() {
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    let store = FileStore::new(&path);
    store.replace(&tokens("rt-secret-3")).await.unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = store.load().await.unwrap_err();
    assert!(
        matches!(error, StoreError::InsecurePermissions { mode: 0o644, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("mode 644") && !error.to_string().contains("rt-secret-3"),
        "{error}"
    );
}

#[tokio::test]
async fn a_corrupt_token_file_is_described_without_its_contents() {
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    std::fs::write(&path, r#"{"refresh_token": 42, "note": "rt-secret-4"}"#).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = FileStore::new(&path).load().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(
        text.contains("`refresh_token`: invalid type: integer, expected a string"),
        "{text}"
    );
    assert!(!text.contains("rt-secret-4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_token_file_refresh_once() {
    let fixture = Fixture::new().await;
    let genlogs = &fixture.genlogs;
    // Slow, so that the second process asks while the first is refreshing.
    genlogs.set_latency(Some(Duration::from_millis(300)));
    let scratch = crate::support::scratch();
    let path = scratch.path().join("tokens.json");
    fixture.seed(&FileStore::new(&path)).await;

    let env = [
        ("GENLOGS_TEST_BASE_URL", genlogs.base_url()),
        ("GENLOGS_TEST_FILE", path.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut children = [
        spawn_child(module_path!(), "refresh", &env),
        spawn_child(module_path!(), "refresh", &env),
    ];
    let results = tokio::task::spawn_blocking(move || {
        let tokens: Vec<String> = children
            .iter_mut()
            .map(|child| read_marker(child, "ACCESS="))
            .collect();
        for child in &mut children {
            assert!(child.wait().unwrap().success());
        }
        tokens
    })
    .await
    .unwrap();

    assert_eq!(
        genlogs.refreshes(),
        1,
        "one refresh between the two processes"
    );
    assert_eq!(
        results[0], results[1],
        "both ended with the same, rotated, token"
    );
    let stored = FileStore::new(&path).load().await.unwrap().unwrap();
    assert!(genlogs.is_valid_refresh_token(stored.refresh_token().expose_secret()));
}

#[test]
fn sigkill_during_writes_leaves_a_whole_old_or_new_document() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scratch = crate::support::scratch();
    let dir = scratch.path().to_path_buf();
    let path = dir.join("tokens.json");
    let store = FileStore::new(&path);
    let random = std::hash::RandomState::new();
    for round in 0u64..200 {
        let mut child = spawn_child(
            module_path!(),
            "writer",
            &[("GENLOGS_TEST_FILE", &path.display().to_string())],
        );
        read_marker(&mut child, "READY");
        let pause = std::hash::BuildHasher::hash_one(&random, round) % 8_000;
        std::thread::sleep(Duration::from_micros(pause));
        child.kill().unwrap();
        child.wait().unwrap();
        let loaded = runtime
            .block_on(store.load())
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .unwrap();
        let refresh = loaded.refresh_token().expose_secret();
        assert!(
            refresh.starts_with("rt-writer-") && loaded.access_expires().is_some(),
            "round {round}: {loaded:?}"
        );
    }
    // Killed writers leave temporary token documents behind; the next save, under the lock,
    // sweeps them all.
    runtime
        .block_on(store.replace(&tokens("rt-after")))
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Not a test: the body of the child processes above, selected by `GENLOGS_TEST_CHILD`.
#[test]
#[ignore = "run by the multi-process tests as a child process"]
fn child() {
    let file = std::env::var("GENLOGS_TEST_FILE").expect("GENLOGS_TEST_FILE");
    match std::env::var("GENLOGS_TEST_CHILD").as_deref() {
        Ok("refresh") => {
            let base_url = std::env::var("GENLOGS_TEST_BASE_URL").expect("GENLOGS_TEST_BASE_URL");
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let access = runtime.block_on(async {
                let client = AuthClient::builder(API_KEY)
                    .with_base_url(base_url)
                    .build()
                    .unwrap();
                let manager = TokenManager::builder(client, FileStore::new(&file)).build();
                manager.access_token().await.unwrap()
            });
            println!("ACCESS={}", access.expose_secret());
        }
        Ok("writer") => {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let store = FileStore::new(&file);
            let documents = ["a", "b"].map(|tag| {
                tokens(&format!("rt-writer-{tag}")).with_access_token(
                    format!("at-writer-{tag}-{}", "x".repeat(500)).into(),
                    Some(chrono::Utc::now()),
                )
            });
            runtime.block_on(store.replace(&documents[0])).unwrap();
            println!("READY");
            for n in 0.. {
                runtime.block_on(store.replace(&documents[n % 2])).unwrap();
            }
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// Issue 16, item 4: the wait for another holder's lock runs on the store's clock. On a
/// `ManualClock` it lasts until the clock passes the 35 s wait, and no real 35 s.
#[tokio::test]
async fn a_lock_wait_runs_on_the_stores_clock() {
    use genlogs_auth::clock::ManualClock;

    let scratch = crate::support::scratch();
    let clock = std::sync::Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = FileStore::new(scratch.path().join("tokens.json")).with_clock(clock.clone());
    let held = store.lock().await.unwrap();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.lock().await.map(drop) }
    });
    let started = std::time::Instant::now();
    while clock.sleepers() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never waited");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!waiting.is_finished(), "waits while the clock stands still");
    clock.advance(Duration::from_secs(34));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "34 s of the 35 s wait");
    clock.advance(Duration::from_secs(2));
    match waiting.await.unwrap() {
        Err(StoreError::Busy { waited }) => {
            assert!(waited >= Duration::from_secs(35), "{waited:?}")
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(held);
    store.lock().await.unwrap();
}

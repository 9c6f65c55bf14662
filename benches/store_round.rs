//! What the store costs a refresh, in one run: the same refresh (a loopback GenLogs stand-in that
//! rotates tokens) through a `TokenManager` over `MemoryStore`, `FileStore` and `RedisStore`
//! (plain and encrypted, on a `redis-server` this bench starts), and the store's own share alone:
//! one lock → load → save → release round. Printed as ratios against `MemoryStore`.

#[path = "../tests/it/support/mod.rs"]
mod fixtures;
mod support;

use std::time::Duration;

use criterion::Criterion;
use fixtures::redis::RedisServer;
use fixtures::store::{save_over, tokens};
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    store::redis::EncryptionKey, store::BoxedStore, AuthClient, FileStore, MemoryStore, RedisStore,
    StoredTokens, TokenManager, TokenStore,
};

const API_KEY: &str = "bench-api-key";
const STORES: [&str; 4] = ["memory", "file", "redis", "redis_encrypted"];

fn stores(redis: &RedisServer, dir: &std::path::Path, round: &str) -> Vec<BoxedStore> {
    let grant = format!("bench-{round}");
    vec![
        BoxedStore::new(MemoryStore::default()),
        BoxedStore::new(FileStore::new(dir.join(format!("{round}.json")))),
        BoxedStore::new(RedisStore::new(&redis.url(), &grant).unwrap()),
        BoxedStore::new(
            RedisStore::new(&redis.url(), &format!("{grant}-encrypted"))
                .unwrap()
                .with_encryption_key(EncryptionKey::from_bytes([3; 32])),
        ),
    ]
}

/// One round of what a refresh does with its store, without the request: lock → load → save →
/// release.
async fn store_round(store: &BoxedStore, tokens: &StoredTokens) {
    save_over(store, tokens).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let (server_runtime, runtime) = (support::server_runtime(), support::current_thread_runtime());
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let genlogs = server_runtime.block_on(MockGenLogs::builder().with_api_key(API_KEY).start());

    let mut group = c.benchmark_group("store_round");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    let tokens = tokens("rt-bench-0123456789abcdef0123").with_access_token(
        "at-bench-0123456789abcdef0123456789".into(),
        Some(chrono::Utc::now()),
    );
    for (name, store) in STORES.iter().zip(stores(&redis, dir.path(), "round")) {
        group.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| store_round(&store, &tokens))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("refresh_with_store");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (name, store) in STORES.iter().zip(stores(&redis, dir.path(), "refresh")) {
        let refresh = genlogs.issue_tokens().into_refresh_token();
        runtime
            .block_on(store.replace(&StoredTokens::from_refresh_token(refresh)))
            .unwrap();
        let client = AuthClient::builder(API_KEY)
            .with_base_url(genlogs.base_url())
            .build()
            .unwrap();
        let manager = TokenManager::builder(client, store)
            .with_min_refresh_interval(Duration::ZERO)
            .build();
        group.bench_function(*name, |b| {
            b.to_async(&runtime).iter(|| async {
                // Drop the current token, so the call refreshes (and saves) once.
                if let Some(current) = manager.cached_access_token() {
                    manager.invalidate(&current);
                }
                manager.access_token().await.unwrap()
            })
        });
    }
    group.finish();
}

fn print_ratios(group: &str) {
    let Some(baseline) = support::median_ns(group, "memory") else {
        println!("RATIO {group}: not measured in this run");
        return;
    };
    let file = support::median_ns(group, "file");
    for name in &STORES[1..] {
        if let Some(median) = support::median_ns(group, name) {
            print!(
                "RATIO {group}: {name} {:.1} µs / memory {:.1} µs = {:.2}x",
                median / 1e3,
                baseline / 1e3,
                median / baseline
            );
            match file {
                Some(file) if *name != "file" => println!("; / file = {:.2}x", median / file),
                _ => println!(),
            }
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    print_ratios("store_round");
    print_ratios("refresh_with_store");
}

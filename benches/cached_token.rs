//! The manager's valid-token path against a bare `RwLock<Arc<_>>` read of the same value.
//! Targets: at most 2x, and at least 10 million calls per second on one core.

mod support;

use std::hint::black_box;
use std::sync::{Arc, RwLock};

use criterion::Criterion;
use futures_util::FutureExt;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AccessToken, AuthClient, MemoryStore, StoredTokens, TokenManager};

fn bench(c: &mut Criterion) {
    let runtime = support::current_thread_runtime();
    let genlogs = runtime.block_on(MockGenLogs::builder().with_api_key("bench-key").start());
    // Only a refresh token, as from `POST /auth/token`: the first call refreshes.
    let refresh = genlogs.issue_tokens().into_refresh_token();
    let client = AuthClient::builder("bench-key")
        .with_base_url(genlogs.base_url())
        .build()
        .unwrap();
    let manager = TokenManager::builder(
        client,
        MemoryStore::new(StoredTokens::from_refresh_token(refresh)),
    )
    .build();
    let token = runtime.block_on(manager.access_token()).unwrap();
    let bare: RwLock<Arc<AccessToken>> = RwLock::new(token);

    let mut group = c.benchmark_group("cached_token");
    // Context for benches/README.md: why the system clock reads CLOCK_MONOTONIC_COARSE.
    group.bench_function("probe_instant_now", |b| {
        b.iter(|| black_box(std::time::Instant::now()))
    });
    let clock = genlogs_auth::clock::SystemClock::new();
    group.bench_function("probe_system_clock", |b| {
        b.iter(|| black_box(genlogs_auth::clock::Clock::monotonic(&clock)))
    });
    group.bench_function("bare_rwlock_arc_read", |b| {
        b.iter(|| black_box(bare.read().unwrap().clone()))
    });
    group.bench_function("manager_access_token", |b| {
        b.iter(|| {
            black_box(
                manager
                    .access_token()
                    .now_or_never()
                    .expect("the cached path never waits")
                    .unwrap(),
            )
        })
    });
    group.bench_function("manager_cached_access_token", |b| {
        b.iter(|| black_box(manager.cached_access_token().expect("valid")))
    });
    group.finish();
    assert_eq!(
        genlogs.refreshes(),
        1,
        "every measured call was served from the cache"
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    support::print_ratio(
        "cached_token",
        "manager_access_token",
        "bare_rwlock_arc_read",
        2.0,
    );
    support::print_ratio(
        "cached_token",
        "manager_cached_access_token",
        "bare_rwlock_arc_read",
        2.0,
    );
    if let Some(ns) = support::median_ns("cached_token", "manager_access_token") {
        let per_second = 1e9 / ns;
        let verdict = if per_second >= 10e6 {
            "meets"
        } else {
            "MISSES"
        };
        println!("RATE cached_token: {:.1} million calls per second on one core ({verdict} the 10 million target)", per_second / 1e6);
    }
}

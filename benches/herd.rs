//! The herd: 10,000 tasks ask at once for a token that has just expired. Reports the refresh
//! requests the server saw (must be 1) and the p50/p99 wait, against one loopback round trip
//! (an uncontended refresh, measured in the same run). Target: p99 within a round trip + 1 ms.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fixtures::genlogs::FakeGenlogs;
use fixtures::server::Server;
use genlogs_auth::{AuthClient, MemoryStore, RefreshToken, StoredTokens, TokenManager};

const TASKS: usize = 10_000;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let genlogs = Arc::new(FakeGenlogs::new("bench-key"));
    let service = genlogs.clone();
    let server = runtime.block_on(Server::start(move |request| service.handle(request)));
    let client = AuthClient::builder("bench-key")
        .with_base_url(server.base_url())
        .build()
        .unwrap();
    let waits = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let requests_per_herd = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));

    let mut group = c.benchmark_group("herd");
    group.sample_size(20);
    group.bench_function("single_refresh_round_trip", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (client, genlogs) = (client.clone(), genlogs.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_, refresh) = genlogs.create_tokens();
                    let started = Instant::now();
                    client.refresh(&RefreshToken::new(refresh)).await.unwrap();
                    total += started.elapsed();
                }
                total
            }
        })
    });
    group.bench_function("herd_10000_tasks", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (client, genlogs, waits, counts) = (
                client.clone(),
                genlogs.clone(),
                waits.clone(),
                requests_per_herd.clone(),
            );
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A manager whose store has only a refresh token: the access token is expired.
                    let (_, refresh) = genlogs.create_tokens();
                    let store = MemoryStore::new(StoredTokens::from_refresh_token(
                        RefreshToken::new(refresh),
                    ));
                    let manager = TokenManager::builder(client.clone(), store).build();
                    let before = genlogs.refreshes();
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| {
                            let manager = manager.clone();
                            tokio::spawn(async move {
                                let asked = Instant::now();
                                manager.access_token().await.unwrap();
                                asked.elapsed()
                            })
                        })
                        .collect();
                    let mut herd = Vec::with_capacity(TASKS);
                    for task in tasks {
                        herd.push(task.await.unwrap());
                    }
                    total += started.elapsed();
                    counts.lock().unwrap().push(genlogs.refreshes() - before);
                    waits.lock().unwrap().extend(herd);
                }
                total
            }
        })
    });
    group.finish();

    let mut waits = waits.lock().unwrap().clone();
    waits.sort();
    let percentile = |p: f64| waits[((waits.len() as f64 * p) as usize).min(waits.len() - 1)];
    let counts = requests_per_herd.lock().unwrap().clone();
    let round_trip = support::median_ns("herd", "single_refresh_round_trip")
        .map(|ns| Duration::from_nanos(ns as u64));
    println!(
        "HERD {} herds of {TASKS} tasks: refresh requests per herd min {} max {}; wait p50 {:?} p99 {:?}",
        counts.len(),
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
        percentile(0.50),
        percentile(0.99)
    );
    if let Some(round_trip) = round_trip {
        let bound = round_trip + Duration::from_millis(1);
        let verdict = if percentile(0.99) <= bound {
            "meets"
        } else {
            "MISSES"
        };
        println!("HERD p99 {:?} vs one round trip {round_trip:?} + 1 ms = {bound:?} ({verdict} the target)", percentile(0.99));
    }
    assert!(
        counts.iter().all(|&n| n == 1),
        "a herd caused more than one refresh: {counts:?}"
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}

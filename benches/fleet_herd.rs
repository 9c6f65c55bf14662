//! The fleet herd: 3 processes × 1,000 tasks, parked, released at once on a grant whose store
//! holds no valid access token, sharing it through one `RedisStore`. Target: exactly one refresh
//! request per herd; reported: the callers' wait p50/p99 against one uncontended refresh through
//! `RedisStore` measured in the same run.
//!
//! The processes are this bench binary, re-run with `FLEET_HERD_CHILD` set.

#[path = "../tests/it/support/mod.rs"]
mod fixtures;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fixtures::redis::RedisServer;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, RedisStore, StoredTokens, TokenManager, TokenStore};

const API_KEY: &str = "bench-api-key";
const PROCESSES: usize = 3;
const TASKS: usize = 1_000;
const HERDS: usize = 10;

fn manager(base_url: &str, redis_url: &str, grant: &str) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(base_url)
        .build()
        .unwrap();
    TokenManager::builder(client, RedisStore::new(redis_url, grant).unwrap()).build()
}

/// A child: parks `TASKS` tasks, prints `READY`, releases them on a `GO` line from stdin, and
/// prints every task's wait in microseconds.
fn child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let manager = manager(
            &var("HERD_BASE_URL"),
            &var("HERD_REDIS_URL"),
            &var("HERD_GRANT"),
        );
        let (go, _) = tokio::sync::broadcast::channel::<Instant>(1);
        let waits = Arc::new(Mutex::new(Vec::with_capacity(TASKS)));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (manager, mut go, waits) = (manager.clone(), go.subscribe(), waits.clone());
                tokio::spawn(async move {
                    let released = go.recv().await.unwrap();
                    manager.access_token().await.unwrap();
                    waits.lock().unwrap().push(released.elapsed().as_micros());
                })
            })
            .collect();
        println!("READY");
        let mut line = String::new();
        tokio::task::spawn_blocking(move || {
            std::io::stdin().read_line(&mut line).unwrap();
        })
        .await
        .unwrap();
        go.send(Instant::now()).unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        let waits: Vec<String> = waits.lock().unwrap().iter().map(u128::to_string).collect();
        println!("WAITS {}", waits.join(","));
    });
}

fn spawn(base_url: &str, redis_url: &str, grant: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("FLEET_HERD_CHILD", "1")
        .env("HERD_BASE_URL", base_url)
        .env("HERD_REDIS_URL", redis_url)
        .env("HERD_GRANT", grant)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn line_with(child: &mut Child, prefix: &str) -> String {
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    loop {
        let line = lines.next().expect("the child ended first").unwrap();
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1e3
}

fn main() {
    if std::env::var_os("FLEET_HERD_CHILD").is_some() {
        return child();
    }
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list`: nothing to list outside criterion
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start();
    let genlogs = runtime.block_on(MockGenLogs::builder().with_api_key(API_KEY).start());
    let seed = |grant: &str| {
        let refresh = genlogs.issue_tokens().into_refresh_token();
        runtime
            .block_on(
                RedisStore::new(&redis.url(), grant)
                    .unwrap()
                    .replace(&StoredTokens::from_refresh_token(refresh)),
            )
            .unwrap();
    };

    // Baseline: one caller, one refresh through RedisStore, no contention.
    let mut single = Vec::new();
    for round in 0..20 {
        let grant = format!("single-{round}");
        seed(&grant);
        let manager = manager(&genlogs.base_url(), &redis.url(), &grant);
        let started = Instant::now();
        runtime.block_on(manager.access_token()).unwrap();
        single.push(started.elapsed());
    }
    single.sort();
    let single_median = single[single.len() / 2];

    let mut waits = Vec::new();
    let mut requests_per_herd = Vec::new();
    for herd in 0..HERDS {
        let grant = format!("herd-{herd}");
        seed(&grant);
        let mut children: Vec<Child> = (0..PROCESSES)
            .map(|_| spawn(&genlogs.base_url(), &redis.url(), &grant))
            .collect();
        for child in &mut children {
            line_with(child, "READY");
        }
        let before = genlogs.refreshes();
        for child in &mut children {
            child.stdin.as_mut().unwrap().write_all(b"GO\n").unwrap();
        }
        for child in &mut children {
            let line = line_with(child, "WAITS ");
            waits.extend(line.split(',').map(|w| w.parse::<u128>().unwrap()));
            assert!(child.wait().unwrap().success());
        }
        requests_per_herd.push(genlogs.refreshes() - before);
    }
    waits.sort();
    let one = requests_per_herd.iter().all(|&n| n == 1);
    println!(
        "HERD fleet: {HERDS} herds of {PROCESSES} processes x {TASKS} tasks on one RedisStore: \
         refresh requests per herd {requests_per_herd:?} ({}); wait p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms; one uncontended refresh through RedisStore: {:.2} ms (median of 20)",
        if one {
            "meets the 1 target"
        } else {
            "MISSES the 1 target"
        },
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        percentile(&waits, 1.0),
        single_median.as_secs_f64() * 1e3,
    );
}

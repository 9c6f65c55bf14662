//! Refresh overhead: `AuthClient::refresh` against a raw reqwest POST of the same request to the
//! same loopback server, with the same reqwest settings. Target: at most 1.05x (medians).

#[path = "../tests/support/server.rs"]
mod server;
mod support;

use std::time::Duration;

use criterion::Criterion;
use genlogs_auth::{AuthClient, RefreshToken};
use server::{Reply, Server};

const API_KEY: &str = "bench-api-key";

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = serde_json::json!({
        "access_token_data": { "token": "eyJhbGciOiJIUzI1NiJ9.access.0123456789abcdef", "expires": "2026-11-26T06:38:25.069078" },
        "refresh_token_data": { "token": "eyJhbGciOiJIUzI1NiJ9.refresh.0123456789abcdef", "expires": "2026-12-03T06:08:25.069078" },
        "user_id": "user-42",
        "company_id": 7
    });
    let server = runtime.block_on(Server::always(Reply::json(200, body)));
    let client = AuthClient::builder(API_KEY)
        .with_base_url(server.base_url())
        .build()
        .unwrap();
    // The same settings AuthClient's own reqwest client has.
    let raw = reqwest::Client::builder()
        .connect_timeout(genlogs_auth::DEFAULT_CONNECT_TIMEOUT)
        .timeout(genlogs_auth::DEFAULT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .unwrap();
    let url = format!("{}/token/refresh", server.base_url());
    let token = RefreshToken::new("eyJhbGciOiJIUzI1NiJ9.old-refresh.0123456789");

    let mut group = c.benchmark_group("refresh_overhead");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("raw_reqwest_post", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = raw
                .post(&url)
                .query(&[("refresh_token", token.expose_secret())])
                .header("accept", "application/json")
                .header("x-api-key", API_KEY)
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap()
        })
    });
    group.bench_function("genlogs_refresh", |b| {
        b.to_async(&runtime)
            .iter(|| async { client.refresh(&token).await.unwrap() })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    support::print_ratio(
        "refresh_overhead",
        "genlogs_refresh",
        "raw_reqwest_post",
        1.05,
    );
}

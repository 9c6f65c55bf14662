//! `HTTP_PROXY` / `ALL_PROXY` (and their lower-case forms) pointing at a loopback "proxy" that
//! counts connections: a plain-http loopback base URL never goes through it, with the crate's
//! own client or a caller's builder, even one that names the proxy itself.
//!
//! A binary of its own with a single test: environment variables are process-wide, and reqwest
//! reads them when a client is built.

#[path = "it/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use genlogs_auth::reqwest;
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::AuthClient;

const API_KEY: &str = "proxy-env-key-SECRET";

/// A listener that counts the connections made to it and closes each at once.
async fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, connections)
}

#[tokio::test]
async fn loopback_requests_never_go_through_an_environment_proxy() {
    let (proxy, connections) = counting_proxy().await;
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(name, &proxy);
    }
    for name in ["NO_PROXY", "no_proxy"] {
        std::env::remove_var(name);
    }

    // The proxy is live and reqwest uses it from the environment: a client without the crate's
    // rules sends loopback traffic there.
    let genlogs = MockGenLogs::builder().with_api_key(API_KEY).start().await;
    let _ = reqwest::Client::new()
        .get(format!("http://{}/", genlogs.addr()))
        .send()
        .await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "the control request");

    let builders = [
        None,
        Some(reqwest::Client::builder()),
        Some(reqwest::Client::builder().proxy(reqwest::Proxy::all(&proxy).unwrap())),
    ];
    for builder in builders {
        let mut config = AuthClient::builder(API_KEY).with_base_url(genlogs.base_url());
        if let Some(builder) = builder {
            config = config.with_http_client_builder(builder);
        }
        let refresh = genlogs.issue_tokens().into_refresh_token();
        config.build().unwrap().refresh(&refresh).await.unwrap();
    }
    assert_eq!(
        genlogs.refreshes(),
        3,
        "every refresh reached the server directly"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "only the control request was proxied"
    );
}

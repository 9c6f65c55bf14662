//! What the crate forces on every HTTP client, a caller's own `reqwest::ClientBuilder` included:
//! no redirects, no `Referer`, no pooled connection, a connect timeout below the total one (so a connection that cannot
//! be made is a connect error, not an unknown outcome), and the headers other endpoints need.
//! Proxies from the environment are in `tests/proxy_env.rs` (environment variables are
//! process-wide, so they get a binary of their own).

use std::time::Duration;

use crate::support::leak::assert_no_leak;
use crate::support::{answering, redirect_target};
use genlogs_auth::reqwest::{self, redirect::Policy};
use genlogs_auth::testing::{Fault, MockGenLogs};
use genlogs_auth::{client::UnknownOutcome, AccessToken, AuthClient, Error, RefreshToken};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const API_KEY: &str = "transport-key-SECRET-1";
const SENT: &str = "rt-transport-SENT-2";

fn client(base_url: String, builder: Option<reqwest::ClientBuilder>) -> AuthClient {
    let mut config = AuthClient::builder(API_KEY)
        .with_base_url(base_url)
        .with_timeout(Duration::from_secs(1));
    if let Some(builder) = builder {
        config = config.with_http_client_builder(builder);
    }
    config.build().unwrap()
}

async fn refresh_error(client: &AuthClient) -> Error {
    let error = client.refresh(&RefreshToken::new(SENT)).await.unwrap_err();
    assert_no_leak(&error, &[API_KEY, SENT]);
    error
}

/// A builder that asks for everything the crate must refuse.
fn permissive_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(Policy::limited(10))
        .referer(true)
        .connect_timeout(Duration::from_secs(600))
}

#[tokio::test]
async fn a_callers_builder_that_asks_for_redirects_still_does_not_reach_the_target() {
    let (target, redirect) = redirect_target(SENT).await;
    let redirecting = answering(redirect).await;
    let client = client(redirecting.base_url(), Some(permissive_builder()));
    let error = refresh_error(&client).await;
    assert!(
        matches!(&error, Error::UnexpectedStatus { status, .. } if *status == 307),
        "{error:?}"
    );
    assert_eq!(
        target.requests().len(),
        0,
        "the redirect target was contacted"
    );
    let sent = redirecting.requests();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].header_values("referer").is_empty());
}

/// A loopback address whose listener never accepts: its accept queue is full, so the kernel
/// drops further SYNs and a connect attempt waits until its timeout. The listener and the
/// connections filling its queue must stay alive for as long as the address is used.
async fn unaccepting_listener() -> (TcpListener, Vec<TcpStream>, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    // With a backlog of 0 Linux queues one connection; the probe that does not complete within
    // the pause shows the queue is full.
    loop {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => filling.push(stream),
            Ok(Err(error)) => panic!("loopback connect failed: {error}"),
            Err(_) => break,
        }
        assert!(filling.len() < 1_000, "the accept queue never filled");
    }
    (listener, filling, format!("http://{addr}/auth"))
}

/// A connect error that came from the connect timeout (reqwest reports it as both).
fn assert_connect_error(error: &Error) {
    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    let cause = std::error::Error::source(error)
        .and_then(|cause| cause.downcast_ref::<reqwest::Error>())
        .expect("the transport cause is kept");
    assert!(cause.is_connect() && cause.is_timeout(), "{cause:?}");
    assert!(error.is_retryable(), "nothing was sent");
    assert!(!error.may_have_spent_token() && !error.is_token_rejected());
    assert_eq!(error.unknown_outcome(), None);
    assert!(
        error.to_string().contains("the request was not sent"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_never_accepted_is_a_connect_error_not_an_unknown_outcome() {
    let (_listener, _filling, base_url) = unaccepting_listener().await;
    // The default connect timeout (5 s) is longer than the total (1 s): it is clamped below it.
    let error = refresh_error(&client(base_url, None)).await;
    assert_connect_error(&error);
}

#[tokio::test]
async fn a_callers_long_connect_timeout_is_replaced_by_one_below_the_total() {
    let (_listener, _filling, base_url) = unaccepting_listener().await;
    let error = refresh_error(&client(base_url, Some(permissive_builder()))).await;
    assert_connect_error(&error);
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_is_an_unknown_outcome() {
    let stalled = answering(Fault::Stall).await;
    for builder in [None, Some(permissive_builder())] {
        let error = refresh_error(&client(stalled.base_url(), builder)).await;
        assert_eq!(
            error.unknown_outcome(),
            Some(&UnknownOutcome::TimedOut),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        assert!(error.may_have_spent_token() && !error.is_token_rejected());
    }
    assert_eq!(stalled.requests().len(), 2, "both requests were sent");
}

#[tokio::test]
async fn auth_headers_carry_the_access_token_and_the_api_key_both_sensitive() {
    let genlogs = MockGenLogs::builder().with_api_key(API_KEY).start().await;
    let issued = genlogs.issue_tokens();
    let access = issued.access_token().unwrap().expose_secret().to_string();
    let client = client(genlogs.base_url(), None);
    let headers = client
        .auth_headers(&AccessToken::new(access.clone()))
        .unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(headers["access-token"], access.as_str());
    assert_eq!(headers["x-api-key"], API_KEY);
    assert!(headers.values().all(|value| value.is_sensitive()));
    assert_no_leak(&format!("{headers:?}"), &[access.as_str(), API_KEY]);

    // The protected endpoint of the stand-in accepts them.
    let status = reqwest::Client::new()
        .get(format!(
            "http://{}/carriers/recommendations",
            genlogs.addr()
        ))
        .headers(headers)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, genlogs_auth::reqwest::StatusCode::OK);
}

#[tokio::test]
async fn an_access_token_that_is_no_header_value_is_refused_without_quoting_it() {
    let genlogs = answering(Fault::Stall).await;
    let client = client(genlogs.base_url(), None);
    let token = "at-SECRET-9\r\nInjected: yes";
    let error = client.auth_headers(&AccessToken::new(token)).unwrap_err();
    assert_no_leak(&error, &["at-SECRET-9", "Injected"]);
    assert!(genlogs.requests().is_empty());
}

/// A raw HTTP/1.1 server that answers every request with a fixed token response and keeps the
/// connection open, then closes it as idle: after `idle` without a request, or, when `idle` is
/// `None`, the moment a second request arrives on it (the close and the request crossing on the
/// wire, the race a pooled connection loses). Counts connections and requests that arrived on a
/// connection already used.
struct IdleClosingServer {
    base_url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    reused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl IdleClosingServer {
    async fn start(idle: Option<Duration>) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/auth", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let reused = Arc::new(AtomicUsize::new(0));
        let body = json!({
            "access_token_data": { "token": "at-idle-1", "expires": "2099-01-01T00:00:00Z" },
            "refresh_token_data": { "token": "rt-idle-2", "expires": "2099-01-08T00:00:00Z" },
            "user_id": "user-1",
            "company_id": 1
        })
        .to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (counted, reuses) = (connections.clone(), reused.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let (response, reuses) = (response.clone(), reuses.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // The first request: read up to the end of its head (it has no body).
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                    let next = socket.read(&mut chunk);
                    let arrived = match idle {
                        Some(idle) => tokio::time::timeout(idle, next).await.ok(),
                        None => Some(next.await),
                    };
                    if matches!(arrived, Some(Ok(n)) if n > 0) {
                        // A second request on this connection: closed unanswered, as a server
                        // that had just timed the connection out does.
                        reuses.fetch_add(1, Ordering::SeqCst);
                    }
                    // Dropping the socket closes the connection.
                });
            }
        });
        Self {
            base_url,
            connections,
            reused,
            _task: task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn reused(&self) -> usize {
        self.reused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn every_refresh_opens_a_new_connection_so_none_rides_one_the_server_closed() {
    let server = IdleClosingServer::start(None).await;
    for builder in [None, Some(reqwest::Client::builder())] {
        let client = client(server.base_url.clone(), builder);
        for _ in 0..5 {
            let session = client.refresh(&RefreshToken::new(SENT)).await;
            assert!(session.is_ok(), "{:?}", session.err());
        }
    }
    assert_eq!(server.connections(), 10, "one connection per refresh");
    assert_eq!(
        server.reused(),
        0,
        "no request was sent on a used connection"
    );
}

#[tokio::test]
async fn refreshes_at_exactly_the_servers_idle_timeout_all_succeed() {
    // The server closes a connection idle for exactly the refresh period, so a refresh sent on a
    // pooled connection would race the server's close every time.
    let period = Duration::from_millis(200);
    let server = IdleClosingServer::start(Some(period)).await;
    let client = client(server.base_url.clone(), None);
    for _ in 0..10 {
        let session = client.refresh(&RefreshToken::new(SENT)).await;
        assert!(session.is_ok(), "{:?}", session.err());
        tokio::time::sleep(period).await;
    }
    assert_eq!(server.connections(), 10);
    assert_eq!(server.reused(), 0);
}

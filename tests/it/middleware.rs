//! `genlogs_auth::middleware` against the stand-in's protected endpoint and a second loopback
//! server on another port (another origin): which requests get the headers, what a 401 does,
//! where redirects go, and that no secret reaches `Debug` or the trace output.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::capture::{capture, CaptureGuard, Captured};
use crate::support::defaults::REQUEST_TIMEOUT;
use crate::support::fixture::Fixture;
use crate::support::leak::assert_no_leak;
use bytes::Bytes;
use genlogs_auth::manager::TokenManagerBuilder;
use genlogs_auth::middleware::reqwest_middleware::ClientWithMiddleware;
use genlogs_auth::middleware::reqwest_middleware::{self, ClientBuilder, Middleware, Next};
use genlogs_auth::middleware::{self, token_error, GenLogsAuth, InvalidOrigin};
use genlogs_auth::testing::{Fault, MockGenLogs, RecordedRequest, PROTECTED_PATH};
use genlogs_auth::{AuthClient, MemoryStore, RefreshToken, StoredTokens, TokenManager};

/// A manager's configuration for a memory store holding `tokens`, on the real clock with the
/// crate's defaults.
fn real_time_manager(fx: &Fixture, tokens: StoredTokens) -> TokenManagerBuilder {
    TokenManager::builder(fx.client(REQUEST_TIMEOUT), MemoryStore::new(tokens))
}

/// The requests a stand-in received at its protected endpoint.
fn protected(genlogs: &MockGenLogs) -> Vec<RecordedRequest> {
    genlogs
        .requests()
        .into_iter()
        .filter(|r| r.path() == PROTECTED_PATH)
        .collect()
}

/// The access token the manager holds now (loaded from the store on the first call).
async fn current_token(manager: &TokenManager) -> String {
    manager
        .access_token()
        .await
        .unwrap()
        .expose_secret()
        .to_string()
}

/// The fixture's middleware (see [`Fixture::middleware`]) after GenLogs revoked the manager's
/// current access token early (it answers 401 to it); with that token.
async fn with_the_token_revoked(
    fx: &Fixture,
) -> (TokenManager, GenLogsAuth, ClientWithMiddleware, String) {
    let (manager, auth, client) = fx.middleware();
    let revoked = current_token(&manager).await;
    fx.genlogs.revoke_access_token(&revoked);
    (manager, auth, client, revoked)
}

/// A request through the middleware [`with_the_token_revoked`]: it meets the 401 and, retried,
/// succeeds.
async fn a_request_meeting_the_revoked_token(
    fx: &Fixture,
) -> (TokenManager, GenLogsAuth, ClientWithMiddleware, String) {
    let (manager, auth, client, revoked) = with_the_token_revoked(fx).await;
    let response = get_protected(fx, &client).await;
    assert_eq!(response.status(), 200);
    (manager, auth, client, revoked)
}

/// A GET of the stand-in's protected endpoint through `client`.
async fn get_protected(fx: &Fixture, client: &ClientWithMiddleware) -> reqwest::Response {
    client.get(fx.genlogs.protected_url()).send().await.unwrap()
}

/// Everything this thread logs at TRACE: the tests that read it run on a current-thread
/// runtime, so every event of the request, the manager's actor included, is captured.
fn capture_tracing() -> (Captured, CaptureGuard) {
    capture(tracing::Level::TRACE)
}

const REJECTED: &str = "GenLogs rejected the access token (401)";

#[tokio::test]
async fn an_access_token_revoked_early_is_invalidated_once_and_the_request_retried_once() {
    let (captured, _guard) = capture_tracing();
    let fx = Fixture::new().await;

    let (manager, _auth, _client, revoked) = a_request_meeting_the_revoked_token(&fx).await;

    let seen = protected(&fx.genlogs);
    assert_eq!(seen.len(), 2, "the first attempt and one retry");
    assert_eq!(seen[0].header("access-token"), Some(revoked.as_str()));
    let renewed = current_token(&manager).await;
    assert_ne!(renewed, revoked);
    assert_eq!(seen[1].header("access-token"), Some(renewed.as_str()));
    assert_eq!(
        fx.genlogs.refreshes(),
        1,
        "the invalidation caused one refresh"
    );
    let trace = captured.text();
    assert_eq!(
        trace.matches(REJECTED).count(),
        1,
        "one invalidation: {trace}"
    );
    assert_eq!(
        trace.matches("retried=true").count(),
        1,
        "one retry: {trace}"
    );
}

/// Lets no first attempt through until `n` of them are in, so that all of them carry the token
/// the manager held when they started (the revoked one); later calls (the retries) pass.
struct FirstAttemptsTogether {
    n: usize,
    seen: AtomicUsize,
    gate: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl Middleware for FirstAttemptsTogether {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.n {
            self.gate.wait().await;
        }
        next.run(request, extensions).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_requests_meeting_the_401_cause_one_refresh_and_all_succeed() {
    const N: usize = 100;
    let fx = Fixture::new().await;
    let (_manager, auth, _client, revoked) = with_the_token_revoked(&fx).await;
    let refreshes_before = fx.genlogs.refreshes();
    // `GenLogsAuth` outside, the gate inside: the gate sees requests with their headers set.
    let http = reqwest::Client::builder()
        .redirect(middleware::redirect_policy())
        .no_proxy()
        .build()
        .unwrap();
    let client = ClientBuilder::new(http)
        .with(auth.clone())
        .with(FirstAttemptsTogether {
            n: N,
            seen: AtomicUsize::new(0),
            gate: tokio::sync::Barrier::new(N),
        })
        .build();

    let url = fx.genlogs.protected_url();
    let requests: Vec<_> = (0..N)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    let all = async {
        for request in requests {
            assert_eq!(request.await.unwrap().unwrap(), 200);
        }
    };
    // A gate that never opens (fewer first attempts than expected) fails here instead of hanging.
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("every request finished");

    let refreshes = fx.genlogs.refreshes() - refreshes_before;
    let seen = protected(&fx.genlogs);
    let rejected = seen
        .iter()
        .filter(|r| r.header("access-token") == Some(revoked.as_str()))
        .count();
    let retries = seen.len() - N;
    eprintln!(
        "{N} concurrent requests: {} protected requests seen, {rejected} answered 401 \
         (each an invalidation), {retries} retries, {refreshes} refresh",
        seen.len()
    );
    assert_eq!(refreshes, 1);
    assert_eq!(rejected, N, "every first attempt carried the revoked token");
    assert_eq!(retries, N, "each 401 retried once");
}

#[tokio::test]
async fn a_request_to_another_origin_carries_neither_header() {
    let fx = Fixture::new().await;
    let (_manager, _auth, client) = fx.middleware();
    let other = MockGenLogs::start().await;

    client.get(other.protected_url()).send().await.unwrap();
    // The same server by another name is another origin too.
    let by_name = fx.genlogs.protected_url().replace("127.0.0.1", "localhost");
    client.get(by_name).send().await.unwrap();

    let elsewhere = other.last_request().unwrap();
    let by_name = fx.genlogs.last_request().unwrap();
    for request in [elsewhere, by_name] {
        assert!(request.header_values("access-token").is_empty());
        assert!(request.header_values("x-api-key").is_empty());
    }
    assert!(protected(&fx.genlogs)
        .iter()
        .all(|r| r.header_values("access-token").is_empty()));
}

#[tokio::test]
async fn on_another_origin_the_callers_own_header_is_left_alone_and_on_the_api_origin_replaced() {
    let fx = Fixture::new().await;
    let (manager, _auth, client) = fx.middleware();
    let other = MockGenLogs::start().await;

    client
        .get(other.protected_url())
        .header("x-api-key", "the-callers-own-key")
        .send()
        .await
        .unwrap();
    let response = client
        .get(fx.genlogs.protected_url())
        .header("access-token", "a-stale-token-of-the-caller")
        .send()
        .await
        .unwrap();

    assert_eq!(
        other.last_request().unwrap().header_values("x-api-key"),
        ["the-callers-own-key"]
    );
    assert!(other
        .last_request()
        .unwrap()
        .header_values("access-token")
        .is_empty());
    assert_eq!(response.status(), 200);
    let token = current_token(&manager).await;
    assert_eq!(
        fx.genlogs
            .last_request()
            .unwrap()
            .header_values("access-token"),
        [token.as_str()]
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed_and_the_other_origin_receives_nothing() {
    let fx = Fixture::new().await;
    let (_manager, _auth, client) = fx.middleware();
    let other = MockGenLogs::start().await;
    for status in [302, 307] {
        fx.genlogs.fail_next(
            1,
            Fault::text(status, "moved").with_header("location", &other.protected_url()),
        );

        let response = get_protected(&fx, &client).await;

        assert_eq!(response.status(), status, "the redirect itself comes back");
        assert_eq!(
            response.headers()["location"],
            other.protected_url().as_str()
        );
    }
    assert_eq!(other.requests().len(), 0);
}

/// What `redirect_policy` is for: reqwest's own policy strips only `Authorization`-like headers
/// on a cross-origin hop, so both GenLogs headers would arrive at the other origin.
#[tokio::test]
async fn with_reqwests_default_redirect_policy_both_headers_would_reach_the_other_origin() {
    let fx = Fixture::new().await;
    let (_manager, auth, _client) = fx.middleware();
    let other = MockGenLogs::start().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = ClientBuilder::new(http).with(auth.clone()).build();
    fx.genlogs.fail_next(
        1,
        Fault::text(307, "moved").with_header("location", &other.protected_url()),
    );

    get_protected(&fx, &client).await;

    let leaked = other.last_request().expect("reqwest followed the redirect");
    assert!(leaked.header("access-token").is_some());
    assert_eq!(leaked.header("x-api-key"), Some(fx.genlogs.api_key()));
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_with_the_headers() {
    let fx = Fixture::new().await;
    let (manager, _auth, client) = fx.middleware();
    let target = fx.genlogs.protected_url();
    fx.genlogs.fail_with(move |request| match request.path() {
        "/carriers/old" => Some(Fault::text(302, "moved").with_header("location", PROTECTED_PATH)),
        "/carriers/older" => Some(Fault::text(307, "moved").with_header("location", &target)),
        _ => None,
    });

    for path in ["/carriers/old", "/carriers/older"] {
        let response = client.get(fx.genlogs.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    let token = current_token(&manager).await;
    let paths: Vec<_> = fx
        .genlogs
        .requests()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/carriers/old",
            PROTECTED_PATH,
            "/carriers/older",
            PROTECTED_PATH
        ]
    );
    for request in fx.genlogs.requests() {
        assert_eq!(request.header("access-token"), Some(token.as_str()));
        assert_eq!(request.header("x-api-key"), Some(fx.genlogs.api_key()));
    }
}

#[tokio::test]
async fn a_streamed_body_gets_the_401_back_without_a_retry() {
    let fx = Fixture::new().await;
    let (_manager, _auth, client, _revoked) = with_the_token_revoked(&fx).await;
    let pieces = [Ok::<_, std::io::Error>(Bytes::from_static(b"{}"))];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));

    let response = client
        .get(fx.genlogs.protected_url())
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(protected(&fx.genlogs).len(), 1, "no retry");
    assert_eq!(fx.genlogs.refreshes(), 0);
    // The token was invalidated all the same: the next request refreshes first.
    let next = get_protected(&fx, &client).await;
    assert_eq!(next.status(), 200);
    assert_eq!(protected(&fx.genlogs).len(), 2);
    assert_eq!(fx.genlogs.refreshes(), 1);
}

#[tokio::test]
async fn a_403_or_any_other_status_but_401_is_not_retried() {
    let fx = Fixture::new().await;
    let (manager, _auth, client) = fx.middleware();
    let token = current_token(&manager).await;
    let faults = [
        Fault::forbidden(),
        Fault::server_error(),
        Fault::rate_limited(1),
        Fault::text(400, "bad request"),
    ];
    for (n, fault) in faults.into_iter().enumerate() {
        let status = match &fault {
            Fault::Respond { status, .. } => *status,
            _ => unreachable!(),
        };
        fx.genlogs.fail_next(1, fault);

        let response = get_protected(&fx, &client).await;

        assert_eq!(response.status(), status);
        assert_eq!(protected(&fx.genlogs).len(), n + 1, "{status}: sent once");
    }
    assert_eq!(fx.genlogs.refreshes(), 0);
    assert_eq!(current_token(&manager).await, token, "nothing invalidated");
}

#[tokio::test]
async fn a_second_401_after_the_retry_is_returned_as_is() {
    let (captured, _guard) = capture_tracing();
    let fx = Fixture::new().await;
    let (manager, _auth, client) = fx.middleware();
    fx.genlogs.fail_with(|request| {
        (request.path() == PROTECTED_PATH).then(|| {
            Fault::json(
                401,
                serde_json::json!({ "detail": "Missing or incorrect Access-Token" }),
            )
        })
    });

    let response = get_protected(&fx, &client).await;

    assert_eq!(response.status(), 401);
    let seen = protected(&fx.genlogs);
    assert_eq!(seen.len(), 2, "one retry, no loop");
    assert_ne!(
        seen[0].header("access-token"),
        seen[1].header("access-token")
    );
    assert_eq!(fx.genlogs.refreshes(), 1);
    // The token of the retry was invalidated too: the manager hands out none until a refresh.
    assert!(manager.cached_access_token().is_none());
    let trace = captured.text();
    assert_eq!(
        trace.matches(REJECTED).count(),
        2,
        "both tokens invalidated: {trace}"
    );
    assert_eq!(trace.matches("retried=true").count(), 1, "{trace}");
}

#[tokio::test]
async fn no_secret_in_the_debug_of_the_middleware_or_client_nor_in_the_trace_of_a_retry() {
    let (captured, _guard) = capture_tracing();
    let fx = Fixture::new().await;
    let (_manager, auth, client, _revoked) = a_request_meeting_the_revoked_token(&fx).await;

    let trace = captured.text();
    assert!(trace.contains("retried=true"), "{trace}");
    let renderings = [
        format!("{:?}", auth),
        format!("{:#?}", auth),
        format!("{:?}", client),
        format!("{:#?}", client),
        trace,
    ];
    assert!(renderings[0].contains("127.0.0.1"), "{}", renderings[0]);
    let mut secrets = fx.genlogs.issued_tokens();
    secrets.push(fx.genlogs.api_key().to_string());
    assert_eq!(secrets.len(), 5, "two pairs and the api key");
    for rendering in &renderings {
        assert_no_leak(rendering, &secrets);
    }
}

#[tokio::test]
async fn a_token_error_stops_the_request_and_stays_reachable() {
    let fx = Fixture::new().await;
    let genlogs = &fx.genlogs;
    let dead = "rt0123456789abcdef0123456789abcdef";
    let manager = real_time_manager(
        &fx,
        StoredTokens::from_refresh_token(RefreshToken::new(dead)),
    )
    .build();
    let auth = GenLogsAuth::new(manager)
        .with_api_origin(&genlogs.url("/"))
        .unwrap();

    let error = middleware::client(auth)
        .get(genlogs.protected_url())
        .send()
        .await
        .unwrap_err();

    assert!(error.is_middleware());
    let cause = token_error(&error).expect("the manager's TokenError");
    assert!(cause.needs_new_tokens(), "{cause:?}");
    assert!(
        protected(genlogs).is_empty(),
        "nothing sent without a token"
    );
    assert_no_leak(&error, &[dead, genlogs.api_key()]);
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_as_the_api_origin() {
    let client = AuthClient::builder("key").build().unwrap();
    let manager = TokenManager::builder(client, MemoryStore::default()).build();
    let auth = GenLogsAuth::new(manager);
    assert_eq!(
        auth.clone()
            .with_api_origin("http://api.genlogs.io")
            .unwrap_err(),
        InvalidOrigin::Insecure
    );
    assert!(matches!(
        auth.clone()
            .with_api_origin("https://api.genlogs.io/carriers"),
        Err(InvalidOrigin::Unusable(_))
    ));
    assert!(auth.with_api_origin("https://api.genlogs.io:8443/").is_ok());
}

#[tokio::test]
async fn an_endpoint_rejecting_every_token_backs_off_and_a_success_ends_it() {
    let fx = Fixture::new().await;
    let genlogs = &fx.genlogs;
    let manager = real_time_manager(&fx, genlogs.issue_tokens())
        .with_min_refresh_interval(Duration::from_millis(200))
        .build();
    let auth = GenLogsAuth::new(manager)
        .with_api_origin(&genlogs.url(""))
        .unwrap();
    let client = middleware::client(auth);
    let reject_all = |genlogs: &MockGenLogs| {
        genlogs.fail_with(|r| (r.path() == PROTECTED_PATH).then(Fault::unauthorized))
    };
    reject_all(genlogs);
    // The seeded token and the one fetched for the retry: two fresh tokens rejected in a row.
    let response = client.get(genlogs.protected_url()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(genlogs.refreshes(), 1);
    // The next request fails with the backoff instead of rotating the grant again.
    let error = client
        .get(genlogs.protected_url())
        .send()
        .await
        .unwrap_err();
    match token_error(&error) {
        Some(genlogs_auth::TokenError::AccessRejected { consecutive: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(genlogs.refreshes(), 1, "no refresh during the backoff");
    // The endpoint works again: once the backoff (400 ms) is over, a success is reported.
    genlogs.clear_faults();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let response = client.get(genlogs.protected_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(genlogs.refreshes(), 2);
    // It breaks again: a new run starts at one, so the 401 gets its retry with a new token
    // (the third in a row would have failed with the backoff).
    reject_all(genlogs);
    let response = client.get(genlogs.protected_url()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(genlogs.refreshes(), 3, "retried with a new token");
}

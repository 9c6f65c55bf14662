//! A GenLogs stand-in for tests: yours and this crate's (feature `testing`).
//!
//! The stand-in the crate tests itself with is public: add this crate with the `testing` feature
//! to your `[dev-dependencies]` (`cargo add --dev genlogs-auth --features testing`).
//! [`MockGenLogs::start().await`](MockGenLogs::start) is a real HTTP server on a free loopback
//! port, running in your test's tokio runtime, that behaves like GenLogs where it matters to a
//! client:
//!
//! - **Rotation.** Every refresh answers a new access and refresh token (lifetimes
//!   configurable) and kills the refresh token sent. [`issue_tokens`](MockGenLogs::issue_tokens)
//!   plays `POST /auth/token` (email and password) and returns [`StoredTokens`](crate::StoredTokens)
//!   ready to seed a store.
//! - **Reuse detection.** Presenting a rotated refresh token again is answered 401, counted in
//!   [`reuses`](MockGenLogs::reuses), and (by default, as RFC 9700 §4.14 recommends) revokes the
//!   whole token family ([`revoke_family_on_reuse(false)`](MockGenLogsBuilder::with_revoke_family_on_reuse)
//!   to only reject).
//! - **Its bodies.** FastAPI's 401 `{"detail": …}` and 422 list, the gateway's 403 and 429
//!   `{"message": …}`, text 500s. A wrong or missing `x-api-key` gets the gateway's 403.
//! - **A protected endpoint** ([`PROTECTED_PATH`], at [`protected_url`](MockGenLogs::protected_url))
//!   that checks `Access-Token` and `x-api-key` like every other GenLogs endpoint and answers
//!   401 for an expired, revoked or unknown access token, so a test can run a whole flow;
//!   [`revoke_access_token(token)`](MockGenLogs::revoke_access_token) makes it answer one access
//!   token 401 before its time.
//! - **Faults on demand** ([`Fault`]) for the next N requests
//!   ([`fail_next`](MockGenLogs::fail_next)), all of them
//!   ([`fail_always`](MockGenLogs::fail_always)) or per request
//!   ([`fail_with`](MockGenLogs::fail_with)): any status with body and headers
//!   ([`Fault::rate_limited(30)`](Fault::rate_limited) sets `Retry-After`), a stall, a dropped
//!   connection with or without the refresh taking effect, garbage, an oversized or trickled
//!   body, every `expires` form ([`ExpiresFormat`]).
//! - **Assertions**: [`refreshes`](MockGenLogs::refreshes), [`reuses`](MockGenLogs::reuses),
//!   [`requests`](MockGenLogs::requests) and [`last_request`](MockGenLogs::last_request) with
//!   headers. `Debug` output never shows a credential.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use genlogs_auth::testing::{Fault, MockGenLogs};
//! use genlogs_auth::{AuthClient, MemoryStore, TokenManager};
//!
//! let genlogs = MockGenLogs::start().await;
//! let client = AuthClient::builder(genlogs.api_key()).with_base_url(genlogs.base_url()).build()?;
//! let manager = TokenManager::builder(client, MemoryStore::new(genlogs.issue_tokens())).build();
//!
//! // The protected endpoint accepts the manager's headers.
//! let headers = manager.auth_headers().await?;
//! let answer = reqwest::Client::new().get(genlogs.protected_url()).headers(headers).send().await?;
//! assert_eq!(answer.status(), 200);
//!
//! // The next request gets a 429 with Retry-After.
//! genlogs.fail_next(1, Fault::rate_limited(30));
//! # Ok(()) }
//! ```
//!
//! Your own code under test, with the manager and the middleware in front of it:
//!
//! ```
//! use genlogs_auth::middleware::{self, reqwest_middleware::ClientWithMiddleware, GenLogsAuth};
//! use genlogs_auth::testing::{Fault, MockGenLogs};
//! use genlogs_auth::{AuthClient, MemoryStore, StoredTokens, TokenManager};
//!
//! /// Your code: lists carriers with whatever token the manager holds.
//! async fn carriers(client: &ClientWithMiddleware, url: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
//!     Ok(client.get(url).send().await?.error_for_status()?.json().await?)
//! }
//!
//! // In tests/carriers.rs, under #[tokio::test]:
//! async fn carriers_refreshes_first_and_reports_an_outage() {
//!     let genlogs = MockGenLogs::start().await;
//!     // Only a refresh token, as from `POST /auth/token`: the first call must refresh.
//!     let seed = StoredTokens::from_refresh_token(genlogs.issue_tokens().into_refresh_token());
//!     let client = AuthClient::builder(genlogs.api_key()).with_base_url(genlogs.base_url()).build().unwrap();
//!     let manager = TokenManager::builder(client, MemoryStore::new(seed)).build();
//!     let auth = GenLogsAuth::new(manager).with_api_origin(&genlogs.url("")).unwrap();
//!     let client = middleware::client(auth);
//!
//!     let found = carriers(&client, &genlogs.protected_url()).await.unwrap();
//!     assert_eq!(found["carriers"][0]["name"], "ACME Freight");
//!     assert_eq!(genlogs.refreshes(), 1);
//!     assert!(genlogs.last_request().unwrap().header("access-token").is_some());
//!
//!     genlogs.fail_next(1, Fault::unavailable());
//!     assert!(carriers(&client, &genlogs.protected_url()).await.is_err());
//!     assert_eq!(genlogs.refreshes(), 1, "the cached token was reused");
//! }
//! # tokio::runtime::Runtime::new().unwrap().block_on(carriers_refreshes_first_and_reports_an_outage());
//! ```
//!
//! The server stops when the last clone of its handle is dropped.
//!
//! For request-level expectations instead, feature `httpmock` adds progenitor's typed
//! [httpmock](https://docs.rs/httpmock) extensions: `genlogs_auth::httpmock::MockServerExt` gives
//! `server.refresh_tokens(|when, then| { when.refresh_token("rt-1"); then.ok(&body); })`, with the
//! mock server's root as the client's base URL.

mod answer;
mod fault;
mod mock;
mod request;
mod server;
mod tokens;

pub use answer::{PROTECTED_PATH, REFRESH_PATH};
pub use fault::{ExpiresFormat, ExpiresStyle, Fault};
pub use mock::{
    MockGenLogs, MockGenLogsBuilder, DEFAULT_ACCESS_LIFETIME, DEFAULT_API_KEY,
    DEFAULT_REFRESH_LIFETIME,
};
pub use request::RecordedRequest;

//! A GenLogs stand-in for tests: yours and this crate's (feature `testing`).
//!
//! [`MockGenLogs`] is a real HTTP server on a free loopback port, running in the caller's tokio
//! runtime, that behaves like GenLogs where it matters to a client:
//!
//! - **Rotation.** Every refresh answers a new access and refresh token (lifetimes
//!   configurable) and kills the refresh token sent. [`issue_tokens`](MockGenLogs::issue_tokens)
//!   plays `POST /auth/token` (email and password) and returns [`StoredTokens`](crate::StoredTokens)
//!   ready to seed a store.
//! - **Reuse detection.** Presenting a rotated refresh token again is answered 401, counted in
//!   [`reuses`](MockGenLogs::reuses), and (by default, as RFC 9700 §4.14 recommends) revokes the
//!   whole token family.
//! - **Its bodies.** FastAPI's 401 `{"detail": …}` and 422 list, the gateway's 403 and 429
//!   `{"message": …}`, text 500s. A wrong or missing `x-api-key` gets the gateway's 403.
//! - **A protected endpoint** ([`PROTECTED_PATH`], at [`protected_url`](MockGenLogs::protected_url))
//!   that checks `Access-Token` and `x-api-key` and answers 401 for an expired, revoked or
//!   unknown access token, so a test can run a whole flow.
//! - **Faults on demand** for the next N requests or all of them ([`Fault`]): any status with
//!   body and headers (`Retry-After`), a stall, a dropped connection with or without the
//!   refresh taking effect, garbage, an oversized or trickled body, every `expires` form
//!   ([`ExpiresFormat`]).
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
//! The server stops when the last clone of its handle is dropped.

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
    DEFAULT_REFRESH_LIFETIME, MAX_RECORDED_REQUESTS,
};
pub use request::RecordedRequest;

//! Typed [`httpmock`](https://docs.rs/httpmock) expectations for the refresh endpoint, generated
//! by progenitor from the same corrected spec as the client (feature `httpmock`).
//!
//! For request-level expectations; [`testing::MockGenLogs`](crate::testing) is the stand-in that
//! behaves like GenLogs. Point the client at the mock server's base URL (no `/auth`):
//!
//! ```no_run
//! # async fn run() {
//! use genlogs_auth::httpmock::MockServerExt;
//! let server = ::httpmock::MockServer::start_async().await;
//! let mock = server.refresh_tokens(|when, then| {
//!     when.refresh_token("rt-1");
//!     then.unauthorized(serde_json::json!({ "detail": "Invalid refresh token" }));
//! });
//! # let _ = mock;
//! # }
//! ```

#![allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/httpmock.rs"));

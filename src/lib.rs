//! Get and keep valid access tokens for the [GenLogs](https://genlogs.io) API.
//!
//! GenLogs' `POST /auth/token/refresh` exchanges a refresh token for a new access token and a new,
//! single-use refresh token. This crate is a typed client for it, generated with
//! [progenitor](https://github.com/oxidecomputer/progenitor) from GenLogs' OpenAPI document and
//! corrected where that document is wrong, and a [`TokenManager`] that keeps a valid access token
//! for a long-running process: it refreshes ahead of expiry, once however many callers ask, and
//! saves each rotated refresh token before anyone sees the new access token. No error, `Debug`
//! output, log line or span carries a token, the api key or a URL.
//!
//! ```no_run
//! use genlogs_auth::{AuthClient, FileStore, TokenManager};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = AuthClient::builder(std::env::var("GENLOGS_API_KEY")?).build()?;
//! // Seed the file once with `StoredTokens::from_refresh_token(…)` (from `POST /auth/token`).
//! let manager = TokenManager::builder(client, FileStore::new("/var/lib/myapp/genlogs-tokens.json")).build();
//! let _keep_alive = manager.keep_alive(); // renews the grant while the service is idle
//! let headers = manager.auth_headers().await?; // `Access-Token` and `x-api-key` for any GenLogs call
//! # let _ = headers;
//! # Ok(())
//! # }
//! ```
//!
//! # Where to start
//!
//! | you want | read |
//! |---|---|
//! | one refresh, with typed errors | [`AuthClient`], its configuration [`AuthClientBuilder`](client::AuthClientBuilder), and [`Error`] (what each failure means and what to do) |
//! | a valid access token for weeks | [`TokenManager`] (behaviour, keeping a grant alive), [`TokenManagerBuilder`](manager::TokenManagerBuilder) (settings and defaults), [`TokenError`] |
//! | where tokens are kept | [`TokenStore`], [`MemoryStore`] (one process), [`FileStore`] (processes on one host), [`RedisStore`] (a fleet; feature `redis`: guarantees, Cluster, Sentinel, high availability) |
//! | to call other GenLogs endpoints | [`middleware`] (feature `middleware`), or [`TokenManager::auth_headers`] |
//! | metrics | [`metrics`] (feature `metrics`) |
//! | to test your code against a GenLogs stand-in | [`testing`] (feature `testing`), [`httpmock`] (feature `httpmock`) |
//! | the generated client and wire types | [`raw`], [`AuthClient::raw`] |
//!
//! # Cargo features
//!
#![doc = document_features::document_features!()]
//!
//! Outside these pages, in the repository: `README.md` (how to start), `codegen/README.md` (what the
//! crate corrects in GenLogs' document, and how to update it), `benches/README.md` (benchmark
//! figures) and `CHANGELOG.md`.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(unreachable_pub)]

mod builder;
pub mod client;
pub mod clock;
mod config;
mod error;
mod expiry;
mod generated;
pub mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
mod metrics;
mod redact;
mod response;
mod retry_after;
mod secret;
mod session;
pub mod store;
mod transport;

#[cfg(feature = "httpmock")]
pub mod httpmock;
#[cfg(feature = "middleware")]
pub mod middleware;
#[cfg(feature = "testing")]
pub mod testing;

// The types nearly every user names; everything else lives in its module (`client`, `manager`,
// `store`, `store::redis`, `testing`, `middleware`, `raw`).
pub(crate) use builder::setters;
pub use client::AuthClient;
pub use error::{ConfigError, Error};
pub use manager::{TokenError, TokenManager};
pub use secret::{AccessToken, ApiKey, RefreshToken};
pub use session::Session;
#[cfg(feature = "redis")]
pub use store::redis::RedisStore;
pub use store::{FileStore, MemoryStore, StoreError, StoredTokens, TokenStore};

/// The reqwest this crate is built with, for [`AuthClientBuilder::with_http_client_builder`](client::AuthClientBuilder::with_http_client_builder)
/// (`genlogs_auth::reqwest::Client::builder()`) and for sending the
/// [`auth_headers`](TokenManager::auth_headers) to other GenLogs endpoints, without a second,
/// possibly different, reqwest in the dependency tree.
pub use reqwest;

/// The code progenitor generated from the corrected spec, for advanced use: the raw client
/// (also reachable through [`AuthClient::raw`]) and the wire types.
pub mod raw {
    /// The error of a raw call: progenitor's (`progenitor_client::Error`), not the crate's own
    /// [`Error`](crate::Error), which [`AuthClient::refresh`](crate::AuthClient::refresh) returns.
    pub use crate::generated::Error as RawError;
    pub use crate::generated::{types, ByteStream, Client, ResponseValue};
    /// What the raw client carries to the crate's request hooks (the api key, the timeout, the
    /// response size limit): opaque, and only made by [`AuthClient`](crate::AuthClient), whose
    /// [`raw()`](crate::AuthClient::raw) client holds one.
    pub use crate::transport::Transport;
}

// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

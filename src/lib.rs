#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]

mod client;
mod clock;
mod config;
mod error;
mod expiry;
mod generated;
mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
mod metrics;
mod redact;
mod response;
mod retry_after;
mod secret;
mod session;
mod store;
mod transport;

#[cfg(feature = "httpmock")]
pub mod httpmock;
#[cfg(feature = "middleware")]
pub mod middleware;
#[cfg(feature = "testing")]
pub mod testing;

pub use async_trait::async_trait;
pub use client::AuthClient;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT, MIN_TIMEOUT,
};
pub use error::{
    ConfigError, Error, InvalidAccessToken, RecoveredRefreshToken, UnknownOutcome,
    ValidationProblem,
};
pub use expiry::{Expiry, ExpiryParseError};
pub use manager::{
    GrantRenewal, KeepAlive, TokenError, TokenManager, TokenManagerBuilder,
    DEFAULT_KEEP_ALIVE_MARGIN, DEFAULT_MAX_CLOCK_SKEW, DEFAULT_MIN_REFRESH_INTERVAL,
    DEFAULT_MIN_VALIDITY, DEFAULT_REFRESH_JITTER, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRY_COOLDOWN,
    MAX_ACCESS_LIFETIME, MAX_COOLDOWN, STORE_WATCH_INTERVAL,
};
pub use redact::MAX_MESSAGE_CHARS;
pub use retry_after::MAX_RETRY_AFTER;
pub use secret::{AccessToken, ApiKey, RefreshToken, Token};
pub use session::Session;
#[cfg(feature = "redis")]
pub use store::redis::{
    EncryptionKey, InvalidKey, RedisStore, DEFAULT_LEASE, DEFAULT_LEASE_MARGIN,
    DEFAULT_REDIS_TIMEOUT, MAX_REPLICA_WAIT,
};
pub use store::{
    FileStore, Fingerprint, Lineage, MemoryStore, NewTokensReason, StoreError, StoreLock,
    StoredTokens, TokenHealth, TokenState, TokenStore, UnreadableReason, DEFAULT_LOCK_WAIT,
    RESTORE_GRACE,
};
pub use transport::{BodyRejected, Transport, MAX_JSON_DEPTH};

/// The HTTP types of this crate's API ([`Error::status`], [`AuthClient::auth_headers`],
/// [`TokenManager::auth_headers`]), so that naming them needs no direct `reqwest` or `http`
/// dependency. They are reqwest's re-exports of the `http` crate's types.
pub use reqwest::{
    header::{HeaderMap, HeaderValue},
    StatusCode,
};

/// The reqwest this crate is built with, for [`AuthClientBuilder::with_http_client_builder`]
/// (`genlogs_auth::reqwest::Client::builder()`) and for sending the
/// [`auth_headers`](TokenManager::auth_headers) to other GenLogs endpoints, without a second,
/// possibly different, reqwest in the dependency tree.
pub use reqwest;

/// The code progenitor generated from the corrected spec, for advanced use: the raw client
/// (also reachable through [`AuthClient::generated`]) and the wire types.
pub mod raw {
    pub use crate::generated::{types, ByteStream, Client, Error, ResponseValue};
}

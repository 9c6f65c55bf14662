#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]

mod client;
mod clock;
mod config;
mod error;
mod expiry;
mod file_store;
mod generated;
mod manager;
#[cfg(feature = "redis")]
mod redis_store;
mod response;
mod secret;
mod session;
mod store;
mod transport;

pub use async_trait::async_trait;
pub use client::AuthClient;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
};
pub use error::{ConfigError, Error, RecoveredRefreshToken, UnknownOutcome, ValidationProblem};
pub use expiry::{Expiry, ExpiryParseError};
pub use file_store::{FileStore, DEFAULT_LOCK_WAIT};
pub use manager::{
    TokenError, TokenManager, TokenManagerBuilder, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRY_COOLDOWN,
};
#[cfg(feature = "redis")]
pub use redis_store::{
    EncryptionKey, InvalidKey, RedisStore, DEFAULT_LEASE, DEFAULT_LEASE_MARGIN,
    DEFAULT_REDIS_TIMEOUT,
};
pub use response::MAX_MESSAGE_CHARS;
pub use secret::{AccessToken, ApiKey, RefreshToken, Token};
pub use session::Session;
pub use store::{
    MemoryStore, NewTokensReason, StoreError, StoreLock, StoredTokens, TokenState, TokenStore,
    UnreadableReason,
};
pub use transport::{BodyRejected, Transport, MAX_JSON_DEPTH};

/// The code progenitor generated from the corrected spec, for advanced use: the raw client
/// (also reachable through [`AuthClient::generated`]) and the wire types.
pub mod raw {
    pub use crate::generated::{types, ByteStream, Client, Error, ResponseValue};
}

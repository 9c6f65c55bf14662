#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]

mod client;
mod config;
mod error;
mod expiry;
mod generated;
mod response;
mod secret;
mod session;
mod transport;

pub use client::AuthClient;
pub use config::{
    AuthClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
};
pub use error::{ConfigError, Error, RecoveredRefreshToken, UnknownOutcome, ValidationProblem};
pub use expiry::{Expiry, ExpiryParseError};
pub use response::MAX_MESSAGE_CHARS;
pub use secret::{AccessToken, ApiKey, RefreshToken, Token};
pub use session::Session;
pub use transport::{BodyTooLarge, Transport};

/// The code progenitor generated from the corrected spec, for advanced use: the raw client
/// (also reachable through [`AuthClient::generated`]) and the wire types.
pub mod raw {
    pub use crate::generated::{types, ByteStream, Client, Error, ResponseValue};
}

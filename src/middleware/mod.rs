//! Authentication for every other GenLogs endpoint, as a
//! [reqwest-middleware](https://docs.rs/reqwest-middleware) layer (feature `middleware`).
//!
//! [`GenLogsAuth`] adds `Access-Token` and `x-api-key` (both sensitive) to requests for the
//! GenLogs API origin only, from a [`TokenManager`](crate::TokenManager), and retries once with
//! a new token after a 401. [`client`] wraps it in a ready client whose redirect policy
//! ([`redirect_policy`]) never follows a redirect to another origin, which reqwest's default
//! would do with both headers.
//!
//! ```no_run
//! # async fn run(manager: genlogs_auth::TokenManager) -> Result<(), Box<dyn std::error::Error>> {
//! use genlogs_auth::middleware::{self, GenLogsAuth};
//!
//! let client = middleware::client(GenLogsAuth::new(manager));
//! let carriers = client
//!     .get("https://api.genlogs.io/carriers/recommendations")
//!     .send()
//!     .await?;
//! # let _ = carriers;
//! # Ok(()) }
//! ```
//!
//! With other middleware on your own `reqwest_middleware::ClientBuilder` (retries, tracing), put
//! `GenLogsAuth` last, nearest the HTTP client: each attempt of an outer retry then gets the
//! current token. Give your reqwest client [`redirect_policy`].

mod auth;
mod origin;
mod redirect;

pub use auth::GenLogsAuth;
pub use origin::{InvalidOrigin, DEFAULT_API_ORIGIN};
pub use redirect::{redirect_policy, MAX_REDIRECTS};

/// The reqwest-middleware this crate is built with, to name its types (`ClientBuilder`,
/// `ClientWithMiddleware`, `Error`) without a second, possibly different, version in the
/// dependency tree.
pub use reqwest_middleware;

use reqwest_middleware::ClientWithMiddleware;

use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
use crate::manager::TokenError;

/// A client that authenticates GenLogs requests with `auth`, over a reqwest client that:
///
/// - follows redirects by [`redirect_policy`] (same origin only, at most [`MAX_REDIRECTS`]);
/// - sends no `Referer` (it would repeat a URL; GenLogs needs none);
/// - connects within [`DEFAULT_CONNECT_TIMEOUT`] and finishes
///   each request, body included, within [`DEFAULT_TIMEOUT`] (longer
///   for one request with `RequestBuilder::timeout`);
/// - uses no proxy when the API origin is plain http to loopback, so that `HTTP_PROXY` cannot
///   carry credentials off the host in clear (as the auth client does).
///
/// For other settings, build your own reqwest client with [`redirect_policy`] and wrap it:
/// `reqwest_middleware::ClientBuilder::new(http).with(auth).build()`.
///
/// # Panics
/// When the TLS backend cannot be initialized, as `reqwest::Client::new` does.
pub fn client(auth: GenLogsAuth) -> ClientWithMiddleware {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("genlogs-auth/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        .referer(false)
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .timeout(DEFAULT_TIMEOUT);
    let builder = if auth.origin().is_loopback() {
        builder.no_proxy()
    } else {
        builder
    };
    let http = builder
        .build()
        .expect("the HTTP client could not be built (TLS backend)");
    reqwest_middleware::ClientBuilder::new(http)
        .with(auth)
        .build()
}

/// The manager's [`TokenError`] behind a failed request, if that is why it failed (the
/// middleware wraps it in `reqwest_middleware::Error::Middleware`).
///
/// ```no_run
/// # async fn run(client: genlogs_auth::middleware::reqwest_middleware::ClientWithMiddleware) {
/// use genlogs_auth::middleware::token_error;
///
/// match client.get("https://api.genlogs.io/carriers/recommendations").send().await {
///     Err(error) if token_error(&error).is_some_and(|e| e.needs_new_tokens()) => {
///         // An operator must create new tokens (`POST /auth/token`).
///     }
///     other => { let _ = other; }
/// }
/// # }
/// ```
pub fn token_error(error: &reqwest_middleware::Error) -> Option<&TokenError> {
    match error {
        reqwest_middleware::Error::Middleware(error) => error.downcast_ref(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

//! [`AuthClient`]: the generated refresh operation, with typed results and errors.

use progenitor_client::{ClientInfo, Error as RawError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, DATE};

use crate::config::AuthClientBuilder;
use crate::error::{ConfigError, Error, InvalidAccessToken, RecoveredRefreshToken, UnknownOutcome};
use crate::generated;
use crate::redact::Scrubber;
use crate::response::{error_for_status, undecodable_success};
use crate::secret::{AccessToken, ApiKey, RefreshToken};
use crate::session::Session;
use crate::transport::{read_buffered, BodyRejected, API_KEY_HEADER};

/// The header that carries the access token to every other GenLogs endpoint.
const ACCESS_TOKEN_HEADER: HeaderName = HeaderName::from_static("access-token");

/// A client for GenLogs' auth API, configured once with the api key.
///
/// Cheap to clone (the HTTP connection pool is shared).
#[derive(Debug, Clone)]
pub struct AuthClient {
    raw: generated::Client,
    /// Kept to scrub it out of anything a response says.
    api_key: ApiKey,
}

impl AuthClient {
    /// Starts a configuration with the api key GenLogs issued.
    pub fn builder(api_key: impl Into<ApiKey>) -> AuthClientBuilder {
        AuthClientBuilder::new(api_key.into())
    }

    pub(crate) fn from_parts(raw: generated::Client, api_key: ApiKey) -> Self {
        Self { raw, api_key }
    }

    /// The generated client, for operations this layer does not wrap. It sends the api key,
    /// applies the timeout and the body cap, and strips URLs from transport errors like
    /// [`refresh`](Self::refresh), but its errors are progenitor's: their `Display` prints an
    /// undecodable body, which may hold tokens. Prefer `refresh`, whose errors never do.
    pub fn generated(&self) -> &generated::Client {
        &self.raw
    }

    /// The headers every other GenLogs endpoint authenticates with: `Access-Token: <access>`
    /// and `x-api-key: <api key>`, both marked sensitive (their `Debug` prints `Sensitive`, and
    /// HTTP/2's HPACK never indexes them).
    ///
    /// Fails only when `access` cannot be a header value (a control character or a line break).
    pub fn auth_headers(&self, access: &AccessToken) -> Result<HeaderMap, InvalidAccessToken> {
        let mut access =
            HeaderValue::from_str(access.expose_secret()).map_err(|_| InvalidAccessToken)?;
        access.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(ACCESS_TOKEN_HEADER, access);
        // The one sensitive copy of the api key, made when the client was built.
        headers.insert(API_KEY_HEADER, self.raw.inner().api_key().clone());
        Ok(headers)
    }

    /// The api key (the key the fingerprints of rotated-away refresh tokens are made with).
    pub(crate) fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The total time one request may take (the manager keeps a store lease at least this long
    /// before it sends one).
    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        progenitor_client::ClientInfo::inner(&self.raw).timeout()
    }

    /// Exchanges `refresh_token` for a new access token and a new refresh token.
    ///
    /// The token sent is single use: after success only the returned one is valid, and after
    /// [`Error::OutcomeUnknown`] it may already be dead (see
    /// [`Error::may_have_spent_token`]).
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Session, Error> {
        match self
            .raw
            .refresh_tokens_required(refresh_token.expose_secret())
            .await
        {
            Ok(response) => {
                let status = response.status();
                let server_date = response
                    .headers()
                    .get(DATE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|text| chrono::DateTime::parse_from_rfc2822(text).ok())
                    .map(|date| date.to_utc());
                let session = Session::from_response(response.into_inner(), server_date);
                match blank_token(&session) {
                    None => Ok(session),
                    Some(path) => Err(blank_token_error(status, path, session)),
                }
            }
            // Built only on the error path: it encodes both secrets to search for them.
            Err(error) => Err(classify(
                error,
                &Scrubber::new([refresh_token.expose_secret(), self.api_key.expose_secret()]),
            )),
        }
    }
}

/// The JSON path of an empty or white-space-only token in a decoded response. Such a token
/// cannot authenticate anything: a session holding it would fail every call.
fn blank_token(session: &Session) -> Option<&'static str> {
    let blank = |token: &str| token.trim().is_empty();
    if blank(session.refresh_token.expose_secret()) {
        Some("refresh_token_data.token")
    } else if blank(session.access_token.expose_secret()) {
        Some("access_token_data.token")
    } else {
        None
    }
}

/// A 2xx whose token at `path` is blank: not a token response. The refresh token is handed back
/// when it is the one that is fine, since the one sent is now dead.
fn blank_token_error(status: reqwest::StatusCode, path: &str, session: Session) -> Error {
    let recovered = (path != "refresh_token_data.token").then(|| RecoveredRefreshToken {
        token: session.refresh_token,
        expires: Some(crate::Expiry::from(session.refresh_expires)),
    });
    Error::OutcomeUnknown {
        reason: UnknownOutcome::Undecodable {
            status,
            problem: format!("`{path}`: the token is empty or white space only"),
        },
        recovered,
        source: None,
    }
}

/// progenitor's error → the crate's. progenitor's own `Display` prints bodies and URLs, so
/// nothing of it is kept but the transport cause, stripped of its URL.
///
/// Synchronous on purpose: progenitor's `ByteStream` is not `Send`, so it must not live across an
/// `.await`; the hooks already read every body into memory, so nothing here waits.
fn classify(error: RawError<generated::ByteStream>, scrubber: &Scrubber) -> Error {
    match error {
        RawError::ErrorResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_buffered(response.into_inner().into_inner());
            error_for_status(status, &headers, body, scrubber)
        }
        RawError::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_buffered(Box::pin(response.bytes_stream()));
            match (status.is_success(), body) {
                (true, Ok(body)) => undecodable_success(status, &body),
                (true, Err(Some(error))) => body_failed(error),
                (true, Err(None)) => Error::OutcomeUnknown {
                    reason: UnknownOutcome::ConnectionLost,
                    recovered: None,
                    source: None,
                },
                (false, body) => error_for_status(status, &headers, body, scrubber),
            }
        }
        RawError::InvalidResponsePayload(body, _) => {
            // Only the 200 arm decodes JSON (error bodies are raw streams).
            undecodable_success(reqwest::StatusCode::OK, &body)
        }
        RawError::ResponseBodyError(error) => body_failed(error),
        RawError::CommunicationError(error) => transport_failed(error),
        RawError::InvalidRequest(_) | RawError::Custom(_) => {
            ConfigError::BaseUrl("the request could not be built from it").into()
        }
        RawError::InvalidUpgrade(error) => body_failed(error),
    }
}

/// The request never got a response.
fn transport_failed(error: reqwest::Error) -> Error {
    let error = error.without_url();
    if error.is_builder() {
        ConfigError::BaseUrl("the request could not be built from it").into()
    } else if error.is_connect() {
        // Also a connect *timeout*: reqwest's connector wraps the connection attempt (DNS, TCP,
        // TLS, a proxy's CONNECT) in `connect_timeout`, and hyper-util reports its failure as a
        // connect error, so `is_connect()` and `is_timeout()` are both true. The total timeout
        // instead surfaces as a bare timeout (`is_connect()` false) whatever phase it cuts; the
        // builder keeps the connect timeout below it so that it never cuts a connection attempt.
        Error::Connect { source: error }
    } else {
        // Sent, and then the response never came whole: the same as a body that failed.
        body_failed(error)
    }
}

/// The request was sent but no whole response came back (or a success body did not).
fn body_failed(error: reqwest::Error) -> Error {
    let error = error.without_url();
    let reason = if let Some(BodyRejected::TooLarge { limit }) = BodyRejected::in_chain(&error) {
        UnknownOutcome::BodyTooLarge { limit }
    } else if let Some(BodyRejected::TooDeep { limit }) = BodyRejected::in_chain(&error) {
        UnknownOutcome::BodyTooDeep { limit }
    } else if error.is_timeout() {
        UnknownOutcome::TimedOut
    } else {
        UnknownOutcome::ConnectionLost
    };
    Error::OutcomeUnknown {
        reason,
        recovered: None,
        source: Some(error),
    }
}

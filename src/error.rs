//! The one error type of the crate: a variant per failure class, each saying what it means for
//! the caller, none carrying a URL, a token or the api key.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::client::Expiry;
use crate::retry_after::MAX_RETRY_AFTER;
use crate::secret::RefreshToken;

/// Everything that can go wrong getting tokens from GenLogs.
///
/// `Display` describes this layer only; the transport cause, where there is one, comes through
/// [`std::error::Error::source`]. No variant holds a URL (the refresh token travels in the query),
/// and text taken from a response is truncated and scrubbed of every credential the client knows.
///
/// One `#[non_exhaustive]` enum; [`status`](Self::status), [`is_retryable`](Self::is_retryable),
/// [`is_token_rejected`](Self::is_token_rejected) (401: create new tokens) and
/// [`may_have_spent_token`](Self::may_have_spent_token) (the outcome is unknown: retry the same
/// token later) answer the usual questions.
///
/// | variant | when | retryable | what to do |
/// |---|---|---|---|
/// | [`RefreshTokenRejected`](Self::RefreshTokenRejected) | 401 | no | the refresh token is invalid, expired or already used: create new tokens (`POST /auth/token`) |
/// | [`Forbidden`](Self::Forbidden) | 403 from the gateway | no | check the api key |
/// | [`Validation`](Self::Validation) | 422, FastAPI's list (extra keys tolerated) | no | a bug in the request |
/// | [`RateLimited`](Self::RateLimited) | 429, with `Retry-After` (seconds or HTTP date) parsed and capped at 15 min; an unreadable one is `None` | yes | wait [`retry_after()`](Self::retry_after) |
/// | [`Server`](Self::Server) | 5xx; `detail`, `message` or text, scrubbed and truncated to 200 characters; a 503's `Retry-After`, capped likewise | 503 only | after any 5xx but 501 and 503 (500, 502, 504, 505–599, 520–524 included) the refresh may have happened (`may_have_spent_token()`): retry the same token later; after 503 wait `retry_after()`; 501 was not processed |
/// | [`UnexpectedStatus`](Self::UnexpectedStatus) | any other status, redirects included | no | after 408 the refresh may have happened (`may_have_spent_token()`); any other was not processed |
/// | [`Connect`](Self::Connect) | the connection could not be made (refused, or not made within the connect timeout); nothing was sent | yes | |
/// | [`OutcomeUnknown`](Self::OutcomeUnknown) | timeout or dropped connection after connecting; a 2xx whose body is too large, nested deeper than 32 levels, not a token response, or with an empty or white-space token | no | the server may already have rotated the token; if the new one was readable it is in [`recovered_refresh_token()`](Self::recovered_refresh_token), keep it; otherwise (`may_have_spent_token()`) send the same token again later: a 401 then means it was rotated and new tokens are required |
/// | [`InvalidConfig`](Self::InvalidConfig) | bad base URL, `http://` to a non-loopback host, an api key that is not a header value, a zero connect timeout or a total timeout under 10 ms; prints the [`ConfigError`] once (transparent) | no | fix the configuration |
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401: the refresh token is invalid, expired or already used. Not retryable: new tokens must
    /// be created (`POST /auth/token` with email and password).
    #[error(
        "GenLogs rejected the refresh token (401): it is invalid, expired or already used; \
         create new tokens{}",
        detail(message)
    )]
    RefreshTokenRejected {
        /// The server's `detail`, scrubbed and truncated.
        message: Option<String>,
    },

    /// 403: the api gateway refused the `x-api-key` (missing, invalid, or not permitted).
    #[error("GenLogs refused the api key (403){}", detail(message))]
    Forbidden {
        /// The gateway's `message`, scrubbed and truncated.
        message: Option<String>,
    },

    /// 422: FastAPI rejected the request's parameters.
    #[error(
        "GenLogs rejected the request as invalid (422){}",
        problems_text(problems)
    )]
    Validation {
        /// Each problem FastAPI listed (`loc`, `msg`, `type`).
        problems: Vec<ValidationProblem>,
    },

    /// 429: throttled by the api gateway. Retryable after `retry_after`.
    #[error(
        "GenLogs is rate limiting this api key (429){}{}",
        retry_text(retry_after),
        detail(message)
    )]
    RateLimited {
        /// `Retry-After`, as seconds or an HTTP date, when the gateway sent it; at most
        /// 15 min.
        retry_after: Option<Duration>,
        /// The gateway's `message`, scrubbed and truncated.
        message: Option<String>,
    },

    /// 5xx: the service or its gateway failed. Only 503 is retryable: after a 500 or 504 the
    /// refresh may or may not have happened.
    #[error(
        "GenLogs server error ({status}){}{}",
        retry_text(retry_after),
        detail(message)
    )]
    Server {
        /// The status.
        status: StatusCode,
        /// `Retry-After` on a 503, as seconds or an HTTP date; at most 15 min.
        retry_after: Option<Duration>,
        /// `detail`, `message` or the text body, scrubbed and truncated.
        message: Option<String>,
    },

    /// Any other status, a redirect included: redirects are never followed, since the request
    /// carries the refresh token and the api key.
    #[error("unexpected HTTP status {status} from GenLogs{}", detail(message))]
    UnexpectedStatus {
        /// The status.
        status: StatusCode,
        /// What the body said, scrubbed and truncated.
        message: Option<String>,
    },

    /// The connection could not be made: the request never left, so retrying is safe.
    #[error("could not connect to GenLogs; the request was not sent")]
    Connect {
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },

    /// The request was sent but its result is not known. GenLogs may already have rotated the
    /// refresh token, making the one sent invalid; if the new one could be read it is in
    /// `recovered`, and must be kept.
    #[error(
        "the refresh outcome is unknown: {reason}; GenLogs may already have rotated the refresh \
         token, so the one sent may no longer be valid{}",
        if recovered.is_some() { " (the new refresh token was recovered from the response)" } else { "" }
    )]
    OutcomeUnknown {
        /// What happened.
        reason: UnknownOutcome,
        /// The rotated refresh token, when the response still held a readable one.
        recovered: Option<RecoveredRefreshToken>,
        /// The transport error, without its URL, when there was one.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The client was configured with something it cannot use. `Display` and `source()` are the
    /// [`ConfigError`]'s own (the cause is not printed twice).
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
}

impl Error {
    /// The HTTP status, for errors that came with a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::RefreshTokenRejected { .. } => Some(StatusCode::UNAUTHORIZED),
            Error::Forbidden { .. } => Some(StatusCode::FORBIDDEN),
            Error::Validation { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
            Error::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Error::Server { status, .. } | Error::UnexpectedStatus { status, .. } => Some(*status),
            Error::OutcomeUnknown { reason, .. } => reason.status(),
            Error::Connect { .. } | Error::InvalidConfig(_) => None,
        }
    }

    /// Whether sending the same request again is safe and may succeed: only a connect failure
    /// (nothing was sent), 429 and 503 (the server did not act on it).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::RateLimited { .. } => true,
            Error::Server { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            _ => false,
        }
    }

    /// Whether GenLogs said the refresh token that was sent is dead (401: invalid, expired or
    /// already used): new tokens must be created (`POST /auth/token` with email and password).
    /// Sending it again cannot succeed.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, Error::RefreshTokenRejected { .. })
    }

    /// Whether GenLogs may have processed the refresh, and so rotated (spent) the token that was
    /// sent, without the new one arriving: an unknown outcome with no recovered token, or a
    /// status that may come after the work was done: every 5xx except 501 (the server does not
    /// do this at all) and 503 (it refused before doing anything), and 408 (the server gave up
    /// reading or answering; the request may still be running). A gateway's 502, 504 and
    /// 520–524 mean the origin may still be working on the request or answered late; 500 and
    /// 505–599 promise nothing. Any other 4xx is an answer about the request itself, nothing
    /// was done (401: the token is dead, [`is_token_rejected`](Self::is_token_rejected)).
    /// Nothing is lost yet: retry later with the same token (after a cooldown); if GenLogs then
    /// rejects it
    /// ([`is_token_rejected`](Self::is_token_rejected)), the first attempt did rotate it and new
    /// tokens are required. [`TokenManager`](crate::TokenManager) does exactly that, and keeps
    /// the token marked possibly rotated in the store meanwhile, so no other process sends it
    /// while the first request may still commit.
    pub fn may_have_spent_token(&self) -> bool {
        match self {
            Error::OutcomeUnknown { recovered, .. } => recovered.is_none(),
            _ => self.status().is_some_and(status_may_have_spent_token),
        }
    }

    /// How long the server asked to wait before the next request (`Retry-After` on a 429 or a
    /// 503), when it said; never more than 15 min.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } | Error::Server { retry_after, .. } => {
                retry_after.map(|wait| wait.min(MAX_RETRY_AFTER))
            }
            _ => None,
        }
    }

    /// Why the outcome of a sent refresh is unknown, for errors where it is.
    pub fn unknown_outcome(&self) -> Option<&UnknownOutcome> {
        match self {
            Error::OutcomeUnknown { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The rotated refresh token read from an undecodable success response, if any.
    pub fn recovered_refresh_token(&self) -> Option<&RecoveredRefreshToken> {
        match self {
            Error::OutcomeUnknown { recovered, .. } => recovered.as_ref(),
            _ => None,
        }
    }
}

/// The status rule of [`Error::may_have_spent_token`] (its doc says why).
fn status_may_have_spent_token(status: StatusCode) -> bool {
    match status.as_u16() {
        408 => true,
        501 | 503 => false,
        code => (500..=599).contains(&code),
    }
}

/// Why the outcome of a sent request is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownOutcome {
    /// No complete response within the timeout.
    TimedOut,
    /// The connection failed after the request was written.
    ConnectionLost,
    /// A success status whose body is over the size cap.
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// A success status whose body nests deeper than any token response.
    BodyTooDeep {
        /// The limit, in levels.
        limit: usize,
    },
    /// A success status whose body is not a token response.
    Undecodable {
        /// The status.
        status: StatusCode,
        /// Where and what is wrong (a JSON path and the problem; never a value).
        problem: String,
    },
}

impl UnknownOutcome {
    fn status(&self) -> Option<StatusCode> {
        match self {
            UnknownOutcome::Undecodable { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for UnknownOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownOutcome::TimedOut => f.write_str("no complete response within the timeout"),
            UnknownOutcome::ConnectionLost => {
                f.write_str("the connection failed after the request was sent")
            }
            UnknownOutcome::BodyTooLarge { limit } => {
                write!(
                    f,
                    "the success response body exceeds the {limit}-byte limit"
                )
            }
            UnknownOutcome::BodyTooDeep { limit } => {
                write!(
                    f,
                    "the success response body nests deeper than {limit} levels"
                )
            }
            UnknownOutcome::Undecodable { status, problem } => {
                write!(
                    f,
                    "the {status} response is not a token response: {problem}"
                )
            }
        }
    }
}

/// A rotated refresh token read from a success response that could not be fully decoded.
#[derive(Debug, Clone)]
pub struct RecoveredRefreshToken {
    /// The new refresh token.
    pub token: RefreshToken,
    /// Its expiry, when that part of the body was readable.
    pub expires: Option<Expiry>,
}

/// One entry of FastAPI's 422 `detail` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationProblem {
    /// Where: `loc` joined with dots, e.g. `query.refresh_token`.
    pub location: String,
    /// FastAPI's `msg`, scrubbed and truncated.
    pub message: String,
    /// FastAPI's `type`, e.g. `missing`.
    pub kind: String,
}

/// A configuration the client cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL does not parse, or has parts a base URL must not have.
    #[error("invalid genlogs-auth configuration: the base URL is not usable: {0}")]
    BaseUrl(&'static str),
    /// `http://` to a host that is not loopback.
    #[error(
        "invalid genlogs-auth configuration: the base URL must use https (plain http is allowed \
         only for loopback hosts)"
    )]
    InsecureBaseUrl,
    /// The api key is empty or not a valid HTTP header value.
    #[error(
        "invalid genlogs-auth configuration: the api key is empty or not a valid HTTP header value"
    )]
    ApiKey,
    /// A timeout the client cannot work with.
    #[error("invalid genlogs-auth configuration: {0}")]
    Timeout(&'static str),
    /// reqwest could not build the HTTP client (the cause comes through `source()`).
    #[error("invalid genlogs-auth configuration: the HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

/// An access token that cannot be sent as an HTTP header value (it holds a control character or
/// a line break). The token itself is not part of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the access token is not a valid HTTP header value")]
#[non_exhaustive]
pub struct InvalidAccessToken;

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

fn retry_text(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!("; retry after {}s", d.min(MAX_RETRY_AFTER).as_secs()))
        .unwrap_or_default()
}

fn problems_text(problems: &[ValidationProblem]) -> String {
    problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let sep = if i == 0 { ": " } else { "; " };
            format!("{sep}{} ({}): {}", p.location, p.kind, p.message)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::response::error_for_status_code as answered;

    fn spent(statuses: impl IntoIterator<Item = u16>) -> Vec<(u16, bool)> {
        statuses
            .into_iter()
            .map(|status| (status, answered(status).may_have_spent_token()))
            .collect()
    }

    #[test]
    fn a_408_may_have_been_processed() {
        assert_eq!(spent([408]), [(408, true)]);
        assert!(!answered(408).is_token_rejected());
    }

    #[test]
    fn a_500_502_and_504_may_have_been_processed() {
        assert_eq!(
            spent([500, 502, 504]),
            [(500, true), (502, true), (504, true)]
        );
    }

    #[test]
    fn a_gateways_520_to_524_and_every_other_5xx_may_have_been_processed() {
        let others = (505..=599).collect::<Vec<_>>();
        assert!(spent(others).into_iter().all(|(_, spent)| spent));
        assert!(spent(520..=524).into_iter().all(|(_, spent)| spent));
    }

    #[test]
    fn a_501_and_a_503_were_not_processed() {
        assert_eq!(spent([501, 503]), [(501, false), (503, false)]);
    }

    #[test]
    fn a_4xx_other_than_408_was_not_processed_and_401_is_its_own_case() {
        let not_processed = (400..=499).filter(|status| *status != 408);
        assert!(spent(not_processed).into_iter().all(|(_, spent)| !spent));
        assert!(answered(401).is_token_rejected());
    }
}

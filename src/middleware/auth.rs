//! [`GenLogsAuth`]: the `reqwest_middleware::Middleware` that authenticates requests to the
//! GenLogs API origin and answers a 401 with one retry under a new access token.

use std::sync::Arc;

use http::Extensions;
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::origin::{ApiOrigin, InvalidOrigin};
use crate::manager::{TokenError, TokenManager};
use crate::secret::AccessToken;

/// Adds `Access-Token` and `x-api-key` to every request for the GenLogs API origin, and retries
/// such a request once with a new access token when GenLogs answers 401.
///
/// - **Which requests.** Only those whose URL has the API origin's scheme, host and port
///   ([`DEFAULT_API_ORIGIN`](super::DEFAULT_API_ORIGIN) unless
///   [`with_api_origin`](Self::with_api_origin) says otherwise). On them, the two headers
///   replace any the caller set. A request to any other origin passes through untouched: it
///   gets neither header, and a header of that name the caller put there itself is left alone
///   (the middleware adds credentials, it does not police the caller's own).
/// - **Redirects** are the HTTP client's business, below this middleware: use
///   [`client`](super::client), or [`redirect_policy`](super::redirect_policy) on your own
///   reqwest client, or a redirect to another origin carries both headers there.
/// - **401.** GenLogs answers 401 only for a missing, wrong or expired `Access-Token` (a bad api
///   key is a 403). The token that was sent is reported to
///   [`TokenManager::invalidate`], and the request is sent once more with the next token if it
///   could be copied before it was sent (`Request::try_clone`: not with a streamed body, whose
///   401 is returned as is). A second 401 is returned as is (and invalidates that token too); no
///   other status is ever retried. Each 401 is a `tracing` event (method and whether it is
///   retried; never a URL or a credential).
/// - **Successes.** A 2xx answer is reported to [`TokenManager::confirm`]: it ends the backoff
///   that fresh tokens rejected in a row start ([`TokenError::AccessRejected`]).
/// - **Errors.** When the manager has no token to give ([`TokenError`], e.g. new tokens are
///   required), the request is not sent and the error is
///   `reqwest_middleware::Error::Middleware`, from which [`token_error`](super::token_error)
///   gets the `TokenError` back. The same holds for the retry: a manager that cannot replace
///   the rejected token fails the request with that error rather than return the 401.
///
/// `Debug` shows the origin and the manager's configuration, never a credential.
#[derive(Debug, Clone)]
pub struct GenLogsAuth {
    manager: TokenManager,
    origin: ApiOrigin,
}

impl GenLogsAuth {
    /// Authenticates requests to [`DEFAULT_API_ORIGIN`](super::DEFAULT_API_ORIGIN) with the
    /// manager's tokens and its client's api key.
    pub fn new(manager: TokenManager) -> Self {
        Self {
            manager,
            origin: ApiOrigin::genlogs(),
        }
    }

    /// The origin that gets the credentials, e.g. `http://127.0.0.1:PORT` for a local stand-in.
    /// Default: [`DEFAULT_API_ORIGIN`](super::DEFAULT_API_ORIGIN). Must be `https://`, except for
    /// loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`), as for the auth base URL; scheme,
    /// host and optional port only (a trailing `/` is fine; a path, query, fragment or
    /// credentials are refused).
    pub fn with_api_origin(mut self, origin: &str) -> Result<Self, InvalidOrigin> {
        self.origin = ApiOrigin::parse(origin)?;
        Ok(self)
    }

    pub(crate) fn origin(&self) -> &ApiOrigin {
        &self.origin
    }

    /// Sets both headers from the manager's current token on `request`, and returns that token
    /// (what to invalidate if it is rejected).
    async fn authorize(
        &self,
        request: &mut Request,
    ) -> reqwest_middleware::Result<Arc<AccessToken>> {
        let token = self
            .manager
            .access_token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let headers =
            self.manager.client().auth_headers(&token).map_err(|_| {
                reqwest_middleware::Error::middleware(TokenError::InvalidAccessToken)
            })?;
        for (name, value) in headers.into_iter() {
            if let Some(name) = name {
                // `insert`, not `append`: one value each, whatever the caller set.
                request.headers_mut().insert(name, value);
            }
        }
        Ok(token)
    }
}

#[async_trait::async_trait]
impl Middleware for GenLogsAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if !self.origin.matches(request.url()) {
            return next.run(request, extensions).await;
        }
        let method = request.method().clone();
        let sent = self.authorize(&mut request).await?;
        // Copied before the first attempt: sending consumes a streamed body, which cannot be
        // copied at all (`None`: that request's 401 is returned as is).
        let replay = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            if response.status().is_success() {
                self.manager.confirm(&sent);
            }
            return Ok(response);
        }
        // Whether or not there is a retry, the next request must not send this token again.
        self.manager.invalidate(&sent);
        let Some(mut replay) = replay else {
            tracing::warn!(
                %method,
                retried = false,
                reason = "the request body cannot be sent twice",
                "GenLogs rejected the access token (401); invalidated"
            );
            return Ok(response);
        };
        tracing::info!(
            %method,
            retried = true,
            "GenLogs rejected the access token (401); invalidated, retrying once with a new one"
        );
        // Dropped unread: waiting for a body nobody needs could only delay the retry (hyper
        // closes that connection instead of pooling it).
        drop(response);
        let resent = self.authorize(&mut replay).await?;
        let response = next.run(replay, extensions).await?;
        if response.status().is_success() {
            self.manager.confirm(&resent);
        } else if response.status() == StatusCode::UNAUTHORIZED {
            self.manager.invalidate(&resent);
            tracing::warn!(
                %method,
                retried = false,
                reason = "rejected again after one retry",
                "GenLogs rejected the access token (401); invalidated"
            );
        }
        Ok(response)
    }
}

//! What a successful refresh returns: the two tokens the crate needs, typed for use, and the
//! whole generated response for everything else.

use chrono::{DateTime, Utc};

use crate::generated::types;
use crate::secret::{AccessToken, RefreshToken};

/// A fresh pair of tokens, and the rest of GenLogs' answer.
///
/// The hand-written part names only what refreshing needs: the two tokens and their expiries.
/// Every other field of the response (`user_id`, `company_id`, whatever GenLogs adds) is read
/// through [`Session::response`], the type generated from the spec, so a field appears here the
/// moment it appears in `openapi.json` and a dropped one disappears without a hand edit to this
/// crate. There are deliberately no hand-written accessors such as `user_id()`: one would stop
/// this crate from building the day upstream drops the field, while a dropped field read through
/// `response()` only breaks the code that reads it, and the change report (`genlogs-auth-tools diff`) lists it
/// as `BREAKING response-field-removed`.
///
/// `Debug` shows the expiries and the response's other fields, never a token.
#[derive(Debug, Clone)]
pub struct Session {
    /// Sent as `Access-Token` to every other GenLogs endpoint.
    pub access_token: AccessToken,
    /// When the access token expires (server time, UTC).
    pub access_expires: DateTime<Utc>,
    /// The rotated refresh token: the one sent is no longer valid.
    pub refresh_token: RefreshToken,
    /// When the refresh token expires (server time, UTC).
    pub refresh_expires: DateTime<Utc>,
    /// The response's `Date` header: the server's clock, for correcting local clock skew.
    pub server_date: Option<DateTime<Utc>>,
    response: types::AuthenticationResponse,
}

impl Session {
    /// Reads the token objects; `codegen/src/contract.rs` fails the build, naming the field, if
    /// the spec stops giving them this shape.
    pub(crate) fn from_response(
        response: types::AuthenticationResponse,
        server_date: Option<DateTime<Utc>>,
    ) -> Self {
        let (access, refresh) = (&response.access_token_data, &response.refresh_token_data);
        Self {
            access_token: access.token.clone().into(),
            access_expires: access.expires.as_datetime(),
            refresh_token: refresh.token.clone().into(),
            refresh_expires: refresh.expires.as_datetime(),
            server_date,
            response,
        }
    }

    /// A session from a token response decoded elsewhere (a `POST /auth/token` answer saved to a
    /// file, read as [`raw::types::AuthenticationResponse`](crate::raw::types::AuthenticationResponse)),
    /// with no server date. The `genlogs-auth init` command reads stdin this way.
    pub fn from_token_response(response: types::AuthenticationResponse) -> Self {
        Self::from_response(response, None)
    }

    /// GenLogs' whole answer, as generated from the spec: `session.response().user_id`. Its
    /// token strings are [`SecretToken`](crate::client::SecretToken)s, redacted like the fields above.
    pub fn response(&self) -> &types::AuthenticationResponse {
        &self.response
    }

    /// GenLogs' whole answer, owned.
    pub fn into_response(self) -> types::AuthenticationResponse {
        self.response
    }

    /// A session as the stand-in server's body decodes, for the crate's unit tests.
    #[cfg(test)]
    pub(crate) fn example(
        access_expires: DateTime<Utc>,
        refresh_expires: DateTime<Utc>,
        server_date: Option<DateTime<Utc>>,
    ) -> Self {
        let body = serde_json::json!({
            "access_token_data": { "token": "at", "expires": access_expires.to_rfc3339() },
            "refresh_token_data": { "token": "rt", "expires": refresh_expires.to_rfc3339() },
            "user_id": "u",
            "company_id": 1
        });
        let response = serde_json::from_value(body).expect("the example is a token response");
        Self::from_response(response, server_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_carries_the_tokens_and_the_whole_response() {
        let now = chrono::Utc::now();
        let session = Session::example(now, now + chrono::Duration::days(1), None);
        assert_eq!(session.access_token.expose_secret(), "at");
        assert_eq!(session.refresh_token.expose_secret(), "rt");
        let response = session.response();
        assert_eq!(response.access_token_data.token.expose_secret(), "at");
        assert_eq!(
            response.refresh_token_data.expires.as_datetime(),
            session.refresh_expires
        );
        let debug = format!("{session:?}");
        assert!(
            !debug.contains("\"at\"") && !debug.contains("\"rt\""),
            "{debug}"
        );
        assert!(debug.contains("REDACTED"), "{debug}");
    }
}

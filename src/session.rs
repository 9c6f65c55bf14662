//! What a successful refresh returns.

use chrono::{DateTime, Utc};

use crate::generated::types;
use crate::secret::{AccessToken, RefreshToken};

/// A fresh pair of tokens and whom they belong to.
///
/// `Debug` shows the expiries and ids, never a token.
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
    /// The user the tokens were issued to.
    pub user_id: String,
    /// The user's company.
    pub company_id: i64,
    /// The response's `Date` header: the server's clock, for correcting local clock skew.
    pub server_date: Option<DateTime<Utc>>,
}

impl Session {
    pub(crate) fn from_response(
        body: types::AuthenticationResponse,
        server_date: Option<DateTime<Utc>>,
    ) -> Self {
        let types::AuthenticationResponse {
            access_token_data,
            refresh_token_data,
            user_id,
            company_id,
        } = body;
        Self {
            access_token: access_token_data.token.into(),
            access_expires: access_token_data.expires.as_datetime(),
            refresh_token: refresh_token_data.token.into(),
            refresh_expires: refresh_token_data.expires.as_datetime(),
            user_id,
            company_id,
            server_date,
        }
    }
}

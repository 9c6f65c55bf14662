//! The old `FakeGenlogs` names over the crate's one stand-in (`genlogs_auth::testing`).

#![allow(dead_code)] // each test binary uses part of it

use std::ops::Deref;

use genlogs_auth::testing::{MockGenLogs, DEFAULT_ACCESS_LIFETIME, DEFAULT_REFRESH_LIFETIME};

/// How long issued access tokens live.
pub const ACCESS_LIFETIME: chrono::Duration =
    match chrono::Duration::from_std(DEFAULT_ACCESS_LIFETIME) {
        Ok(lifetime) => lifetime,
        Err(_) => panic!("30 minutes fit"),
    };

/// How long issued refresh tokens live.
pub fn refresh_lifetime() -> chrono::Duration {
    chrono::Duration::from_std(DEFAULT_REFRESH_LIFETIME).unwrap()
}

/// The stand-in, with the old helper that returns raw token strings.
#[derive(Debug, Clone)]
pub struct FakeGenlogs(pub MockGenLogs);

impl FakeGenlogs {
    /// Starts a stand-in accepting `api_key`.
    pub async fn start(api_key: &str) -> Self {
        Self(MockGenLogs::builder().api_key(api_key).start().await)
    }

    /// Starts a stand-in accepting `api_key`: the service, and the same server by its old name.
    pub async fn serve(api_key: &str) -> (Self, super::server::Server) {
        let genlogs = Self::start(api_key).await;
        let server = super::server::Server::over(genlogs.0.clone());
        (genlogs, server)
    }

    /// Answers `request` as GenLogs would (rotating), as a reply a script can alter.
    pub fn handle(&self, request: &super::server::Request) -> super::server::Reply {
        self.0.process(request).into()
    }

    /// Issues a token pair, as `POST /auth/token` would: `(access, refresh)`.
    pub fn create_tokens(&self) -> (String, String) {
        let tokens = self.0.issue_tokens();
        let access = tokens.access_token.expect("issued with an access token");
        (
            access.expose_secret().to_string(),
            tokens.refresh_token.expose_secret().to_string(),
        )
    }
}

impl Deref for FakeGenlogs {
    type Target = MockGenLogs;

    fn deref(&self) -> &MockGenLogs {
        &self.0
    }
}

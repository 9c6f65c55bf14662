//! progenitor's typed httpmock extensions (feature `httpmock`): request-level expectations on
//! the refresh endpoint, checked through the crate's client.

#![cfg(feature = "httpmock")]

use genlogs_auth::httpmock::MockServerExt;
use genlogs_auth::raw::types::{AuthenticationResponse, TokenSchema};
use genlogs_auth::{client::Expiry, client::SecretToken, AuthClient, Error, RefreshToken};

const API_KEY: &str = "httpmock-api-key";

#[tokio::test]
async fn typed_expectations_match_the_request_and_answer_typed_bodies() {
    let server = httpmock::MockServer::start_async().await;
    let expires = Expiry::parse("2026-11-26T06:08:25.069078").unwrap();
    let rotated = server.refresh_tokens(|when, then| {
        when.refresh_token("rt-good");
        then.ok(&AuthenticationResponse {
            access_token_data: TokenSchema {
                token: SecretToken::new("at-new"),
                expires,
            },
            refresh_token_data: TokenSchema {
                token: SecretToken::new("rt-new"),
                expires,
            },
            user_id: "user-7".into(),
            company_id: 3,
        });
    });
    let rejected = server.refresh_tokens(|when, then| {
        when.refresh_token("rt-used");
        then.unauthorized(serde_json::json!({ "detail": "Invalid refresh token" }));
    });
    // The generated paths have no `/auth` prefix: the mock server's root is the base URL.
    let client = AuthClient::builder(API_KEY)
        .with_base_url(server.base_url())
        .build()
        .unwrap();

    let session = client.refresh(&RefreshToken::new("rt-good")).await.unwrap();
    assert_eq!(session.refresh_token.expose_secret(), "rt-new");
    assert_eq!(session.response().user_id, "user-7");
    let error = client
        .refresh(&RefreshToken::new("rt-used"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RefreshTokenRejected { .. }),
        "{error}"
    );
    rotated.assert_async().await;
    rejected.assert_async().await;
}

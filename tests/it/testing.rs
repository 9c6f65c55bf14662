//! The stand-in (`genlogs_auth::testing::MockGenLogs`, public for users' tests) does what its
//! docs promise: rotation, reuse detection, the protected endpoint, each scripted fault and
//! every `expires` form, checked through the crate's own client.

use std::time::Duration;

use crate::support::editing_answers;
use genlogs_auth::testing::{ExpiresFormat, Fault, MockGenLogs};
use genlogs_auth::{client::UnknownOutcome, AuthClient, Error, RefreshToken};

fn client(genlogs: &MockGenLogs) -> AuthClient {
    AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .with_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// The status of a request to the protected endpoint with the stand-in's own api key.
async fn get_protected_with_its_key(genlogs: &MockGenLogs, access: &str) -> u16 {
    get_protected(genlogs, access, genlogs.api_key()).await
}

/// A new stand-in and a client of it.
async fn stand_in_and_client() -> (MockGenLogs, AuthClient) {
    let genlogs = MockGenLogs::start().await;
    let client = client(&genlogs);
    (genlogs, client)
}

/// A new stand-in, a client of it, and a refresh token it issued.
async fn stand_in_client_and_token() -> (MockGenLogs, AuthClient, RefreshToken) {
    let (genlogs, client) = stand_in_and_client().await;
    let token = genlogs.issue_tokens().into_refresh_token();
    (genlogs, client, token)
}

async fn get_protected(genlogs: &MockGenLogs, access: &str, api_key: &str) -> u16 {
    reqwest::Client::new()
        .get(genlogs.protected_url())
        .header("Access-Token", access)
        .header("x-api-key", api_key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn reuse_of_a_rotated_token_is_counted_and_revokes_the_family() {
    let genlogs = MockGenLogs::start().await;
    let other = genlogs.issue_tokens();
    let first = genlogs.issue_tokens().into_refresh_token();
    let client = client(&genlogs);
    let session = client.refresh(&first).await.unwrap();
    assert_eq!((genlogs.refreshes(), genlogs.reuses()), (1, 0));

    let reused = client.refresh(&first).await.unwrap_err();
    assert!(
        matches!(reused, Error::RefreshTokenRejected { .. }),
        "{reused}"
    );
    assert_eq!(genlogs.reuses(), 1);
    // The family is gone: the rotated refresh token and its access token too.
    assert!(!genlogs.is_valid_refresh_token(session.refresh_token.expose_secret()));
    let access = session.access_token.expose_secret();
    assert_eq!(get_protected_with_its_key(&genlogs, access).await, 401);
    // Another family is untouched.
    assert!(genlogs.is_valid_refresh_token(other.refresh_token().expose_secret()));
    client.refresh(other.refresh_token()).await.unwrap();
}

#[tokio::test]
async fn with_revocation_off_reuse_is_rejected_and_the_newest_token_lives() {
    let genlogs = MockGenLogs::builder()
        .with_revoke_family_on_reuse(false)
        .start()
        .await;
    let first = genlogs.issue_tokens().into_refresh_token();
    let client = client(&genlogs);
    let session = client.refresh(&first).await.unwrap();
    assert!(client
        .refresh(&first)
        .await
        .unwrap_err()
        .is_token_rejected());
    assert_eq!(genlogs.reuses(), 1);
    client.refresh(&session.refresh_token).await.unwrap();
    assert_eq!(genlogs.refreshes(), 2);
}

#[tokio::test]
async fn the_protected_endpoint_checks_the_access_token_and_the_api_key() {
    let genlogs = MockGenLogs::start().await;
    let tokens = genlogs.issue_tokens();
    let access = tokens.access_token().unwrap();
    assert_eq!(
        get_protected_with_its_key(&genlogs, access.expose_secret()).await,
        200
    );
    assert_eq!(
        get_protected_with_its_key(&genlogs, "at-unknown").await,
        401
    );
    assert_eq!(
        get_protected(&genlogs, access.expose_secret(), "wrong-key").await,
        403
    );
    let answer = genlogs.last_request().unwrap();
    assert_eq!(answer.header("x-api-key"), Some("wrong-key"));

    let expired = MockGenLogs::builder()
        .with_access_lifetime(Duration::ZERO)
        .start()
        .await;
    let stale = expired.issue_tokens().access_token().unwrap().clone();
    assert_eq!(
        get_protected_with_its_key(&expired, stale.expose_secret()).await,
        401
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_rejected() {
    let genlogs = MockGenLogs::builder()
        .with_refresh_lifetime(Duration::ZERO)
        .start()
        .await;
    let tokens = genlogs.issue_tokens();
    let error = client(&genlogs)
        .refresh(tokens.refresh_token())
        .await
        .unwrap_err();
    assert!(error.is_token_rejected(), "{error}");
    assert_eq!(genlogs.refreshes(), 0);
}

#[tokio::test]
async fn scripted_faults_apply_to_the_next_n_requests_then_genlogs_answers() {
    let (genlogs, client, token) = stand_in_client_and_token().await;
    genlogs.fail_next(2, Fault::rate_limited(30));
    for _ in 0..2 {
        let error = client.refresh(&token).await.unwrap_err();
        assert!(matches!(error, Error::RateLimited { .. }), "{error}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    }
    client.refresh(&token).await.unwrap();
    assert_eq!(genlogs.refresh_requests(), 3);

    genlogs.fail_always(Fault::server_error());
    let token = genlogs.issue_tokens().into_refresh_token();
    for _ in 0..3 {
        assert_eq!(
            client.refresh(&token).await.unwrap_err().status(),
            Some(reqwest::StatusCode::INTERNAL_SERVER_ERROR)
        );
    }
    genlogs.clear_faults();
    client.refresh(&token).await.unwrap();
}

#[tokio::test]
async fn each_genlogs_error_body_maps_to_its_error() {
    let (genlogs, client) = stand_in_and_client().await;
    let token = RefreshToken::new("rt-any");
    let cases = [
        (Fault::unauthorized(), 401),
        (Fault::forbidden(), 403),
        (Fault::validation(), 422),
        (Fault::unavailable(), 503),
        (Fault::gateway_timeout(), 504),
    ];
    for (fault, status) in cases {
        genlogs.fail_next(1, fault);
        let error = client.refresh(&token).await.unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status), "{error}");
    }
    assert!(matches!(
        client.refresh(&token).await.unwrap_err(),
        Error::RefreshTokenRejected { .. }
    ));
}

#[tokio::test]
async fn a_dropped_connection_after_rotation_loses_the_grant() {
    let (genlogs, client, kept) = stand_in_client_and_token().await;
    genlogs.fail_next(1, Fault::Drop { rotate: false });
    let error = client.refresh(&kept).await.unwrap_err();
    assert!(
        matches!(
            error.unknown_outcome(),
            Some(UnknownOutcome::ConnectionLost)
        ),
        "{error:?}"
    );
    assert!(genlogs.is_valid_refresh_token(kept.expose_secret()));

    genlogs.fail_next(1, Fault::Drop { rotate: true });
    assert!(client
        .refresh(&kept)
        .await
        .unwrap_err()
        .unknown_outcome()
        .is_some());
    assert_eq!(
        genlogs.refreshes(),
        1,
        "the lost answer's rotation happened"
    );
    assert!(!genlogs.is_valid_refresh_token(kept.expose_secret()));
    assert!(client.refresh(&kept).await.unwrap_err().is_token_rejected());
    assert_eq!(genlogs.reuses(), 1);
}

#[tokio::test]
async fn stalls_garbage_and_oversized_bodies_are_unknown_outcomes() {
    let (genlogs, client) = stand_in_and_client().await;
    let token = RefreshToken::new("rt-any");
    let faults = [
        Fault::Stall,
        Fault::Garbage,
        Fault::Oversized {
            bytes: 1 << 20,
            chunked: false,
        },
        Fault::Oversized {
            bytes: 1 << 20,
            chunked: true,
        },
        Fault::Trickle {
            interval: Duration::from_millis(100),
            bytes: 100,
        },
    ];
    for fault in faults {
        let shown = format!("{fault:?}");
        genlogs.fail_next(1, fault);
        let error = client.refresh(&token).await.unwrap_err();
        assert!(error.unknown_outcome().is_some(), "{shown}: {error:?}");
    }
}

#[tokio::test]
async fn every_expires_form_parses_to_the_same_instant() {
    let (genlogs, client, mut token) = stand_in_client_and_token().await;
    for format in ExpiresFormat::all() {
        genlogs.fail_next(1, Fault::Expires(format));
        let before = chrono::Utc::now();
        let session = client.refresh(&token).await.unwrap();
        let lifetime = session.access_expires - before;
        // Cut fractional digits lose under a second; the lifetime is 30 minutes.
        assert!(
            (1798..=1801).contains(&lifetime.num_seconds()),
            "{format:?}: {lifetime}"
        );
        token = session.refresh_token;
    }
    assert_eq!(genlogs.refreshes(), 35);
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_debug_hides_every_credential() {
    let builder = MockGenLogs::builder().with_api_key("key-s3cret");
    assert!(!format!("{builder:?}").contains("s3cret"));
    let genlogs = builder.start().await;
    let tokens = genlogs.issue_tokens();
    let session = client(&genlogs)
        .refresh(tokens.refresh_token())
        .await
        .unwrap();
    let request = genlogs.last_request().unwrap();
    assert!(request.is_refresh());
    assert_eq!(request.header("x-api-key"), Some("key-s3cret"));
    assert_eq!(
        request.query("refresh_token").as_deref(),
        Some(tokens.refresh_token().expose_secret())
    );
    let shown = format!(
        "{genlogs:?} {genlogs:#?} {request:?} {:?}",
        genlogs.requests()
    );
    let mut secrets = genlogs.issued_tokens();
    secrets.push("key-s3cret".into());
    assert!(secrets.contains(&session.refresh_token.expose_secret().to_string()));
    crate::support::leak::assert_no_leak(&shown, &secrets);
}

#[tokio::test]
async fn a_fixed_port_can_be_chosen_and_handles_share_one_server() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let genlogs = MockGenLogs::builder().with_port(port).start().await;
    assert_eq!(genlogs.base_url(), format!("http://127.0.0.1:{port}/auth"));
    let other_handle = genlogs.clone();
    let tokens = genlogs.issue_tokens();
    drop(genlogs);
    client(&other_handle)
        .refresh(tokens.refresh_token())
        .await
        .unwrap();
    assert_eq!(other_handle.refreshes(), 1);
}

#[tokio::test]
async fn a_fault_after_processing_rotates_and_a_responder_picks_requests() {
    let (genlogs, client, token) = stand_in_client_and_token().await;
    genlogs.fail_next(1, Fault::after_processing(Fault::gateway_timeout()));
    let error = client.refresh(&token).await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(504));
    assert_eq!(genlogs.refreshes(), 1);
    assert!(!genlogs.is_valid_refresh_token(token.expose_secret()));

    // Only refreshes fail; the protected endpoint still answers like GenLogs.
    genlogs.fail_with(|request| request.is_refresh().then(Fault::unavailable));
    let tokens = genlogs.issue_tokens();
    assert_eq!(
        client
            .refresh(tokens.refresh_token())
            .await
            .unwrap_err()
            .status()
            .map(|s| s.as_u16()),
        Some(503)
    );
    let access = tokens.access_token().unwrap();
    assert_eq!(
        get_protected_with_its_key(&genlogs, access.expose_secret()).await,
        200
    );
}

#[tokio::test]
async fn a_responder_can_alter_what_genlogs_would_answer() {
    let genlogs = MockGenLogs::start().await;
    // A responder that has the stand-in process the request, then edits its answer.
    editing_answers(&genlogs, |answer| answer["user_id"] = "someone-else".into());
    let tokens = genlogs.issue_tokens();
    let session = client(&genlogs)
        .refresh(tokens.refresh_token())
        .await
        .unwrap();
    assert_eq!(session.response().user_id, "someone-else");
    assert_eq!(genlogs.refreshes(), 1, "processing rotated the token");
    genlogs.clear_faults();
}

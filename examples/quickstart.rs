//! Runs the crate's main job offline: starts the crate's GenLogs stand-in on loopback
//! (`genlogs_auth::testing::MockGenLogs`: rotating single-use refresh tokens, like the real
//! service), then refreshes twice and prints what came back. Tokens print redacted; that is the
//! point.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::AuthClient;

#[tokio::main]
async fn main() -> Result<(), genlogs_auth::Error> {
    let genlogs = MockGenLogs::start().await;
    // What `POST /auth/token` (email and password) would have given us.
    let mut refresh_token = genlogs.issue_tokens().into_refresh_token();
    println!("local GenLogs stand-in at {}", genlogs.base_url());

    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()?;

    for round in 1..=2 {
        let session = client.refresh(&refresh_token).await?;
        println!("refresh {round}:");
        // The whole response as generated from the spec (user id, company, …), tokens redacted.
        println!("  response       {:?}", session.response());
        println!(
            "  access token   {:?}, expires {}",
            session.access_token, session.access_expires
        );
        println!(
            "  refresh token  {:?}, expires {}",
            session.refresh_token, session.refresh_expires
        );
        // Refresh tokens rotate: the one just used is dead, keep the new one.
        refresh_token = session.refresh_token;
    }
    println!("the service saw {} refreshes", genlogs.refreshes());
    Ok(())
}

//! Runs the crate's main job offline: starts a stand-in for GenLogs on loopback (rotating
//! single-use refresh tokens, like the real service), then refreshes twice and prints what came
//! back. Tokens print redacted; that is the point.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use genlogs_auth::{AuthClient, RefreshToken};
use support::genlogs::FakeGenlogs;

#[tokio::main]
async fn main() -> Result<(), genlogs_auth::Error> {
    let api_key = "quickstart-api-key";
    let (genlogs, server) = FakeGenlogs::serve(api_key).await;
    // What `POST /auth/token` (email and password) would have given us.
    let (_, refresh_token) = genlogs.create_tokens();
    println!("local GenLogs stand-in at {}", server.base_url());

    let client = AuthClient::builder(api_key)
        .with_base_url(server.base_url())
        .build()?;

    let mut refresh_token = RefreshToken::new(refresh_token);
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

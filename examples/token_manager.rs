//! A long-running process's view: a [`TokenManager`] over a file store hands out valid tokens,
//! and its headers call another GenLogs endpoint (served locally here, with the auth stand-in).
//!
//! ```sh
//! cargo run --example token_manager
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use genlogs_auth::{AuthClient, FileStore, RefreshToken, StoredTokens, TokenManager, TokenStore};
use support::genlogs::FakeGenlogs;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_key = "example-api-key";
    let (genlogs, server) = FakeGenlogs::serve(api_key).await;

    // First run: seed the store with the refresh token from `POST /auth/token`.
    let path = std::env::temp_dir().join(format!("genlogs-tokens-{}.json", std::process::id()));
    let store = FileStore::new(&path);
    let (_, refresh_token) = genlogs.create_tokens();
    store
        .replace(&StoredTokens::from_refresh_token(RefreshToken::new(
            refresh_token,
        )))
        .await?;

    let client = AuthClient::builder(api_key)
        .with_base_url(server.base_url())
        .build()?;
    let manager = TokenManager::builder(client, store).build();

    for _ in 0..3 {
        // `Access-Token` and `x-api-key`, for the current valid token.
        let headers = manager.auth_headers().await?;
        let carriers: serde_json::Value = reqwest::Client::new()
            .get(format!("http://{}/carriers/recommendations", server.addr))
            .headers(headers)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("carriers: {}", carriers["carriers"]);
    }
    println!(
        "refreshes: {} (the token stays valid between calls)",
        genlogs.refreshes()
    );
    println!("token file: {} (mode 0600)", path.display());
    std::fs::remove_file(&path)?;
    let _ = std::fs::remove_file(path.with_extension("json.lock"));
    Ok(())
}

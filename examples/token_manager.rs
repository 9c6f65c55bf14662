//! A long-running process's view: a [`TokenManager`] over a file store hands out valid tokens,
//! and the middleware sends them to another GenLogs endpoint (served locally here, with the auth
//! stand-in).
//!
//! ```sh
//! cargo run --example token_manager
//! ```

use genlogs_auth::middleware::{self, GenLogsAuth};
use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, FileStore, StoredTokens, TokenManager, TokenStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let genlogs = MockGenLogs::start().await;

    // First run: seed the store with the refresh token from `POST /auth/token`.
    let path = std::env::temp_dir().join(format!("genlogs-tokens-{}.json", std::process::id()));
    let store = FileStore::new(&path);
    // Only the refresh token, as a first deployment has it: the first call refreshes.
    let seed = StoredTokens::from_refresh_token(genlogs.issue_tokens().into_refresh_token());
    store.replace(&seed).await?;

    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()?;
    let manager = TokenManager::builder(client, store).build();
    // `Access-Token` and `x-api-key` for the current valid token, on requests to this origin only.
    let auth = GenLogsAuth::new(manager).with_api_origin(&genlogs.url(""))?;
    let client = middleware::client(auth);

    for _ in 0..3 {
        let carriers: serde_json::Value = client
            .get(genlogs.protected_url())
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

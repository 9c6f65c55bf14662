//! Two hosts of a fleet sharing one GenLogs grant through Redis, shown as two managers in one
//! process: each has its own `RedisStore` on the same Redis and grant name, they ask for a token
//! at the same moment, and GenLogs sees one refresh. Starts its own `redis-server` (from `PATH`)
//! and a local stand-in for GenLogs.
//!
//! ```sh
//! cargo run --example fleet --features redis
//! ```

#[path = "../tests/it/support/mod.rs"]
mod support;

use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{
    store::redis::EncryptionKey, AuthClient, RedisStore, StoredTokens, TokenManager, TokenStore,
};
use support::redis::RedisServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "this example starts its own Redis, and `redis-server` is not on PATH: install it \
             (Debian/Ubuntu: `apt-get install redis-server`) and run it again"
        );
        std::process::exit(1);
    }
    let redis = RedisServer::start();
    let api_key = "example-api-key";
    let genlogs = MockGenLogs::builder().with_api_key(api_key).start().await;
    // Every host gets the same key (from a secret manager, say); Redis only ever sees ciphertext.
    let key_hex = "5f".repeat(32);

    let host = |name: &'static str| -> Result<TokenManager, Box<dyn std::error::Error>> {
        let store = RedisStore::new(&redis.url(), "user-42")?
            .with_encryption_key(EncryptionKey::from_hex(&key_hex)?);
        let client = AuthClient::builder(api_key)
            .with_base_url(genlogs.base_url())
            .build()?;
        println!("{name}: {store:?}");
        Ok(TokenManager::builder(client, store).build())
    };
    let (host_a, host_b) = (host("host A")?, host("host B")?);

    // Once, by an operator: the refresh token from `POST /auth/token`.
    let refresh_token = genlogs.issue_tokens().into_refresh_token();
    RedisStore::new(&redis.url(), "user-42")?
        .with_encryption_key(EncryptionKey::from_hex(&key_hex)?)
        .replace(&StoredTokens::from_refresh_token(refresh_token))
        .await?;

    // Both hosts need a token at once: one takes the lease and refreshes, the other waits for
    // the lease, re-reads the store and adopts the rotated tokens instead of refreshing.
    let (a, b) = tokio::join!(host_a.access_token(), host_b.access_token());
    let (a, b) = (a?, b?);
    println!(
        "host A: {a:?}, host B: {b:?}, the same token: {}",
        a.expose_secret() == b.expose_secret()
    );
    println!(
        "refreshes sent to GenLogs: {} (a second would have spent a rotated token)",
        genlogs.refreshes()
    );
    Ok(())
}

//! The manager's metrics in Prometheus' text format: installs `metrics-exporter-prometheus`'s
//! recorder (no HTTP listener: the handle renders the text a scrape would get), runs a manager
//! against the crate's GenLogs stand-in, and prints what was recorded. No token or key is in it.
//!
//! ```sh
//! cargo run --example metrics --features metrics
//! ```

use genlogs_auth::testing::MockGenLogs;
use genlogs_auth::{AuthClient, MemoryStore, StoredTokens, TokenManager};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    genlogs_auth::metrics::describe();

    let genlogs = MockGenLogs::start().await;
    let client = AuthClient::builder(genlogs.api_key())
        .with_base_url(genlogs.base_url())
        .build()?;
    // Only the refresh token, as from `POST /auth/token`: the first call refreshes.
    let seed = StoredTokens::from_refresh_token(genlogs.issue_tokens().into_refresh_token());
    let manager = TokenManager::builder(client, MemoryStore::new(seed)).build();

    manager.access_token().await?;

    print!("{}", prometheus.render());
    Ok(())
}

//! One module per subcommand; each takes parsed arguments and returns what to exit with.

pub mod headers;
pub mod init;
pub mod mock;
pub mod refresh;
pub mod status;

use std::sync::Arc;

use genlogs_auth::{AuthClient, TokenManager, TokenStore};

use crate::args::Global;
use crate::store_url::StoreUrl;
use crate::Failure;

/// The store named by `--store`/`GENLOGS_STORE`.
pub fn store(global: &Global) -> Result<(StoreUrl, Arc<dyn TokenStore>), Failure> {
    let text = global.store.as_deref().ok_or_else(|| {
        Failure::new("no token store: pass --store or set GENLOGS_STORE (file:/path or a path)")
    })?;
    let url = StoreUrl::parse(text).map_err(Failure::new)?;
    let store = url.open().map_err(Failure::new)?;
    Ok((url, store))
}

/// A client for GenLogs with the api key from the environment or `--api-key-file`.
pub fn client(global: &Global) -> Result<AuthClient, Failure> {
    let key = crate::secrets::api_key(global.api_key_file.as_deref()).map_err(Failure::new)?;
    AuthClient::builder(key)
        .with_base_url(global.base_url.as_str())
        .build()
        .map_err(|e| Failure::from_error(&e, 1))
}

/// A manager over the configured store and client.
pub fn manager(global: &Global) -> Result<TokenManager, Failure> {
    let (_, store) = store(global)?;
    Ok(TokenManager::builder(client(global)?, store).build())
}

//! One module per subcommand; each takes parsed arguments and returns what to exit with.

pub mod headers;
pub mod init;
pub mod keep_alive;
pub mod mock;
pub mod refresh;
pub mod status;

use genlogs_auth::store::BoxedStore;
use genlogs_auth::{AuthClient, TokenManager};

use crate::args::Global;
use crate::store_url::StoreUrl;
use crate::Failure;

/// The store URL named by `--store`/`GENLOGS_STORE`. A URL with a password is refused on the
/// command line (exit 64), where `ps` and shell history show it; GENLOGS_STORE may carry one.
pub fn store_url(global: &Global) -> Result<StoreUrl, Failure> {
    let text = global.store.as_deref().ok_or_else(|| {
        Failure::new("no token store: pass --store or set GENLOGS_STORE (file:/path or a path)")
    })?;
    let url = StoreUrl::parse(text).map_err(Failure::new)?;
    if global.store_in_argv && url.has_password() {
        return Err(Failure::usage(format!(
            "--store {} carries a password, which every user sees in `ps` and shell history \
             keeps: set the URL in the GENLOGS_STORE environment variable instead (e.g. from an \
             environment file only the service can read) and leave out --store",
            url.display()
        )));
    }
    Ok(url)
}

/// The store named by `--store`/`GENLOGS_STORE`, opened (nothing is connected yet).
pub fn store(global: &Global) -> Result<(StoreUrl, BoxedStore), Failure> {
    let url = store_url(global)?;
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

/// A manager over the configured store and `client`.
pub fn manager(global: &Global, client: AuthClient) -> Result<(StoreUrl, TokenManager), Failure> {
    let (url, manager, _) = manager_and_store(global, client)?;
    Ok((url, manager))
}

/// A manager over the configured store and `client`, and the store itself (to report what it
/// holds afterwards without opening it again).
pub fn manager_and_store(
    global: &Global,
    client: AuthClient,
) -> Result<(StoreUrl, TokenManager, BoxedStore), Failure> {
    let (url, store) = store(global)?;
    Ok((
        url,
        TokenManager::builder(client, store.clone()).build(),
        store,
    ))
}

/// The failure for a manager's error: exit 2 when new tokens are required, else 1, with what to
/// do after a refresh whose outcome is unknown (retry later, never new tokens yet).
pub fn token_failure(error: &genlogs_auth::TokenError) -> Failure {
    if error.needs_new_tokens() {
        return Failure::from_error(error, crate::EXIT_NEW_TOKENS);
    }
    let mut failure = Failure::from_error(error, crate::EXIT_FAILURE);
    let spent = error
        .refresh_error()
        .is_some_and(genlogs_auth::Error::may_have_spent_token);
    if spent || matches!(error, genlogs_auth::TokenError::OutcomeUnknown { .. }) {
        failure.message.push_str(
            "; retry later: the same refresh token is sent again, and only if GenLogs rejects it \
             are new tokens required (exit 2)",
        );
    }
    failure
}

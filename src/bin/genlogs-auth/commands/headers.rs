//! `token` and `headers`: a valid access token through the manager (refreshing and saving if
//! due), printed for a shell.
//!
//! Each asks the manager once. A fresh manager has no token in memory, so that one call goes
//! through the store and any refresh it needs runs to the end (saved) before it returns; the
//! background refresh that a second call on a due token would start, and that the process's exit
//! would cut off after sending, never begins. (When a failed save of a rotation is retried and
//! succeeds, the manager is asked again: the new token is then in memory, fresh, and served at
//! once.)

use std::sync::Arc;

use genlogs_auth::{AccessToken, AuthClient};

use crate::args::{Global, HeaderFormat, HeadersArgs};
use crate::{Failure, Outcome};

/// A valid access token through the manager, and the client (for the headers). A rotation the
/// store does not take is saved again, or rescued (see [`crate::rescue`]): the command never
/// exits holding the only copy of the new refresh token.
async fn valid_token(global: &Global) -> Result<(AuthClient, Arc<AccessToken>), Failure> {
    let client = super::client(global)?;
    let (url, manager) = super::manager(global, client.clone())?;
    let mut result = manager.access_token().await;
    if crate::rescue::save_or_rescue(&manager, &url).await? {
        // Saved on a retry: the first answer was the store error or the pre-rotation token.
        result = manager.access_token().await;
        crate::rescue::save_or_rescue(&manager, &url).await?;
    }
    let token = result.map_err(|e| super::token_failure(&e))?;
    Ok((client, token))
}

pub async fn token(global: &Global) -> Result<Outcome, Failure> {
    let (_, token) = valid_token(global).await?;
    Ok(Outcome {
        stdout: format!("{}\n", token.expose_secret()),
        code: 0,
        rescue: None,
    })
}

pub async fn headers(global: &Global, args: &HeadersArgs) -> Result<Outcome, Failure> {
    let (client, token) = valid_token(global).await?;
    let headers = client
        .auth_headers(&token)
        .map_err(|e| Failure::from_error(&e, crate::EXIT_FAILURE))?;
    // The manager's names are lower case on the wire; print them as GenLogs documents them.
    let mut pairs = Vec::new();
    for (name, documented) in [("access-token", "Access-Token"), ("x-api-key", "x-api-key")] {
        let value = headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| Failure::new(format!("the manager gave no {documented} header")))?;
        pairs.push((documented, value.to_string()));
    }
    let stdout = match args.format {
        HeaderFormat::Http => pairs
            .iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect(),
        // curl's config syntax: a quoted string with `\` and `"` escaped.
        HeaderFormat::Curl => pairs
            .iter()
            .map(|(name, value)| {
                let escaped = format!("{name}: {value}")
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                format!("header = \"{escaped}\"\n")
            })
            .collect(),
        HeaderFormat::Json => {
            let object: serde_json::Map<String, serde_json::Value> = pairs
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.into()))
                .collect();
            format!("{}\n", serde_json::Value::Object(object))
        }
    };
    Ok(Outcome {
        stdout,
        code: 0,
        rescue: None,
    })
}

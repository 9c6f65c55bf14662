//! `token` and `headers`: a valid access token through the manager (refreshing and saving if
//! due), printed for a shell.
//!
//! Each asks the manager once. A fresh manager has no token in memory, so that one call goes
//! through the store and any refresh it needs runs to the end (saved) before it returns; the
//! background refresh that a second call on a due token would start, and that the process's exit
//! would cut off after sending, never begins.

use crate::args::{Global, HeaderFormat, HeadersArgs};
use crate::{Failure, Outcome};

fn token_failure(error: &genlogs_auth::TokenError) -> Failure {
    Failure::from_error(error, if error.needs_new_tokens() { 2 } else { 1 })
}

pub async fn token(global: &Global) -> Result<Outcome, Failure> {
    let manager = super::manager(global)?;
    let token = manager
        .access_token()
        .await
        .map_err(|e| token_failure(&e))?;
    Ok(Outcome {
        stdout: format!("{}\n", token.expose_secret()),
        code: 0,
    })
}

pub async fn headers(global: &Global, args: &HeadersArgs) -> Result<Outcome, Failure> {
    let manager = super::manager(global)?;
    let headers = manager
        .auth_headers()
        .await
        .map_err(|e| token_failure(&e))?;
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
    Ok(Outcome { stdout, code: 0 })
}

//! `refresh`: one raw refresh of a token read from stdin; the new session on stdout as JSON, in
//! the shape of GenLogs' own response (so that `init` reads it back).

use chrono::SecondsFormat;
use genlogs_auth::RefreshToken;
use serde_json::json;

use crate::args::Global;
use crate::{Failure, Outcome};

pub async fn run(global: &Global) -> Result<Outcome, Failure> {
    let client = super::client(global)?;
    let token = crate::secrets::read_stdin("a refresh token").map_err(Failure::usage)?;
    let session = client
        .refresh(&RefreshToken::new(token))
        .await
        .map_err(|e| Failure::from_error(&e, if e.needs_new_tokens() { 2 } else { 1 }))?;
    let time = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let body = json!({
        "access_token_data": {
            "token": session.access_token.expose_secret(),
            "expires": time(session.access_expires),
        },
        "refresh_token_data": {
            "token": session.refresh_token.expose_secret(),
            "expires": time(session.refresh_expires),
        },
        "user_id": session.user_id,
        "company_id": session.company_id,
    });
    Ok(Outcome {
        stdout: format!("{body:#}\n"),
        code: 0,
    })
}

//! `refresh`: one raw refresh of a token read from stdin; the new session on stdout as JSON, in
//! the shape of GenLogs' own response (so that `init` reads it back).

use genlogs_auth::RefreshToken;

use crate::args::Global;
use crate::{Failure, Outcome};

pub async fn run(global: &Global) -> Result<Outcome, Failure> {
    let client = super::client(global)?;
    let token = crate::secrets::read_stdin("a refresh token").map_err(Failure::new)?;
    let session = client
        .refresh(&RefreshToken::new(token))
        .await
        .map_err(|e| Failure::from_error(&e, if e.is_token_rejected() { 2 } else { 1 }))?;
    // The response as generated from the spec, in GenLogs' own shape: tokens serialize as their
    // values (printing them is the point here), expiries as RFC 3339.
    let body = serde_json::to_value(session.response())
        .map_err(|e| Failure::new(format!("cannot write the session as JSON: {e}")))?;
    Ok(Outcome {
        stdout: format!("{body:#}\n"),
        code: 0,
    })
}

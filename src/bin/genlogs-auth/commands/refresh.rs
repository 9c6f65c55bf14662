//! `refresh`: with a store, refresh the stored tokens now and save them, in this one process and
//! under the store's lock (the manager's path); with `--stdin` (or no store), one raw refresh of a
//! token read from stdin, the new session on stdout as JSON in the shape of GenLogs' own response
//! (so that `init` reads it back).

use genlogs_auth::{RefreshToken, StoredTokens, TokenStore};
use serde_json::json;

use crate::args::{Global, RefreshArgs};
use crate::{Failure, Outcome};

pub async fn run(global: &Global, args: &RefreshArgs) -> Result<Outcome, Failure> {
    if args.stdin || global.store.is_none() {
        raw(global).await
    } else {
        stored(global).await
    }
}

/// Refreshes the store's tokens through the manager: the attempt is marked in the store, the
/// rotated tokens are saved under the same lock, and a save that keeps failing is rescued.
async fn stored(global: &Global) -> Result<Outcome, Failure> {
    let client = super::client(global)?;
    let (url, manager, store) = super::manager_and_store(global, client)?;
    let mut result = manager.refresh_now().await.map(drop);
    if crate::rescue::save_or_rescue(&manager, &url).await? {
        // Saved on a retry: the refresh happened, and its tokens are in the store now.
        result = Ok(());
    }
    result.map_err(|e| super::token_failure(&e))?;
    // What the store holds now (never a token): the manager saved it before answering.
    let saved = store.load().await.ok().flatten();
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let version = saved.as_ref().map(|tokens| tokens.version());
    let access = time(saved.as_ref().and_then(|tokens| tokens.access_expires()));
    let refresh = time(saved.as_ref().and_then(|tokens| tokens.refresh_expires()));
    let stdout = if global.json {
        let body = json!({
            "store": url.display(),
            "version": version,
            "access_expires": access,
            "refresh_expires": refresh,
        });
        format!("{body}\n")
    } else {
        let unknown = || "unknown".to_string();
        format!(
            "refreshed the tokens in {} (version {}); the access token expires {}, the refresh \
             token {}\n",
            url.display(),
            version.map_or_else(unknown, |v| v.to_string()),
            access.unwrap_or_else(unknown),
            refresh.unwrap_or_else(unknown),
        )
    };
    Ok(Outcome {
        stdout,
        code: 0,
        rescue: None,
    })
}

/// One refresh of the token on stdin; the new session on stdout.
async fn raw(global: &Global) -> Result<Outcome, Failure> {
    let client = super::client(global)?;
    let token = crate::secrets::read_stdin("a refresh token").map_err(Failure::new)?;
    let session = match client.refresh(&RefreshToken::new(token)).await {
        Ok(session) => session,
        Err(error) => {
            if let Some(recovered) = error.recovered_refresh_token() {
                // GenLogs rotated the token and its answer was only partly readable: the new
                // refresh token is the only valid one, so it goes where the session would have.
                eprintln!(
                    "genlogs-auth: warning: {}; stdout has the new refresh token without an \
                     access token (`init` reads it; the first call refreshes)",
                    crate::output::one_line(&error)
                );
                let body = json!({
                    "refresh_token_data": {
                        "token": recovered.token.expose_secret(),
                        "expires": recovered.expires.map(|at| at.to_string()),
                    }
                });
                let rescue = StoredTokens::from_refresh_token(recovered.token.clone())
                    .with_refresh_expires(recovered.expires.map(Into::into));
                return Ok(Outcome {
                    stdout: format!("{body:#}\n"),
                    code: 0,
                    rescue: Some(rescue),
                });
            }
            let code = if error.is_token_rejected() {
                crate::EXIT_NEW_TOKENS
            } else {
                crate::EXIT_FAILURE
            };
            let mut failure = Failure::from_error(&error, code);
            if error.may_have_spent_token() {
                failure.message.push_str(
                    "; retry later with the same token: only if GenLogs rejects it then are new \
                     tokens required (exit 2)",
                );
            }
            return Err(failure);
        }
    };
    // The response as generated from the spec, in GenLogs' own shape: tokens serialize as their
    // values (printing them is the point here), expiries as RFC 3339.
    let body = serde_json::to_value(session.response()).map_err(|e| {
        // The token sent is spent: the new one must not be lost with this error.
        crate::rescue::failure(
            &StoredTokens::from_session(&session),
            None,
            format!("cannot write the session as JSON: {e}"),
            crate::EXIT_FAILURE,
        )
    })?;
    Ok(Outcome {
        stdout: format!("{body:#}\n"),
        code: 0,
        rescue: Some(StoredTokens::from_session(&session)),
    })
}

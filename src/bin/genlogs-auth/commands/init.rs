//! `init`: seed a store with tokens read from stdin, refusing to overwrite live ones.
//!
//! All of stdin is read and checked before the store is touched; from then on, whatever stops
//! the tokens from reaching the store (no store, a store that cannot be opened, locked, read or
//! written, live tokens and no `--force`) leaves them in a rescue file (see [`crate::rescue`]):
//! they may be the only copy of a valid refresh token (`genlogs-auth refresh --stdin | init`).

use chrono::Utc;
use genlogs_auth::raw::types::AuthenticationResponse;
use genlogs_auth::{
    store::BoxedLock, store::BoxedStore, store::TokenHealth, store::TokenState, RefreshToken,
    Session, StoredTokens, TokenStore,
};
use serde_json::Value;

use crate::args::{Global, InitArgs};
use crate::store_url::StoreUrl;
use crate::{Failure, Outcome};

/// Reads what `init` accepts (see its `--help`). Errors name the field, never a value.
fn parse(text: &str) -> Result<StoredTokens, String> {
    if !text.starts_with('{') {
        if text.split_whitespace().count() != 1 {
            return Err("stdin holds neither JSON nor a single refresh token".into());
        }
        return Ok(StoredTokens::from_refresh_token(RefreshToken::new(text)));
    }
    let document: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "stdin is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if document.get("refresh_token_data").is_some() {
        return from_token_response(document);
    }
    if document.get("refresh_token").is_some() {
        let tokens: StoredTokens = serde_path_to_error::deserialize(&document)
            .map_err(|e| format!("not a token document at `{}`", e.path()))?;
        // A copied document may carry another store's state and version; this store decides.
        return Ok(tokens.with_state(TokenState::Usable).with_version(0));
    }
    Err(
        "stdin JSON has neither `refresh_token_data` (a POST /auth/token response) nor \
         `refresh_token` (a token document)"
            .into(),
    )
}

/// GenLogs' token response, decoded as the client decodes it (the generated type, its `expires`
/// forms included). Errors name the JSON path, never a value.
fn from_token_response(document: Value) -> Result<StoredTokens, String> {
    let response: AuthenticationResponse =
        serde_path_to_error::deserialize(document).map_err(|e| {
            let message = e.inner().to_string();
            // serde's "invalid type: string \"…\"" would echo a value; a missing field is a name.
            let problem = match message.split(" at line").next() {
                Some(missing) if missing.starts_with("missing field") => missing,
                _ => "invalid",
            };
            format!("not a POST /auth/token response: `{}`: {problem}", e.path())
        })?;
    let session = Session::from_token_response(response);
    if session.refresh_token.expose_secret().trim().is_empty() {
        return Err("`refresh_token_data.token` is empty".into());
    }
    let tokens = StoredTokens::from_session(&session);
    if session.access_token.expose_secret().trim().is_empty() {
        // A blank access token is useless, the refresh token is not: the first call refreshes.
        return Ok(tokens.without_access_token());
    }
    Ok(tokens)
}

pub async fn run(global: &Global, args: &InitArgs) -> Result<Outcome, Failure> {
    let text = crate::secrets::read_stdin("tokens").map_err(Failure::new)?;
    let tokens = parse(&text).map_err(Failure::new)?;
    let rescue = |url: Option<&StoreUrl>, failure: Failure| {
        crate::rescue::failure(&tokens, url, failure.message, failure.code)
    };
    let url = super::store_url(global).map_err(|failure| rescue(None, failure))?;
    let version = save(&url, &tokens, args.force)
        .await
        .map_err(|failure| rescue(Some(&url), failure))?;
    let stdout = if global.json {
        format!(
            "{}\n",
            serde_json::json!({ "store": url.display(), "version": version })
        )
    } else {
        format!(
            "saved new tokens in {} (version {version})\n",
            url.display()
        )
    };
    Ok(Outcome {
        stdout,
        code: 0,
        rescue: None,
    })
}

/// Opens the store and saves `tokens` (over anything with `force`).
async fn save(url: &StoreUrl, tokens: &StoredTokens, force: bool) -> Result<u64, Failure> {
    let store = url.open().map_err(Failure::new)?;
    if force {
        return store
            .replace(tokens)
            .await
            .map_err(|e| Failure::from_error(&e, 1));
    }
    // Check and write under one lock, so that a refresh in between is not overwritten; released
    // explicitly, so that no lease outlives this process.
    let lock = store.lock().await.map_err(|e| Failure::from_error(&e, 1))?;
    let written = check_and_save(url, &store, &lock, tokens.clone()).await;
    store.release(lock).await;
    written
}

/// Refuses to overwrite live tokens; otherwise saves over the stored version.
async fn check_and_save(
    url: &StoreUrl,
    store: &BoxedStore,
    lock: &BoxedLock,
    tokens: StoredTokens,
) -> Result<u64, Failure> {
    let stored = store.load().await.map_err(|e| Failure::from_error(&e, 1))?;
    if let Some(stored) = &stored {
        let health = stored.health(Utc::now());
        if health.is_live() && !stored.same_refresh_token(&tokens) {
            return Err(Failure::new(format!(
                "{} holds tokens that may still be in use (state {}); replacing them \
                 abandons that grant. Pass --force to replace them",
                url.display(),
                match health {
                    TokenHealth::PossiblyRotated => "possibly rotated",
                    _ => "usable",
                }
            )));
        }
    }
    let tokens = tokens.with_version(stored.map_or(0, |stored| stored.version()));
    store
        .save(&tokens, lock)
        .await
        .map_err(|e| Failure::from_error(&e, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_token_response_a_document_and_a_bare_token() {
        let response = r#"{"access_token_data":{"token":"at-1","expires":"2026-11-26T06:08:25.069078"},
            "refresh_token_data":{"token":"rt-1","expires":"2026-12-03 06:08:25+00:00"},"user_id":"u","company_id":1}"#;
        let tokens = parse(response).unwrap();
        assert_eq!(tokens.refresh_token().expose_secret(), "rt-1");
        assert_eq!(tokens.access_token().unwrap().expose_secret(), "at-1");
        assert!(tokens.refresh_expires().is_some() && tokens.access_expires().is_some());

        let document = r#"{"refresh_token":"rt-2","refresh_expires":null,"access_token":null,"access_expires":null,"version":9,"state":{"kind":"dead","reason":"no_tokens","since":"2026-11-26T00:00:00Z"}}"#;
        let tokens = parse(document).unwrap();
        assert_eq!((tokens.version(), tokens.state()), (0, TokenState::Usable));

        assert_eq!(
            parse("rt-3\n").unwrap().refresh_token().expose_secret(),
            "rt-3\n"
        );
    }

    #[test]
    fn errors_name_the_field_never_the_value() {
        let bad = r#"{"refresh_token_data":{"token":"rt-s3cret","expires":"soon-s3cret"}}"#;
        let error = parse(bad).unwrap_err();
        assert!(error.contains("refresh_token_data.expires"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        assert!(!parse("two words-s3cret").unwrap_err().contains("s3cret"));

        // Decoded as the client decodes GenLogs' answer: a missing field is named, and a token
        // in a field of another type is not echoed.
        let missing = r#"{"access_token_data":{"token":"at-1","expires":"2026-11-26T06:08:25"},
            "refresh_token_data":{"token":"rt-1","expires":"2026-12-03T06:08:25"},"company_id":1}"#;
        let error = parse(missing).unwrap_err();
        assert!(error.contains("missing field `user_id`"), "{error}");
        let misplaced = r#"{"access_token_data":{"token":"at-1","expires":"2026-11-26T06:08:25"},
            "refresh_token_data":{"token":"rt-1","expires":"2026-12-03T06:08:25"},"user_id":"u","company_id":"rt-s3cret"}"#;
        let error = parse(misplaced).unwrap_err();
        assert!(
            error.contains("`company_id`: invalid") && !error.contains("s3cret"),
            "{error}"
        );
    }

    #[test]
    fn a_blank_access_token_is_dropped_and_a_blank_refresh_token_refused() {
        let blank_access = r#"{"access_token_data":{"token":" ","expires":"2026-11-26T06:08:25"},
            "refresh_token_data":{"token":"rt-1","expires":"2026-12-03T06:08:25"},"user_id":"u","company_id":1}"#;
        let tokens = parse(blank_access).unwrap();
        assert!(tokens.access_token().is_none() && tokens.access_expires().is_none());
        assert!(tokens.refresh_expires().is_some(), "the rest is kept");
        assert_eq!(tokens.refresh_token().expose_secret(), "rt-1");
        let blank_refresh = blank_access
            .replace(r#""token":" ""#, r#""token":"at-1""#)
            .replace(r#""token":"rt-1""#, r#""token":"""#);
        assert!(parse(&blank_refresh).unwrap_err().contains("is empty"));
    }
}

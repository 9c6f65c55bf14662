//! `init`: seed a store with tokens read from stdin, refusing to overwrite live ones.
//!
//! All of stdin is read and checked before the store is touched; from then on, whatever stops
//! the tokens from reaching the store (no store, a store that cannot be opened, locked, read or
//! written, live tokens and no `--force`) leaves them in a rescue file (see [`crate::rescue`]):
//! they may be the only copy of a valid refresh token (`genlogs-auth refresh --stdin | init`).

use chrono::{DateTime, Utc};
use genlogs_auth::{
    client::Expiry, store::BoxedLock, store::BoxedStore, store::TokenHealth, store::TokenState,
    AccessToken, RefreshToken, StoredTokens, TokenStore,
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
        return from_token_response(&document);
    }
    if document.get("refresh_token").is_some() {
        let tokens: StoredTokens = serde_path_to_error::deserialize(&document)
            .map_err(|e| format!("not a token document at `{}`", e.path()))?;
        // A copied document may carry another store's state and version; this store decides.
        return Ok(StoredTokens {
            state: TokenState::Usable,
            version: 0,
            ..tokens
        });
    }
    Err(
        "stdin JSON has neither `refresh_token_data` (a POST /auth/token response) nor \
         `refresh_token` (a token document)"
            .into(),
    )
}

/// GenLogs' token response: `{access_token_data: {token, expires}, refresh_token_data: …}`.
fn from_token_response(document: &Value) -> Result<StoredTokens, String> {
    let token = |field: &str| -> Result<String, String> {
        document
            .pointer(&format!("/{field}/token"))
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("`{field}.token` is missing or not a string"))
    };
    let expires = |field: &str| -> Result<Option<DateTime<Utc>>, String> {
        match document.pointer(&format!("/{field}/expires")) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Expiry::parse(text)
                .map(|expiry| Some(expiry.as_datetime()))
                .map_err(|e| format!("`{field}.expires`: {e}")),
            Some(_) => Err(format!("`{field}.expires` is not a string")),
        }
    };
    let mut tokens =
        StoredTokens::from_refresh_token(RefreshToken::new(token("refresh_token_data")?));
    tokens.refresh_expires = expires("refresh_token_data")?;
    if document.get("access_token_data").is_some() {
        tokens.access_token = Some(AccessToken::new(token("access_token_data")?));
        tokens.access_expires = expires("access_token_data")?;
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
                    TokenHealth::PossiblyRotated { .. } => "possibly rotated",
                    _ => "usable",
                }
            )));
        }
    }
    let tokens = StoredTokens {
        version: stored.map_or(0, |stored| stored.version),
        ..tokens
    };
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
        assert_eq!(tokens.refresh_token.expose_secret(), "rt-1");
        assert_eq!(tokens.access_token.unwrap().expose_secret(), "at-1");
        assert!(tokens.refresh_expires.is_some() && tokens.access_expires.is_some());

        let document = r#"{"refresh_token":"rt-2","refresh_expires":null,"access_token":null,"access_expires":null,"version":9,"state":{"kind":"dead","reason":"no_tokens","since":"2026-11-26T00:00:00Z"}}"#;
        let tokens = parse(document).unwrap();
        assert_eq!((tokens.version, tokens.state), (0, TokenState::Usable));

        assert_eq!(
            parse("rt-3\n").unwrap().refresh_token.expose_secret(),
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
    }
}

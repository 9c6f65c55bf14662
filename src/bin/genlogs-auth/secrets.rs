//! Where secrets come from: the environment, a file, or stdin; never argv.

use std::io::Read;
use std::path::Path;

use genlogs_auth::ApiKey;

/// The environment variable holding the api key.
pub const API_KEY_VAR: &str = "GENLOGS_API_KEY";
/// More than any token document; a guard against piping in the wrong file.
const MAX_STDIN_BYTES: u64 = 1 << 20;

/// The api key: from `--api-key-file` if given (owner-only, see [`ApiKey::from_file`]), else
/// `GENLOGS_API_KEY`.
pub fn api_key(file: Option<&Path>) -> Result<ApiKey, String> {
    if let Some(path) = file {
        // Refuses a file group or others can read, as the token file is refused.
        return ApiKey::from_file(path).map_err(|e| e.to_string());
    }
    let key = std::env::var(API_KEY_VAR)
        .map_err(|_| format!("no api key: set {API_KEY_VAR} or pass --api-key-file PATH"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err("the api key is empty".into());
    }
    Ok(ApiKey::new(key))
}

/// The api key if one is configured, for commands where it is optional (`mock`).
pub fn optional_api_key(file: Option<&Path>) -> Result<Option<ApiKey>, String> {
    if file.is_none() && std::env::var_os(API_KEY_VAR).is_none() {
        return Ok(None);
    }
    api_key(file).map(Some)
}

/// All of stdin, trimmed: where tokens come from.
pub fn read_stdin(what: &str) -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {what} from stdin: {e}"))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(format!("expected {what} on stdin, read nothing"));
    }
    Ok(text)
}

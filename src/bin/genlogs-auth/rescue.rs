//! Rescue files: where tokens go when the store does not take them, so that the command never
//! exits holding the only copy of a valid refresh token.
//!
//! A rescue file is a token document (what `init` reads back) in a new file, created exclusively
//! with mode 0600, in the first of these directories where that works: beside a file store (the
//! operator already keeps tokens there), `$XDG_STATE_HOME/genlogs-auth` (default
//! `~/.local/state/genlogs-auth`, created 0700), the current directory, the temporary directory.
//! Its path goes to stderr; the tokens never do.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use genlogs_auth::{StoredTokens, TokenManager};

use crate::store_url::StoreUrl;
use crate::Failure;

/// Waits before each new attempt to save tokens the store did not take: a store that failed once
/// (a Redis failover, a full disk being cleaned) often works a moment later.
const SAVE_RETRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// The directories to try, in order.
fn directories(store: Option<&StoreUrl>) -> Vec<PathBuf> {
    let mut directories = Vec::new();
    if let Some(StoreUrl::File(path)) = store {
        directories.push(match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        });
    }
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state")));
    if let Some(state_home) = state_home {
        directories.push(state_home.join("genlogs-auth"));
    }
    directories.push(PathBuf::from("."));
    directories.push(std::env::temp_dir());
    directories
}

/// Writes `tokens` to a new rescue file; its absolute path, or why no directory would take it.
pub fn write(tokens: &StoredTokens, store: Option<&StoreUrl>) -> Result<PathBuf, String> {
    let mut document = serde_json::to_vec_pretty(tokens)
        .map_err(|_| "the tokens could not be written as JSON".to_string())?;
    document.push(b'\n');
    let mut problems = Vec::new();
    for directory in directories(store) {
        match write_in(&directory, &document) {
            Ok(path) => return Ok(std::path::absolute(&path).unwrap_or(path)),
            Err(e) => problems.push(format!("{}: {e}", directory.display())),
        }
    }
    Err(problems.join("; "))
}

fn write_in(directory: &Path, document: &[u8]) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory)?;
    let prefix = format!(
        "genlogs-auth-rescue-{}-",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let mut options = tempfile::Builder::new();
    options.prefix(&prefix).suffix(".json").rand_bytes(6);
    #[cfg(unix)]
    options.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    // Created with O_EXCL: never another file, nor a link planted under this name.
    let mut file = options.tempfile_in(directory)?;
    file.write_all(document)?;
    file.as_file().sync_all()?;
    let (_, path) = file.keep().map_err(|e| e.error)?;
    // Best effort: the entry is durable once the directory is synced.
    if let Ok(directory) = std::fs::File::open(directory) {
        let _ = directory.sync_all();
    }
    Ok(path)
}

/// The failure for tokens that `cause` kept out of the store: they are written to a rescue file,
/// and the message says where and what to do, or that they could not be kept at all.
pub fn failure(
    tokens: &StoredTokens,
    store: Option<&StoreUrl>,
    cause: String,
    code: u8,
) -> Failure {
    let message = match write(tokens, store) {
        Ok(path) => format!(
            "{cause}. The tokens are kept in the rescue file {} (mode 600): to store them, run \
             `genlogs-auth init --force < {}` with the same store (once it works), then delete \
             the file",
            path.display(),
            path.display()
        ),
        Err(problems) => format!(
            "{cause}. No rescue file could be written either ({problems}): the only valid \
             refresh token is lost when this command exits"
        ),
    };
    Failure { message, code }
}

/// After a manager call: if the manager holds tokens its store does not have (a rotation whose
/// save failed), tries the save again a few times; if the store still does not take them, writes
/// them to a rescue file and fails (exit 1). `Ok(true)` when a retry saved them (the caller asks
/// the manager again: its answer may have been the pre-rotation token or the store error),
/// `Ok(false)` when nothing was pending.
pub async fn save_or_rescue(manager: &TokenManager, store: &StoreUrl) -> Result<bool, Failure> {
    if manager.unsaved_tokens().is_none() {
        return Ok(false);
    }
    let mut last_error = None;
    for wait in SAVE_RETRIES {
        tokio::time::sleep(wait).await;
        match manager.flush().await {
            Ok(()) if manager.unsaved_tokens().is_none() => return Ok(true),
            Ok(()) => {}
            Err(error) => last_error = Some(error),
        }
    }
    let Some(tokens) = manager.unsaved_tokens() else {
        return Ok(true);
    };
    let why = last_error.map_or_else(
        || "the store kept changing".to_string(),
        |error| crate::output::one_line(&error),
    );
    let cause = format!(
        "GenLogs rotated the tokens but {} did not take the new ones after {} attempts: {why}",
        store.display(),
        SAVE_RETRIES.len() + 1
    );
    Err(failure(&tokens, Some(store), cause, crate::EXIT_FAILURE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use genlogs_auth::RefreshToken;

    #[test]
    fn a_file_store_is_rescued_beside_it_first() {
        let store = StoreUrl::File("/var/lib/app/tokens.json".into());
        let tried = directories(Some(&store));
        assert_eq!(tried[0], PathBuf::from("/var/lib/app"));
        assert_eq!(tried.last(), Some(&std::env::temp_dir()));
        let bare = StoreUrl::File("tokens.json".into());
        assert_eq!(directories(Some(&bare))[0], PathBuf::from("."));
    }

    #[cfg(unix)]
    #[test]
    fn a_rescue_file_is_a_new_owner_only_token_document() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tokens = StoredTokens::from_refresh_token(RefreshToken::new("rt-rescued"));
        let store = StoreUrl::File(dir.path().join("tokens.json"));
        let first = write(&tokens, Some(&store)).unwrap();
        let second = write(&tokens, Some(&store)).unwrap();
        assert_ne!(first, second, "never the same file twice");
        assert_eq!(first.parent(), Some(dir.path()));
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back: StoredTokens = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
        assert_eq!(back.refresh_token().expose_secret(), "rt-rescued");
    }
}

//! A [`TokenStore`] in a JSON file: atomic replacement (temporary file, fsync, rename, directory
//! fsync), owner-only permissions, and a lock file that processes on one host share.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use crate::redact::safe_serde_message;
use crate::store::{StoreError, StoreLock, StoredTokens, TokenStore};

/// Owner read and write only.
#[cfg(unix)]
const TOKEN_FILE_MODE: u32 = 0o600;

/// Tokens in a JSON file at `path`, locked through `path` + `.lock`.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileStore {
    /// A store at `path`. Nothing is touched until the first load or save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self {
            path,
            lock_path: lock_path.into(),
        }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, operation: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: self.path.clone(),
            operation,
            source,
        }
    }

    fn directory(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }
}

/// Opens for writing with owner-only permissions from the start.
fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    options.mode(TOKEN_FILE_MODE);
    options
}

impl TokenStore for FileStore {
    fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io("open")(error)),
        };
        #[cfg(unix)]
        {
            let mode = file
                .metadata()
                .map_err(self.io("read the metadata of"))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(StoreError::InsecurePermissions {
                    path: self.path.clone(),
                    mode: mode & 0o777,
                });
            }
        }
        let text = std::io::read_to_string(file).map_err(self.io("read"))?;
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        let tokens: StoredTokens =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                let at = e.path().to_string();
                StoreError::Corrupt {
                    path: self.path.clone(),
                    problem: format!("`{at}`: {}", safe_serde_message(e.inner())),
                }
            })?;
        Ok(Some(tokens))
    }

    fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let mut document = serde_json::to_vec_pretty(tokens)
            .map_err(|e| StoreError::Other(safe_serde_message(&e)))?;
        document.push(b'\n');
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = self.directory().join(format!(
            ".{file_name}.{}.{}.tmp",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = owner_only(OpenOptions::new().write(true).create_new(true))
                .open(&temporary)
                .map_err(self.io("create a temporary file beside"))?;
            // The mode given at creation is reduced by the umask, never widened; set it exactly.
            #[cfg(unix)]
            file.set_permissions(std::fs::Permissions::from_mode(TOKEN_FILE_MODE))
                .map_err(self.io("set the permissions of"))?;
            file.write_all(&document).map_err(self.io("write"))?;
            file.sync_all().map_err(self.io("fsync"))?;
            // Replaces the old file whatever its permissions were: the new inode is 0600.
            std::fs::rename(&temporary, &self.path).map_err(self.io("rename over"))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
        // The rename is durable only once the directory entry is.
        File::open(self.directory())
            .and_then(|directory| directory.sync_all())
            .map_err(self.io("fsync the directory of"))
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        let file = owner_only(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .open(&self.lock_path)
        .map_err(self.io("open the lock file of"))?;
        // Blocks until the other holder (another process, or another manager) is done.
        file.lock().map_err(self.io("lock"))?;
        Ok(StoreLock::new(file))
    }
}

//! A [`TokenStore`] in a JSON file: atomic replacement (temporary file, fsync, rename, directory
//! fsync), owner-only permissions, a compare-and-set on the document's version, and a lock file
//! that processes on one host share, waited on for a bounded time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use crate::clock::{Clock, SystemClock};
use crate::redact::safe_serde_message;
use crate::store::{
    check_version, decode_document, next_version, StoreError, StoredTokens, TokenStore,
};

/// Owner read and write only.
#[cfg(unix)]
const TOKEN_FILE_MODE: u32 = 0o600;

/// How long [`FileStore::lock`](TokenStore::lock) waits for another holder before failing with
/// [`StoreError::Busy`]: longer than one refresh at the default 30 s timeout, so a process that is
/// refreshing is waited for, while one stopped with the lock held cannot hang every caller
/// forever. Callers holding a valid token never wait for it (the manager serves them the cached
/// token and refreshes in the background).
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(35);

/// Random characters in a temporary file's name.
const TEMPORARY_RANDOM_CHARS: usize = 12;

/// How often a waiting [`FileStore::lock`](TokenStore::lock) tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(5);

/// Tokens in a JSON file at `path`, locked through `path` + `.lock`: restarts and several
/// processes on one host.
///
/// The JSON is written to a temporary file (`.<name>.<random>.tmp`) in the same directory,
/// fsynced, renamed over the old file, and the directory fsynced, so a crash leaves the whole old
/// or the whole new document (tested by SIGKILLing a writer 200 times). A temporary file is
/// removed by the save that made it if that save fails, and swept (it can only be a crashed
/// writer's) by the next save, under the lock.
///
/// The file is created `0600`, also when it replaces a wider one, and a token file readable by
/// group or others is refused on load. A lock file (`<path>.lock`) is held from reading to
/// writing; a process stopped while holding it cannot hang the others: they wait at most
/// 35 s (longer than one refresh;
/// [`with_lock_wait`](Self::with_lock_wait)), callers with a valid token are served meanwhile, and
/// the others get [`TokenError::Store`](crate::TokenError::Store). Older token files, without the
/// state and version fields, read as usable at version 0.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    lock_wait: Duration,
    /// What the lock wait is measured and slept on.
    clock: Arc<dyn Clock>,
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
            lock_wait: DEFAULT_LOCK_WAIT,
            clock: Arc::new(SystemClock::new()),
        }
    }

    super::lock_wait_setters!();

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

    fn temporary_prefix(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(".{name}.")
    }

    fn load_blocking(&self) -> Result<Option<StoredTokens>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io("open")(error)),
        };
        if let Some(mode) = readable_by_others(&file).map_err(self.io("read the metadata of"))? {
            return Err(StoreError::InsecurePermissions {
                path: self.path.clone(),
                mode,
            });
        }
        let text = std::io::read_to_string(file).map_err(self.io("read"))?;
        let tokens = decode_document(text.as_bytes()).map_err(|problem| StoreError::Corrupt {
            path: self.path.clone(),
            problem,
        })?;
        Ok(Some(tokens))
    }

    /// Writes under the lock: compare-and-set, sweep, temporary file, fsync, rename, fsync.
    fn save_blocking(&self, tokens: &StoredTokens) -> Result<u64, StoreError> {
        let found = match self.load_blocking() {
            Ok(stored) => stored.map(|s| s.version),
            // A file that cannot be used as tokens is replaced by the writer holding the lock.
            Err(StoreError::Corrupt { .. } | StoreError::InsecurePermissions { .. }) => None,
            Err(error) => return Err(error),
        };
        check_version(tokens.version, found)?;
        let version = next_version(tokens.version)?;
        let mut document = serde_json::to_vec_pretty(&StoredTokens {
            version,
            ..tokens.clone()
        })
        .map_err(|e| StoreError::Other(safe_serde_message(&e)))?;
        document.push(b'\n');
        self.sweep_temporary_files();
        let prefix = self.temporary_prefix();
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(TEMPORARY_RANDOM_CHARS);
        #[cfg(unix)]
        builder.permissions(std::fs::Permissions::from_mode(TOKEN_FILE_MODE));
        let mut file = builder
            .tempfile_in(self.directory())
            .map_err(self.io("create a temporary file beside"))?;
        // The mode given at creation is reduced by the umask, never widened; set it exactly.
        #[cfg(unix)]
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(TOKEN_FILE_MODE))
            .map_err(self.io("set the permissions of"))?;
        file.write_all(&document).map_err(self.io("write"))?;
        file.as_file().sync_all().map_err(self.io("fsync"))?;
        // Replaces the old file whatever its permissions were: the new inode is 0600. On failure
        // the temporary file is dropped, which removes it: only this save's own file.
        file.persist(&self.path)
            .map_err(|e| self.io("rename over")(e.error))?;
        // The rename is durable only once the directory entry is.
        File::open(self.directory())
            .and_then(|directory| directory.sync_all())
            .map_err(self.io("fsync the directory of"))?;
        Ok(version)
    }

    /// Removes temporary files left by writers that crashed mid-save. Called under the lock, when
    /// no other save can be in progress; best effort (a failure leaves a file, not an error).
    fn sweep_temporary_files(&self) {
        let prefix = self.temporary_prefix();
        let Ok(entries) = std::fs::read_dir(self.directory()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let random = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".tmp"));
            // Exactly this store's pattern: not another store's `.tokens.json.bak.*.tmp`.
            if random.is_some_and(|r| {
                r.len() == TEMPORARY_RANDOM_CHARS && r.bytes().all(|b| b.is_ascii_alphanumeric())
            }) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn open_lock_file(&self) -> Result<File, StoreError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        options.mode(TOKEN_FILE_MODE);
        options
            .open(&self.lock_path)
            .map_err(self.io("open the lock file of"))
    }
}

/// The permission bits of an open secret file (tokens, an api key) when they give group or
/// others any access: such a file is refused rather than trusted. Always `None` off Unix.
pub(crate) fn readable_by_others(file: &File) -> std::io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Ok(Some(mode & 0o777));
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(None)
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| Err(StoreError::Other("the store call panicked".into())))
}

/// The lock of a [`FileStore`]: the lock file, locked (released when closed); its `save` takes
/// only a lock on its own file.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl crate::store::StoreLock for FileLock {}

impl TokenStore for FileStore {
    type Lock = FileLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        let store = self.clone();
        blocking(move || store.load_blocking()).await
    }

    async fn lock(&self) -> Result<FileLock, StoreError> {
        let store = self.clone();
        let file = blocking(move || store.open_lock_file()).await?;
        let started = self.clock.monotonic();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(FileLock {
                        _file: file,
                        path: self.lock_path.clone(),
                    })
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(error)) => return Err(self.io("lock")(error)),
            }
            let waited = self.clock.monotonic().saturating_sub(started);
            if waited >= self.lock_wait {
                return Err(StoreError::Busy { waited });
            }
            self.clock
                .sleep(LOCK_POLL.min(self.lock_wait - waited))
                .await;
        }
    }

    async fn save(&self, tokens: &StoredTokens, lock: &FileLock) -> Result<u64, StoreError> {
        if lock.path != self.lock_path {
            return Err(crate::store::foreign_lock());
        }
        let store = self.clone();
        let tokens = tokens.clone();
        blocking(move || store.save_blocking(&tokens)).await
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

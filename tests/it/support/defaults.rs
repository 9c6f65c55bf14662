//! The defaults the crate documents on its builders and types (the constants themselves are
//! private): the tests check the behaviour those documents promise.

use std::time::Duration;

/// `TokenManagerBuilder::with_retry_cooldown`: the first wait after a failed refresh.
pub const RETRY_COOLDOWN: Duration = Duration::from_secs(5);
/// The longest cooldown or backoff, whatever a `Retry-After` or a run of failures says.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(15 * 60);
/// `Error::retry_after` is capped at this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// A server's message kept in an error is cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// `TokenManager::keep_alive` reads the store this often.
pub const STORE_WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// `RedisStore::with_timeout`: per command and per connection attempt.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// No host refreshes from written-back tokens for at least this long.
pub const RESTORE_GRACE: Duration = Duration::from_secs(3);
/// `AuthClientBuilder::with_timeout`: a whole request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

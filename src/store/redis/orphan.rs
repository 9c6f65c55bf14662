//! Leases this process may hold without knowing it: a `SET NX` whose answer never came (Redis
//! paused with `SIGSTOP`, a network stall) stays in the server's socket buffer and runs when
//! Redis answers again, long after its caller gave up. Unreleased, that orphaned lease would
//! keep every host of the fleet from refreshing for a whole lease (45 s by default) right after
//! the outage. The store hands each such owner id to [`sweep`], which releases it (owner-checked,
//! so a lease someone else took is never touched) as soon as Redis answers.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;

use super::connection::Connection;
use super::lease::RELEASED;
use super::scripts;

/// How often the sweep asks while Redis does not answer: often enough that the orphan is gone
/// within a fraction of a second of Redis answering again.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Answers of "not held by this owner" that end the sweep: the unanswered `SET NX` was
/// sent before any of them on the same connection, so once Redis answers these it has run it.
/// More than one, because a reconnected connection is not ordered after the old socket's bytes.
const SWEEP_ANSWERS: u32 = 3;

/// Releases the lease `owner` may hold on `lock_key`, in a task on the current runtime: tries
/// every [`SWEEP_EVERY`] until Redis releases it, has answered [`SWEEP_ANSWERS`] times that it
/// does not hold it, or `until` on `clock` (when the orphan would have run out anyway) has
/// passed.
/// Outside a runtime nothing happens: the orphan runs out by itself.
pub(super) fn sweep(
    connection: Connection,
    tokens_key: String,
    lock_key: String,
    owner: String,
    clock: Arc<dyn Clock>,
    until: Duration,
    timeout: Duration,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut connection = connection;
        let mut not_held = 0;
        while clock.monotonic() < until && not_held < SWEEP_ANSWERS {
            let released = tokio::time::timeout(
                timeout,
                scripts::RELEASE
                    .key(&tokens_key)
                    .key(&lock_key)
                    .arg(&owner)
                    .invoke_async::<i64>(&mut connection),
            )
            .await;
            match released {
                Ok(Ok(1)) => {
                    tracing::debug!("an orphaned lease of the token store was released");
                    RELEASED.notify_waiters();
                    return;
                }
                Ok(Ok(_)) => not_held += 1,
                Ok(Err(_)) | Err(_) => {}
            }
            clock.sleep(SWEEP_EVERY).await;
        }
    });
}

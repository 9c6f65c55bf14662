//! The Lua scripts that make the lease and the compare-and-set atomic inside Redis, and the
//! reading of their answers.
//!
//! Every script names both keys of a grant (`KEYS[1]` the tokens, `KEYS[2]` the lease), which
//! share one hash slot, so the scripts run unchanged on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

use crate::store::StoreError;

/// The server instance's `run_id` (`''` when `INFO` is refused, e.g. by an ACL): it changes
/// with every restart, and a failover answers from another instance, so a document saved on
/// another instance may have been rolled back (lost later writes).
const RUN_ID_LUA: &str = r"
        local run_id = ''
        local ok, info = pcall(redis.call, 'INFO', 'server')
        if ok and type(info) == 'string' then
            run_id = string.match(info, 'run_id:(%x+)') or ''
        end
        ";

/// Reads the grant: answers `{version, doc, instance that saved it, this instance}` (the first
/// three `false` when missing). One round trip, as the `HMGET` it replaces.
pub(super) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{RUN_ID_LUA}
        local stored = redis.call('HMGET', KEYS[1], 'version', 'doc', 'instance')
        return {{stored[1], stored[2], stored[3], run_id}}
        "
    ))
});

/// Deletes the lease if `ARGV[1]` still owns it: a holder whose lease ran out must not release
/// the next holder's.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[2]) == ARGV[1] then
            return redis.call('DEL', KEYS[2])
        end
        return 0
        ",
    )
});

/// Extends the lease to at least `ARGV[2]` milliseconds from now if `ARGV[1]` still owns it,
/// never shortening it (a longer lease granted earlier stays): answers the milliseconds left
/// afterwards, or 0 when `ARGV[1]` does not own it. A lease with no expiry (never written by this
/// crate) gets one.
pub(super) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then
            return 0
        end
        local requested = tonumber(ARGV[2])
        local left = redis.call('PTTL', KEYS[2])
        if left >= requested then
            return left
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        return requested
        ",
    )
});

/// The source of [`SAVE`], also sent whole (`EVAL`) in the pipeline of a durable save, so that a
/// server that forgot the script (restarted, failed over) cannot fail that pipeline halfway.
/// It records the instance that saved the document (see [`LOAD`]); replicas get the primary's.
pub(super) static SAVE_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"
        if redis.replicate_commands then redis.replicate_commands() end
        {RUN_ID_LUA}
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then
            return 'lease_lost'
        end
        local found = redis.call('HGET', KEYS[1], 'version') or '0'
        if found ~= ARGV[2] then
            return 'conflict:' .. found
        end
        redis.call('HSET', KEYS[1], 'version', ARGV[3], 'doc', ARGV[4], 'instance', run_id)
        return 'ok'
        "
    )
});

/// Writes the document `ARGV[4]` as version `ARGV[3]` if `ARGV[1]` owns the lease and the stored
/// version is `ARGV[2]` (a missing document counts as `0`). Versions are compared as the decimal
/// strings they are stored as, never converted to Lua numbers (doubles, exact only up to 2^53),
/// so any `u64` compares exactly; the new version is computed in Rust with a checked add
/// ([`next_version`](crate::store::next_version)), so a document at `u64::MAX` is never saved
/// over and no version wraps to 0.
///
/// Answers `ok`, `lease_lost`, or `conflict:<found version>`.
pub(super) static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(&SAVE_LUA));

/// What [`SAVE`] answered, for a save that expected version `expected`.
pub(super) fn save_outcome(answer: &str, expected: u64) -> Result<(), StoreError> {
    match answer {
        "ok" => Ok(()),
        "lease_lost" => Err(StoreError::LeaseLost),
        _ => match answer.strip_prefix("conflict:").map(str::parse::<u64>) {
            Some(Ok(found)) => Err(StoreError::Conflict { expected, found }),
            // Someone wrote a version this crate never writes: do not overwrite it.
            _ => Err(StoreError::Other(
                "the stored tokens have a version that is not a number; nothing was written".into(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_answers_map_to_outcomes() {
        assert!(save_outcome("ok", 4).is_ok());
        assert!(matches!(
            save_outcome("lease_lost", 4),
            Err(StoreError::LeaseLost)
        ));
        assert!(matches!(
            save_outcome("conflict:9", 4),
            Err(StoreError::Conflict {
                expected: 4,
                found: 9
            })
        ));
        assert!(matches!(
            save_outcome("conflict:x", 4),
            Err(StoreError::Other(_))
        ));
        assert!(matches!(save_outcome("?", 4), Err(StoreError::Other(_))));
    }
}

//! The Lua scripts that make the lease and the compare-and-set atomic inside Redis, and the
//! reading of their answers.
//!
//! Every script names both keys of a grant (`KEYS[1]` the tokens, `KEYS[2]` the lease), which
//! share one hash slot, so the scripts run unchanged on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

use crate::store::StoreError;

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

/// Extends the lease to `ARGV[2]` milliseconds from now if `ARGV[1]` still owns it: 1, else 0.
pub(super) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[2]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[2], ARGV[2])
        end
        return 0
        ",
    )
});

/// Writes the document `ARGV[4]` as version `ARGV[3]` if `ARGV[1]` owns the lease and the stored
/// version is `ARGV[2]` (a missing document counts as `0`). Versions are compared as the decimal
/// strings they are stored as, so no Lua number rounding is involved.
///
/// Answers `ok`, `lease_lost`, or `conflict:<found version>`.
pub(super) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then
            return 'lease_lost'
        end
        local found = redis.call('HGET', KEYS[1], 'version') or '0'
        if found ~= ARGV[2] then
            return 'conflict:' .. found
        end
        redis.call('HSET', KEYS[1], 'version', ARGV[3], 'doc', ARGV[4])
        return 'ok'
        ",
    )
});

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

//! Durable before used: a save counts only once enough replicas hold it
//! ([`RedisStore::with_min_replicas`](super::RedisStore::with_min_replicas)).
//!
//! `WAIT numreplicas timeout` covers the writes made earlier on the connection it is sent on, and
//! does nothing inside a script, so it goes right after the save script in one pipeline: one
//! write to one socket, whatever `ConnectionManager` does about reconnecting between two separate
//! calls (each of which loads whatever connection is current; a WAIT on a replaced connection
//! would cover nothing). `WAITAOF 0 numreplicas timeout` (Redis 7.2) follows when the replicas'
//! fsync is required too; a server that does not know it says so once, and then only `WAIT` is
//! sent.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use redis::{Cmd, Pipeline, RedisError, Value};

use crate::store::StoreError;

/// What a save must hear back before it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Durability {
    /// How many replicas must acknowledge the write (at least 1).
    pub(super) replicas: usize,
    /// How long each of `WAIT` and `WAITAOF` may block.
    pub(super) timeout: Duration,
    /// Whether the replicas must also have fsynced it to their append-only file (`WAITAOF`).
    pub(super) fsync: bool,
}

impl Durability {
    /// The timeout in milliseconds, at least 1: `WAIT n 0` would block forever.
    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// How long the waits of one save may take in all (`WAIT`, and `WAITAOF` when asked for).
    pub(super) fn total_wait(&self) -> Duration {
        let wait = Duration::from_millis(self.timeout_ms());
        if self.fsync {
            wait.saturating_mul(2)
        } else {
            wait
        }
    }

    /// The save script's command followed by `WAIT` (and `WAITAOF` when `aof`), in one pipeline
    /// whose every answer is returned, errors included.
    pub(super) fn pipeline(&self, script: Cmd, aof: bool) -> Pipeline {
        let mut pipeline = redis::pipe();
        pipeline.ignore_errors().add_command(script);
        pipeline
            .cmd("WAIT")
            .arg(self.replicas)
            .arg(self.timeout_ms());
        if aof {
            pipeline
                .cmd("WAITAOF")
                .arg(0)
                .arg(self.replicas)
                .arg(self.timeout_ms());
        }
        pipeline
    }
}

/// Whether the server knows `WAITAOF`: unknown until its first answer, then kept.
#[derive(Debug)]
pub(super) struct AofSupport(AtomicU8);

impl Default for AofSupport {
    fn default() -> Self {
        Self(AtomicU8::new(UNKNOWN))
    }
}

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

impl AofSupport {
    /// Whether `WAITAOF` is worth sending (not known to be unsupported).
    pub(super) fn may_be_supported(&self) -> bool {
        self.0.load(Ordering::Relaxed) != UNSUPPORTED
    }

    fn learn(&self, supported: bool) {
        let seen = if supported { SUPPORTED } else { UNSUPPORTED };
        let before = self.0.swap(seen, Ordering::Relaxed);
        if !supported && before != UNSUPPORTED {
            tracing::warn!(
                "Redis does not know WAITAOF (it needs 7.2): token saves wait for the replicas' \
                 acknowledgement (WAIT) but not for their fsync"
            );
        }
    }
}

/// What the pipeline of a durable save answered.
#[derive(Debug)]
pub(super) struct Answers {
    /// The save script's answer (`ok`, `lease_lost`, `conflict:<version>`), or its error.
    pub(super) script: Result<String, RedisError>,
    wait: Value,
    waitaof: Option<Value>,
}

impl Answers {
    /// Splits the pipeline's answers; `aof` says whether `WAITAOF` was sent.
    pub(super) fn read(values: Vec<Value>, aof: bool) -> Result<Self, StoreError> {
        let expected = if aof { 3 } else { 2 };
        if values.len() != expected {
            return Err(malformed("a pipeline answer of the wrong length"));
        }
        let mut values = values.into_iter();
        let script = values
            .next()
            .expect("the length was checked")
            .extract_error()
            .and_then(|value| redis::from_redis_value::<String>(value).map_err(RedisError::from));
        Ok(Self {
            script,
            wait: values.next().expect("the length was checked"),
            waitaof: values.next(),
        })
    }

    /// Whether the written document is durable as `durability` requires, once the script said
    /// `ok`; learns from a `WAITAOF` answer whether the server knows it.
    pub(super) fn check(self, durability: &Durability, aof: &AofSupport) -> Result<(), Check> {
        let required = durability.replicas;
        let acknowledged = match self.wait {
            Value::Int(count) => usize::try_from(count).unwrap_or(0),
            Value::ServerError(error) => return Err(Check::Failed(error.into())),
            _ => return Err(Check::Malformed("WAIT")),
        };
        if acknowledged < required {
            return Err(Check::NotDurable {
                acknowledged,
                required,
            });
        }
        let Some(waitaof) = self.waitaof else {
            return Ok(());
        };
        match waitaof {
            Value::Array(counts) => match counts.as_slice() {
                [Value::Int(_local), Value::Int(replicas)] => {
                    aof.learn(true);
                    let fsynced = usize::try_from(*replicas).unwrap_or(0);
                    if fsynced < required {
                        return Err(Check::NotDurable {
                            acknowledged: fsynced,
                            required,
                        });
                    }
                    Ok(())
                }
                _ => Err(Check::Malformed("WAITAOF")),
            },
            Value::ServerError(error) if is_unknown_command(&error) => {
                aof.learn(false);
                Ok(())
            }
            Value::ServerError(error) => Err(Check::Failed(error.into())),
            _ => Err(Check::Malformed("WAITAOF")),
        }
    }
}

/// Why a written document does not count as durable.
#[derive(Debug)]
pub(super) enum Check {
    /// Too few replicas acknowledged (or fsynced) it.
    NotDurable {
        acknowledged: usize,
        required: usize,
    },
    /// The wait itself failed (e.g. sent to a replica).
    Failed(RedisError),
    /// An answer that is not what the command answers.
    Malformed(&'static str),
}

impl Check {
    /// As a store error; `failure` turns a Redis error into one (scrubbed of credentials).
    pub(super) fn into_store_error(
        self,
        failure: impl FnOnce(RedisError) -> StoreError,
    ) -> StoreError {
        match self {
            Check::NotDurable {
                acknowledged,
                required,
            } => StoreError::NotDurable {
                acknowledged,
                required,
            },
            Check::Failed(error) => failure(error),
            Check::Malformed(command) => malformed(command),
        }
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::Other(format!(
        "Redis answered {what} with something else than expected; the save counts as failed"
    ))
}

/// `ERR unknown command 'WAITAOF'…` (Redis before 7.2).
fn is_unknown_command(error: &redis::ServerError) -> bool {
    error.code() == "ERR"
        && error
            .details()
            .is_some_and(|details| details.to_ascii_lowercase().contains("unknown command"))
}

/// How many replicas a primary's `ROLE` answer (`["master", offset, [[host, port, offset],
/// …]]`) lists as connected; `None` for any other answer (a replica's, or one not understood).
pub(super) fn connected_replicas(role: &Value) -> Option<usize> {
    let Value::Array(parts) = role else {
        return None;
    };
    let is_primary = match parts.first() {
        Some(Value::BulkString(name)) => name.as_slice() == b"master",
        Some(Value::SimpleString(name)) => name == "master",
        _ => false,
    };
    match parts.get(2) {
        Some(Value::Array(replicas)) if is_primary => Some(replicas.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_primary_s_role_counts_its_replicas_and_anything_else_says_nothing() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let replica = || Value::Array(vec![bulk("127.0.0.1"), bulk("7001"), bulk("42")]);
        let primary = |replicas: Vec<Value>| {
            Value::Array(vec![bulk("master"), Value::Int(42), Value::Array(replicas)])
        };
        assert_eq!(connected_replicas(&primary(vec![])), Some(0));
        assert_eq!(
            connected_replicas(&primary(vec![replica(), replica()])),
            Some(2)
        );
        let a_replica = Value::Array(vec![
            bulk("slave"),
            bulk("127.0.0.1"),
            Value::Int(7000),
            bulk("connected"),
            Value::Int(42),
        ]);
        assert_eq!(connected_replicas(&a_replica), None);
        assert_eq!(connected_replicas(&Value::Nil), None);
    }

    fn durability(fsync: bool) -> Durability {
        Durability {
            replicas: 2,
            timeout: Duration::from_millis(250),
            fsync,
        }
    }

    fn parse(resp: &str) -> Value {
        redis::parse_redis_value(resp.as_bytes()).unwrap()
    }

    fn answers(resp: &[&str], aof: bool) -> Answers {
        Answers::read(resp.iter().map(|r| parse(r)).collect(), aof).unwrap()
    }

    #[test]
    fn a_zero_timeout_is_one_millisecond_never_forever() {
        let zero = Durability {
            timeout: Duration::ZERO,
            ..durability(false)
        };
        assert_eq!(zero.timeout_ms(), 1);
        assert_eq!(durability(true).total_wait(), Duration::from_millis(500));
    }

    #[test]
    fn the_waits_follow_the_script_in_one_pipeline() {
        let script = redis::cmd("EVAL").arg("return 'ok'").arg(0).clone();
        let packed = durability(true)
            .pipeline(script, true)
            .get_packed_pipeline();
        let text = String::from_utf8_lossy(&packed);
        let (eval, wait, waitaof) = (
            text.find("EVAL").unwrap(),
            text.find("WAIT\r\n").unwrap(),
            text.find("WAITAOF").unwrap(),
        );
        assert!(eval < wait && wait < waitaof, "{text}");
        assert!(text.contains("$3\r\n250\r\n"), "{text}");
        let without = durability(true)
            .pipeline(redis::cmd("EVAL").arg("x").arg(0).clone(), false)
            .get_packed_pipeline();
        assert!(!String::from_utf8_lossy(&without).contains("WAITAOF"));
    }

    #[test]
    fn enough_acknowledgements_make_a_durable_save() {
        let aof = AofSupport::default();
        let read = answers(&["+ok\r\n", ":2\r\n"], false);
        assert_eq!(read.script.as_deref().unwrap(), "ok");
        assert!(read.check(&durability(false), &aof).is_ok());
        let read = answers(&["+ok\r\n", ":3\r\n", "*2\r\n:0\r\n:2\r\n"], true);
        assert!(read.check(&durability(true), &aof).is_ok());
        assert!(aof.may_be_supported());
    }

    #[test]
    fn too_few_acknowledgements_or_fsyncs_are_not_durable() {
        let aof = AofSupport::default();
        let read = answers(&["+ok\r\n", ":1\r\n"], false);
        assert!(matches!(
            read.check(&durability(false), &aof),
            Err(Check::NotDurable {
                acknowledged: 1,
                required: 2
            })
        ));
        let read = answers(&["+ok\r\n", ":2\r\n", "*2\r\n:0\r\n:0\r\n"], true);
        let error = read
            .check(&durability(true), &aof)
            .unwrap_err()
            .into_store_error(|_| unreachable!());
        assert!(matches!(
            error,
            StoreError::NotDurable {
                acknowledged: 0,
                required: 2
            }
        ));
    }

    #[test]
    fn an_unknown_waitaof_is_learned_once_and_the_wait_alone_decides() {
        let aof = AofSupport::default();
        let read = answers(
            &[
                "+ok\r\n",
                ":2\r\n",
                "-ERR unknown command 'WAITAOF', with args beginning with: '0' '2' '250' \r\n",
            ],
            true,
        );
        assert!(read.check(&durability(true), &aof).is_ok());
        assert!(!aof.may_be_supported());
        // Another error is a failed save, not a fallback.
        let aof = AofSupport::default();
        let read = answers(&["+ok\r\n", ":2\r\n", "-NOPERM no\r\n"], true);
        assert!(matches!(
            read.check(&durability(true), &aof),
            Err(Check::Failed(_))
        ));
        assert!(aof.may_be_supported());
    }

    #[test]
    fn a_script_error_is_kept_and_a_wrong_length_is_malformed() {
        let read = answers(
            &[
                "-READONLY You can't write against a read only replica.\r\n",
                ":0\r\n",
            ],
            false,
        );
        assert!(read.script.is_err());
        assert!(Answers::read(vec![parse("+ok\r\n")], false).is_err());
        let read = answers(&["+ok\r\n", "+what\r\n"], false);
        assert!(matches!(
            read.check(&durability(false), &AofSupport::default()),
            Err(Check::Malformed("WAIT"))
        ));
    }
}

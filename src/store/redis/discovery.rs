//! No plaintext by discovery. The refusal of plain `redis://` to a host that is not loopback
//! (see [`RedisStore::new`](super::RedisStore::new)) must also hold for the addresses the store
//! learns rather than is given: the primary a Sentinel names, and the nodes a cluster announces.
//! A Sentinel on loopback may name a primary on another host, a cluster seed on loopback may
//! announce remote nodes; the store would then send the Redis password and (without an
//! encryption key) the tokens across the network in clear.
//!
//! So, unless the store was made with an `*_allowing_plaintext` constructor or reaches Redis
//! with TLS (`rediss://`, which then applies to discovered nodes too), every connection first
//! asks what discovery will answer — `SENTINEL GET-MASTER-ADDR-BY-NAME` of a sentinel, `CLUSTER
//! SLOTS` of a seed node — and refuses before any connection to an address that is not
//! loopback. The `redis` crate's discovery runs after that check (it confirms the primary with
//! `ROLE`, which is a connection), and its answer is checked again.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisResult, Value};

use super::endpoint::is_loopback_host;

/// The error for a discovered address that would be reached in clear: names the address (not a
/// secret) and the constructor that allows it.
fn refused(what: &str, host: &str, port: u16, opt_in: &str) -> RedisError {
    RedisError::from((
        ErrorKind::InvalidClientConfig,
        "refusing plain redis:// to a discovered node that is not loopback",
        format!(
            "{what} {host}:{port} is not loopback: the Redis password and the tokens would \
             cross the network unencrypted; use rediss:// (TLS), or opt in with \
             RedisStore::{opt_in}"
        ),
    ))
}

/// Checks a discovered `host:port`.
pub(super) fn check(what: &str, host: &str, port: u16, opt_in: &str) -> RedisResult<()> {
    if is_loopback_host(host) {
        Ok(())
    } else {
        Err(refused(what, host, port, opt_in))
    }
}

/// A connection to a node the store was given (a sentinel, a cluster seed), bounded.
async fn ask(client: &redis::Client, timeout: Duration) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The primary that `sentinel` names for `service`, without connecting to it.
pub(super) async fn sentinel_primary(
    sentinel: &redis::Client,
    service: &str,
    timeout: Duration,
) -> RedisResult<Option<(String, u16)>> {
    let mut connection = ask(sentinel, timeout).await?;
    redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(service)
        .query_async(&mut connection)
        .await
}

/// Every `host:port` that a `CLUSTER SLOTS` answer names (`[start, end, [host, port, id, …],
/// …]` per range); an empty or `?` host means "the node you asked", which was given.
fn cluster_nodes(slots: &Value) -> Vec<(String, u16)> {
    let mut nodes = Vec::new();
    let Value::Array(ranges) = slots else {
        return nodes;
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        for node in parts.iter().skip(2) {
            let Value::Array(fields) = node else { continue };
            let host = match fields.first() {
                Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                Some(Value::SimpleString(text)) => text.clone(),
                _ => continue,
            };
            let port = match fields.get(1) {
                Some(Value::Int(port)) => u16::try_from(*port).unwrap_or(0),
                _ => 0,
            };
            if !host.is_empty() && host != "?" {
                nodes.push((host, port));
            }
        }
    }
    nodes
}

/// Checks every node the cluster announces to the first seed that answers; the seeds are asked
/// all at once (one silent seed must not stall the connection), within `timeout` in all.
pub(super) async fn check_cluster(
    seeds: &[String],
    timeout: Duration,
    opt_in: &str,
) -> RedisResult<()> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut asked: FuturesUnordered<_> = seeds
        .iter()
        .map(|seed| async move {
            let client = redis::Client::open(seed.as_str())?;
            let mut connection = ask(&client, timeout).await?;
            redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async::<Value>(&mut connection)
                .await
        })
        .collect();
    let first = async {
        let mut last = None;
        while let Some(answer) = asked.next().await {
            match answer {
                Ok(slots) => return Ok(slots),
                Err(error) => last = Some(error),
            }
        }
        Err(last
            .unwrap_or_else(|| RedisError::from((ErrorKind::InvalidClientConfig, "no node given"))))
    };
    let slots = tokio::time::timeout(timeout, first).await.map_err(|_| {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no cluster node answered CLUSTER SLOTS in time",
        ))
    })??;
    for (host, port) in cluster_nodes(&slots) {
        check("the cluster node", &host, port, opt_in)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_a_cluster_slots_answer_names_is_read() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(7000), bulk("id1")]),
                Value::Array(vec![bulk("198.51.100.7"), Value::Int(7003), bulk("id4")]),
            ]),
            Value::Array(vec![
                Value::Int(8192),
                Value::Int(16383),
                Value::Array(vec![bulk(""), Value::Int(7001), bulk("id2")]),
            ]),
        ]);
        assert_eq!(
            cluster_nodes(&slots),
            [("127.0.0.1".into(), 7000), ("198.51.100.7".into(), 7003)]
        );
    }

    #[test]
    fn only_loopback_passes_and_the_refusal_names_the_way_out() {
        for host in [
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
        ] {
            assert!(check("node", host, 6379, "x").is_ok(), "{host}");
        }
        for host in [
            "198.51.100.7",
            "10.0.0.1",
            "redis.internal",
            "::ffff:198.51.100.7",
        ] {
            let error = check("the primary", host, 6379, "sentinel_allowing_plaintext")
                .unwrap_err()
                .to_string();
            assert!(error.contains(host), "{error}");
            assert!(error.contains("rediss://"), "{error}");
            assert!(error.contains("sentinel_allowing_plaintext"), "{error}");
        }
    }
}

//! Which Redis a [`RedisStore`](super::RedisStore) talks to — one server, the primary that Redis
//! Sentinel names, or a Redis Cluster — and the connection it uses for each, so that the store,
//! its scripts and its leases run the same commands on all three.
//!
//! A network path can die without a reset (a lost NAT or conntrack entry, a load balancer or a
//! VM migration dropping a flow): the socket stays open and silent, and a client that keeps
//! using it after a command timed out never hears from Redis again. `redis`'s own reconnection
//! does not help there: `ConnectionManager` reconnects after a dropped connection, not after a
//! response timeout, and a cluster connection retries a timed-out command on the same socket.
//! So the store never trusts a connection that left a command unanswered: a [`Link`] owns the
//! live connection, and any exchange on it that ends without an answer (an I/O error, a
//! timeout, a dropped or refused connection, or a caller that gave up waiting) forgets it; the
//! next exchange connects anew (for Sentinel, asking the sentinels again; for a cluster,
//! reconnecting to every node). Nothing is sent again by the link: a command whose answer was
//! lost may have run, and only the store's protocol (which re-reads before deciding) may decide
//! to repeat it. (A cluster connection does retry a command itself, on the same node, after an
//! I/O error. Every write of the store is owner-checked or a compare-and-set, so a repeat writes
//! nothing twice; at worst a lease request that ran twice makes this host wait out its own lease
//! once.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, TlsCertificates, Value};

use super::discovery;
use super::sentinel::{SentinelConfig, SentinelLink};

/// Where the store connects: the client of one server, or what a cluster client is built from.
#[derive(Clone)]
pub(super) enum Target {
    /// One server, reached through a [`ConnectionManager`] (lazy, reconnecting).
    Server(redis::Client),
    /// A Redis Cluster: the nodes to discover it from (URLs that may carry a password, never
    /// shown) and the trusted CA for `rediss://` nodes, if not the system's roots.
    Cluster {
        nodes: Vec<String>,
        tls: bool,
        certificates: Option<TlsCertificates>,
        /// Made by `cluster_allowing_plaintext`: announced nodes are not checked.
        allow_plaintext: bool,
    },
    /// The primary of a service monitored by Redis Sentinel, found again after a failover.
    Sentinel(SentinelConfig),
}

impl Target {
    /// A connection with these bounds. For one server and for Sentinel it is lazy (no network
    /// until the first command, which finds the primary first); for a cluster it discovers the
    /// slots now, so the caller bounds the wait.
    async fn connect(&self, timeout: Duration) -> Result<Live, RedisError> {
        match self {
            Self::Server(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(client.clone(), config).map(Live::Server)
            }
            Self::Cluster {
                nodes,
                tls,
                certificates,
                allow_plaintext,
            } => {
                if !tls && !allow_plaintext {
                    discovery::check_cluster(nodes, timeout, "cluster_allowing_plaintext").await?;
                }
                // Retries stay at the crate's default: following a MOVED or ASK redirection,
                // or a node's failover, is a retry. The response timeout also bounds a request
                // with all its retries, so a call still ends within it.
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout);
                if let (true, Some(certificates)) = (tls, certificates) {
                    builder = builder.certs(certificates.clone());
                }
                let client = builder.build()?;
                client.get_async_connection().await.map(Live::Cluster)
            }
            Self::Sentinel(config) => config.connect(timeout).map(Live::Sentinel),
        }
    }

    /// Is this a cluster?
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// The Sentinel service whose primary this is, if it is one.
    pub(super) fn sentinel_service(&self) -> Option<&str> {
        match self {
            Self::Sentinel(config) => Some(config.service()),
            _ => None,
        }
    }
}

/// A connection to one server, to a cluster or to Sentinel's current primary; cheap to clone
/// (clones share their sockets, and a Sentinel one the primary it follows).
#[derive(Clone)]
enum Live {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelLink>),
}

/// The live connection of a store (one for its commands, one for its durable saves), made on
/// first use and forgotten after any exchange that went unanswered (see the module's docs).
pub(super) struct Link {
    target: Target,
    /// Each connection attempt and each command on the connection is bounded by this.
    timeout: Duration,
    /// The live connection and its generation (which attempt made it).
    current: Mutex<Option<(u64, Live)>>,
    generations: AtomicU64,
    /// One connection attempt at a time; the callers that need one wait for it.
    connecting: tokio::sync::Mutex<()>,
}

impl Link {
    /// A link to `target`, connecting on first use with `timeout` per attempt and per command.
    pub(super) fn new(target: Target, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            target,
            timeout,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// A handle that runs commands on this link: what scripts, leases and sweeps are given.
    pub(super) fn connection(self: &Arc<Self>) -> Connection {
        Connection(self.clone())
    }

    fn current(&self) -> Option<(u64, Live)> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The live connection, connecting first if there is none.
    async fn live(&self) -> RedisResult<(u64, Live)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let _connecting = self.connecting.lock().await;
        // Made by the attempt this call waited for.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let live = self.target.connect(self.timeout).await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, live.clone()));
        Ok((generation, live))
    }

    /// Forgets the connection of `generation` (not a newer one another call made meanwhile).
    fn forget(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    /// Runs one exchange on the live connection; the connection is forgotten unless the
    /// exchange got an answer (an error reply from Redis is an answer; a caller dropping the
    /// future before it ends is not).
    async fn exchange<T, F>(&self, run: impl FnOnce(Live) -> F) -> RedisResult<T>
    where
        F: std::future::Future<Output = RedisResult<T>>,
    {
        let (generation, live) = self.live().await?;
        let mut unanswered = Unanswered {
            link: self,
            generation: Some(generation),
        };
        let result = run(live).await;
        if !matches!(&result, Err(error) if went_unanswered(error)) {
            unanswered.generation = None;
        }
        result
    }
}

/// Forgets its connection when dropped still armed: the exchange ended without an answer, or
/// was dropped before it ended.
struct Unanswered<'a> {
    link: &'a Link,
    generation: Option<u64>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(generation) = self.generation {
            self.link.forget(generation);
        }
    }
}

/// Is `error` a failure to hear from Redis (the connection may be dead or silent), rather than
/// Redis's own error reply? The connection is then forgotten, and the store reports the store
/// unreachable (but for a refused authentication, which is an answer).
pub(super) fn went_unanswered(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

/// A handle on a store's [`Link`]: each command runs on the link's live connection at the time
/// it is sent. Cheap to clone; clones share the link.
#[derive(Clone)]
pub(super) struct Connection(Arc<Link>);

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.0.exchange(move |live| async move {
            match live {
                Live::Server(mut connection) => connection.req_packed_command(cmd).await,
                Live::Cluster(mut connection) => connection.req_packed_command(cmd).await,
                Live::Sentinel(link) => link.req_packed_command(cmd).await,
            }
        }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.0.exchange(move |live| async move {
            match live {
                Live::Server(mut connection) => {
                    connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                }
                Live::Cluster(mut connection) => {
                    connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                }
                Live::Sentinel(link) => link.req_packed_commands(pipeline, offset, count).await,
            }
        }))
    }

    fn get_db(&self) -> i64 {
        match &self.0.target {
            Target::Server(client) => client.get_connection_info().redis_settings().db(),
            // A cluster has database 0 only; Sentinel's data nodes are reached on the database
            // of the URLs, selected when connecting, and no command selects another.
            Target::Cluster { .. } | Target::Sentinel(_) => 0,
        }
    }
}

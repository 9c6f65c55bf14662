//! Which Redis a [`RedisStore`](super::RedisStore) talks to — one server, the primary that Redis
//! Sentinel names, or a Redis Cluster — and the connection it uses for each, so that the store,
//! its scripts and its leases run the same commands on all three.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, TlsCertificates, Value};

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
    },
    /// The primary of a service monitored by Redis Sentinel, found again after a failover.
    Sentinel(SentinelConfig),
}

impl Target {
    /// A connection with these bounds. For one server and for Sentinel it is lazy (no network
    /// until the first command, which finds the primary first); for a cluster it discovers the
    /// slots now, so the caller bounds the wait.
    pub(super) async fn connect(&self, timeout: Duration) -> Result<Connection, RedisError> {
        match self {
            Self::Server(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map(Connection::Server)
            }
            Self::Cluster {
                nodes,
                tls,
                certificates,
            } => {
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
                client.get_async_connection().await.map(Connection::Cluster)
            }
            Self::Sentinel(config) => config.connect(timeout).map(Connection::Sentinel),
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
pub(super) enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelLink>),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            Self::Sentinel(link) => link.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(link) => link.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
            // Commands go to the database the connection was opened on; none selects another.
            Self::Sentinel(_) => 0,
        }
    }
}

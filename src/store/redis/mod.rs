//! A [`TokenStore`] in Redis, for a fleet of hosts sharing one GenLogs grant: a lease lock with
//! an owner id, a compare-and-set save that also checks the lease (both in Lua, so atomic),
//! automatic reconnection with bounded waits, and optional encryption at rest.
//!
//! Keys, for a grant named `NAME`: `{genlogs:NAME}:tokens` (a hash: `version`, `doc`) and
//! `{genlogs:NAME}:lock` (the lease). The braces put both in one hash slot, so the scripts work
//! on Redis Cluster ([`RedisStore::cluster`]) as well as on a single server ([`RedisStore::new`])
//! or on the primary that Redis Sentinel names ([`RedisStore::sentinel`]).

mod connection;
mod durability;
mod endpoint;
mod lease;
mod orphan;
mod scripts;
mod sealing;
mod sentinel;

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::RedisError;

use crate::store::{
    decode_document, next_version, StoreError, StoreLock, StoredTokens, TokenStore,
    UnreadableReason,
};
use connection::{Connection, Target};
use durability::{Answers, AofSupport, Durability};
use endpoint::Endpoint;
use lease::LeaseGuard;

pub use sealing::{EncryptionKey, InvalidKey};

/// How much longer than the refresh request's total timeout a lease lasts by default: time to
/// read the store before the request and save the new tokens after it.
pub const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(15);

/// How long a lease lasts unless extended: the client's default total timeout (30 s,
/// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT)) plus [`DEFAULT_LEASE_MARGIN`]. A host that
/// crashes while holding it blocks the others' refreshes this long at most; they serve their
/// cached access tokens meanwhile. With a longer client timeout, set a longer lease (or let the
/// manager extend it).
pub const DEFAULT_LEASE: Duration =
    Duration::from_secs(crate::DEFAULT_TIMEOUT.as_secs() + DEFAULT_LEASE_MARGIN.as_secs());

/// How long one Redis command may take, and one connection attempt: a paused or unreachable
/// Redis fails a call within twice this ("the token store is unreachable"), never hangs it.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A waiting [`lock`](TokenStore::lock) tries again after 1 ms, doubling up to this: a lease
/// released by a dropped guard (a spawned task) is usually free within a millisecond or two,
/// and a lease held for a whole refresh is polled every 10 ms (a hundred cheap `SET NX` a second).
const LOCK_POLL_MAX: Duration = Duration::from_millis(10);

/// The longest lease, in milliseconds, sent to Redis: 2^53 - 1 (about 285,000 years), so that
/// the lease scripts' Lua numbers (doubles) hold it exactly and `PEXPIRE` never overflows.
const MAX_LEASE_MS: u64 = (1 << 53) - 1;

/// The longest wait for replicas' acknowledgements (`with_min_replicas`): a save that waits
/// longer would outlast any useful lease.
pub const MAX_REPLICA_WAIT: Duration = Duration::from_secs(60);

/// A lease's length in milliseconds as sent to Redis: at least 1, at most [`MAX_LEASE_MS`].
fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LEASE_MS)
}

/// Tokens of one grant in Redis, shared by every host that uses that grant.
///
/// Created without touching the network; the connection is made on first use (inside a Tokio
/// runtime) and remade automatically after Redis restarts or the network drops. `Debug` shows the
/// host (or the cluster's nodes) and the grant's name, never the URL's credentials.
///
/// One server: [`RedisStore::new`] with its URL. A primary monitored by Redis Sentinel, followed
/// across failovers: [`RedisStore::sentinel`] with the sentinels' URLs. A Redis Cluster:
/// [`RedisStore::cluster`] with one or more of its nodes.
pub struct RedisStore {
    name: String,
    tokens_key: String,
    lock_key: String,
    endpoint: Endpoint,
    target: Target,
    connection: tokio::sync::OnceCell<Connection>,
    /// The connection of durable saves: its response timeout also covers `WAIT` (and `WAITAOF`).
    durable_connection: tokio::sync::OnceCell<Connection>,
    durability: Option<Durability>,
    /// Set by `with_replica_fsync`, whichever order the setters come in.
    replica_fsync: bool,
    aof: AofSupport,
    encryption: Option<EncryptionKey>,
    lease: Duration,
    lock_wait: Duration,
    timeout: Duration,
}

impl RedisStore {
    /// A store for the grant `name` (any label without braces or white space, e.g. the GenLogs
    /// user) on the Redis at `url`: `rediss://[:password@]host[:port][/db]` (TLS: rustls, the
    /// system's root certificates), `unix:///path[?pass=…]`, or `redis://…` to a loopback host
    /// (`localhost`, `127.0.0.0/8`, `::1`). Plain `redis://` to any other host is refused, since
    /// the Redis password and the tokens would cross the network unencrypted: use `rediss://`, or
    /// [`new_allowing_plaintext`](Self::new_allowing_plaintext) on a network you trust. Errors
    /// never show the URL.
    pub fn new(url: &str, name: &str) -> Result<Self, StoreError> {
        let endpoint = Endpoint::parse(url)?;
        endpoint.refuse_plaintext_remote("new_allowing_plaintext")?;
        Self::open(url, endpoint, name)
    }

    /// Like [`new`](Self::new), also accepting plain `redis://` to a host that is not loopback:
    /// the Redis password and the tokens (encrypted only with
    /// [`with_encryption_key`](Self::with_encryption_key)) then cross the network in clear. For a
    /// network you trust (a private link, a sidecar proxy that adds TLS). A separate constructor,
    /// so that the choice is visible where the store is made and no later setting can undo it.
    pub fn new_allowing_plaintext(url: &str, name: &str) -> Result<Self, StoreError> {
        Self::open(url, Endpoint::parse(url)?, name)
    }

    fn open(url: &str, endpoint: Endpoint, name: &str) -> Result<Self, StoreError> {
        check_name(name)?;
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Other(format!(
                "invalid Redis URL: {}",
                endpoint.scrub(&e.to_string())
            ))
        })?;
        Ok(Self::with_target(name, endpoint, Target::Server(client)))
    }

    /// A store for the grant `name` on the Redis Cluster that `node_urls` belong to: one or more
    /// of its nodes (`redis://[:password@]host:port` or `rediss://…`, all with the same scheme
    /// and credentials); the others are discovered from them, and a MOVED or ASK answer (slots
    /// moved by resharding or a failover) is followed. Both keys of a grant share one hash slot,
    /// so every call goes to the one node that owns it. The setters apply as to [`new`](Self::new).
    /// As there, plain `redis://` nodes must be loopback ones
    /// ([`cluster_allowing_plaintext`](Self::cluster_allowing_plaintext) otherwise).
    /// A call that has to connect first (the first one, or the next after a failed connection)
    /// also waits for the connection and the cluster's slot map, bounded like a command (twice
    /// [`with_timeout`](Self::with_timeout)); later calls are bounded as on one server. Errors
    /// never show the URLs.
    pub fn cluster(node_urls: &[&str], name: &str) -> Result<Self, StoreError> {
        let endpoint = Endpoint::parse_cluster(node_urls)?;
        endpoint.refuse_plaintext_remote("cluster_allowing_plaintext")?;
        Self::open_cluster(node_urls, endpoint, name)
    }

    /// Like [`cluster`](Self::cluster), also accepting plain `redis://` nodes that are not
    /// loopback (see [`new_allowing_plaintext`](Self::new_allowing_plaintext)).
    pub fn cluster_allowing_plaintext(node_urls: &[&str], name: &str) -> Result<Self, StoreError> {
        Self::open_cluster(node_urls, Endpoint::parse_cluster(node_urls)?, name)
    }

    fn open_cluster(
        node_urls: &[&str],
        endpoint: Endpoint,
        name: &str,
    ) -> Result<Self, StoreError> {
        check_name(name)?;
        let nodes: Vec<String> = node_urls.iter().map(|url| url.to_string()).collect();
        // Checks the URLs (and that they share their credentials) now, as `new` does; the
        // connection itself is made on first use.
        redis::cluster::ClusterClient::new(nodes.iter().map(String::as_str)).map_err(|e| {
            StoreError::Other(format!(
                "invalid Redis Cluster node URLs: {}",
                endpoint.scrub(&e.to_string())
            ))
        })?;
        let target = Target::Cluster {
            nodes,
            tls: endpoint.is_tls(),
            certificates: None,
        };
        Ok(Self::with_target(name, endpoint, target))
    }

    fn with_target(name: &str, endpoint: Endpoint, target: Target) -> Self {
        Self {
            name: name.to_string(),
            tokens_key: format!("{{genlogs:{name}}}:tokens"),
            lock_key: format!("{{genlogs:{name}}}:lock"),
            endpoint,
            target,
            connection: tokio::sync::OnceCell::new(),
            durable_connection: tokio::sync::OnceCell::new(),
            durability: None,
            replica_fsync: false,
            aof: AofSupport::default(),
            encryption: None,
            lease: DEFAULT_LEASE,
            lock_wait: crate::DEFAULT_LOCK_WAIT,
            timeout: DEFAULT_REDIS_TIMEOUT,
        }
    }
}

/// Refuses a grant name that could not be one hash tag: empty, too long, or with braces or
/// white space.
fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 200
        || name
            .chars()
            .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
    {
        return Err(StoreError::Other(
            "a RedisStore name must be 1 to 200 characters without braces or white space".into(),
        ));
    }
    Ok(())
}

impl RedisStore {
    /// Trusts only the CA certificate(s) in `pem` for `rediss://` (a private CA), instead of
    /// the system's root certificates; for a cluster, on every node.
    pub fn with_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Result<Self, StoreError> {
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.into()),
        };
        self.target = match self.target {
            Target::Server(client) => {
                let info = client.get_connection_info().clone();
                let client = redis::Client::build_with_tls(info, certificates).map_err(|e| {
                    StoreError::Other(format!(
                        "the Redis TLS settings are invalid: {}",
                        self.endpoint.scrub(&e.to_string())
                    ))
                })?;
                Target::Server(client)
            }
            Target::Cluster { nodes, tls, .. } => Target::Cluster {
                nodes,
                tls,
                certificates: Some(certificates),
            },
            Target::Sentinel(mut config) => {
                config.set_certificates(certificates);
                Target::Sentinel(config)
            }
        };
        self.connection = tokio::sync::OnceCell::new();
        self.durable_connection = tokio::sync::OnceCell::new();
        Ok(self)
    }

    /// Encrypts the tokens at rest with `key` (XChaCha20-Poly1305, bound to the grant's name and
    /// the document's version). Every host of the fleet needs the same key; a store with a key
    /// refuses an unencrypted document, and one without refuses an encrypted one
    /// ([`StoreError::Unreadable`]). Default: not encrypted.
    #[must_use]
    pub fn with_encryption_key(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// How long a lease lasts unless extended. Default: [`DEFAULT_LEASE`]. Keep it longer than
    /// the client's total timeout plus a margin: the manager sends no refresh unless that much
    /// of the lease is left. At least 1 ms; at most what Redis takes (2^53 − 1 ms).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        // Clamped once here, so that every deadline computed from it is representable.
        self.lease = Duration::from_millis(lease_ms(lease));
        self
    }

    /// How long [`lock`](TokenStore::lock) waits for another host's lease before failing with
    /// [`StoreError::Busy`]. Default: [`DEFAULT_LOCK_WAIT`](crate::DEFAULT_LOCK_WAIT).
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long one Redis command and one connection attempt may take. Default:
    /// [`DEFAULT_REDIS_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        // The connection carries the timeouts it was made with.
        self.connection = tokio::sync::OnceCell::new();
        self.durable_connection = tokio::sync::OnceCell::new();
        self
    }

    /// Durable before used: a save (the manager's possibly-rotated mark before it sends a
    /// refresh, the rotated tokens after one, and [`replace`](TokenStore::replace)) counts only
    /// once at least `replicas` replicas have acknowledged it, waiting up to `timeout` (at least
    /// 1 ms) for them. Fewer acknowledgements is [`StoreError::NotDurable`]: the document was
    /// written on the primary but the save has failed, so the manager sends nothing (a mark) or
    /// keeps the rotated tokens in memory with the lock and saves them again (a rotation).
    ///
    /// After the save script the store sends `WAIT replicas timeout` in the same pipeline, so
    /// over the same connection (`WAIT` covers only the writes made earlier on its connection).
    /// A save may then take up to `timeout` longer (twice that with
    /// [`with_replica_fsync`](Self::with_replica_fsync)), on top of
    /// [`with_timeout`](Self::with_timeout)'s bound. This narrows, but does not close, the
    /// window in which a failover loses a save: see the README's "Running a fleet".
    /// `replicas == 0` turns it off; `timeout` is at most [`MAX_REPLICA_WAIT`]. Default: off (a
    /// save counts once the primary has it).
    #[must_use]
    pub fn with_min_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.durability = (replicas > 0).then_some(Durability {
            replicas,
            // A wait Redis refuses would fail every save after its write.
            timeout: timeout.min(MAX_REPLICA_WAIT),
            fsync: self.replica_fsync,
        });
        self.durable_connection = tokio::sync::OnceCell::new();
        self
    }

    /// With [`with_min_replicas`](Self::with_min_replicas): also require those replicas to have
    /// fsynced the save to their append-only file (`WAITAOF 0 replicas timeout`, Redis 7.2 or
    /// later, replicas with `appendonly yes`; a replica without AOF never counts). A server
    /// older than 7.2 answers that it does not know `WAITAOF`: that is logged once, and its saves
    /// then wait for the acknowledgement (`WAIT`) alone. Without `with_min_replicas` (or with
    /// 0 replicas) this does nothing. Default: off.
    #[must_use]
    pub fn with_replica_fsync(mut self) -> Self {
        self.replica_fsync = true;
        if let Some(durability) = self.durability.as_mut() {
            durability.fsync = true;
        }
        self.durable_connection = tokio::sync::OnceCell::new();
        self
    }

    /// The grant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Redis key holding the tokens (`{genlogs:NAME}:tokens`).
    pub fn tokens_key(&self) -> &str {
        &self.tokens_key
    }

    /// The Redis key holding the lease (`{genlogs:NAME}:lock`).
    pub fn lock_key(&self) -> &str {
        &self.lock_key
    }

    /// The shared connection, made on first use. One connection attempt per call (no retry
    /// loop inside a call, which would stretch the wait); a failed command makes the next call
    /// reconnect. A cluster's first connection (reading its slots) is bounded like a command,
    /// and a failed one is tried again by the next call.
    async fn connection(&self) -> Result<Connection, StoreError> {
        self.connection
            .get_or_try_init(|| self.bounded(self.target.connect(self.timeout)))
            .await
            .cloned()
    }

    /// The connection of durable saves, made on first use like [`connection`](Self::connection):
    /// its response timeout is the command timeout plus the waits, so a `WAIT` that blocks for
    /// its whole timeout is answered, not cut off.
    async fn durable_connection(&self, durability: &Durability) -> Result<Connection, StoreError> {
        let timeout = self.timeout.saturating_add(durability.total_wait());
        self.durable_connection
            .get_or_try_init(|| self.bounded(self.target.connect(timeout)))
            .await
            .cloned()
    }

    /// Runs one exchange with Redis, bounded: a connection attempt and a command.
    async fn bounded<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        self.bounded_by(self.timeout.saturating_mul(2), exchange)
            .await
    }

    /// Like [`bounded`](Self::bounded), within `limit`.
    async fn bounded_by<T>(
        &self,
        limit: Duration,
        exchange: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result.map_err(|e| self.failure(e)),
            Err(_) => Err(StoreError::Unreachable(Box::new(RedisFailure(format!(
                "no answer from Redis at {:?} within {limit:?}",
                self.endpoint
            ))))),
        }
    }

    /// Runs the save script and `WAIT` (and `WAITAOF`) in one pipeline, on one connection:
    /// `ok` only once enough replicas acknowledged the write; the script's answer otherwise.
    async fn save_durably(
        &self,
        durability: &Durability,
        owner: &str,
        expected: u64,
        version: u64,
        document: &[u8],
    ) -> Result<String, StoreError> {
        let script = redis::cmd("EVAL")
            .arg(scripts::SAVE_LUA.as_str())
            .arg(2)
            .arg(&self.tokens_key)
            .arg(&self.lock_key)
            .arg(owner)
            .arg(expected.to_string())
            .arg(version.to_string())
            .arg(document)
            .clone();
        let aof = durability.fsync && self.aof.may_be_supported();
        let pipeline = durability.pipeline(script, aof);
        let mut connection = self.durable_connection(durability).await?;
        let limit = self
            .timeout
            .saturating_mul(2)
            .saturating_add(durability.total_wait());
        let values: Vec<redis::Value> = self
            .bounded_by(limit, pipeline.query_async(&mut connection))
            .await?;
        let answers = Answers::read(values, aof)?;
        let script = answers
            .script
            .as_ref()
            .map_err(|e| self.failure(e.clone()))?;
        if script != "ok" {
            // Nothing was written: the waits do not matter.
            return Ok(script.clone());
        }
        answers
            .check(durability, &self.aof)
            .map_err(|check| check.into_store_error(|e| self.failure(e)))?;
        Ok("ok".into())
    }

    /// A Redis error as a store error, scrubbed of the URL's credentials: a failure to reach
    /// Redis is [`StoreError::Unreachable`]; an error answer (a wrong password, a key of the
    /// wrong type) is [`StoreError::Other`].
    fn failure(&self, error: RedisError) -> StoreError {
        let message = self.endpoint.scrub(&error.to_string());
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            StoreError::Unreachable(Box::new(RedisFailure(format!(
                "Redis at {:?}: {message}",
                self.endpoint
            ))))
        } else {
            StoreError::Other(format!("Redis at {:?}: {message}", self.endpoint))
        }
    }

    fn unreadable(&self, reason: UnreadableReason) -> StoreError {
        StoreError::Unreadable {
            store: format!("Redis key {}", self.tokens_key),
            reason,
        }
    }

    /// The lease `lock` holds on this store, if it is one of this store's.
    fn lease_of<'a>(&self, lock: &'a StoreLock) -> Result<&'a LeaseGuard, StoreError> {
        match lock.guard::<LeaseGuard>() {
            Some(guard) if guard.lock_key == self.lock_key => Ok(guard),
            _ => Err(StoreError::Other(
                "the lock was not taken from this RedisStore; nothing was written".into(),
            )),
        }
    }

    /// The stored version alone (stored in clear beside the document): what an operator's
    /// replacement must compare against even when the document itself cannot be read.
    async fn stored_version(&self) -> Result<u64, StoreError> {
        let mut connection = self.connection().await?;
        let version: Option<String> = self
            .bounded(
                redis::cmd("HGET")
                    .arg(&self.tokens_key)
                    .arg("version")
                    .query_async(&mut connection),
            )
            .await?;
        Ok(version.and_then(|v| v.parse().ok()).unwrap_or(0))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RedisStore");
        debug.field("endpoint", &self.endpoint);
        if let Some(service) = self.target.sentinel_service() {
            debug.field("sentinel_service", &service);
        }
        debug
            .field("cluster", &self.target.is_cluster())
            .field("name", &self.name)
            .field("encrypted", &self.encryption.is_some())
            .field("lease", &self.lease)
            .field("durability", &self.durability)
            .field("lock_wait", &self.lock_wait)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why Redis could not be used, with the URL's credentials scrubbed out.
struct RedisFailure(String);

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisFailure({:?})", self.0)
    }
}

impl std::error::Error for RedisFailure {}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        let mut connection = self.connection().await?;
        let (version, document, saved_on, instance): (
            Option<String>,
            Option<Vec<u8>>,
            Option<String>,
            String,
        ) = self
            .bounded(
                scripts::LOAD
                    .key(&self.tokens_key)
                    .invoke_async(&mut connection),
            )
            .await?;
        let Some(document) = document else {
            return Ok(None);
        };
        let version: u64 = version.and_then(|v| v.parse().ok()).ok_or_else(|| {
            self.unreadable(UnreadableReason::NotATokenDocument {
                problem: "its version is missing or not a number".into(),
            })
        })?;
        let json = sealing::open(self.encryption.as_ref(), &self.name, version, &document)
            .map_err(|reason| self.unreadable(reason))?;
        let mut tokens = decode_document(&json)
            .map_err(|problem| self.unreadable(UnreadableReason::NotATokenDocument { problem }))?;
        // Saved by another server instance (restarted, failed over, restored): it may have lost
        // later writes. Unknown on either side (an older document, `INFO` refused): not flagged.
        tokens.lineage.instance_changed = matches!(
            saved_on.as_deref(),
            Some(saved_on) if !saved_on.is_empty() && !instance.is_empty() && saved_on != instance
        );
        // The hash's version is the one the save script compares; the copy inside the document
        // is informative only.
        Ok(Some(StoredTokens { version, ..tokens }))
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        let mut connection = self.connection().await?;
        let owner = lease::new_owner()
            .map_err(|_| StoreError::Other("no randomness for a lease owner id".into()))?;
        let lease_ms = lease_ms(self.lease);
        let waiting_since = Instant::now();
        let mut poll = Duration::from_millis(1);
        loop {
            // Registered before trying, so a release in this process that lands between the
            // failed attempt and the wait still wakes it.
            let released = lease::RELEASED.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // Measured before the request leaves, so the local deadline never overstates the
            // lease Redis grants.
            let sent_at = Instant::now();
            // Whether Redis answered, or the connection failed in a way that says the `SET`
            // never left (refused, not connected): then no orphan can follow.
            let settled = std::sync::atomic::AtomicBool::new(false);
            let taken: Option<String> = match self
                .bounded(async {
                    let answer = redis::cmd("SET")
                        .arg(&self.lock_key)
                        .arg(&owner)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms)
                        .query_async(&mut connection)
                        .await;
                    let in_doubt = answer
                        .as_ref()
                        .is_err_and(|e| e.is_timeout() || e.is_connection_dropped());
                    settled.store(!in_doubt, std::sync::atomic::Ordering::Relaxed);
                    answer
                })
                .await
            {
                Ok(taken) => taken,
                Err(error) => {
                    // No answer: the `SET` may still run when Redis answers again, leaving a
                    // lease no one would release. (Not after a refused connection: a fleet
                    // retrying during an outage would pile up sweeps of leases never asked for.)
                    if !settled.load(std::sync::atomic::Ordering::Relaxed) {
                        orphan::sweep(
                            connection.clone(),
                            self.tokens_key.clone(),
                            self.lock_key.clone(),
                            owner.clone(),
                            sent_at + self.lease,
                            self.timeout,
                        );
                    }
                    return Err(error);
                }
            };
            if taken.is_some() {
                let guard = LeaseGuard::new(
                    self.tokens_key.clone(),
                    self.lock_key.clone(),
                    owner,
                    connection,
                );
                return Ok(StoreLock::lease(guard, sent_at + self.lease));
            }
            let waited = waiting_since.elapsed();
            if waited >= self.lock_wait {
                return Err(StoreError::Busy { waited });
            }
            // Another process's release is seen by polling; this process's wakes it at once.
            tokio::select! {
                () = tokio::time::sleep(poll.min(self.lock_wait - waited)) => {}
                () = released => {}
            }
            poll = (poll * 2).min(LOCK_POLL_MAX);
        }
    }

    async fn save(&self, tokens: &StoredTokens, lock: &StoreLock) -> Result<u64, StoreError> {
        let guard = self.lease_of(lock)?;
        let version = next_version(tokens.version)?;
        let json = serde_json::to_vec(&StoredTokens {
            version,
            ..tokens.clone()
        })
        .map_err(|_| StoreError::Other("the tokens could not be serialized".into()))?;
        let document = match &self.encryption {
            Some(key) => sealing::seal(key, &self.name, version, &json)?,
            None => json,
        };
        let answer = match &self.durability {
            Some(durability) => {
                self.save_durably(durability, &guard.owner, tokens.version, version, &document)
                    .await?
            }
            None => {
                let mut connection = self.connection().await?;
                self.bounded(
                    scripts::SAVE
                        .key(&self.tokens_key)
                        .key(&self.lock_key)
                        .arg(&guard.owner)
                        .arg(tokens.version.to_string())
                        .arg(version.to_string())
                        .arg(document)
                        .invoke_async::<String>(&mut connection),
                )
                .await?
            }
        };
        scripts::save_outcome(&answer, tokens.version)?;
        Ok(version)
    }

    async fn extend(&self, lock: &mut StoreLock, by: Duration) -> Result<(), StoreError> {
        let guard = self.lease_of(lock)?;
        let by_ms = lease_ms(by);
        let mut connection = self.connection().await?;
        let sent_at = Instant::now();
        // The milliseconds left after the extension (never fewer than before it), 0 when lost.
        let left: i64 = self
            .bounded(
                scripts::EXTEND
                    .key(&self.tokens_key)
                    .key(&self.lock_key)
                    .arg(&guard.owner)
                    .arg(by_ms)
                    .invoke_async(&mut connection),
            )
            .await?;
        let Ok(left @ 1..) = u64::try_from(left) else {
            return Err(StoreError::LeaseLost);
        };
        // Redis measured what is left after the request left here, so counting it from then
        // never overstates the lease.
        lock.set_deadline(sent_at + Duration::from_millis(left));
        Ok(())
    }

    async fn replace(&self, tokens: &StoredTokens) -> Result<u64, StoreError> {
        let lock = self.lock().await?;
        // The version is stored in clear, so a document this store cannot decrypt (a rotated
        // key) is still replaced, as replacing is for.
        let version = self.stored_version().await?;
        let stored = self.load().await.ok().flatten();
        let tokens = crate::store::operator_write(tokens, stored.as_ref(), version);
        let saved = self.save(&tokens, &lock).await;
        self.release(lock).await;
        saved
    }

    async fn release(&self, lock: StoreLock) {
        if let Ok(guard) = lock.into_guard::<lease::LeaseGuard>() {
            guard.release().await;
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lease_outlasts_a_refresh_with_the_managers_safety_margin() {
        // The manager sends only with the request's total timeout plus 2 s of lease left; the
        // default lease must allow that without an extension, with time to read and save.
        assert!(
            DEFAULT_LEASE
                >= crate::DEFAULT_TIMEOUT + Duration::from_secs(2) + DEFAULT_LEASE_MARGIN / 2
        );
        assert!(DEFAULT_REDIS_TIMEOUT * 2 < DEFAULT_LEASE_MARGIN);
    }

    #[test]
    fn a_cluster_store_debug_shows_its_nodes_but_no_password() {
        let store = RedisStore::cluster_allowing_plaintext(
            &[
                "redis://:pw-5150@node-a:7000/",
                "redis://:pw-5150@node-b:7001/",
            ],
            "grant",
        )
        .unwrap()
        .with_root_certificate(b"not used by redis://".to_vec())
        .unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("node-a:7000,node-b:7001") && debug.contains("cluster: true"));
        assert!(!debug.contains("pw-5150"), "{debug}");
        assert_eq!(store.lock_key(), "{genlogs:grant}:lock");
        assert!(RedisStore::cluster_allowing_plaintext(&["redis://node-a:7000/"], "a b").is_err());
        let refused = RedisStore::cluster(&["redis://:pw-5150@node-a:7000/"], "grant").unwrap_err();
        assert!(!refused.to_string().contains("pw-5150"), "{refused}");
    }

    #[test]
    fn debug_shows_neither_the_password_nor_the_key() {
        let store = RedisStore::new_allowing_plaintext(
            "redis://user:pw-5150@cache.internal:6380/1",
            "grant",
        )
        .unwrap()
        .with_encryption_key(EncryptionKey::from_bytes([42; 32]));
        let debug = format!("{store:?}");
        assert!(debug.contains("cache.internal:6380") && debug.contains("encrypted: true"));
        assert!(!debug.contains("pw-5150") && !debug.contains("user") && !debug.contains("42,"));
    }

    #[test]
    fn plain_redis_to_a_remote_host_needs_the_explicit_constructor() {
        let url = "redis://:pw-5150@cache.internal:6379/";
        let refused = RedisStore::new(url, "grant").unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains("cache.internal:6379") && message.contains("new_allowing_plaintext"),
            "{message}"
        );
        assert!(!format!("{message} {refused:?}").contains("pw-5150"));
        assert!(RedisStore::new_allowing_plaintext(url, "grant").is_ok());
        for accepted in [
            "rediss://:pw-5150@cache.internal:6380/",
            "redis://:pw-5150@127.0.0.1:6379/",
            "redis://localhost/",
            "unix:///run/redis.sock?pass=pw-5150",
        ] {
            let store = RedisStore::new(accepted, "grant").unwrap();
            assert!(!format!("{store:?}").contains("pw-5150"), "{store:?}");
        }
    }

    #[test]
    fn a_durability_requirement_shows_in_debug_and_zero_replicas_turn_it_off() {
        let store = RedisStore::new("redis://127.0.0.1/", "grant")
            .unwrap()
            .with_min_replicas(2, Duration::from_millis(250))
            .with_replica_fsync();
        assert_eq!(
            store.durability,
            Some(Durability {
                replicas: 2,
                timeout: Duration::from_millis(250),
                fsync: true
            })
        );
        assert!(format!("{store:?}").contains("replicas: 2"));
        // The fsync requirement stays when the count changes; nothing is required with 0.
        let store = store.with_min_replicas(1, Duration::from_secs(1));
        assert!(store.durability.is_some_and(|d| d.fsync && d.replicas == 1));
        assert_eq!(
            store
                .with_min_replicas(0, Duration::from_secs(1))
                .durability,
            None
        );
        let no_op = RedisStore::new("redis://127.0.0.1/", "grant")
            .unwrap()
            .with_replica_fsync();
        assert_eq!(no_op.durability, None);
        // Either order.
        let later = no_op.with_min_replicas(1, Duration::from_secs(1));
        assert!(later.durability.is_some_and(|d| d.fsync));
    }

    #[test]
    fn leases_sent_to_redis_are_between_1_ms_and_2_to_the_53() {
        assert_eq!(lease_ms(Duration::ZERO), 1);
        assert_eq!(lease_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(lease_ms(Duration::MAX), MAX_LEASE_MS);
    }
}

//! A [`TokenStore`] in Redis, for a fleet of hosts sharing one GenLogs grant: a lease lock with
//! an owner id, a compare-and-set save that also checks the lease (both in Lua, so atomic),
//! automatic reconnection with bounded waits, and optional encryption at rest.
//!
//! Keys, for a grant named `NAME`: `{genlogs:NAME}:tokens` (a hash: `version`, `doc`) and
//! `{genlogs:NAME}:lock` (the lease). The braces put both in one hash slot, so the scripts work
//! on Redis Cluster ([`RedisStore::cluster`]) as well as on a single server ([`RedisStore::new`])
//! or on the primary that Redis Sentinel names ([`RedisStore::sentinel`]).

mod connection;
mod discovery;
mod durability;
mod endpoint;
mod lease;
mod orphan;
mod scripts;
mod sealing;
mod sentinel;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;

use crate::clock::{Clock, SystemClock};
use crate::store::{
    decode_document, next_version, StoreError, StoredTokens, TokenStore, UnreadableReason,
};
use connection::{went_unanswered, Connection, Link, Target};
use durability::{connected_replicas, Answers, AofSupport, Durability};
use endpoint::Endpoint;
pub use lease::RedisLock;

pub use sealing::{EncryptionKey, InvalidKey};

/// How much longer than the refresh request's total timeout a lease lasts by default: time to
/// read the store before the request and save the new tokens after it.
pub(crate) const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(15);

/// How long a lease lasts unless extended: the client's default total timeout (30 s,
/// 30 s) plus 15 s. A host that
/// crashes while holding it blocks the others' refreshes this long at most; they serve their
/// cached access tokens meanwhile. With a longer client timeout, set a longer lease (or let the
/// manager extend it).
pub(crate) const DEFAULT_LEASE: Duration =
    Duration::from_secs(crate::config::DEFAULT_TIMEOUT.as_secs() + DEFAULT_LEASE_MARGIN.as_secs());

/// How long one Redis command may take, and one connection attempt: a paused or unreachable
/// Redis fails a call within twice this ("the token store is unreachable"), never hangs it.
pub(crate) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A waiting [`lock`](TokenStore::lock) tries again after 1 ms, doubling up to this: a lease
/// released by a dropped guard (a spawned task) is usually free within a millisecond or two,
/// and a lease held for a whole refresh is polled every 10 ms (a hundred cheap `SET NX` a second).
const LOCK_POLL_MAX: Duration = Duration::from_millis(10);

/// The longest lease, in milliseconds, sent to Redis: 2^53 - 1 (about 285,000 years), so that
/// the lease scripts' Lua numbers (doubles) hold it exactly and `PEXPIRE` never overflows.
const MAX_LEASE_MS: u64 = (1 << 53) - 1;

/// The longest wait for replicas' acknowledgements (`with_min_replicas`): a save that waits
/// longer would outlast any useful lease.
pub(crate) const MAX_REPLICA_WAIT: Duration = Duration::from_secs(60);

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
///
/// # Running a fleet
///
/// Hosts that share one api key and one grant must not refresh on their own: the refresh token is
/// single use, so the second host to send it gets a 401, and a reuse can revoke the whole grant
/// (RFC 9700 §4.14). With `RedisStore` (cargo feature `redis`) the fleet refreshes once per expiry:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use genlogs_auth::{AuthClient, store::redis::EncryptionKey, RedisStore, TokenManager};
///
/// // The same Redis, grant name and key on every host; `rediss://` for TLS (rustls).
/// let store = RedisStore::new(&std::env::var("REDIS_URL")?, "user-42")?
///     .with_encryption_key(EncryptionKey::from_hex(&std::env::var("GENLOGS_TOKENS_KEY")?)?);
/// let client = AuthClient::builder(std::env::var("GENLOGS_API_KEY")?).build()?;
/// let manager = TokenManager::builder(client, store).build();
/// // On every host: renews an idle grant, and watches the store for going back (below).
/// let _keep_alive = manager.keep_alive();
/// let token = manager.access_token().await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// Seed it once with `store.replace(&StoredTokens::from_refresh_token(…))`
/// ([`replace`](TokenStore::replace)). `cargo run --example fleet --features redis` shows two
/// managers on one Redis (it starts `redis-server` itself, so it must be on `PATH`) asking at the
/// same moment: one refresh.
///
/// # What it guarantees
///
/// Each tested against real `redis-server` processes (`tests/it/store_redis.rs`,
/// `tests/it/store_redis_fleet.rs`):
///
/// - **One refresh per expiry across the fleet.** A refresh starts by taking a lease
///   (`SET {genlogs:NAME}:lock <random owner> NX PX`), then re-reads the store: a host that finds
///   tokens a sibling already rotated adopts them instead of refreshing. Three processes of 200
///   tasks each, over six expiries: every refresh request rotated the one valid token, none came
///   early, every caller was served.
/// - **Never the same token from two hosts.** The manager sends a refresh only while it holds the
///   lease with at least the request's total timeout (plus 2 s) left, extending it first if needed.
///   A host paused past its lease finds it lost on resume and sends nothing.
/// - **A stale host never overwrites newer tokens.** A save is one Lua script that checks the lease's
///   owner and the document's version (compare-and-set); release and extend check the owner too.
/// - **One host's verdict is the fleet's.** A 401 or a lost answer marks the token dead or possibly
///   rotated in Redis, and no host sends it again before the marking attempt can no longer be in
///   flight (its request timeout), nor waits for it longer than
///   15 min whatever the marking host's clock says.
/// - **A rotated token is never sent again, by any host.** Every document carries a
///   lineage: the fingerprints (HMAC-SHA-256 under a fixed,
///   domain-separated key, the same on every host whatever its api key; never the tokens) of the
///   16 most recently rotated-away refresh tokens, a write
///   sequence that never goes back, and an operator generation that `replace` /
///   `genlogs-auth init --force` / `replace_tokens` set. Hosts remember 64 fingerprints. A document
///   whose token a host knows was rotated away, or that is older than what the host has seen, is
///   never adopted: the host writes its newer tokens back over it (compare-and-set), and no host
///   refreshes from written-back tokens for 3 s (and at
///   least the request timeout + 2 s: a refresh in flight when the store lost its mark may still
///   rotate, and its answer is saved over them), so every host that holds newer ones can write them
///   back first. An operator's re-seed has a newer generation and is followed. A pending rotation
///   is never dropped.
/// - **A store that changed instance is suspect.** Redis goes back only through another server
///   instance (a restart from a backup, a failover to a replica that missed writes), so the store
///   records which instance saved the document (`INFO`'s `run_id`, read in the same script as the
///   document) and says when another one answers now
///   ([`StoredTokens::is_from_another_instance`](crate::store::StoredTokens::is_from_another_instance)).
///   A host reading such a document writes it back with the restore grace instead of refreshing
///   from it, so a host that knows nothing newer (one started after the restore) waits too, and
///   a request in flight whose mark the store lost can end first. Cost: after every restart or failover, the next refresh
///   waits the grace (cached access tokens are still served).
///
///   **Rollback detection needs `INFO`.** Where Redis refuses `INFO` to the store's user (an ACL
///   without `+info`), the instance is unknown and this protection is off: the store warns once
///   (a `tracing` warning, again if it turns blind after having seen `INFO`), and with the
///   `metrics` feature the gauge `genlogs_auth_store_rollback_detection{grant}` reads 0 (1 while
///   it works). Allow it with the ACL rule `+info` (for example `ACL SETUSER genlogs … +info`).
///   What still protects the fleet then: no host adopts a document whose refresh token it knows
///   was rotated away (the fingerprints) or one older than what it has seen (the lineage), and
///   the store watch below writes newer tokens back within one watch interval. What no longer
///   does: a host that knows nothing newer (started after the restore) reading the old document
///   within that interval may refresh from it.
/// - **The store is watched.** The [`keep_alive()`](crate::TokenManager::keep_alive) task reads the
///   store every 2 s and writes newer tokens
///   back at once, so a store that went back is repaired while nobody needs a refresh, before a host
///   that knows nothing newer (one started after the restore) reads it. `tests/it/store_redis_rollback.rs`,
///   four hosts: a store restored one and two rotations back got the newest tokens back after
///   1.3–1.4 s, one restarted empty after 3.5 s; 0 reuse; every host served without a restart.
/// - **Secrets stay secret.** Optional encryption at rest
///   ([`with_encryption_key`](Self::with_encryption_key): XChaCha20-Poly1305, bound to the grant's
///   name and the version, so a value copied or replayed fails to decrypt); a wrong key or an
///   altered value is [`StoreError::Unreadable`], never a panic. No error and no `Debug` shows the
///   Redis URL or its password; the key's `Debug` is redacted.
/// - **Bounded, and never stuck on a dead socket.** Every Redis call ends within twice
///   [`with_timeout`](Self::with_timeout). A network path can die without a reset (a lost NAT or
///   conntrack entry, a dropped flow): the socket stays open and silent. So a connection that
///   left a command unanswered (timeout, I/O error, dropped or refused) is never used again: the
///   next call connects anew (for Sentinel asking the sentinels again, for a cluster reconnecting
///   to every node), with no resend of what may have run (`tests/it/store_redis_partition.rs`:
///   through a proxy that silences every socket, the first call after the path heals is
///   answered). With Redis paused (`SIGSTOP`) for 6 s, a
///   caller holding no valid token got its store error after 2.0 s (the default timeout), and the
///   first refresh came 55 ms after Redis answered again: a lease request that got no answer during
///   the pause still runs when Redis resumes, and the store releases it (owner-checked) at once
///   instead of leaving the fleet to wait out a 45 s lease (`tests/it/store_redis_outage.rs`).
/// - **Free while the token is fresh.** The cached-token path never touches the store: with Redis
///   paused, callers keep getting the cached token until it expires.
///
/// A host waiting for another's lease polls it (1 ms, doubling to 10 ms); a release within the same
/// process wakes its waiters at once. That polling is most of the fleet herd's p99 (8.3 ms for
/// 3,000 callers on two cores, against 0.64 ms for one uncontended refresh; `benches/README.md`):
/// the losers find the lease free on their next poll, re-read the store and adopt the new tokens.
///
/// # Redis Cluster
///
/// Both keys of a grant (`{genlogs:NAME}:tokens`, `{genlogs:NAME}:lock`) are in one hash slot, so
/// every call of a grant, Lua scripts included, goes to one node of a Redis Cluster. For a Cluster,
/// name one or more of its nodes; the others are discovered, and MOVED/ASK redirections (resharding,
/// failover) are followed:
///
/// ```no_run
/// # fn run() -> Result<(), genlogs_auth::StoreError> {
/// use genlogs_auth::RedisStore;
///
/// let store = RedisStore::cluster(
///     &["rediss://:password@10.0.0.1:7000/", "rediss://:password@10.0.0.2:7000/"],
///     "user-42",
/// )?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
///
/// The same setters apply ([`with_root_certificate`](Self::with_root_certificate) to every
/// `rediss://` node); a call that must connect first (the first, or the next after a failed
/// connection) also waits up to twice `with_timeout` for the connection and the slot map. Tested
/// against a three-node cluster that `tests/it/store_redis_cluster.rs` creates with `redis-server` and
/// `redis-cli` (package `redis-tools`), including a grant whose slot is owned by a node other than
/// the one named.
///
/// # Redis Sentinel
///
/// With Redis Sentinel, name the sentinels and the service (`sentinel monitor <service> …`); the
/// store asks them for the primary, checks with `ROLE` that it is one, and finds the new primary
/// after a failover (a `READONLY` answer, or a dead or silent connection) without restarting any
/// host. Over plain `redis://`, a primary the sentinels name on a host that is not loopback is
/// refused before any connection to it (as is a cluster node announced there), unless the store
/// was made with [`sentinel_allowing_plaintext`](Self::sentinel_allowing_plaintext)
/// ([`cluster_allowing_plaintext`](Self::cluster_allowing_plaintext)); with `rediss://`, TLS
/// applies to discovered nodes too:
///
/// ```no_run
/// # fn run() -> Result<(), genlogs_auth::StoreError> {
/// use genlogs_auth::RedisStore;
///
/// let store = RedisStore::sentinel(
///     // The sentinels' credentials, if any, go in their URLs.
///     &["redis://10.0.0.1:26379/", "redis://10.0.0.2:26379/", "redis://10.0.0.3:26379/"],
///     "genlogs-redis",
///     "user-42",
/// )?
/// // The data nodes' own (`requirepass`, or an ACL user); none by default.
/// .with_primary_credentials(None, &std::env::var("REDIS_PASSWORD").unwrap_or_default())?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
///
/// The other setters apply as to `new`; `rediss://` sentinels mean TLS to the data nodes too. A
/// command that finds the primary gone fails (its outcome is unknown; the manager re-reads before
/// deciding) and the next one goes to the new primary; a refused write (`READONLY`) and a read are
/// sent again at once. `tests/it/store_redis_sentinel.rs` runs a primary, a replica and three sentinels:
/// after the primary was killed, three hosts were served again and refreshed 2.3–2.9 s later, with
/// no token presented twice.
///
/// What Sentinel does not guarantee: replication is asynchronous, so a failover can lose the last
/// writes, and the store then goes back to an older document while hosts hold newer tokens. After a
/// `SENTINEL FAILOVER`, the old primary keeps accepting writes until Sentinel demotes it (10–11 s in
/// the tests), and those writes are discarded when it resyncs as a replica. Requiring replicas to
/// acknowledge each save ([`with_min_replicas`](Self::with_min_replicas), below) turns such a write
/// into a failed save instead of a lost one; a primary with `min-replicas-to-write 1` refuses them
/// outright. A fleet that prefers no shared store can give each host its own grant (its own
/// `POST /auth/token`) and a [`FileStore`](crate::FileStore).
///
/// # Settings
///
/// | setter | default |
/// |---|---|
/// | [`with_lease`](Self::with_lease) | 45 s (the client's 30 s total timeout + 15 s); the longest a crashed holder blocks the others' refreshes |
/// | [`with_lock_wait`](Self::with_lock_wait) | 35 s, then [`StoreError::Busy`]; cached tokens are served meanwhile |
/// | [`with_timeout`](Self::with_timeout) | 2 s per command and per connection attempt |
/// | [`with_encryption_key`](Self::with_encryption_key) | none: tokens are stored as JSON |
/// | [`with_root_certificate`](Self::with_root_certificate) | the system's root certificates, for `rediss://` (tested against a `redis-server` TLS port signed by a private CA) |
/// | [`with_min_replicas(n, timeout)`](Self::with_min_replicas) | off: a save counts once the primary has it (see "High availability" below) |
/// | [`with_replica_fsync`](Self::with_replica_fsync) | off: with `with_min_replicas`, also wait for the replicas' AOF fsync (`WAITAOF`, Redis ≥ 7.2) |
///
/// Plain `redis://` is accepted only to a loopback host (`localhost`, `127.0.0.0/8`, `::1`): to any
/// other host the Redis password and the tokens would cross the network in clear, so `new` and
/// `cluster` refuse it. Use `rediss://`, or opt in where the store is made with
/// [`RedisStore::new_allowing_plaintext`] / [`cluster_allowing_plaintext`](Self::cluster_allowing_plaintext)
/// (the command line: `GENLOGS_STORE_ALLOW_PLAINTEXT=1`). `unix://` sockets are accepted; a
/// `?pass=` in their URL is never shown.
///
/// # When something fails
///
/// | when this fails | the fleet |
/// |---|---|
/// | Redis is down or paused | serves cached access tokens while they are valid; after that callers get `TokenError::Store` ("the token store is unreachable") within the bounded wait; no refresh is sent without the lease; it reconnects by itself |
/// | the network path to Redis dies silently, for every host | as when Redis is down; every call ends within the bounded wait and the next one uses a new connection, so store calls succeed again as soon as the path heals. A holder whose refresh answer arrived during the cut keeps the rotated tokens and the lease state in memory and saves them first (tested, 4 host processes and a 5th started right after the heal, all paths cut for 13 s, past the 8 s lease, while the holder's answer arrived: 0 reuse, the holder's save 0.58 s after the heal, every host served 0.60 s after it; on Sentinel 0.59 s and 0.91 s, on a cluster 0.58 s and 0.66 s) |
/// | the network path dies silently for one host (the lease holder) | for less than its lease: the others wait for the lease and the in-flight wait, the holder saves as soon as its path heals (tested, cut 5 s with an 8 s lease: 0 reuse, saved 0.55 s after the heal, every host served 0.57 s after it, with and without `keep_alive()` on the hosts). For longer than its lease plus the in-flight wait: the others cannot tell it from a crashed host, so they send its marked token again once its lease and their in-flight wait are over (tested: 17.1 s after its send, with the 8 s lease and a 5 s request timeout); if GenLogs had answered the holder, that is a reuse and GenLogs revokes the grant. The lease is the longest cut-off of one host that the fleet can wait out: set it longer where such cuts are expected (it is also the longest a crashed holder blocks the others) |
/// | Redis restarts empty or is flushed | the watching hosts (and any host that needs a refresh) write back the newest tokens they hold (compare-and-set; the highest write sequence wins); nobody refreshes from them for `RESTORE_GRACE` (at least the request timeout + 2 s: 32 s with the default client; cached access tokens are served meanwhile); only a fleet where no host holds tokens reports `NewTokensRequired` (store empty) |
/// | the store goes back (a failover lost writes, a snapshot or backup restored) | hosts that know its token was rotated away, or that have seen a newer document, never adopt it and write their newer tokens back within a watch interval; the new server instance holds every refresh for the restore grace, so a host that knows nothing newer (started after the restore) does not send the restored token (measured: 0 of 3 trials refreshing at once after a restart from a backup; fields put back by hand into the running server give no such sign: 3 of 3 at once, 0 of 3 after the watch interval); `with_min_replicas` keeps the store from going back in the first place |
/// | an operator re-seeds the store (`init --force`) | a newer operator generation: every host follows it, whatever it held |
/// | a host crashes holding the lease | the others wait for the lease to run out and take over, serving cached tokens meanwhile; if its refresh never reached GenLogs, nothing is lost (tested by SIGKILLing a holder whose request is held at the server); if GenLogs rotated the token and the answer was lost, no client can recover it: the next 401 is shared and the fleet asks for new tokens |
/// | a host is paused past its lease (GC, `SIGSTOP`) | on resume it sends nothing, also when paused between its possibly-rotated mark and the send (the lease is checked again after the mark; tested); a late save is refused (`LeaseLost` or `Conflict`) and it adopts the newer tokens |
/// | a rotation's save keeps failing (a replica missing with `with_min_replicas`) | the host keeps the rotated tokens and the lease, extending it and retrying the save every second in the background; no other host can take the lease and send the rotated-away token (tested: a 3 s lease held through 7 s of failed saves, saved 51 ms after the replica returned) |
/// | GenLogs fails (5xx, 429, timeouts) | as for one host: the lease holder retries after the cooldown, every host serves cached tokens while valid, and a 401 or unknown outcome is recorded in Redis for all |
/// | a replica is down or lagging, with `with_min_replicas` | saves fail with `StoreError::NotDurable` after the wait: no refresh is sent (its possibly-rotated mark was not acknowledged), rotated tokens stay in memory with the lease and are saved again; cached tokens are served; hosts waiting for that lease learn at once that no save can be durable (`NotDurable`, from the primary's `ROLE`) instead of waiting the whole lock wait for `Busy`; it carries on once the replica acknowledges |
///
/// # High availability: durable before used
///
/// Redis replicates asynchronously: a primary that fails right after a save can be replaced by a
/// replica that never got it. For this crate that is the worst case: the fleet goes back to a
/// refresh token GenLogs already rotated away, sends it, and an RFC 9700 server revokes the grant.
/// A setup that narrows the window:
///
/// ```text
/// # primary (and every replica, which may be promoted)
/// min-replicas-to-write 1     # refuse writes while fewer than 1 replica is connected ...
/// min-replicas-max-lag 10     # ... and has acknowledged within the last 10 s
/// appendonly yes              # persist every write to the AOF ...
/// appendfsync always          # ... fsynced before the reply (everysec: up to 1 s can be lost)
/// ```
///
/// ```no_run
/// # fn run() -> Result<(), genlogs_auth::StoreError> {
/// use std::time::Duration;
/// use genlogs_auth::RedisStore;
///
/// let store = RedisStore::new("rediss://:password@redis-primary:6380/", "user-42")?
///     // Every save (the mark before a refresh is sent, the rotated tokens after it) counts
///     // only once 1 replica has acknowledged it, waiting up to 500 ms.
///     .with_min_replicas(1, Duration::from_millis(500));
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
///
/// What each gives, and what it does not:
///
/// - **[`with_min_replicas(n, timeout)`](Self::with_min_replicas)** sends `WAIT n timeout` after
///   every save, in one pipeline with the save script, so on the same connection (`WAIT` covers only
///   that connection's earlier writes). Fewer than `n` acknowledgements is
///   [`StoreError::NotDurable`]: the document is on the primary, but the save failed, so the manager
///   sends no refresh and keeps rotated tokens in memory (with the lease) until a later save is
///   acknowledged. A save takes one more round trip to the replica (measured on loopback: 0.34 ms
///   against 0.27 ms for lock, read, save and release).
/// - **[`with_replica_fsync`](Self::with_replica_fsync)** adds `WAITAOF 0 n timeout` (Redis ≥ 7.2):
///   the `n` replicas have also fsynced it to their AOF, so it survives their restart too; replicas
///   without `appendonly yes` never count. An older Redis answers that it does not know `WAITAOF`;
///   that is logged once and its saves rely on `WAIT` alone.
/// - **`min-replicas-to-write`/`min-replicas-max-lag`** make the primary refuse the write itself
///   (`NOREPLICAS`, a failed save) while its replicas are missing or lagging: nothing is written that
///   no replica could have.
/// - **`appendonly yes` + `appendfsync always`** make a restarted server come back with every
///   acknowledged write; `everysec` may lose the last second, `no` leaves it to the OS.
/// - **None of this makes Redis strongly consistent.** `WAIT` says the replicas received the write,
///   not that the one Sentinel (or the cluster) promotes is one of them: promotion of the most
///   up-to-date replica is best effort, and a failover can still lose an acknowledged write in rare
///   cases (a partition, several failures at once, a replica restarted without AOF). The fleet's
///   last defence is the manager itself: hosts that still hold the newer tokens recognise the older
///   document (fingerprints, write sequence) and write them back.
///
/// A seeded simulation (`src/manager/simulation.rs`: 2–5 hosts running the manager's real decision
/// core over a store with the same compare-and-set and lease rules, against a GenLogs model that
/// revokes the grant on reuse, with crashes, pauses, lost answers, skewed clocks, and a store that
/// pauses, loses its last writes, goes back to any earlier version or comes back empty) runs 20,000
/// histories with every fault and 20,000 without the store going back in CI: every reuse is one the
/// model proves unavoidable (the only copy of the valid token was lost). Before the instance check,
/// 1.5 % of the histories with every fault still reused (a host that knew nothing newer refreshing
/// before the write-back).
///
/// # What each setup guarantees, and what loses the grant
///
/// | setup | guarantees | what still loses the grant |
/// |---|---|---|
/// | one `redis-server` | one refresh per expiry; leases and compare-and-set; a restart or restore is repaired by the hosts' write-back, and nobody refreshes during the restore grace after it | a restart or restore while no running host holds newer tokens; old fields written back by hand into the running server (no instance change) read by a new host within the watch interval; a host crashing after GenLogs rotated but before the save (no client can recover a lost answer) |
/// | primary + replicas, `with_min_replicas` (+ `min-replicas-to-write`, AOF) | no token is sent, and no rotation is used, before `n` replicas acknowledged it: a failover to one of them loses nothing acknowledged | a promotion of a replica that missed the write (best effort in Sentinel; rare); all acknowledging replicas lost at once |
/// | Sentinel (`RedisStore::sentinel`) | the new primary is found after a failover without a restart (`tests/it/store_redis_sentinel.rs`, 4 host processes: after `SENTINEL FAILOVER` the next refresh 3.0 s later; after the primary was killed right after a rotation, 9.3 s later, of which 1 s is Sentinel's detection and 7 s the restore grace of the new instance; 0 reuse); with `with_min_replicas`, as above | without `with_min_replicas`: writes to the old primary in the seconds before Sentinel demotes it, or not yet replicated, are lost; the hosts' write-back repairs this while they run |
/// | Redis Cluster (`RedisStore::cluster`) | both keys in one slot; MOVED/ASK followed; `with_min_replicas` waits on the slot owner's replicas | as for replicas: a failover of the slot owner to a replica that missed the write |
pub struct RedisStore {
    name: String,
    tokens_key: String,
    lock_key: String,
    endpoint: Endpoint,
    target: Target,
    /// The connection of every command, remade after one went unanswered.
    link: Arc<Link>,
    /// The connection of durable saves: its response timeout also covers `WAIT` (and `WAITAOF`).
    durable_link: Arc<Link>,
    durability: Option<Durability>,
    /// Set by `with_replica_fsync`, whichever order the setters come in.
    replica_fsync: bool,
    aof: AofSupport,
    encryption: Option<EncryptionKey>,
    lease: Duration,
    lock_wait: Duration,
    timeout: Duration,
    /// What lock waits and the orphan sweep's end are measured and slept on.
    clock: Arc<dyn Clock>,
    /// Redis refused `INFO` at the last read: a rollback cannot be detected (warned once).
    blind: std::sync::atomic::AtomicBool,
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
        Self::open_cluster(node_urls, endpoint, name, false)
    }

    /// Like [`cluster`](Self::cluster), also accepting plain `redis://` nodes that are not
    /// loopback (see [`new_allowing_plaintext`](Self::new_allowing_plaintext)).
    pub fn cluster_allowing_plaintext(node_urls: &[&str], name: &str) -> Result<Self, StoreError> {
        Self::open_cluster(node_urls, Endpoint::parse_cluster(node_urls)?, name, true)
    }

    fn open_cluster(
        node_urls: &[&str],
        endpoint: Endpoint,
        name: &str,
        allow_plaintext: bool,
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
            allow_plaintext,
        };
        Ok(Self::with_target(name, endpoint, target))
    }

    fn with_target(name: &str, endpoint: Endpoint, target: Target) -> Self {
        Self {
            name: name.to_string(),
            tokens_key: format!("{{genlogs:{name}}}:tokens"),
            lock_key: format!("{{genlogs:{name}}}:lock"),
            endpoint,
            link: Link::new(target.clone(), DEFAULT_REDIS_TIMEOUT),
            durable_link: Link::new(target.clone(), DEFAULT_REDIS_TIMEOUT),
            target,
            durability: None,
            replica_fsync: false,
            aof: AofSupport::default(),
            encryption: None,
            lease: DEFAULT_LEASE,
            lock_wait: crate::store::DEFAULT_LOCK_WAIT,
            timeout: DEFAULT_REDIS_TIMEOUT,
            clock: Arc::new(SystemClock::new()),
            blind: std::sync::atomic::AtomicBool::new(false),
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
            Target::Cluster {
                nodes,
                tls,
                allow_plaintext,
                ..
            } => Target::Cluster {
                nodes,
                tls,
                certificates: Some(certificates),
                allow_plaintext,
            },
            Target::Sentinel(mut config) => {
                config.set_certificates(certificates);
                Target::Sentinel(config)
            }
        };
        self.relink();
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

    /// How long a lease lasts unless extended. Default: 45 s. Keep it longer than
    /// the client's total timeout plus a margin: the manager sends no refresh unless that much
    /// of the lease is left. At least 1 ms; at most what Redis takes (2^53 − 1 ms).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        // Clamped once here, so that every deadline computed from it is representable.
        self.lease = Duration::from_millis(lease_ms(lease));
        self
    }

    crate::store::lock_wait_setters!(
        /// Redis's own timeouts ([`with_timeout`](Self::with_timeout)) and the lease in Redis
        /// are real time: they bound real I/O.
    );

    /// How long one Redis command and one connection attempt may take. Default:
    /// 2 s.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        // The connection carries the timeouts it was made with.
        self.relink();
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
    /// window in which a failover loses a save: see
    /// [High availability](RedisStore#high-availability-durable-before-used).
    /// `replicas == 0` turns it off; `timeout` is at most 60 s. Default: off (a
    /// save counts once the primary has it).
    #[must_use]
    pub fn with_min_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.durability = (replicas > 0).then_some(Durability {
            replicas,
            // A wait Redis refuses would fail every save after its write.
            timeout: timeout.min(MAX_REPLICA_WAIT),
            fsync: self.replica_fsync,
        });
        self.relink();
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
        self.relink();
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

    /// Remakes both links for settings just changed (the connections carry the timeouts,
    /// credentials and certificates they were made with).
    fn relink(&mut self) {
        self.link = Link::new(self.target.clone(), self.timeout);
        let durable_timeout = match &self.durability {
            Some(durability) => self.timeout.saturating_add(durability.total_wait()),
            None => self.timeout,
        };
        self.durable_link = Link::new(self.target.clone(), durable_timeout);
    }

    /// The shared connection, made on first use inside the call's bound (a cluster's first
    /// connection reads its slots, Sentinel's asks the sentinels). One connection attempt per
    /// call, no retry loop inside a call (which would stretch the wait); a call that went
    /// unanswered makes the next one connect anew (see `connection.rs`).
    fn connection(&self) -> Connection {
        self.link.connection()
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
        // Its response timeout is the command timeout plus the waits, so a `WAIT` that blocks
        // for its whole timeout is answered, not cut off.
        let mut connection = self.durable_link.connection();
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
        if went_unanswered(&error) && error.kind() != redis::ErrorKind::AuthenticationFailed {
            StoreError::Unreachable(Box::new(RedisFailure(format!(
                "Redis at {:?}: {message}",
                self.endpoint
            ))))
        } else {
            StoreError::Other(format!("Redis at {:?}: {message}", self.endpoint))
        }
    }

    /// Another host holds the lease. When saves must reach replicas and the primary has fewer
    /// connected than required, no save of this store can count (the holder is keeping an
    /// unsaved rotation, retrying): waiting the whole lock wait to hear `Busy` would hide that,
    /// so [`StoreError::NotDurable`] at once. Asked with `ROLE` on the primary; a refused or
    /// unreadable answer (an ACL, a cluster, whose `ROLE` would go to any node) says nothing,
    /// and the wait goes on.
    async fn refuse_waiting_without_replicas(&self) -> Result<(), StoreError> {
        let Some(durability) = &self.durability else {
            return Ok(());
        };
        if self.target.is_cluster() {
            return Ok(());
        }
        let mut connection = self.connection();
        let role: Result<redis::Value, StoreError> = self
            .bounded(redis::cmd("ROLE").query_async(&mut connection))
            .await;
        match role.ok().as_ref().and_then(connected_replicas) {
            Some(connected) if connected < durability.replicas => Err(StoreError::NotDurable {
                acknowledged: connected,
                required: durability.replicas,
            }),
            _ => Ok(()),
        }
    }

    /// Records whether Redis named its instance (`INFO` allowed): a gauge at every read, and a
    /// warning when the store turns blind to rollbacks.
    fn note_instance_known(&self, known: bool) {
        crate::metrics::rollback_detection(&self.name, known);
        let was_blind = self
            .blind
            .swap(!known, std::sync::atomic::Ordering::Relaxed);
        if !known && !was_blind {
            tracing::warn!(
                grant = %self.name,
                "Redis refuses INFO (an ACL without +info?): this token store cannot tell that \
                 Redis was restarted, failed over or restored from a backup, so a store that went \
                 back is caught only by the hosts' store watch (keep_alive); allow INFO for the \
                 store's Redis user (ACL rule +info)"
            );
        }
    }

    fn unreadable(&self, version: u64, reason: UnreadableReason) -> StoreError {
        StoreError::Unreadable {
            store: format!("Redis key {}", self.tokens_key),
            reason,
            version,
        }
    }

    /// Checks that `lock` is a lease on this store's grant.
    fn own<'a>(&self, lock: &'a RedisLock) -> Result<&'a RedisLock, StoreError> {
        if lock.lock_key == self.lock_key {
            Ok(lock)
        } else {
            Err(crate::store::foreign_lock())
        }
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

impl TokenStore for RedisStore {
    type Lock = RedisLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        let mut connection = self.connection();
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
        let not_a_document = |version, problem: &str| {
            self.unreadable(
                version,
                UnreadableReason::NotATokenDocument {
                    problem: problem.into(),
                },
            )
        };
        // The save script counts a missing version as 0.
        let parsed: u64 = match &version {
            None => 0,
            Some(text) => text
                .parse()
                .map_err(|_| not_a_document(0, "its version is not a number"))?,
        };
        let Some(document) = document else {
            // A version without a document (written by hand, or half deleted) is not an empty
            // store: a save must name that version to replace it.
            return match version {
                None => Ok(None),
                Some(_) => Err(not_a_document(parsed, "it has a version and no document")),
            };
        };
        let version = parsed;
        let json = sealing::open(self.encryption.as_ref(), &self.name, version, &document)
            .map_err(|reason| self.unreadable(version, reason))?;
        let mut tokens =
            decode_document(&json).map_err(|problem| not_a_document(version, &problem))?;
        self.note_instance_known(!instance.is_empty());
        // Saved by another server instance (restarted, failed over, restored): it may have lost
        // later writes. Unknown on either side (an older document, `INFO` refused): not flagged.
        tokens.instance_changed = matches!(
            saved_on.as_deref(),
            Some(saved_on) if !saved_on.is_empty() && !instance.is_empty() && saved_on != instance
        );
        // The hash's version is the one the save script compares; the copy inside the document
        // is informative only.
        Ok(Some(StoredTokens { version, ..tokens }))
    }

    async fn lock(&self) -> Result<RedisLock, StoreError> {
        let mut connection = self.connection();
        let owner = lease::new_owner()
            .map_err(|_| StoreError::Other("no randomness for a lease owner id".into()))?;
        let lease_ms = lease_ms(self.lease);
        let waiting_since = self.clock.monotonic();
        let mut poll = Duration::from_millis(1);
        let mut asked_replicas = false;
        loop {
            // Registered before trying, so a release in this process that lands between the
            // failed attempt and the wait still wakes it.
            let released = lease::RELEASED.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // Measured before the request leaves, so the sweep's end never comes before the
            // orphan's lease ends.
            let sent_at = self.clock.monotonic();
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
                    // Unanswered after it may have left (not a refused connection).
                    let in_doubt = answer
                        .as_ref()
                        .is_err_and(|e| went_unanswered(e) && !e.is_connection_refusal());
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
                            self.clock.clone(),
                            sent_at.saturating_add(self.lease),
                            self.timeout,
                        );
                    }
                    return Err(error);
                }
            };
            if taken.is_some() {
                return Ok(RedisLock::new(
                    self.tokens_key.clone(),
                    self.lock_key.clone(),
                    owner,
                    connection,
                    self.lease,
                ));
            }
            if !asked_replicas {
                asked_replicas = true;
                self.refuse_waiting_without_replicas().await?;
            }
            let waited = self.clock.monotonic().saturating_sub(waiting_since);
            if waited >= self.lock_wait {
                return Err(StoreError::Busy { waited });
            }
            // Another process's release is seen by polling; this process's wakes it at once.
            tokio::select! {
                () = self.clock.sleep(poll.min(self.lock_wait - waited)) => {}
                () = released => {}
            }
            poll = (poll * 2).min(LOCK_POLL_MAX);
        }
    }

    async fn save(&self, tokens: &StoredTokens, lock: &RedisLock) -> Result<u64, StoreError> {
        let guard = self.own(lock)?;
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
                let mut connection = self.connection();
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

    async fn extend(&self, lock: &mut RedisLock, by: Duration) -> Result<(), StoreError> {
        let guard = self.own(lock)?;
        let by_ms = lease_ms(by);
        let mut connection = self.connection();
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
        lock.lease = Duration::from_millis(left);
        Ok(())
    }

    async fn release(&self, lock: RedisLock) {
        lock.release().await;
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    /// Twice [`with_timeout`](Self::with_timeout) (a connection attempt and a command), plus
    /// the replicas' waits with [`with_min_replicas`](Self::with_min_replicas).
    fn call_bound(&self) -> Duration {
        let waits = self
            .durability
            .as_ref()
            .map_or(Duration::ZERO, Durability::total_wait);
        self.timeout.saturating_mul(2).saturating_add(waits)
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
                >= crate::config::DEFAULT_TIMEOUT
                    + Duration::from_secs(2)
                    + DEFAULT_LEASE_MARGIN / 2
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
    fn a_call_is_bounded_by_twice_the_timeout_plus_the_replica_waits() {
        let store = RedisStore::new("redis://127.0.0.1:6379/", "grant")
            .unwrap()
            .with_timeout(Duration::from_secs(3));
        assert_eq!(store.call_bound(), Duration::from_secs(6));
        let durable = store.with_min_replicas(1, Duration::from_secs(2));
        assert_eq!(durable.call_bound(), Duration::from_secs(8));
        assert_eq!(
            durable.with_replica_fsync().call_bound(),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn leases_sent_to_redis_are_between_1_ms_and_2_to_the_53() {
        assert_eq!(lease_ms(Duration::ZERO), 1);
        assert_eq!(lease_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(lease_ms(Duration::MAX), MAX_LEASE_MS);
    }
}

//! A [`RedisStore`] on the primary that Redis Sentinel names: [`RedisStore::sentinel`], and the
//! connection that finds the primary again after a failover.
//!
//! Discovery is the `redis` crate's (`SentinelClient`, `Sentinel::async_master_for`): it asks up
//! to three sentinels at once for the service's primary (`SENTINEL MASTERS`), skips one they
//! flag as down, and confirms with `ROLE` on the node itself that it is a primary before the
//! connection is handed out. The crate does not follow a failover on an open connection
//! (redis-rs #1438), so this module does: an answer `READONLY` (the node was demoted), a
//! dropped, refused or silent connection (a dead or paused primary) forgets the connection, and
//! the next command discovers the primary again. A write refused with `READONLY` did nothing,
//! so it is sent once more to the new primary at once; any other failure is returned (its
//! outcome is unknown) and the caller's next call goes to the new primary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisConnectionInfo, RedisError, RedisResult, TlsCertificates, TlsMode, Value,
};

/// The constructor that allows a primary reached in clear.
const OPT_IN: &str = "sentinel_allowing_plaintext";

use super::connection::Target;
use super::discovery;
use super::endpoint::Endpoint;
use super::{check_name, RedisStore};
use crate::store::StoreError;

impl RedisStore {
    /// A store for the grant `name` on the primary that the Redis Sentinels at `sentinel_urls`
    /// name for the service `service_name` (the `<master-name>` of `sentinel monitor`).
    ///
    /// Give several sentinels (`redis://[[user]:password@]host:port`, or `rediss://…` for TLS;
    /// all with the same scheme and credentials): any one that answers is enough. The primary
    /// is confirmed with `ROLE` before the store uses it, and found again, with no restart,
    /// after a failover: when it answers `READONLY` (a write refused that way is sent again to
    /// the new primary at once), or when a command finds it dead or silent (that call fails;
    /// the next one goes to the new primary).
    ///
    /// Credentials: those in the URLs are the sentinels'. The data nodes (primary and replicas)
    /// are reached with none, unless given by
    /// [`with_primary_credentials`](Self::with_primary_credentials); with the sentinels'
    /// scheme (TLS to the sentinels means TLS to the data nodes); on the database of the URLs'
    /// path (default 0). [`with_root_certificate`](Self::with_root_certificate) applies to both.
    /// The other setters apply as to [`new`](Self::new); a call that has to find the primary
    /// first is bounded like any other (twice [`with_timeout`](Self::with_timeout)). Errors
    /// never show the URLs or a password.
    ///
    /// Replication is asynchronous: a failover may lose the last writes (see
    /// [`RedisStore`]'s "Redis Sentinel" and "High availability").
    ///
    /// As with [`new`](Self::new), plain `redis://` sentinels must be loopback ones (the data
    /// nodes are reached with the sentinels' scheme); see
    /// [`sentinel_allowing_plaintext`](Self::sentinel_allowing_plaintext).
    pub fn sentinel(
        sentinel_urls: &[&str],
        service_name: &str,
        name: &str,
    ) -> Result<Self, StoreError> {
        Self::open_sentinel(sentinel_urls, service_name, name, false)
    }

    /// Like [`sentinel`](Self::sentinel), also accepting plain `redis://` to sentinels (and so
    /// data nodes) that are not loopback: passwords and tokens then cross the network in clear.
    pub fn sentinel_allowing_plaintext(
        sentinel_urls: &[&str],
        service_name: &str,
        name: &str,
    ) -> Result<Self, StoreError> {
        Self::open_sentinel(sentinel_urls, service_name, name, true)
    }

    fn open_sentinel(
        sentinel_urls: &[&str],
        service_name: &str,
        name: &str,
        allow_plaintext: bool,
    ) -> Result<Self, StoreError> {
        let endpoint = Endpoint::parse_cluster(sentinel_urls).map_err(|_| {
            StoreError::Other(
                "invalid Redis Sentinel URLs: expected one or more redis:// or rediss:// URLs, \
                 all of the same scheme (the URLs are not shown because they may carry a \
                 password)"
                    .into(),
            )
        })?;
        if !allow_plaintext {
            endpoint.refuse_plaintext_remote("sentinel_allowing_plaintext")?;
        }
        check_name(name)?;
        if service_name.is_empty() || service_name.chars().any(char::is_whitespace) {
            return Err(StoreError::Other(
                "a Redis Sentinel service name must be one word".into(),
            ));
        }
        let mut config = SentinelConfig::parse(sentinel_urls, service_name).map_err(|problem| {
            StoreError::Other(format!("invalid Redis Sentinel URLs: {problem}"))
        })?;
        config.allow_plaintext = allow_plaintext;
        // Checks the whole configuration now, as `new` does; nothing is sent until first use.
        config.client().map_err(|e| {
            StoreError::Other(format!(
                "invalid Redis Sentinel settings: {}",
                endpoint.scrub(&e.to_string())
            ))
        })?;
        Ok(Self::with_target(name, endpoint, Target::Sentinel(config)))
    }

    /// The credentials for the data nodes (primary and replicas) of a store made by
    /// [`sentinel`](Self::sentinel) (Redis 6 ACL user, or `None` for `requirepass`); the
    /// sentinels' own are in their URLs. Default: none. Refused for any other store.
    pub fn with_primary_credentials(
        mut self,
        username: Option<&str>,
        password: &str,
    ) -> Result<Self, StoreError> {
        let Target::Sentinel(config) = &mut self.target else {
            return Err(StoreError::Other(
                "primary credentials apply to a store made by RedisStore::sentinel only; \
                 give a server's password in its URL"
                    .into(),
            ));
        };
        config.primary = Credentials {
            username: username.map(str::to_string),
            password: Some(password.to_string()),
        };
        self.endpoint.also_scrub(password);
        if let Some(username) = username {
            self.endpoint.also_scrub(username);
        }
        // Both connections carry the credentials they were made with.
        self.relink();
        Ok(self)
    }
}

/// A user name and password, either of them optional.
#[derive(Clone, Default, PartialEq)]
struct Credentials {
    username: Option<String>,
    password: Option<String>,
}

/// What a [`SentinelClient`] is built from (kept, so that a setter can change it).
#[derive(Clone)]
pub(super) struct SentinelConfig {
    sentinels: Vec<ConnectionAddr>,
    service: String,
    /// The sentinels' credentials, from their URLs.
    sentinel: Credentials,
    /// The data nodes' credentials.
    primary: Credentials,
    db: i64,
    tls: bool,
    certificates: Option<TlsCertificates>,
    /// Made by `sentinel_allowing_plaintext`: the primary's address is not checked.
    allow_plaintext: bool,
}

impl SentinelConfig {
    /// The sentinels' addresses and credentials; a problem is described without the URLs.
    fn parse(urls: &[&str], service: &str) -> Result<Self, &'static str> {
        let mut sentinels = Vec::with_capacity(urls.len());
        let mut credentials = None;
        let mut db = None;
        let mut tls = false;
        for url in urls {
            let info = url
                .into_connection_info()
                .map_err(|_| "a URL could not be read")?;
            let settings = info.redis_settings();
            let these = Credentials {
                username: settings.username().map(str::to_string),
                password: settings.password().map(str::to_string),
            };
            if credentials.get_or_insert_with(|| these.clone()) != &these {
                return Err("all sentinels need the same credentials");
            }
            if *db.get_or_insert(settings.db()) != settings.db() {
                return Err("all URLs need the same database");
            }
            tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
            sentinels.push(info.addr().clone());
        }
        Ok(Self {
            sentinels,
            service: service.to_string(),
            sentinel: credentials.unwrap_or_default(),
            primary: Credentials::default(),
            db: db.unwrap_or(0),
            tls,
            certificates: None,
            allow_plaintext: false,
        })
    }

    /// Trusts `certificates` instead of the system's roots, on the sentinels and data nodes.
    pub(super) fn set_certificates(&mut self, certificates: TlsCertificates) {
        self.certificates = Some(certificates);
    }

    /// The service whose primary is used.
    pub(super) fn service(&self) -> &str {
        &self.service
    }

    fn client(&self) -> RedisResult<SentinelClient> {
        let mut builder = SentinelClientBuilder::new(
            self.sentinels.clone(),
            &self.service,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(self.db);
        if let Some(username) = &self.sentinel.username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &self.sentinel.password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(username) = &self.primary.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.primary.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if self.tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certificates) = &self.certificates {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates.clone());
            }
        }
        builder.build()
    }

    /// Clients of the sentinels themselves, for the check of the primary's address; `None`
    /// when no check is due (TLS, which applies to the data nodes too, or plaintext allowed).
    fn sentinels_to_ask(&self) -> RedisResult<Option<Vec<redis::Client>>> {
        if self.tls || self.allow_plaintext {
            return Ok(None);
        }
        let mut settings = RedisConnectionInfo::default();
        if let Some(username) = &self.sentinel.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.sentinel.password {
            settings = settings.set_password(password);
        }
        self.sentinels
            .iter()
            .map(|addr| {
                let info = addr
                    .clone()
                    .into_connection_info()?
                    .set_redis_settings(settings.clone());
                redis::Client::open(info)
            })
            .collect::<RedisResult<_>>()
            .map(Some)
    }

    /// A connection to the service's primary, found on first use, with these bounds.
    pub(super) fn connect(&self, timeout: Duration) -> RedisResult<Arc<SentinelLink>> {
        Ok(Arc::new(SentinelLink {
            sentinels_to_ask: self.sentinels_to_ask()?,
            service: self.service.clone(),
            client: tokio::sync::Mutex::new(self.client()?),
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            timeout,
        }))
    }
}

/// The connection to the current primary, shared by every clone of the store's connection
/// (leases hold one, so a release after a failover goes to the new primary).
pub(super) struct SentinelLink {
    /// The sentinels to ask for the primary's address before any connection to it, when that
    /// address must be checked (see `discovery.rs`).
    sentinels_to_ask: Option<Vec<redis::Client>>,
    service: String,
    /// Asks the sentinels; behind an async lock, so that one discovery runs at a time and the
    /// callers that need one wait for it.
    client: tokio::sync::Mutex<SentinelClient>,
    /// The primary's connection and its generation (which discovery made it).
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    generations: AtomicU64,
    /// One discovery, one connection attempt, one command: each bounded by this.
    timeout: Duration,
}

impl SentinelLink {
    /// The current primary's connection, discovering it first if there is none.
    async fn primary(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let mut client = self.client.lock().await;
        // Found by the discovery this call waited for.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let discovery = async {
            if let Some(sentinels) = &self.sentinels_to_ask {
                self.check_primary(sentinels).await?;
            }
            let primary = client.async_get_client().await?;
            if self.sentinels_to_ask.is_some() {
                // A failover between the check and the crate's discovery.
                if let ConnectionAddr::Tcp(host, port) = primary.get_connection_info().addr() {
                    discovery::check("the primary", host, *port, OPT_IN)?;
                }
            }
            primary
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        let connection = tokio::time::timeout(self.timeout, discovery)
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no primary found through Redis Sentinel in time",
                ))
            })??;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, connection.clone()));
        Ok((generation, connection))
    }

    /// Asks the sentinels, all at once (one silent sentinel must not stall discovery), which
    /// primary they name; the first answer is checked, and a primary that is not loopback is
    /// refused before anything connects to it.
    async fn check_primary(&self, sentinels: &[redis::Client]) -> RedisResult<()> {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let mut asked: FuturesUnordered<_> = sentinels
            .iter()
            .map(|sentinel| discovery::sentinel_primary(sentinel, &self.service, self.timeout))
            .collect();
        let mut last = None;
        while let Some(answer) = asked.next().await {
            match answer {
                Ok(Some((host, port))) => {
                    return discovery::check("the primary", &host, port, OPT_IN)
                }
                // This sentinel does not know the service; another may.
                Ok(None) => {}
                Err(error) => last = Some(error),
            }
        }
        match last {
            Some(error) => Err(error),
            // None knows it: the crate's discovery says so.
            None => Ok(()),
        }
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the connection of `generation` (not a newer one another call found meanwhile).
    fn forget(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    /// Runs one exchange on the primary; after `READONLY` (nothing was written), or a lost
    /// connection when `read_only` (nothing could be written), once more on the new primary.
    async fn exchange<T, F>(
        &self,
        read_only: bool,
        run: impl Fn(MultiplexedConnection) -> F,
    ) -> RedisResult<T>
    where
        F: std::future::Future<Output = RedisResult<T>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (generation, connection) = self.primary().await?;
            match run(connection).await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let lost = lost_the_primary(&error);
                    if is_readonly(&error) || lost {
                        self.forget(generation);
                    }
                    // A write that may have run is not sent twice: its outcome is the caller's
                    // to find out (the store re-reads before deciding).
                    if attempts < 2 && (is_readonly(&error) || (lost && read_only)) {
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    pub(super) fn req_packed_command<'a>(&'a self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(
            self.exchange(is_read(cmd), move |mut connection| async move {
                refused_as_error(connection.req_packed_command(cmd).await?)
            }),
        )
    }

    pub(super) fn req_packed_commands<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(self.exchange(false, move |mut connection| async move {
            let values = connection
                .req_packed_commands(pipeline, offset, count)
                .await?;
            values.into_iter().map(refused_as_error).collect()
        }))
    }
}

/// Is `cmd` one of the reads the store sends (which may be sent twice)?
fn is_read(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    match (args.next(), args.next()) {
        (Some(redis::Arg::Simple(name)), _)
            if [&b"HMGET"[..], b"HGET", b"GET", b"PTTL"]
                .iter()
                .any(|read| name.eq_ignore_ascii_case(read)) =>
        {
            true
        }
        // The store's read script.
        (Some(redis::Arg::Simple(name)), Some(redis::Arg::Simple(sha)))
            if name.eq_ignore_ascii_case(b"EVALSHA") =>
        {
            sha == super::scripts::LOAD.get_hash().as_bytes()
        }
        _ => false,
    }
}

/// A multiplexed connection hands an error reply back as a value: a `READONLY` one (the node was
/// demoted, nothing was written) is made the error it is, so that the primary is found again.
fn refused_as_error(value: Value) -> RedisResult<Value> {
    match value {
        Value::ServerError(error) if error.kind() == Some(redis::ServerErrorKind::ReadOnly) => {
            Err(error.into())
        }
        value => Ok(value),
    }
}

/// The node was demoted to a replica: a write is refused (and did nothing).
fn is_readonly(error: &RedisError) -> bool {
    error.code() == Some("READONLY") || error.to_string().contains("READONLY")
}

/// The primary may be gone (dead, paused, unreachable): ask the sentinels again.
fn lost_the_primary(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(error.kind(), ErrorKind::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readonly_reply_is_an_error_that_finds_the_primary_again() {
        let reply = |text: &str| match redis::parse_redis_value(text.as_bytes()).unwrap() {
            value @ Value::ServerError(_) => value,
            other => panic!("{other:?}"),
        };
        let refused = refused_as_error(reply(
            "-READONLY You can't write against a read only replica.\r\n",
        ));
        assert!(refused.as_ref().is_err_and(is_readonly), "{refused:?}");
        // Any other error reply stays a value, for the caller to read.
        assert!(refused_as_error(reply("-ERR something else\r\n")).is_ok());
        assert!(refused_as_error(Value::Okay).is_ok());
    }

    #[test]
    fn sentinel_urls_must_agree_and_are_never_shown() {
        // Plain redis:// to hosts that are not loopback: refused unless opted in.
        let refused = RedisStore::sentinel(&["redis://:s-pw-1@sen-a:26379/"], "svc", "grant");
        assert!(
            matches!(&refused, Err(e) if !e.to_string().contains("s-pw-1")),
            "{refused:?}"
        );
        let ok = RedisStore::sentinel_allowing_plaintext(
            &[
                "redis://:s-pw-1@sen-a:26379/",
                "redis://:s-pw-1@sen-b:26380/",
            ],
            "svc",
            "grant",
        )
        .unwrap()
        .with_primary_credentials(Some("app"), "p-pw-2")
        .unwrap();
        let debug = format!("{ok:?}");
        assert!(
            debug.contains("sen-a:26379,sen-b:26380") && debug.contains("svc"),
            "{debug}"
        );
        assert!(!debug.contains("pw-"), "{debug}");
        for (urls, service) in [
            (&["redis://:s-pw-1@a:1/", "redis://:s-pw-9@b:2/"][..], "svc"),
            (
                &["redis://:s-pw-1@a:1/", "rediss://:s-pw-1@b:2/"][..],
                "svc",
            ),
            (&[][..], "svc"),
            (&["unix:///tmp/s-pw-1.sock"][..], "svc"),
            (&["redis://:s-pw-1@a:1/"][..], "two words"),
        ] {
            let error = RedisStore::sentinel(urls, service, "grant")
                .unwrap_err()
                .to_string();
            assert!(!error.contains("pw-"), "{error}");
        }
        let plain = RedisStore::new("redis://127.0.0.1:6379/", "grant").unwrap();
        assert!(plain.with_primary_credentials(None, "p-pw-2").is_err());
    }

    #[test]
    fn a_demoted_primary_and_a_lost_connection_are_told_apart() {
        let readonly = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(is_readonly(&readonly));
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(!is_readonly(&dropped) && lost_the_primary(&dropped));
        let wrong_type = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "WRONGTYPE",
        ));
        assert!(!is_readonly(&wrong_type) && !lost_the_primary(&wrong_type));
        assert!(is_read(redis::cmd("HMGET").arg("k").arg("version")));
        assert!(!is_read(redis::cmd("SET").arg("k").arg("v").arg("NX")));
        assert!(!is_read(redis::cmd("EVALSHA").arg("0123")));
        assert!(is_read(
            redis::cmd("EVALSHA")
                .arg(super::super::scripts::LOAD.get_hash())
                .arg(1)
                .arg("k")
        ));
    }
}

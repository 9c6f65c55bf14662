//! The network path to Redis dies silently (a lost NAT or conntrack entry, a dropped flow): each
//! host reaches a real `redis-server` through its own [`PartitionProxy`], which can drop every
//! byte both ways without closing a socket, and heal so that new connections work while the
//! silenced ones stay silent. The GenLogs stand-in revokes the whole grant when a rotated
//! refresh token comes back, and every refresh request is counted per host.
//!
//! The scenarios print what they measured (`--nocapture`): reuse, time from the heal to the
//! holder's save, time from the heal to every host served again.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::child::spawn_child;
use crate::support::fixture::{Fixture, API_KEY};
use crate::support::partition::PartitionProxy;
use crate::support::redis::{RedisCluster, RedisServer};
use crate::support::sentinel::{SentinelSet, SERVICE};
use crate::support::store::{call_until_stopped, child_runtime, child_var, Presented};
use genlogs_auth::testing::{Fault, MockGenLogs, RecordedRequest, REFRESH_PATH};
use genlogs_auth::{AuthClient, RedisStore, StoreError, TokenManager, TokenStore};

const GRANT: &str = "partition";
/// How long the stand-in's access tokens live.
const LIFETIME: Duration = Duration::from_secs(4);
/// Refresh when this much is left.
const MARGIN: Duration = Duration::from_secs(2);
/// The refresh request's total timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The lease: the request timeout plus the manager's 2 s safety margin, plus 1 s.
const LEASE: Duration = Duration::from_secs(8);
/// One Redis command or connection attempt.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the holder's answer takes to come back after GenLogs rotated: long enough for the
/// cut to be in place when it arrives.
const ANSWER_DELAY: Duration = Duration::from_millis(1500);
/// Host processes.
const HOSTS: usize = 4;

/// The tests of this file run one at a time: they start processes and measure recovery times.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn store(url: &str) -> RedisStore {
    configure(RedisStore::new(url, GRANT).unwrap())
}

/// The settings every store of these tests has.
fn configure(store: RedisStore) -> RedisStore {
    store
        .with_lease(LEASE)
        .with_lock_wait(Duration::from_secs(10))
        .with_timeout(STORE_TIMEOUT)
}

/// A Redis, a path to it, and a store (300 ms timeout) that takes the path.
async fn behind_a_path() -> (RedisServer, PartitionProxy, RedisStore) {
    let redis = RedisServer::start();
    let path = PartitionProxy::start(redis.addr()).await;
    let store = store(&path.url()).with_timeout(Duration::from_millis(300));
    (redis, path, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_a_silent_timeout_runs_on_a_new_connection() {
    let _serial = SERIAL.lock().await;
    let (_redis, path, store) = behind_a_path().await;
    Fixture::new().await.seed(&store).await;
    assert_eq!(path.connections(), 1);

    path.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let error = store.load().await.unwrap_err();
        assert!(matches!(error, StoreError::Unreachable(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "bounded");
    }
    let lock = store.lock().await.unwrap_err();
    assert!(matches!(lock, StoreError::Unreachable(_)), "{lock:?}");

    path.heal();
    // The connection silenced by the cut is never used again: the very next call connects
    // anew and is answered.
    let loaded = store.load().await.expect("the first call after the heal");
    assert!(loaded.is_some());
    let lock = store.lock().await.expect("a lease after the heal");
    store.release(lock).await;
    assert!(
        path.connections() >= 2,
        "a new connection: {}",
        path.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_before_the_cut_is_released_on_a_new_connection_after_the_heal() {
    let _serial = SERIAL.lock().await;
    let (redis, path, store) = behind_a_path().await;
    let lock = store.lock().await.unwrap();
    path.cut();
    assert!(matches!(
        store.load().await,
        Err(StoreError::Unreachable(_))
    ));
    path.heal();
    // The lease holds the store's link, not the silenced socket: its release is answered.
    store.release(lock).await;
    let direct = store_direct(&redis);
    let again = tokio::time::timeout(Duration::from_secs(2), direct.lock())
        .await
        .expect("the released lease is free at once")
        .unwrap();
    direct.release(again).await;
}

fn store_direct(redis: &RedisServer) -> RedisStore {
    store(&redis.url()).with_lock_wait(Duration::from_millis(500))
}

// --- A fleet of host processes, each behind its own path ---------------------------------------

/// Who the stand-in's next refresh cuts off when it arrives.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Every host's path.
    All,
    /// The path of the host that sent the refresh (the lease holder).
    Holder,
}

/// The GenLogs stand-in, counting refresh requests per host (`User-Agent: host-N`) and able to
/// cut paths the moment a refresh arrives, answering it only after [`ANSWER_DELAY`].
struct Stand {
    genlogs: MockGenLogs,
    /// Refresh tokens presented, and how often.
    presented: Presented,
    /// When a refresh token was first presented a second time.
    first_reuse: Mutex<Option<Instant>>,
    rejected: AtomicU64,
    /// Arm: the next refresh cuts these paths and is answered late.
    armed: Mutex<Option<Cut>>,
    /// The host whose refresh cut the paths, and when.
    holder: Mutex<Option<(usize, Instant)>>,
    paths: Vec<PartitionProxy>,
}

impl Stand {
    fn refresh(&self, request: &RecordedRequest) -> Option<Fault> {
        if request.path() != REFRESH_PATH {
            return None;
        }
        if let Some(token) = request.query("refresh_token") {
            if self.presented.note(token) == 2 {
                self.first_reuse
                    .lock()
                    .unwrap()
                    .get_or_insert_with(Instant::now);
            }
        }
        let host: usize = request
            .header("user-agent")
            .and_then(|agent| agent.strip_prefix("host-"))
            .and_then(|index| index.parse().ok())
            .expect("a host's User-Agent");
        let armed = self.armed.lock().unwrap().take();
        if let Some(cut) = armed {
            match cut {
                Cut::All => self.paths.iter().for_each(PartitionProxy::cut),
                Cut::Holder => self.paths[host].cut(),
            }
            *self.holder.lock().unwrap() = Some((host, Instant::now()));
        }
        let answer = self.genlogs.process(request);
        if matches!(answer, Fault::Respond { status: 401, .. }) {
            self.rejected.fetch_add(1, Ordering::SeqCst);
        }
        Some(match armed {
            Some(_) => Fault::delayed(ANSWER_DELAY, answer),
            None => answer,
        })
    }

    fn reused(&self) -> usize {
        self.presented.reused()
    }
}

/// One host process and what it last reported.
struct Host {
    child: Child,
    /// Whether its callers were last served, and since when.
    served: Arc<Mutex<(bool, Instant)>>,
}

/// What one scenario measured.
#[derive(Debug)]
struct Measured {
    reuse: usize,
    rejected: u64,
    /// From the heal to the holder's rotation stored (`None`: never, within the wait).
    heal_to_save: Option<Duration>,
    /// From the heal to every host's callers served again.
    heal_to_all_served: Option<Duration>,
    /// From the holder's refresh to the first refresh token presented twice.
    send_to_reuse: Option<Duration>,
}

/// The Redis a fleet shares, and how hosts reach it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// One server; each host has a path of its own (`paths[i]`, one more for a late host).
    Server,
    /// A primary, its replica and three sentinels that monitor the primary through the one
    /// path (`paths[0]`) every host's primary connection takes; the sentinels are reached
    /// directly.
    Sentinel,
    /// Three cluster nodes, each announcing the port of its path (`paths[i]`), which every host
    /// takes to it.
    Cluster,
}

struct Fleet {
    kind: Kind,
    /// The Redis processes, kept running until the fleet is dropped.
    _redis: Box<dyn std::any::Any + Send>,
    /// The URL of the node that holds the grant, not through any path.
    direct: String,
    /// The sentinels' URLs (Sentinel only; hosts reach them directly).
    sentinels: Vec<String>,
    stand: Arc<Stand>,
    hosts: Vec<Host>,
    stop: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Fleet {
    /// `HOSTS` host processes on a Redis of `kind`, behind partition proxies; `keep_alive[i]`
    /// says whether host `i` runs the keep-alive task (which watches the store).
    async fn start(kind: Kind, keep_alive: [bool; HOSTS]) -> Self {
        let mut paths = Vec::new();
        let direct;
        let mut sentinels = Vec::new();
        let redis: Box<dyn std::any::Any + Send> = match kind {
            Kind::Server => {
                let redis = RedisServer::start();
                direct = redis.url();
                // One more for a host started after a heal.
                for _ in 0..=HOSTS {
                    paths.push(PartitionProxy::start(redis.addr()).await);
                }
                Box::new(redis)
            }
            Kind::Sentinel => {
                let set = SentinelSet::start();
                direct = set.nodes[0].url();
                sentinels = set.urls();
                paths.push(PartitionProxy::start(set.nodes[0].addr()).await);
                // No failover during a cut: this is a path that dies, not a primary.
                set.monitor_via(paths[0].port(), Duration::from_secs(120));
                Box::new(set)
            }
            Kind::Cluster => {
                let cluster = RedisCluster::start();
                let (owner, _) = cluster.owner_of(&format!("{{genlogs:{GRANT}}}:tokens"));
                direct = cluster.nodes()[owner].url();
                for node in cluster.nodes() {
                    paths.push(PartitionProxy::start(node.addr()).await);
                }
                cluster.announce_ports(&paths.iter().map(PartitionProxy::port).collect::<Vec<_>>());
                Box::new(cluster)
            }
        };
        let fixture =
            Fixture::with_stand_in(|genlogs| genlogs.with_access_lifetime(LIFETIME)).await;
        let genlogs = fixture.genlogs.clone();
        let scratch = crate::support::scratch();
        let stop = scratch.path().join("stop");
        let mut fleet = Self {
            kind,
            _redis: redis,
            direct,
            sentinels,
            stand: Arc::new(Stand {
                genlogs: genlogs.clone(),
                presented: Presented::default(),
                first_reuse: Mutex::default(),
                rejected: AtomicU64::new(0),
                armed: Mutex::new(None),
                holder: Mutex::new(None),
                paths,
            }),
            hosts: Vec::new(),
            stop,
            _scratch: scratch,
        };
        fixture.seed(&fleet.direct()).await;
        let hook = fleet.stand.clone();
        genlogs.fail_with(move |request| hook.refresh(request));
        for (index, keep_alive) in keep_alive.into_iter().enumerate() {
            fleet.spawn_host(index, keep_alive);
        }
        fleet
    }

    /// A store on the grant's node itself, not through any path.
    fn direct(&self) -> RedisStore {
        store(&self.direct)
    }

    /// How host `index` reaches the store: `KIND URL[,URL…]`.
    fn store_spec(&self, index: usize) -> String {
        let all = || {
            self.stand
                .paths
                .iter()
                .map(PartitionProxy::url)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.kind {
            Kind::Server => format!("server {}", self.stand.paths[index].url()),
            Kind::Sentinel => format!("sentinel {}", self.sentinels.join(",")),
            Kind::Cluster => format!("cluster {}", all()),
        }
    }

    /// Starts host `index` on its own path; it reports whether its callers are served.
    fn spawn_host(&mut self, index: usize, keep_alive: bool) {
        let env = [
            ("GENLOGS_TEST_BASE_URL", self.stand.genlogs.base_url()),
            ("GENLOGS_TEST_STORE", self.store_spec(index)),
            ("GENLOGS_TEST_HOST", index.to_string()),
            ("GENLOGS_TEST_KEEP_ALIVE", keep_alive.to_string()),
            ("GENLOGS_TEST_STOP", self.stop.display().to_string()),
        ];
        let mut child = spawn_child(module_path!(), "host", &env);
        let served = Arc::new(Mutex::new((false, Instant::now())));
        let report = served.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let now = Instant::now();
                if line.contains("HOST SERVED") {
                    *report.lock().unwrap() = (true, now);
                } else if line.contains("HOST FAILING") {
                    *report.lock().unwrap() = (false, now);
                }
            }
        });
        self.hosts.push(Host { child, served });
    }

    fn all_served_since(&self, since: Instant) -> bool {
        self.hosts.iter().all(|host| {
            let (served, at) = *host.served.lock().unwrap();
            served && at >= since
        })
    }

    fn all_served(&self) -> bool {
        self.hosts.iter().all(|host| host.served.lock().unwrap().0)
    }

    /// Is the refresh token in Redis (read directly, not through a path) the valid one?
    async fn stored_is_valid(&self) -> bool {
        match self.direct().load().await {
            Ok(Some(stored)) => self
                .stand
                .genlogs
                .is_valid_refresh_token(stored.refresh_token().expose_secret()),
            _ => false,
        }
    }

    /// Runs one partition: waits for the fleet to serve, arms the stand-in so that the next
    /// refresh cuts `cut`, keeps the paths cut for `cut_for` from then, heals them all, and
    /// measures the recovery; then lets the fleet run two more refreshes and stops it.
    async fn partition(mut self, cut: Cut, cut_for: Duration, late_host: bool) -> Measured {
        until(Duration::from_secs(60), || self.all_served()).await;
        *self.stand.armed.lock().unwrap() = Some(cut);
        until(Duration::from_secs(60), || {
            self.stand.holder.lock().unwrap().is_some()
        })
        .await;
        let (holder, cut_at) = self.stand.holder.lock().unwrap().unwrap();
        tokio::time::sleep_until((cut_at + cut_for).into()).await;
        self.stand.paths.iter().for_each(PartitionProxy::heal);
        let healed = Instant::now();
        if late_host {
            // It made no store call during the outage, knows nothing of it, and finds the
            // holder's mark: it must not resend the marked token before the holder saves.
            self.spawn_host(HOSTS, false);
        }

        let mut heal_to_save = None;
        let mut heal_to_all_served = None;
        let give_up = healed + Duration::from_secs(20);
        while Instant::now() < give_up && (heal_to_save.is_none() || heal_to_all_served.is_none()) {
            if heal_to_save.is_none() && self.stored_is_valid().await {
                heal_to_save = Some(healed.elapsed());
            }
            if heal_to_all_served.is_none() && self.all_served_since(healed) {
                heal_to_all_served = Some(healed.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The fleet carries on: two more rotations, no reuse.
        let refreshes = self.stand.genlogs.refreshes();
        let more = Instant::now() + Duration::from_secs(20);
        while self.stand.genlogs.refreshes() < refreshes + 2 && Instant::now() < more {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::write(&self.stop, b"stop").unwrap();
        for host in &mut self.hosts {
            assert!(host.child.wait().unwrap().success());
        }
        let measured = Measured {
            reuse: self.stand.reused() + self.stand.genlogs.reuses() as usize,
            rejected: self.stand.rejected.load(Ordering::SeqCst),
            heal_to_save,
            heal_to_all_served,
            send_to_reuse: self
                .stand
                .first_reuse
                .lock()
                .unwrap()
                .map(|reused| reused.saturating_duration_since(cut_at)),
        };
        println!("partition {cut:?} for {cut_for:?} (holder host-{holder}): {measured:?}");
        measured
    }
}

/// Polls `done` every 20 ms; panics after `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < end, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_recovered(measured: &Measured) {
    assert_eq!(
        measured.reuse, 0,
        "no refresh token sent twice: {measured:?}"
    );
    assert_eq!(measured.rejected, 0, "{measured:?}");
    assert!(
        measured.heal_to_save.is_some(),
        "the holder's rotation was stored: {measured:?}"
    );
    assert!(
        measured.heal_to_all_served.is_some(),
        "every host served again: {measured:?}"
    );
}

/// One partition of a fleet of [`HOSTS`] on a Redis of `kind` (see [`Fleet::start`] and
/// [`Fleet::partition`]), run while no other test of this file runs.
async fn partitioned(
    kind: Kind,
    keep_alive: [bool; HOSTS],
    cut: Cut,
    cut_for: Duration,
    late_host: bool,
) -> Measured {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start(kind, keep_alive).await;
    fleet.partition(cut, cut_for, late_host).await
}

/// Every path cut past the lease.
const PAST_THE_LEASE: Duration = LEASE.saturating_add(Duration::from_secs(5));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_cut_past_the_lease_while_the_answer_arrives_loses_nothing_and_a_host_started_after_the_heal_waits(
) {
    let keep_alive = [true, true, false, false];
    let measured = partitioned(Kind::Server, keep_alive, Cut::All, PAST_THE_LEASE, true).await;
    assert_recovered(&measured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_alone_cut_for_less_than_its_lease_saves_before_anyone_resends() {
    let cut_for = Duration::from_secs(5);
    let measured = partitioned(Kind::Server, [true; HOSTS], Cut::Holder, cut_for, false).await;
    assert_recovered(&measured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_without_keep_alive_recover_from_the_holder_cut_off() {
    // No host watches the store: only callers whose cached token ran out read it, and the
    // holder learns that its path healed only from its own pending save.
    let cut_for = Duration::from_secs(5);
    let measured = partitioned(Kind::Server, [false; HOSTS], Cut::Holder, cut_for, false).await;
    assert_recovered(&measured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_cut_off_past_its_lease_and_the_in_flight_wait_is_resent_no_earlier() {
    // The documented limit: a host cut off from the store alone cannot be told from a crashed
    // one. The others wait out its lease and the in-flight wait (its request timeout + 2 s
    // after they first saw its mark, which may be only when they get the lock at the lease's
    // end), then send the marked token again: the right move when the holder crashed before
    // GenLogs answered, and a reuse (GenLogs revokes the grant) when its answer arrived. The
    // lease is the longest cut-off the fleet can wait out.
    let cut_for = LEASE + LEASE + REQUEST_TIMEOUT + Duration::from_secs(5);
    let measured = partitioned(Kind::Server, [true; HOSTS], Cut::Holder, cut_for, false).await;
    let resent = measured
        .send_to_reuse
        .expect("the others resent the marked token once the holder's lease was over");
    assert!(
        resent >= LEASE,
        "not before the holder's lease was over: {measured:?}"
    );
    assert!(
        resent < cut_for,
        "the fleet does not wait for a holder cut off longer than that: {measured:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sentinel_every_path_to_the_primary_cut_past_the_lease_loses_nothing() {
    let keep_alive = [true, true, false, false];
    let measured = partitioned(Kind::Sentinel, keep_alive, Cut::All, PAST_THE_LEASE, false).await;
    assert_recovered(&measured);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_every_path_to_every_node_cut_past_the_lease_loses_nothing() {
    let keep_alive = [true, true, false, false];
    let measured = partitioned(Kind::Cluster, keep_alive, Cut::All, PAST_THE_LEASE, false).await;
    assert_recovered(&measured);
}

/// Not a test: the body of the host processes above, selected by `GENLOGS_TEST_CHILD`.
#[test]
#[ignore = "run by the partition tests as a child process"]
fn child() {
    let var = child_var;
    child_runtime().block_on(async {
        assert_eq!(var("GENLOGS_TEST_CHILD"), "host");
        let client = AuthClient::builder(API_KEY)
            .with_base_url(var("GENLOGS_TEST_BASE_URL"))
            .with_timeout(REQUEST_TIMEOUT)
            .with_http_client_builder(
                reqwest::Client::builder().user_agent(format!("host-{}", var("GENLOGS_TEST_HOST"))),
            )
            .build()
            .unwrap();
        let spec = var("GENLOGS_TEST_STORE");
        let (kind, urls) = spec.split_once(' ').unwrap();
        let urls: Vec<&str> = urls.split(',').collect();
        let store = match kind {
            "server" => store(urls[0]),
            "sentinel" => configure(RedisStore::sentinel(&urls, SERVICE, GRANT).unwrap()),
            "cluster" => configure(RedisStore::cluster(&urls, GRANT).unwrap()),
            other => panic!("unknown store {other}"),
        };
        let manager = TokenManager::builder(client, store)
            .with_refresh_margin(MARGIN)
            .with_refresh_jitter(0.0)
            .with_min_refresh_interval(Duration::from_millis(500))
            .with_retry_cooldown(Duration::from_millis(200))
            .build();
        let _keep_alive = (var("GENLOGS_TEST_KEEP_ALIVE") == "true").then(|| manager.keep_alive());
        let stop = PathBuf::from(var("GENLOGS_TEST_STOP"));
        host(manager, stop).await;
    });
}

/// Eight callers asking every 25 ms; prints `HOST FAILING <error>` when a call fails after one
/// succeeded, and `HOST SERVED` when one succeeds after one failed and every 100 ms while calls
/// succeed, until the stop file appears.
async fn host(manager: TokenManager, stop: PathBuf) {
    // The last report: served or not, and when it was printed.
    let served = Arc::new(Mutex::new(None::<(bool, Instant)>));
    call_until_stopped(8, &stop, move || {
        let (manager, served) = (manager.clone(), served.clone());
        async move {
            let answer = manager.access_token().await;
            let mut last = served.lock().unwrap();
            let due = match *last {
                None => true,
                // While served, a heartbeat every 100 ms: the parent measures when every host
                // was served after a heal.
                Some((ok, at)) => {
                    ok != answer.is_ok() || (ok && at.elapsed() >= Duration::from_millis(100))
                }
            };
            if due {
                *last = Some((answer.is_ok(), Instant::now()));
                match &answer {
                    Ok(_) => println!("HOST SERVED"),
                    Err(error) => println!("HOST FAILING {error}"),
                }
            }
        }
    })
    .await;
}

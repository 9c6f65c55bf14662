//! A fleet sharing one GenLogs grant through `RedisStore`: several processes (this test binary,
//! re-run on the ignored `child` test) and managers against one real `redis-server` and a
//! GenLogs stand-in that counts every refresh and detects any reuse of a rotated token.
//!
//! Access tokens live [`LIFETIME`] here, so a test sees many expiries in seconds.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::child::{read_marker, spawn_child};
use crate::support::fixture::{Fixture, API_KEY};
use crate::support::redis::RedisServer;
use crate::support::store::{call_until_stopped, child_runtime, child_var, tokens, Presented};
use chrono::{DateTime, Utc};
use genlogs_auth::testing::{Fault, RecordedRequest, REFRESH_PATH};
use genlogs_auth::{AuthClient, RedisStore, StoreError, StoredTokens, TokenManager, TokenStore};

const GRANT: &str = "fleet-grant";
/// How long the stand-in's access tokens live.
const LIFETIME: Duration = Duration::from_secs(4);
/// Refresh when this much is left.
const MARGIN: Duration = Duration::from_secs(2);
/// The refresh request's total timeout (generous: these tests share two cores with others).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The lease: longer than the request timeout plus the manager's safety margin (2 s).
const LEASE: Duration = Duration::from_secs(8);

/// The tests of this file run one at a time: each starts processes and servers of its own, and
/// two at once on a small shared machine make timeouts, not bugs.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// A refresh sent while the previous access token had more than this left is a second refresh
/// for the same expiry: the margin, plus a second for the `Date` header's resolution.
const PREMATURE: Duration = Duration::from_secs(3);

/// The shared fixture's GenLogs stand-in with short-lived access tokens (its fields and methods
/// are the fixture's), plus what these tests count about the refresh requests.
struct ShortLived {
    fixture: Fixture,
    requests: AtomicU64,
    /// 401s to a refresh: a rotated (or revoked) refresh token was sent.
    rejected: AtomicU64,
    /// Refreshes sent while the previous access token was still far from expiry.
    premature: AtomicU64,
    last_expiry: Mutex<Option<DateTime<Utc>>>,
    /// Hold the next refresh request without processing it (its sender can be killed meanwhile).
    stall_next: AtomicBool,
    /// How many times each refresh token was presented.
    presented: Presented,
}

impl ShortLived {
    async fn serve() -> Arc<Self> {
        let fixture =
            Fixture::with_stand_in(|genlogs| genlogs.with_access_lifetime(LIFETIME)).await;
        let genlogs = fixture.genlogs.clone();
        let stand_in = Arc::new(Self {
            fixture,
            requests: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            premature: AtomicU64::new(0),
            last_expiry: Mutex::new(None),
            stall_next: AtomicBool::new(false),
            presented: Presented::default(),
        });
        let counting = stand_in.clone();
        genlogs.fail_with(move |request| counting.refresh(request));
        stand_in
    }

    /// Counts a refresh request and answers it as GenLogs would (or stalls it).
    fn refresh(&self, request: &RecordedRequest) -> Option<Fault> {
        if request.path() != REFRESH_PATH {
            return None;
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(token) = request.query("refresh_token") {
            self.presented.note(token);
        }
        if self.stall_next.swap(false, Ordering::SeqCst) {
            return Some(Fault::Stall);
        }
        let mut last_expiry = self.last_expiry.lock().unwrap();
        let now = Utc::now();
        if last_expiry.is_some_and(|expiry| (expiry - now).to_std().unwrap_or_default() > PREMATURE)
        {
            self.premature.fetch_add(1, Ordering::SeqCst);
        }
        let answer = self.genlogs.process(request);
        match &answer {
            Fault::Respond { status: 200, .. } => *last_expiry = Some(now + LIFETIME),
            Fault::Respond { status: 401, .. } => {
                self.rejected.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Some(answer)
    }

    fn base_url(&self) -> String {
        self.genlogs.base_url()
    }

    /// Refresh tokens presented more than once.
    fn reused(&self) -> usize {
        self.presented.reused()
    }

    /// Is the refresh token `redis` holds the one GenLogs accepts now?
    async fn stored_is_valid(&self, redis: &RedisServer) -> bool {
        let stored = fleet_store(&redis.url()).load().await.unwrap().unwrap();
        self.genlogs
            .is_valid_refresh_token(stored.refresh_token().expose_secret())
    }
}

impl std::ops::Deref for ShortLived {
    type Target = Fixture;

    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

/// A Redis of its own and a short-lived GenLogs stand-in, with the stand-in's seed stored.
async fn seeded_fleet() -> (RedisServer, Arc<ShortLived>) {
    let redis = RedisServer::start();
    let stand_in = ShortLived::serve().await;
    stand_in.seed(&fleet_store(&redis.url())).await;
    (redis, stand_in)
}

/// A host: a manager over a store of its own on `redis`.
fn fleet_host(stand_in: &ShortLived, redis: &RedisServer) -> TokenManager {
    fleet_manager(&stand_in.base_url(), fleet_store(&redis.url()))
}

/// What a child host needs to reach the stand-in and Redis.
fn child_env(stand_in: &ShortLived, redis: &RedisServer) -> [(&'static str, String); 2] {
    [
        ("GENLOGS_TEST_BASE_URL", stand_in.base_url()),
        ("GENLOGS_TEST_REDIS", redis.url()),
    ]
}

fn fleet_store(redis_url: &str) -> RedisStore {
    RedisStore::new(redis_url, GRANT)
        .unwrap()
        .with_lease(LEASE)
        .with_lock_wait(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(1))
}

fn fleet_manager(base_url: &str, store: impl TokenStore) -> TokenManager {
    let client = AuthClient::builder(API_KEY)
        .with_base_url(base_url)
        .with_timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    TokenManager::builder(client, store)
        .with_refresh_margin(MARGIN)
        .with_refresh_jitter(0.0)
        .with_min_refresh_interval(Duration::from_millis(500))
        .with_retry_cooldown(Duration::from_millis(200))
        .build()
}

/// Waits (off the runtime's threads) for the child's line with `marker`.
async fn marker_of(mut child: Child, marker: &'static str) -> (Child, String) {
    tokio::task::spawn_blocking(move || {
        let value = read_marker(&mut child, marker);
        (child, value)
    })
    .await
    .unwrap()
}

/// Polls `done` every 20 ms; panics (a hung test, not a slow one) after 2 minutes.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_of_200_tasks_refresh_once_per_expiry_and_never_reuse() {
    let _serial = SERIAL.lock().await;
    const EXPIRIES: u64 = 6;
    let (redis, stand_in) = seeded_fleet().await;
    let scratch = crate::support::scratch();
    let stop = scratch.path().join("stop");
    let env = [
        ("GENLOGS_TEST_BASE_URL", stand_in.base_url()),
        ("GENLOGS_TEST_REDIS", redis.url()),
        ("GENLOGS_TEST_STOP", stop.display().to_string()),
        ("GENLOGS_TEST_TASKS", "200".to_string()),
    ];
    let children: Vec<Child> = (0..3)
        .map(|_| spawn_child(module_path!(), "fleet", &env))
        .collect();

    until("the expiries", || stand_in.genlogs.refreshes() >= EXPIRIES).await;
    std::fs::write(&stop, b"stop").unwrap();
    let mut served_tokens = HashSet::new();
    for child in children {
        let (mut child, result) = marker_of(child, "RESULT ").await;
        assert!(child.wait().unwrap().success());
        let fields: Vec<&str> = result.split(' ').collect();
        let [served, errors, tokens] = fields.as_slice() else {
            panic!("{result}")
        };
        assert_eq!(*errors, "errors=0", "every caller served: {result}");
        assert_ne!(*served, "served=0", "{result}");
        served_tokens.extend(
            tokens
                .trim_start_matches("tokens=")
                .split(',')
                .map(str::to_string),
        );
    }

    let refreshes = stand_in.genlogs.refreshes();
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 0, "zero reuse");
    assert_eq!(
        stand_in.genlogs.reuses(),
        0,
        "the stand-in saw no reuse either"
    );
    assert_eq!(stand_in.reused(), 0, "no refresh token presented twice");
    assert_eq!(
        stand_in.requests.load(Ordering::SeqCst),
        refreshes,
        "every refresh request rotated the one valid token"
    );
    assert_eq!(
        stand_in.premature.load(Ordering::SeqCst),
        0,
        "one refresh per expiry, not one per process"
    );
    let issued: HashSet<String> = stand_in.genlogs.issued_tokens().into_iter().collect();
    assert!(
        served_tokens.is_subset(&issued),
        "only issued tokens served"
    );
    assert!(served_tokens.len() as u64 >= EXPIRIES - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_refresh_is_taken_over_after_its_lease_without_reuse() {
    let _serial = SERIAL.lock().await;
    let (redis, stand_in) = seeded_fleet().await;
    let env = child_env(&stand_in, &redis);
    // The holder's refresh is held at the server, unprocessed, while the holder is SIGKILLed.
    stand_in.stall_next.store(true, Ordering::SeqCst);
    let mut holder = spawn_child(module_path!(), "once", &env);
    until("the holder's refresh", || {
        stand_in.requests.load(Ordering::SeqCst) == 1
    })
    .await;
    holder.kill().unwrap();
    holder.wait().unwrap();

    let (mut next, access) = marker_of(spawn_child(module_path!(), "once", &env), "ACCESS=").await;
    assert!(next.wait().unwrap().success());
    assert_eq!(stand_in.requests.load(Ordering::SeqCst), 2);
    assert_eq!(stand_in.genlogs.refreshes(), 1);
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 0, "zero reuse");
    // The one token sent twice is the one whose first request GenLogs never processed.
    assert_eq!(stand_in.reused(), 1);
    assert!(stand_in.genlogs.issued_tokens().contains(&access));
    assert!(stand_in.stored_is_valid(&redis).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_does_not_send_its_stale_token_on_resume() {
    let _serial = SERIAL.lock().await;
    let (redis, stand_in) = seeded_fleet().await;
    let env = child_env(&stand_in, &redis);
    // It stops itself (SIGSTOP) after reading the store under its lease, before deciding.
    let (paused, _) = marker_of(
        spawn_child(module_path!(), "pause-after-load", &env),
        "PAUSING",
    )
    .await;
    until("the holder to stop", || is_stopped(paused.id())).await;

    let (mut other, access) = marker_of(spawn_child(module_path!(), "once", &env), "ACCESS=").await;
    assert!(other.wait().unwrap().success());
    assert_eq!(stand_in.genlogs.refreshes(), 1);

    crate::support::redis::signal(paused.id(), "-CONT");
    let (mut paused, result) = marker_of(paused, "RESULT ").await;
    assert!(paused.wait().unwrap().success());
    // Its stale token (the seed, already rotated by the other host) was presented once only;
    // a later refresh, once the adopted token is due, is legitimate.
    assert_eq!(
        stand_in.reused(),
        0,
        "the resumed holder sent its stale token: {result}"
    );
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 0, "zero reuse");
    assert_eq!(stand_in.reused(), 0, "no refresh token presented twice");
    // Its first call fails (the lease is lost, or the command it sent before the pause timed
    // out); the next adopts the other host's tokens (or newer ones, if they were due by then).
    let second = result
        .strip_prefix("first=refused second=")
        .unwrap_or_else(|| panic!("{result}"));
    assert!(stand_in
        .genlogs
        .issued_tokens()
        .contains(&second.to_string()));
    let _ = access;
}

fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_releases_its_lease_once_the_tokens_are_saved() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let stand_in = ShortLived::serve().await;
    let store = Arc::new(fleet_store(&redis.url()).with_lease(Duration::from_secs(60)));
    stand_in.seed(&store).await;
    let manager = fleet_manager(&stand_in.base_url(), store.clone());
    manager.access_token().await.unwrap();
    // Another host can take the lease at once (well within the 60 s lease).
    let other = fleet_store(&redis.url()).with_lock_wait(Duration::from_secs(2));
    let lock = other.lock().await.unwrap();
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_serves_cached_tokens_then_reseeds_from_memory() {
    let _serial = SERIAL.lock().await;
    let (mut redis, stand_in) = seeded_fleet().await;
    let hosts = [fleet_host(&stand_in, &redis), fleet_host(&stand_in, &redis)];
    let first = hosts[0].access_token().await.unwrap();
    assert_eq!(
        hosts[1].access_token().await.unwrap().expose_secret(),
        first.expose_secret()
    );

    redis.kill();
    for host in &hosts {
        let token = host
            .access_token()
            .await
            .expect("the cached token is served");
        assert_eq!(token.expose_secret(), first.expose_secret());
    }
    redis.restart();
    // The next expiry: the host that refreshes finds Redis empty, writes the tokens it holds
    // back under a fresh lease, and the fleet carries on with one refresh per expiry. Callers
    // keep asking meanwhile (refreshes start from callers).
    let mut calls = 0;
    while stand_in.genlogs.refreshes() < 3 {
        for host in &hosts {
            let _ = host.access_token().await;
        }
        calls += 1;
        assert!(calls < 3_000, "no refresh after the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 0, "zero reuse");
    assert_eq!(stand_in.reused(), 0, "no refresh token presented twice");
    assert_eq!(stand_in.premature.load(Ordering::SeqCst), 0);
    assert!(stand_in.stored_is_valid(&redis).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_blocks_refreshes_not_cached_tokens() {
    let _serial = SERIAL.lock().await;
    let (mut redis, stand_in) = seeded_fleet().await;
    let host = fleet_host(&stand_in, &redis);
    let first = host.access_token().await.unwrap();
    let refreshes = stand_in.genlogs.refreshes();

    redis.pause();
    // Until it expires the cached token is served; after that callers get a store error
    // (bounded by the store's timeouts), and no refresh is sent without the lease.
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(30), host.access_token())
            .await
            .expect("a call hung while Redis was paused")
        {
            Ok(token) => assert_eq!(token.expose_secret(), first.expose_secret()),
            Err(error) => break error,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        matches!(error.store_error(), Some(StoreError::Unreachable(_))),
        "{error:?}"
    );
    assert_eq!(
        stand_in.genlogs.refreshes(),
        refreshes,
        "no refresh without the lease"
    );
    assert_eq!(stand_in.requests.load(Ordering::SeqCst), refreshes);

    redis.resume();
    let mut token = host.access_token().await;
    while token.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        token = host.access_token().await;
    }
    assert_eq!(stand_in.genlogs.refreshes(), refreshes + 1);
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 0);
}

/// A store that stops its own process (`SIGSTOP`) once, right after its first read under a
/// lock: a host paused between reading the store and sending the refresh.
#[derive(Debug)]
struct StopAfterFirstLoad {
    inner: RedisStore,
    stopped: AtomicBool,
}

impl TokenStore for StopAfterFirstLoad {
    type Lock = genlogs_auth::store::redis::RedisLock;

    async fn load(&self) -> Result<Option<StoredTokens>, StoreError> {
        let loaded = self.inner.load().await;
        if !self.stopped.swap(true, Ordering::SeqCst) {
            println!("PAUSING");
            crate::support::redis::signal(std::process::id(), "-STOP");
        }
        loaded
    }

    async fn lock(&self) -> Result<Self::Lock, StoreError> {
        self.inner.lock().await
    }

    async fn save(&self, tokens: &StoredTokens, lock: &Self::Lock) -> Result<u64, StoreError> {
        self.inner.save(tokens, lock).await
    }

    async fn extend(&self, lock: &mut Self::Lock, by: Duration) -> Result<(), StoreError> {
        self.inner.extend(lock, by).await
    }
}

/// Not a test: the body of the child processes above, selected by `GENLOGS_TEST_CHILD`.
#[test]
#[ignore = "run by the fleet tests as a child process"]
fn child() {
    let var = child_var;
    let (base_url, redis_url) = (var("GENLOGS_TEST_BASE_URL"), var("GENLOGS_TEST_REDIS"));
    child_runtime().block_on(async {
        match var("GENLOGS_TEST_CHILD").as_str() {
            "fleet" => {
                let manager = fleet_manager(&base_url, fleet_store(&redis_url));
                let tasks: usize = var("GENLOGS_TEST_TASKS").parse().unwrap();
                let stop = PathBuf::from(var("GENLOGS_TEST_STOP"));
                fleet_child(manager, tasks, stop).await;
            }
            "once" => {
                let manager = fleet_manager(&base_url, fleet_store(&redis_url));
                // A store that is slow to answer on a loaded machine is retried, as a caller
                // would; the tests count what reaches GenLogs.
                let mut access = manager.access_token().await;
                for _ in 0..5 {
                    match &access {
                        Err(error) if error.store_error().is_some() => {
                            eprintln!("once: retrying after {error}: {error:?}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            access = manager.access_token().await;
                        }
                        // Another host's refresh may still be in flight: retried when it cannot
                        // be any more (the request timeout after this host first saw its mark).
                        Err(genlogs_auth::TokenError::OutcomeUnknown { retry_at }) => {
                            eprintln!("once: the outcome of an earlier refresh is unknown; retrying at {retry_at}");
                            let wait = (*retry_at - chrono::Utc::now())
                                .to_std()
                                .unwrap_or_default()
                                .min(Duration::from_secs(20));
                            tokio::time::sleep(wait + Duration::from_millis(100)).await;
                            access = manager.access_token().await;
                        }
                        _ => break,
                    }
                }
                let access = access.unwrap();
                println!("ACCESS={}", access.expose_secret());
            }
            "pause-after-load" => {
                let store = StopAfterFirstLoad {
                    inner: fleet_store(&redis_url),
                    stopped: AtomicBool::new(false),
                };
                let manager = fleet_manager(&base_url, store);
                // The call in flight across the pause either finds its lease lost, or its Redis
                // command (sent before the pause) timed out meanwhile: both refuse to send.
                let first = match manager.access_token().await {
                    Err(error) if matches!(error.store_error(), Some(StoreError::LeaseLost)) => {
                        "refused".to_string()
                    }
                    Err(error)
                        if matches!(error.store_error(), Some(StoreError::Unreachable(_))) =>
                    {
                        "refused".to_string()
                    }
                    other => format!("{other:?}"),
                };
                let second = manager.access_token().await.unwrap();
                println!("RESULT first={first} second={}", second.expose_secret());
            }
            role => panic!("unknown role {role}"),
        }
    });
}

/// `tasks` tasks asking for a token every 25 ms until the stop file appears.
async fn fleet_child(manager: TokenManager, tasks: usize, stop: PathBuf) {
    let served = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(Mutex::new(HashSet::new()));
    call_until_stopped(tasks, &stop, {
        let (served, errors, tokens) = (served.clone(), errors.clone(), tokens.clone());
        move || {
            let manager = manager.clone();
            let (served, errors, tokens) = (served.clone(), errors.clone(), tokens.clone());
            async move {
                match manager.access_token().await {
                    Ok(token) => {
                        served.fetch_add(1, Ordering::Relaxed);
                        tokens
                            .lock()
                            .unwrap()
                            .insert(token.expose_secret().to_string());
                    }
                    Err(error) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("fleet child: first error: {error}: {error:?}");
                        }
                    }
                }
            }
        }
    })
    .await;
    let tokens: Vec<String> = tokens.lock().unwrap().iter().cloned().collect();
    println!(
        "RESULT served={} errors={} tokens={}",
        served.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        tokens.join(",")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hosts_401_stops_the_whole_fleet_until_new_tokens_are_stored() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let stand_in = ShortLived::serve().await;
    // A refresh token GenLogs no longer accepts (revoked, or used elsewhere).
    fleet_store(&redis.url())
        .replace(&tokens("rt-revoked-0123456789"))
        .await
        .unwrap();
    let hosts = [fleet_host(&stand_in, &redis), fleet_host(&stand_in, &redis)];
    let first = hosts[0].access_token().await.unwrap_err();
    assert!(first.needs_new_tokens(), "{first:?}");
    assert_eq!(stand_in.rejected.load(Ordering::SeqCst), 1);
    // The other host reads the shared verdict and sends nothing.
    let second = hosts[1].access_token().await.unwrap_err();
    assert!(second.needs_new_tokens(), "{second:?}");
    assert_eq!(stand_in.requests.load(Ordering::SeqCst), 1);

    // An operator stores new tokens through one host: both carry on with them.
    hosts[1]
        .replace_tokens(stand_in.valid_tokens())
        .await
        .unwrap();
    let (a, b) = (
        hosts[0].access_token().await.unwrap(),
        hosts[1].access_token().await.unwrap(),
    );
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert_eq!(stand_in.genlogs.refreshes(), 1);
}

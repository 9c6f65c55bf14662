//! A real `redis-server` per test, on a free loopback port, that the test can kill, pause
//! (`SIGSTOP`) and restart; and a real three-node Redis Cluster of them ([`RedisCluster`]). The
//! binaries (`redis-server`, and `redis-cli` for a cluster) come from `PATH`; without them the
//! test fails saying how to install them, it is never skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING` before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    paused: bool,
    /// `--tls-port` and the certificate files, for a server that also speaks TLS.
    tls: Option<(u16, Vec<String>)>,
    /// More arguments for `redis-server` (a cluster node's).
    extra: Vec<String>,
    /// A working directory of its own (a replica writes the primary's snapshot there), removed
    /// on drop.
    dir: Option<PathBuf>,
}

/// A new directory `genlogs-redis-<what>-<pid>-<unique>` under the system's temporary one, for
/// the files of a set of servers (removed by their owner on drop).
pub fn new_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "genlogs-redis-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("a directory for the servers' files");
    dir
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port, without persistence, and waits for it.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            paused: false,
            tls: None,
            extra: Vec::new(),
            dir: None,
        };
        server.spawn();
        server
    }

    /// Like [`start`](Self::start), with more arguments for `redis-server` (e.g. `--replicaof`).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        // Its own directory: a replica writes the primary's snapshot to its working directory.
        let dir = std::env::temp_dir().join(format!("genlogs-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the server's files");
        let mut server = Self {
            port,
            child: None,
            paused: false,
            tls: None,
            extra: [&["--dir", &dir.display().to_string()][..], extra]
                .concat()
                .iter()
                .map(|arg| arg.to_string())
                .collect(),
            dir: Some(dir),
        };
        server.spawn();
        server
    }

    /// Like [`start`](Self::start), plus a TLS port serving `cert` and `key` (PEM files);
    /// clients are not asked for certificates.
    pub fn start_tls(cert: &str, key: &str) -> Self {
        let args = [
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-auth-clients",
            "no",
        ];
        let mut server = Self {
            port: free_port(),
            child: None,
            paused: false,
            tls: Some((free_port(), args.map(String::from).to_vec())),
            extra: Vec::new(),
            dir: None,
        };
        server.spawn();
        server
    }

    /// Starts a replica of `primary` (`--replicaof`), with `extra` arguments for `redis-server`
    /// after the defaults (e.g. `--appendonly yes`), and waits until it is in sync and the
    /// primary counts it.
    pub fn start_replica_of(primary: &RedisServer, extra: &[&str]) -> Self {
        let primary_port = primary.port.to_string();
        let replica =
            Self::start_with(&[&["--replicaof", "127.0.0.1", &primary_port][..], extra].concat());
        replica.wait_in_sync();
        primary.wait_for_replica(replica.port);
        replica
    }

    /// Waits until this primary lists the replica on `port` as online: the replica reporting
    /// its link up is not enough, the primary's `ROLE` (which `with_min_replicas` reads) may
    /// not count it yet.
    pub fn wait_for_replica(&self, port: u16) {
        let started = Instant::now();
        let online = format!("port={port},state=online");
        loop {
            let info = redis_cli(&["-p", &self.port.to_string(), "info", "replication"]);
            if String::from_utf8_lossy(&info.stdout).contains(&online) {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the primary on port {} did not count the replica on port {port} within \
                 {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until this replica reports `master_link_status:up`.
    pub fn wait_in_sync(&self) {
        let started = Instant::now();
        loop {
            let info = redis_cli(&["-p", &self.port.to_string(), "info", "replication"]);
            if String::from_utf8_lossy(&info.stdout).contains("master_link_status:up") {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the replica on port {} was not in sync within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `rediss://localhost:<tls port>/`.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://localhost:{}/",
            self.tls.as_ref().expect("a TLS server").0
        )
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some((port, args)) = &self.tls {
            command.args(["--tls-port", &port.to_string()]).args(args);
        }
        command.args(&self.extra);
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "could not start `redis-server` ({error}): the Redis store tests need it on \
                     PATH; install it with `apt-get install redis-server` (Debian/Ubuntu)"
                )
            });
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers_ping() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "redis-server exited at start ({status}); is port {} free?",
                    self.port
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "redis-server did not answer on port {} within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// Kills the server (`SIGKILL`): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                signal(child.id(), "-CONT");
                self.paused = false;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server's data as a backup keeps it: `SAVE`, and the RDB file read (then removed, so
    /// that [`restart`](Self::restart) still starts empty). Needs a server with a directory of
    /// its own ([`start_with`](Self::start_with)).
    pub fn snapshot(&self) -> Vec<u8> {
        let dir = self
            .dir
            .as_ref()
            .expect("a server started with a directory");
        let out = redis_cli(&["-p", &self.port.to_string(), "SAVE"]);
        assert!(out.status.success(), "{out:?}");
        let file = dir.join("dump.rdb");
        let data = std::fs::read(&file).expect("the RDB file SAVE wrote");
        let _ = std::fs::remove_file(&file);
        data
    }

    /// Kills the server and starts another instance (a new `run_id`) on the same port from
    /// `snapshot`, as restoring a backup, or failing over to a replica that missed the last
    /// writes, does.
    pub fn restart_from(&mut self, snapshot: &[u8]) {
        self.kill();
        let file = self
            .dir
            .as_ref()
            .expect("a server started with a directory")
            .join("dump.rdb");
        std::fs::write(&file, snapshot).unwrap();
        self.spawn();
        let _ = std::fs::remove_file(&file);
    }

    /// Stops the server (`SIGSTOP`): connections stay open and nothing answers.
    pub fn pause(&mut self) {
        signal(self.pid(), "-STOP");
        self.paused = true;
    }

    /// Resumes a paused server (`SIGCONT`).
    pub fn resume(&mut self) {
        signal(self.pid(), "-CONT");
        self.paused = false;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sends `signal` (e.g. `-STOP`) to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// How long a new cluster may take to agree that every slot is served.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Three `redis-server` cluster nodes (primaries, no replicas) on free loopback ports, their
/// slots assigned by `redis-cli --cluster create`; all killed, and their directory removed, on
/// drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts the three nodes, creates the cluster and waits until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = new_dir("cluster");
        let nodes = (0..3)
            .map(|_| {
                let port = free_port();
                let mut node = RedisServer {
                    port,
                    child: None,
                    paused: false,
                    tls: None,
                    extra: vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        // The bus port is explicit: the default (port + 10000) may be above
                        // 65535 for a port picked from the ephemeral range.
                        "--cluster-port".into(),
                        free_port().to_string(),
                        "--cluster-config-file".into(),
                        dir.join(format!("nodes-{port}.conf")).display().to_string(),
                        "--dir".into(),
                        dir.display().to_string(),
                    ],
                    // The cluster removes its directory itself.
                    dir: None,
                };
                node.spawn();
                node
            })
            .collect();
        let cluster = Self { nodes, dir };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = redis_cli(
            &[
                &["--cluster", "create"][..],
                &addresses.iter().map(String::as_str).collect::<Vec<_>>(),
                &["--cluster-replicas", "0", "--cluster-yes"],
            ]
            .concat(),
        );
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let started = Instant::now();
        while !cluster.nodes.iter().all(|node| {
            String::from_utf8_lossy(
                &redis_cli(&["-p", &node.port.to_string(), "cluster", "info"]).stdout,
            )
            .contains("cluster_state:ok")
        }) {
            assert!(
                started.elapsed() < CLUSTER_TIMEOUT,
                "the Redis Cluster was not ok within {CLUSTER_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The nodes, in the order they were given to `--cluster create`.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `index`, to pause, resume or kill.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// Makes node `i` announce `ports[i]` to clients (a proxy in front of it) instead of its
    /// own, and waits until every node's `CLUSTER SLOTS` names only those ports.
    pub fn announce_ports(&self, ports: &[u16]) {
        for (index, port) in ports.iter().enumerate() {
            self.ok(
                index,
                &["config", "set", "cluster-announce-port", &port.to_string()],
            );
        }
        let started = Instant::now();
        while !(0..self.nodes.len()).all(|index| {
            let slots = self.cli(index, &["cluster", "slots"]);
            let named: Vec<u16> = slots
                .lines()
                .filter_map(|line| line.trim().parse::<u16>().ok())
                .filter(|number| {
                    self.nodes.iter().any(|n| n.port == *number) || ports.contains(number)
                })
                .collect();
            !named.is_empty() && named.iter().all(|port| ports.contains(port))
        }) {
            assert!(
                started.elapsed() < CLUSTER_TIMEOUT,
                "the cluster did not announce the new ports within {CLUSTER_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every node's `redis://127.0.0.1:<port>/`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The index of the node that owns `key`'s hash slot, and the slot, from `CLUSTER NODES`
    /// (`<id> <host:port@bus> <flags> … <first>-<last> …`).
    pub fn owner_of(&self, key: &str) -> (usize, u16) {
        let slot: u16 = self.cli(0, &["cluster", "keyslot", key]).parse().unwrap();
        let nodes = self.cli(0, &["cluster", "nodes"]);
        let owner_port = nodes
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let serves = fields.iter().skip(8).any(|range| {
                    let (first, last) = range.split_once('-').unwrap_or((range, range));
                    matches!((first.parse::<u16>(), last.parse::<u16>()),
                        (Ok(first), Ok(last)) if (first..=last).contains(&slot))
                });
                let port = fields.get(1)?.split('@').next()?.rsplit(':').next()?;
                serves.then(|| port.parse::<u16>().ok()).flatten()
            })
            .expect("a node serving the slot");
        let owner = self
            .nodes
            .iter()
            .position(|node| node.port == owner_port)
            .expect("the owner is one of the cluster's nodes");
        (owner, slot)
    }

    /// Moves `slot`, with its keys, from node `from` to node `to`, as resharding does
    /// (`IMPORTING`/`MIGRATING`, `MIGRATE`, then `SETSLOT … NODE` on every node): a client that
    /// cached the old owner is answered `MOVED` there from now on.
    pub fn move_slot(&self, slot: u16, from: usize, to: usize) {
        let slot = slot.to_string();
        let (from_id, to_id) = (
            self.cli(from, &["cluster", "myid"]),
            self.cli(to, &["cluster", "myid"]),
        );
        self.ok(to, &["cluster", "setslot", &slot, "importing", &from_id]);
        self.ok(from, &["cluster", "setslot", &slot, "migrating", &to_id]);
        let keys = self.cli(from, &["cluster", "getkeysinslot", &slot, "1000"]);
        let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
        if !keys.is_empty() {
            let port = self.nodes[to].port.to_string();
            let migrate = [
                &["migrate", "127.0.0.1", &port, "", "0", "5000", "keys"][..],
                &keys,
            ]
            .concat();
            self.ok(from, &migrate);
        }
        for node in [to, from]
            .into_iter()
            .chain((0..self.nodes.len()).filter(|&n| n != to && n != from))
        {
            self.ok(node, &["cluster", "setslot", &slot, "node", &to_id]);
        }
    }

    /// `redis-cli -p <node's port> args…`'s output, trimmed; a failed run fails the test.
    fn cli(&self, node: usize, args: &[&str]) -> String {
        let output = redis_cli(&[&["-p", &self.nodes[node].port.to_string()][..], args].concat());
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Like [`cli`](Self::cli), the output of a command that must answer `OK`.
    fn ok(&self, node: usize, args: &[&str]) {
        let answer = self.cli(node, args);
        assert_eq!(answer, "OK", "redis-cli {args:?}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `redis-cli` with `args`, failing the test with how to install it if it is missing.
pub fn redis_cli(args: &[&str]) -> std::process::Output {
    Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "could not run `redis-cli` ({error}): the Redis Cluster tests need it on PATH; \
                 install it with `apt-get install redis-tools` (Debian/Ubuntu)"
            )
        })
}

/// Calls `f` until it succeeds (the reconnection happens in the background after a failure).
pub async fn until_ok<T, F: std::future::Future<Output = Result<T, genlogs_auth::StoreError>>>(
    f: impl Fn() -> F,
) -> T {
    for _ in 0..500 {
        match f().await {
            Ok(value) => return value,
            Err(genlogs_auth::StoreError::Unreachable(_)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    panic!("Redis was not reachable again after 500 attempts");
}

#[cfg(feature = "redis")]
impl RedisServer {
    /// Runs `command` on a plain connection of its own, to see the keys as anyone with access
    /// to this Redis would.
    pub async fn query<T: ::redis::FromRedisValue>(&self, command: &::redis::Cmd) -> T {
        let mut connection = ::redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        command.query_async(&mut connection).await.unwrap()
    }
}

/// `error` is `NotDurable`: `acknowledged` of the `required` replicas acknowledged the save.
pub fn assert_not_durable(error: &genlogs_auth::StoreError, acknowledged: usize, required: usize) {
    assert!(
        matches!(
            error,
            genlogs_auth::StoreError::NotDurable { acknowledged: a, required: r, .. }
                if (*a, *r) == (acknowledged, required)
        ),
        "{error:?}"
    );
}

/// A store whose password is `hunter2` on loopback ports where nothing listens: its `Debug` shows
/// `addresses` but not the password, and its load, lock and replace fail as unreachable without
/// showing it, any of `urls`, or the tokens replaced. Returns those three errors.
#[cfg(feature = "redis")]
pub async fn assert_unreachable_and_silent(
    store: &genlogs_auth::RedisStore,
    addresses: &str,
    urls: &[&str],
) -> [genlogs_auth::StoreError; 3] {
    use genlogs_auth::TokenStore;
    let debug = format!("{store:?}");
    assert!(
        debug.contains(addresses) && !debug.contains("hunter2"),
        "{debug}"
    );
    let errors = [
        store.load().await.unwrap_err(),
        store.lock().await.unwrap_err(),
        store
            .replace(&super::store::tokens("rt-secret-9"))
            .await
            .unwrap_err(),
    ];
    let secrets = [&["hunter2", "rt-secret-9"][..], urls].concat();
    for error in &errors {
        assert!(
            matches!(error, genlogs_auth::StoreError::Unreachable(_)),
            "{error:?}"
        );
        super::leak::assert_no_leak(error, &secrets);
    }
    errors
}

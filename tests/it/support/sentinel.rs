//! A primary, one replica and three Redis Sentinels on free loopback ports (`redis-server
//! <config> --sentinel`, from a configuration this kit writes in a directory of its own), for
//! the tests of `RedisStore::sentinel`. Everything is killed, and the directory removed, on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{free_port, new_dir, redis_cli, RedisServer};

/// The service the sentinels monitor.
pub const SERVICE: &str = "svc";
/// How long the sentinels may take to see each other and the replica, or to fail over.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SentinelSet {
    /// The data nodes: `[0]` the first primary, `[1]` its replica.
    pub nodes: Vec<RedisServer>,
    sentinels: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl SentinelSet {
    /// Can this `redis-server` run as a sentinel? `None` if it can, else why not (the caller
    /// skips its test with that message).
    pub fn unavailable() -> Option<String> {
        // With no config file, sentinel mode exits at once saying it needs one: that answer
        // proves the binary has sentinel mode.
        match Command::new("redis-server")
            .arg("--sentinel")
            .stdin(Stdio::null())
            .output()
        {
            Err(error) => Some(format!("`redis-server` could not be run ({error})")),
            Ok(output) => {
                let said = String::from_utf8_lossy(&output.stdout).to_string()
                    + &String::from_utf8_lossy(&output.stderr);
                (!said.contains("Sentinel"))
                    .then(|| format!("this `redis-server` has no sentinel mode (it said: {said})"))
            }
        }
    }

    /// Starts the primary, its replica and three sentinels (quorum 2, down after 1 s), and
    /// waits until every sentinel knows the replica and the two other sentinels.
    pub fn start() -> Self {
        let dir = new_dir("sentinel");
        // The replica's full sync writes an RDB file into its directory: not the crate's.
        let dir_arg = dir.display().to_string();
        let primary = RedisServer::start_with(&["--dir", &dir_arg]);
        let replica = RedisServer::start_with(&[
            "--dir",
            &dir_arg,
            "--replicaof",
            "127.0.0.1",
            &primary.port().to_string(),
        ]);
        let mut set = Self {
            nodes: vec![primary, replica],
            sentinels: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port();
            let config = set.dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nsentinel resolve-hostnames no\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 5000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    dir = set.dir.display(),
                    primary = set.nodes[0].port(),
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel");
            set.sentinels.push((port, child));
        }
        set.until(
            "every sentinel knows the replica and the other sentinels",
            |set| {
                set.sentinels.iter().all(|(port, _)| {
                    let master = cli(*port, &["sentinel", "master", SERVICE]);
                    field(&master, "num-slaves") == Some("1")
                        && field(&master, "num-other-sentinels") == Some("2")
                })
            },
        );
        // The replica has the primary's data set and follows it.
        set.until("the replica to be in sync", |set| {
            cli(set.nodes[1].port(), &["info", "replication"]).contains("master_link_status:up")
        });
        set
    }

    /// The sentinels' `redis://127.0.0.1:<port>/`.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("redis://127.0.0.1:{port}/"))
            .collect()
    }

    /// The port of the primary the first sentinel names now.
    pub fn primary_port(&self) -> u16 {
        let answer = cli(
            self.sentinels[0].0,
            &["sentinel", "get-master-addr-by-name", SERVICE],
        );
        answer
            .lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
            .expect("a primary address")
    }

    /// Makes every sentinel monitor the primary at `127.0.0.1:port` instead (a proxy in front of
    /// it), declaring it down only after `down_after` of silence, and waits until each names
    /// that address and knows the replica and the other sentinels again.
    pub fn monitor_via(&self, port: u16, down_after: Duration) {
        let (port, down_after) = (port.to_string(), down_after.as_millis().to_string());
        for (sentinel, _) in &self.sentinels {
            for command in [
                &["sentinel", "remove", SERVICE][..],
                &["sentinel", "monitor", SERVICE, "127.0.0.1", &port, "2"],
                &[
                    "sentinel",
                    "set",
                    SERVICE,
                    "down-after-milliseconds",
                    &down_after,
                ],
                &["sentinel", "set", SERVICE, "failover-timeout", "5000"],
            ] {
                assert_eq!(cli(*sentinel, command).trim(), "OK", "{command:?}");
            }
        }
        self.until("the sentinels to monitor the new address", |set| {
            set.sentinels.iter().all(|(sentinel, _)| {
                let master = cli(*sentinel, &["sentinel", "master", SERVICE]);
                field(&master, "port") == Some(port.as_str())
                    && field(&master, "num-slaves") == Some("1")
                    && field(&master, "num-other-sentinels") == Some("2")
            })
        });
    }

    /// Asks one sentinel to fail over (`SENTINEL FAILOVER svc`).
    pub fn failover(&self) {
        let answer = cli(self.sentinels[1].0, &["sentinel", "failover", SERVICE]);
        assert_eq!(answer.trim(), "OK", "SENTINEL FAILOVER");
    }

    /// Waits until every sentinel names the node on `port` as primary and it says so itself.
    pub fn until_primary_is(&self, port: u16) {
        self.until("the sentinels to name the new primary", |set| {
            set.sentinels.iter().all(|(sentinel, _)| {
                cli(*sentinel, &["sentinel", "get-master-addr-by-name", SERVICE])
                    .lines()
                    .nth(1)
                    .is_some_and(|p| p.trim() == port.to_string())
            }) && cli(port, &["role"]).starts_with("master")
        });
    }

    /// Waits until the node on `port` has become a replica (a demoted primary).
    pub fn until_replica(&self, port: u16) {
        self.until("the old primary to be a replica", |_| {
            cli(port, &["role"]).starts_with("slave")
        });
    }

    fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < SETTLE_TIMEOUT,
                "gave up waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p <port> args…`'s output (empty if it failed: a dead node).
fn cli(port: u16, args: &[&str]) -> String {
    let output = redis_cli(&[&["-p", &port.to_string()][..], args].concat());
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The value after `name` in a flat `redis-cli` answer of alternating names and values.
fn field<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = answer.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next();
        }
    }
    None
}

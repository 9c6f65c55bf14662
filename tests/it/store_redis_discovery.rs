//! No plaintext by discovery: a Sentinel or a cluster seed on loopback that names a node on
//! another host (the documentation address 198.51.100.7) makes a store built without an
//! `*_allowing_plaintext` constructor refuse before any connection to it, with an error that
//! shows no secret. The Sentinel and the seed are a small fake Redis on loopback that answers
//! what discovery asks: no test connects anywhere but 127.0.0.1.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::leak::assert_no_leak;
use genlogs_auth::{RedisStore, StoreError, TokenStore};

const REMOTE: &str = "198.51.100.7";
const SENTINEL_PASSWORD: &str = "sentinel-secret-0451";
const PRIMARY_PASSWORD: &str = "primary-secret-9932";

/// A fake Redis on loopback: answers `SENTINEL GET-MASTER-ADDR-BY-NAME` and `CLUSTER SLOTS` with
/// [`REMOTE`], anything else with `+OK`, and records every command's name.
struct FakeRedis {
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
}

impl FakeRedis {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = commands.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    while let Some(command) = read_command(&mut read).await {
                        let name = command.join(" ").to_ascii_uppercase();
                        seen.lock().unwrap().push(name.clone());
                        let answer = if name.starts_with("SENTINEL GET-MASTER-ADDR-BY-NAME") {
                            format!("*2\r\n${}\r\n{REMOTE}\r\n$4\r\n6379\r\n", REMOTE.len())
                        } else if name.starts_with("CLUSTER SLOTS") {
                            format!(
                                "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n${}\r\n{REMOTE}\r\n:6379\r\n$2\r\nid\r\n",
                                REMOTE.len()
                            )
                        } else {
                            "+OK\r\n".to_string()
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, commands }
    }

    fn url(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/", self.port)
    }

    fn asked(&self, prefix: &str) -> bool {
        self.commands
            .lock()
            .unwrap()
            .iter()
            .any(|command| command.starts_with(prefix))
    }
}

/// One RESP command (an array of bulk strings), or `None` at the end of the stream.
async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> Option<Vec<String>> {
    let mut line = String::new();
    read.read_line(&mut line).await.ok()?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        read.read_line(&mut line).await.ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut bytes = vec![0; len + 2];
        read.read_exact(&mut bytes).await.ok()?;
        bytes.truncate(len);
        parts.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    Some(parts)
}

fn assert_refused(error: &StoreError, what: &str, opt_in: &str) {
    assert!(matches!(error, StoreError::Other(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(what), "{text}");
    assert!(text.contains(&format!("{REMOTE}:6379")), "{text}");
    assert!(
        text.contains("not loopback") && text.contains(opt_in),
        "{text}"
    );
    assert_no_leak(error, &[SENTINEL_PASSWORD, PRIMARY_PASSWORD]);
}

#[tokio::test]
async fn a_primary_that_sentinel_names_on_another_host_is_refused_before_any_connection() {
    let sentinel = FakeRedis::start().await;
    let store = RedisStore::sentinel(&[&sentinel.url(SENTINEL_PASSWORD)], "svc", "discovery")
        .unwrap()
        .with_primary_credentials(None, PRIMARY_PASSWORD)
        .unwrap();
    for _ in 0..2 {
        let error = store.load().await.unwrap_err();
        assert_refused(&error, "the primary", "sentinel_allowing_plaintext");
    }
    let lock = store.lock().await.unwrap_err();
    assert_refused(&lock, "the primary", "sentinel_allowing_plaintext");
    assert!(sentinel.asked("SENTINEL GET-MASTER-ADDR-BY-NAME SVC"));
    // The crate's own discovery, which connects to the primary to ask its `ROLE`, never ran.
    assert!(!sentinel.asked("SENTINEL MASTERS"), "discovery went on");
}

#[tokio::test]
async fn nodes_that_a_cluster_announces_on_another_host_are_refused_before_any_connection() {
    let seed = FakeRedis::start().await;
    let store = RedisStore::cluster(&[&seed.url(SENTINEL_PASSWORD)], "discovery").unwrap();
    let error = store.load().await.unwrap_err();
    assert_refused(&error, "the cluster node", "cluster_allowing_plaintext");
    assert!(seed.asked("CLUSTER SLOTS"));
}

//! A network path that can die silently: a TCP forwarder on loopback between one host and Redis
//! that, when [`cut`](PartitionProxy::cut), drops every byte in both directions without closing
//! any socket (as a lost NAT or conntrack entry, a load balancer or a VM migration does), and
//! when [`heal`](PartitionProxy::heal)ed forwards new connections again while the connections
//! that were silenced stay silent for good. Writes into a silenced connection still succeed
//! (the bytes are read and thrown away), so only a timeout can tell the client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One path between one host and one Redis; it runs in tasks of the runtime that started it.
pub struct PartitionProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    /// The silence flags of the connections open now (a cut silences all of them).
    open: Mutex<Vec<Arc<AtomicBool>>>,
    /// Connections accepted so far.
    accepted: AtomicU64,
}

impl PartitionProxy {
    /// Forwards connections made to a new loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                // Born silent during a cut: the host's connection attempt "succeeds" (loopback
                // accepts at once) but nothing ever comes back, as when SYNs are dropped.
                let silenced = Arc::new(AtomicBool::new(accepting.cut.load(Ordering::SeqCst)));
                {
                    let mut open = accepting.open.lock().unwrap();
                    open.retain(|flag| Arc::strong_count(flag) > 1);
                    open.push(silenced.clone());
                }
                tokio::spawn(forward(client, upstream, silenced));
            }
        });
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// The loopback port hosts connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A Redis URL for this path.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// The path dies silently: every open connection and every new one drops all bytes.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for flag in self.shared.open.lock().unwrap().iter() {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// New connections work again; the silenced ones stay silent.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// How many connections the host has opened through this path.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for PartitionProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies bytes both ways until either side closes; once `silenced`, reads and drops them.
async fn forward(client: TcpStream, upstream: SocketAddr, silenced: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, silenced.clone());
    let down = pump(server_read, client_write, silenced.clone());
    tokio::select! {
        () = up => {}
        () = down => {}
    }
    drop(silenced);
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silenced: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                // A silenced path carries no close either: the other side never learns.
                if silenced.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                return;
            }
            Ok(read) => read,
        };
        if silenced.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

//! The old scripted-server names, as thin adapters over the crate's one stand-in
//! (`genlogs_auth::testing::MockGenLogs`): a `Reply` is a scripted fault played for every
//! request.

#![allow(dead_code)] // each test binary uses part of it

use std::time::Duration;

use genlogs_auth::testing::{Fault, MockGenLogs};

/// A request as the server read it.
pub use genlogs_auth::testing::RecordedRequest as Request;

/// What the server answers to every request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Never answers (the connection stays open).
    Stall,
    /// Closes the connection without answering.
    Close,
    /// Declares `total` bytes, then sends one byte every `interval`.
    Trickle { interval: Duration, total: usize },
    /// A chunked body that does not end (1 GiB).
    Endless,
    /// A 200 with a `total`-byte body, streamed, declared by `content-length` or chunked.
    Huge { total: usize, chunked: bool },
    /// The inner reply, after a pause.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: impl ToString) -> Self {
        Fault::json(status, body).into()
    }

    pub fn text(status: u16, body: &str) -> Self {
        Fault::text(status, body).into()
    }

    /// Adds a header to a `Full` reply.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

impl From<Fault> for Reply {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Respond {
                status,
                headers,
                body,
            } => Reply::Full {
                status,
                headers,
                body,
            },
            other => panic!("no Reply for {other:?}"),
        }
    }
}

impl From<Reply> for Fault {
    fn from(reply: Reply) -> Self {
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => Fault::Respond {
                status,
                headers,
                body,
            },
            Reply::Stall => Fault::Stall,
            Reply::Close => Fault::Drop { rotate: false },
            Reply::Trickle { interval, total } => Fault::Trickle {
                interval,
                bytes: total,
            },
            Reply::Endless => Fault::Oversized {
                bytes: 1 << 30,
                chunked: true,
            },
            Reply::Huge { total, chunked } => Fault::Oversized {
                bytes: total,
                chunked,
            },
            Reply::Delayed(pause, inner) => Fault::delayed(pause, (*inner).into()),
        }
    }
}

/// A stand-in that plays one reply to every request.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub genlogs: MockGenLogs,
}

impl Server {
    /// Starts a stand-in that always gives the same reply.
    pub async fn always(reply: Reply) -> Self {
        let genlogs = MockGenLogs::start().await;
        genlogs.fail_always(reply.into());
        Self::over(genlogs)
    }

    /// Wraps a running stand-in.
    pub fn over(genlogs: MockGenLogs) -> Self {
        Self {
            addr: genlogs.addr(),
            genlogs,
        }
    }

    /// `http://127.0.0.1:PORT/auth`: the base URL a client points at.
    pub fn base_url(&self) -> String {
        self.genlogs.base_url()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.genlogs.requests()
    }
}

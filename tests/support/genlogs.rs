//! A stand-in for GenLogs on loopback: answers `POST /auth/token/refresh` the way the real service
//! does (rotating single-use refresh tokens, FastAPI and gateway error bodies), and serves one
//! protected endpoint that checks `Access-Token` and `x-api-key`.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{Duration, Utc};
use serde_json::json;

use super::server::{Reply, Request, Server};

/// How long issued access tokens live.
pub const ACCESS_LIFETIME: Duration = Duration::minutes(30);
/// How long issued refresh tokens live.
pub const REFRESH_LIFETIME: Duration = Duration::days(7);

/// The fake service's state.
pub struct FakeGenlogs {
    api_key: String,
    valid_refresh: Mutex<HashSet<String>>,
    valid_access: Mutex<HashSet<String>>,
    issued: AtomicU64,
    /// Every token ever issued, to check that none leaks.
    all_issued: Mutex<Vec<String>>,
    refreshes: AtomicU64,
    random: RandomState,
}

impl FakeGenlogs {
    pub fn new(api_key: &str) -> Self {
        Self {
            api_key: api_key.to_string(),
            valid_refresh: Mutex::default(),
            valid_access: Mutex::default(),
            issued: AtomicU64::new(0),
            all_issued: Mutex::default(),
            refreshes: AtomicU64::new(0),
            random: RandomState::new(),
        }
    }

    /// Starts the stand-in on a loopback port: the service's state, and the server.
    pub async fn serve(api_key: &str) -> (std::sync::Arc<Self>, Server) {
        let genlogs = std::sync::Arc::new(Self::new(api_key));
        let service = genlogs.clone();
        let server = Server::start(move |request| service.handle(request)).await;
        (genlogs, server)
    }

    /// Issues a token pair, as `POST /auth/token` would: `(access, refresh)`.
    pub fn create_tokens(&self) -> (String, String) {
        let access = self.new_token("at");
        let refresh = self.new_token("rt");
        self.valid_access.lock().unwrap().insert(access.clone());
        self.valid_refresh.lock().unwrap().insert(refresh.clone());
        (access, refresh)
    }

    /// Successful refreshes served so far.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::SeqCst)
    }

    fn new_token(&self, prefix: &str) -> String {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let a = self.random.hash_one((n, 1u8));
        let b = self.random.hash_one((n, 2u8));
        let token = format!("{prefix}{a:016x}{b:016x}");
        self.all_issued.lock().unwrap().push(token.clone());
        token
    }

    /// Every token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.all_issued.lock().unwrap().clone()
    }

    /// Whether `refresh` is the one valid refresh token right now.
    pub fn is_valid_refresh_token(&self, refresh: &str) -> bool {
        self.valid_refresh.lock().unwrap().contains(refresh)
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Reply {
        if request.header_values("x-api-key") != [self.api_key.as_str()] {
            return Reply::json(403, json!({ "message": "Forbidden" }));
        }
        match (request.method.as_str(), request.path()) {
            ("POST", "/auth/token/refresh") => self.refresh(request),
            ("GET", "/carriers/recommendations") => self.protected(request),
            _ => Reply::json(404, json!({ "detail": "Not Found" })),
        }
    }

    fn refresh(&self, request: &Request) -> Reply {
        let Some(token) = request.query("refresh_token") else {
            return Reply::json(
                422,
                json!({ "detail": [{ "type": "missing", "loc": ["query", "refresh_token"], "msg": "Field required", "input": null }] }),
            );
        };
        if !self.valid_refresh.lock().unwrap().remove(&token) {
            return Reply::json(401, json!({ "detail": "Invalid refresh token" }));
        }
        let (access, refresh) = self.create_tokens();
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let now = Utc::now();
        // GenLogs emits naive datetimes (no offset) meaning UTC.
        let naive = |at: chrono::DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        Reply::json(
            200,
            json!({
                "access_token_data": { "token": access, "expires": naive(now + ACCESS_LIFETIME) },
                "refresh_token_data": { "token": refresh, "expires": naive(now + REFRESH_LIFETIME) },
                "user_id": "user-42",
                "company_id": 7
            }),
        )
        .with_header("date", &now.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    }

    fn protected(&self, request: &Request) -> Reply {
        let access = request.header_values("access-token");
        match access.as_slice() {
            [token] if self.valid_access.lock().unwrap().contains(*token) => Reply::json(
                200,
                json!({ "carriers": [{ "name": "ACME Freight", "score": 0.93 }] }),
            ),
            _ => Reply::json(
                401,
                json!({ "detail": "Missing or incorrect Access-Token" }),
            ),
        }
    }
}

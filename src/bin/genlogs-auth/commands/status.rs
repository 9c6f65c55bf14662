//! `status`: what a store holds, read without contacting GenLogs, for people and monitoring.

use chrono::{DateTime, SecondsFormat, Utc};
use genlogs_auth::{
    store::NewTokensReason, store::TokenHealth, store::TokenState, StoredTokens, TokenStore,
};
use serde_json::{json, Value};

use crate::args::Global;
use crate::output::{paint, Paint};
use crate::{Failure, Outcome};

/// Tests set the time the report is made at (RFC 3339), so that golden outputs stay put.
const NOW_VAR: &str = "GENLOGS_AUTH_NOW";

/// The verdict, which is also the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Usable,
    CouldNotTell,
    NewTokensRequired,
}

impl Verdict {
    fn code(self) -> u8 {
        match self {
            Verdict::Usable => 0,
            Verdict::CouldNotTell => 1,
            Verdict::NewTokensRequired => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Usable => "usable",
            Verdict::CouldNotTell => "unknown",
            Verdict::NewTokensRequired => "new_tokens_required",
        }
    }
}

/// What the store's content means, as data: rendered as text or JSON.
struct Report {
    verdict: Verdict,
    state: &'static str,
    /// One sentence about the state (why dead, what is pending).
    detail: Option<String>,
    advice: Option<&'static str>,
    tokens: Option<StoredTokens>,
}

const RENEW: &str =
    "create new tokens (POST /auth/token with email and password) and run `genlogs-auth init --force`";

/// The report on `stored` at `now`: the library's [`TokenHealth`], the same rules the manager
/// applies before it sends anything, rendered for people and monitoring.
fn assess(stored: Option<StoredTokens>, now: DateTime<Utc>) -> Report {
    let health = TokenHealth::of(stored.as_ref(), now);
    let mark = stored.as_ref().map(|stored| stored.state());
    let dead_since = match mark {
        Some(TokenState::Dead { since, .. }) => Some(since),
        _ => None,
    };
    let (verdict, state, detail, advice) = match health {
        TokenHealth::Usable => (Verdict::Usable, "usable", None, None),
        TokenHealth::Refreshable => (
            Verdict::Usable,
            "usable",
            Some("no valid access token is stored: the next call refreshes".to_string()),
            None,
        ),
        TokenHealth::PossiblyRotated => (
            Verdict::CouldNotTell,
            "possibly_rotated",
            match mark {
                Some(TokenState::PossiblyRotated {
                    since,
                    attempts,
                    last_attempt,
                    ..
                }) => Some(format!(
                    "{attempts} refresh(es) sent since {} (the last at {}) got no answer yet: \
                     GenLogs may have rotated the token",
                    time(since),
                    time(last_attempt)
                )),
                _ => None,
            },
            Some("the next refresh tells; if it is rejected, new tokens are required"),
        ),
        TokenHealth::NewTokensRequired(reason) => (
            Verdict::NewTokensRequired,
            match (dead_since, reason) {
                (None, NewTokensReason::NoTokens) => "empty",
                (None, NewTokensReason::RefreshTokenExpired) => "expired",
                _ => "dead",
            },
            Some(dead_since.map_or_else(
                || reason.to_string(),
                |since| format!("since {}: {reason}", time(since)),
            )),
            Some(RENEW),
        ),
        _ => (Verdict::CouldNotTell, "unknown", None, None),
    };
    Report {
        verdict,
        state,
        detail,
        advice,
        tokens: stored,
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `in 29m 59s`, `expired 3d 2h ago`: the two largest units.
fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let span = seconds.unsigned_abs();
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(span, |left, &(size, unit)| {
            let n = *left / size;
            *left %= size;
            Some((n, unit))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    let span = if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    };
    if seconds >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn expiry_line(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        Some(at) if at > now => format!("expires {} ({})", time(at), relative(at, now)),
        Some(at) => format!("expired {} ({})", time(at), relative(at, now)),
        None => "expiry unknown".into(),
    }
}

fn human(store: &str, report: &Report, now: DateTime<Utc>, colour: bool) -> String {
    let verdict = match report.verdict {
        Verdict::Usable => paint("usable", Paint::Green, colour),
        Verdict::CouldNotTell => paint("could not tell", Paint::Yellow, colour),
        Verdict::NewTokensRequired => paint("new tokens required", Paint::Red, colour),
    };
    let mut lines = vec![
        format!("store:          {store}"),
        format!("status:         {verdict}"),
        format!("state:          {}", report.state.replace('_', " ")),
    ];
    if let Some(detail) = &report.detail {
        lines.push(format!("                {detail}"));
    }
    if let Some(tokens) = &report.tokens {
        let access = if tokens.access_token().is_some() {
            expiry_line(tokens.access_expires(), now)
        } else {
            "none stored (the first call refreshes)".into()
        };
        lines.push(format!("access token:   {access}"));
        lines.push(format!(
            "refresh token:  {}",
            expiry_line(tokens.refresh_expires(), now)
        ));
        let last = tokens.refreshed_at().map_or_else(
            || "never (seeded)".to_string(),
            |at| format!("{} ({})", time(at), relative(at, now)),
        );
        lines.push(format!("last refresh:   {last}"));
        lines.push(format!("version:        {}", tokens.version()));
    }
    if let Some(advice) = report.advice {
        lines.push(format!("what to do:     {advice}"));
    }
    lines.join("\n") + "\n"
}

fn as_json(store: &str, report: &Report, now: DateTime<Utc>) -> Value {
    let seconds_left = |at: Option<DateTime<Utc>>| at.map(|at| (at - now).num_seconds());
    let tokens = report.tokens.as_ref();
    json!({
        "store": store,
        "status": report.verdict.name(),
        "state": report.state,
        "detail": report.detail,
        "advice": report.advice,
        "now": time(now),
        "has_access_token": tokens.is_some_and(|t| t.access_token().is_some()),
        "access_expires": tokens.and_then(|t| t.access_expires()).map(time),
        "access_seconds_left": seconds_left(tokens.and_then(|t| t.access_expires())),
        "refresh_expires": tokens.and_then(|t| t.refresh_expires()).map(time),
        "refresh_seconds_left": seconds_left(tokens.and_then(|t| t.refresh_expires())),
        "refreshed_at": tokens.and_then(|t| t.refreshed_at()).map(time),
        "version": tokens.map(|t| t.version()),
    })
}

fn now() -> Result<DateTime<Utc>, Failure> {
    match std::env::var(NOW_VAR) {
        Ok(text) => DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| Failure::new(format!("{NOW_VAR} is not an RFC 3339 time: {e}"))),
        Err(_) => Ok(Utc::now()),
    }
}

pub async fn run(global: &Global, colour: bool) -> Result<Outcome, Failure> {
    let (url, store) = super::store(global)?;
    let now = now()?;
    let shown = url.display();
    let report = match store.load().await {
        Ok(stored) => assess(stored, now),
        Err(error) => {
            // Monitoring reads stdout: say "could not tell" there too, then fail with the cause.
            if global.json {
                let line = crate::output::one_line(&error);
                println!(
                    "{}",
                    json!({ "store": shown, "status": Verdict::CouldNotTell.name(), "error": line })
                );
            }
            return Err(Failure::from_error(&error, Verdict::CouldNotTell.code()));
        }
    };
    let text = if global.json {
        format!("{:#}\n", as_json(&shown, &report, now))
    } else {
        human(&shown, &report, now, colour)
    };
    Ok(Outcome {
        stdout: text,
        code: report.verdict.code(),
        rescue: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use genlogs_auth::{store::TokenState, RefreshToken};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn relative_times_use_the_two_largest_units() {
        let now = at("2026-11-26T10:00:00Z");
        assert_eq!(relative(at("2026-11-26T10:29:59Z"), now), "in 29m 59s");
        assert_eq!(relative(at("2026-12-03T10:00:00Z"), now), "in 7d");
        assert_eq!(relative(at("2026-11-26T09:58:00Z"), now), "2m ago");
        assert_eq!(relative(now, now), "in 0s");
    }

    #[test]
    fn each_state_maps_to_its_exit_code() {
        let now = at("2026-11-26T10:00:00Z");
        let mut tokens = StoredTokens::from_refresh_token(RefreshToken::new("rt"));
        assert_eq!(assess(None, now).verdict.code(), 2);
        assert_eq!(assess(Some(tokens.clone()), now).verdict.code(), 0);
        tokens = tokens.with_refresh_expires(Some(at("2026-11-26T09:00:00Z")));
        assert_eq!(assess(Some(tokens.clone()), now).state, "expired");
        tokens = tokens.with_refresh_expires(None);
        tokens = tokens.with_state(TokenState::PossiblyRotated {
            since: now,
            attempts: 1,
            last_attempt: now,
            deadline: None,
        });
        assert_eq!(assess(Some(tokens.clone()), now).verdict.code(), 1);
        tokens = tokens.with_state(TokenState::Dead {
            reason: NewTokensReason::RefreshTokenRejected,
            since: now,
        });
        assert_eq!(assess(Some(tokens), now).verdict.code(), 2);
    }
}

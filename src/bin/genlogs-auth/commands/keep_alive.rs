//! `keep-alive`: for cron. Renews the grant when its refresh token is inside the keep-alive
//! margin (the manager's own check, `TokenManager::renew_grant_if_due`), else does nothing, so a
//! service that sits idle longer than a refresh token lives keeps its grant.

use chrono::{DateTime, SecondsFormat, Utc};
use genlogs_auth::{manager::GrantRenewal, TokenManager, TokenStore};
use serde_json::json;

use crate::args::{Global, KeepAliveArgs};
use crate::{Failure, Outcome};

pub async fn run(global: &Global, args: &KeepAliveArgs) -> Result<Outcome, Failure> {
    let client = super::client(global)?;
    let (url, store) = super::store(global)?;
    let mut builder = TokenManager::builder(client, store.clone())
        // One process, one check: no fleet to spread out.
        .with_refresh_jitter(0.0);
    if let Some(margin) = args.margin {
        builder = builder.with_keep_alive_margin(margin);
    }
    let manager = builder.build();
    let mut result = manager.renew_grant_if_due().await;
    if crate::rescue::save_or_rescue(&manager, &url).await? {
        // Saved on a retry: the renewal happened, and its tokens are in the store now. Report
        // what the store holds; asking the manager again could renew a second time.
        let saved = store.load().await.ok().flatten();
        result = Ok(GrantRenewal::Renewed {
            refresh_expires: saved.and_then(|tokens| tokens.refresh_expires()),
        });
    }
    let renewal = result.map_err(|e| super::token_failure(&e))?;
    let time = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (action, when) = match &renewal {
        GrantRenewal::NotDue { renew_at } => ("not-due", Some(time(*renew_at))),
        GrantRenewal::Renewed { refresh_expires } => ("renewed", refresh_expires.map(time)),
        GrantRenewal::ExpiryUnknown => ("expiry-unknown", None),
        _ => ("unknown", None),
    };
    let stdout = if global.json {
        let key = if action == "not-due" {
            "renew_at"
        } else {
            "refresh_expires"
        };
        format!(
            "{}\n",
            json!({ "store": url.display(), "action": action, key: when })
        )
    } else {
        let when = when.unwrap_or_else(|| "unknown".to_string());
        match action {
            "not-due" => format!(
                "{}: not due; the grant is renewed from {when}\n",
                url.display()
            ),
            "renewed" => format!(
                "{}: renewed; the refresh token now expires {when}\n",
                url.display()
            ),
            _ => format!(
                "{}: the refresh token's expiry is unknown; nothing to keep alive by\n",
                url.display()
            ),
        }
    };
    Ok(Outcome {
        stdout,
        code: 0,
        rescue: None,
    })
}

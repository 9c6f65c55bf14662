//! `mock`: the crate's GenLogs stand-in on a port, for tests written in any language.

use std::io::Write;
use std::time::Duration;

use genlogs_auth::testing::MockGenLogs;
use serde_json::json;

use crate::args::{Global, MockArgs};
use crate::{Failure, Outcome};

pub async fn run(global: &Global, args: &MockArgs) -> Result<Outcome, Failure> {
    let mut builder = MockGenLogs::builder()
        .with_port(args.port)
        .with_access_lifetime(Duration::from_secs(args.access_lifetime))
        .with_refresh_lifetime(Duration::from_secs(args.refresh_lifetime))
        .with_revoke_family_on_reuse(!args.no_revoke_on_reuse);
    if let Some(key) =
        crate::secrets::optional_api_key(global.api_key_file.as_deref()).map_err(Failure::new)?
    {
        builder = builder.with_api_key(key.expose_secret());
    }
    let genlogs = builder
        .try_start()
        .await
        .map_err(|e| Failure::new(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let seeded = genlogs.issue_token_body();
    let refresh = seeded["refresh_token_data"]["token"]
        .as_str()
        .unwrap_or_default();
    // Printing these is the point: they are a local stand-in's, not GenLogs'.
    let text = if global.json {
        format!(
            "{}\n",
            json!({
                "base_url": genlogs.base_url(),
                "api_key": genlogs.api_key(),
                "protected_url": genlogs.protected_url(),
                "tokens": seeded,
            })
        )
    } else {
        format!(
            "GENLOGS_BASE_URL={}\nGENLOGS_API_KEY={}\nGENLOGS_REFRESH_TOKEN={refresh}\nGENLOGS_PROTECTED_URL={}\n",
            genlogs.base_url(),
            genlogs.api_key(),
            genlogs.protected_url()
        )
    };
    let mut stdout = std::io::stdout();
    // Flushed now: a test or script reads these lines while the stand-in keeps running.
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to stdout: {e}")))?;
    wait_for_shutdown().await;
    Ok(Outcome {
        stdout: String::new(),
        code: 0,
        rescue: None,
    })
}

/// Ctrl-C, or SIGTERM from a test harness or a service manager.
async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

//! The maintainer tools of `genlogs-auth`, kept out of every build of the library: the committed
//! snapshots ([`snapshots`]), the API change report ([`change_report`], [`diff`]), the upstream
//! variants CI builds ([`variants`]) and the one-command spec update ([`update`]). They run the
//! same pipeline as build.rs (`genlogs-auth-codegen`), so what review reads is what ships.
//!
//! ```sh
//! cargo run -p genlogs-auth-tools -- update NEW.json
//! cargo run -p genlogs-auth-tools -- diff [--json | --markdown] [--fail-on-breaking] OLD NEW
//! cargo run -p genlogs-auth-tools -- variants openapi.json OUT_DIR
//! ```

#![deny(missing_docs, missing_debug_implementations)]

pub mod cli;
pub mod diff;
pub mod surface;
pub mod update;
pub mod variants;

use genlogs_auth_codegen::{contract, generate, normalize, SpecError};

/// The three committed snapshots of one spec: what review reads when the spec changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshots {
    /// The generated Rust code, as prettyplease formats it (`codegen.rs`).
    pub code: String,
    /// The corrected document, pretty-printed in upstream's key order (`normalized.json`).
    pub normalized: String,
    /// Operations, parameters, statuses, fields and quirk-fix outcomes (`surface.txt`).
    pub surface: String,
}

/// Runs the whole pipeline on a spec's text, as build.rs does: code is generated, then the
/// hand-written layer's contract checked, before anything is compiled.
pub fn snapshots(text: &str) -> Result<Snapshots, SpecError> {
    let normalized = normalize(text)?;
    let code = generate(&normalized.document)?;
    contract::check(&normalized.document)?;
    Ok(Snapshots {
        code,
        surface: surface::Surface::of_normalized(&normalized).render(&normalized.fixes),
        normalized: normalized.to_pretty_json(),
    })
}

/// The change report between two specs' texts, each corrected by the quirk pass first.
pub fn change_report(old: &str, new: &str) -> Result<Vec<diff::Change>, SpecError> {
    let surface = |text: &str| normalize(text).map(|n| surface::Surface::of_normalized(&n));
    Ok(diff::compare(&surface(old)?, &surface(new)?))
}

//! The spec pipeline (the `genlogs-auth-codegen` crate, the same code build.rs runs, with the
//! snapshots and variants of `genlogs-auth-tools`) on this
//! crate's `openapi.json`: the whole pipeline on the embedded spec and broken ones, the committed
//! snapshots, and regeneration on the upstream variants with their change reports. The
//! pipeline's own unit tests are in `codegen/`.
//!
//! Rewrite the snapshots with: `EXPECTORATE=overwrite cargo test --test codegen`

use genlogs_auth_codegen as codegen;
use genlogs_auth_tools as tools;

mod pipeline;
mod properties;
mod snapshots;
mod variants;

use std::path::{Path, PathBuf};

/// `openapi.json` as committed: upstream's document.
fn upstream() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")).unwrap()
}

/// A scratch directory under cargo's per-target temp dir.
fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

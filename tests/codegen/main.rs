//! The spec pipeline (`src/codegen/`, the same files build.rs compiles): its unit tests, the whole
//! pipeline on the embedded spec and broken ones, the committed snapshots, and regeneration on
//! variants of the spec with their change reports.
//!
//! Rewrite the snapshots with: `EXPECTORATE=overwrite cargo test --test codegen`

#[path = "../../src/codegen/mod.rs"]
mod codegen;

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

//! The committed snapshots in `tests/snapshots/` must match what the pipeline produces from
//! `openapi.json`, so that every spec or generator change shows up in review as a diff.
//!
//! Rewrite them with: `EXPECTORATE=overwrite cargo test --test codegen`

use std::path::Path;

use crate::{codegen, upstream};

fn snapshots() -> codegen::Snapshots {
    codegen::snapshots(&upstream()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn generated_code_snapshot_is_current() {
    expectorate::assert_contents("tests/snapshots/codegen.rs", &snapshots().code);
}

#[test]
fn normalized_spec_snapshot_is_current() {
    expectorate::assert_contents("tests/snapshots/normalized.json", &snapshots().normalized);
}

#[test]
fn api_surface_snapshot_is_current() {
    expectorate::assert_contents("tests/snapshots/surface.txt", &snapshots().surface);
}

#[test]
fn the_build_generates_exactly_the_committed_code() {
    let built = std::fs::read_to_string(Path::new(env!("OUT_DIR")).join("codegen.rs")).unwrap();
    assert_eq!(
        built,
        snapshots().code,
        "build.rs and the snapshot pipeline disagree"
    );
}

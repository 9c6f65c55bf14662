//! The code progenitor generates from the corrected `openapi.json` (build.rs runs the
//! `genlogs-auth-codegen` pipeline, `codegen/`), included in this one private module. The
//! committed copy in `tests/snapshots/codegen.rs` is what review reads.

#![allow(
    missing_docs,
    missing_debug_implementations,
    unused_imports,
    unreachable_pub, // progenitor writes `pub`; what users reach is re-exported in `raw`
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/codegen.rs"));

//! The code progenitor generates from the corrected `openapi.json` (see `build.rs`), included in
//! this one private module. The committed copy in `tests/snapshots/` is what review reads.

#![allow(
    missing_docs,
    missing_debug_implementations,
    unused_imports,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/codegen.rs"));

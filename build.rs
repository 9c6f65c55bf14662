//! Generates the refresh client from `openapi.json`: quirk-fix pass → progenitor → prettyplease →
//! `$OUT_DIR/codegen.rs`, included once by `src/generated.rs`. The pipeline itself is
//! `src/codegen/`, shared with the tests.

#[path = "src/codegen/mod.rs"]
mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed=openapi.json");
    println!("cargo::rerun-if-changed=src/codegen");
    println!("cargo::rerun-if-changed=build.rs");
    let dirs =
        ["CARGO_MANIFEST_DIR", "OUT_DIR"].map(|name| std::env::var_os(name).map(PathBuf::from));
    let [Some(manifest_dir), Some(out_dir)] = dirs else {
        eprintln!("error: cargo did not set CARGO_MANIFEST_DIR and OUT_DIR");
        return ExitCode::FAILURE;
    };
    match codegen::build(&manifest_dir, &out_dir) {
        Ok(warnings) => {
            for warning in warnings {
                println!("cargo::warning={warning}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            // One readable line; cargo shows the build script's stderr when it fails.
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

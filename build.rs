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
    if std::env::var_os("CARGO_FEATURE_HTTPMOCK").is_some() {
        if let Err(message) = write_httpmock(&manifest_dir, &out_dir) {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    }
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

/// The `httpmock` feature: progenitor's typed mock extensions (`MockServerExt`) for the same
/// corrected spec, written to `$OUT_DIR/httpmock.rs` and included by `src/httpmock.rs`.
fn write_httpmock(manifest_dir: &std::path::Path, out_dir: &std::path::Path) -> Result<(), String> {
    let spec_path = manifest_dir.join("openapi.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let normalized = codegen::normalize(&text).map_err(|e| e.to_string())?;
    let spec = codegen::to_openapi(&normalized.document).map_err(|e| e.to_string())?;
    let tokens = progenitor::Generator::new(&codegen::generation_settings())
        .httpmock(&spec, "crate::generated")
        .map_err(|e| format!("progenitor could not generate the httpmock module: {e}"))?;
    let file = syn::parse2::<syn::File>(tokens)
        .map_err(|e| format!("progenitor's httpmock module does not parse: {e}"))?;
    let out_path = out_dir.join("httpmock.rs");
    std::fs::write(&out_path, prettyplease::unparse(&file))
        .map_err(|e| format!("cannot write {}: {e}", out_path.display()))
}

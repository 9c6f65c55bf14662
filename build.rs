//! Generates the refresh client from `openapi.json`: quirk-fix pass → progenitor → prettyplease →
//! `$OUT_DIR/codegen.rs`, included once by `src/generated.rs`.

#[path = "src/codegen/mod.rs"]
mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One readable line on stderr; cargo shows it with the failed build.
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let spec_path = manifest_dir.join("openapi.json");
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed={}", manifest_dir.join("src/codegen").display());
    println!("cargo::rerun-if-changed=build.rs");

    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let normalized = codegen::normalize(&text).map_err(|e| e.to_string())?;
    for fix in normalized.fixes.iter().filter(|fix| !fix.applied()) {
        println!(
            "cargo::warning=quirk fix `{}` found nothing to fix in openapi.json: upstream may have \
             corrected it; check the spec diff and retire the fix",
            fix.quirk.name()
        );
    }
    let code = codegen::generate(&normalized.document).map_err(|e| e.to_string())?;

    let out_path = PathBuf::from(env("OUT_DIR")?).join("codegen.rs");
    std::fs::write(&out_path, code).map_err(|e| format!("cannot write {}: {e}", out_path.display()))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

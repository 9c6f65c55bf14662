//! Generates the client from `openapi.json` with the spec pipeline (the `genlogs-auth-codegen`
//! crate, `codegen/`) into `$OUT_DIR/codegen.rs`, included once by `src/generated.rs`; with the
//! `httpmock` feature, also progenitor's typed mocks into `$OUT_DIR/httpmock.rs`.

fn main() -> std::process::ExitCode {
    // cargo reruns this script when the codegen crate changes; the spec is the one other input.
    println!("cargo::rerun-if-changed=openapi.json");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_HTTPMOCK").is_some() {
        if let Err(message) = write_httpmock() {
            eprintln!("error: {message}");
            return std::process::ExitCode::FAILURE;
        }
    }
    genlogs_auth_codegen::build_script()
}

/// The `httpmock` feature: `MockServerExt` for the same corrected spec, included by
/// `src/httpmock.rs`.
fn write_httpmock() -> Result<(), String> {
    let dirs = ["CARGO_MANIFEST_DIR", "OUT_DIR"].map(std::env::var_os);
    let [Some(manifest_dir), Some(out_dir)] = dirs else {
        return Err("cargo did not set CARGO_MANIFEST_DIR and OUT_DIR".into());
    };
    let spec_path = std::path::Path::new(&manifest_dir).join("openapi.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let normalized = genlogs_auth_codegen::normalize(&text).map_err(|e| e.to_string())?;
    let code =
        genlogs_auth_codegen::generate::generate_httpmock(&normalized.document, "crate::generated")
            .map_err(|e| e.to_string())?;
    let out_path = std::path::Path::new(&out_dir).join("httpmock.rs");
    std::fs::write(&out_path, code).map_err(|e| format!("cannot write {}: {e}", out_path.display()))
}

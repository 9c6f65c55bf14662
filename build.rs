//! Generates the client from `openapi.json` with the spec pipeline (the `genlogs-auth-codegen`
//! crate, `codegen/`) into `$OUT_DIR/codegen.rs`, included once by `src/generated.rs`.

fn main() -> std::process::ExitCode {
    // cargo reruns this script when the codegen crate changes; the spec is the one other input.
    println!("cargo::rerun-if-changed=openapi.json");
    println!("cargo::rerun-if-changed=build.rs");
    genlogs_auth_codegen::build_script()
}

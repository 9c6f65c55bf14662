//! The API change report: compares two versions of GenLogs' spec, each after the quirk-fix pass,
//! and classes every change as breaking for a client or not (oasdiff's rules).
//!
//! ```sh
//! git show main:openapi.json > /tmp/openapi.main.json
//! cargo run -p genlogs-auth-codegen --bin spec-diff -- /tmp/openapi.main.json openapi.json
//! cargo run -p genlogs-auth-codegen --bin spec-diff -- --markdown /tmp/openapi.main.json openapi.json
//! cargo run -p genlogs-auth-codegen --bin spec-diff -- --json --fail-on-breaking OLD NEW
//! ```
//!
//! Exit status: 0, or 1 with `--fail-on-breaking` when a change is breaking, or 2 when a
//! document cannot be read or corrected (the message names the JSON path).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (status, output) = genlogs_auth_codegen::cli::spec_diff(&args, |path| {
        if path == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read stdin: {e}"))
        } else {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
        }
    });
    if status == 2 {
        eprint!("{output}");
    } else {
        print!("{output}");
    }
    ExitCode::from(status)
}

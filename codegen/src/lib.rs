//! The spec pipeline of `genlogs-auth`: GenLogs' `openapi.json` → quirk fixes and 3.1 → 3.0
//! translations → the hand-written layer's contract → progenitor → prettyplease.
//!
//! It is the library's build-dependency ([`build_script`]), so it holds only what a build needs.
//! The committed snapshots, the change report, the upstream variants and the `update` command
//! live in the `genlogs-auth-tools` crate (`tools/`), which builds never compile; it runs this
//! same pipeline, so the code the library ships and what review reads and compares agree.

#![deny(missing_docs, missing_debug_implementations)]

pub mod contract;
pub mod generate;
pub mod json_path;
pub mod quirks;
pub mod walk;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

pub use generate::generate;
pub use json_path::JsonPath;
pub use quirks::{FixReport, Kind, Quirk};

/// A spec document the pipeline cannot turn into code: says where and what.
#[derive(Debug)]
pub struct SpecError {
    /// Where in the document the problem is, as a JSONPath (`$.paths['/token/refresh'].post`).
    pub path: JsonPath,
    /// What is wrong there, and what to do about it.
    pub message: String,
}

impl SpecError {
    /// An error at `path`.
    pub fn new(path: JsonPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "openapi.json at {}: {}", self.path, self.message)
    }
}

impl std::error::Error for SpecError {}

/// The document after the quirk pass, with what each fix did.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The corrected document, as JSON (key order kept from upstream).
    pub document: Value,
    /// One report per fix, in the order they ran.
    pub fixes: Vec<FixReport>,
}

impl Normalized {
    /// The corrected document, pretty-printed: the committed `normalized.json` snapshot.
    pub fn to_pretty_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.document).expect("a Value always serializes");
        text.push('\n');
        text
    }
}

/// Parses the upstream text and runs every quirk fix on it.
pub fn normalize(text: &str) -> Result<Normalized, SpecError> {
    let mut document: Value = serde_json::from_str(text).map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!(
                "not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let fixes = quirks::apply_all(&mut document)?;
    Ok(Normalized { document, fixes })
}

/// What build.rs does, as a function the tests can call: reads `openapi.json` under
/// `manifest_dir`, writes `codegen.rs` under `out_dir`, and returns the cargo warnings to print
/// (one per quirk fix that found nothing to fix).
pub fn build(manifest_dir: &Path, out_dir: &Path) -> Result<Vec<String>, String> {
    let spec_path = manifest_dir.join("openapi.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let normalized = normalize(&text).map_err(|e| e.to_string())?;
    let code = generate(&normalized.document).map_err(|e| e.to_string())?;
    contract::check(&normalized.document).map_err(|e| e.to_string())?;
    let out_path = out_dir.join("codegen.rs");
    std::fs::write(&out_path, code)
        .map_err(|e| format!("cannot write {}: {e}", out_path.display()))?;
    Ok(normalized
        .fixes
        .iter()
        .filter(|fix| fix.quirk.kind() == Kind::Quirk && !fix.applied())
        .map(|fix| {
            format!(
                "quirk fix `{}` found nothing to fix in openapi.json: upstream may have corrected \
                 it; check the spec diff and retire the fix",
                fix.quirk.name()
            )
        })
        .collect())
}

/// The whole of build.rs: [`build`] with the directories cargo gives, its warnings printed as
/// cargo warnings, and a failure printed as one readable line (cargo shows a failing build
/// script's stderr).
pub fn build_script() -> ExitCode {
    let dirs = ["CARGO_MANIFEST_DIR", "OUT_DIR"].map(std::env::var_os);
    let [Some(manifest_dir), Some(out_dir)] = dirs else {
        eprintln!("error: cargo did not set CARGO_MANIFEST_DIR and OUT_DIR");
        return ExitCode::FAILURE;
    };
    match build(Path::new(&manifest_dir), Path::new(&out_dir)) {
        Ok(warnings) => {
            for warning in warnings {
                println!("cargo::warning={warning}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

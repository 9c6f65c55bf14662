//! The `diff` command of the `genlogs-auth-tools` binary, run for real on this repository's `openapi.json` and one of its
//! variants; its output is compared with the golden files in `tests/golden/`.
//!
//! Rewrite them with: `EXPECTORATE=overwrite cargo test -p genlogs-auth-tools --test spec_diff`

use std::path::{Path, PathBuf};
use std::process::Command;

use genlogs_auth_tools::variants;

/// The repository's `openapi.json`, and a document with two of its variants' changes: `POST /token`
/// added (not breaking) and `company_id` removed (breaking). Written once: the tests run in
/// parallel, and one must never read the file while another writes it.
fn documents() -> (PathBuf, PathBuf) {
    static DOCUMENTS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    DOCUMENTS.get_or_init(write_documents).clone()
}

fn write_documents() -> (PathBuf, PathBuf) {
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    let text = std::fs::read_to_string(&upstream).unwrap();
    let all = variants::all(&text).unwrap();
    let text_of = |name: &str| {
        let variant = all.iter().find(|v| v.name == name).unwrap();
        serde_json::from_str::<serde_json::Value>(&variant.text).unwrap()
    };
    let mut both = text_of("required-field-removed");
    both["paths"]["/token"] = text_of("create-token-added")["paths"]["/token"].clone();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spec-diff");
    std::fs::create_dir_all(&dir).unwrap();
    let new = dir.join("new.json");
    std::fs::write(&new, serde_json::to_string_pretty(&both).unwrap()).unwrap();
    (upstream, new)
}

fn spec_diff(args: &[&str]) -> (i32, String, String) {
    let (old, new) = documents();
    let output = Command::new(env!("CARGO_BIN_EXE_genlogs-auth-tools"))
        .arg("diff")
        .args(args)
        .arg(old)
        .arg(new)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_text_report_lists_breaking_changes_first() {
    let (status, stdout, stderr) = spec_diff(&[]);
    assert_eq!((status, stderr.as_str()), (0, ""));
    expectorate::assert_contents("tests/golden/report.txt", &stdout);
}

#[test]
fn the_markdown_report_is_a_table_for_a_pull_request() {
    let (status, stdout, _) = spec_diff(&["--markdown"]);
    assert_eq!(status, 0);
    expectorate::assert_contents("tests/golden/report.md", &stdout);
}

#[test]
fn the_json_report_for_tools_and_the_breaking_exit_status() {
    let (status, stdout, _) = spec_diff(&["--json", "--fail-on-breaking"]);
    assert_eq!(status, 1, "a breaking change with --fail-on-breaking");
    expectorate::assert_contents("tests/golden/report.json", &stdout);
}

#[test]
fn a_document_that_cannot_be_read_exits_2_on_stderr() {
    let output = Command::new(env!("CARGO_BIN_EXE_genlogs-auth-tools"))
        .args(["diff", "/nonexistent/old.json", "/nonexistent/new.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot read /nonexistent/old.json: "),
        "{stderr}"
    );
}

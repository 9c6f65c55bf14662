//! `update NEW.json` on a scratch copy of the crate's spec: an optional parameter, a removed
//! field, a contract break and a truncated file, each with what must follow.

use std::path::{Path, PathBuf};

use genlogs_auth_tools::update::{run, SNAPSHOTS};
use genlogs_auth_tools::variants;

/// A scratch crate root holding this repository's `openapi.json` and a manifest at `version`.
fn scratch(name: &str, version: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("update-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("tests/snapshots")).unwrap();
    std::fs::copy(upstream_path(), root.join("openapi.json")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[package]\nname = \"genlogs-auth\"\nversion = \"{version}\"\n"),
    )
    .unwrap();
    root
}

fn upstream_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")
}

/// The variant's document, written next to the scratch root.
fn variant(root: &Path, name: &str) -> PathBuf {
    let upstream = std::fs::read_to_string(upstream_path()).unwrap();
    let all = variants::all(&upstream).unwrap();
    let text = &all.iter().find(|v| v.name == name).unwrap().text;
    let path = root.with_extension(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    path
}

fn update(root: &Path, new: &Path) -> (u8, String) {
    run(&[new.display().to_string()], root)
}

/// `update` of a fresh scratch crate at 0.2.0 to the variant `name`: the scratch root, the
/// variant's document, and the exit status and output.
fn update_to_variant(name: &str) -> (PathBuf, PathBuf, u8, String) {
    let root = scratch(name, "0.2.0");
    let new = variant(&root, name);
    let (status, out) = update(&root, &new);
    (root, new, status, out)
}

/// Asserts that `text` (the command's output, a report, generated code) contains `part`.
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "no {part:?} in:\n{text}");
}

/// Asserts that the scratch crate's `openapi.json` is, byte for byte, the file at `expected`.
fn assert_spec_is(root: &Path, expected: &Path) {
    assert_eq!(
        std::fs::read(root.join("openapi.json")).unwrap(),
        std::fs::read(expected).unwrap()
    );
}

#[test]
fn an_optional_parameter_updates_everything_and_needs_a_patch_release() {
    let (root, new, status, out) = update_to_variant("optional-query-parameter");
    assert_eq!(status, 0, "{out}");
    // Dropped in unedited.
    assert_spec_is(&root, &new);
    for snapshot in SNAPSHOTS {
        assert!(root.join(snapshot).exists(), "{snapshot}");
    }
    let code = std::fs::read_to_string(root.join(SNAPSHOTS[0])).unwrap();
    assert_contains(&code, "scope: Option<&'a str>");
    assert_contains(&code, "pub async fn refresh_tokens_required<'a>(");
    let report = std::fs::read_to_string(root.join("target/spec-update/report.md")).unwrap();
    assert_contains(&report, "optional-parameter-added");
    assert_contains(&out, "breaking: no; version bump from 0.2.0: patch");
}

#[test]
fn a_removed_field_is_breaking_and_needs_a_minor_release_before_1_0() {
    let (_, _, status, out) = update_to_variant("required-field-removed");
    assert_eq!(status, 0, "{out}");
    assert_contains(&out, "BREAKING response-field-removed");
    assert_contains(&out, "breaking: yes; version bump from 0.2.0: minor");
}

#[test]
fn a_contract_break_exits_1_naming_the_file_to_edit() {
    let root = scratch("contract", "0.2.0");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(upstream_path()).unwrap()).unwrap();
    // The token fields themselves changed (a renamed operationId no longer needs an edit: the
    // layer finds the operation by method and path).
    doc["components"]["schemas"]["AccessTokenSchema"]["required"] = serde_json::json!(["token"]);
    let new = root.with_extension("optional-expires.json");
    std::fs::write(&new, doc.to_string()).unwrap();
    let (status, out) = update(&root, &new);
    assert_eq!(status, 1, "{out}");
    assert_contains(&out, "hand edit needed");
    assert_contains(
        &out,
        "$.components.schemas.AccessTokenSchema.properties.expires",
    );
    assert_contains(&out, "src/session.rs");
    // The document is in place, the snapshots untouched: the edit is the one step left.
    assert_spec_is(&root, &new);
    assert!(!root.join(SNAPSHOTS[0]).exists());
}

#[test]
fn a_file_that_is_not_json_changes_nothing() {
    let (root, _, status, out) = update_to_variant("truncated");
    assert_eq!(status, 2, "{out}");
    assert_contains(&out, "nothing was changed");
    assert_spec_is(&root, &upstream_path());
}

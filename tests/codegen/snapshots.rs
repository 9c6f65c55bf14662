//! The committed snapshots in `tests/snapshots/` must match what the pipeline produces from
//! `openapi.json`, so that every spec or generator change shows up in review as a diff. A stale
//! one fails with its diff and the one command that rewrites them all.

use std::path::Path;

use crate::{tempdir, tools, upstream};

/// The one command that rewrites every snapshot.
const REFRESH: &str = "EXPECTORATE=overwrite cargo test --test codegen";

fn snapshots() -> tools::Snapshots {
    tools::snapshots(&upstream()).unwrap_or_else(|e| panic!("{e}"))
}

/// `expectorate::assert_contents` (which prints the diff, and rewrites the file under
/// `EXPECTORATE=overwrite`), failing with the command to run rather than only the variable.
fn assert_snapshot(path: &Path, actual: &str) {
    let checked = std::panic::catch_unwind(|| expectorate::assert_contents(path, actual));
    if checked.is_err() {
        panic!(
            "the snapshot {} is stale (diff above); if the change is intended, refresh the \
             snapshots with:\n    {REFRESH}",
            path.display()
        );
    }
}

#[test]
fn generated_code_snapshot_is_current() {
    assert_snapshot(Path::new("tests/snapshots/codegen.rs"), &snapshots().code);
}

#[test]
fn normalized_spec_snapshot_is_current() {
    assert_snapshot(
        Path::new("tests/snapshots/normalized.json"),
        &snapshots().normalized,
    );
}

#[test]
fn api_surface_snapshot_is_current() {
    assert_snapshot(
        Path::new("tests/snapshots/surface.txt"),
        &snapshots().surface,
    );
}

#[test]
fn a_stale_snapshot_fails_naming_the_command_that_refreshes_it() {
    let path = tempdir("stale-snapshot").join("surface.txt");
    std::fs::write(&path, "operation POST /old\n").unwrap();
    let failure = std::panic::catch_unwind(|| assert_snapshot(&path, "operation POST /new\n"));
    if std::env::var("EXPECTORATE").as_deref() == Ok("overwrite") {
        // Refreshing: the helper rewrote the file instead of failing.
        assert!(failure.is_ok());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "operation POST /new\n"
        );
        return;
    }
    let message = *failure.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("surface.txt is stale"), "{message}");
    assert!(message.ends_with(&format!("\n    {REFRESH}")), "{message}");
}

#[test]
fn the_build_generates_exactly_the_committed_code() {
    let built = std::fs::read_to_string(Path::new(env!("OUT_DIR")).join("codegen.rs")).unwrap();
    assert_eq!(
        built,
        snapshots().code,
        "build.rs and the snapshot pipeline disagree"
    );
}

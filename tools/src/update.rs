//! `update NEW.json`: a spec update in one command. It drops upstream's document in unedited
//! (`openapi.json`), regenerates through the same pipeline as build.rs, rewrites the three
//! committed snapshots (`tests/snapshots/codegen.rs`, `normalized.json`, `surface.txt`), writes
//! the markdown change report for the pull request, and says whether the change is breaking and
//! which version bump it needs. Where a hand edit is needed (the hand-written layer's contract,
//! or a construct the pipeline cannot translate), it exits 1 with the message that names the
//! JSON path and the file to change; the document is in place and the report written, so the
//! edit is the only step left. A file that is not JSON is refused and nothing changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::diff::{render_markdown, render_text, Change};

/// How to call `update`.
pub const USAGE: &str = "usage: genlogs-auth-tools update NEW.json [--report PATH]";

/// The snapshots `update` rewrites, relative to the crate root.
pub const SNAPSHOTS: [&str; 3] = [
    "tests/snapshots/codegen.rs",
    "tests/snapshots/normalized.json",
    "tests/snapshots/surface.txt",
];

/// The version bump a set of changes needs, for a crate at `version` (`major.minor.patch`):
/// before 1.0 a breaking change bumps the minor version and anything else the patch; from 1.0 a
/// breaking change bumps the major, an addition the minor.
pub fn bump(version: &str, changes: &[Change]) -> &'static str {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    let breaking = changes.iter().any(|c| c.breaking);
    match (changes.is_empty(), breaking, major) {
        (true, _, _) => "none (no API change)",
        (_, true, Some(0)) => "minor (0.x: a breaking change bumps the minor version)",
        (_, true, _) => "major",
        (_, false, Some(0)) => "patch",
        (_, false, _) => "minor",
    }
}

/// The `update` command in the crate at `root`: returns the exit status (0 done; 1 a hand edit
/// is needed; 2 bad arguments or a file that cannot be read) and what to print.
pub fn run(args: &[String], root: &Path) -> (u8, String) {
    let (mut new, mut report) = (None, root.join("target/spec-update/report.md"));
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--report" => match args.next() {
                Some(path) => report = PathBuf::from(path),
                None => return (2, format!("--report needs a path\n{USAGE}\n")),
            },
            "-h" | "--help" => return (0, format!("{USAGE}\n")),
            flag if flag.starts_with("--") => {
                return (2, format!("unknown option {flag}\n{USAGE}\n"))
            }
            path if new.is_none() => new = Some(PathBuf::from(path)),
            _ => return (2, format!("{USAGE}\n")),
        }
    }
    let Some(new) = new else {
        return (2, format!("{USAGE}\n"));
    };
    match update(&new, root, &report) {
        Ok(out) => out,
        Err(message) => (2, format!("error: {message}\n")),
    }
}

fn update(new: &Path, root: &Path, report: &Path) -> Result<(u8, String), String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let write = |path: &Path, text: &str| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let spec = root.join("openapi.json");
    let old = read(&spec)?;
    let text = read(new)?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(format!(
            "{} is not JSON (line {}, column {}): {e}; nothing was changed",
            new.display(),
            e.line(),
            e.column()
        ));
    }
    // Upstream's bytes, unedited: the committed document is what GenLogs published.
    write(&spec, &text)?;
    let mut out = format!("openapi.json: replaced by {}\n", new.display());
    let changes = match crate::change_report(&old, &text) {
        Ok(changes) => changes,
        Err(e) => {
            let _ = writeln!(out, "hand edit needed: {e}");
            return Ok((1, out));
        }
    };
    write(report, &render_markdown(&changes))?;
    out.push_str(&render_text(&changes));
    let _ = writeln!(
        out,
        "change report (markdown, for the pull request): {}",
        report.display()
    );
    let breaking = changes.iter().filter(|c| c.breaking).count();
    let version = crate_version(&read(&root.join("Cargo.toml"))?);
    let _ = writeln!(
        out,
        "breaking: {}; version bump from {version}: {}",
        if breaking > 0 { "yes" } else { "no" },
        bump(&version, &changes)
    );
    match crate::snapshots(&text) {
        Ok(snapshots) => {
            for (path, content) in
                SNAPSHOTS
                    .iter()
                    .zip([&snapshots.code, &snapshots.normalized, &snapshots.surface])
            {
                write(&root.join(path), content)?;
            }
            let _ = writeln!(
                out,
                "snapshots rewritten: {}\nnext: `cargo test --all-features --locked`, then review \
                 `git diff` and the report",
                SNAPSHOTS.join(", ")
            );
            Ok((0, out))
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "hand edit needed (snapshots not rewritten): {e}\nthen run this command again"
            );
            Ok((1, out))
        }
    }
}

/// The `version` of the root package in `Cargo.toml`'s text (`0.0.0` if none is found).
fn crate_version(manifest: &str) -> String {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[package]")
        .find_map(|line| {
            let value = line.trim().strip_prefix("version")?.trim_start();
            Some(
                value
                    .strip_prefix('=')?
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "0.0.0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(breaking: bool) -> Change {
        Change {
            breaking,
            kind: "k",
            location: "a".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn the_bump_follows_semver_before_and_after_1_0() {
        assert!(bump("0.2.0", &[]).starts_with("none"));
        assert!(bump("0.2.0", &[change(false)]).starts_with("patch"));
        assert!(bump("0.2.0", &[change(true), change(false)]).starts_with("minor"));
        assert!(bump("1.4.0", &[change(false)]).starts_with("minor"));
        assert!(bump("1.4.0", &[change(true)]).starts_with("major"));
    }

    #[test]
    fn the_version_is_read_from_the_package_table() {
        let manifest =
            "[package]\nname = \"x\"\nversion = \"0.2.0\"\n[dependencies]\nversion = \"9\"\n";
        assert_eq!(crate_version(manifest), "0.2.0");
    }

    #[test]
    fn bad_arguments_exit_2_with_the_usage() {
        let root = Path::new("/nonexistent");
        for args in [&[][..], &["a.json", "b.json"], &["--report"], &["--x", "a"]] {
            let args: Vec<String> = args.iter().map(ToString::to_string).collect();
            let (status, text) = run(&args, root);
            assert_eq!(status, 2, "{args:?}");
            assert!(text.contains(USAGE), "{text}");
        }
    }
}

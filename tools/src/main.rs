//! `genlogs-auth-tools`, the maintainer commands (see the crate docs):
//!
//! ```sh
//! cargo run -p genlogs-auth-tools -- update NEW.json [--report PATH]
//! cargo run -p genlogs-auth-tools -- diff [--json | --markdown] [--fail-on-breaking] OLD NEW
//! cargo run -p genlogs-auth-tools -- variants OPENAPI.json OUT_DIR
//! ```
//!
//! `update` exits 0 when done, 1 when a hand edit is needed (the message names the JSON path
//! and the file), 2 on bad arguments. `diff` exits 0, or 1 with `--fail-on-breaking` when a
//! change is breaking, or 2 when a document cannot be read or corrected.

use std::path::Path;
use std::process::ExitCode;

use genlogs_auth_tools::variants::{self, Expect};
use genlogs_auth_tools::{cli, update};

const USAGE: &str = "usage: genlogs-auth-tools (update | diff | variants) ARGS…  (`--help` after a command for its own)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (status, output) = match command.as_str() {
        "update" => update::run(rest, &crate_root()),
        "diff" => cli::spec_diff(rest, read),
        "variants" => write_variants(rest),
        "-h" | "--help" => (0, format!("{USAGE}\n")),
        other => (2, format!("unknown command {other}\n{USAGE}\n")),
    };
    if status == 2 {
        eprint!("{output}");
    } else {
        print!("{output}");
    }
    ExitCode::from(status)
}

/// The `genlogs-auth` crate this tool belongs to: the directory above `tools/`.
fn crate_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tools/ is inside the crate")
        .to_path_buf()
}

fn read(path: &str) -> Result<String, String> {
    if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read stdin: {e}"))
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

/// `variants OPENAPI.json OUT_DIR`: writes every variant (`genlogs_auth_tools::variants`) for
/// `.ci/variants.sh` to build the crate on each: `NAME.json`, `NAME.what`, and `NAME.expect`
/// with the lines `builds yes|no`, then `report LINE`, `surface LINE` and any `test PATH` (a
/// loopback test to run on the variant), or `error TEXT`.
fn write_variants(args: &[String]) -> (u8, String) {
    let [spec, out] = args else {
        return (
            2,
            "usage: genlogs-auth-tools variants OPENAPI.json OUT_DIR\n".into(),
        );
    };
    match write_all(Path::new(spec), Path::new(out)) {
        Ok(count) => (0, format!("{count} variants written to {out}\n")),
        Err(message) => (2, format!("error: {message}\n")),
    }
}

fn write_all(spec: &Path, out: &Path) -> Result<usize, String> {
    let upstream = std::fs::read_to_string(spec)
        .map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let all = variants::all(&upstream)?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for variant in &all {
        let expect = match &variant.expect {
            Expect::Builds {
                report, surface, ..
            } => {
                let mut expect = format!("builds yes\nreport {report}\nsurface {surface}\n");
                for (_, test) in variants::LOOPBACK_TESTS
                    .iter()
                    .filter(|(name, _)| *name == variant.name)
                {
                    expect.push_str(&format!("test {test}\n"));
                }
                expect
            }
            Expect::Fails { error } => format!("builds no\nerror {error}\n"),
        };
        let write = |file: String, text: &str| {
            let path = out.join(file);
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(format!("{}.json", variant.name), &variant.text)?;
        write(format!("{}.expect", variant.name), &expect)?;
        write(
            format!("{}.what", variant.name),
            &format!("{}\n", variant.what),
        )?;
    }
    Ok(all.len())
}

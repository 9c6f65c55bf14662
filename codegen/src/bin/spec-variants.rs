//! Writes every variant of `openapi.json` (`genlogs_auth_codegen::variants`) to a directory, for
//! `.ci/variants.sh` to build the crate on each: `NAME.json`, and `NAME.expect` with the lines
//! `builds yes|no`, then `report LINE` and `surface LINE`, or `error TEXT`.
//!
//! ```sh
//! cargo run -p genlogs-auth-codegen --bin spec-variants -- openapi.json OUT_DIR
//! ```

use std::path::Path;
use std::process::ExitCode;

use genlogs_auth_codegen::variants::{self, Expect};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, out] = args.as_slice() else {
        eprintln!("usage: spec-variants OPENAPI.json OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(Path::new(spec), Path::new(out)) {
        Ok(count) => {
            println!("{count} variants written to {out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
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
            } => format!("builds yes\nreport {report}\nsurface {surface}\n"),
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

//! The `diff` command (`genlogs-auth-tools diff`, formerly the `spec-diff` binary), as a function
//! of its arguments and a file reader so that its parsing and exit statuses are unit-tested;
//! `src/main.rs` only wires it to the process.

use crate::diff;

/// How to call `spec-diff`.
pub const USAGE: &str = "usage: genlogs-auth-tools diff [--json | --markdown] [--fail-on-breaking] OLD.json NEW.json  (`-` reads stdin)";

/// What `spec-diff` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Markdown,
}

/// The `spec-diff` command: `[--json | --markdown] [--fail-on-breaking] OLD NEW`, with `read`
/// fetching each document's text. Returns the exit status (0; 1 for breaking changes with
/// `--fail-on-breaking`; 2 for bad arguments or a document that cannot be corrected) and what to
/// print (on stderr for status 2, on stdout otherwise).
pub fn spec_diff(args: &[String], read: impl Fn(&str) -> Result<String, String>) -> (u8, String) {
    let (mut format, mut fail_on_breaking, mut files) = (Format::Text, false, Vec::new());
    for arg in args {
        match arg.as_str() {
            "--json" if format == Format::Text => format = Format::Json,
            "--markdown" if format == Format::Text => format = Format::Markdown,
            "--json" | "--markdown" => return (2, format!("one output format only\n{USAGE}\n")),
            "--fail-on-breaking" => fail_on_breaking = true,
            "-h" | "--help" => return (0, format!("{USAGE}\n")),
            flag if flag.starts_with("--") => {
                return (2, format!("unknown option {flag}\n{USAGE}\n"))
            }
            _ => files.push(arg.as_str()),
        }
    }
    let [old, new] = files.as_slice() else {
        return (2, format!("{USAGE}\n"));
    };
    let report = read(old).and_then(|old| {
        let new = read(new)?;
        crate::change_report(&old, &new).map_err(|e| e.to_string())
    });
    match report {
        Err(message) => (2, format!("error: {message}\n")),
        Ok(changes) => {
            let status = u8::from(fail_on_breaking && changes.iter().any(|c| c.breaking));
            let output = match format {
                Format::Text => diff::render_text(&changes),
                Format::Json => diff::render_json(&changes),
                Format::Markdown => diff::render_markdown(&changes),
            };
            (status, output)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (u8, String) {
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        spec_diff(&args, |name| Err(format!("cannot read {name}")))
    }

    #[test]
    fn bad_arguments_exit_2_with_the_usage() {
        for args in [
            &[][..],
            &["one.json"],
            &["--json", "--markdown", "a", "b"],
            &["--colour", "a", "b"],
        ] {
            let (status, text) = run(args);
            assert_eq!(status, 2, "{args:?}");
            assert!(text.contains(USAGE), "{text}");
        }
        assert_eq!(run(&["--help"]), (0, format!("{USAGE}\n")));
    }

    #[test]
    fn an_unreadable_file_exits_2_naming_it() {
        assert_eq!(
            run(&["old.json", "new.json"]),
            (2, "error: cannot read old.json\n".to_string())
        );
    }
}

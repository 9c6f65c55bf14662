//! Child processes for the multi-process tests: the test binary itself, re-run on its ignored
//! `child` test in a role chosen by `GENLOGS_TEST_CHILD`, reporting through marked stdout lines.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Runs the ignored `child` test of the module `module` (its `module_path!()`) in this test
/// binary as `role`, with `env`; stdout is piped.
pub fn spawn_child<V: AsRef<OsStr>>(module: &str, role: &str, env: &[(&str, V)]) -> Child {
    // libtest names tests by their path without the crate's name.
    let test = match module.split_once("::") {
        Some((_, path)) => format!("{path}::child"),
        None => "child".to_string(),
    };
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            test.as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GENLOGS_TEST_CHILD", role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

/// What follows `marker` on the first stdout line of `child` that has it, trimmed (libtest
/// prints `test child ... ` before the child's own output, on the same line).
pub fn read_marker(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.as_mut().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the child ended first").unwrap();
        if let Some((_, rest)) = line.split_once(marker) {
            return rest.trim().to_string();
        }
    }
}

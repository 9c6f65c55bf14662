//! Colour and error lines. Colour only on a terminal, and never when `NO_COLOR` is set
//! (https://no-color.org).

use std::io::IsTerminal;

/// Whether to colour a stream: a terminal, and no non-empty `NO_COLOR`.
pub fn colour_enabled(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Colour decisions for stdout and stderr, taken once.
#[derive(Debug, Clone, Copy)]
pub struct Colours {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colours {
    pub fn detect() -> Self {
        let no_color = || std::env::var_os("NO_COLOR");
        Self {
            stdout: colour_enabled(std::io::stdout().is_terminal(), no_color()),
            stderr: colour_enabled(std::io::stderr().is_terminal(), no_color()),
        }
    }
}

/// An ANSI colour, or none.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Green,
    Yellow,
    Red,
}

/// `text` in `paint` when `enabled`.
pub fn paint(text: &str, paint: Paint, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let code = match paint {
        Paint::Green => "32",
        Paint::Yellow => "33",
        Paint::Red => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// An error and its causes on one line: each layer's `Display` says its own part, so the chain
/// reads from what failed to why, ending with what to do.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_enabled(true, None));
        assert!(colour_enabled(true, Some("".into())));
        assert!(!colour_enabled(true, Some("1".into())));
        assert!(!colour_enabled(false, None));
        assert_eq!(paint("x", Paint::Red, false), "x");
        assert_eq!(paint("x", Paint::Green, true), "\x1b[32mx\x1b[0m");
    }
}

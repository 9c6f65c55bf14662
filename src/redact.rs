//! Keeping credentials out of text: the [`Scrubber`] that cleans what a server said before an
//! error keeps it, and [`safe_serde_message`] that describes a decode failure without quoting the
//! input. Used by the HTTP layer and by the stores.
//!
//! Two defences, because a server may echo a credential in a form the client never sent:
//!
//! - **Known secrets** (the refresh token sent, the api key) are found raw, percent-encoded
//!   (`%2B` style with either hex case, or form style with `+` for a space; any mix of encoded and
//!   plain characters) and base64-encoded (standard and URL-safe alphabets, padded or not, alone
//!   or inside a longer base64 text, at any of the three byte alignments).
//! - **Unknown token-shaped strings** (a token the client never saw) are found by shape: see
//!   [`looks_like_a_token`].

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

/// The longest message kept from a response, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 200;

/// Shortest run of token characters that the shape rule considers. Below this, a random string
/// is indistinguishable from a word, a number or an id; a credential worth the name (64 bits of
/// base64) has at least 11 characters.
const TOKEN_LIKE_MIN_CHARS: usize = 12;

/// Derived forms (encodings) of a known secret shorter than this are not searched for: too short
/// to tell from ordinary text. The raw secret is always searched for.
const MIN_DERIVED_CHARS: usize = 8;

const REDACTED: &str = "[REDACTED]";

/// Removes credentials from text taken from a response, and bounds its size.
pub(crate) struct Scrubber {
    /// Each known secret and its base64 forms.
    needles: Vec<Vec<u8>>,
}

impl Scrubber {
    /// Scrubs every one of `secrets` (empty ones are ignored), their encodings, and anything
    /// token-like.
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            needles.push(secret.as_bytes().to_vec());
            needles.extend(
                base64_forms(secret.as_bytes())
                    .into_iter()
                    .filter(|form| form.len() >= MIN_DERIVED_CHARS)
                    .map(String::into_bytes),
            );
        }
        needles.sort_unstable();
        needles.dedup();
        Self { needles }
    }

    /// The text with credentials redacted, control characters and runs of white space folded to
    /// one space, cut to 200 characters. `None` when nothing is left.
    pub(crate) fn scrub(&self, text: &str) -> Option<String> {
        let text = self.redact_known(text);
        let folded = text
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty());
        let mut out = String::new();
        for word in folded {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&redact_token_like(word));
        }
        if out.is_empty() {
            return None;
        }
        if out.chars().count() > MAX_MESSAGE_CHARS {
            out = out.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        Some(out)
    }

    /// Replaces every occurrence of a known secret or of its base64 forms, as written or
    /// percent-decoded (with and without `+` as a space).
    fn redact_known(&self, text: &str) -> String {
        let mut spans = Vec::new();
        let views = [
            Some(View::identity(text)),
            text.contains('%')
                .then(|| View::percent_decoded(text, false)),
            text.contains('+')
                .then(|| View::percent_decoded(text, true)),
        ];
        for view in views.iter().flatten() {
            for needle in &self.needles {
                view.find_all(needle, &mut spans);
            }
        }
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            let (start, end) = (floor_boundary(text, start), ceil_boundary(text, end));
            if end <= at {
                continue;
            }
            if start >= at {
                out.push_str(&text[at..start]);
                out.push_str(REDACTED);
            }
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Written by hand: a derived `Debug` would print the secrets it searches for.
impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").finish_non_exhaustive()
    }
}

/// The text as a server may have encoded it, with, for each byte, the range of the original text
/// it came from (one byte, or three for `%XX`).
struct View {
    bytes: Vec<u8>,
    origin: Vec<(usize, usize)>,
}

impl View {
    fn identity(text: &str) -> Self {
        Self {
            bytes: text.as_bytes().to_vec(),
            origin: (0..text.len()).map(|i| (i, i + 1)).collect(),
        }
    }

    fn percent_decoded(text: &str, plus_as_space: bool) -> Self {
        let raw = text.as_bytes();
        let (mut bytes, mut origin) =
            (Vec::with_capacity(raw.len()), Vec::with_capacity(raw.len()));
        let mut i = 0;
        while i < raw.len() {
            let escaped = match raw.get(i..i + 3) {
                Some([b'%', high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    std::str::from_utf8(&raw[i + 1..i + 3])
                        .ok()
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                }
                _ => None,
            };
            match (escaped, raw[i]) {
                (Some(byte), _) => {
                    bytes.push(byte);
                    origin.push((i, i + 3));
                    i += 3;
                }
                (None, b'+') if plus_as_space => {
                    bytes.push(b' ');
                    origin.push((i, i + 1));
                    i += 1;
                }
                (None, byte) => {
                    bytes.push(byte);
                    origin.push((i, i + 1));
                    i += 1;
                }
            }
        }
        Self { bytes, origin }
    }

    /// Adds the original range of every occurrence of `needle`.
    fn find_all(&self, needle: &[u8], spans: &mut Vec<(usize, usize)>) {
        if needle.is_empty() || needle.len() > self.bytes.len() {
            return;
        }
        for (i, window) in self.bytes.windows(needle.len()).enumerate() {
            if window == needle {
                spans.push((self.origin[i].0, self.origin[i + needle.len() - 1].1));
            }
        }
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The base64 texts that reveal `secret`: its whole encoding in both alphabets, and, for each of
/// the three byte alignments it can have inside a longer encoded text, the characters that depend
/// on its bytes only. The whole encoding is there padded and unpadded.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = vec![STANDARD.encode(secret), URL_SAFE.encode(secret)];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(secret);
            let encoded = engine.encode(&shifted);
            // Characters covering bits [6i, 6i + 6) lie wholly inside the secret's bits
            // [8 * offset, 8 * (offset + len)).
            let first = (8 * offset).div_ceil(6);
            let last = (8 * (offset + secret.len())) / 6;
            if let Some(core) = encoded.get(first..last) {
                forms.push(core.to_string());
            }
        }
    }
    forms
}

/// Replaces each run of token characters that [`looks_like_a_token`].
fn redact_token_like(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find(is_token_char) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !is_token_char(c)).unwrap_or(run.len());
        let candidate = &run[..end];
        if looks_like_a_token(candidate) {
            out.push_str(REDACTED);
        } else {
            out.push_str(candidate);
        }
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

/// base64 (both alphabets), JWT, hex and percent-encoded text.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.+/=~%".contains(c)
}

/// Whether a run of token characters is a credential by its shape, not a word, a name, a path
/// or a number. It must be at least [`TOKEN_LIKE_MIN_CHARS`] long, and either
///
/// - hold 24 or more characters of the JWT / base64url alphabet (letters, digits, `-`, `_`,
///   `.`) in a row that mix letters and digits, however they are cut by `-` and `_`
///   (`eyJ_--64y_45-NykmqTKN-z-__U_11-I1`, and UUIDs too; a path such as
///   `/errors.pydantic.dev/2.9/v/missing` is cut by its slashes); or
/// - change character class (lower case, upper case, digit) inside its letter-and-digit pieces
///   (the parts between `-`, `_`, `.`, `/`, …) at a third of its characters or more: random
///   base64 does so at about 60%, CamelCase, snake_case, UUIDs, dates and paths at 0–30%
///   (`eyJR8--3-z-q-xU6R2K__dQ1CqX`, `QWhqSkVzdGFu` are tokens; `HTTPValidationError`,
///   `access_token_data`, `2026-11-26T06` are not); or
/// - hold one piece that prose and identifiers never contain:
///   - letters and digits mixed over 10 or more characters (`rt0123456789abcdef`; `base64url`,
///     `sha256`, `utf8` are shorter);
///   - upper and lower case mixed more often than CamelCase does (a case change at more than a
///     third of the positions, over 8 or more letters), or a capital run longer than an acronym
///     (6 or more) next to lower case (`abcdefghQRSTUVWX`);
///   - one case only, longer than any word (over 20 letters).
///
/// Single-case letter strings of 12 to 20 characters and digit-only strings are indistinguishable
/// from words and numbers and stay: only known secrets are removed whatever their shape.
pub(crate) fn looks_like_a_token(run: &str) -> bool {
    if run.len() < TOKEN_LIKE_MIN_CHARS {
        return false;
    }
    let pieces = || {
        run.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|piece| !piece.is_empty())
    };
    let long_mixed_chunk = run
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .any(|chunk| {
            chunk.len() >= 24
                && chunk.bytes().any(|b| b.is_ascii_digit())
                && chunk.bytes().any(|b| b.is_ascii_alphabetic())
        });
    let characters: usize = pieces().map(str::len).sum();
    let changes: usize = pieces().map(class_changes).sum();
    long_mixed_chunk
        || 3 * changes >= characters.max(TOKEN_LIKE_MIN_CHARS)
        || pieces().any(segment_looks_random)
}

/// How often neighbouring characters differ in class (lower case, upper case, digit).
fn class_changes(piece: &str) -> usize {
    let class = |b: &u8| (b.is_ascii_lowercase(), b.is_ascii_uppercase());
    piece
        .as_bytes()
        .windows(2)
        .filter(|pair| class(&pair[0]) != class(&pair[1]))
        .count()
}

/// The piece rules of [`looks_like_a_token`].
fn segment_looks_random(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    let digits = bytes.len() - letters;
    if letters > 0 && digits > 0 {
        return bytes.len() >= 10;
    }
    if digits > 0 {
        return false;
    }
    let upper = bytes.iter().filter(|b| b.is_ascii_uppercase()).count();
    if upper == 0 || upper == bytes.len() {
        return bytes.len() > 20;
    }
    let case_changes = bytes
        .windows(2)
        .filter(|pair| pair[0].is_ascii_uppercase() != pair[1].is_ascii_uppercase())
        .count();
    let longest_capital_run = bytes
        .split(|b| b.is_ascii_lowercase())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    (bytes.len() >= 8 && 3 * case_changes > bytes.len()) || longest_capital_run >= 6
}

/// serde_json's message without anything taken from the input. Its data errors quote the value
/// they met (`invalid type: string "eyJ…", expected …`); keep the kind and what was expected.
pub(crate) fn safe_serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let found = rest.split([' ', '`', '"', ',']).next().unwrap_or("value");
            let expected = rest.rsplit_once(", expected ").map_or("", |(_, e)| e);
            return format!("{prefix}{found}, expected {expected}");
        }
    }
    let safe_prefixes = [
        "missing field",
        "duplicate field",
        "invalid length",
        "not a recognised datetime",
        "expected",
        "EOF",
        "trailing",
        "key must be",
        "control character",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode",
        "lone leading surrogate",
        "unexpected end",
        "recursion limit exceeded",
    ];
    if safe_prefixes.iter().any(|p| text.starts_with(p)) {
        text.to_string()
    } else {
        "the value does not have the expected type".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scrub_redacts_known_secrets_and_token_like_runs() {
        let scrubber = Scrubber::new(["rt-short", ""]);
        let text = "bad token rt-short and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 end";
        let scrubbed = scrubber.scrub(text).unwrap();
        assert_eq!(scrubbed, "bad token [REDACTED] and [REDACTED] end");
    }

    #[test]
    fn scrub_keeps_prose_and_folds_control_characters() {
        let scrubber = Scrubber::new([]);
        assert_eq!(
            scrubber.scrub("Internal\r\nServer\u{0}  Error").as_deref(),
            Some("Internal Server Error")
        );
        assert_eq!(scrubber.scrub(" \n\t"), None);
    }

    #[test]
    fn scrub_truncates_on_a_character_boundary() {
        let scrubbed = Scrubber::new([]).scrub(&"é ".repeat(400)).unwrap();
        assert_eq!(scrubbed.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(scrubbed.ends_with('…'));
    }

    #[test]
    fn percent_encoded_echoes_of_a_known_secret_are_redacted() {
        let secret = "old refresh/+token";
        let scrubber = Scrubber::new([secret]);
        for echo in [
            "old+refresh%2F%2Btoken",   // form style, as the query carries it
            "old%20refresh%2F%2Btoken", // %20 style
            "old%20refresh/%2btoken",   // lower-case hex, '/' left plain
            "%6Fld%20refresh%2F%2Btoken",
        ] {
            let scrubbed = scrubber.scrub(&format!("no such token: {echo}.")).unwrap();
            assert_eq!(scrubbed, "no such token: [REDACTED].", "{echo}");
        }
    }

    #[test]
    fn base64_echoes_of_a_known_secret_are_redacted_in_every_alphabet_and_alignment() {
        let secret = "key-SECRET-7a1?>";
        let scrubber = Scrubber::new([secret]);
        let mut echoes = Vec::new();
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            for prefix in ["", "a", "ab", "abc:"] {
                echoes.push(engine.encode(format!("{prefix}{secret}")));
                echoes.push(engine.encode(format!("{prefix}{secret} and more")));
            }
        }
        for echo in echoes {
            let scrubbed = scrubber.scrub(&format!("Basic {echo} refused")).unwrap();
            let core = &echo[echo.len() / 2 - 4..echo.len() / 2 + 4];
            assert!(!scrubbed.contains(core), "{echo} -> {scrubbed}");
            assert!(scrubbed.contains(REDACTED), "{echo} -> {scrubbed}");
        }
    }

    #[test]
    fn token_shapes_without_a_digit_or_under_24_characters_are_redacted() {
        for token in [
            "abcdefghQRSTUVWXyz",         // no digit, capital run
            "QWhqSkVzdGFuZGFyZA",         // no digit, random case
            "abcdefghijklmnopqrstuvwxyz", // one case, longer than a word
            "rt0123456789abcdef",         // 18 characters
            "a7Kd93Lp0q-x",               // 12 characters
            "Zm9vYmFyYmF6cXV4",           // base64
        ] {
            let scrubbed = Scrubber::new([])
                .scrub(&format!("token {token} expired"))
                .unwrap();
            assert_eq!(scrubbed, "token [REDACTED] expired", "{token}");
        }
    }

    #[test]
    fn ordinary_error_messages_are_not_mangled() {
        for message in [
            "Invalid refresh token",
            "Field required",
            "String should have at least 1 character",
            "Input should be a valid string",
            "Internal Server Error",
            "Endpoint request timed out",
            "Missing or incorrect Access-Token",
            "The refresh token is not usable at this time. Please create a new token after your original access token has expired",
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            "HTTPValidationError: RefreshTokenRejected at access_token_data.token",
            "Unauthorized: token expired at 2026-11-26T06:08:25.069078Z (UTC)",
            "see https://errors.pydantic.dev/2.9/v/missing for application/x-www-form-urlencoded",
            "ERR_TOO_MANY_REDIRECTS from x-api-key gateway, request id 550e8400",
            "Content-Type must be application/json; charset=utf-8, not text/plain",
            "internationalization of iOSDevice and PostgreSQL and JavaScript on macOS",
            "base64url-encoded sha256 digest over HTTP/1.1 took 1500ms",
        ] {
            assert_eq!(Scrubber::new([]).scrub(message).as_deref(), Some(message));
        }
    }

    #[test]
    fn safe_serde_message_drops_the_value_met() {
        let error = serde_json::from_str::<u32>("\"eyJsecretvalue\"").unwrap_err();
        let message = safe_serde_message(&error);
        assert_eq!(message, "invalid type: string, expected u32");
    }

    /// Prose made of ordinary words, identifiers and numbers.
    fn prose() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            "[a-z]{1,12}",
            "[A-Z][a-z]{1,12}",
            "[A-Z]{2,5}",
            "[0-9]{1,12}",
            "[a-z]{2,8}_[a-z]{2,8}",
            "[A-Z][a-z]{2,8}-[A-Z][a-z]{2,8}",
            "[A-Z][a-z]{2,7}[A-Z][a-z]{2,7}",
            "[a-z]{2,6}[0-9]{1,3}",
        ];
        prop::collection::vec(word, 1..12).prop_map(|words| words.join(" "))
    }

    proptest! {
        #[test]
        fn prose_passes_unchanged(text in prose()) {
            let scrubbed = Scrubber::new([]).scrub(&text);
            prop_assert_eq!(scrubbed.as_deref(), Some(text.as_str()));
        }

        #[test]
        fn letters_and_digits_over_12_characters_are_redacted(
            token in "[A-Za-z0-9]{12,64}".prop_filter("a letter and a digit", |t| {
                t.bytes().any(|b| b.is_ascii_digit()) && t.bytes().any(|b| b.is_ascii_alphabetic())
            }),
            before in prose(),
        ) {
            let scrubbed = Scrubber::new([]).scrub(&format!("{before} {token}")).unwrap();
            prop_assert!(!scrubbed.contains(&token), "{}", scrubbed);
        }

        #[test]
        fn every_encoding_of_a_known_secret_is_redacted(
            secret in "[ -~]{8,40}",
            before in prose(),
            form in 0..6usize,
        ) {
            let encoded = match form {
                0 => secret.clone(),
                1 => url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
                2 => secret.bytes().map(|b| format!("%{b:02x}")).collect(),
                3 => STANDARD.encode(&secret),
                4 => URL_SAFE_NO_PAD.encode(format!("x:{secret}")),
                _ => STANDARD_NO_PAD.encode(format!("xy{secret}tail")),
            };
            let scrubbed = Scrubber::new([secret.as_str()])
                .scrub(&format!("{before} {encoded} end"))
                .unwrap();
            prop_assert!(scrubbed.contains(REDACTED), "{}", scrubbed);
            let middle = &encoded[encoded.len() / 2 - 3..encoded.len() / 2 + 3];
            prop_assert!(!scrubbed.contains(middle), "{} in {}", middle, scrubbed);
        }
    }
}

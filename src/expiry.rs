//! Token expiries: upstream types `expires` as a bare string; this is the UTC datetime it means.
//!
//! GenLogs is a Python service and emits datetimes in several forms: RFC 3339 with `Z` or an
//! offset, `str(datetime)` with a space instead of `T`, and naive values without an offset, which
//! GenLogs means as UTC. All of them, with 0 to 9 fractional digits, parse here.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// When a token expires, in UTC (server time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(DateTime<Utc>);

/// A string that is not one of the datetime forms GenLogs emits. Deliberately does not quote
/// the input: a hostile server could put a token there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryParseError;

impl fmt::Display for ExpiryParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not a recognised datetime (expected YYYY-MM-DD, `T` or a space, HH:MM:SS, up to 9 \
             fractional digits, and `Z`, an offset such as +00:00, or nothing for UTC)",
        )
    }
}

impl std::error::Error for ExpiryParseError {}

impl Expiry {
    /// Parses any form GenLogs emits (see the module docs).
    pub fn parse(text: &str) -> Result<Self, ExpiryParseError> {
        // The shape is checked byte by byte first: chrono's parser alone is lenient (it skips
        // white space inside numbers, for one).
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| {
            bytes
                .get(range)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        };
        let shape = digits(0..4)
            && bytes.get(4) == Some(&b'-')
            && digits(5..7)
            && bytes.get(7) == Some(&b'-')
            && digits(8..10)
            && matches!(bytes.get(10), Some(b'T' | b't' | b' '))
            && digits(11..13)
            && bytes.get(13) == Some(&b':')
            && digits(14..16)
            && bytes.get(16) == Some(&b':')
            && digits(17..19);
        if !shape {
            return Err(ExpiryParseError);
        }
        let mut rest = &text[19..];
        let mut nanos = 0u32;
        if let Some(fraction) = rest.strip_prefix('.') {
            let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if count == 0 || count > 9 {
                return Err(ExpiryParseError);
            }
            nanos = fraction[..count]
                .parse::<u32>()
                .map_err(|_| ExpiryParseError)?
                * 10u32.pow(9 - count as u32);
            rest = &fraction[count..];
        }
        let offset_seconds = match rest.as_bytes() {
            [] | [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
                if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) =>
            {
                let number = |a: &u8, b: &u8| i32::from((a - b'0') * 10 + (b - b'0'));
                let (hours, minutes) = (number(h1, h2), number(m1, m2));
                if hours > 23 || minutes > 59 {
                    return Err(ExpiryParseError);
                }
                let seconds = hours * 3600 + minutes * 60;
                if *sign == b'-' {
                    -seconds
                } else {
                    seconds
                }
            }
            _ => return Err(ExpiryParseError),
        };
        // Every field is digits by the shape check; chrono checks the ranges.
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
        };
        let date = NaiveDate::from_ymd_opt(number(0..4) as i32, number(5..7), number(8..10));
        let time =
            NaiveTime::from_hms_nano_opt(number(11..13), number(14..16), number(17..19), nanos);
        let naive =
            NaiveDateTime::new(date.ok_or(ExpiryParseError)?, time.ok_or(ExpiryParseError)?);
        let utc = naive.and_utc() - chrono::Duration::seconds(offset_seconds.into());
        Ok(Self(utc))
    }

    /// The instant, in UTC.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Expiry {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value)
    }
}

impl From<Expiry> for DateTime<Utc> {
    fn from(value: Expiry) -> Self {
        value.0
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Expiry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a datetime string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Expiry, E> {
                Expiry::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 6, 8, 25).unwrap()
            + chrono::Duration::microseconds(micros.into())
    }

    #[test]
    fn accepts_every_form_the_service_emits() {
        for text in [
            "2026-11-26T06:08:25.069078Z",
            "2026-11-26T06:08:25.069078+00:00",
            "2026-11-26T06:08:25.069078",
            "2026-11-26 06:08:25.069078+00:00",
            "2026-11-26 06:08:25.069078",
            "2026-11-26t06:08:25.069078z",
            "2026-11-26T08:08:25.069078+02:00",
            "2026-11-26T01:08:25.069078-05:00",
        ] {
            assert_eq!(
                Expiry::parse(text).map(|e| e.as_datetime()),
                Ok(utc(69_078)),
                "{text}"
            );
        }
    }

    #[test]
    fn accepts_zero_to_nine_fractional_digits() {
        assert_eq!(
            Expiry::parse("2026-11-26T06:08:25").unwrap().as_datetime(),
            utc(0)
        );
        assert_eq!(
            Expiry::parse("2026-11-26 06:08:25.5")
                .unwrap()
                .as_datetime(),
            utc(500_000)
        );
        let nanos = Expiry::parse("2026-11-26T06:08:25.123456789Z")
            .unwrap()
            .as_datetime();
        assert_eq!(nanos.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn rejects_what_is_not_a_datetime() {
        for text in [
            "",
            "tomorrow",
            "2026-11-26",
            "2026-11-26T06:08",
            "2026-11-26X06:08:25",
            "2026-11-26T06:08:25.",
            "2026-11-26T06:08:25.1234567890",
            "2026-11-26T06:08:25.12a",
            "2026-13-26T06:08:25",
            "2026-11-26T25:08:25",
            "2026-11-26T06:08:25+25:00",
            "2026-11-26T06:08:25 UTC",
            "1764137305",
            "２０２６-11-26T06:08:25",
        ] {
            assert_eq!(Expiry::parse(text), Err(ExpiryParseError), "{text:?}");
        }
    }

    #[test]
    fn the_error_does_not_echo_the_input() {
        let err = serde_json::from_str::<Expiry>("\"secret-looking-value\"").unwrap_err();
        assert!(!err.to_string().contains("secret-looking-value"), "{err}");
        assert!(
            err.to_string().contains("not a recognised datetime"),
            "{err}"
        );
    }

    #[test]
    fn serializes_as_rfc3339_utc() {
        let expiry = Expiry::parse("2026-11-26 06:08:25.069078").unwrap();
        assert_eq!(
            serde_json::to_string(&expiry).unwrap(),
            "\"2026-11-26T06:08:25.069078Z\""
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use chrono::{FixedOffset, SubsecRound};
    use proptest::prelude::*;

    /// The grammar, written independently of the parser.
    fn grammar() -> regex::Regex {
        regex::Regex::new(
            r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$",
        )
        .unwrap()
    }

    fn render(at: DateTime<Utc>, digits: usize, form: usize, offset_minutes: i32) -> String {
        let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
        let local = at.with_timezone(&offset);
        let fraction = if digits == 0 {
            String::new()
        } else {
            format!(".{:09}", at.timestamp_subsec_nanos())[..=digits].to_string()
        };
        let (separator, zone) = match form {
            0 => ('T', "Z".to_string()),
            1 => ('T', local.format("%:z").to_string()),
            2 => ('T', String::new()),
            3 => (' ', local.format("%:z").to_string()),
            _ => (' ', String::new()),
        };
        let clock = if zone.is_empty() || zone == "Z" {
            at.naive_utc()
        } else {
            local.naive_local()
        };
        format!(
            "{}{separator}{}{fraction}{zone}",
            clock.format("%Y-%m-%d"),
            clock.format("%H:%M:%S")
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_accepted_form_round_trips(
            seconds in 0i64..7_258_118_400,
            nanos in 0u32..1_000_000_000,
            digits in 0usize..=9,
            form in 0usize..5,
            offset_minutes in -14 * 60..=14 * 60i32,
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap().trunc_subsecs(digits as u16);
            let text = render(at, digits, form, offset_minutes);
            prop_assert!(grammar().is_match(&text), "{}", text);
            prop_assert_eq!(Expiry::parse(&text).map(|e| e.as_datetime()), Ok(at), "{}", text);
        }

        #[test]
        fn only_the_grammar_parses(text in "[0-9T tZz:.+-]{0,36}|\\PC{0,40}") {
            if Expiry::parse(&text).is_ok() {
                prop_assert!(grammar().is_match(&text), "{:?} parsed but is not in the grammar", text);
            }
        }

        #[test]
        fn a_mutated_datetime_parses_only_if_still_in_the_grammar(
            seconds in 0i64..7_258_118_400,
            at_char in 0usize..40,
            with in proptest::char::any(),
        ) {
            let mut text: Vec<char> = render(DateTime::from_timestamp(seconds, 0).unwrap(), 6, 1, 90).chars().collect();
            let index = at_char % text.len();
            text[index] = with;
            let text: String = text.into_iter().collect();
            if Expiry::parse(&text).is_ok() {
                prop_assert!(grammar().is_match(&text), "{:?}", text);
            }
        }
    }
}

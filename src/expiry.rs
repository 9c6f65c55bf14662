//! Token expiries: upstream types `expires` as a bare string; this is the UTC datetime it means.
//!
//! GenLogs is a Python service and emits datetimes in several forms: RFC 3339 with `Z` or an
//! offset, `str(datetime)` with a space instead of `T`, and naive values without an offset, which
//! GenLogs means as UTC. All of them, with 0 to 9 fractional digits, parse here.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
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
        let bytes = text.as_bytes();
        // `YYYY-MM-DD?HH:MM:SS` is 19 ASCII bytes; the separator must be `T`, `t` or a space.
        if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't' | b' ') || !text.is_ascii() {
            return Err(ExpiryParseError);
        }
        let (date, time) = (&text[..10], &text[11..]);
        let offset_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
        let (clock, offset) = time.split_at(offset_at);
        if let Some(fraction) = clock.get(8..).filter(|f| !f.is_empty()) {
            let digits = fraction.strip_prefix('.').ok_or(ExpiryParseError)?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ExpiryParseError);
            }
        }
        let naive =
            NaiveDateTime::parse_from_str(&format!("{date}T{clock}"), "%Y-%m-%dT%H:%M:%S%.f")
                .map_err(|_| ExpiryParseError)?;
        let utc = match offset {
            "" | "Z" | "z" => naive.and_utc(),
            offset => DateTime::parse_from_str(
                &format!("{date}T{clock}{offset}"),
                "%Y-%m-%dT%H:%M:%S%.f%:z",
            )
            .map_err(|_| ExpiryParseError)?
            .with_timezone(&Utc),
        };
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

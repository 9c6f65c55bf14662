//! `Retry-After` (RFC 9110 §10.2.3) read defensively: delay-seconds or an HTTP date, never
//! overflowing, and capped at 15 min so that a hostile or broken gateway cannot stop
//! refreshing for longer than that.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{HeaderMap, DATE, RETRY_AFTER};

/// The longest wait taken from a server's `Retry-After` (15 minutes). A larger value, a number
/// too big for any integer type or a date years ahead are read as this; GenLogs' access tokens
/// live for minutes, so waiting longer would only serve expired tokens.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// The delay a response asks for, capped at 15 min; `None` when there is no
/// `Retry-After` or it is neither delay-seconds nor an HTTP date.
///
/// A date is measured against the response's own `Date` header when it has a readable one (both
/// are the server's clock, so local clock skew does not matter), otherwise against the local
/// clock. A date in the past means "now": zero.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a number of seconds: larger than the cap.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = http_date(value)?;
    let now = headers
        .get(DATE)
        .and_then(|date| date.to_str().ok())
        .and_then(http_date)
        .unwrap_or_else(Utc::now);
    // Both dates are within chrono's range, so the difference cannot overflow; a negative one
    // does not convert to a std Duration.
    Some(
        (at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// An HTTP date in any of the three forms RFC 9110 §5.6.7 says a recipient must accept.
fn http_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(text) {
        return Some(date.to_utc());
    }
    // The obsolete forms: RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
    // (`Sun Nov  6 08:49:37 1994`).
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str, date: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, retry_after.parse().unwrap());
        if let Some(date) = date {
            headers.insert(DATE, date.parse().unwrap());
        }
        headers
    }

    #[test]
    fn seconds_are_read_and_capped_without_overflow() {
        let read = |value| retry_after(&headers(value, None));
        assert_eq!(read("7"), Some(Duration::from_secs(7)));
        assert_eq!(read(" 0 "), Some(Duration::ZERO));
        assert_eq!(read("900"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("901"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("99999999999999999999999999999"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn dates_are_measured_against_the_servers_date_header() {
        let date = "Thu, 26 Nov 2026 10:00:00 GMT";
        let read = |value| retry_after(&headers(value, Some(date)));
        assert_eq!(
            read("Thu, 26 Nov 2026 10:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            read("Thursday, 26-Nov-26 10:01:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            read("Thu Nov 26 10:00:05 2026"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(read("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(read("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn without_a_date_header_the_local_clock_is_the_reference() {
        let read = |value| retry_after(&headers(value, None));
        assert_eq!(read("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(read("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn garbage_is_none() {
        for value in [
            "soon",
            "-5",
            "1.5",
            "0x10",
            "",
            "Thu, 99 Nov 2026 10:00:00 GMT",
        ] {
            assert_eq!(retry_after(&headers(value, None)), None, "{value:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}

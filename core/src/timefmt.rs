//! Timestamps are Unix seconds (`i64`), passed in by the caller: core never
//! reads the clock. This module writes and reads them as RFC 3339 UTC.

/// Unix seconds.
pub type Timestamp = i64;

/// `2026-11-28T16:00:00Z`.
pub fn to_rfc3339(ts: Timestamp) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60
    )
}

/// `2026-11-28 16:00 UTC`, for messages at a login prompt.
pub fn to_human(ts: Timestamp) -> String {
    let full = to_rfc3339(ts);
    format!("{} {} UTC", &full[..10], &full[11..16])
}

/// Reads `YYYY-MM-DDTHH:MM[:SS](Z|±HH:MM)`; a space may stand for `T`.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, NotATime> {
    let bad = || NotATime(text.to_string());
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 17 || !text.is_ascii() {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, NotATime> {
        let part = &text[range];
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let (second, zone_at) = if bytes.get(16) == Some(&b':') {
        (num(17..19.min(bytes.len()))?, 19)
    } else {
        (0, 16)
    };
    let zone = text.get(zone_at..).ok_or_else(bad)?;
    let offset = match zone {
        "Z" | "z" => 0,
        _ if zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && &zone[3..4] == ":" =>
        {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (num(zone_at + 1..zone_at + 3)? * 3_600 + num(zone_at + 4..zone_at + 6)? * 60)
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// Text [`parse_rfc3339`] cannot read, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotATime(pub String);

impl std::fmt::Display for NotATime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a time: expected RFC 3339 such as 2026-11-28T16:00:00Z or 2026-11-28T17:00:00+01:00",
            self.0
        )
    }
}

impl std::error::Error for NotATime {}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms (public domain formulae).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(to_rfc3339(1_795_881_600), "2026-11-28T16:00:00Z");
        assert_eq!(to_human(1_795_881_600), "2026-11-28 16:00 UTC");
        assert_eq!(to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ts in [0, 951_782_400, 1_795_881_600, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&to_rfc3339(ts)), Ok(ts));
        }
        assert_eq!(
            parse_rfc3339("2026-11-28T17:00:00+01:00"),
            Ok(1_795_881_600)
        );
        assert_eq!(parse_rfc3339("2026-11-28 16:00Z"), Ok(1_795_881_600));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T16:00:00",
            "2026-11-28T25:00:00Z",
            "2026-11-28T16:00:00+0100",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

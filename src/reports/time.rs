//! Calendar arithmetic for reports, in UTC: the instants a query may name (RFC 3339,
//! a date, unix ms), their display (`2026-12-01T00:00:00Z`), and where a day or a week
//! (Monday 00:00) begins. Days from the civil date by Howard Hinnant's algorithm; no
//! time zone other than UTC exists here.

pub const DAY_MS: u64 = 86_400_000;
pub const WEEK_MS: u64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: the first Monday is four days later.
const FIRST_MONDAY_MS: u64 = 4 * DAY_MS;

/// Start of the week (Monday 00:00 UTC) holding `ms`.
pub fn week_of(ms: u64) -> u64 {
    if ms < FIRST_MONDAY_MS {
        return 0;
    }
    ms - (ms - FIRST_MONDAY_MS) % WEEK_MS
}

pub fn day_of(ms: u64) -> u64 {
    ms - ms % DAY_MS
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SSZ` (milliseconds dropped).
pub fn format_iso(ms: u64) -> String {
    let days = (ms / DAY_MS) as i64;
    let (year, month, day) = civil_from_days(days);
    let secs = (ms % DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An instant of a query: unix ms (digits only), `YYYY-MM-DD` (midnight UTC), or
/// RFC 3339 (`2026-12-01T08:30:00Z`, `…T08:30:00.250+01:00`). `None` when it is none of
/// these, names a date that does not exist, or lies before 1970.
pub fn parse_instant(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (i64::from(num(0, 4)?), num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) * DAY_MS as i64;
    if b.len() == 10 {
        return u64::try_from(midnight).ok();
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let frac = &text[at + 1..at + 1 + digits.min(3)];
        millis = i64::from(frac.parse::<u32>().ok()?) * 10i64.pow(3 - frac.len() as u32);
        at += 1 + digits;
    }
    let offset_min = match &text[at..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            // A `+` in a query string arrives as a space.
            let sign = match zone.as_bytes()[0] {
                b'+' | b' ' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * i64::from(h * 60 + m)
        }
        _ => return None,
    };
    let local =
        midnight + (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000;
    u64::try_from(local + millis - offset_min * 60_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01"), Some(0));
        assert_eq!(parse_instant("2026-12-01"), Some(1_796_083_200_000));
        assert_eq!(
            parse_instant("2026-12-01T00:00:00Z"),
            Some(1_796_083_200_000)
        );
        assert_eq!(
            parse_instant("2026-12-01T01:00:00.5+01:00"),
            Some(1_796_083_200_500)
        );
        for same in ["2026-11-30T23:00:00-01:00", "2026-12-01T01:00:00 01:00"] {
            assert_eq!(parse_instant(same), Some(1_796_083_200_000), "{same}");
        }
        assert_eq!(parse_instant("1796083200000"), Some(1_796_083_200_000));
        for bad in [
            "",
            "2026-02-29",
            "2024-13-01",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:00",
            "2026-12-01T00:00Z",
            "yesterday",
            "1969-12-31",
            "2026-12-01T00:00:00.Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
        assert_eq!(parse_instant("2024-02-29"), Some(1_709_164_800_000));
    }

    #[test]
    fn display_and_weeks() {
        assert_eq!(format_iso(1_796_083_200_000), "2026-12-01T00:00:00Z");
        assert_eq!(
            format_iso(1_709_164_800_000 + 3_723_000),
            "2024-02-29T01:02:03Z"
        );
        // 2026-12-01 is a Tuesday: its week began on Monday 2026-11-30.
        let tuesday = 1_796_083_200_000 + 5 * 3_600_000;
        assert_eq!(format_iso(week_of(tuesday)), "2026-11-30T00:00:00Z");
        let monday = parse_instant("2026-11-30").unwrap();
        assert_eq!(week_of(monday), monday);
        assert_eq!(day_of(tuesday), 1_796_083_200_000);
        for days in [-1000i64, 0, 59, 60, 365, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

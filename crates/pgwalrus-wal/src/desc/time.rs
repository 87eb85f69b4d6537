//! `timestamptz` values as `pg_waldump` prints them, in UTC.

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00:00 UTC).
const POSTGRES_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// Formats a PostgreSQL `TimestampTz` (microseconds since 2000-01-01 UTC) the way
/// `pg_waldump` does with `TZ=UTC`: `%Y-%m-%d %H:%M:%S`, a dot, the microseconds as `%06d`
/// (negative for instants before 2000, as C's `%` yields), a space and the zone name.
///
/// ```
/// use pgwalrus_wal::desc::format_timestamptz;
///
/// assert_eq!(format_timestamptz(0), "2000-01-01 00:00:00.000000 UTC");
/// assert_eq!(format_timestamptz(774_182_454_369_450), "2024-07-13 10:40:54.369450 UTC");
/// ```
pub fn format_timestamptz(ts: i64) -> String {
    // C semantics: both divisions truncate toward zero.
    let secs = (ts / 1_000_000).saturating_add(POSTGRES_EPOCH_UNIX_SECS);
    let micros = ts % 1_000_000;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the well-known
/// era-based conversion: 400-year eras of 146097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_timestamptz(0), "2000-01-01 00:00:00.000000 UTC");
        // 2000-02-29 (leap day) 12:34:56.000001
        let leap = ((31 + 28) * 86_400 + 12 * 3600 + 34 * 60 + 56) * 1_000_000 + 1;
        assert_eq!(format_timestamptz(leap), "2000-02-29 12:34:56.000001 UTC");
        // 1999-12-31 23:59:59 and a bit: C's truncating division and remainder.
        assert_eq!(format_timestamptz(-1), "2000-01-01 00:00:00.-00001 UTC");
        assert_eq!(
            format_timestamptz(-1_000_000),
            "1999-12-31 23:59:59.000000 UTC"
        );
        // 1970-01-01.
        assert_eq!(
            format_timestamptz(-POSTGRES_EPOCH_UNIX_SECS * 1_000_000),
            "1970-01-01 00:00:00.000000 UTC"
        );
    }

    #[test]
    fn extremes_do_not_panic() {
        for ts in [i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1] {
            let _ = format_timestamptz(ts);
        }
    }

    #[test]
    fn days_round_trip_against_a_day_counter() {
        // Walk 1600-03-01 .. 2400-03-01 day by day, checking the calendar by hand.
        let mut days = -135_080; // 1600-03-01
        let (mut y, mut m, mut d) = (1600i64, 3u32, 1u32);
        while y < 2400 {
            assert_eq!(civil_from_days(days), (y, m, d));
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            days += 1;
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}

//! Sizes and durations as operators write them, with PostgreSQL's units: `512MB`, `2 GB`,
//! `800kB` (1024-based); `7d`, `36h`, `90min`, `30s`.

use std::time::Duration;

/// A size in bytes: a number, optionally followed by B, kB, MB, GB or TB.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split(text)?;
    let factor: u64 = match unit {
        "" | "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        other => return Err(format!("unit \"{other}\" is not one of B, kB, MB, GB, TB")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

/// A duration: a number followed by s, min, h or d (a bare number is seconds).
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split(text)?;
    let seconds: u64 = match unit {
        "" | "s" => 1,
        "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unit \"{other}\" is not one of s, min, h, d")),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

fn split(text: &str) -> Result<(u64, &str), String> {
    let t = text.trim();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    let number = number
        .parse()
        .map_err(|_| format!("\"{text}\" does not start with a number"))?;
    Ok((number, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_take_postgresqls_units() {
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("2 GB"), Ok(2 << 30));
        assert_eq!(parse_size("800kB"), Ok(800 << 10));
        assert_eq!(parse_size("17"), Ok(17));
        assert!(parse_size("5 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_size("MB").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("90min"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("2 weeks").is_err());
    }
}

//! Durations as written in the configuration: `"90s"`, `"5m"`, `"2h"`,
//! `"1d"`, `"1w"` and combinations from the largest unit down (`"1h30m"`).
//!
//! Whole units only: fractions ("1.5h") and bare numbers are rejected, since
//! a bare `30` could mean seconds to one reader and days to another.

use std::time::Duration;

/// The units, largest first; combinations must follow this order.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// The standard explanation of the syntax, used as the hint of every
/// duration error.
pub(crate) const DURATION_HINT: &str =
    "a whole number and a unit (s, m, h, d or w), e.g. \"90s\", \"5m\", \"1h30m\"";

/// Parses a duration such as `"90s"`, `"5m"` or `"1h30m"`.
///
/// The error explains what is wrong with the text without repeating it, so
/// callers can prefix `invalid duration "…": `.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_with_units(s).map(|(d, _)| d)
}

/// Like [`parse_duration`], also returning the units used (as letters, in
/// order), for settings that accept only some units.
pub(crate) fn parse_with_units(s: &str) -> Result<(Duration, Vec<char>), String> {
    if s.is_empty() {
        return Err("the duration is empty".to_string());
    }
    let mut total: u64 = 0;
    let mut used = Vec::new();
    // Index into UNITS of the next unit allowed: each one is smaller than
    // the one before, which also rules out repeats like "1h1h".
    let mut next_unit = 0;
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let mut number: Option<u64> = None;
        while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
            chars.next();
            let value = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .ok_or_else(too_large)?;
            number = Some(value);
        }
        let unit = chars.next();
        let (number, unit) = match (number, unit) {
            (Some(n), Some(u)) => (n, u),
            (Some(_), None) => {
                return Err("the unit is missing after the number".to_string());
            }
            (None, Some(u)) if unit_seconds(u).is_some() => {
                return Err(format!("a number is missing before \"{u}\""));
            }
            (None, Some(u)) => return Err(format!("unexpected {:?}", u.to_string())),
            (None, None) => break,
        };
        let Some(position) = UNITS.iter().position(|(c, _)| *c == unit) else {
            return Err(if unit == '.' {
                "fractions are not supported (write \"1h30m\", not \"1.5h\")".to_string()
            } else {
                format!("unknown unit {:?}", unit.to_string())
            });
        };
        if position < next_unit {
            return Err(
                "units must go from largest to smallest, each once (e.g. \"1h30m\")".into(),
            );
        }
        next_unit = position + 1;
        used.push(unit);
        let seconds = number
            .checked_mul(UNITS[position].1)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(too_large)?;
        total = seconds;
    }
    Ok((Duration::from_secs(total), used))
}

fn unit_seconds(unit: char) -> Option<u64> {
    UNITS.iter().find(|(c, _)| *c == unit).map(|(_, s)| *s)
}

fn too_large() -> String {
    "the duration is too large".to_string()
}

/// Formats a duration the way the configuration writes it (`"1h30m"`,
/// `"0s"`), dropping sub-second parts; `parse_duration` reads it back.
pub fn format_duration(d: Duration) -> String {
    let mut rest = d.as_secs();
    if rest == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, seconds) in UNITS {
        let count = rest / seconds;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            rest %= seconds;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).unwrap().as_secs()
    }

    #[test]
    fn units_and_combinations() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("5m"), 300);
        assert_eq!(secs("2h"), 7200);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(
            secs("1w2d3h4m5s"),
            604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5
        );
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("007m"), 420);
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |s: &str| parse_duration(s).unwrap_err();
        assert_eq!(err(""), "the duration is empty");
        assert_eq!(err("30"), "the unit is missing after the number");
        assert_eq!(err("5x"), "unknown unit \"x\"");
        assert_eq!(err("5M"), "unknown unit \"M\"");
        assert_eq!(err("h"), "a number is missing before \"h\"");
        assert_eq!(err("-5m"), "unexpected \"-\"");
        assert_eq!(err("5 m"), "unknown unit \" \"");
        assert_eq!(
            err("1.5h"),
            "fractions are not supported (write \"1h30m\", not \"1.5h\")"
        );
        assert_eq!(
            err("30m1h"),
            "units must go from largest to smallest, each once (e.g. \"1h30m\")"
        );
        assert_eq!(
            err("1h1h"),
            "units must go from largest to smallest, each once (e.g. \"1h30m\")"
        );
        assert_eq!(err("99999999999999999999s"), "the duration is too large");
        assert_eq!(err("999999999999999999w"), "the duration is too large");
    }

    #[test]
    fn reports_units_used() {
        assert_eq!(parse_with_units("1d12h").unwrap().1, vec!['d', 'h']);
    }

    #[test]
    fn format_round_trips() {
        for s in ["0s", "90s", "1m30s", "1h30m", "2d", "1w", "1w1d1h1m1s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 30)), "4w2d");
    }
}

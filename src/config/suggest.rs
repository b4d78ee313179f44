//! "Did you mean ...?" help: near-miss suggestions for keys, names and
//! time zones, and the lists that go into error messages.

use chrono_tz::{Tz, TZ_VARIANTS};

/// Edit distance (insertions, deletions, substitutions) between two strings,
/// in characters.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `input` within edit distance 2 (case
/// differences are free), if any: typos, not guesses.
pub(crate) fn closest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"a", "b", "c"`: names quoted, so empty or odd names stay visible.
pub(crate) fn quoted_list<'a, I>(names: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let quoted: Vec<String> = names.into_iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// `a, b or c`, for the allowed values of an enumeration.
pub(crate) fn or_list(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Parses an IANA time zone name; on failure returns a hint with close
/// names.
pub(crate) fn parse_time_zone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let suggestions = close_time_zones(name);
    Err(if suggestions.is_empty() {
        "use an IANA time zone name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
            .to_string()
    } else {
        format!("did you mean {}?", or_list_quoted(&suggestions))
    })
}

fn or_list_quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let refs: Vec<&str> = quoted.iter().map(String::as_str).collect();
    or_list(&refs)
}

/// Up to three zone names close to `input`: the same name in another case
/// ("europe/berlin"), a city without its region ("Berlin"), or a typo
/// ("Europe/Berln").
fn close_time_zones(input: &str) -> Vec<&'static str> {
    let lower = input.to_ascii_lowercase().replace(' ', "_");
    let mut scored: Vec<(usize, &'static str)> = TZ_VARIANTS
        .iter()
        .filter_map(|tz| {
            let name = tz.name();
            let name_lower = name.to_ascii_lowercase();
            let city = name_lower.rsplit('/').next().unwrap_or(&name_lower);
            let whole = levenshtein(&lower, &name_lower);
            // Comparing with the last segment only catches "Berlin" and
            // "New York"; it counts one more so full names rank first.
            let by_city = levenshtein(&lower, city) + 1;
            let score = whole.min(by_city);
            (score <= 2).then_some((score, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("shedule", "schedule"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("abc", ""), 3);
    }

    #[test]
    fn closest_ignores_far_candidates() {
        let keys = ["schedule", "source", "storage"];
        assert_eq!(closest("shedule", keys), Some("schedule"));
        assert_eq!(closest("SOURCE", keys), Some("source"));
        assert_eq!(closest("frobnicate", keys), None);
    }

    #[test]
    fn lists() {
        assert_eq!(or_list(&["a"]), "a");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
        assert_eq!(quoted_list(["x", ""]), "\"x\", \"\"");
    }

    #[test]
    fn time_zone_suggestions() {
        assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(
            parse_time_zone("Europe/Berln").unwrap_err(),
            "did you mean \"Europe/Berlin\"?"
        );
        assert_eq!(
            parse_time_zone("europe/berlin").unwrap_err(),
            "did you mean \"Europe/Berlin\"?"
        );
        assert!(parse_time_zone("New York")
            .unwrap_err()
            .contains("\"America/New_York\""));
        assert!(parse_time_zone("Nowhere/Atlantis")
            .unwrap_err()
            .starts_with("use an IANA time zone name"));
    }
}

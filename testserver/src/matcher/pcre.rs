//! `$regex` for the matcher: MongoDB's PCRE patterns run on Rust's `regex`
//! crate, with the few constructs whose meaning differs rewritten first.
//!
//! MongoDB compiles patterns with PCRE2 in UTF mode without UCP, so `\d`,
//! `\w`, `\s` and `\b` are ASCII-only and `$` also matches before a final
//! newline. Constructs Rust's engine lacks (look-around, back-references)
//! fail to compile and are reported as MongoDB reports an invalid pattern.

use std::cell::RefCell;
use std::collections::HashMap;

use bson::Bson;

use crate::error::{CmdResult, CommandError};

/// A compiled `$regex`, remembering its source for regex-to-regex equality.
#[derive(Debug, Clone)]
pub(super) struct Rx {
    pattern: String,
    options: String,
    re: regex::Regex,
}

thread_local! {
    // matches() re-parses its filter for every document; caching compiled
    // patterns keeps a regex scan over a collection from recompiling.
    static REGEX_CACHE: RefCell<HashMap<(String, String), regex::Regex>> = RefCell::new(HashMap::new());
}

impl Rx {
    pub(super) fn new(pattern: &str, options: &str) -> CmdResult<Rx> {
        if let Some(flag) = options.chars().find(|c| !"imsux".contains(*c)) {
            return Err(CommandError::new(
                51108,
                format!(" invalid flag in regex options: {flag}"),
            ));
        }
        if pattern.contains('\0') {
            return Err(CommandError::bad_value(
                "Regular expression cannot contain an embedded null byte",
            ));
        }
        let key = (pattern.to_string(), options.to_string());
        let cached = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned());
        let re = match cached {
            Some(re) => re,
            None => {
                let re = regex::RegexBuilder::new(&translate_pcre(
                    pattern,
                    options.contains('m'),
                    options.contains('x'),
                ))
                .case_insensitive(options.contains('i'))
                .multi_line(options.contains('m'))
                .dot_matches_new_line(options.contains('s'))
                .ignore_whitespace(options.contains('x'))
                .build()
                .map_err(|e| {
                    let reason = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    CommandError::new(51091, format!("Regular expression is invalid: {reason}"))
                })?;
                REGEX_CACHE.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= 256 {
                        c.clear();
                    }
                    c.insert(key, re.clone());
                });
                re
            }
        };
        Ok(Rx {
            pattern: pattern.into(),
            options: options.into(),
            re,
        })
    }

    /// Strings and symbols match by pattern; a stored regex matches only an
    /// identical regex.
    pub(super) fn matches(&self, v: &Bson) -> bool {
        match v {
            Bson::String(s) | Bson::Symbol(s) => self.re.is_match(s),
            Bson::RegularExpression(r) => r.pattern == self.pattern && r.options == self.options,
            _ => false,
        }
    }
}

/// Rewrites the PCRE constructs whose meaning differs in Rust's regex
/// syntax: `\d`, `\w`, `\s` and `\b` are ASCII-only in MongoDB's PCRE (no
/// UCP); `$` and `\Z` also match before a final newline; `[` inside a class
/// and a `{` that starts no valid repetition are literals, and so are
/// whitespace and `#` inside a class in extended (`x`) mode.
fn translate_pcre(pattern: &str, multiline: bool, extended: bool) -> String {
    const CLASSES: [(char, &str); 3] = [
        ('d', "0-9"),
        ('w', "0-9A-Za-z_"),
        ('s', "\\t\\n\\x0B\\f\\r\\x20"),
    ];
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let (mut i, mut in_class) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let class = CLASSES
            .iter()
            .find(|(k, _)| Some(k.to_ascii_lowercase()) == next.map(|n| n.to_ascii_lowercase()));
        match (c, next) {
            ('\\', Some(n)) => {
                i += 1;
                match class {
                    Some((_, body)) if in_class && n.is_ascii_lowercase() => out.push_str(body),
                    Some((_, body)) if !in_class => {
                        let negate = if n.is_ascii_uppercase() { "^" } else { "" };
                        out.push_str(&format!("[{negate}{body}]"));
                    }
                    _ if in_class => out.extend([c, n]),
                    _ => match n {
                        'b' | 'B' => out.push_str(&format!("(?-u:\\{n})")),
                        'Z' => out.push_str("(?:\\n?\\z)"),
                        _ => out.extend([c, n]),
                    },
                }
            }
            // PCRE's extended mode keeps whitespace and '#' inside a class;
            // Rust's ignores them there too, so they are escaped.
            (c, _) if in_class && extended && (c.is_whitespace() || c == '#') => {
                out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
            }
            ('[', Some(':')) if in_class => {
                // A POSIX class such as [:alpha:] passes through whole.
                let end = (i + 2..chars.len())
                    .find(|&j| chars[j] == ']')
                    .unwrap_or(chars.len() - 1);
                out.extend(&chars[i..=end]);
                i = end;
            }
            ('[', _) if in_class => out.push_str("\\["),
            ('[', _) => {
                in_class = true;
                out.push(c);
                // A ']' right after '[' or '[^' is a literal, not the end.
                for lit in ['^', ']'] {
                    if chars.get(i + 1) == Some(&lit) {
                        out.push(lit);
                        i += 1;
                    }
                }
            }
            (']', _) if in_class => {
                in_class = false;
                out.push(c);
            }
            ('$', _) if !in_class && !multiline => out.push_str("(?:\\n?\\z)"),
            ('{', _) if !in_class && !is_repetition(&chars[i..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn is_repetition(s: &[char]) -> bool {
    let body: String = s.iter().skip(1).take_while(|c| **c != '}').collect();
    let closed = s.len() > body.chars().count() + 1;
    let (first, rest) = body.split_once(',').unwrap_or((&body, ""));
    closed
        && !first.is_empty()
        && (first.to_string() + rest)
            .chars()
            .all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(pattern: &str, options: &str, s: &str) -> bool {
        Rx::new(pattern, options)
            .unwrap()
            .matches(&Bson::String(s.into()))
    }

    #[test]
    fn pcre_classes_are_ascii_only() {
        assert!(is_match(r"^\d+$", "", "123"));
        assert!(!is_match(r"^\d+$", "", "١٢٣")); // Arabic-Indic digits
        assert!(!is_match(r"^\w$", "", "é"));
        assert!(is_match(r"^[\w.]+$", "", "a.b_1"));
        assert!(is_match(r"^\W$", "", "é"));
        assert!(is_match(r"a\sb", "", "a\tb"));
        assert!(is_match(r"\bfoo\b", "", "a foo b"));
    }

    #[test]
    fn dollar_and_literal_braces_follow_pcre() {
        assert!(is_match("abc$", "", "abc\n"));
        assert!(!is_match("abc$", "", "abc\nx"));
        assert!(is_match("^b$", "m", "a\nb\nc"));
        assert!(is_match(r"c\Z", "", "abc\n"));
        assert!(is_match("a{", "", "xa{"));
        assert!(is_match("{foo}", "", "{foo}"));
        assert!(is_match("a{,3}", "", "a{,3}"));
        assert!(is_match("^a{2}$", "", "aa"));
        assert!(is_match("[a[]", "", "["));
        assert!(is_match("[]a]", "", "]"));
        assert!(is_match("^[[:alpha:]]+$", "", "abc"));
    }

    #[test]
    fn options_and_errors() {
        assert!(is_match("^ABC", "i", "abcd"));
        assert!(is_match("a.b", "s", "a\nb"));
        assert!(!is_match("a.b", "", "a\nb"));
        assert!(is_match("a b # comment", "x", "ab"));
        assert!(is_match("^a[ #]b$", "x", "a b"));
        assert!(is_match("^a[ #]b$", "x", "a#b"));
        assert!(is_match(r"^a\sb$", "x", "a b"));
        let err = Rx::new("a", "g").unwrap_err();
        assert_eq!(
            (err.code, err.errmsg.as_str()),
            (51108, " invalid flag in regex options: g")
        );
        let err = Rx::new("(a", "").unwrap_err();
        assert_eq!(err.code, 51091);
        assert!(
            err.errmsg.starts_with("Regular expression is invalid: "),
            "{}",
            err.errmsg
        );
        assert_eq!(Rx::new("(?=a)", "").unwrap_err().code, 51091);
    }

    #[test]
    fn stored_regexes_match_only_identical_regexes() {
        let rx = Rx::new("a", "i").unwrap();
        let stored = |p: &str, o: &str| {
            Bson::RegularExpression(bson::Regex {
                pattern: p.into(),
                options: o.into(),
            })
        };
        assert!(rx.matches(&stored("a", "i")));
        assert!(!rx.matches(&stored("a", "")));
        assert!(!rx.matches(&Bson::Int32(1)));
        assert!(rx.matches(&Bson::Symbol("A".into())));
    }
}

//! Mutation fuzzing of the example configuration: thousands of
//! deterministic edits (lines deleted, duplicated, swapped; characters
//! flipped; truncation; junk inserted). Whatever the text, `parse` must not
//! panic, and every error it reports must point at a real position.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::config::{parse, ConfigError};

const CASES: u64 = 4000;

/// Fragments that tend to break parsers: TOML syntax, odd numbers,
/// non-ASCII, cron and duration edge cases, control characters.
const JUNK: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\\",
    "#",
    ",",
    ".",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "ü",
    "😀",
    "\u{feff}",
    "x = 1\n",
    "[jobs.x]\n",
    "[sources.\"\"]\n",
    "jobs.prod-full.kind = \"full\"\n",
    "= =",
    "1e400",
    "-9223372036854775809",
    "9223372036854775807",
    "nan",
    "inf",
    "0x7f",
    "2024-02-30T25:61:00Z",
    "@",
    "@reboot",
    "${",
    "${}",
    "*/0",
    "99999999999999999999s",
    "L",
    "W",
    "#",
    "+",
    "?",
    "-",
    "/",
    "*",
    "include = [[], {}]\n",
    "retention = {}\n",
    "schedule = [\"0\"]\n",
];

/// splitmix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }
}

fn char_boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect()
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    match rng.below(7) {
        0 => {
            let i = rng.below(lines.len());
            lines.remove(i);
        }
        1 => {
            let i = rng.below(lines.len());
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        2 => {
            let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(i, j);
        }
        3 => {
            // Replace one character with junk or a random printable one.
            let bounds = char_boundaries(text);
            let at = rng.below(bounds.len() - 1);
            let (start, end) = (bounds[at], bounds[at + 1]);
            let replacement = if rng.below(2) == 0 {
                JUNK[rng.below(JUNK.len())].to_string()
            } else {
                char::from(u8::try_from(32 + rng.below(95)).unwrap()).to_string()
            };
            return format!("{}{replacement}{}", &text[..start], &text[end..]);
        }
        4 => {
            let bounds = char_boundaries(text);
            return text[..bounds[rng.below(bounds.len())]].to_string();
        }
        5 => {
            let bounds = char_boundaries(text);
            let at = bounds[rng.below(bounds.len())];
            let junk = JUNK[rng.below(JUNK.len())];
            return format!("{}{junk}{}", &text[..at], &text[at..]);
        }
        _ => {
            // Change a value: keep the key, put junk after `=`.
            let i = rng.below(lines.len());
            if let Some((key, _)) = lines[i].split_once('=') {
                lines[i] = format!("{key}= {}", JUNK[rng.below(JUNK.len())]);
            }
        }
    }
    lines.join("\n")
}

fn check_positions(text: &str, errors: &[ConfigError]) {
    let line_count = text.split('\n').count();
    let mut previous = (0, 0);
    for error in errors {
        assert!(error.line >= 1, "line 0 in {error} for:\n{text}");
        assert!(error.column >= 1, "column 0 in {error} for:\n{text}");
        assert!(
            error.line <= line_count,
            "line past the end in {error} for:\n{text}"
        );
        assert!(
            (error.line, error.column) >= previous,
            "errors out of order for:\n{text}"
        );
        previous = (error.line, error.column);
        assert!(!error.message.is_empty());
        // Syntax errors must point where toml_edit itself does.
        if error.message.starts_with("invalid TOML: ") {
            if let Err(toml_err) = toml_edit::Document::parse(text) {
                if toml_err.span().is_some() {
                    let expected = format!("line {}, column {}", error.line, error.column);
                    assert!(
                        toml_err.to_string().contains(&expected),
                        "{error} vs {toml_err} for:\n{text}"
                    );
                }
            }
        }
    }
}

#[test]
fn mutated_examples_never_panic_and_errors_point_into_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/mongo-backupd.toml");
    let example = std::fs::read_to_string(&path).unwrap();
    assert!(parse(&example, &path).is_ok());

    let mut rng = Rng(0x6D6F_6E67_6F2D_6266);
    let (mut accepted, mut rejected) = (0, 0);
    for case in 0..CASES {
        let mut text = example.clone();
        for _ in 0..=rng.below(3) {
            text = mutate(&text, &mut rng);
        }
        let result = catch_unwind(AssertUnwindSafe(|| parse(&text, &path)));
        match result {
            Err(_) => panic!("parse panicked on case {case}:\n{text}"),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(errors)) => {
                rejected += 1;
                assert!(!errors.is_empty(), "case {case}: empty error list");
                check_positions(&text, &errors.0);
            }
        }
    }
    // Both outcomes occur, so the mutations exercise more than one path.
    assert!(
        accepted > 100 && rejected > 1000,
        "accepted {accepted}, rejected {rejected}"
    );
}

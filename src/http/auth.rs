//! Bearer tokens: the token file, its re-reading when it changes, and the
//! constant-time check of a presented token.
//!
//! Only SHA-256 digests of the tokens are kept in memory, and no message
//! ever contains a token: errors about a line name its number. Comparing
//! digests of equal length with an XOR fold over every stored token means
//! the time a check takes says nothing about how much of a guess was right
//! or which token it resembled.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::HttpError;

/// Shorter tokens can be guessed; the file is refused at start.
pub const MIN_TOKEN_LEN: usize = 16;

type TokenDigest = [u8; 32];

fn digest(token: &[u8]) -> TokenDigest {
    Sha256::digest(token).into()
}

/// Equal digests, in time independent of where they differ.
pub fn constant_time_eq(a: &TokenDigest, b: &TokenDigest) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // Keeps the optimiser from turning the fold into an early-exit compare.
    std::hint::black_box(diff) == 0
}

/// What is wrong with a token file (without the path, which the caller
/// adds). Never contains a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFileProblem {
    /// No token lines at all.
    Empty,
    Line {
        line: usize,
        problem: String,
    },
}

/// The tokens of one version of the file.
#[derive(Clone, Default)]
pub struct TokenSet {
    entries: Vec<(String, TokenDigest)>,
}

// By hand, so that no log line or panic message can print a digest either.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TokenSet").field("names", &names).finish()
    }
}

impl TokenSet {
    /// Parses the file's text: lines `NAME TOKEN` or `TOKEN` (named
    /// `token-N` after its line number); blank lines and `#` comments
    /// (a whole line, or after whitespace) are ignored.
    pub fn parse(text: &str) -> Result<TokenSet, TokenFileProblem> {
        let mut entries: Vec<(String, TokenDigest)> = Vec::new();
        let mut lines_of: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let fields: Vec<&str> = raw
                .split_whitespace()
                .take_while(|field| !field.starts_with('#'))
                .collect();
            let fail = |problem: String| TokenFileProblem::Line { line, problem };
            let (name, token) = match fields.as_slice() {
                [] => continue,
                [token] => (format!("token-{line}"), *token),
                [name, token] => ((*name).to_string(), *token),
                more => {
                    return Err(fail(format!(
                        "expected `NAME TOKEN` or `TOKEN`, found {} fields separated by spaces",
                        more.len()
                    )))
                }
            };
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(fail(format!(
                    "the token is shorter than {MIN_TOKEN_LEN} characters; use a long random one (`openssl rand -hex 32` makes one)"
                )));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(fail(
                    "the token contains characters other than printable ASCII, which an Authorization header cannot carry".to_string(),
                ));
            }
            let token_digest = digest(token.as_bytes());
            for (i, (other_name, other_digest)) in entries.iter().enumerate() {
                let earlier = lines_of.get(i).copied().unwrap_or(0);
                if *other_name == name {
                    return Err(fail(format!(
                        "the name {name:?} is used on line {earlier} already; give each client its own name"
                    )));
                }
                if constant_time_eq(other_digest, &token_digest) {
                    return Err(fail(format!(
                        "the token is the same as on line {earlier}; give each client its own token"
                    )));
                }
            }
            entries.push((name, token_digest));
            lines_of.push(line);
        }
        if entries.is_empty() {
            return Err(TokenFileProblem::Empty);
        }
        Ok(TokenSet { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the token `presented`, if it is one of them. Every
    /// stored token is compared, whichever matches.
    pub fn lookup(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented.as_bytes());
        let mut found = None;
        for (name, stored) in &self.entries {
            if constant_time_eq(stored, &presented) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// What identifies one version of the file: a rewrite within the same
/// second (coarse mtimes) usually changes the size or, with an atomic
/// rename, the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

fn read_set(path: &Path) -> Result<TokenSet, HttpError> {
    let text = fs::read_to_string(path).map_err(|source| HttpError::TokenFileRead {
        path: path.to_path_buf(),
        source,
    })?;
    TokenSet::parse(&text).map_err(|problem| match problem {
        TokenFileProblem::Empty => HttpError::TokenFileEmpty {
            path: path.to_path_buf(),
        },
        TokenFileProblem::Line { line, problem } => HttpError::TokenFileLine {
            path: path.to_path_buf(),
            line,
            problem,
        },
    })
}

/// The token file, re-read when it changes so tokens can be rotated
/// without a restart. A changed file that cannot be used is reported and
/// the previous tokens kept, the way a broken configuration reload is.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    current: Mutex<(Option<Stamp>, Arc<TokenSet>)>,
}

impl TokenStore {
    /// Reads the file; a missing, unreadable, empty or malformed file is
    /// an error (the API must not start without working tokens).
    pub fn load(path: &Path) -> Result<TokenStore, HttpError> {
        let stamp = stamp_of(path).ok();
        let set = read_set(path)?;
        tracing::info!(
            "Read {} HTTP API token(s) from {}.",
            set.len(),
            path.display()
        );
        Ok(TokenStore {
            path: path.to_path_buf(),
            current: Mutex::new((stamp, Arc::new(set))),
        })
    }

    /// The tokens in force, re-reading the file first if it changed.
    pub fn current(&self) -> Arc<TokenSet> {
        let stamp = stamp_of(&self.path).ok();
        // A panic elsewhere while holding the lock leaves valid data.
        let mut guard = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp.is_some() && stamp != guard.0 {
            guard.0 = stamp;
            match read_set(&self.path) {
                Ok(set) => {
                    tracing::info!(
                        "The HTTP token file {} changed; {} token(s) are now accepted.",
                        self.path.display(),
                        set.len()
                    );
                    guard.1 = Arc::new(set);
                }
                Err(e) => tracing::error!(
                    "{} The previous tokens stay in force until the file is fixed.",
                    crate::error_chain(&e)
                ),
            }
        }
        Arc::clone(&guard.1)
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is
/// case-insensitive, RFC 7235).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn names_tokens_and_ignores_comments() {
        let text = format!("# the tokens\n\nops {A}   # the on-call team\n  {B}\n");
        let set = TokenSet::parse(&text).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.lookup(A), Some("ops"));
        assert_eq!(set.lookup(B), Some("token-4"));
        assert_eq!(set.lookup("cccccccccccccccccccccccc"), None);
        assert_eq!(set.lookup(""), None);
        assert_eq!(set.lookup(&A[1..]), None);
    }

    #[test]
    fn refuses_short_tokens_naming_the_line_not_the_token() {
        let secret = "short-secret";
        let text = format!("ops {A}\n# fine so far\nci {secret}\n");
        let problem = TokenSet::parse(&text).unwrap_err();
        let TokenFileProblem::Line { line, problem } = problem else {
            panic!("expected a line problem");
        };
        assert_eq!(line, 3);
        assert!(problem.contains("shorter than 16"), "{problem}");
        assert!(!problem.contains(secret), "the message shows the token");

        let e = HttpError::TokenFileLine {
            path: "/etc/tokens".into(),
            line,
            problem,
        };
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("line 3"), "{shown}");
        assert!(
            !shown.contains(secret),
            "the error shows the token: {shown}"
        );
    }

    #[test]
    fn refuses_empty_files_extra_fields_and_duplicates() {
        assert_eq!(
            TokenSet::parse("# nothing\n\n").unwrap_err(),
            TokenFileProblem::Empty
        );
        for (text, line, words) in [
            (format!("a b {A}"), 1, "3 fields"),
            (format!("ops {A}\nops {B}"), 2, "used on line 1"),
            (format!("ops {A}\nci {A}"), 2, "same as on line 1"),
            (format!("ops {A}é"), 1, "printable ASCII"),
        ] {
            match TokenSet::parse(&text).unwrap_err() {
                TokenFileProblem::Line { line: l, problem } => {
                    assert_eq!(l, line, "{text}");
                    assert!(problem.contains(words), "{problem}");
                    assert!(!problem.contains(A), "{problem}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let set = TokenSet::parse(&format!("ops {A}")).unwrap();
        let shown = format!("{set:?}");
        assert!(shown.contains("ops"));
        assert!(!shown.contains(A));
    }

    #[test]
    fn constant_time_compare_agrees_with_equality() {
        let a = digest(b"one");
        let b = digest(b"two");
        assert!(constant_time_eq(&a, &a));
        assert!(!constant_time_eq(&a, &b));
        for i in 0..32 {
            let mut c = a;
            c[i] ^= 0x80;
            assert!(!constant_time_eq(&a, &c), "byte {i}");
        }
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(&format!("Bearer {A}")), Some(A));
        assert_eq!(bearer(&format!("bearer  {A} ")), Some(A));
        assert_eq!(bearer(&format!("Basic {A}")), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer(A), None);
    }

    #[test]
    fn store_rereads_a_changed_file_and_keeps_tokens_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        fs::write(&path, format!("ops {A}\n")).unwrap();
        let store = TokenStore::load(&path).unwrap();
        assert_eq!(store.current().lookup(A), Some("ops"));

        // Rotation: a different size, so detected even within one mtime tick.
        fs::write(&path, format!("ci {B}\n# rotated\n")).unwrap();
        assert_eq!(store.current().lookup(A), None);
        assert_eq!(store.current().lookup(B), Some("ci"));

        fs::write(&path, "ci tooshort\n").unwrap();
        assert_eq!(store.current().lookup(B), Some("ci"), "kept");

        fs::remove_file(&path).unwrap();
        assert_eq!(store.current().lookup(B), Some("ci"), "kept");
        assert!(matches!(
            TokenStore::load(&path),
            Err(HttpError::TokenFileRead { .. })
        ));
    }
}

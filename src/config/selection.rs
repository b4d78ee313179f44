//! Which namespaces a job backs up: `include` / `exclude` patterns plus the
//! fixed rules about MongoDB's internal databases and collections.
//!
//! A pattern is `db` (a whole database) or `db.coll`. The database is
//! everything before the first dot (database names cannot contain dots), the
//! collection everything after it (collection names can). `*` matches any
//! run of characters, including none, within its own part: `app*` matches the
//! database `app2`, `app.*` every collection of `app`, `*.cache` the
//! collection `cache` in every database. Matching is case-sensitive, like
//! MongoDB names.

use std::fmt;

/// Databases never backed up: `local` holds the oplog and replica-set state
/// of one node (restoring it onto another node corrupts that node), and
/// `config` holds sharding and session metadata that belongs to the cluster,
/// not to the data. mongodump skips both the same way.
const INTERNAL_DATABASES: [&str; 2] = ["local", "config"];

/// The only collections taken from `admin`, and only with `include_users`:
/// everything else there is server state.
const USER_COLLECTIONS: [&str; 2] = ["system.users", "system.roles"];

/// One validated `db` or `db.coll` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    db: String,
    /// `None` for a whole-database pattern.
    coll: Option<String>,
}

impl Pattern {
    /// Checks a pattern. The error explains the problem without repeating
    /// the pattern.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("the pattern is empty".to_string());
        }
        let (db, coll) = match text.split_once('.') {
            Some((db, coll)) => (db, Some(coll)),
            None => (text, None),
        };
        if db.is_empty() {
            return Err("the database part (before the first \".\") is empty".to_string());
        }
        if let Some(bad) = db.chars().find(|c| "/\\ \"$\0".contains(*c)) {
            return Err(format!(
                "database names cannot contain {:?}",
                bad.to_string()
            ));
        }
        if let Some(coll) = coll {
            if coll.is_empty() {
                return Err(format!(
                    "the collection part (after the \".\") is empty: write {db:?} for the whole database or \"{db}.*\""
                ));
            }
            if let Some(bad) = coll.chars().find(|c| "$\0".contains(*c)) {
                return Err(format!(
                    "collection names cannot contain {:?}",
                    bad.to_string()
                ));
            }
        }
        Ok(Pattern {
            text: text.to_string(),
            db: db.to_string(),
            coll: coll.map(str::to_string),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The database part, which may contain `*`.
    pub fn database(&self) -> &str {
        &self.db
    }

    /// The collection part, `None` for a whole-database pattern.
    pub fn collection(&self) -> Option<&str> {
        self.coll.as_deref()
    }

    /// Whether the pattern matches the namespace `db.coll`.
    pub fn matches(&self, db: &str, coll: &str) -> bool {
        wildcard_match(&self.db, db) && self.coll.as_deref().is_none_or(|p| wildcard_match(p, coll))
    }

    fn matches_db(&self, db: &str) -> bool {
        wildcard_match(&self.db, db)
    }

    /// Whether the pattern covers every collection of the databases it
    /// matches (`db` or `db.*`).
    fn covers_whole_db(&self) -> bool {
        self.coll
            .as_deref()
            .is_none_or(|c| c.chars().all(|ch| ch == '*'))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The namespaces a job backs up.
///
/// Rules, in order: `local` and `config` are never selected; `admin`
/// contributes exactly `system.users` and `system.roles`, and only when
/// `include_users` is set (patterns do not apply to them); `system.*`
/// collections other than `system.js` are never selected; then a namespace
/// is selected when `include` is empty or one include pattern matches it,
/// and no exclude pattern does (exclude wins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
    /// Copied from the job's `include_users`, which decides the `admin`
    /// rule above.
    pub include_users: bool,
}

impl Selection {
    /// Every user namespace, no users and roles.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// A selection from pattern texts (e.g. `--include`/`--exclude` on the
    /// command line), without users and roles. The error names the first
    /// bad pattern and what is wrong with it.
    pub fn from_patterns<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Result<Selection, String> {
        let parse_all = |texts: &[S]| -> Result<Vec<Pattern>, String> {
            texts
                .iter()
                .map(|t| Pattern::parse(t.as_ref()).map_err(|e| format!("{:?}: {e}", t.as_ref())))
                .collect()
        };
        Ok(Selection {
            include: parse_all(include)?,
            exclude: parse_all(exclude)?,
            include_users: false,
        })
    }

    /// Whether any collection of `db` might be selected, so a backup can
    /// skip listing the collections of databases it will not touch.
    pub fn includes_db(&self, db: &str) -> bool {
        if INTERNAL_DATABASES.contains(&db) {
            return false;
        }
        if db == "admin" {
            return self.include_users;
        }
        let included = self.include.is_empty() || self.include.iter().any(|p| p.matches_db(db));
        let wholly_excluded = self
            .exclude
            .iter()
            .any(|p| p.covers_whole_db() && p.matches_db(db));
        included && !wholly_excluded
    }

    /// Whether the collection `coll` of database `db` is selected.
    pub fn includes(&self, db: &str, coll: &str) -> bool {
        if INTERNAL_DATABASES.contains(&db) {
            return false;
        }
        if db == "admin" {
            return self.include_users && USER_COLLECTIONS.contains(&coll);
        }
        // system.* collections are the server's bookkeeping (profiler
        // output, view definitions and time-series buckets, which a backup
        // takes through the views and time-series collections themselves):
        // restoring them as plain data breaks the target. system.js holds
        // users' stored JavaScript functions, real data, which is why
        // mongodump keeps it; we do the same so our dumps match mongodump's.
        if coll.starts_with("system.") && coll != "system.js" {
            return false;
        }
        let included = self.include.is_empty() || self.include.iter().any(|p| p.matches(db, coll));
        included && !self.exclude.iter().any(|p| p.matches(db, coll))
    }
}

/// `*`-only glob match over characters: the classic linear backtracking
/// algorithm (remember the last `*` and retry from one character further),
/// so hostile patterns like `*a*a*a*b` cannot blow up.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("app*", "app2"));
        assert!(wildcard_match("app*", "app"));
        assert!(!wildcard_match("app*", "ap"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("cache_*", "cache_sessions"));
        assert!(wildcard_match("*_tmp", "orders_tmp"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaab"));
        assert!(!wildcard_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa"));
        assert!(!wildcard_match("App", "app"));
    }
}

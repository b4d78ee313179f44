//! Which namespaces a restore touches and where they go: `--ns-include`,
//! `--ns-exclude` and `--ns-from`/`--ns-to` renaming, with `*` wildcards as
//! in mongorestore.

/// A `db` or `db.collection` pattern; `*` matches any run of characters.
/// A pattern without a dot names a whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPattern {
    text: String,
}

impl NsPattern {
    pub fn new(text: &str) -> Result<NsPattern, String> {
        if text.is_empty() {
            return Err("a namespace pattern cannot be empty".into());
        }
        let text = if text.contains('.') {
            text.to_string()
        } else {
            format!("{text}.*")
        };
        Ok(NsPattern { text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text matched by each `*`, in order, when `ns` matches.
    pub fn captures(&self, ns: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = self.text.split('*').collect();
        let mut caps = Vec::new();
        let first = parts[0];
        let mut rest = ns.strip_prefix(first)?;
        if parts.len() == 1 {
            return rest.is_empty().then_some(caps);
        }
        for (i, part) in parts.iter().enumerate().skip(1) {
            let last = i == parts.len() - 1;
            if last {
                let cap = rest.strip_suffix(part)?;
                caps.push(cap.to_string());
                return Some(caps);
            }
            // Shortest match keeps later literal parts findable.
            let pos = rest.find(part)?;
            caps.push(rest[..pos].to_string());
            rest = &rest[pos + part.len()..];
        }
        None
    }

    pub fn matches(&self, ns: &str) -> bool {
        self.captures(ns).is_some()
    }
}

/// Filters and renames namespaces for a restore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NsMapper {
    pub include: Vec<NsPattern>,
    pub exclude: Vec<NsPattern>,
    /// `(from, to)`: each `*` of `to` takes what the matching `*` of
    /// `from` matched.
    pub renames: Vec<(NsPattern, String)>,
}

impl NsMapper {
    pub fn new(
        include: &[String],
        exclude: &[String],
        from: &[String],
        to: &[String],
    ) -> Result<NsMapper, String> {
        if from.len() != to.len() {
            return Err(format!(
                "--ns-from and --ns-to come in pairs, but there are {} --ns-from and {} --ns-to",
                from.len(),
                to.len()
            ));
        }
        let parse = |v: &[String]| {
            v.iter()
                .map(|s| NsPattern::new(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut renames = Vec::new();
        for (f, t) in from.iter().zip(to) {
            let pattern = NsPattern::new(f)?;
            let to = if t.contains('.') {
                t.clone()
            } else {
                format!("{t}.*")
            };
            if pattern.as_str().matches('*').count() != to.matches('*').count() {
                return Err(format!(
                    "--ns-from '{f}' and --ns-to '{t}' must have the same number of '*'"
                ));
            }
            renames.push((pattern, to));
        }
        Ok(NsMapper {
            include: parse(include)?,
            exclude: parse(exclude)?,
            renames,
        })
    }

    /// Where `db.coll` goes, or None when the restore leaves it out.
    pub fn map(&self, db: &str, coll: &str) -> Option<(String, String)> {
        let ns = format!("{db}.{coll}");
        if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(&ns)) {
            return None;
        }
        if self.exclude.iter().any(|p| p.matches(&ns)) {
            return None;
        }
        for (from, to) in &self.renames {
            if let Some(caps) = from.captures(&ns) {
                let mut out = String::new();
                let mut caps = caps.into_iter();
                for (i, part) in to.split('*').enumerate() {
                    if i > 0 {
                        out.push_str(&caps.next().unwrap_or_default());
                    }
                    out.push_str(part);
                }
                let (d, c) = out.split_once('.')?;
                return Some((d.to_string(), c.to_string()));
            }
        }
        Some((db.to_string(), coll.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn include_exclude_and_whole_databases() {
        let m = NsMapper::new(
            &s(&["app", "crm.customers"]),
            &s(&["app.cache_*"]),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(m.map("app", "users"), Some(("app".into(), "users".into())));
        assert_eq!(m.map("app", "cache_1"), None);
        assert_eq!(
            m.map("crm", "customers"),
            Some(("crm".into(), "customers".into()))
        );
        assert_eq!(m.map("crm", "leads"), None);
        assert_eq!(m.map("other", "x"), None);
    }

    #[test]
    fn renames_carry_wildcards() {
        let m = NsMapper::new(
            &[],
            &[],
            &s(&["app.*", "crm.customers"]),
            &s(&["app_restored.*", "crm.clients"]),
        )
        .unwrap();
        assert_eq!(
            m.map("app", "users"),
            Some(("app_restored".into(), "users".into()))
        );
        assert_eq!(
            m.map("crm", "customers"),
            Some(("crm".into(), "clients".into()))
        );
        assert_eq!(m.map("crm", "other"), Some(("crm".into(), "other".into())));
        assert!(NsMapper::new(&[], &[], &s(&["a.*"]), &s(&["b.c"])).is_err());
        assert!(NsMapper::new(&[], &[], &s(&["a.*"]), &[]).is_err());
    }

    #[test]
    fn patterns_match_dotted_collection_names() {
        let p = NsPattern::new("*.users").unwrap();
        assert!(p.matches("app.users"));
        assert!(!p.matches("app.users2"));
        let p = NsPattern::new("app.*.log").unwrap();
        assert_eq!(p.captures("app.a.b.log"), Some(vec!["a.b".to_string()]));
        assert!(NsPattern::new("").is_err());
    }
}

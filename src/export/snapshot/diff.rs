//! Applying a `$v: 2` "delta" update (the `diff` of an oplog update entry)
//! to a document, as `document_diff_applier.cpp` does during oplog
//! application, so the snapshot reader reproduces exactly what a restore
//! (which replays the same entries through `applyOps`) leaves behind.
//!
//! Format (from the server's `document_diff_serialization.h`): a document
//! diff has the sections `d` (`{field: false}` deletes), `u` (new values of
//! fields), `i` (inserted fields), in that order, then one `s<field>` entry
//! per sub-diff. An array diff starts with `a: true`, may carry `l: <int32
//! new length>`, then `u<index>` (new value) and `s<index>` (sub-diff)
//! entries in ascending index order.

use std::collections::HashSet;

use bson::{Bson, Document};

/// The largest array a diff may ask for. The server is bounded by its
/// 16 MiB document limit, and a null element takes at least three bytes, so
/// no real entry comes near this; a damaged one must not exhaust memory.
const MAX_ARRAY_LEN: usize = 16 * 1024 * 1024 / 3;

/// Nesting deeper than this is refused: BSON documents from a server never
/// come close (100 levels), and recursion on hostile input must stay bounded.
const MAX_DEPTH: usize = 200;

enum Change<'a> {
    Delete,
    Update(&'a Bson),
    /// The value is appended from the insertion list.
    Insert,
    Sub(&'a Document),
}

enum ArrayChange<'a> {
    Update(&'a Bson),
    Sub(&'a Document),
}

/// Applies `diff` to `pre`; the error says what is malformed.
pub(crate) fn apply(pre: &Document, diff: &Document) -> Result<Document, String> {
    apply_to_object(pre, diff, 0)
}

/// Per-field changes, and the fields appended at the end in order.
type DocTables<'a> = (Vec<(&'a str, Change<'a>)>, Vec<(&'a str, &'a Bson)>);

fn read_doc_diff(diff: &Document) -> Result<DocTables<'_>, String> {
    if diff.is_empty() {
        return Err("a document diff is empty".into());
    }
    let mut table: Vec<(&str, Change<'_>)> = Vec::new();
    let mut updates: Vec<(&str, &Bson)> = Vec::new();
    let mut inserts: Vec<(&str, &Bson)> = Vec::new();
    let mut prev = 0;
    let mut in_subdiffs = false;
    for (name, section) in diff {
        let Some(first) = name.chars().next() else {
            return Err("a diff section has an empty name".into());
        };
        if in_subdiffs && first != 's' {
            return Err(format!(
                "the diff section {name:?} comes after the sub-diffs"
            ));
        }
        if !in_subdiffs {
            let order = match first {
                'd' => 1,
                'u' => 2,
                'i' => 3,
                's' => 4,
                _ => 0,
            };
            if order == 0 || order <= prev {
                return Err(format!("unexpected diff section {name:?}"));
            }
            prev = order;
        }
        let Bson::Document(body) = section else {
            return Err(format!("the diff section {name:?} is not a document"));
        };
        match first {
            'd' => table.extend(body.keys().map(|k| (k.as_str(), Change::Delete))),
            'u' => updates.extend(body.iter().map(|(k, v)| (k.as_str(), v))),
            'i' => inserts.extend(body.iter().map(|(k, v)| (k.as_str(), v))),
            _ => {
                in_subdiffs = true;
                // `first` is the ASCII 's', so byte 1 is a character boundary.
                table.push((name.get(1..).unwrap_or_default(), Change::Sub(body)));
            }
        }
    }
    let mut to_append = Vec::with_capacity(updates.len() + inserts.len());
    for (k, v) in updates {
        table.push((k, Change::Update(v)));
        to_append.push((k, v));
    }
    for (k, v) in inserts {
        table.push((k, Change::Insert));
        to_append.push((k, v));
    }
    let mut seen = HashSet::new();
    if let Some((dup, _)) = table.iter().find(|(k, _)| !seen.insert(*k)) {
        return Err(format!("the diff changes the field {dup:?} twice"));
    }
    Ok((table, to_append))
}

/// The new length, if any, and the per-index changes in ascending order.
type ArrayTables<'a> = (Option<usize>, Vec<(usize, ArrayChange<'a>)>);

fn read_array_diff(diff: &Document) -> Result<ArrayTables<'_>, String> {
    let mut it = diff.iter().peekable();
    match it.next() {
        Some((name, Bson::Boolean(true))) if name == "a" => {}
        _ => return Err("an array diff does not start with a: true".into()),
    }
    let mut new_len = None;
    if let Some((name, v)) = it.peek() {
        if name.as_str() == "l" {
            let n = match v {
                Bson::Int32(n) => usize::try_from(*n).ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err("the new length of an array diff is not a non-negative int32".into());
            };
            new_len = Some(n);
            it.next();
        }
    }
    let mut mods = Vec::new();
    for (name, v) in it {
        let index = name.get(1..).and_then(parse_index);
        let Some(index) = index else {
            return Err(format!("the array diff entry {name:?} has no valid index"));
        };
        match (name.as_bytes().first(), v) {
            (Some(b'u'), v) => mods.push((index, ArrayChange::Update(v))),
            (Some(b's'), Bson::Document(d)) => mods.push((index, ArrayChange::Sub(d))),
            _ => {
                return Err(format!(
                    "the array diff entry {name:?} is not u<index> or s<index> with a document"
                ))
            }
        }
    }
    if mods.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("the array diff's indexes are not in ascending order".into());
    }
    if let (Some(n), Some((last, _))) = (new_len, mods.last()) {
        if *last >= n {
            return Err(format!(
                "the array diff changes index {last}, past its new length {n}"
            ));
        }
    }
    let needed = mods
        .last()
        .map_or(0, |(i, _)| i + 1)
        .max(new_len.unwrap_or(0));
    if needed > MAX_ARRAY_LEN {
        return Err(format!(
            "the array diff asks for {needed} elements, more than a document can hold"
        ));
    }
    Ok((new_len, mods))
}

/// The server's `parseUnsignedBase10Integer`: a leading digit, leading
/// zeros allowed, within u32.
pub(crate) fn parse_index(s: &str) -> Option<usize> {
    if !s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().map(|v| v as usize)
}

fn is_array_diff(diff: &Document) -> Result<bool, String> {
    match diff.keys().next() {
        None => Err("a sub-diff is empty".into()),
        Some(k) => Ok(k == "a"),
    }
}

/// Walks the pre-image in order, deleting, replacing in place or
/// recursing; then appends the fields that were not present (updates
/// first, then inserts). An insert of an existing field moves it to the
/// end, as the server does.
fn apply_to_object(pre: &Document, diff: &Document, depth: usize) -> Result<Document, String> {
    if depth > MAX_DEPTH {
        return Err(format!("the diff nests deeper than {MAX_DEPTH} levels"));
    }
    let (table, to_append) = read_doc_diff(diff)?;
    let find = |k: &str| table.iter().find(|(n, _)| *n == k).map(|(_, c)| c);
    let mut out = Document::new();
    let mut written = HashSet::new();
    for (name, old) in pre {
        match find(name) {
            None => {
                out.insert(name.clone(), old.clone());
            }
            Some(Change::Delete) | Some(Change::Insert) => {}
            Some(Change::Update(v)) => {
                out.insert(name.clone(), (*v).clone());
                written.insert(name.as_str());
            }
            Some(Change::Sub(sub)) => {
                let new = sub_apply(Some(old), sub, depth)?;
                out.insert(name.clone(), new);
            }
        }
    }
    for (name, v) in to_append {
        if !written.contains(name) {
            out.insert(name, v.clone());
        }
    }
    Ok(out)
}

/// A sub-diff applied to the value it names. A missing or mistyped
/// pre-image becomes null: the server does the same, because a later entry
/// of the same oplog rewrites that field (idempotent replay).
fn sub_apply(old: Option<&Bson>, sub: &Document, depth: usize) -> Result<Bson, String> {
    Ok(match (old, is_array_diff(sub)?) {
        (Some(Bson::Document(d)), false) => Bson::Document(apply_to_object(d, sub, depth + 1)?),
        (Some(Bson::Array(a)), true) => Bson::Array(apply_to_array(a, sub, depth + 1)?),
        _ => Bson::Null,
    })
}

/// Resizes first, then applies the entries, padding with nulls where the
/// diff addresses indexes past the end.
fn apply_to_array(pre: &[Bson], diff: &Document, depth: usize) -> Result<Vec<Bson>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("the diff nests deeper than {MAX_DEPTH} levels"));
    }
    let (new_len, mods) = read_array_diff(diff)?;
    let mut mods = mods.into_iter().peekable();
    let mut out = Vec::with_capacity(pre.len());
    let mut idx = 0;
    while idx < pre.len() && new_len.is_none_or(|n| idx < n) {
        let old = &pre[idx];
        match mods.next_if(|(i, _)| *i == idx) {
            Some((_, change)) => out.push(array_change(Some(old), change, depth)?),
            None => out.push(old.clone()),
        }
        idx += 1;
    }
    while new_len.is_some_and(|n| idx < n) || mods.peek().is_some() {
        match mods.next_if(|(i, _)| *i == idx) {
            Some((_, change)) => out.push(array_change(None, change, depth)?),
            None => out.push(Bson::Null),
        }
        idx += 1;
    }
    Ok(out)
}

fn array_change(old: Option<&Bson>, change: ArrayChange<'_>, depth: usize) -> Result<Bson, String> {
    match change {
        ArrayChange::Update(v) => Ok(v.clone()),
        ArrayChange::Sub(sub) => sub_apply(old, sub, depth),
    }
}

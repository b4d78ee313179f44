//! The `$v: 2` "delta" oplog format: building it while an update runs, and
//! applying it to a document during oplog replay.
//!
//! Both halves are ports of the server so a restore replays exactly what a
//! real primary logged:
//! - building: `v2_log_builder.cpp` (the diff tree) and the serializer in
//!   `document_diff_serialization.cpp`;
//! - reading/validation: `DocumentDiffReader` / `ArrayDiffReader` in
//!   `document_diff_serialization.cpp`;
//! - applying: `document_diff_applier.cpp`.
//!
//! Format recap (from `document_diff_serialization.h`): a document diff has
//! the sections `d` (`{field: false}` deletes), `u` (updates), `i` (inserts)
//! in that order, then one `s<field>` entry per sub-diff. An array diff starts
//! with `a: true`, may carry `l: <int32 new length>`, then `u<index>` (new
//! value) and `s<index>` (sub-diff) entries in ascending numeric index order.

use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::value::{self, err};
use crate::error::CmdResult;

/// How a path component was reached: the server's
/// `RuntimeUpdatePath::ComponentType`. It decides whether a parent becomes
/// an array diff or a document diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Comp {
    Field(String),
    Index(usize),
}

impl Comp {
    fn name(&self) -> String {
        match self {
            Comp::Field(f) => f.clone(),
            Comp::Index(i) => i.to_string(),
        }
    }
}

/// A node of the diff tree (`v2_log_builder::Node`).
enum Node {
    /// A document that existed before the update (`DocumentSubDiffNode`).
    Sub(Vec<(String, Node)>),
    /// A document created by the update (`DocumentInsertionNode`); only
    /// inserts live below it.
    NewDoc(Vec<(String, Node)>),
    /// An array that existed before the update.
    Array(BTreeMap<usize, Node>),
    Update(Bson),
    Insert(Bson),
    Delete,
}

/// The diff being built for one update. Children keep insertion order, which
/// is the order the update applied its fields in; the serializer relies on it.
pub(crate) struct DiffBuilder {
    root: Node,
}

impl Default for DiffBuilder {
    fn default() -> Self {
        DiffBuilder {
            root: Node::Sub(Vec::new()),
        }
    }
}

impl DiffBuilder {
    /// `logUpdatedField`: the element at `path` existed and now holds `value`.
    pub(crate) fn updated(&mut self, path: &[Comp], value: Bson) {
        add_at_path(&mut self.root, path, 0, Node::Update(value), None);
    }

    /// `logCreatedField`: components from `first_new` on did not exist.
    pub(crate) fn created(&mut self, path: &[Comp], first_new: usize, value: Bson) {
        add_at_path(
            &mut self.root,
            path,
            0,
            Node::Insert(value),
            Some(first_new),
        );
    }

    /// `logDeletedField`.
    pub(crate) fn deleted(&mut self, path: &[Comp]) {
        add_at_path(&mut self.root, path, 0, Node::Delete, None);
    }

    /// The `diff` field of the oplog entry.
    pub(crate) fn serialize(&self) -> Document {
        match &self.root {
            Node::Sub(children) => write_sub(children),
            _ => Document::new(),
        }
    }
}

fn child_mut<'a>(node: &'a mut Node, comp: &Comp) -> Option<&'a mut Node> {
    match node {
        Node::Sub(children) | Node::NewDoc(children) => {
            let name = comp.name();
            children
                .iter_mut()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c)
        }
        Node::Array(children) => match comp {
            Comp::Index(i) => children.get_mut(i),
            Comp::Field(f) => parse_index(f).and_then(|i| children.get_mut(&i)),
        },
        _ => None,
    }
}

fn add_child(node: &mut Node, comp: &Comp, child: Node) {
    match node {
        Node::Sub(children) | Node::NewDoc(children) => {
            let name = comp.name();
            // The server asserts on duplicates; the update grammar (conflict
            // detection) makes them impossible, so keep the first.
            if !children.iter().any(|(n, _)| *n == name) {
                children.push((name, child));
            }
        }
        Node::Array(children) => {
            let idx = match comp {
                Comp::Index(i) => Some(*i),
                Comp::Field(f) => parse_index(f),
            };
            if let Some(i) = idx {
                children.entry(i).or_insert(child);
            }
        }
        _ => {}
    }
}

/// `V2LogBuilder::addNodeAtPathHelper`: walk/create internal nodes down to
/// the parent of the last component. A parent whose next component is an
/// array index becomes an array diff; a parent at or below the first created
/// component is a created document; anything else is a sub-diff.
fn add_at_path(node: &mut Node, path: &[Comp], i: usize, leaf: Node, first_new: Option<usize>) {
    let Some(comp) = path.get(i) else { return };
    if i + 1 == path.len() {
        add_child(node, comp, leaf);
        return;
    }
    if child_mut(node, comp).is_none() {
        let is_new = first_new.is_some_and(|f| i >= f);
        let fresh = if matches!(path.get(i + 1), Some(Comp::Index(_))) {
            Node::Array(BTreeMap::new())
        } else if is_new {
            Node::NewDoc(Vec::new())
        } else {
            Node::Sub(Vec::new())
        };
        add_child(node, comp, fresh);
    }
    if let Some(child) = child_mut(node, comp) {
        add_at_path(child, path, i + 1, leaf, first_new);
    }
}

fn write_new_doc(children: &[(String, Node)]) -> Document {
    let mut out = Document::new();
    for (name, child) in children {
        match child {
            Node::Insert(v) => {
                out.insert(name.clone(), v.clone());
            }
            Node::NewDoc(grand) => {
                out.insert(name.clone(), write_new_doc(grand));
            }
            _ => {}
        }
    }
    out
}

/// `DocumentSubDiffFrame`: deletes, updates, inserts, then sub-diffs.
fn write_sub(children: &[(String, Node)]) -> Document {
    let mut out = Document::new();
    let mut deletes = Document::new();
    let mut updates = Document::new();
    let mut inserts = Document::new();
    for (name, child) in children {
        match child {
            Node::Delete => {
                deletes.insert(name.clone(), false);
            }
            Node::Update(v) => {
                updates.insert(name.clone(), v.clone());
            }
            Node::Insert(v) => {
                inserts.insert(name.clone(), v.clone());
            }
            Node::NewDoc(grand) => {
                inserts.insert(name.clone(), write_new_doc(grand));
            }
            Node::Sub(_) | Node::Array(_) => {}
        }
    }
    if !deletes.is_empty() {
        out.insert("d", deletes);
    }
    if !updates.is_empty() {
        out.insert("u", updates);
    }
    if !inserts.is_empty() {
        out.insert("i", inserts);
    }
    for (name, child) in children {
        match child {
            Node::Sub(grand) => {
                out.insert(format!("s{name}"), write_sub(grand));
            }
            Node::Array(elems) => {
                out.insert(format!("s{name}"), write_array(elems));
            }
            _ => {}
        }
    }
    out
}

/// `ArrayFrame`: the header, then entries in ascending index order (a
/// `std::map<size_t, ...>` in the server, so "10" sorts after "9").
fn write_array(children: &BTreeMap<usize, Node>) -> Document {
    let mut out = Document::new();
    out.insert("a", true);
    for (idx, child) in children {
        match child {
            Node::Update(v) | Node::Insert(v) => {
                out.insert(format!("u{idx}"), v.clone());
            }
            Node::NewDoc(grand) => {
                out.insert(format!("u{idx}"), write_new_doc(grand));
            }
            Node::Sub(grand) => {
                out.insert(format!("s{idx}"), write_sub(grand));
            }
            Node::Array(grand) => {
                out.insert(format!("s{idx}"), write_array(grand));
            }
            Node::Delete => {}
        }
    }
    out
}

/// `str::parseUnsignedBase10Integer`: leading digit required, leading zeros
/// allowed, must fit an unsigned 32-bit int.
pub(crate) fn parse_index(s: &str) -> Option<usize> {
    if !s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().map(|v| v as usize)
}

// ---------------------------------------------------------------------------
// Reading and applying.

enum Change<'a> {
    Delete,
    Update(&'a Bson),
    /// The value itself is appended from the insertion-order list.
    Insert,
    Sub(&'a Document),
}

enum ArrayChange<'a> {
    Update(&'a Bson),
    Sub(&'a Document),
}

/// The largest array a replayed diff may ask us to build. The server is
/// bounded by the 16 MiB document limit; a null element takes at least
/// three bytes, so this is a little above anything it could produce.
const MAX_ARRAY_LEN: usize = 16 * 1024 * 1024 / 3;

fn bad_diff(code: i32, msg: impl Into<String>) -> crate::error::CommandError {
    err(code, msg)
}

fn is_array_diff(diff: &Document) -> CmdResult<bool> {
    match diff.keys().next() {
        None => Err(bad_diff(4770500, "Expected diff to be non-empty")),
        Some(k) => Ok(k == "a"),
    }
}

/// `DocumentDiffReader`'s section validation, returning the per-field table
/// `buildObjDiffTables` builds plus the insertion order of new fields.
/// Per-field changes, and the new fields in the order they are appended.
type DocTables<'a> = (Vec<(&'a str, Change<'a>)>, Vec<(&'a str, &'a Bson)>);

/// The new length, if any, and the per-index changes.
type ArrayTables<'a> = (Option<usize>, Vec<(usize, ArrayChange<'a>)>);

fn read_doc_diff(diff: &Document) -> CmdResult<DocTables<'_>> {
    if diff.is_empty() {
        return Err(bad_diff(4770500, "Expected diff to be non-empty"));
    }
    let mut table: Vec<(&str, Change<'_>)> = Vec::new();
    let mut to_append: Vec<(&str, &Bson)> = Vec::new();
    let mut updates: Vec<(&str, &Bson)> = Vec::new();
    let mut inserts: Vec<(&str, &Bson)> = Vec::new();
    let mut prev = 0;
    let mut in_subdiffs = false;
    for (name, section) in diff {
        let Some(first) = name.chars().next() else {
            return Err(bad_diff(
                4770505,
                "Expected sections field names in diff to be non-empty ",
            ));
        };
        if in_subdiffs {
            if first != 's' {
                return Err(bad_diff(
                    4770514,
                    format!("Did not expect more sections in diff but found one: {name}"),
                ));
            }
        } else {
            let order = match first {
                'd' => 1,
                'u' => 2,
                'i' => 3,
                's' => 5,
                _ => 0,
            };
            if order == 0 || order <= prev {
                return Err(bad_diff(
                    4770503,
                    format!("Unexpected section: {first} in document diff"),
                ));
            }
            prev = order;
        }
        let Bson::Document(body) = section else {
            if first == 's' {
                return Err(bad_diff(
                    470510,
                    format!(
                        "Subdiffs should be objects, got {}",
                        value::fmt_elem(name, section)
                    ),
                ));
            }
            return Err(bad_diff(
                4770507,
                format!("Expected {first} section to be type object"),
            ));
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
    for (k, v) in &updates {
        table.push((k, Change::Update(v)));
        to_append.push((k, v));
    }
    for (k, v) in &inserts {
        table.push((k, Change::Insert));
        to_append.push((k, v));
    }
    // `DocumentDiffTables::safeInsert`.
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &table {
        if !seen.insert(*k) {
            return Err(bad_diff(
                4728000,
                format!("duplicate field name in diff: {k}"),
            ));
        }
    }
    Ok((table, to_append))
}

/// `ArrayDiffReader`: header, optional new length, then the modifications.
fn read_array_diff(diff: &Document) -> CmdResult<ArrayTables<'_>> {
    let mut it = diff.iter().peekable();
    match it.next() {
        None => return Err(bad_diff(4770500, "Expected diff to be non-empty")),
        Some((name, v)) => {
            if name != "a" {
                return Err(bad_diff(
                    4770504,
                    format!("Expected first field to be array header a but found {name}"),
                ));
            }
            match v {
                Bson::Boolean(true) => {}
                Bson::Boolean(false) => {
                    return Err(bad_diff(
                        4770520,
                        format!(
                            "Expected array header to be value true but got {}",
                            value::fmt_elem(name, v)
                        ),
                    ))
                }
                _ => {
                    return Err(bad_diff(
                        4770519,
                        format!(
                            "Expected array header to be bool but got {}",
                            value::fmt_elem(name, v)
                        ),
                    ))
                }
            }
        }
    }
    let mut new_len = None;
    if let Some((name, v)) = it.peek() {
        if name.as_str() == "l" {
            let Bson::Int32(n) = v else {
                return Err(bad_diff(4770507, "Expected l section to be type int"));
            };
            // The server casts to size_t; a negative length would ask for an
            // impossibly large array, so refuse it outright.
            let n = usize::try_from(*n)
                .map_err(|_| bad_diff(4770507, "Expected l section to be type int"))?;
            new_len = Some(n);
            it.next();
        }
    }
    let mut mods = Vec::new();
    for (name, v) in it {
        if name.len() < 2 {
            return Err(bad_diff(
                4770521,
                format!(
                    "expected field name to be at least two characters long, but found: {name}"
                ),
            ));
        }
        // The server slices bytes; a multi-byte first character cannot be a
        // valid section anyway, and slicing it would split the character.
        let rest = name.get(1..).unwrap_or(name.as_str());
        let Some(idx) = parse_index(rest) else {
            return Err(bad_diff(
                4770512,
                format!("Expected integer but got {rest}"),
            ));
        };
        match name.as_bytes()[0] {
            b'u' => mods.push((idx, ArrayChange::Update(v))),
            b's' => match v {
                Bson::Document(d) => mods.push((idx, ArrayChange::Sub(d))),
                _ => {
                    return Err(bad_diff(
                        4770501,
                        format!(
                            "expected sub diff at index {idx} but got {}",
                            value::fmt_elem(name, v)
                        ),
                    ))
                }
            },
            _ => {
                return Err(bad_diff(
                    4770502,
                    format!(
                        "Expected either 'u' (update) or 's' (sub diff) at index {idx} but got {}",
                        value::fmt_elem(name, v)
                    ),
                ))
            }
        }
    }
    // The server walks the modifications in one pass and would loop forever
    // on a descending index; we refuse such diffs instead.
    if mods.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad_diff(
            4770512,
            "Expected array diff indexes in ascending order",
        ));
    }
    // The server's applier ends with `invariant(*resizeVal == idx)`, so an
    // entry at or past the new length is a corrupt diff.
    if let (Some(n), Some((last, _))) = (new_len, mods.last()) {
        if *last >= n {
            return Err(bad_diff(
                4770512,
                format!("array diff entry {last} is past the new length {n}"),
            ));
        }
    }
    let needed = mods
        .last()
        .map_or(0, |(i, _)| i + 1)
        .max(new_len.unwrap_or(0));
    if needed > MAX_ARRAY_LEN {
        return Err(err(
            10334,
            "array diff would exceed the maximum document size",
        ));
    }
    Ok((new_len, mods))
}

/// `applyDiff` for the top-level document.
pub(crate) fn apply(pre: &Document, diff: &Document) -> CmdResult<Document> {
    apply_to_object(pre, diff)
}

/// `DiffApplier::applyDiffToObject`: walk the pre-image in order, deleting,
/// replacing in place or recursing; then append the fields that were not
/// already present (updates first, then inserts). An insert of a field that
/// already exists moves it to the end, as the server does.
fn apply_to_object(pre: &Document, diff: &Document) -> CmdResult<Document> {
    let (table, to_append) = read_doc_diff(diff)?;
    let find = |k: &str| table.iter().find(|(n, _)| *n == k).map(|(_, c)| c);
    let mut out = Document::new();
    let mut written = std::collections::HashSet::new();
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
                let new = match (old, is_array_diff(sub)?) {
                    (Bson::Document(d), false) => Bson::Document(apply_to_object(d, sub)?),
                    (Bson::Array(a), true) => Bson::Array(apply_to_array(a, sub)?),
                    // A later oplog entry rewrites this field; the server
                    // stores null meanwhile (see the applier's comment).
                    _ => Bson::Null,
                };
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

/// `DiffApplier::applyDiffToArray`: resize first, then apply the entries,
/// padding with nulls where the diff addresses indexes past the end.
fn apply_to_array(pre: &[Bson], diff: &Document) -> CmdResult<Vec<Bson>> {
    let (new_len, mods) = read_array_diff(diff)?;
    let mut mods = mods.into_iter().peekable();
    let mut out = Vec::with_capacity(pre.len());
    let mut idx = 0;
    while idx < pre.len() && new_len.is_none_or(|n| idx < n) {
        let old = &pre[idx];
        match mods.peek() {
            Some((i, _)) if *i == idx => {
                if let Some((_, change)) = mods.next() {
                    out.push(apply_array_change(Some(old), change)?);
                }
            }
            _ => out.push(old.clone()),
        }
        idx += 1;
    }
    while new_len.is_some_and(|n| idx < n) || mods.peek().is_some() {
        match mods.peek() {
            Some((i, _)) if *i == idx => {
                if let Some((_, change)) = mods.next() {
                    out.push(apply_array_change(None, change)?);
                }
            }
            _ => out.push(Bson::Null),
        }
        idx += 1;
    }
    Ok(out)
}

fn apply_array_change(old: Option<&Bson>, change: ArrayChange<'_>) -> CmdResult<Bson> {
    match change {
        ArrayChange::Update(v) => Ok(v.clone()),
        ArrayChange::Sub(sub) => Ok(match (old, is_array_diff(sub)?) {
            (Some(Bson::Document(d)), false) => Bson::Document(apply_to_object(d, sub)?),
            (Some(Bson::Array(a)), true) => Bson::Array(apply_to_array(a, sub)?),
            // Missing or mistyped pre-image: a later entry will rewrite it.
            _ => Bson::Null,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn f(s: &str) -> Comp {
        Comp::Field(s.to_string())
    }

    #[test]
    fn builder_sections_and_order() {
        let mut b = DiffBuilder::default();
        b.created(&[f("z")], 0, Bson::Int32(1));
        b.updated(&[f("a"), f("b")], Bson::Int32(2));
        b.deleted(&[f("y")]);
        b.created(&[f("n"), f("x"), f("y")], 0, Bson::Int32(3));
        b.created(&[f("n"), f("x"), f("w")], 0, Bson::Int32(4));
        b.updated(&[f("arr"), Comp::Index(10)], Bson::Int32(5));
        b.created(&[f("arr"), Comp::Index(9), f("q")], 1, Bson::Int32(6));
        assert_eq!(
            b.serialize(),
            doc! {
                "d": {"y": false},
                "i": {"z": 1, "n": {"x": {"y": 3, "w": 4}}},
                "sa": {"u": {"b": 2}},
                "sarr": {"a": true, "u9": {"q": 6}, "u10": 5},
            }
        );
    }

    #[test]
    fn applies_sections_like_the_server() {
        let pre = doc! {"a": 1, "b": {"c": 1, "d": 2}, "e": [1, 2, 3], "f": 0, "g": 9};
        let diff = doc! {
            "d": {"a": false},
            "u": {"f": 5, "new": 1},
            "i": {"g": 10, "h": 1},
            "sb": {"d": {"c": false}, "i": {"x": 1}},
            "se": {"a": true, "l": 5, "u1": 20, "u4": 40},
        };
        let out = apply(&pre, &diff).unwrap();
        assert_eq!(
            out,
            doc! {"b": {"d": 2, "x": 1}, "e": [1, 20, 3, null, 40], "f": 5, "new": 1, "g": 10, "h": 1}
        );
        // Field order is part of the contract, not just the contents.
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "e", "f", "new", "g", "h"]);
    }

    #[test]
    fn resize_truncates_and_type_mismatch_nulls() {
        let pre = doc! {"a": [1, 2, 3, 4], "b": 5, "c": {"x": 1}};
        let diff = doc! {"sa": {"a": true, "l": 2, "u1": 9}, "sb": {"u": {"x": 1}}, "sc": {"a": true, "u0": 1}};
        assert_eq!(
            apply(&pre, &diff).unwrap(),
            doc! {"a": [1, 9], "b": null, "c": null}
        );
        // An entry past the new length would trip the server's invariant.
        assert!(apply(&pre, &doc! {"sa": {"a": true, "l": 2, "u3": 9}}).is_err());
    }

    #[test]
    fn rejects_malformed_diffs_with_server_codes() {
        let code = |d: Document| apply(&doc! {"a": [1], "b": {}}, &d).unwrap_err().code;
        assert_eq!(code(doc! {}), 4770500);
        assert_eq!(code(doc! {"u": {"x": 1}, "d": {"y": false}}), 4770503);
        assert_eq!(code(doc! {"x": {}}), 4770503);
        assert_eq!(code(doc! {"u": 1}), 4770507);
        assert_eq!(code(doc! {"sb": {"u": {"x": 1}}, "u": {"y": 1}}), 4770514);
        assert_eq!(code(doc! {"sb": 1}), 470510);
        assert_eq!(code(doc! {"sa": {"a": false}}), 4770520);
        assert_eq!(code(doc! {"sa": {"a": true, "x1": 1}}), 4770502);
        assert_eq!(code(doc! {"sa": {"a": true, "ux": 1}}), 4770512);
        assert_eq!(code(doc! {"sa": {"a": true, "u": 1}}), 4770521);
        assert_eq!(code(doc! {"sa": {"a": true, "s0": 1}}), 4770501);
        assert_eq!(code(doc! {"sa": {"a": true, "l": 1.0}}), 4770507);
        assert_eq!(code(doc! {"u": {"x": 1}, "i": {"x": 2}}), 4728000);
        assert_eq!(code(doc! {"sa": {"a": true, "u5": 1, "u2": 1}}), 4770512);
        assert_eq!(code(doc! {"sa": {"a": true, "u99999999": 1}}), 10334);
        assert_eq!(code(doc! {"sa": {"a": true, "é1": 1}}), 4770512);
    }
}

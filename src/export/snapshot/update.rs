//! Applying the `o` of an update oplog entry to a document, the way oplog
//! application (and so a restore's `applyOps`) does, in the three forms
//! servers log: a full replacement (`o` holds `_id`), a `$v: 2` delta
//! (`{$v: 2, diff: {...}}`, 5.0 and later) and the 4.4 form (`$v: 1` or no
//! `$v`, with `$set` and `$unset` only, or an unversioned replacement).
//!
//! Like the server in oplog application mode, a `$set` whose path cannot be
//! created (it runs through a string, say) is skipped rather than failed:
//! a later entry of the same oplog rewrites that field, which is what makes
//! replaying a slice over data copied while it was written converge.

use bson::{Bson, Document};

use super::diff::{self, parse_index};

/// The most nulls a legacy `$set` past the end of an array may add, as the
/// server's `kMaxPaddingAllowed`.
const MAX_PADDING: usize = 1_500_000;

/// Whether `o` replaces the whole document rather than changing fields.
pub(crate) fn is_replacement(o: &Document) -> bool {
    if o.contains_key("_id") {
        return true;
    }
    match version(o) {
        Ok(1) => !o.keys().any(|k| k.starts_with('$')),
        _ => false,
    }
}

fn version(o: &Document) -> Result<i64, String> {
    match o.get("$v") {
        None => Ok(1),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() < 1e9 => Ok(*v as i64),
        Some(other) => Err(format!("the update has an unknown $v {other}")),
    }
}

/// The document `doc` becomes after the update `o`; the error says what in
/// `o` cannot be applied.
pub(crate) fn apply_update(doc: &Document, o: &Document) -> Result<Document, String> {
    if o.contains_key("_id") {
        return Ok(o.clone());
    }
    match version(o)? {
        2 => match o.get("diff") {
            Some(Bson::Document(d)) => diff::apply(doc, d),
            _ => Err("a $v: 2 update has no diff document".into()),
        },
        1 => apply_legacy(doc, o),
        v => Err(format!("the update has the unknown format $v: {v}")),
    }
}

enum LegacyOp<'a> {
    Set(&'a Bson),
    Unset,
}

fn apply_legacy(doc: &Document, o: &Document) -> Result<Document, String> {
    let fields: Vec<(&String, &Bson)> = o.iter().filter(|(k, _)| *k != "$v").collect();
    if !fields.iter().any(|(k, _)| k.starts_with('$')) {
        // An unversioned replacement without `_id` keeps the stored one.
        let mut out = Document::new();
        if let Some(id) = doc.get("_id") {
            out.insert("_id", id.clone());
        }
        out.extend(fields.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        return Ok(out);
    }
    let mut leaves: Vec<(Vec<&str>, LegacyOp<'_>)> = Vec::new();
    for (op, args) in fields {
        let Bson::Document(args) = args else {
            return Err(format!("the {op} of a legacy update is not a document"));
        };
        for (path, value) in args {
            let parts: Vec<&str> = path.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(format!("the legacy update names the invalid path {path:?}"));
            }
            match op.as_str() {
                "$set" => leaves.push((parts, LegacyOp::Set(value))),
                "$unset" => leaves.push((parts, LegacyOp::Unset)),
                other => {
                    return Err(format!(
                        "a legacy ($v: 1) update holds {other}, but only $set and $unset are \
                         ever logged in that form"
                    ))
                }
            }
        }
    }
    // 4.4 walked its update tree in byte order of the field names, which
    // decides the order of newly created fields.
    leaves.sort_by(|a, b| {
        a.0.iter()
            .map(|s| s.as_bytes())
            .cmp(b.0.iter().map(|s| s.as_bytes()))
    });
    let mut out = doc.clone();
    for (parts, op) in leaves {
        match op {
            LegacyOp::Set(v) => set_in_doc(&mut out, &parts, v)?,
            LegacyOp::Unset => unset_in_doc(&mut out, &parts),
        }
    }
    Ok(out)
}

/// `{a: {b: v}}` for the parts `a.b`.
fn nested(parts: &[&str], value: &Bson) -> Bson {
    parts.iter().rev().fold(value.clone(), |inner, part| {
        let mut d = Document::new();
        d.insert(*part, inner);
        Bson::Document(d)
    })
}

fn set_in_doc(d: &mut Document, parts: &[&str], value: &Bson) -> Result<(), String> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        match d.get_mut(*head) {
            Some(slot) => *slot = value.clone(),
            None => {
                d.insert(*head, value.clone());
            }
        }
        return Ok(());
    }
    match d.get_mut(*head) {
        None => {
            d.insert(*head, nested(rest, value));
            Ok(())
        }
        Some(Bson::Document(sub)) => set_in_doc(sub, rest, value),
        Some(Bson::Array(arr)) => set_in_array(arr, rest, value),
        Some(_) => Ok(()),
    }
}

fn set_in_array(arr: &mut Vec<Bson>, parts: &[&str], value: &Bson) -> Result<(), String> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    let Some(idx) = parse_index(head) else {
        // A field name inside an array cannot be created: skipped.
        return Ok(());
    };
    let padded = idx >= arr.len();
    if padded {
        if idx - arr.len() > MAX_PADDING {
            return Err(format!(
                "the legacy update sets index {idx} of an array of {} elements, more padding \
                 than the server allows",
                arr.len()
            ));
        }
        arr.resize(idx + 1, Bson::Null);
    }
    if rest.is_empty() {
        arr[idx] = value.clone();
        return Ok(());
    }
    match &mut arr[idx] {
        slot @ Bson::Null if padded => {
            *slot = nested(rest, value);
            Ok(())
        }
        Bson::Document(sub) => set_in_doc(sub, rest, value),
        Bson::Array(inner) => set_in_array(inner, rest, value),
        _ => Ok(()),
    }
}

fn unset_in_doc(d: &mut Document, parts: &[&str]) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        d.remove(*head);
        return;
    }
    match d.get_mut(*head) {
        Some(Bson::Document(sub)) => unset_in_doc(sub, rest),
        Some(Bson::Array(arr)) => unset_in_array(arr, rest),
        _ => {}
    }
}

/// `$unset` of an array element leaves a null in its place, as the server
/// does, so the other elements keep their indexes.
fn unset_in_array(arr: &mut [Bson], parts: &[&str]) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    let Some(slot) = parse_index(head).and_then(|i| arr.get_mut(i)) else {
        return;
    };
    if rest.is_empty() {
        *slot = Bson::Null;
        return;
    }
    match slot {
        Bson::Document(sub) => unset_in_doc(sub, rest),
        Bson::Array(inner) => unset_in_array(inner, rest),
        _ => {}
    }
}

//! The array operators' element-level work: where `$push` inserts and how
//! its `$sort` / `$slice` reshape the array (`push_node.cpp`,
//! `pattern_cmp.cpp`), and the subset of query matching `$pull` needs
//! (`pull_node.cpp`'s three matchers).

use bson::{Bson, Document};

use super::args::{FieldCond, PullCond, PushSpec, SortSpec};
use super::diff::parse_index;
use super::value;

/// What `$push` did (`ModifierNode::ModifyResult` for `PushNode`).
pub(crate) enum PushOutcome {
    NoOp,
    /// Logged as an update of the whole array.
    Replace(Vec<Bson>),
    /// Only appended `added` values at the end: logged as new indexes.
    Append {
        array: Vec<Bson>,
        added: usize,
    },
}

/// `PushNode::performPush` on an existing (or freshly created empty) array.
pub(crate) fn push(mut arr: Vec<Bson>, spec: &PushSpec) -> PushOutcome {
    let size = i64::try_from(arr.len()).unwrap_or(i64::MAX);
    let n = spec.values.len();
    let mut appended = false;
    let mut changed = n > 0;
    if n > 0 {
        let at = if size == 0 {
            0
        } else if spec.position > size {
            appended = true;
            arr.len()
        } else if spec.position > 0 {
            usize::try_from(spec.position).unwrap_or(arr.len())
        } else if spec.position < 0 && spec.position.unsigned_abs() < size.unsigned_abs() {
            usize::try_from(size + spec.position).unwrap_or(0)
        } else {
            0
        };
        let tail = arr.split_off(at.min(arr.len()));
        arr.extend(spec.values.iter().cloned());
        arr.extend(tail);
    }
    if let Some(sort) = &spec.sort {
        appended = false;
        changed = true;
        sort_array(&mut arr, sort);
    }
    let limit = if spec.slice == i64::MIN {
        i64::MAX.unsigned_abs()
    } else {
        spec.slice.unsigned_abs()
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if arr.len() > limit {
        appended = false;
        changed = true;
        if spec.slice >= 0 {
            arr.truncate(limit);
        } else {
            arr.drain(..arr.len() - limit);
        }
    }
    if !changed {
        PushOutcome::NoOp
    } else if appended {
        PushOutcome::Append {
            array: arr,
            added: n,
        }
    } else {
        PushOutcome::Replace(arr)
    }
}

/// `PatternElementCmp`: whole values, or the pattern's fields extracted from
/// each element (missing ones as null), compared with per-field direction.
fn sort_array(arr: &mut Vec<Bson>, sort: &SortSpec) {
    match sort {
        SortSpec::Whole(asc) => {
            let asc = *asc;
            value::stable_sort_by(arr, &move |a: &Bson, b: &Bson| {
                let o = value::compare_values(a, b);
                if asc {
                    o
                } else {
                    o.reverse()
                }
            });
        }
        SortSpec::Fields(fields) => {
            let key = |v: &Bson, path: &[String]| -> Bson {
                let mut cur = v;
                for p in path {
                    match cur {
                        Bson::Document(d) => match d.get(p) {
                            Some(next) => cur = next,
                            None => return Bson::Null,
                        },
                        _ => return Bson::Null,
                    }
                }
                cur.clone()
            };
            let fields = fields.clone();
            value::stable_sort_by(arr, &move |a: &Bson, b: &Bson| {
                for (path, asc) in &fields {
                    // Non-documents are wrapped as {"": value} by the server,
                    // so every field of the pattern is missing for them.
                    let o = value::compare_values(&key(a, path), &key(b, path));
                    let o = if *asc { o } else { o.reverse() };
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
    }
}

/// The subset of query semantics `$pull` needs.
pub(crate) fn pull_matches(cond: &PullCond, elem: &Bson) -> bool {
    match cond {
        PullCond::Equal(v) => value::values_equal(elem, v),
        PullCond::Ops(ops) => {
            // The element is matched as `{"": element}`, so an array element
            // also matches through its members.
            let mut vals = vec![elem];
            if let Bson::Array(a) = elem {
                vals.extend(a.iter());
            }
            ops_match(&vals, ops)
        }
        PullCond::Query(fields) => {
            let Bson::Document(d) = elem else {
                return false;
            };
            fields.iter().all(|(path, fc)| field_matches(d, path, fc))
        }
    }
}

/// Values at a dotted path, descending into arrays of documents the way the
/// matcher does; an array at the end also yields its elements.
fn path_values<'a>(v: &'a Bson, path: &[String], out: &mut Vec<&'a Bson>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(v);
        if let Bson::Array(a) = v {
            out.extend(a.iter());
        }
        return;
    };
    match v {
        Bson::Document(d) => {
            if let Some(next) = d.get(first) {
                path_values(next, rest, out);
            }
        }
        Bson::Array(a) => {
            if let Some(i) = parse_index(first) {
                if let Some(next) = a.get(i) {
                    path_values(next, rest, out);
                }
            }
            for e in a {
                if matches!(e, Bson::Document(_)) {
                    path_values(e, path, out);
                }
            }
        }
        _ => {}
    }
}

fn field_matches(doc: &Document, path: &[String], cond: &FieldCond) -> bool {
    let root = Bson::Document(doc.clone());
    let mut vals = Vec::new();
    path_values(&root, path, &mut vals);
    match cond {
        FieldCond::Equal(v) => {
            if vals.is_empty() {
                return matches!(v, Bson::Null);
            }
            vals.iter().any(|x| value::values_equal(x, v))
        }
        FieldCond::Ops(ops) => ops_match(&vals, ops),
    }
}

fn ops_match(vals: &[&Bson], ops: &[(String, Bson)]) -> bool {
    ops.iter().all(|(op, arg)| {
        if vals.is_empty() {
            return op_matches(op, arg, None);
        }
        match op.as_str() {
            // Negations must hold for every candidate value.
            "$ne" | "$nin" => vals.iter().all(|x| op_matches(op, arg, Some(x))),
            _ => vals.iter().any(|x| op_matches(op, arg, Some(x))),
        }
    })
}

fn op_matches(op: &str, arg: &Bson, v: Option<&Bson>) -> bool {
    let eq = |v: Option<&Bson>, arg: &Bson| match v {
        Some(x) => value::values_equal(x, arg),
        None => matches!(arg, Bson::Null),
    };
    let cmp = |pred: fn(std::cmp::Ordering) -> bool| match v {
        Some(x) if value::same_class(x, arg) => pred(value::compare_values(x, arg)),
        _ => false,
    };
    match op {
        "$eq" => eq(v, arg),
        "$ne" => !eq(v, arg),
        "$gt" => cmp(|o| o == std::cmp::Ordering::Greater),
        "$gte" => cmp(|o| o != std::cmp::Ordering::Less),
        "$lt" => cmp(|o| o == std::cmp::Ordering::Less),
        "$lte" => cmp(|o| o != std::cmp::Ordering::Greater),
        "$in" | "$nin" => {
            let hit = match arg {
                Bson::Array(items) => items.iter().any(|i| eq(v, i)),
                _ => false,
            };
            (op == "$in") == hit
        }
        _ => false,
    }
}

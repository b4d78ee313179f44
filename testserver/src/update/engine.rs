//! Applying parsed field operations to a document while recording the
//! `$v: 2` diff, following `ModifierNode::apply` and the per-operator nodes
//! (`set_node.cpp`, `arithmetic_node.cpp`, `push_node.cpp`, ...).
//!
//! Each operation resolves its path against the document as it stands at
//! that moment (earlier operations may have created parents), which is what
//! the server's tree walk with `pathTaken` / `pathToCreate` amounts to.

use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use bson::{Bson, Document, Timestamp};

use super::args::Op;
use super::arrays::{self, PushOutcome};
use super::diff::{parse_index, Comp, DiffBuilder};
use super::spec::Leaf;
use super::value::{self, codes, err, fmt_elem, type_name, Arith, ArithResult};
use crate::error::{codes as ec, CmdResult};

/// Most nulls a `$set` past the end of an array may add (`kMaxPaddingAllowed`).
const MAX_PADDING: usize = 1_500_000;

pub(crate) struct Engine {
    pub(crate) doc: Document,
    pub(crate) diff: DiffBuilder,
    pub(crate) changed: bool,
    is_insert: bool,
    /// Oplog application: no immutable-field or storage checks, and a `$set`
    /// on a non-viable path is skipped (idempotent replay).
    from_oplog: bool,
}

/// Where a path ends up in the current document.
struct Located {
    /// The existing prefix (`pathTaken`), with how each step was reached.
    taken: Vec<Comp>,
    /// What holds the first missing component (the server's "element").
    deepest: Deepest,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Deepest {
    Object,
    Array(usize),
    Scalar,
}

/// What an operator did to an existing value (`ModifierNode::ModifyResult`).
enum Outcome {
    NoOp,
    /// Replace the value; logged as an update of the whole element.
    Replace(Bson),
    /// Only appended to the array; logged as creations of the new indexes.
    Append {
        array: Vec<Bson>,
        added: usize,
    },
}

impl Engine {
    pub(crate) fn new(doc: Document, is_insert: bool, from_oplog: bool) -> Self {
        Engine {
            doc,
            diff: DiffBuilder::default(),
            changed: false,
            is_insert,
            from_oplog,
        }
    }

    pub(crate) fn apply(&mut self, leaf: &Leaf) -> CmdResult<()> {
        match &leaf.op {
            Op::RenameSource => Ok(()),
            // `Context::kInsertOnly`: still parsed (for conflicts), not applied.
            Op::SetOnInsert(_) if !self.is_insert => Ok(()),
            Op::RenameTo { from } => self.rename(leaf, from),
            _ => {
                let loc = locate(&self.doc, &leaf.parts);
                if loc.taken.len() == leaf.parts.len() {
                    self.apply_existing(leaf, &loc.taken)
                } else {
                    self.apply_missing(leaf, &loc)
                }
            }
        }
    }

    fn id_text(&self) -> String {
        value::id_elem(&self.doc).unwrap_or_else(|| "INVALID-MUTABLE-ELEMENT".to_string())
    }

    /// `checkImmutablePathsNotModified` for `_id`.
    fn check_id_untouched(&self, parts: &[String]) -> CmdResult<()> {
        if !self.from_oplog && parts.first().is_some_and(|p| p == "_id") {
            return Err(err(
                ec::IMMUTABLE_FIELD,
                format!(
                    "Performing an update on the path '{}' would modify the immutable field '_id'",
                    parts.join(".")
                ),
            ));
        }
        Ok(())
    }

    /// Storage validation of a top-level field name (5.0+ only rejects
    /// `$`-prefixed names at the top level).
    fn check_top_level_name(&self, depth: usize, name: &str) -> CmdResult<()> {
        if !self.from_oplog && depth == 0 && name.starts_with('$') {
            return Err(err(
                ec::DOLLAR_PREFIXED_FIELD_NAME,
                format!(
                    "The dollar ($) prefixed field '{name}' in '{name}' is not allowed in the \
                     context of an update's replacement document. Consider using an aggregation \
                     pipeline with $replaceWith."
                ),
            ));
        }
        Ok(())
    }

    fn apply_existing(&mut self, leaf: &Leaf, taken: &[Comp]) -> CmdResult<()> {
        let Some(current) = get(&self.doc, taken).cloned() else {
            return Ok(());
        };
        let field_name = leaf.parts.last().cloned().unwrap_or_default();
        if let Op::Unset = leaf.op {
            self.check_id_untouched(&leaf.parts)?;
            self.changed = true;
            if matches!(taken.last(), Some(Comp::Index(_))) {
                // `$unset` of an array element nulls it instead of shifting.
                set_at(&mut self.doc, taken, Bson::Null);
                self.diff.updated(taken, Bson::Null);
            } else {
                remove_at(&mut self.doc, taken);
                self.diff.deleted(taken);
            }
            return Ok(());
        }
        let outcome = self.modify_existing(&leaf.op, &current, &field_name, &leaf.dotted())?;
        match outcome {
            Outcome::NoOp => Ok(()),
            Outcome::Replace(new) => {
                self.check_id_untouched(&leaf.parts)?;
                self.check_top_level_name(taken.len() - 1, &field_name)?;
                self.changed = true;
                set_at(&mut self.doc, taken, new.clone());
                self.diff.updated(taken, new);
                Ok(())
            }
            Outcome::Append { array, added } => {
                self.check_id_untouched(&leaf.parts)?;
                self.changed = true;
                let start = array.len() - added;
                let appended: Vec<Bson> = array[start..].to_vec();
                set_at(&mut self.doc, taken, Bson::Array(array));
                let mut path = taken.to_vec();
                for (i, v) in appended.into_iter().enumerate() {
                    path.push(Comp::Index(start + i));
                    self.diff.created(&path, path.len() - 1, v);
                    path.pop();
                }
                Ok(())
            }
        }
    }

    /// `updateExistingElement` of each operator.
    fn modify_existing(
        &self,
        op: &Op,
        cur: &Bson,
        field: &str,
        dotted: &str,
    ) -> CmdResult<Outcome> {
        Ok(match op {
            Op::Set(v) | Op::SetOnInsert(v) => {
                if value::binary_equal(cur, v) {
                    Outcome::NoOp
                } else {
                    Outcome::Replace(v.clone())
                }
            }
            Op::Inc(v) | Op::Mul(v) => {
                let (arith, name) = match op {
                    Op::Inc(_) => (Arith::Add, "$inc"),
                    _ => (Arith::Mul, "$mul"),
                };
                if !value::is_number(cur) {
                    return Err(err(
                        ec::TYPE_MISMATCH,
                        format!(
                            "Cannot apply {name} to a value of non-numeric type. {{{}}} has the \
                             field '{field}' of non-numeric type {}",
                            self.id_text(),
                            type_name(cur)
                        ),
                    ));
                }
                match value::arith(arith, v, cur) {
                    ArithResult::Value(new) if value::identical_numbers(&new, cur) => Outcome::NoOp,
                    ArithResult::Value(new) => Outcome::Replace(new),
                    ArithResult::Overflow => {
                        return Err(err(
                            ec::BAD_VALUE,
                            format!(
                                "Failed to apply {name} operations to current value ({}) for \
                                 document {{{}}}",
                                value::safenum_debug(cur),
                                self.id_text()
                            ),
                        ))
                    }
                    ArithResult::Unsupported => {
                        return Err(err(
                            codes::NOT_IMPLEMENTED,
                            format!(
                                "{name} on decimal values is not supported by this test server"
                            ),
                        ))
                    }
                }
            }
            Op::Min(v) | Op::Max(v) => {
                let ord = value::compare_values(cur, v);
                let keep = match op {
                    Op::Min(_) => ord != std::cmp::Ordering::Greater,
                    _ => ord != std::cmp::Ordering::Less,
                };
                if keep {
                    Outcome::NoOp
                } else {
                    Outcome::Replace(v.clone())
                }
            }
            Op::CurrentDate { timestamp } => Outcome::Replace(now(*timestamp)),
            Op::Push(spec) => {
                let Bson::Array(arr) = cur else {
                    let id = value::id_elem(&self.doc).unwrap_or_else(|| "no id".to_string());
                    return Err(err(
                        ec::BAD_VALUE,
                        format!(
                            "The field '{dotted}' must be an array but is of type {} in document {{{id}}}",
                            type_name(cur)
                        ),
                    ));
                };
                match arrays::push(arr.clone(), spec) {
                    PushOutcome::NoOp => Outcome::NoOp,
                    PushOutcome::Replace(arr) => Outcome::Replace(Bson::Array(arr)),
                    PushOutcome::Append { array, added } => Outcome::Append { array, added },
                }
            }
            Op::AddToSet(items) => {
                let Bson::Array(arr) = cur else {
                    return Err(err(
                        ec::BAD_VALUE,
                        format!(
                            "Cannot apply $addToSet to non-array field. Field named '{field}' has \
                             non-array type {}",
                            type_name(cur)
                        ),
                    ));
                };
                let mut arr = arr.clone();
                let before = arr.len();
                for item in items {
                    if !arr[..before].iter().any(|e| value::values_equal(e, item)) {
                        arr.push(item.clone());
                    }
                }
                // 7.0 logs the whole array for $addToSet (the append-only
                // form is a later server's optimisation).
                if arr.len() == before {
                    Outcome::NoOp
                } else {
                    Outcome::Replace(Bson::Array(arr))
                }
            }
            Op::Pop { front } => {
                let Bson::Array(arr) = cur else {
                    return Err(err(
                        ec::TYPE_MISMATCH,
                        format!(
                            "Path '{dotted}' contains an element of non-array type '{}'",
                            type_name(cur)
                        ),
                    ));
                };
                if arr.is_empty() {
                    Outcome::NoOp
                } else {
                    let mut arr = arr.clone();
                    if *front {
                        arr.remove(0);
                    } else {
                        arr.pop();
                    }
                    Outcome::Replace(Bson::Array(arr))
                }
            }
            Op::Pull(_) | Op::PullAll(_) => {
                let Bson::Array(arr) = cur else {
                    return Err(err(
                        ec::BAD_VALUE,
                        "Cannot apply $pull to a non-array value",
                    ));
                };
                let kept: Vec<Bson> = arr
                    .iter()
                    .filter(|e| !match op {
                        Op::Pull(cond) => arrays::pull_matches(cond, e),
                        Op::PullAll(items) => items.iter().any(|i| value::values_equal(i, e)),
                        _ => false,
                    })
                    .cloned()
                    .collect();
                if kept.len() == arr.len() {
                    Outcome::NoOp
                } else {
                    Outcome::Replace(Bson::Array(kept))
                }
            }
            Op::Unset | Op::RenameSource | Op::RenameTo { .. } => Outcome::NoOp,
        })
    }

    /// The value an operator creates at a missing path
    /// (`setValueForNewElement`), or `None` for operators that never create.
    fn new_value(&self, op: &Op) -> Option<Bson> {
        match op {
            Op::Set(v) | Op::SetOnInsert(v) | Op::Inc(v) | Op::Min(v) | Op::Max(v) => {
                Some(v.clone())
            }
            // `_val * 0`: a zero of the argument's type.
            Op::Mul(v) => match value::arith(Arith::Mul, v, &Bson::Int32(0)) {
                ArithResult::Value(z) => Some(z),
                _ => Some(v.clone()),
            },
            Op::CurrentDate { timestamp } => Some(now(*timestamp)),
            Op::Push(spec) => Some(Bson::Array(match arrays::push(Vec::new(), spec) {
                PushOutcome::Replace(array) | PushOutcome::Append { array, .. } => array,
                PushOutcome::NoOp => Vec::new(),
            })),
            Op::AddToSet(items) => Some(Bson::Array(items.clone())),
            _ => None,
        }
    }

    fn apply_missing(&mut self, leaf: &Leaf, loc: &Located) -> CmdResult<()> {
        let Some(new) = self.new_value(&leaf.op) else {
            // `$unset` never complains; `$pop`/`$pull` only on non-viable paths.
            if !matches!(leaf.op, Op::Unset) {
                self.check_viability(leaf, loc)?;
            }
            return Ok(());
        };
        match self.create(leaf, loc, new) {
            Err(e) if self.from_oplog && e.code == codes::PATH_NOT_VIABLE => Ok(()),
            other => other,
        }
    }

    /// `UpdateLeafNode::checkViability`.
    fn check_viability(&self, leaf: &Leaf, loc: &Located) -> CmdResult<()> {
        let next = &leaf.parts[loc.taken.len()];
        let ok = match loc.deepest {
            Deepest::Object => true,
            Deepest::Array(_) => parse_index(next).is_some(),
            Deepest::Scalar => false,
        };
        if ok {
            return Ok(());
        }
        let holder = self.element_text(&loc.taken);
        Err(err(
            codes::PATH_NOT_VIABLE,
            format!(
                "Cannot use the part ({next}) of ({}) to traverse the element ({{{holder}}})",
                leaf.dotted()
            ),
        ))
    }

    /// `name: value` of the element at `taken` (the server's element.toString()).
    fn element_text(&self, taken: &[Comp]) -> String {
        match (taken.last(), get(&self.doc, taken)) {
            (Some(last), Some(v)) => fmt_elem(&comp_name(last), v),
            _ => String::new(),
        }
    }

    /// `pathsupport::createPathAt` plus the checks and logging
    /// `applyToNonexistentElement` does around it.
    fn create(&mut self, leaf: &Leaf, loc: &Located, new: Bson) -> CmdResult<()> {
        let depth = loc.taken.len();
        let first = &leaf.parts[depth];
        let index = match loc.deepest {
            Deepest::Object => None,
            Deepest::Array(len) => match digits_index(first) {
                Some(i) if i - len.min(i) > MAX_PADDING => {
                    return Err(err(
                        codes::CANNOT_BACKFILL_ARRAY,
                        format!("can't backfill more than {MAX_PADDING} elements"),
                    ))
                }
                Some(i) => Some(i),
                None => return Err(self.cannot_create(first, &loc.taken)),
            },
            Deepest::Scalar => return Err(self.cannot_create(first, &loc.taken)),
        };
        self.check_top_level_name(depth, first)?;
        if !self.from_oplog
            && loc
                .taken
                .first()
                .is_some_and(|c| *c == Comp::Field("_id".into()))
        {
            // Creating below an existing `_id` changes it.
            return Err(err(
                ec::IMMUTABLE_FIELD,
                format!(
                    "Updating the path '{}' to {} would modify the immutable field '_id'",
                    loc.taken
                        .iter()
                        .map(comp_name)
                        .collect::<Vec<_>>()
                        .join("."),
                    self.element_text(&loc.taken)
                ),
            ));
        }

        // Nest the value under the remaining components.
        let mut value = new;
        for part in leaf.parts[depth + 1..].iter().rev() {
            let mut d = Document::new();
            d.insert(part.clone(), value);
            value = Bson::Document(d);
        }
        let mut path = loc.taken.clone();
        match (container_mut(&mut self.doc, &loc.taken), index) {
            (Some(Container::Doc(d)), _) => {
                d.insert(first.clone(), value);
                path.push(Comp::Field(first.clone()));
            }
            (Some(Container::Arr(a)), Some(i)) => {
                a.resize(i.max(a.len()), Bson::Null);
                a.push(value);
                path.push(Comp::Index(i));
            }
            _ => return Ok(()),
        }
        path.extend(
            leaf.parts[depth + 1..]
                .iter()
                .map(|p| Comp::Field(p.clone())),
        );
        self.changed = true;
        // The log references the leaf element, which is the value itself.
        if let Some(v) = get(&self.doc, &path).cloned() {
            self.diff.created(&path, depth, v);
        }
        Ok(())
    }

    fn cannot_create(&self, part: &str, taken: &[Comp]) -> crate::error::CommandError {
        err(
            codes::PATH_NOT_VIABLE,
            format!(
                "Cannot create field '{part}' in element {{{}}}",
                self.element_text(taken)
            ),
        )
    }

    /// `RenameNode::apply`: a `$set` of the source value at the destination
    /// followed by an `$unset` of the source.
    fn rename(&mut self, leaf: &Leaf, from: &[String]) -> CmdResult<()> {
        let src = find_longest_prefix(&self.doc, from)?;
        let Some(src_path) = src else { return Ok(()) };
        let Some(value) = get(&self.doc, &src_path).cloned() else {
            return Ok(());
        };
        let no_id = || "no id".to_string();
        let id = value::id_elem(&self.doc).unwrap_or_else(no_id);
        // Renaming through an array is prohibited (the element itself may be one).
        for depth in (1..src_path.len()).rev() {
            if let Some(Bson::Array(_)) = get(&self.doc, &src_path[..depth]) {
                return Err(err(
                    ec::BAD_VALUE,
                    format!(
                        "The source field cannot be an array element, '{}' in doc with {id} has \
                         an array field called '{}'",
                        from.join("."),
                        comp_name(&src_path[depth - 1])
                    ),
                ));
            }
        }
        let dest = locate(&self.doc, &leaf.parts);
        let exists = dest.taken.len() == leaf.parts.len();
        // Check the destination's existing ancestors (and, when it has to be
        // created, the element it would be created in).
        let upto = if exists {
            dest.taken.len() - 1
        } else {
            dest.taken.len()
        };
        for depth in (1..=upto).rev() {
            if let Some(Bson::Array(_)) = get(&self.doc, &dest.taken[..depth]) {
                return Err(err(
                    ec::BAD_VALUE,
                    format!(
                        "The destination field cannot be an array element, '{}' in doc with {id} \
                         has an array field called '{}'",
                        leaf.dotted(),
                        comp_name(&dest.taken[depth - 1])
                    ),
                ));
            }
        }
        if exists {
            // `SetElementNode` always writes, even an identical value.
            self.check_id_untouched(&leaf.parts)?;
            self.check_top_level_name(dest.taken.len() - 1, &leaf.parts[dest.taken.len() - 1])?;
            set_at(&mut self.doc, &dest.taken, value.clone());
            self.diff.updated(&dest.taken, value);
            self.changed = true;
        } else {
            self.create(leaf, &dest, value)?;
        }
        self.check_id_untouched(from)?;
        // The source path is unchanged by the set (paths cannot overlap).
        let src_path: Vec<Comp> = from.iter().map(|p| Comp::Field(p.clone())).collect();
        remove_at(&mut self.doc, &src_path);
        self.diff.deleted(&src_path);
        self.changed = true;
        Ok(())
    }
}

fn comp_name(c: &Comp) -> String {
    match c {
        Comp::Field(f) => f.clone(),
        Comp::Index(i) => i.to_string(),
    }
}

/// `isNumeric` in `path_support.cpp` (digits only) used when creating into an array.
fn digits_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<usize>().ok()
}

fn now(timestamp: bool) -> Bson {
    if timestamp {
        // The server reserves a cluster-time tick; we only promise a
        // non-decreasing (seconds, counter) pair.
        static COUNTER: AtomicU32 = AtomicU32::new(1);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Bson::Timestamp(Timestamp {
            time: u32::try_from(secs).unwrap_or(u32::MAX),
            increment: COUNTER.fetch_add(1, AtomicOrdering::Relaxed),
        })
    } else {
        Bson::DateTime(bson::DateTime::now())
    }
}

/// Walks `parts` as far as the document allows (`getChild` per component).
fn locate(doc: &Document, parts: &[String]) -> Located {
    let mut taken = Vec::new();
    let mut cur: Option<&Bson> = None;
    for part in parts {
        let next = match cur {
            None => doc.get(part).map(|v| (v, Comp::Field(part.clone()))),
            Some(Bson::Document(d)) => d.get(part).map(|v| (v, Comp::Field(part.clone()))),
            Some(Bson::Array(a)) => {
                parse_index(part).and_then(|i| a.get(i).map(|v| (v, Comp::Index(i))))
            }
            Some(_) => None,
        };
        match next {
            Some((v, comp)) => {
                taken.push(comp);
                cur = Some(v);
            }
            None => break,
        }
    }
    let deepest = match cur {
        None | Some(Bson::Document(_)) => Deepest::Object,
        Some(Bson::Array(a)) => Deepest::Array(a.len()),
        Some(_) => Deepest::Scalar,
    };
    Located { taken, deepest }
}

/// `pathsupport::findLongestPrefix` as `$rename` uses it for its source:
/// `Ok(None)` when the source is missing, an error when a component would
/// have to traverse a scalar (or index an array by name).
fn find_longest_prefix(doc: &Document, parts: &[String]) -> CmdResult<Option<Vec<Comp>>> {
    let mut taken = Vec::new();
    let mut cur: Option<&Bson> = None;
    for (i, part) in parts.iter().enumerate() {
        let step = match cur {
            None => Ok(doc.get(part).map(|v| (v, Comp::Field(part.clone())))),
            Some(Bson::Document(d)) => Ok(d.get(part).map(|v| (v, Comp::Field(part.clone())))),
            Some(Bson::Array(a)) => match digits_index(part) {
                Some(idx) => Ok(a.get(idx).map(|v| (v, Comp::Index(idx)))),
                None => Err(()),
            },
            Some(_) => Err(()),
        };
        match step {
            Ok(Some((v, comp))) => {
                taken.push(comp);
                cur = Some(v);
            }
            Ok(None) => return Ok(None),
            Err(()) => {
                if i == 0 {
                    return Ok(None);
                }
                let holder = match (taken.last(), cur) {
                    (Some(c), Some(v)) => fmt_elem(&comp_name(c), v),
                    _ => String::new(),
                };
                return Err(err(
                    codes::PATH_NOT_VIABLE,
                    format!(
                        "cannot use the part ({} of {}) to traverse the element ({{{holder}}})",
                        parts[i - 1],
                        parts.join(".")
                    ),
                ));
            }
        }
    }
    Ok(Some(taken))
}

fn get<'a>(doc: &'a Document, path: &[Comp]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    let Comp::Field(f) = first else { return None };
    let mut cur = doc.get(f)?;
    for c in rest {
        cur = match (cur, c) {
            (Bson::Document(d), Comp::Field(f)) => d.get(f)?,
            (Bson::Array(a), Comp::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(doc: &'a mut Document, path: &[Comp]) -> Option<&'a mut Bson> {
    let (first, rest) = path.split_first()?;
    let Comp::Field(f) = first else { return None };
    let mut cur = doc.get_mut(f)?;
    for c in rest {
        cur = match (cur, c) {
            (Bson::Document(d), Comp::Field(f)) => d.get_mut(f)?,
            (Bson::Array(a), Comp::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

enum Container<'a> {
    Doc(&'a mut Document),
    Arr(&'a mut Vec<Bson>),
}

fn container_mut<'a>(doc: &'a mut Document, path: &[Comp]) -> Option<Container<'a>> {
    if path.is_empty() {
        return Some(Container::Doc(doc));
    }
    match get_mut(doc, path)? {
        Bson::Document(d) => Some(Container::Doc(d)),
        Bson::Array(a) => Some(Container::Arr(a)),
        _ => None,
    }
}

fn set_at(doc: &mut Document, path: &[Comp], v: Bson) {
    if let Some(slot) = get_mut(doc, path) {
        *slot = v;
    }
}

fn remove_at(doc: &mut Document, path: &[Comp]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    match (container_mut(doc, parent), last) {
        (Some(Container::Doc(d)), Comp::Field(f)) => {
            d.remove(f);
        }
        (Some(Container::Arr(a)), Comp::Index(i)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

//! MongoDB query filters (`find`, `count`, `$match`, delete/update `q`):
//! parsing a filter document into a tree of predicates and evaluating it
//! against documents with MongoDB 7.0's semantics.
//!
//! The structure follows the server's `MatchExpression` (see
//! `src/mongo/db/matcher/expression_parser.cpp` and `path.cpp`): every leaf
//! predicate decides about one value ("matches single element"), and a path
//! predicate matches a document when any value its dotted path reaches
//! matches. Which values a path reaches is MongoDB's array traversal rule
//! (see [`lookup_path`] and `path_values`), and it is what makes `{a: 5}`
//! match `{a: [4, 5]}` and `{"a.b": null}` match `{a: [{b: 1}, {}]}`.
//! Parsing (with mongod's error codes and messages) lives in `parse`, and
//! `$regex` support in `pcre`.

mod parse;
mod pcre;

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::compare::{canonical_type_rank, cmp_bson, is_number, to_f64, type_code};
use crate::error::CmdResult;
use parse::parse_filter;
use pcre::Rx;

/// Whether `doc` matches the query `filter`. Parses the filter on every call;
/// use [`Matcher`] to match many documents against one filter.
pub fn matches(doc: &Document, filter: &Document) -> CmdResult<bool> {
    Ok(Matcher::new(filter)?.matches(doc))
}

/// A parsed filter, reusable across documents.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Expr,
}

impl Matcher {
    /// Parses `filter`, failing with MongoDB's error for malformed filters.
    pub fn new(filter: &Document) -> CmdResult<Matcher> {
        Ok(Matcher {
            root: parse_filter(filter)?,
        })
    }

    pub fn matches(&self, doc: &Document) -> bool {
        self.root.matches_doc(doc)
    }
}

/// All values that the dotted `path` reaches in `doc`, in document order.
///
/// Rule: each component looks up a field of a document. When a component
/// lands on an array before the path ends, the rest of the path continues
/// into every element that is a document, and a numeric component (`a.0`)
/// additionally selects the element at that index. Scalars met before the
/// path ends reach nothing. The value at the end of the path is returned as
/// it is: a leaf array is one value (callers that want its elements, as
/// `distinct` does, expand it themselves). Missing fields contribute nothing.
pub fn lookup_path<'a>(doc: &'a Document, path: &str) -> Vec<&'a Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    path_values(doc, &parts, false, &mut out);
    out.into_iter().flatten().collect()
}

/// MongoDB's `BSONElementIterator`: the candidate values for `parts`, with
/// `None` standing for "missing" (which `{a: null}` matches). With
/// `expand_leaf`, an array at the end of the path yields its elements first
/// and then itself; array operators (`$size`, `$elemMatch`) see only the
/// array.
fn path_values<'a>(
    doc: &'a Document,
    parts: &[&str],
    expand_leaf: bool,
    out: &mut Vec<Option<&'a Bson>>,
) {
    let mut current = doc;
    for (i, part) in parts.iter().enumerate() {
        let Some(value) = current.get(*part) else {
            out.push(None);
            return;
        };
        let rest = &parts[i + 1..];
        match value {
            Bson::Array(items) if rest.is_empty() => {
                if expand_leaf {
                    out.extend(items.iter().map(Some));
                }
                out.push(Some(value));
                return;
            }
            Bson::Array(items) => return array_values(items, rest, expand_leaf, out),
            _ if rest.is_empty() => {
                out.push(Some(value));
                return;
            }
            Bson::Document(sub) => current = sub,
            _ => {
                out.push(None);
                return;
            }
        }
    }
}

/// The rest of a path below an array that the path runs into.
fn array_values<'a>(
    items: &'a [Bson],
    rest: &[&str],
    expand_leaf: bool,
    out: &mut Vec<Option<&'a Bson>>,
) {
    let Some(next) = rest.first() else { return };
    let index_part = next.bytes().all(|b| b.is_ascii_digit()).then_some(*next);
    for (i, item) in items.iter().enumerate() {
        if let Bson::Document(sub) = item {
            path_values(sub, rest, expand_leaf, out);
        }
        if index_part != Some(i.to_string().as_str()) {
            continue;
        }
        match item {
            _ if rest.len() == 1 => out.push(Some(item)),
            Bson::Document(sub) => path_values(sub, &rest[1..], expand_leaf, out),
            Bson::Array(inner) => array_values(inner, &rest[1..], expand_leaf, out),
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Nor(Vec<Expr>),
    Not(Box<Expr>),
    Const(bool),
    /// A leaf predicate applied to the values at a dotted path; the path is
    /// empty for the operators inside a value `$elemMatch`.
    Path(String, Leaf),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone)]
enum Leaf {
    Cmp(CmpOp, Bson),
    In {
        values: Vec<Bson>,
        regexes: Vec<Rx>,
        has_null: bool,
    },
    Regex(Rx),
    Exists,
    Type {
        codes: Vec<i32>,
        numbers: bool,
    },
    Size(i64),
    Mod(i64, i64),
    ElemMatchObject(Box<Expr>),
    ElemMatchValue(Vec<Expr>),
}

impl Expr {
    fn matches_doc(&self, doc: &Document) -> bool {
        match self {
            Expr::And(v) => v.iter().all(|e| e.matches_doc(doc)),
            Expr::Or(v) => v.iter().any(|e| e.matches_doc(doc)),
            Expr::Nor(v) => !v.iter().any(|e| e.matches_doc(doc)),
            Expr::Not(e) => !e.matches_doc(doc),
            Expr::Const(b) => *b,
            Expr::Path(path, leaf) => {
                let parts: Vec<&str> = path.split('.').collect();
                let mut values = Vec::new();
                let expand = !matches!(
                    leaf,
                    Leaf::Size(_) | Leaf::ElemMatchObject(_) | Leaf::ElemMatchValue(_)
                );
                path_values(doc, &parts, expand, &mut values);
                values.into_iter().any(|v| leaf.matches_value(v))
            }
        }
    }

    /// The predicate applied to one value (inside a value `$elemMatch`).
    fn matches_value(&self, v: Option<&Bson>) -> bool {
        match self {
            Expr::And(list) => list.iter().all(|e| e.matches_value(v)),
            Expr::Or(list) => list.iter().any(|e| e.matches_value(v)),
            Expr::Nor(list) => !list.iter().any(|e| e.matches_value(v)),
            Expr::Not(e) => !e.matches_value(v),
            Expr::Const(b) => *b,
            Expr::Path(_, leaf) => leaf.matches_value(v),
        }
    }
}

impl Leaf {
    fn matches_value(&self, v: Option<&Bson>) -> bool {
        match self {
            Leaf::Cmp(op, rhs) => compare_matches(*op, v, rhs),
            Leaf::In {
                values,
                regexes,
                has_null,
            } => {
                // An $in holding null behaves like {$eq: null} for missing
                // and undefined values too.
                if *has_null && matches!(v, None | Some(Bson::Undefined)) {
                    return true;
                }
                v.is_some_and(|v| {
                    values.iter().any(|x| cmp_bson(v, x) == Ordering::Equal)
                        || regexes.iter().any(|r| r.matches(v))
                })
            }
            Leaf::Regex(r) => v.is_some_and(|v| r.matches(v)),
            Leaf::Exists => v.is_some(),
            Leaf::Type { codes, numbers } => {
                v.is_some_and(|v| codes.contains(&type_code(v)) || (*numbers && is_number(v)))
            }
            Leaf::Size(n) => matches!(v, Some(Bson::Array(a)) if a.len() as i64 == *n),
            Leaf::Mod(divisor, remainder) => v.is_some_and(|v| {
                let n = match v {
                    Bson::Int32(i) => i64::from(*i),
                    Bson::Int64(i) => *i,
                    _ => match to_f64(v) {
                        Some(f) if f.is_finite() => f as i64,
                        _ => return false,
                    },
                };
                n.wrapping_rem(*divisor) == *remainder
            }),
            Leaf::ElemMatchObject(sub) => match v {
                Some(Bson::Array(items)) => items.iter().any(|item| match item {
                    Bson::Document(d) => sub.matches_doc(d),
                    Bson::Array(a) => sub.matches_doc(&array_as_document(a)),
                    _ => false,
                }),
                _ => false,
            },
            Leaf::ElemMatchValue(preds) => match v {
                Some(Bson::Array(items)) => items
                    .iter()
                    .any(|item| preds.iter().all(|p| p.matches_value(Some(item)))),
                _ => false,
            },
        }
    }
}

/// A BSON array is a document keyed "0", "1", ...
fn array_as_document(items: &[Bson]) -> Document {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v.clone()))
        .collect()
}

/// `ComparisonMatchExpression::matchesSingleElement`: type bracketing (only
/// values of the operand's canonical type compare), null matching missing
/// and undefined, MinKey/MaxKey bounds, and NaN equal only to NaN.
fn compare_matches(op: CmpOp, v: Option<&Bson>, rhs: &Bson) -> bool {
    // A missing value ranks with undefined (BSON's EOO shares its rank).
    let left_rank = v.map_or(1, canonical_type_rank);
    let right_rank = canonical_type_rank(rhs);
    if left_rank != right_rank {
        if matches!((left_rank, right_rank), (1, 6) | (6, 1)) {
            return matches!(op, CmpOp::Eq | CmpOp::Lte | CmpOp::Gte);
        }
        return match rhs {
            Bson::MaxKey => matches!(op, CmpOp::Lt | CmpOp::Lte),
            Bson::MinKey => matches!(op, CmpOp::Gt | CmpOp::Gte),
            _ => false,
        };
    }
    let Some(v) = v else {
        return matches!(op, CmpOp::Eq | CmpOp::Lte | CmpOp::Gte);
    };
    let is_nan = |x: &Bson| is_number(x) && to_f64(x).is_some_and(f64::is_nan);
    if is_nan(v) || is_nan(rhs) {
        return is_nan(v) && is_nan(rhs) && op != CmpOp::Lt && op != CmpOp::Gt;
    }
    let ord = cmp_bson(v, rhs);
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Decimal128, Regex, Timestamp};

    /// `check! { doc, filter => matches; ... }` (a macro so that rustfmt
    /// keeps one case per line).
    macro_rules! check {
        ($($d:expr, $f:expr => $want:expr;)*) => {
            $(assert_eq!(matches(&$d, &$f).unwrap(), $want, "doc {} filter {}", $d, $f);)*
        };
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    fn ts(time: u32, increment: u32) -> Bson {
        Bson::Timestamp(Timestamp { time, increment })
    }

    fn re(pattern: &str, options: &str) -> Bson {
        Bson::RegularExpression(Regex {
            pattern: pattern.into(),
            options: options.into(),
        })
    }

    #[test]
    fn numbers_match_across_types() {
        let all = [
            Bson::Int32(1),
            Bson::Int64(1),
            Bson::Double(1.0),
            dec("1.0"),
        ];
        for (s, q) in all
            .iter()
            .flat_map(|s| all.iter().map(move |q| (s.clone(), q.clone())))
        {
            check! {
                doc! {"a": s.clone()}, doc! {"a": q.clone()} => true;
                doc! {"a": s.clone()}, doc! {"a": {"$in": [q.clone()]}} => true;
                doc! {"a": s.clone()}, doc! {"a": {"$ne": q.clone()}} => false;
                doc! {"a": [s.clone()]}, doc! {"a": {"$gte": q.clone()}} => true;
            }
        }
        check! {
            doc! {"a": 2}, doc! {"a": {"$gt": dec("1.5"), "$lt": 2.5}} => true;
            doc! {"a": f64::NAN}, doc! {"a": f64::NAN} => true;
            doc! {"a": f64::NAN}, doc! {"a": {"$lt": 0}} => false;
            doc! {"a": f64::NAN}, doc! {"a": {"$gte": dec("NaN")}} => true;
            doc! {"a": 0.1}, doc! {"a": dec("0.1")} => false;
            doc! {"a": 9007199254740993i64}, doc! {"a": 9007199254740992.0} => false;
        }
    }

    #[test]
    fn comparisons_are_type_bracketed() {
        let date = bson::DateTime::from_millis(5);
        check! {
            doc! {"a": "abc"}, doc! {"a": {"$gt": 5}} => false;
            doc! {"a": 5}, doc! {"a": {"$lt": "z"}} => false;
            doc! {"a": null}, doc! {"a": {"$lt": 5}} => false;
            doc! {"a": "b"}, doc! {"a": {"$gt": "a"}} => true;
            doc! {"a": {"x": 2}}, doc! {"a": {"$gt": {"x": 1}}} => true;
            doc! {"a": "x"}, doc! {"a": {"$gte": Bson::MinKey}} => true;
            doc! {}, doc! {"a": {"$gt": Bson::MinKey}} => true;
            doc! {"a": [1]}, doc! {"a": {"$lt": Bson::MaxKey}} => true;
            doc! {"a": Bson::MaxKey}, doc! {"a": {"$lt": Bson::MaxKey}} => false;
            doc! {"a": Bson::MaxKey}, doc! {"a": {"$lte": Bson::MaxKey}} => true;
            doc! {"a": 1}, doc! {"a": Bson::MinKey} => false;
            doc! {"a": 5}, doc! {"a": {"$gte": date}} => false;
            doc! {"a": date}, doc! {"a": {"$gte": date}} => true;
        }
    }

    #[test]
    fn timestamps_compare_as_time_then_increment() {
        let after = doc! {"ts": {"$gt": ts(100, 5)}};
        let range = doc! {"ts": {"$gte": ts(10, 1), "$lte": ts(10, 3)}};
        check! {
            doc! {"ts": ts(100, 6)}, after => true;
            doc! {"ts": ts(101, 0)}, after => true;
            doc! {"ts": ts(100, 5)}, after => false;
            doc! {"ts": ts(99, u32::MAX)}, after => false;
            doc! {"ts": ts(u32::MAX, 0)}, after => true;
            doc! {"ts": 200}, after => false;
            doc! {"ts": bson::DateTime::MAX}, after => false;
            doc! {}, after => false;
            doc! {"ts": ts(10, 1)}, range => true;
            doc! {"ts": ts(10, 3)}, range => true;
            doc! {"ts": ts(10, 4)}, range => false;
            doc! {"ts": ts(9, 9)}, range => false;
        }
    }

    #[test]
    fn arrays_match_the_whole_array_or_any_element() {
        check! {
            doc! {"a": [4, 5]}, doc! {"a": 5} => true;
            doc! {"a": [4, 5]}, doc! {"a": [4, 5]} => true;
            doc! {"a": [4, 5]}, doc! {"a": [5, 4]} => false;
            doc! {"a": [[4, 5], 1]}, doc! {"a": [4, 5]} => true;
            doc! {"a": [[5]]}, doc! {"a": 5} => false;
            doc! {"a": [1, 10]}, doc! {"a": {"$gt": 5, "$lt": 3}} => true;
            doc! {"a": [1, 10]}, doc! {"a": {"$elemMatch": {"$gt": 5, "$lt": 3}}} => false;
            doc! {"a": [4, 5]}, doc! {"a": {"$ne": 5}} => false;
            doc! {"a": [4, 6]}, doc! {"a": {"$ne": 5}} => true;
            doc! {"a": [4, 5]}, doc! {"a": {"$nin": [5, 7]}} => false;
            doc! {"a": [4, 6]}, doc! {"a": {"$nin": [5, 7]}} => true;
            doc! {"a": []}, doc! {"a": {"$in": [[]]}} => true;
            doc! {"a": []}, doc! {"a": []} => true;
            doc! {"a": []}, doc! {"a": {"$in": [1]}} => false;
            doc! {"a": [3]}, doc! {"a": {"$gt": [2]}} => true;
        }
    }

    #[test]
    fn dotted_paths_traverse_documents_and_arrays() {
        let d = doc! {"a": [{"b": 1}, {"b": [2, 3]}, {"c": 1}, 7], "x": {"y": {"z": "deep"}}};
        check! {
            d, doc! {"a.b": 1} => true;
            d, doc! {"a.b": 3} => true;
            d, doc! {"a.b": [2, 3]} => true;
            d, doc! {"x.y.z": "deep"} => true;
            d, doc! {"x.y.z.w": "deep"} => false;
            d, doc! {"a.0.b": 1} => true;
            d, doc! {"a.1.b": 1} => false;
            d, doc! {"a.3": 7} => true;
            d, doc! {"a.0": {"b": 1}} => true;
            d, doc! {"a.1.b.1": 3} => true;
            doc! {"a": [[1, 2], [3]]}, doc! {"a.1": [3]} => true;
            doc! {"a": [[1, {"b": 5}]]}, doc! {"a.0.1.b": 5} => true;
            doc! {"a": [{"0": "key"}]}, doc! {"a.0": "key"} => true;
            doc! {"a": 5}, doc! {"a.b": {"$exists": false}} => true;
        }
    }

    #[test]
    fn null_matches_missing_and_undefined() {
        check! {
            doc! {}, doc! {"a": null} => true;
            doc! {"a": null}, doc! {"a": null} => true;
            doc! {"a": Bson::Undefined}, doc! {"a": null} => true;
            doc! {"a": 0}, doc! {"a": null} => false;
            doc! {"a": [1, null]}, doc! {"a": null} => true;
            doc! {"a": [{"b": 1}, {}]}, doc! {"a.b": null} => true;
            doc! {"a": [1, 2]}, doc! {"a.b": null} => false;
            doc! {"a": 5}, doc! {"a.b": null} => true;
            doc! {}, doc! {"a": {"$ne": null}} => false;
            doc! {"a": 1}, doc! {"a": {"$ne": null}} => true;
            doc! {}, doc! {"a": {"$in": [null, 5]}} => true;
            doc! {}, doc! {"a": {"$gte": null}} => true;
            doc! {}, doc! {"a": {"$gt": null}} => false;
            doc! {"a": null}, doc! {"a": {"$exists": true}} => true;
            doc! {}, doc! {"a": {"$exists": 1}} => false;
            doc! {}, doc! {"a": {"$exists": 0}} => true;
        }
    }

    #[test]
    fn subdocuments_are_literal_and_ordered() {
        check! {
            doc! {"a": {"x": 1, "y": 2}}, doc! {"a": {"x": 1, "y": 2}} => true;
            doc! {"a": {"x": 1, "y": 2}}, doc! {"a": {"y": 2, "x": 1}} => false;
            doc! {"a": {"x": 1, "y": 2}}, doc! {"a": {"x": 1}} => false;
            doc! {"a": [{"x": 1}]}, doc! {"a": {"x": 1.0}} => true;
            doc! {"a": {"$ref": "c", "$id": 1}}, doc! {"a": {"$ref": "c", "$id": 1}} => true;
        }
    }

    #[test]
    fn logical_operators() {
        let d = doc! {"a": 1, "b": 2};
        check! {
            d, doc! {"$and": [{"a": 1}, {"b": 2}]} => true;
            d, doc! {"$or": [{"a": 2}, {"b": 2}]} => true;
            d, doc! {"$nor": [{"a": 2}, {"b": 2}]} => false;
            d, doc! {"a": {"$not": {"$gt": 5}}} => true;
            doc! {}, doc! {"a": {"$not": {"$gt": 5}}} => true;
            d, doc! {"a": {"$not": re("x", "")}} => true;
            d, doc! {"$comment": "hi", "$alwaysTrue": 1} => true;
            d, doc! {"$alwaysFalse": 1} => false;
            d, doc! {} => true;
        }
    }

    #[test]
    fn element_and_array_operators() {
        let d = doc! {"a": [{"x": 1, "y": 2}, {"x": 3, "y": 4}], "n": [1, 5, 9], "s": "str"};
        let both = doc! {"a": {"$all": [{"$elemMatch": {"x": 3}}, {"$elemMatch": {"y": 2}}]}};
        check! {
            d, doc! {"a": {"$elemMatch": {"x": 1, "y": 2}}} => true;
            d, doc! {"a": {"$elemMatch": {"x": 1, "y": 4}}} => false;
            d, doc! {"a": {"$elemMatch": {"$or": [{"x": 3}, {"y": 9}]}}} => true;
            d, doc! {"n": {"$elemMatch": {"$gt": 4, "$lt": 6}}} => true;
            d, doc! {"n": {"$elemMatch": {"$not": {"$lt": 5}}}} => true;
            d, doc! {"n": {"$size": 3}} => true;
            d, doc! {"s": {"$size": 3}} => false;
            doc! {"n": [[1, 2, 3]]}, doc! {"n": {"$size": 3}} => false;
            doc! {"o": [{"n": [1]}, {"n": [1, 2]}]}, doc! {"o.n": {"$size": 2}} => true;
            d, doc! {"n": {"$all": [9, 1]}} => true;
            d, doc! {"n": {"$all": [9, 2]}} => false;
            d, doc! {"n": {"$all": []}} => false;
            d, both => true;
            d, doc! {"s": {"$all": ["str"]}} => true;
            d, doc! {"n": {"$mod": [4, 1]}} => true;
            d, doc! {"n": {"$mod": [10, 3]}} => false;
        }
    }

    #[test]
    fn type_operator_takes_names_numbers_and_lists() {
        let d = doc! {"i": 1, "l": 1i64, "s": "x", "arr": [1, "y"], "n": null, "o": {}};
        check! {
            d, doc! {"i": {"$type": "int"}} => true;
            d, doc! {"i": {"$type": 16}} => true;
            d, doc! {"i": {"$type": 16.0}} => true;
            d, doc! {"l": {"$type": "int"}} => false;
            d, doc! {"l": {"$type": "number"}} => true;
            d, doc! {"s": {"$type": ["int", "string"]}} => true;
            d, doc! {"arr": {"$type": "array"}} => true;
            d, doc! {"arr": {"$type": "string"}} => true;
            d, doc! {"n": {"$type": "null"}} => true;
            d, doc! {"o": {"$type": 3}} => true;
            d, doc! {"missing": {"$type": "null"}} => false;
        }
    }

    #[test]
    fn regex_filters() {
        let d = doc! {"s": "Hello\nWorld", "arr": ["x", "apple"], "n": 5};
        check! {
            d, doc! {"s": re("^hello", "i")} => true;
            d, doc! {"s": {"$regex": "^World", "$options": "m"}} => true;
            d, doc! {"s": {"$regex": "^World"}} => false;
            d, doc! {"s": {"$options": "i", "$regex": "WORLD"}} => true;
            d, doc! {"s": {"$regex": re("o.w", "is")}} => true;
            d, doc! {"arr": re("^app", "")} => true;
            d, doc! {"arr": {"$in": [re("^z", ""), re("pp", "")]}} => true;
            d, doc! {"n": re("5", "")} => false;
            d, doc! {"s": {"$not": re("^x", "")}} => true;
        }
    }

    #[test]
    fn lookup_path_reaches_values_through_arrays() {
        let d = doc! {"a": [{"b": 1}, {"b": [2, 3]}, {"c": 4}, 5], "x": {"y": 6}};
        let got = |p: &str| lookup_path(&d, p).into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(
            got("a.b"),
            vec![Bson::Int32(1), Bson::Array(vec![2.into(), 3.into()])]
        );
        assert_eq!(got("x.y"), vec![Bson::Int32(6)]);
        assert_eq!(got("a.3"), vec![Bson::Int32(5)]);
        assert!(got("nope.x").is_empty());
        assert_eq!(got("a").len(), 1);
    }

    #[test]
    fn arbitrary_filters_never_panic() {
        // A deterministic sweep stands in for a fuzzer: filters built from
        // every BSON shape must either parse or fail cleanly, never panic.
        let values = [
            Bson::Int32(-1),
            Bson::Double(f64::NAN),
            dec("1E+6000"),
            Bson::String("a.b".into()),
            Bson::Array(vec![]),
            Bson::Array(vec![Bson::Null, 1.into()]),
            Bson::Document(doc! {}),
            Bson::Document(doc! {"$gt": 1}),
            Bson::Null,
            Bson::Undefined,
            Bson::MinKey,
            Bson::Boolean(true),
            re("((", "q"),
        ];
        let ops = [
            "$eq",
            "$gt",
            "$in",
            "$nin",
            "$all",
            "$size",
            "$type",
            "$elemMatch",
            "$not",
        ];
        let more = [
            "$exists",
            "$regex",
            "$mod",
            "$options",
            "$and",
            "x",
            "$alwaysTrue",
        ];
        let docs = [
            doc! {"a": [1, {"b": [null]}]},
            doc! {"a": {"b": 1}},
            doc! {},
        ];
        for op in ops.iter().chain(&more) {
            for v in &values {
                let arr = Bson::Array(vec![v.clone()]);
                let filters = [
                    doc! {"a": {*op: v.clone()}},
                    doc! {*op: v.clone()},
                    doc! {"a.b.0": {*op: arr}},
                ];
                for f in filters.iter().filter_map(|f| Matcher::new(f).ok()) {
                    for d in &docs {
                        let _ = f.matches(d);
                    }
                }
            }
        }
    }
}

//! Value-level BSON semantics the update engine needs: MongoDB's cross-type
//! ordering (for `$min`/`$max`, `$addToSet`, `$pull`, `$push.$sort`), its
//! numeric promotion rules for `$inc`/`$mul`, byte-exact equality (for the
//! "did this change anything" checks), and the shell-like rendering MongoDB
//! uses when it quotes a value inside an error message.
//!
//! Kept private to the update module so it does not depend on the query
//! modules that are being written alongside it.

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::error::CommandError;

/// MongoDB error codes that `error.rs` does not (yet) name; we set the code
/// name ourselves so replies carry the right `codeName`.
pub(crate) mod codes {
    pub const PATH_NOT_VIABLE: i32 = 28;
    pub const CANNOT_BACKFILL_ARRAY: i32 = 34;
    pub const NOT_SINGLE_VALUE_FIELD: i32 = 54;
    pub const NOT_IMPLEMENTED: i32 = 238;
}

/// A command error whose `codeName` is right even for codes `error.rs`
/// has no name for.
pub(crate) fn err(code: i32, msg: impl Into<String>) -> CommandError {
    let mut e = CommandError::new(code, msg);
    let local = match code {
        codes::PATH_NOT_VIABLE => Some("PathNotViable"),
        codes::CANNOT_BACKFILL_ARRAY => Some("CannotBackfillArray"),
        codes::NOT_SINGLE_VALUE_FIELD => Some("NotSingleValueField"),
        codes::NOT_IMPLEMENTED => Some("NotImplemented"),
        _ => None,
    };
    if let Some(name) = local {
        e.code_name = name.to_string();
    }
    e
}

// Comparison is the query engine's (`crate::compare`): one implementation
// of MongoDB's value order for queries, sorts and update operators alike.
pub(crate) use crate::compare::{cmp_bson as compare_values, values_equal};

/// Same canonical type class (what the query language calls "type bracketing").
pub(crate) fn same_class(a: &Bson, b: &Bson) -> bool {
    crate::compare::canonical_type_rank(a) == crate::compare::canonical_type_rank(b)
}

fn encode_value(v: &Bson) -> Option<Vec<u8>> {
    let mut d = Document::new();
    d.insert("", v.clone());
    bson::to_vec(&d).ok()
}

/// `BSONElement::binaryEqualValues`: same type and same bytes (so 1 and 1.0
/// differ, and so do documents with reordered fields).
pub(crate) fn binary_equal(a: &Bson, b: &Bson) -> bool {
    match (encode_value(a), encode_value(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `BSONObj::binaryEqual`.
pub(crate) fn docs_binary_equal(a: &Document, b: &Document) -> bool {
    match (bson::to_vec(a), bson::to_vec(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

pub(crate) use crate::compare::type_name;

/// Doubles the way the server prints them in messages: integral values keep
/// a trailing `.0` (`amount: 2.0`), huge and tiny ones use C++'s exponent form.
fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let abs = d.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{d:e}");
        return match s.split_once('e') {
            Some((mant, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(rest) => ('-', rest),
                    None => ('+', exp),
                };
                format!("{mant}e{sign}{digits:0>2}")
            }
            None => s,
        };
    }
    if d == d.trunc() {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `BSONElement::toString(false)`: the value half of what the server quotes.
pub(crate) fn fmt_value(v: &Bson) -> String {
    match v {
        Bson::Double(d) => fmt_double(*d),
        Bson::String(s) => format!("\"{}\"", escape(s)),
        Bson::Document(d) => fmt_doc(d),
        Bson::Array(a) => {
            if a.is_empty() {
                "[]".to_string()
            } else {
                let items: Vec<String> = a.iter().map(fmt_value).collect();
                format!("[ {} ]", items.join(", "))
            }
        }
        Bson::Binary(b) => {
            let hex: String = b.bytes.iter().map(|x| format!("{x:02X}")).collect();
            format!("BinData({}, {hex})", u8::from(b.subtype))
        }
        Bson::Undefined => "undefined".to_string(),
        Bson::ObjectId(o) => format!("ObjectId('{}')", o.to_hex()),
        Bson::Boolean(b) => b.to_string(),
        Bson::DateTime(d) => format!("new Date({})", d.timestamp_millis()),
        Bson::Null => "null".to_string(),
        Bson::RegularExpression(r) => format!("/{}/{}", r.pattern, r.options),
        Bson::DbPointer(_) => "DBRef(...)".to_string(),
        Bson::JavaScriptCode(c) => c.clone(),
        Bson::Symbol(s) => format!("\"{}\"", escape(s)),
        Bson::JavaScriptCodeWithScope(c) => {
            format!("CodeWScope( {}, {})", c.code, fmt_doc(&c.scope))
        }
        Bson::Int32(i) => i.to_string(),
        Bson::Timestamp(t) => format!("Timestamp({}, {})", t.time, t.increment),
        Bson::Int64(i) => i.to_string(),
        Bson::Decimal128(d) => format!("NumberDecimal(\"{d}\")"),
        Bson::MinKey => "MinKey".to_string(),
        Bson::MaxKey => "MaxKey".to_string(),
    }
}

/// `BSONObj::toString()`: `{ a: 1, b: "x" }`, or `{}` when empty.
pub(crate) fn fmt_doc(d: &Document) -> String {
    if d.is_empty() {
        return "{}".to_string();
    }
    let items: Vec<String> = d.iter().map(|(k, v)| fmt_elem(k, v)).collect();
    format!("{{ {} }}", items.join(", "))
}

/// `BSONElement::toString()`: `name: value`.
pub(crate) fn fmt_elem(name: &str, v: &Bson) -> String {
    format!("{name}: {}", fmt_value(v))
}

/// The `{_id: ...}` part of messages that name the document; `None` when the
/// document has no `_id` (e.g. an upsert seed) so callers can use the
/// server's fallback text for that message.
pub(crate) fn id_elem(doc: &Document) -> Option<String> {
    doc.get("_id").map(|v| fmt_elem("_id", v))
}

/// Whether `$inc`/`$mul` can use this value (`BSONElement::isNumber`).
pub(crate) fn is_number(v: &Bson) -> bool {
    matches!(
        v,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Arith {
    Add,
    Mul,
}

/// Outcome of `SafeNum` arithmetic.
pub(crate) enum ArithResult {
    Value(Bson),
    /// int64 overflow: the server refuses rather than wrapping or widening.
    Overflow,
    /// Decimal128 arithmetic, which this server does not implement.
    Unsupported,
}

/// `SafeNum` `+=` / `*=`: int32 op int32 widens to int64 on overflow, any
/// int64 stays int64 (overflow is an error), any double makes a double.
pub(crate) fn arith(op: Arith, a: &Bson, b: &Bson) -> ArithResult {
    use ArithResult::*;
    match (a, b) {
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => Unsupported,
        (Bson::Int32(x), Bson::Int32(y)) => {
            let r = match op {
                Arith::Add => x.checked_add(*y),
                Arith::Mul => x.checked_mul(*y),
            };
            match r {
                Some(v) => Value(Bson::Int32(v)),
                // Always fits: the operands are 32-bit.
                None => {
                    let (x, y) = (i64::from(*x), i64::from(*y));
                    Value(Bson::Int64(match op {
                        Arith::Add => x + y,
                        Arith::Mul => x * y,
                    }))
                }
            }
        }
        (Bson::Double(_), _) | (_, Bson::Double(_)) => {
            let (x, y) = (to_f64(a), to_f64(b));
            Value(Bson::Double(match op {
                Arith::Add => x + y,
                Arith::Mul => x * y,
            }))
        }
        _ => match (to_i64(a), to_i64(b)) {
            (Some(x), Some(y)) => {
                let r = match op {
                    Arith::Add => x.checked_add(y),
                    Arith::Mul => x.checked_mul(y),
                };
                r.map_or(Overflow, |v| Value(Bson::Int64(v)))
            }
            _ => Unsupported,
        },
    }
}

fn to_f64(v: &Bson) -> f64 {
    match v {
        Bson::Int32(i) => f64::from(*i),
        Bson::Int64(i) => *i as f64,
        Bson::Double(d) => *d,
        _ => f64::NAN,
    }
}

fn to_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    }
}

/// `SafeNum::isIdentical`: same numeric type and same value.
pub(crate) fn identical_numbers(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => x == y,
        (Bson::Int64(x), Bson::Int64(y)) => x == y,
        (Bson::Double(x), Bson::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Bson::Decimal128(x), Bson::Decimal128(y)) => x == y,
        _ => false,
    }
}

/// `SafeNum::debugString`, quoted by the int64-overflow message.
pub(crate) fn safenum_debug(v: &Bson) -> String {
    match v {
        Bson::Int32(i) => format!("(NumberInt){i}"),
        Bson::Int64(i) => format!("(NumberLong){i}"),
        Bson::Double(d) => format!("(NumberDouble){d}"),
        other => format!("(NumberDecimal){}", fmt_value(other)),
    }
}

/// `MatchExpressionParser::parseIntegerElementToLong`, used by `$pop` and
/// `$push`'s `$slice`/`$position`. The error text quotes `name: value`.
pub(crate) fn integer_arg(name: &str, v: &Bson) -> Result<i64, String> {
    match v {
        Bson::Int32(i) => Ok(i64::from(*i)),
        Bson::Int64(i) => Ok(*i),
        Bson::Double(d) => {
            if d.is_nan() {
                Err(format!(
                    "Expected an integer, but found NaN in: {}",
                    fmt_elem(name, v)
                ))
            } else if *d >= 9_223_372_036_854_775_808.0 || *d < -9_223_372_036_854_775_808.0 {
                Err(format!(
                    "Cannot represent as a 64-bit integer: {}",
                    fmt_elem(name, v)
                ))
            } else if d.trunc() != *d {
                Err(format!("Expected an integer: {}", fmt_elem(name, v)))
            } else {
                Ok(*d as i64)
            }
        }
        Bson::Decimal128(_) => match crate::compare::to_f64(v) {
            Some(d) if d.trunc() == d && d.abs() < 9.2e18 => Ok(d as i64),
            _ => Err(format!("Expected an integer: {}", fmt_elem(name, v))),
        },
        _ => Err(format!("Expected a number in: {}", fmt_elem(name, v))),
    }
}

/// A stable merge sort that cannot panic whatever the comparator does
/// (`slice::sort_by` may panic on a comparator that is not a total order).
pub(crate) fn stable_sort_by<T: Clone>(v: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let right = v.split_off(v.len() / 2);
    let mut left = std::mem::take(v);
    stable_sort_by(&mut left, cmp);
    let mut right = right;
    stable_sort_by(&mut right, cmp);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut li = left.into_iter().peekable();
    let mut ri = right.into_iter().peekable();
    loop {
        match (li.peek(), ri.peek()) {
            (Some(l), Some(r)) => {
                if cmp(r, l) == Ordering::Less {
                    out.extend(ri.next());
                } else {
                    out.extend(li.next());
                }
            }
            (Some(_), None) => out.extend(li.next()),
            (None, Some(_)) => out.extend(ri.next()),
            (None, None) => break,
        }
    }
    *v = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId};

    #[test]
    fn cross_type_numeric_order() {
        assert!(values_equal(&Bson::Int32(1), &Bson::Double(1.0)));
        assert!(values_equal(&Bson::Int64(1), &Bson::Int32(1)));
        let big = Bson::Int64((1 << 53) + 1);
        assert_eq!(
            compare_values(&big, &Bson::Double(9_007_199_254_740_992.0)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Bson::Double(f64::NAN), &Bson::Int32(i32::MIN)),
            Ordering::Less
        );
        assert!(values_equal(
            &Bson::Double(f64::NAN),
            &Bson::Double(f64::NAN)
        ));
        // Type classes: null < numbers < strings < objects < arrays < ObjectId < bool.
        let ladder = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(5),
            Bson::String("a".into()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            Bson::MaxKey,
        ];
        for w in ladder.windows(2) {
            assert_eq!(compare_values(&w[0], &w[1]), Ordering::Less, "{w:?}");
        }
    }

    #[test]
    fn documents_compare_by_name_then_value() {
        assert_eq!(
            crate::compare::cmp_documents(&doc! {"a": 1}, &doc! {"b": 0}),
            Ordering::Less
        );
        assert_eq!(
            crate::compare::cmp_documents(&doc! {"a": 1}, &doc! {"a": 1, "b": 0}),
            Ordering::Less
        );
        assert!(values_equal(
            &Bson::Document(doc! {"a": 1}),
            &Bson::Document(doc! {"a": 1.0})
        ));
        assert!(!binary_equal(
            &Bson::Document(doc! {"a": 1}),
            &Bson::Document(doc! {"a": 1.0})
        ));
        assert!(!docs_binary_equal(
            &doc! {"a": 1, "b": 2},
            &doc! {"b": 2, "a": 1}
        ));
    }

    #[test]
    fn safenum_promotion() {
        let r = |op, a: Bson, b: Bson| match arith(op, &a, &b) {
            ArithResult::Value(v) => Some(v),
            _ => None,
        };
        assert_eq!(
            r(Arith::Add, Bson::Int32(i32::MAX), Bson::Int32(1)),
            Some(Bson::Int64(1 << 31))
        );
        assert_eq!(
            r(Arith::Add, Bson::Int32(1), Bson::Int32(1)),
            Some(Bson::Int32(2))
        );
        assert_eq!(
            r(Arith::Add, Bson::Int32(1), Bson::Int64(1)),
            Some(Bson::Int64(2))
        );
        assert_eq!(
            r(Arith::Add, Bson::Int32(1), Bson::Double(0.5)),
            Some(Bson::Double(1.5))
        );
        assert_eq!(
            r(Arith::Mul, Bson::Int32(i32::MAX), Bson::Int32(2)),
            Some(Bson::Int64(4_294_967_294))
        );
        assert!(matches!(
            arith(Arith::Add, &Bson::Int64(i64::MAX), &Bson::Int32(1)),
            ArithResult::Overflow
        ));
    }

    #[test]
    fn renders_like_the_shell() {
        let v = Bson::Array(vec![
            Bson::Document(doc! {"name": "alice", "amount": 2.0}),
            Bson::Document(doc! {}),
        ]);
        assert_eq!(
            fmt_elem("eatenBy", &v),
            "eatenBy: [ { name: \"alice\", amount: 2.0 }, {} ]"
        );
        assert_eq!(fmt_value(&Bson::Double(2.5)), "2.5");
        assert_eq!(fmt_value(&Bson::Double(1e20)), "1e+20");
        assert_eq!(fmt_value(&Bson::Int64(7)), "7");
    }

    #[test]
    fn merge_sort_is_stable() {
        let mut v = vec![(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd')];
        stable_sort_by(&mut v, &|x, y| x.0.cmp(&y.0));
        assert_eq!(v, vec![(1, 'b'), (1, 'd'), (2, 'a'), (2, 'c')]);
    }
}

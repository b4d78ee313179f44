//! How MongoDB orders BSON values: the canonical type order, the value
//! comparison behind `sort`, `$lt`/`$gt`, `$min`/`$max` and equality, plus
//! the type names and the value rendering MongoDB uses in error messages.
//!
//! This mirrors `BSONElement::woCompare`/`compareElements` and
//! `canonicalizeBSONType` in the server (`src/mongo/bson/bsonelement.cpp`,
//! `bsontypes.h`) with the simple binary collation: values of different
//! canonical types order by type; numbers compare by exact value across
//! Int32, Int64, Double and Decimal128; documents compare field by field
//! (type, then name, then value). Everything query- and sort-related in the
//! server builds on these functions, so they must agree with MongoDB even on
//! odd inputs (NaN, `-0`, 2^53 + 1, decimals against doubles); the exact
//! Decimal128 arithmetic that needs lives in `decimal`.

mod decimal;

use std::cmp::Ordering;

use bson::{Bson, Document};

use decimal::cmp_num;
pub(crate) use decimal::{decimal_sum, Num};

/// MongoDB's `canonicalizeBSONType` plus one (so MinKey's -1 fits a `u8`):
/// MinKey 0 < Undefined 1 < Null 6 < numbers 11 < String/Symbol 16 <
/// Object 21 < Array 26 < BinData 31 < ObjectId 36 < Boolean 41 < Date 46 <
/// Timestamp 48 < Regex 51 < DBPointer 56 < JavaScript 61 <
/// JavaScriptWithScope 66 < MaxKey 128.
///
/// Undefined sorts below Null, as in MongoDB; the query matcher separately
/// treats the two as equal where MongoDB does (`{a: null}`).
pub fn canonical_type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        Bson::Null => 6,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 11,
        Bson::String(_) | Bson::Symbol(_) => 16,
        Bson::Document(_) => 21,
        Bson::Array(_) => 26,
        Bson::Binary(_) => 31,
        Bson::ObjectId(_) => 36,
        Bson::Boolean(_) => 41,
        Bson::DateTime(_) => 46,
        Bson::Timestamp(_) => 48,
        Bson::RegularExpression(_) => 51,
        Bson::DbPointer(_) => 56,
        Bson::JavaScriptCode(_) => 61,
        Bson::JavaScriptCodeWithScope(_) => 66,
        Bson::MaxKey => 128,
    }
}

/// The total order MongoDB uses to sort and compare values (`woCompare`
/// with simple binary collation). NaN sorts below every other number and
/// equals itself; `-0` equals `0`.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let by_type = canonical_type_rank(a).cmp(&canonical_type_rank(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => cmp_documents(x, y),
        (Bson::Array(x), Bson::Array(y)) => cmp_arrays(x, y),
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        // Timestamps compare as one unsigned 64-bit number: time, then increment.
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_bytes()
            .cmp(y.pattern.as_bytes())
            .then_with(|| x.options.as_bytes().cmp(y.options.as_bytes())),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x
            .code
            .as_bytes()
            .cmp(y.code.as_bytes())
            .then_with(|| cmp_documents(&x.scope, &y.scope)),
        (Bson::DbPointer(_), Bson::DbPointer(_)) => cmp_db_pointers(a, b),
        _ if canonical_type_rank(a) == 11 => cmp_numbers(a, b),
        // MinKey, MaxKey, Null and Undefined carry no value.
        _ => Ordering::Equal,
    }
}

/// `cmp_bson(a, b) == Equal`: 1, 1i64, 1.0 and `NumberDecimal("1")` are equal.
pub fn values_equal(a: &Bson, b: &Bson) -> bool {
    cmp_bson(a, b) == Ordering::Equal
}

/// Documents compare element by element: canonical type, then field name
/// (bytewise), then value; a document that runs out first is smaller.
pub fn cmp_documents(a: &Document, b: &Document) -> Ordering {
    let mut right = b.iter();
    for (ka, va) in a {
        let Some((kb, vb)) = right.next() else {
            return Ordering::Greater;
        };
        let ord = canonical_type_rank(va)
            .cmp(&canonical_type_rank(vb))
            .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
            .then_with(|| cmp_bson(va, vb));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    if right.next().is_some() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

fn cmp_arrays(a: &[Bson], b: &[Bson]) -> Ordering {
    // An array is a document keyed "0", "1", ...; the keys always match
    // position for position, so only the values and the lengths matter.
    for (x, y) in a.iter().zip(b) {
        let ord = cmp_bson(x, y);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

fn cmp_db_pointers(a: &Bson, b: &Bson) -> Ordering {
    // bson keeps DBPointer's fields private; MongoDB compares the value's
    // size and then its bytes, which the encoded single-field documents
    // reproduce exactly.
    let encode = |v: &Bson| {
        let mut out = Vec::new();
        let mut doc = Document::new();
        doc.insert("", v.clone());
        doc.to_writer(&mut out).map(|()| out).unwrap_or_default()
    };
    let (x, y) = (encode(a), encode(b));
    x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
}

/// Numbers by value across all four numeric types (MongoDB's
/// `compare_numbers.h`). Callers guarantee both values are numeric.
fn cmp_numbers(a: &Bson, b: &Bson) -> Ordering {
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    match (a, b, int(a), int(b)) {
        (_, _, Some(x), Some(y)) => x.cmp(&y),
        (Bson::Double(x), Bson::Double(y), _, _) => cmp_doubles(*x, *y),
        (_, Bson::Double(y), Some(x), _) => cmp_long_to_double(x, *y),
        (Bson::Double(x), _, _, Some(y)) => cmp_long_to_double(y, *x).reverse(),
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => cmp_num(&x, &y),
            _ => Ordering::Equal,
        },
    }
}

fn cmp_doubles(x: f64, y: f64) -> Ordering {
    match x.partial_cmp(&y) {
        Some(ord) => ord,
        None if x.is_nan() && y.is_nan() => Ordering::Equal,
        None if x.is_nan() => Ordering::Less,
        None => Ordering::Greater,
    }
}

/// Exact Int64 against Double: longs beyond 2^53 are not all doubles, but
/// doubles that large have no fraction, so they can be compared as longs.
fn cmp_long_to_double(l: i64, d: f64) -> Ordering {
    const PRECISE: i64 = 1 << 53;
    const LONG_BOUND: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if d.is_nan() {
        return Ordering::Greater;
    }
    if (-PRECISE..=PRECISE).contains(&l) {
        return cmp_doubles(l as f64, d);
    }
    if d >= LONG_BOUND {
        return Ordering::Less;
    }
    if d < -LONG_BOUND {
        return Ordering::Greater;
    }
    l.cmp(&(d as i64))
}

/// A number's value as a double (decimals rounded to nearest); `None` for
/// non-numbers.
pub fn to_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        // Decimal128's text form ("1.5E+3", "NaN", "-Infinity") is valid
        // input for Rust's correctly rounded float parser.
        Bson::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

/// A Decimal128 that is exactly an Int64 (`Decimal128::toLongExact`).
pub(crate) fn decimal_to_i64_exact(d: &bson::Decimal128) -> Option<i64> {
    match decimal::decode(d) {
        decimal::Dec::Finite { neg, coef, exp } => {
            let mut c = i128::try_from(coef).ok()?;
            for _ in 0..exp.unsigned_abs() {
                c = if exp > 0 {
                    c.checked_mul(10)?
                } else if c % 10 == 0 {
                    c / 10
                } else {
                    return None;
                };
            }
            i64::try_from(if neg { -c } else { c }).ok()
        }
        _ => None,
    }
}

/// BSON's truthiness (`BSONElement::trueValue`), as `$exists` and
/// projections read it.
pub fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        _ if is_number(v) => to_f64(v).is_none_or(|f| f != 0.0),
        _ => true,
    }
}

/// MongoDB's `parseIntegerElementToLong` (and, with `non_negative`, its
/// `...ToNonNegativeLong` variant): the failure reason names `name: value`.
pub fn integer_arg(name: &str, v: &Bson, non_negative: bool) -> Result<i64, String> {
    let shown = format!("{name}: {}", render(v));
    let n = match v {
        Bson::Int32(i) => i64::from(*i),
        Bson::Int64(i) => *i,
        Bson::Double(d) if d.is_nan() => {
            return Err(format!("Expected an integer, but found NaN in: {shown}"))
        }
        Bson::Double(d) if *d >= -(i64::MIN as f64) || *d < i64::MIN as f64 => {
            return Err(format!("Cannot represent as a 64-bit integer: {shown}"))
        }
        Bson::Double(d) if d.fract() != 0.0 => return Err(format!("Expected an integer: {shown}")),
        Bson::Double(d) => *d as i64,
        Bson::Decimal128(d) => decimal_to_i64_exact(d)
            .ok_or_else(|| format!("Cannot represent as a 64-bit integer: {shown}"))?,
        _ => return Err(format!("Expected a number in: {shown}")),
    };
    if non_negative && n < 0 {
        return Err(format!("Expected a non-negative number in: {shown}"));
    }
    Ok(n)
}

/// True for Int32, Int64, Double and Decimal128.
pub fn is_number(v: &Bson) -> bool {
    canonical_type_rank(v) == 11
}

/// The BSON type number, as `$type` takes it (MinKey -1, MaxKey 127).
pub fn type_code(v: &Bson) -> i32 {
    match v {
        Bson::Double(_) => 1,
        Bson::String(_) => 2,
        Bson::Document(_) => 3,
        Bson::Array(_) => 4,
        Bson::Binary(_) => 5,
        Bson::Undefined => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Null => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::Symbol(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::Int32(_) => 16,
        Bson::Timestamp(_) => 17,
        Bson::Int64(_) => 18,
        Bson::Decimal128(_) => 19,
        Bson::MinKey => -1,
        Bson::MaxKey => 127,
    }
}

/// MongoDB's `typeName()` for a BSON type number (the `$type` aliases).
pub fn type_name_of_code(code: i32) -> Option<&'static str> {
    Some(match code {
        1 => "double",
        2 => "string",
        3 => "object",
        4 => "array",
        5 => "binData",
        6 => "undefined",
        7 => "objectId",
        8 => "bool",
        9 => "date",
        10 => "null",
        11 => "regex",
        12 => "dbPointer",
        13 => "javascript",
        14 => "symbol",
        15 => "javascriptWithScope",
        16 => "int",
        17 => "timestamp",
        18 => "long",
        19 => "decimal",
        -1 => "minKey",
        127 => "maxKey",
        _ => return None,
    })
}

/// MongoDB's `typeName()` of a value, as error messages print it.
pub fn type_name(v: &Bson) -> &'static str {
    type_name_of_code(type_code(v)).unwrap_or("unknown")
}

/// A value rendered the way MongoDB prints a BSON element's value in error
/// messages (`BSONElement::toString`): `"str"`, `1`, `1.0`, `{ a: 1 }`,
/// `[ 1, 2 ]`, `{}`, `nan.0`.
pub fn render(v: &Bson) -> String {
    match v {
        Bson::Double(d) => render_double(*d),
        Bson::String(s) | Bson::Symbol(s) => format!("\"{s}\""),
        Bson::Document(d) => render_document(d),
        Bson::Array(a) if a.is_empty() => "[]".to_string(),
        Bson::Array(a) => {
            let items: Vec<String> = a.iter().map(render).collect();
            format!("[ {} ]", items.join(", "))
        }
        Bson::Binary(b) => {
            let hex: String = b.bytes.iter().map(|x| format!("{x:02X}")).collect();
            format!("BinData({}, {hex})", u8::from(b.subtype))
        }
        Bson::Undefined => "undefined".to_string(),
        Bson::ObjectId(o) => format!("ObjectId('{o}')"),
        Bson::Boolean(b) => b.to_string(),
        Bson::DateTime(d) => format!("new Date({})", d.timestamp_millis()),
        Bson::Null => "null".to_string(),
        Bson::RegularExpression(r) => format!("/{}/{}", r.pattern, r.options),
        Bson::DbPointer(_) => "DBRef(...)".to_string(),
        Bson::JavaScriptCode(c) => c.clone(),
        Bson::JavaScriptCodeWithScope(c) => {
            format!("CodeWScope( {}, {})", c.code, render_document(&c.scope))
        }
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Timestamp(t) => format!("Timestamp({}, {})", t.time, t.increment),
        Bson::Decimal128(d) => d.to_string(),
        Bson::MinKey => "MinKey".to_string(),
        Bson::MaxKey => "MaxKey".to_string(),
    }
}

/// `{ a: 1, b: "x" }`, or `{}` when empty.
pub fn render_document(d: &Document) -> String {
    if d.is_empty() {
        return "{}".to_string();
    }
    let fields: Vec<String> = d
        .iter()
        .map(|(k, v)| format!("{k}: {}", render(v)))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// C's `%.16g` followed by MongoDB's rule of appending ".0" when the text
/// has no '.', 'E' or 'N' (which is why NaN prints as `nan.0`).
fn render_double(d: f64) -> String {
    let text = if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if d == 0.0 {
        if d.is_sign_negative() { "-0" } else { "0" }.to_string()
    } else {
        let sci = format!("{d:.15e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if (-4..16).contains(&exp) {
            let decimals = usize::try_from(15 - exp).unwrap_or(0);
            strip_zeros(&format!("{d:.decimals$}"))
        } else {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.unsigned_abs())
        }
    };
    if text.contains(['.', 'E', 'N']) {
        text
    } else {
        text + ".0"
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Decimal128, Regex, Timestamp};
    use Ordering::*;

    /// `cmps! { a, b => ordering; ... }`, checked in both directions.
    macro_rules! cmps {
        ($($a:expr, $b:expr => $want:expr;)*) => {
            $({
                let (a, b): (Bson, Bson) = ($a.into(), $b.into());
                assert_eq!(cmp_bson(&a, &b), $want, "{a:?} vs {b:?}");
                assert_eq!(cmp_bson(&b, &a), $want.reverse(), "{b:?} vs {a:?}");
            })*
        };
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    fn bin(subtype: u8, bytes: &[u8]) -> Bson {
        Bson::Binary(Binary {
            subtype: BinarySubtype::from(subtype),
            bytes: bytes.to_vec(),
        })
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

    fn date(ms: i64) -> Bson {
        Bson::DateTime(bson::DateTime::from_millis(ms))
    }

    #[test]
    fn numbers_compare_by_value_across_types() {
        let ones = [
            Bson::Int32(1),
            Bson::Int64(1),
            Bson::Double(1.0),
            dec("1"),
            dec("1.000"),
        ];
        for (a, b) in ones.iter().flat_map(|a| ones.iter().map(move |b| (a, b))) {
            assert!(values_equal(a, b), "{a:?} vs {b:?}");
        }
        let two53 = (1i64 << 53) as f64;
        cmps! {
            Bson::Double(-0.0), Bson::Int32(0) => Equal;
            Bson::Int32(2), Bson::Double(2.5) => Less;
            dec("2.6"), Bson::Double(2.5) => Greater;
            dec("0.1"), Bson::Double(0.1) => Less;
            Bson::Int64((1 << 53) + 1), Bson::Double(two53) => Greater;
            Bson::Int64(i64::MAX), Bson::Double(-(i64::MIN as f64)) => Less;
            Bson::Int64(i64::MIN), Bson::Double(i64::MIN as f64) => Equal;
            Bson::Int64(i64::MIN), Bson::Double(f64::NEG_INFINITY) => Greater;
            Bson::Int64((1 << 53) + 1), dec("9007199254740993") => Equal;
            Bson::Double(f64::NAN), Bson::Double(f64::NEG_INFINITY) => Less;
            Bson::Double(f64::NAN), Bson::Int64(i64::MIN) => Less;
            Bson::Double(f64::NAN), dec("NaN") => Equal;
            Bson::Double(f64::NAN), dec("-Infinity") => Less;
            Bson::Double(f64::NAN), Bson::Null => Greater;
        }
    }

    #[test]
    fn canonical_type_order() {
        let ascending = [
            Bson::MinKey,
            Bson::Undefined,
            Bson::Null,
            Bson::Double(1e300),
            Bson::Symbol("a".into()),
            Bson::String("b".into()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            bin(0, &[]),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            date(0),
            ts(0, 0),
            re("a", ""),
            Bson::JavaScriptCode("x".into()),
            Bson::MaxKey,
        ];
        for pair in ascending.windows(2) {
            cmps! { pair[0].clone(), pair[1].clone() => Less; }
        }
        cmps! { Bson::Symbol("a".into()), "a" => Equal; }
    }

    #[test]
    fn containers_and_other_types_compare_by_value() {
        let arr = |v: &[i32]| Bson::Array(v.iter().map(|i| Bson::Int32(*i)).collect());
        cmps! {
            doc! {"a": 1}, doc! {"a": 1, "b": 0} => Less;
            doc! {"a": 2}, doc! {"b": 1} => Less;
            doc! {"b": 1}, doc! {"a": "x"} => Less; // type before field name
            doc! {"a": 1, "b": 2}, doc! {"b": 2, "a": 1} => Less;
            doc! {"a": {"x": 1}}, doc! {"a": {"x": 1.0}} => Equal;
            arr(&[1, 2]), arr(&[1]) => Greater;
            arr(&[1, 2]), arr(&[2]) => Less;
            bin(5, &[1]), bin(0, &[1, 0]) => Less; // length first
            bin(0, &[9]), bin(4, &[1]) => Less; // then subtype
            bin(0, &[1, 2]), bin(0, &[1, 3]) => Less;
            ts(1, u32::MAX), ts(2, 0) => Less;
            ts(u32::MAX, 0), ts(1, 0) => Greater; // unsigned
            date(-1), date(0) => Less; // signed
            false, true => Less;
            re("a", "z"), re("b", "") => Less;
            re("a", "i"), re("a", "m") => Less;
            "B", "a" => Less;
            "é", "z" => Greater; // bytewise, not by locale
            "", "\0" => Less;
        }
    }

    #[test]
    fn renders_like_mongod() {
        let cases = [
            (Bson::Double(-1.0), "-1.0"),
            (Bson::Double(42.12), "42.12"),
            (Bson::Double(1e20), "1e+20.0"),
            (Bson::Double(0.1), "0.1"),
            (Bson::Double(f64::NAN), "nan.0"),
            (Bson::Double(f64::INFINITY), "inf.0"),
            (Bson::Double(f64::MAX), "1.797693134862316e+308"),
            (Bson::Double(1.5e-7), "1.5e-07"),
            (Bson::Int32(-1), "-1"),
            (Bson::String("x".into()), "\"x\""),
            (Bson::Array(vec![1.into()]), "[ 1 ]"),
            (
                Bson::Document(doc! {"$type": 42, "$op": 42}),
                "{ $type: 42, $op: 42 }",
            ),
            (Bson::Document(doc! {}), "{}"),
            (ts(1, 2), "Timestamp(1, 2)"),
        ];
        for (v, want) in cases {
            assert_eq!(render(&v), want);
        }
        assert_eq!(type_name(&Bson::Int32(1)), "int");
        assert_eq!(type_name(&Bson::Document(doc! {})), "object");
    }

    #[test]
    fn integer_arguments_and_truthiness() {
        assert_eq!(integer_arg("n", &Bson::Double(3.0), true), Ok(3));
        assert_eq!(integer_arg("n", &dec("4.0"), true), Ok(4));
        let err = |v: Bson| integer_arg("n", &v, true).unwrap_err();
        assert_eq!(
            err(dec("4.5")),
            "Cannot represent as a 64-bit integer: n: 4.5"
        );
        assert_eq!(
            err(Bson::Double(1e19)),
            "Cannot represent as a 64-bit integer: n: 1e+19.0"
        );
        assert_eq!(
            err(Bson::Int64(-2)),
            "Expected a non-negative number in: n: -2"
        );
        assert_eq!(err(Bson::Null), "Expected a number in: n: null");
        for (v, want) in [
            (Bson::Int32(0), false),
            (dec("-0"), false),
            (Bson::Null, false),
        ] {
            assert_eq!(truthy(&v), want, "{v:?}");
        }
        for v in [
            Bson::Double(f64::NAN),
            Bson::String(String::new()),
            Bson::Array(vec![]),
        ] {
            assert!(truthy(&v), "{v:?}");
        }
    }

    /// A pseudo-random sample (xorshift, fixed seed) of numbers of all four
    /// types clustered where exactness matters, plus other types.
    fn sample() -> Vec<Bson> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = vec![
            Bson::Double(f64::NAN),
            Bson::Double(-0.0),
            dec("NaN"),
            dec("-Infinity"),
            Bson::Double(f64::INFINITY),
            Bson::Null,
            Bson::Undefined,
            Bson::String(String::new()),
            Bson::Array(vec![Bson::Null]),
            Bson::Document(doc! {"": 1}),
            dec("1E-6176"),
            Bson::Double(5e-324),
            dec("-1E+6144"),
        ];
        for _ in 0..48 {
            let r = next();
            let base = [1i64 << 53, i64::MAX, 1, 1000][(r % 4) as usize];
            let offset = (r >> 8) as i64 % 3 - 1;
            let int = base.saturating_add(offset) * if r & 1 << 20 == 0 { 1 } else { -1 };
            out.push(match (r >> 24) % 5 {
                0 => Bson::Int64(int),
                1 => Bson::Int32(int as i32),
                2 => Bson::Double(int as f64 + ((r >> 32) % 4) as f64 * 0.25),
                3 => dec(&format!("{int}.{}", (r >> 40) % 100)),
                _ => dec(&format!("{int}E{}", (r >> 40) % 5)),
            });
        }
        out
    }

    #[test]
    fn ordering_is_a_total_order() {
        let sample = sample();
        for a in &sample {
            for b in &sample {
                assert_eq!(cmp_bson(a, b), cmp_bson(b, a).reverse(), "{a:?} {b:?}");
                for c in &sample {
                    if cmp_bson(a, b) != Greater && cmp_bson(b, c) != Greater {
                        assert_ne!(cmp_bson(a, c), Greater, "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }
}

//! Aggregation expressions (`"$a.b"`, `{$literal: 1}`, `{$eq: [...]}`) as
//! `$project`, `$addFields`, `$group` and find projections use them.
//!
//! Covered: field paths (`"$a.b"`, `$$ROOT`, `$$CURRENT`, `$$REMOVE`,
//! `$$NOW`), literals, `$literal`, expression objects and arrays, the
//! comparisons `$eq` `$ne` `$gt` `$gte` `$lt` `$lte` `$cmp`, `$and`, `$or`,
//! `$not`, `$ifNull` and `$type`. Other MongoDB operators are refused by
//! name (code 37) rather than silently mis-evaluated; unknown names get
//! mongod's "Unrecognized expression" (168). Semantics follow the server's
//! `src/mongo/db/pipeline/expression.cpp`.

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::compare::{cmp_bson, is_number, render_document, to_f64, type_name};
use crate::error::{CmdResult, CommandError};
use crate::query::field_path;

/// An aggregation expression.
#[derive(Debug, Clone)]
pub(crate) enum Expression {
    Literal(Bson),
    /// `"$a.b"` or `"$$ROOT.a.b"`; the empty path is `$$ROOT` itself.
    Path(Vec<String>),
    Remove,
    Now,
    Object(Vec<(String, Expression)>),
    Array(Vec<Expression>),
    Op(&'static str, Vec<Expression>),
}

/// Operators this server evaluates, with their argument counts.
const OPERATORS: &[(&str, usize, usize)] = &[
    ("$eq", 2, 2),
    ("$ne", 2, 2),
    ("$gt", 2, 2),
    ("$gte", 2, 2),
    ("$lt", 2, 2),
    ("$lte", 2, 2),
    ("$cmp", 2, 2),
    ("$and", 0, usize::MAX),
    ("$or", 0, usize::MAX),
    ("$not", 1, 1),
    ("$ifNull", 2, usize::MAX),
    ("$type", 1, 1),
];

/// Expression operators MongoDB has that this server does not evaluate.
const KNOWN_OPERATORS: &[&str] = &[
    "$abs",
    "$add",
    "$allElementsTrue",
    "$anyElementTrue",
    "$arrayElemAt",
    "$arrayToObject",
    "$ceil",
    "$concat",
    "$concatArrays",
    "$cond",
    "$convert",
    "$dateAdd",
    "$dateDiff",
    "$dateFromString",
    "$dateToString",
    "$dayOfMonth",
    "$divide",
    "$exp",
    "$filter",
    "$first",
    "$floor",
    "$getField",
    "$in",
    "$indexOfArray",
    "$isArray",
    "$isNumber",
    "$last",
    "$let",
    "$ln",
    "$log",
    "$map",
    "$max",
    "$mergeObjects",
    "$meta",
    "$min",
    "$mod",
    "$multiply",
    "$objectToArray",
    "$pow",
    "$range",
    "$reduce",
    "$regexMatch",
    "$reverseArray",
    "$round",
    "$setField",
    "$size",
    "$slice",
    "$split",
    "$sqrt",
    "$strLenBytes",
    "$substr",
    "$substrBytes",
    "$subtract",
    "$sum",
    "$switch",
    "$toBool",
    "$toDate",
    "$toDecimal",
    "$toDouble",
    "$toInt",
    "$toLong",
    "$toLower",
    "$toObjectId",
    "$toString",
    "$toUpper",
    "$trim",
    "$trunc",
    "$avg",
];

/// Whether `name` is an expression operator (so `{a: {$name: ...}}` in a
/// projection is an expression, not an unknown field path).
pub(crate) fn is_expression_name(name: &str) -> bool {
    name == "$literal"
        || OPERATORS.iter().any(|(n, _, _)| *n == name)
        || KNOWN_OPERATORS.contains(&name)
}

/// Parses an aggregation expression (`Expression::parseOperand`).
pub(crate) fn parse_expression(v: &Bson) -> CmdResult<Expression> {
    match v {
        Bson::String(s) if s.starts_with("$$") => parse_variable(&s[2..]),
        Bson::String(s) if s == "$" => Err(CommandError::new(
            16872,
            "'$' by itself is not a valid FieldPath",
        )),
        Bson::String(s) if s.starts_with('$') => Ok(Expression::Path(field_path(&s[1..])?)),
        Bson::Array(items) => Ok(Expression::Array(
            items
                .iter()
                .map(parse_expression)
                .collect::<CmdResult<_>>()?,
        )),
        Bson::Document(d) => match d.iter().next() {
            Some((op, arg)) if op.starts_with('$') => {
                if d.len() != 1 {
                    let msg = format!(
                        "An object representing an expression must have exactly one field: {}",
                        render_document(d)
                    );
                    return Err(CommandError::new(15983, msg));
                }
                parse_operator(op, arg)
            }
            _ => Ok(Expression::Object(
                d.iter()
                    .map(|(k, v)| Ok((object_field_name(k)?, parse_expression(v)?)))
                    .collect::<CmdResult<_>>()?,
            )),
        },
        _ => Ok(Expression::Literal(v.clone())),
    }
}

/// A field of an expression object names one field, so unlike a path it
/// may not contain '.' (`FieldPath::uassertValidFieldName`).
fn object_field_name(name: &str) -> CmdResult<String> {
    if name.contains('.') && !name.is_empty() && !name.starts_with('$') {
        let msg =
            "FieldPath field names may not contain '.'. Consider using $getField or $setField.";
        return Err(CommandError::new(16412, msg));
    }
    Ok(field_path(name)?.join("."))
}

fn parse_variable(var: &str) -> CmdResult<Expression> {
    let (name, rest) = var.split_once('.').unwrap_or((var, ""));
    let path = if rest.is_empty() {
        Vec::new()
    } else {
        field_path(rest)?
    };
    match name {
        "" => Err(CommandError::failed_to_parse(
            "empty variable names are not allowed",
        )),
        "ROOT" | "CURRENT" => Ok(Expression::Path(path)),
        "REMOVE" => Ok(Expression::Remove),
        "NOW" => Ok(Expression::Now),
        _ if !name.starts_with(|c: char| c.is_ascii_lowercase() || !c.is_ascii()) => {
            let msg = format!("'{name}' starts with an invalid character for a user variable name");
            Err(CommandError::failed_to_parse(msg))
        }
        _ => Err(CommandError::new(
            17276,
            format!("Use of undefined variable: {name}"),
        )),
    }
}

fn parse_operator(op: &str, arg: &Bson) -> CmdResult<Expression> {
    if op == "$literal" {
        return Ok(Expression::Literal(arg.clone()));
    }
    let Some(&(name, min, max)) = OPERATORS.iter().find(|(n, _, _)| *n == op) else {
        if KNOWN_OPERATORS.contains(&op) {
            return Err(CommandError::new(
                37,
                format!("{op} is not supported by mongo-testserver"),
            ));
        }
        return Err(CommandError::new(
            168,
            format!("Unrecognized expression '{op}'"),
        ));
    };
    let args = match arg {
        Bson::Array(items) => items
            .iter()
            .map(parse_expression)
            .collect::<CmdResult<Vec<_>>>()?,
        _ => vec![parse_expression(arg)?],
    };
    if args.len() < min || args.len() > max {
        let msg = if min == max {
            format!(
                "Expression {name} takes exactly {min} arguments. {} were passed in.",
                args.len()
            )
        } else {
            format!("{name} needs at least two arguments, had: {}", args.len())
        };
        return Err(CommandError::new(
            if min == max { 16020 } else { 1257300 },
            msg,
        ));
    }
    Ok(Expression::Op(name, args))
}

impl Expression {
    /// The value for `root`, or `None` when it evaluates to "missing".
    pub(crate) fn evaluate(&self, root: &Document) -> Option<Bson> {
        match self {
            Expression::Literal(v) => Some(v.clone()),
            Expression::Path(path) if path.is_empty() => Some(Bson::Document(root.clone())),
            Expression::Path(path) => field_value(root, path),
            Expression::Remove => None,
            Expression::Now => Some(Bson::DateTime(bson::DateTime::now())),
            Expression::Object(fields) => Some(Bson::Document(
                fields
                    .iter()
                    .filter_map(|(k, e)| Some((k.clone(), e.evaluate(root)?)))
                    .collect(),
            )),
            // Missing array elements become null.
            Expression::Array(items) => Some(Bson::Array(
                items
                    .iter()
                    .map(|e| e.evaluate(root).unwrap_or(Bson::Null))
                    .collect(),
            )),
            Expression::Op(op, args) => evaluate_op(op, args, root),
        }
    }
}

/// `ExpressionFieldPath`: through arrays, the rest of the path applies to
/// each document element and the results form an array.
fn field_value(doc: &Document, path: &[String]) -> Option<Bson> {
    let (first, rest) = path.split_first()?;
    let value = doc.get(first)?;
    match value {
        _ if rest.is_empty() => Some(value.clone()),
        Bson::Document(d) => field_value(d, rest),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|i| {
                    if let Bson::Document(d) = i {
                        field_value(d, rest)
                    } else {
                        None
                    }
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Aggregation truthiness: false, null, undefined, missing and zero are false.
fn coerce_bool(v: Option<&Bson>) -> bool {
    match v {
        None | Some(Bson::Null | Bson::Undefined | Bson::Boolean(false)) => false,
        Some(n) if is_number(n) => to_f64(n).is_none_or(|f| f != 0.0),
        _ => true,
    }
}

fn evaluate_op(op: &str, args: &[Expression], root: &Document) -> Option<Bson> {
    let vals: Vec<Option<Bson>> = args.iter().map(|a| a.evaluate(root)).collect();
    // Missing compares as less than null, as mongod's Value comparison does.
    let arg = |i: usize| vals.get(i).cloned().flatten();
    let cmp = || {
        cmp_bson(
            &arg(0).unwrap_or(Bson::Undefined),
            &arg(1).unwrap_or(Bson::Undefined),
        )
    };
    Some(match op {
        "$eq" => Bson::Boolean(cmp() == Ordering::Equal),
        "$ne" => Bson::Boolean(cmp() != Ordering::Equal),
        "$gt" => Bson::Boolean(cmp() == Ordering::Greater),
        "$gte" => Bson::Boolean(cmp() != Ordering::Less),
        "$lt" => Bson::Boolean(cmp() == Ordering::Less),
        "$lte" => Bson::Boolean(cmp() != Ordering::Greater),
        "$cmp" => Bson::Int32(cmp() as i32),
        "$and" => Bson::Boolean(vals.iter().all(|v| coerce_bool(v.as_ref()))),
        "$or" => Bson::Boolean(vals.iter().any(|v| coerce_bool(v.as_ref()))),
        "$not" => Bson::Boolean(!coerce_bool(arg(0).as_ref())),
        "$ifNull" => {
            let (last, init) = vals.split_last()?;
            init.iter()
                .flatten()
                .find(|v| !matches!(v, Bson::Null | Bson::Undefined))
                .or(last.as_ref())?
                .clone()
        }
        "$type" => Bson::String(arg(0).as_ref().map_or("missing", type_name).to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    /// `evaluates! { expression => value; ... }` over one fixed document;
    /// `None` is "missing".
    macro_rules! evaluates {
        ($root:expr; $($e:expr => $want:expr;)*) => {
            $(assert_eq!(parse_expression(&$e).unwrap().evaluate(&$root), $want, "{}", $e);)*
        };
    }

    fn b(v: impl Into<Bson>) -> Option<Bson> {
        Some(v.into())
    }

    #[test]
    fn paths_literals_and_operators() {
        let root =
            doc! {"a": {"b": 1}, "arr": [{"x": 1}, 5, {"x": [2]}, {"y": 0}], "s": "$t", "n": null};
        evaluates! { root;
            Bson::from("$a.b") => b(1);
            Bson::from("$a.c") => None;
            Bson::from("$arr.x") => b(vec![Bson::Int32(1), Bson::Array(vec![2.into()])]);
            Bson::from("$s.x") => None;
            Bson::from("$$ROOT.a") => b(doc! {"b": 1});
            Bson::from("$$CURRENT.a.b") => b(1);
            Bson::from("$$REMOVE") => None;
            Bson::from("plain") => b("plain");
            Bson::from(doc! {"$literal": "$a"}) => b("$a");
            Bson::from(doc! {"k": "$a.b", "gone": "$nope"}) => b(doc! {"k": 1});
            Bson::from(vec![Bson::from("$nope"), Bson::from(2)]) => b(vec![Bson::Null, Bson::Int32(2)]);
            Bson::from(doc! {"$eq": ["$a.b", 1.0]}) => b(true);
            Bson::from(doc! {"$gt": ["$s", 5]}) => b(true);
            Bson::from(doc! {"$lt": ["$nope", null]}) => b(true);
            Bson::from(doc! {"$cmp": [1, 2]}) => b(-1);
            Bson::from(doc! {"$and": [1, "$a"]}) => b(true);
            Bson::from(doc! {"$or": [0, "$n", "$nope"]}) => b(false);
            Bson::from(doc! {"$not": ["$n"]}) => b(true);
            Bson::from(doc! {"$ifNull": ["$n", "$nope", "dflt"]}) => b("dflt");
            Bson::from(doc! {"$type": "$nope"}) => b("missing");
            Bson::from(doc! {"$type": "$a.b"}) => b("int");
        }
    }

    #[test]
    fn parse_errors_match_mongodb() {
        let cases = [
            (Bson::from("$"), 16872, "'$' by itself is not a valid FieldPath"),
            (Bson::from("$$"), 9, "empty variable names are not allowed"),
            (Bson::from("$$s"), 17276, "Use of undefined variable: s"),
            (Bson::from("$$S"), 9, "'S' starts with an invalid character for a user variable name"),
            (Bson::from("$a..b"), 15998, "FieldPath field names may not be empty strings."),
            (
                Bson::from(doc! {"a.b": 1}),
                16412,
                "FieldPath field names may not contain '.'. Consider using $getField or $setField.",
            ),
            (Bson::from(doc! {"$foo": 1}), 168, "Unrecognized expression '$foo'"),
            (Bson::from(doc! {"$add": [1]}), 37, "$add is not supported by mongo-testserver"),
            (Bson::from(doc! {"$gt": [1]}), 16020, "Expression $gt takes exactly 2 arguments. 1 were passed in."),
            (
                Bson::from(doc! {"$type": 42, "$op": 42}),
                15983,
                "An object representing an expression must have exactly one field: { $type: 42, $op: 42 }",
            ),
        ];
        for (e, code, msg) in cases {
            let err = parse_expression(&e).unwrap_err();
            assert_eq!((err.code, err.errmsg.as_str()), (code, msg), "{e}");
        }
    }
}

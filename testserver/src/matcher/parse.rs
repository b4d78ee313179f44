//! Parsing query filters into the matcher's predicate tree, with mongod's
//! error codes and messages for malformed filters (see the server's
//! `src/mongo/db/matcher/expression_parser.cpp` and `matcher_type_set.cpp`).

use bson::{Bson, Document};

use super::pcre::Rx;
use super::{CmpOp, Expr, Leaf};
use crate::compare::{integer_arg, is_number, to_f64, truthy, type_name_of_code};
use crate::error::{CmdResult, CommandError};

fn bad(msg: impl Into<String>) -> CommandError {
    CommandError::bad_value(msg)
}

/// Operators MongoDB knows that this server does not evaluate: refusing them
/// beats silently matching the wrong documents.
fn unsupported(op: &str) -> CommandError {
    CommandError::new(37, format!("{op} is not supported by mongo-testserver"))
}

/// Parses a whole filter document (`MatchExpressionParser::parse`).
pub(super) fn parse_filter(filter: &Document) -> CmdResult<Expr> {
    let mut all = Vec::new();
    for (key, value) in filter {
        if let Some(op) = key.strip_prefix('$') {
            match op {
                "and" | "or" | "nor" => {
                    let Bson::Array(items) = value else {
                        return Err(bad(format!("{key} must be an array")));
                    };
                    if items.is_empty() {
                        return Err(bad("$and/$or/$nor must be a nonempty array"));
                    }
                    let mut subs = Vec::new();
                    for item in items {
                        let Bson::Document(d) = item else {
                            return Err(bad("$or/$and/$nor entries need to be full objects"));
                        };
                        subs.push(parse_filter(d)?);
                    }
                    all.push(match op {
                        "and" => Expr::And(subs),
                        "or" => Expr::Or(subs),
                        _ => Expr::Nor(subs),
                    });
                }
                "comment" => {}
                "alwaysTrue" | "alwaysFalse" => {
                    if integer_arg(key, value, false) != Ok(1) {
                        return Err(CommandError::failed_to_parse(format!("{key} must be an integer value of 1")));
                    }
                    all.push(Expr::Const(op == "alwaysTrue"));
                }
                // DBRef fields may be queried directly.
                "id" | "ref" | "db" => all.push(Expr::Path(key.clone(), Leaf::Cmp(CmpOp::Eq, value.clone()))),
                "expr" | "where" | "text" | "jsonSchema" | "sampleRate" => return Err(unsupported(key)),
                "not" => {
                    return Err(bad(
                        "unknown top level operator: $not. If you are trying to negate an entire expression, use $nor.",
                    ))
                }
                _ => {
                    return Err(bad(format!(
                        "unknown top level operator: {key}. If you have a field name that starts with a '$' \
                         symbol, consider using $getField or $setField."
                    )))
                }
            }
        } else {
            all.extend(parse_field(key, value)?);
        }
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Expr::And(all)
    })
}

/// `{$lt: 5}` as opposed to `{x: 1}` or a DBRef: MongoDB's
/// `isExpressionDocument`.
fn is_operator_doc(v: &Bson, allow_incomplete_dbref: bool) -> bool {
    let Bson::Document(d) = v else { return false };
    let Some((first, _)) = d.iter().next() else {
        return false;
    };
    if !first.starts_with('$') {
        return false;
    }
    let (has_ref, has_id, has_db) = (
        d.contains_key("$ref"),
        d.contains_key("$id"),
        d.contains_key("$db"),
    );
    let dbref = if allow_incomplete_dbref {
        has_ref || has_id || has_db
    } else {
        has_ref && has_id
    };
    !dbref
}

fn parse_field(name: &str, value: &Bson) -> CmdResult<Vec<Expr>> {
    match value {
        Bson::Document(ops) if is_operator_doc(value, false) => parse_operators(name, ops),
        Bson::RegularExpression(r) => Ok(vec![Expr::Path(
            name.into(),
            Leaf::Regex(Rx::new(&r.pattern, &r.options)?),
        )]),
        _ => Ok(vec![comparison(name, CmpOp::Eq, value)?]),
    }
}

fn comparison(name: &str, op: CmpOp, value: &Bson) -> CmdResult<Expr> {
    if op != CmpOp::Eq && matches!(value, Bson::RegularExpression(_)) {
        return Err(bad(format!(
            "Can't have RegEx as arg to predicate over field '{name}'."
        )));
    }
    if matches!(value, Bson::Undefined) {
        return Err(bad("cannot compare to undefined"));
    }
    Ok(Expr::Path(name.into(), Leaf::Cmp(op, value.clone())))
}

/// The operators of `{path: {$op: arg, ...}}`, each its own predicate.
fn parse_operators(name: &str, ops: &Document) -> CmdResult<Vec<Expr>> {
    let leaf = |l: Leaf| Expr::Path(name.to_string(), l);
    let mut out = Vec::new();
    for (op, arg) in ops {
        let expr = match op.as_str() {
            "$eq" => comparison(name, CmpOp::Eq, arg)?,
            "$lt" => comparison(name, CmpOp::Lt, arg)?,
            "$lte" => comparison(name, CmpOp::Lte, arg)?,
            "$gt" => comparison(name, CmpOp::Gt, arg)?,
            "$gte" => comparison(name, CmpOp::Gte, arg)?,
            "$ne" => {
                if matches!(arg, Bson::RegularExpression(_)) {
                    return Err(bad("Can't have regex as arg to $ne."));
                }
                Expr::Not(Box::new(comparison(name, CmpOp::Eq, arg)?))
            }
            "$in" | "$nin" => {
                let Bson::Array(items) = arg else {
                    return Err(bad(format!("{op} needs an array")));
                };
                let in_leaf = leaf(parse_in(items)?);
                if op == "$in" {
                    in_leaf
                } else {
                    Expr::Not(Box::new(in_leaf))
                }
            }
            "$exists" => {
                if truthy(arg) {
                    leaf(Leaf::Exists)
                } else {
                    Expr::Not(Box::new(leaf(Leaf::Exists)))
                }
            }
            "$type" => leaf(parse_type(name, arg)?),
            "$size" => leaf(Leaf::Size(
                integer_arg("$size", arg, true)
                    .map_err(|r| bad(format!("Failed to parse $size. {r}")))?,
            )),
            "$mod" => leaf(parse_mod(arg)?),
            "$regex" => leaf(Leaf::Regex(parse_regex_operator(ops)?)),
            "$options" => {
                if !ops.contains_key("$regex") {
                    return Err(bad("$options needs a $regex"));
                }
                continue;
            }
            "$not" => parse_not(name, arg)?,
            "$elemMatch" => leaf(parse_elem_match(arg)?),
            "$all" => parse_all(name, arg)?,
            "$where" => return Err(bad("$where cannot be applied to a field")),
            "$bitsAllSet" | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" | "$geoWithin"
            | "$geoIntersects" | "$near" | "$nearSphere" | "$within" | "$geoNear" => {
                return Err(unsupported(op))
            }
            _ => return Err(bad(format!("unknown operator: {op}"))),
        };
        out.push(expr);
    }
    Ok(out)
}

fn parse_in(items: &[Bson]) -> CmdResult<Leaf> {
    let (mut values, mut regexes, mut has_null) = (Vec::new(), Vec::new(), false);
    for item in items {
        match item {
            _ if is_operator_doc(item, false) => return Err(bad("cannot nest $ under $in")),
            Bson::RegularExpression(r) => regexes.push(Rx::new(&r.pattern, &r.options)?),
            Bson::Undefined => return Err(bad("InMatchExpression equality cannot be undefined")),
            _ => {
                has_null |= matches!(item, Bson::Null);
                values.push(item.clone());
            }
        }
    }
    Ok(Leaf::In {
        values,
        regexes,
        has_null,
    })
}

fn parse_not(name: &str, arg: &Bson) -> CmdResult<Expr> {
    match arg {
        Bson::RegularExpression(r) => Ok(Expr::Not(Box::new(Expr::Path(
            name.into(),
            Leaf::Regex(Rx::new(&r.pattern, &r.options)?),
        )))),
        Bson::Document(d) if d.is_empty() => Err(bad("$not cannot be empty")),
        Bson::Document(d) => Ok(Expr::Not(Box::new(Expr::And(parse_operators(name, d)?)))),
        _ => Err(bad("$not needs a regex or a document")),
    }
}

fn parse_elem_match(arg: &Bson) -> CmdResult<Leaf> {
    let Bson::Document(d) = arg else {
        return Err(bad("$elemMatch needs an Object"));
    };
    let first_is_path_operator = d.keys().next().is_some_and(|k| {
        !matches!(
            k.as_str(),
            "$and"
                | "$or"
                | "$nor"
                | "$where"
                | "$expr"
                | "$comment"
                | "$text"
                | "$alwaysTrue"
                | "$alwaysFalse"
                | "$jsonSchema"
                | "$sampleRate"
        )
    });
    if is_operator_doc(arg, true) && first_is_path_operator {
        Ok(Leaf::ElemMatchValue(parse_operators("", d)?))
    } else {
        Ok(Leaf::ElemMatchObject(Box::new(parse_filter(d)?)))
    }
}

fn parse_all(name: &str, arg: &Bson) -> CmdResult<Expr> {
    let Bson::Array(items) = arg else {
        return Err(bad("$all needs an array"));
    };
    let is_elem_match = |v: &Bson| matches!(v, Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$elemMatch"));
    let mut all = Vec::new();
    if items.first().is_some_and(is_elem_match) {
        for item in items {
            let Bson::Document(d) = item else {
                return Err(bad("$all/$elemMatch has to be consistent"));
            };
            let Some(("$elemMatch", spec)) = d.iter().next().map(|(k, v)| (k.as_str(), v)) else {
                return Err(bad("$all/$elemMatch has to be consistent"));
            };
            all.push(Expr::Path(name.into(), parse_elem_match(spec)?));
        }
    } else {
        for item in items {
            match item {
                Bson::RegularExpression(r) => all.push(Expr::Path(
                    name.into(),
                    Leaf::Regex(Rx::new(&r.pattern, &r.options)?),
                )),
                Bson::Document(d) if d.keys().next().is_some_and(|k| is_path_operator(k)) => {
                    return Err(bad("no $ expressions in $all"))
                }
                _ => all.push(Expr::Path(name.into(), Leaf::Cmp(CmpOp::Eq, item.clone()))),
            }
        }
    }
    // An empty $all matches nothing.
    Ok(if all.is_empty() {
        Expr::Const(false)
    } else {
        Expr::And(all)
    })
}

fn is_path_operator(key: &str) -> bool {
    matches!(
        key,
        "$all"
            | "$bitsAllClear"
            | "$bitsAllSet"
            | "$bitsAnyClear"
            | "$bitsAnySet"
            | "$elemMatch"
            | "$eq"
            | "$exists"
            | "$geoIntersects"
            | "$geoNear"
            | "$geoWithin"
            | "$gt"
            | "$gte"
            | "$in"
            | "$lt"
            | "$lte"
            | "$mod"
            | "$ne"
            | "$near"
            | "$nearSphere"
            | "$nin"
            | "$options"
            | "$regex"
            | "$size"
            | "$type"
            | "$within"
    )
}

fn parse_type(name: &str, arg: &Bson) -> CmdResult<Leaf> {
    let single: &[Bson] = std::slice::from_ref(arg);
    let items = if let Bson::Array(a) = arg {
        a.as_slice()
    } else {
        single
    };
    let (mut codes, mut numbers) = (Vec::new(), false);
    for item in items {
        match item {
            Bson::String(alias) if alias == "number" => numbers = true,
            Bson::String(alias) => match (-1..=127).find(|c| type_name_of_code(*c) == Some(alias.as_str())) {
                Some(code) => codes.push(code),
                None if alias == "missing" => {
                    return Err(bad(
                        "'missing' is not a legal type name. To query for non-existence of a field, use {$exists:false}.",
                    ))
                }
                None => return Err(bad(format!("Unknown type name alias: {alias}"))),
            },
            _ if is_number(item) => {
                let shown = to_f64(item).map(render_number).unwrap_or_default();
                match integer_arg("", item, false).ok().and_then(|c| i32::try_from(c).ok()) {
                    Some(0) => {
                        return Err(bad(format!("Invalid numerical type code: {shown}. Instead use {{$exists:false}}.")))
                    }
                    Some(code) if type_name_of_code(code).is_some() => codes.push(code),
                    _ => return Err(bad(format!("Invalid numerical type code: {shown}"))),
                }
            }
            _ => {
                return Err(CommandError::type_mismatch("type must be represented as a number or a string"));
            }
        }
    }
    if codes.is_empty() && !numbers {
        return Err(CommandError::failed_to_parse(format!(
            "{name} must match at least one type"
        )));
    }
    Ok(Leaf::Type { codes, numbers })
}

/// A double as C++ streams print it by default (`%g`, six digits).
fn render_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e6 {
        format!("{f:.0}")
    } else {
        let s = format!("{f:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn parse_mod(arg: &Bson) -> CmdResult<Leaf> {
    let Bson::Array(items) = arg else {
        return Err(bad("malformed mod, needs to be an array"));
    };
    let [divisor, remainder] = items.as_slice() else {
        let msg = if items.len() < 2 {
            "not enough elements"
        } else {
            "too many elements"
        };
        return Err(bad(format!("malformed mod, {msg}")));
    };
    let as_int = |v: &Bson, what: &str| -> CmdResult<i64> {
        if !is_number(v) {
            return Err(bad(format!("malformed mod, {what} not a number")));
        }
        match to_f64(v) {
            Some(f) if f.is_finite() => Ok(match v {
                Bson::Int64(i) => *i,
                _ => f as i64,
            }),
            _ => Err(bad(format!(
                "malformed mod, {what} value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type"
            ))),
        }
    };
    let (d, r) = (as_int(divisor, "divisor")?, as_int(remainder, "remainder")?);
    if d == 0 {
        return Err(bad("divisor cannot be 0"));
    }
    Ok(Leaf::Mod(d, r))
}

fn parse_regex_operator(ops: &Document) -> CmdResult<Rx> {
    let (mut pattern, mut options) = (String::new(), String::new());
    for (k, v) in ops {
        match (k.as_str(), v) {
            ("$regex", Bson::String(s)) => pattern = s.clone(),
            ("$regex", Bson::RegularExpression(r)) => {
                pattern = r.pattern.clone();
                if !r.options.is_empty() {
                    if !options.is_empty() {
                        return Err(CommandError::new(
                            51074,
                            "options set in both $regex and $options",
                        ));
                    }
                    options = r.options.clone();
                }
            }
            ("$regex", _) => return Err(bad("$regex has to be a string")),
            ("$options", Bson::String(s)) => {
                if !options.is_empty() {
                    return Err(CommandError::new(
                        51075,
                        "options set in both $regex and $options",
                    ));
                }
                options = s.clone();
            }
            ("$options", _) => return Err(bad("$options has to be a string")),
            _ => {}
        }
    }
    Rx::new(&pattern, &options)
}

#[cfg(test)]
mod tests {
    use super::super::Matcher;
    use bson::{doc, Bson, Regex};

    /// `fails! { filter => code, message; ... }`
    macro_rules! fails {
        ($($f:expr => $code:expr, $msg:expr;)*) => {
            $({
                let e = Matcher::new(&$f).unwrap_err();
                assert_eq!((e.code, e.errmsg.as_str()), ($code, $msg), "filter {}", $f);
            })*
        };
    }

    fn re(pattern: &str, options: &str) -> Bson {
        Bson::RegularExpression(Regex {
            pattern: pattern.into(),
            options: options.into(),
        })
    }

    #[test]
    fn errors_match_mongodb() {
        let top = "unknown top level operator: $foo. If you have a field name that starts with a \
                   '$' symbol, consider using $getField or $setField.";
        let not = "unknown top level operator: $not. If you are trying to negate an entire \
                   expression, use $nor.";
        fails! {
            doc! {"$foo": 1} => 2, top;
            doc! {"$not": {"a": 1}} => 2, not;
            doc! {"a": {"$foo": 1}} => 2, "unknown operator: $foo";
            doc! {"a": {"$gt": 1, "b": 2}} => 2, "unknown operator: b";
            doc! {"$or": []} => 2, "$and/$or/$nor must be a nonempty array";
            doc! {"$and": {"a": 1}} => 2, "$and must be an array";
            doc! {"$nor": [1]} => 2, "$or/$and/$nor entries need to be full objects";
            doc! {"a": {"$in": 1}} => 2, "$in needs an array";
            doc! {"a": {"$nin": "x"}} => 2, "$nin needs an array";
            doc! {"a": {"$in": [{"$gt": 1}]}} => 2, "cannot nest $ under $in";
            doc! {"a": Bson::Undefined} => 2, "cannot compare to undefined";
            doc! {"a": {"$lt": re("x", "")}} => 2, "Can't have RegEx as arg to predicate over field 'a'.";
            doc! {"a": {"$ne": re("x", "")}} => 2, "Can't have regex as arg to $ne.";
            doc! {"a": {"$not": {}}} => 2, "$not cannot be empty";
            doc! {"a": {"$not": 5}} => 2, "$not needs a regex or a document";
            doc! {"a": {"$elemMatch": 5}} => 2, "$elemMatch needs an Object";
            doc! {"a": {"$all": 5}} => 2, "$all needs an array";
            doc! {"a": {"$all": [{"$gt": 1}]}} => 2, "no $ expressions in $all";
            doc! {"a": {"$size": -1}} => 2, "Failed to parse $size. Expected a non-negative number in: $size: -1";
            doc! {"a": {"$size": 1.5}} => 2, "Failed to parse $size. Expected an integer: $size: 1.5";
            doc! {"a": {"$size": "x"}} => 2, "Failed to parse $size. Expected a number in: $size: \"x\"";
            doc! {"a": {"$type": "foo"}} => 2, "Unknown type name alias: foo";
            doc! {"a": {"$type": 100}} => 2, "Invalid numerical type code: 100";
            doc! {"a": {"$type": 0}} => 2, "Invalid numerical type code: 0. Instead use {$exists:false}.";
            doc! {"a": {"$type": true}} => 14, "type must be represented as a number or a string";
            doc! {"a": {"$type": []}} => 9, "a must match at least one type";
            doc! {"a": {"$options": "i"}} => 2, "$options needs a $regex";
            doc! {"a": {"$regex": 5}} => 2, "$regex has to be a string";
            doc! {"a": {"$regex": "x", "$options": "z"}} => 51108, " invalid flag in regex options: z";
            doc! {"a": {"$regex": re("x", "i"), "$options": "m"}} => 51075, "options set in both $regex and $options";
            doc! {"a": {"$mod": [1]}} => 2, "malformed mod, not enough elements";
            doc! {"a": {"$mod": [0, 1]}} => 2, "divisor cannot be 0";
            doc! {"$alwaysTrue": 2} => 9, "$alwaysTrue must be an integer value of 1";
            doc! {"$where": "1"} => 37, "$where is not supported by mongo-testserver";
        }
    }
}

//! Each update operator's argument checks (the server's `init()` methods in
//! `src/mongo/db/update/*_node.cpp`) and the parsed form the engine applies.

use bson::{Bson, Document};

use super::spec::{is_array_filter, is_positional};
use super::value::{self, codes, err, fmt_elem, integer_arg, type_name};
use crate::error::{codes as ec, CmdResult};

/// A parsed `$push` argument (`PushNode`'s members).
#[derive(Clone, Debug)]
pub(crate) struct PushSpec {
    pub(crate) values: Vec<Bson>,
    /// `$position`; `i64::MAX` when absent, as in the server, which is what
    /// makes a plain push an "append" for logging purposes.
    pub(crate) position: i64,
    /// `$slice`; `i64::MAX` when absent (no trimming).
    pub(crate) slice: i64,
    pub(crate) sort: Option<SortSpec>,
}

#[derive(Clone, Debug)]
pub(crate) enum SortSpec {
    /// `$sort: 1 / -1`: whole elements.
    Whole(bool),
    /// `$sort: {a: 1, "b.c": -1}`: ascending flag per dotted field.
    Fields(Vec<(Vec<String>, bool)>),
}

/// A `$pull` condition (`pull_node.cpp` picks one of three matchers).
#[derive(Clone, Debug)]
pub(crate) enum PullCond {
    /// A non-document value: plain equality with each element.
    Equal(Bson),
    /// `{$gte: 5}`-style: operators applied to each element itself.
    Ops(Vec<(String, Bson)>),
    /// `{field: cond, ...}`: a query each document element must match.
    Query(Vec<(Vec<String>, FieldCond)>),
}

/// The condition on one field of a `$pull` query.
#[derive(Clone, Debug)]
pub(crate) enum FieldCond {
    Equal(Bson),
    Ops(Vec<(String, Bson)>),
}

/// One field operation: an update operator with its checked argument.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Bson),
    Mul(Bson),
    Min(Bson),
    Max(Bson),
    CurrentDate {
        timestamp: bool,
    },
    Push(PushSpec),
    AddToSet(Vec<Bson>),
    Pop {
        front: bool,
    },
    Pull(PullCond),
    PullAll(Vec<Bson>),
    /// The placeholder `$rename` leaves at its source path so that other
    /// operators on that path conflict; it does nothing when applied.
    RenameSource,
    /// `$rename` proper, stored at the destination path.
    RenameTo {
        from: Vec<String>,
    },
}

/// The per-operator `init()` argument checks.
pub(crate) fn init_op(modifier: &str, path: &str, value: &Bson) -> CmdResult<Op> {
    Ok(match modifier {
        "$set" => Op::Set(value.clone()),
        "$setOnInsert" => Op::SetOnInsert(value.clone()),
        "$unset" => Op::Unset,
        "$inc" | "$mul" => {
            if !value::is_number(value) {
                let verb = if modifier == "$inc" {
                    "increment"
                } else {
                    "multiply"
                };
                return Err(err(
                    ec::TYPE_MISMATCH,
                    format!(
                        "Cannot {verb} with non-numeric argument: {{{}}}",
                        fmt_elem(path, value)
                    ),
                ));
            }
            if modifier == "$inc" {
                Op::Inc(value.clone())
            } else {
                Op::Mul(value.clone())
            }
        }
        "$min" => Op::Min(value.clone()),
        "$max" => Op::Max(value.clone()),
        "$currentDate" => Op::CurrentDate {
            timestamp: parse_current_date(value)?,
        },
        "$push" => Op::Push(parse_push(value)?),
        "$addToSet" => Op::AddToSet(parse_add_to_set(value)?),
        "$pop" => {
            let n = integer_arg(path, value).map_err(|m| err(ec::FAILED_TO_PARSE, m))?;
            if n != 1 && n != -1 {
                return Err(err(
                    ec::FAILED_TO_PARSE,
                    format!("$pop expects 1 or -1, found: {n}"),
                ));
            }
            Op::Pop { front: n == -1 }
        }
        "$pull" => Op::Pull(parse_pull(value)?),
        "$pullAll" => match value {
            Bson::Array(items) => Op::PullAll(items.clone()),
            _ => {
                return Err(err(
                    ec::BAD_VALUE,
                    format!(
                        "$pullAll requires an array argument but was given a {}",
                        type_name(value)
                    ),
                ))
            }
        },
        "$rename" => Op::RenameTo {
            from: parse_rename(path, value)?,
        },
        "$bit" => {
            return Err(err(
                codes::NOT_IMPLEMENTED,
                "$bit is not supported by this test server",
            ))
        }
        other => {
            // Unreachable after validate_modifier, but never panic.
            return Err(err(
                ec::FAILED_TO_PARSE,
                format!("Unknown modifier: {other}"),
            ));
        }
    })
}

/// `RenameNode::init`.
fn parse_rename(from: &str, value: &Bson) -> CmdResult<Vec<String>> {
    let Bson::String(to) = value else {
        return Err(err(
            ec::BAD_VALUE,
            "The 'to' field for $rename must be a string",
        ));
    };
    if to.contains('\0') {
        return Err(err(
            ec::BAD_VALUE,
            "The 'to' field for $rename cannot contain an embedded null byte",
        ));
    }
    let from_parts: Vec<&str> = from.split('.').collect();
    let to_parts: Vec<&str> = to.split('.').collect();
    if from_parts == to_parts {
        return Err(err(
            ec::BAD_VALUE,
            format!(
                "The source and target field for $rename must differ: {}",
                fmt_elem(from, value)
            ),
        ));
    }
    let prefix = |a: &[&str], b: &[&str]| a.len() < b.len() && b.starts_with(a);
    if prefix(&from_parts, &to_parts) || prefix(&to_parts, &from_parts) {
        return Err(err(
            ec::BAD_VALUE,
            format!(
                "The source and target field for $rename must not be on the same path: {}",
                fmt_elem(from, value)
            ),
        ));
    }
    let dynamic = |parts: &[&str]| parts.iter().any(|p| is_positional(p) || is_array_filter(p));
    if dynamic(&from_parts) {
        return Err(err(
            ec::BAD_VALUE,
            format!("The source field for $rename may not be dynamic: {from}"),
        ));
    }
    if dynamic(&to_parts) {
        return Err(err(
            ec::BAD_VALUE,
            format!("The destination field for $rename may not be dynamic: {to}"),
        ));
    }
    Ok(from_parts.into_iter().map(str::to_string).collect())
}

/// `CurrentDateNode::init`; returns true for a timestamp.
fn parse_current_date(value: &Bson) -> CmdResult<bool> {
    match value {
        Bson::Boolean(_) => Ok(false),
        Bson::Document(d) => {
            let mut found = None;
            for (k, v) in d {
                if k != "$type" {
                    return Err(err(
                        ec::BAD_VALUE,
                        format!("Unrecognized $currentDate option: {k}"),
                    ));
                }
                match v {
                    Bson::String(s) if s == "date" => found = Some(false),
                    Bson::String(s) if s == "timestamp" => found = Some(true),
                    _ => {}
                }
            }
            found.ok_or_else(|| {
                err(
                    ec::BAD_VALUE,
                    "The '$type' string field is required to be 'date' or 'timestamp': \
                     {$currentDate: {field : {$type: 'date'}}}",
                )
            })
        }
        other => Err(err(
            ec::BAD_VALUE,
            format!(
                "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type \
                 expression ({{$type: 'timestamp/date'}}).",
                type_name(other)
            ),
        )),
    }
}

/// `PushNode::init`.
fn parse_push(value: &Bson) -> CmdResult<PushSpec> {
    let mut spec = PushSpec {
        values: Vec::new(),
        position: i64::MAX,
        slice: i64::MAX,
        sort: None,
    };
    let clauses = match value {
        Bson::Document(d) if d.contains_key("$each") => d,
        other => {
            spec.values.push(other.clone());
            return Ok(spec);
        }
    };
    for (name, clause) in clauses {
        match name.as_str() {
            "$each" => match clause {
                Bson::Array(items) => spec.values = items.clone(),
                other => {
                    return Err(err(
                        ec::BAD_VALUE,
                        format!(
                        "The argument to $each in $push must be an array but it was of type: {}",
                        type_name(other)
                    ),
                    ))
                }
            },
            "$slice" => {
                spec.slice = integer_arg(name, clause).map_err(|_| {
                    err(
                        ec::BAD_VALUE,
                        format!(
                            "The value for $slice must be an integer value but was given type: {}",
                            type_name(clause)
                        ),
                    )
                })?;
            }
            "$position" => {
                spec.position = integer_arg(name, clause).map_err(|_| {
                    err(
                        ec::BAD_VALUE,
                        format!(
                            "The value for $position must be an integer value, not of type: {}",
                            type_name(clause)
                        ),
                    )
                })?;
            }
            "$sort" => spec.sort = Some(parse_sort(clause)?),
            other => {
                return Err(err(
                    ec::BAD_VALUE,
                    format!("Unrecognized clause in $push: {other}"),
                ));
            }
        }
    }
    Ok(spec)
}

fn sort_direction(v: &Bson) -> Option<bool> {
    let d = match v {
        Bson::Int32(i) => f64::from(*i),
        Bson::Int64(i) => *i as f64,
        Bson::Double(d) => *d,
        _ => return None,
    };
    if d == 1.0 {
        Some(true)
    } else if d == -1.0 {
        Some(false)
    } else {
        None
    }
}

/// `checkSortClause` and the `$sort` part of `PushNode::init`.
fn parse_sort(v: &Bson) -> CmdResult<SortSpec> {
    let bad_dir = || {
        err(
            ec::BAD_VALUE,
            "The $sort element value must be either 1 or -1",
        )
    };
    match v {
        Bson::Document(pattern) => {
            if pattern.is_empty() {
                return Err(err(
                    ec::BAD_VALUE,
                    "The $sort pattern is empty when it should be a set of fields.",
                ));
            }
            let mut fields = Vec::new();
            for (k, dir) in pattern {
                let asc = sort_direction(dir).ok_or_else(bad_dir)?;
                if k.is_empty() {
                    return Err(err(ec::BAD_VALUE, "The $sort field cannot be empty"));
                }
                let parts: Vec<String> = k.split('.').map(str::to_string).collect();
                if parts.iter().any(String::is_empty) {
                    return Err(err(
                        ec::BAD_VALUE,
                        format!("The $sort field is a dotted field but has an empty part: {k}"),
                    ));
                }
                fields.push((parts, asc));
            }
            Ok(SortSpec::Fields(fields))
        }
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
            Ok(SortSpec::Whole(sort_direction(v).ok_or_else(bad_dir)?))
        }
        _ => Err(err(
            ec::BAD_VALUE,
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort \
             embedded fields",
        )),
    }
}

/// `AddToSetNode::init`, including its de-duplication of the new values.
fn parse_add_to_set(value: &Bson) -> CmdResult<Vec<Bson>> {
    let items = match value {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$each") => {
            let each = d.get("$each").cloned().unwrap_or(Bson::Null);
            let Bson::Array(items) = each else {
                return Err(err(
                    ec::TYPE_MISMATCH,
                    format!(
                        "The argument to $each in $addToSet must be an array but it was of type {}",
                        type_name(&each)
                    ),
                ));
            };
            if d.len() > 1 {
                return Err(err(
                    ec::BAD_VALUE,
                    format!(
                        "Found unexpected fields after $each in $addToSet: {}",
                        value::fmt_doc(d)
                    ),
                ));
            }
            items
        }
        other => vec![other.clone()],
    };
    let mut out: Vec<Bson> = Vec::new();
    for item in items {
        if !out.iter().any(|o| value::values_equal(o, &item)) {
            out.push(item);
        }
    }
    Ok(out)
}

const PULL_OPS: [&str; 8] = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"];

fn parse_ops(d: &Document) -> CmdResult<Vec<(String, Bson)>> {
    let mut ops = Vec::new();
    for (k, v) in d {
        if !PULL_OPS.contains(&k.as_str()) {
            return Err(err(
                codes::NOT_IMPLEMENTED,
                format!("$pull with the query operator {k} is not supported by this test server"),
            ));
        }
        if matches!(k.as_str(), "$in" | "$nin") && !matches!(v, Bson::Array(_)) {
            return Err(err(ec::BAD_VALUE, format!("{k} needs an array")));
        }
        ops.push((k.clone(), v.clone()));
    }
    Ok(ops)
}

/// `PullNode::init`: which matcher a `$pull` argument selects.
fn parse_pull(value: &Bson) -> CmdResult<PullCond> {
    match value {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            Ok(PullCond::Ops(parse_ops(d)?))
        }
        Bson::Document(d) => {
            let mut fields = Vec::new();
            for (k, v) in d {
                if k.starts_with('$') {
                    return Err(err(
                        codes::NOT_IMPLEMENTED,
                        format!("$pull with the query operator {k} is not supported by this test server"),
                    ));
                }
                let cond =
                    match v {
                        Bson::Document(inner)
                            if inner.keys().next().is_some_and(|k| k.starts_with('$')) =>
                        {
                            FieldCond::Ops(parse_ops(inner)?)
                        }
                        Bson::RegularExpression(_) => return Err(err(
                            codes::NOT_IMPLEMENTED,
                            "$pull with a regular expression is not supported by this test server",
                        )),
                        other => FieldCond::Equal(other.clone()),
                    };
                fields.push((k.split('.').map(str::to_string).collect(), cond));
            }
            Ok(PullCond::Query(fields))
        }
        Bson::RegularExpression(_) => Err(err(
            codes::NOT_IMPLEMENTED,
            "$pull with a regular expression is not supported by this test server",
        )),
        other => Ok(PullCond::Equal(other.clone())),
    }
}

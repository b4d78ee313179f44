//! The aggregation pipeline (`aggregate` command): parsing stages and
//! expressions and running them over a collection's documents in memory.
//!
//! Supported stages: `$match`, `$sort`, `$limit`, `$skip`, `$project`,
//! `$addFields`/`$set`, `$unset`, `$count`, `$group` and `$unwind`. Like
//! mongod, the whole pipeline is parsed before any document flows, so a bad
//! later stage fails the command even on an empty collection. Expressions
//! live in `expression`, `$group` and its accumulators in `group`. Codes
//! and messages follow the server's `document_source_*.cpp`.

use bson::{Bson, Document};

mod expression;
mod group;

use crate::compare::{integer_arg, type_name};
use crate::error::{CmdResult, CommandError};
use crate::matcher::Matcher;
use crate::query::{field_path, parse_sort, sort_documents, stage_error, Kind, Projection};
pub(crate) use expression::{is_expression_name, parse_expression, Expression};
use group::{group, parse_group, AccOp};

/// Runs `pipeline` over `input`, returning the documents that come out.
pub fn run_pipeline(input: Vec<Document>, pipeline: &[Document]) -> CmdResult<Vec<Document>> {
    let stages = pipeline
        .iter()
        .map(parse_stage)
        .collect::<CmdResult<Vec<_>>>()?;
    stages.iter().try_fold(input, |docs, stage| stage.run(docs))
}

enum Stage {
    Match(Matcher),
    Sort(Document),
    Limit(usize),
    Skip(usize),
    Project(Projection),
    Count(String),
    Group(Expression, Vec<(String, AccOp, Expression)>),
    Unwind {
        path: Vec<String>,
        preserve: bool,
        index: Option<Vec<String>>,
    },
}

/// Stages mongod has that this server does not run: refused by name.
const KNOWN_STAGES: &[&str] = &[
    "$bucket",
    "$bucketAuto",
    "$changeStream",
    "$collStats",
    "$currentOp",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$indexStats",
    "$listLocalSessions",
    "$listSessions",
    "$lookup",
    "$merge",
    "$out",
    "$planCacheStats",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$search",
    "$searchMeta",
    "$setWindowFields",
    "$sortByCount",
    "$unionWith",
];

fn parse_stage(spec: &Document) -> CmdResult<Stage> {
    let mut fields = spec.iter();
    let (Some((name, arg)), None) = (fields.next(), fields.next()) else {
        return Err(CommandError::new(
            40323,
            "A pipeline stage specification object must contain exactly one field.",
        ));
    };
    let object = |code: i32, msg: String| match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(CommandError::new(code, msg)),
    };
    Ok(match name.as_str() {
        "$match" => Stage::Match(Matcher::new(object(
            15959,
            "the match filter must be an expression in an object".into(),
        )?)?),
        "$sort" => {
            let spec = object(
                15973,
                "the $sort key specification must be an object".into(),
            )?;
            if spec.is_empty() {
                return Err(CommandError::new(
                    15976,
                    "$sort stage must have at least one sort key",
                ));
            }
            parse_sort(spec)?;
            Stage::Sort(spec.clone())
        }
        "$limit" => match integer_arg("$limit", arg, true) {
            Ok(0) => return Err(CommandError::new(15958, "the limit must be positive")),
            Ok(n) => Stage::Limit(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(reason) => {
                return Err(CommandError::new(
                    5107201,
                    format!("invalid argument to $limit stage: {reason}"),
                ))
            }
        },
        "$skip" => match integer_arg("$skip", arg, true) {
            Ok(n) => Stage::Skip(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(reason) => {
                return Err(CommandError::new(
                    5107200,
                    format!("invalid argument to $skip stage: {reason}"),
                ))
            }
        },
        "$project" => {
            let spec = object(15969, "$project specification must be an object".into())?;
            Stage::Project(
                Projection::parse(spec, Kind::Project).map_err(|e| stage_error(name, e))?,
            )
        }
        "$addFields" | "$set" => {
            let spec = object(
                40272,
                format!(
                    "{name} specification stage must be an object, got {}",
                    type_name(arg)
                ),
            )?;
            Stage::Project(
                Projection::parse(spec, Kind::AddFields).map_err(|e| stage_error(name, e))?,
            )
        }
        "$unset" => Stage::Project(parse_unset(arg)?),
        "$count" => Stage::Count(parse_count(arg)?),
        "$group" => parse_group(object(
            15947,
            "a group's fields must be specified in an object".into(),
        )?)?,
        "$unwind" => parse_unwind(arg)?,
        _ if KNOWN_STAGES.contains(&name.as_str()) => {
            return Err(CommandError::new(
                37,
                format!("{name} is not supported by mongo-testserver"),
            ))
        }
        _ => {
            return Err(CommandError::new(
                40324,
                format!("Unrecognized pipeline stage name: '{name}'"),
            ))
        }
    })
}

fn parse_unset(arg: &Bson) -> CmdResult<Projection> {
    let fields: Vec<&Bson> = match arg {
        Bson::String(_) => vec![arg],
        Bson::Array(items) if items.is_empty() => {
            let msg = "$unset specification must be a string or an array with at least one field";
            return Err(CommandError::new(31119, msg));
        }
        Bson::Array(items) => items.iter().collect(),
        _ => {
            return Err(CommandError::new(
                31002,
                "$unset specification must be a string or an array",
            ))
        }
    };
    let mut spec = Document::new();
    for f in fields {
        let Bson::String(path) = f else {
            let msg =
                "$unset specification must be a string or an array containing only string values";
            return Err(CommandError::new(31120, msg));
        };
        spec.insert(path.clone(), 0);
    }
    Projection::parse(&spec, Kind::Project).map_err(|e| stage_error("$unset", e))
}

fn parse_count(arg: &Bson) -> CmdResult<String> {
    let Bson::String(field) = arg else {
        return Err(CommandError::new(
            40156,
            "the count field must be a non-empty string",
        ));
    };
    let (code, msg) = match () {
        _ if field.is_empty() => (40157, "the count field must be a non-empty string"),
        _ if field.starts_with('$') => (40158, "the count field cannot be a $-prefixed path"),
        _ if field.contains('\0') => (40159, "the count field cannot contain a null byte"),
        _ if field.contains('.') => (40160, "the count field cannot contain '.'"),
        _ => return Ok(field.clone()),
    };
    Err(CommandError::new(code, msg))
}

fn parse_unwind(arg: &Bson) -> CmdResult<Stage> {
    let (mut path, mut preserve, mut index) = (String::new(), false, None);
    match arg {
        Bson::String(s) => path = s.clone(),
        Bson::Document(opts) => {
            for (k, v) in opts {
                match (k.as_str(), v) {
                    ("path", Bson::String(s)) => path = s.clone(),
                    ("path", _) => {
                        let msg = format!(
                            "expected a string as the path for $unwind stage, got {}",
                            type_name(v)
                        );
                        return Err(CommandError::new(28808, msg));
                    }
                    ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => preserve = *b,
                    ("preserveNullAndEmptyArrays", _) => {
                        let msg = format!(
                            "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got {}",
                            type_name(v)
                        );
                        return Err(CommandError::new(28809, msg));
                    }
                    ("includeArrayIndex", Bson::String(s)) if !s.is_empty() => {
                        if s.starts_with('$') {
                            let msg = format!("includeArrayIndex option to $unwind stage should not be prefixed with a '$': {s}");
                            return Err(CommandError::new(28822, msg));
                        }
                        index = Some(field_path(s)?);
                    }
                    ("includeArrayIndex", _) => {
                        let msg = format!(
                            "expected a non-empty string for the includeArrayIndex  option to $unwind stage, got {}",
                            type_name(v)
                        );
                        return Err(CommandError::new(28810, msg));
                    }
                    _ => {
                        return Err(CommandError::new(
                            28811,
                            format!("unrecognized option to $unwind stage: {k}"),
                        ))
                    }
                }
            }
        }
        _ => {
            let msg = format!(
                "expected either a string or an object as specification for $unwind stage, got {}",
                type_name(arg)
            );
            return Err(CommandError::new(15981, msg));
        }
    }
    if path.is_empty() {
        return Err(CommandError::new(
            28812,
            "no path specified to $unwind stage",
        ));
    }
    let Some(field) = path.strip_prefix('$') else {
        let msg = format!("path option to $unwind stage should be prefixed with a '$': {path}");
        return Err(CommandError::new(28818, msg));
    };
    Ok(Stage::Unwind {
        path: field_path(field)?,
        preserve,
        index,
    })
}

impl Stage {
    fn run(&self, docs: Vec<Document>) -> CmdResult<Vec<Document>> {
        Ok(match self {
            Stage::Match(m) => docs.into_iter().filter(|d| m.matches(d)).collect(),
            Stage::Sort(spec) => {
                let mut docs = docs;
                sort_documents(&mut docs, spec)?;
                docs
            }
            Stage::Limit(n) => docs.into_iter().take(*n).collect(),
            Stage::Skip(n) => docs.into_iter().skip(*n).collect(),
            Stage::Project(p) => docs.iter().map(|d| p.apply(d)).collect(),
            Stage::Count(field) => match docs.len() {
                0 => Vec::new(),
                n => {
                    let mut out = Document::new();
                    out.insert(
                        field.clone(),
                        i32::try_from(n).map_or(Bson::Int64(n as i64), Bson::Int32),
                    );
                    vec![out]
                }
            },
            Stage::Group(id, accs) => group(docs, id, accs),
            Stage::Unwind {
                path,
                preserve,
                index,
            } => docs
                .into_iter()
                .flat_map(|d| unwind(d, path, *preserve, index.as_deref()))
                .collect(),
        })
    }
}

/// `$unwind` on one document: one output per array element; non-arrays
/// pass through; null, missing and `[]` only with `preserveNullAndEmptyArrays`.
fn unwind(
    doc: Document,
    path: &[String],
    preserve: bool,
    index: Option<&[String]>,
) -> Vec<Document> {
    let with_index = |mut d: Document, i: Option<usize>| {
        if let Some(ip) = index {
            set_path(&mut d, ip, i.map_or(Bson::Null, |i| Bson::Int64(i as i64)));
        }
        d
    };
    match get_path(&doc, path).cloned() {
        Some(Bson::Array(items)) if items.is_empty() => {
            if !preserve {
                return Vec::new();
            }
            let mut d = doc;
            remove_path(&mut d, path);
            vec![with_index(d, None)]
        }
        Some(Bson::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut d = doc.clone();
                set_path(&mut d, path, item);
                with_index(d, Some(i))
            })
            .collect(),
        None | Some(Bson::Null | Bson::Undefined) if !preserve => Vec::new(),
        _ => vec![with_index(doc, None)],
    }
}

/// The value at a dotted path through subdocuments only (no arrays).
fn get_path<'a>(doc: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (last, init) = path.split_last()?;
    let mut cur = doc;
    for p in init {
        cur = cur.get_document(p).ok()?;
    }
    cur.get(last)
}

/// Sets a dotted path, creating (or replacing non-documents with)
/// subdocuments on the way.
fn set_path(doc: &mut Document, path: &[String], value: Bson) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(first.clone(), value);
        return;
    }
    if !matches!(doc.get(first), Some(Bson::Document(_))) {
        doc.insert(first.clone(), Document::new());
    }
    if let Some(Bson::Document(sub)) = doc.get_mut(first) {
        set_path(sub, rest, value);
    }
}

fn remove_path(doc: &mut Document, path: &[String]) {
    match path {
        [only] => {
            doc.remove(only);
        }
        [first, rest @ ..] => {
            if let Some(Bson::Document(sub)) = doc.get_mut(first) {
                remove_path(sub, rest);
            }
        }
        [] => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(input: &[Document], pipeline: &[Document]) -> Vec<Document> {
        run_pipeline(input.to_vec(), pipeline).unwrap()
    }

    /// `rejects! { stage => code, message; ... }`, each stage run alone
    /// over no documents (parsing happens before any document flows).
    macro_rules! rejects {
        ($($stage:expr => $code:expr, $msg:expr;)*) => {
            $({
                let e = run_pipeline(Vec::new(), &[$stage]).unwrap_err();
                assert_eq!((e.code, e.errmsg.as_str()), ($code, $msg), "stage {}", $stage);
            })*
        };
    }

    fn people() -> Vec<Document> {
        vec![
            doc! {"_id": 1, "name": "ann", "age": 30, "tags": ["a", "b"]},
            doc! {"_id": 2, "name": "bob", "age": 25, "tags": []},
            doc! {"_id": 3, "name": "cy", "age": 35},
            doc! {"_id": 4, "name": "di", "age": 25, "tags": "solo"},
        ]
    }

    #[test]
    fn match_sort_skip_limit_project() {
        let out = run(
            &people(),
            &[
                doc! {"$match": {"age": {"$gte": 25}}},
                doc! {"$sort": {"age": -1, "_id": 1}},
                doc! {"$skip": 1},
                doc! {"$limit": 2},
                doc! {"$project": {"name": 1, "_id": 0}},
            ],
        );
        assert_eq!(out, vec![doc! {"name": "ann"}, doc! {"name": "bob"}]);
        assert!(run(&people(), &[doc! {"$limit": 1.0}, doc! {"$skip": 5i64}]).is_empty());
        assert_eq!(run(&people(), &[]).len(), 4);
    }

    #[test]
    fn count_set_and_unset() {
        let count = run(
            &people(),
            &[doc! {"$match": {"age": 25}}, doc! {"$count": "n"}],
        );
        assert_eq!(count, vec![doc! {"n": 2}]);
        assert!(run(
            &people(),
            &[doc! {"$match": {"age": 99}}, doc! {"$count": "n"}]
        )
        .is_empty());
        let set = run(
            &people()[..1],
            &[
                doc! {"$set": {"next": "$age", "name": "x"}},
                doc! {"$unset": ["tags", "_id"]},
            ],
        );
        assert_eq!(set, vec![doc! {"name": "x", "age": 30, "next": 30}]);
    }

    #[test]
    fn unwind_forms() {
        let ids = |out: Vec<Document>| {
            out.iter()
                .map(|d| d.get("tags").cloned())
                .collect::<Vec<_>>()
        };
        let plain = run(&people(), &[doc! {"$unwind": "$tags"}]);
        let s = |v: &str| Some(Bson::String(v.into()));
        assert_eq!(ids(plain), vec![s("a"), s("b"), s("solo")]);
        let kept = run(
            &people(),
            &[doc! {"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": true}}],
        );
        assert_eq!(ids(kept), vec![s("a"), s("b"), None, None, s("solo")]);
        let indexed = run(
            &people()[..2],
            &[doc! {"$unwind": {"path": "$tags", "includeArrayIndex": "i"}}],
        );
        let idx: Vec<_> = indexed.iter().map(|d| d.get("i").cloned()).collect();
        assert_eq!(idx, vec![Some(Bson::Int64(0)), Some(Bson::Int64(1))]);
        let nested = run(
            &[doc! {"a": {"b": [1, 2]}, "z": 0}],
            &[doc! {"$unwind": "$a.b"}],
        );
        assert_eq!(
            nested,
            vec![doc! {"a": {"b": 1}, "z": 0}, doc! {"a": {"b": 2}, "z": 0}]
        );
        assert!(run(&[doc! {"a": [{"b": [1]}]}], &[doc! {"$unwind": "$a.b"}]).is_empty());
    }

    #[test]
    fn whole_pipeline_is_parsed_before_running() {
        let e = run_pipeline(Vec::new(), &[doc! {"$match": {}}, doc! {"$bogus": 1}]).unwrap_err();
        assert_eq!(e.code, 40324);
    }

    #[test]
    fn stage_errors_match_mongodb() {
        rejects! {
            doc! {"$bogus": 1} => 40324, "Unrecognized pipeline stage name: '$bogus'";
            doc! {"$match": {}, "$limit": 1} => 40323, "A pipeline stage specification object must contain exactly one field.";
            doc! {} => 40323, "A pipeline stage specification object must contain exactly one field.";
            doc! {"$lookup": {}} => 37, "$lookup is not supported by mongo-testserver";
            doc! {"$match": 1} => 15959, "the match filter must be an expression in an object";
            doc! {"$match": {"$foo": 1}} => 2, "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.";
            doc! {"$sort": 1} => 15973, "the $sort key specification must be an object";
            doc! {"$sort": {}} => 15976, "$sort stage must have at least one sort key";
            doc! {"$sort": {"a": 2}} => 15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)";
            doc! {"$limit": 0} => 15958, "the limit must be positive";
            doc! {"$limit": -1} => 5107201, "invalid argument to $limit stage: Expected a non-negative number in: $limit: -1";
            doc! {"$limit": "x"} => 5107201, "invalid argument to $limit stage: Expected a number in: $limit: \"x\"";
            doc! {"$limit": 1.5} => 5107201, "invalid argument to $limit stage: Expected an integer: $limit: 1.5";
            doc! {"$skip": -1.0} => 5107200, "invalid argument to $skip stage: Expected a non-negative number in: $skip: -1.0";
            doc! {"$skip": f64::NAN} => 5107200, "invalid argument to $skip stage: Expected an integer, but found NaN in: $skip: nan.0";
            doc! {"$project": 1} => 15969, "$project specification must be an object";
            doc! {"$project": {}} => 51272, "Invalid $project :: caused by :: projection specification must have at least one field";
            doc! {"$project": {"foo": true, "bar": false}} => 31254, "Invalid $project :: caused by :: Cannot do exclusion on field bar in inclusion projection";
            doc! {"$addFields": "x"} => 40272, "$addFields specification stage must be an object, got string";
            doc! {"$set": "x"} => 40272, "$set specification stage must be an object, got string";
            doc! {"$set": {"$a": 1}} => 16410, "Invalid $set :: caused by :: FieldPath field names may not start with '$'. Consider using $getField or $setField.";
            doc! {"$unset": 1} => 31002, "$unset specification must be a string or an array";
            doc! {"$unset": []} => 31119, "$unset specification must be a string or an array with at least one field";
            doc! {"$unset": [1]} => 31120, "$unset specification must be a string or an array containing only string values";
            doc! {"$count": 1} => 40156, "the count field must be a non-empty string";
            doc! {"$count": ""} => 40157, "the count field must be a non-empty string";
            doc! {"$count": "$x"} => 40158, "the count field cannot be a $-prefixed path";
            doc! {"$count": "a.b"} => 40160, "the count field cannot contain '.'";
            doc! {"$unwind": 1} => 15981, "expected either a string or an object as specification for $unwind stage, got int";
            doc! {"$unwind": "a"} => 28818, "path option to $unwind stage should be prefixed with a '$': a";
            doc! {"$unwind": {}} => 28812, "no path specified to $unwind stage";
            doc! {"$unwind": {"path": 1}} => 28808, "expected a string as the path for $unwind stage, got int";
            doc! {"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": 1}} => 28809, "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got int";
            doc! {"$unwind": {"path": "$a", "x": 1}} => 28811, "unrecognized option to $unwind stage: x";
            doc! {"$group": 1} => 15947, "a group's fields must be specified in an object";
        }
    }

    #[test]
    fn arbitrary_stages_never_panic() {
        let args = [
            Bson::Int32(0),
            Bson::Double(f64::INFINITY),
            Bson::String("$a.b".into()),
            Bson::String("$$ROOT".into()),
            Bson::Array(vec![]),
            Bson::Array(vec!["$a".into()]),
            Bson::Document(doc! {}),
            Bson::Document(doc! {"_id": "$a", "s": {"$sum": "$a.b"}}),
            Bson::Document(doc! {"a.b": 0, "a": {"c": "$a"}}),
            Bson::Document(doc! {"path": "$a", "includeArrayIndex": "a.b"}),
            Bson::Document(doc! {"a": {"$slice": [-5, 2]}, "b": {"$gt": ["$a", 1]}}),
            Bson::Null,
        ];
        let names = [
            "$match",
            "$sort",
            "$limit",
            "$skip",
            "$project",
            "$addFields",
            "$set",
        ];
        let more = ["$unset", "$count", "$group", "$unwind", "$bogus"];
        let input = vec![
            doc! {"a": [{"b": [1, {"c": 2}]}, 3, []], "_id": 1},
            doc! {"a": {"b": null}},
            doc! {},
        ];
        for name in names.iter().chain(&more) {
            for arg in &args {
                let _ = run_pipeline(input.clone(), &[doc! {*name: arg.clone()}]);
                let _ = crate::query::project(&input[0], &doc! {"x": arg.clone()});
            }
        }
    }
}

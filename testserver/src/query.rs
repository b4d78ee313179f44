//! Sorting and projecting query results as MongoDB 7.0 does: `find`'s
//! `sort` and `projection`, and the projection engine behind the
//! aggregation stages `$project`, `$addFields` and `$set`.
//!
//! Sorting compares one key per document and path: for arrays the smallest
//! element when ascending, the largest when descending; missing sorts as
//! null and an empty array just below it (`SortKeyGenerator` and the sort
//! order documented for arrays). Projections are in `projection`.

use std::cmp::Ordering;

use bson::{Bson, Document};

mod projection;

use crate::compare::{cmp_bson, is_number, render, to_f64};
use crate::error::{CmdResult, CommandError};
pub(crate) use projection::{Kind, Projection};

/// Stable multi-key sort. `sort` values must be 1 or -1 (any numeric type;
/// fractions truncate as MongoDB's `safeNumberLong` does).
pub fn sort_documents(docs: &mut [Document], sort: &Document) -> CmdResult<()> {
    let keys = parse_sort(sort)?;
    if keys.is_empty() {
        return Ok(());
    }
    let mut decorated: Vec<(Vec<Bson>, Document)> = docs
        .iter_mut()
        .map(|d| {
            let key = keys
                .iter()
                .map(|(path, asc)| sort_key(d, path, *asc))
                .collect();
            (key, std::mem::take(d))
        })
        .collect();
    decorated.sort_by(|(a, _), (b, _)| {
        a.iter()
            .zip(b)
            .zip(&keys)
            .map(|((x, y), (_, asc))| if *asc { cmp_bson(x, y) } else { cmp_bson(y, x) })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    for (slot, (_, d)) in docs.iter_mut().zip(decorated) {
        *slot = d;
    }
    Ok(())
}

/// The `(path, ascending)` pairs of a sort spec, validated as MongoDB's
/// `SortPattern` does.
pub(crate) fn parse_sort(sort: &Document) -> CmdResult<Vec<(Vec<String>, bool)>> {
    let mut keys = Vec::new();
    for (field, value) in sort {
        if field == "$natural" {
            return Err(CommandError::bad_value(
                "$natural must be handled before sorting",
            ));
        }
        if let Bson::Document(meta) = value {
            return Err(match meta.keys().next().map(String::as_str) {
                Some("$meta") => {
                    CommandError::new(37, "$meta sort is not supported by mongo-testserver")
                }
                _ => CommandError::new(
                    17312,
                    "$meta is the only expression supported by $sort right now",
                ),
            });
        }
        if !is_number(value) {
            let shown = format!("{field}: {}", render(value));
            return Err(CommandError::new(
                15974,
                format!("Illegal key in $sort specification: {shown}"),
            ));
        }
        let direction = match value {
            Bson::Int32(i) => i64::from(*i),
            Bson::Int64(i) => *i,
            // NaN becomes 0 and fractions truncate, as safeNumberLong does.
            _ => to_f64(value).map_or(0, |f| f as i64),
        };
        if direction != 1 && direction != -1 {
            return Err(CommandError::new(
                15975,
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
            ));
        }
        keys.push((field_path(field)?, direction == 1));
    }
    Ok(keys)
}

/// The value a document sorts by for one path: every value the path reaches
/// (arrays expanded, as index keys are), then the least (ascending) or the
/// greatest (descending).
fn sort_key(doc: &Document, path: &[String], ascending: bool) -> Bson {
    let mut values = Vec::new();
    if let Some((first, rest)) = path.split_first() {
        key_values(doc.get(first), rest, &mut values);
    }
    let pick = |a: &&&Bson, b: &&&Bson| cmp_bson(a, b);
    let best = if ascending {
        values.iter().min_by(pick)
    } else {
        values.iter().max_by(pick)
    };
    best.map_or(Bson::Null, |b| (**b).clone())
}

fn key_values<'a>(value: Option<&'a Bson>, rest: &[String], out: &mut Vec<&'a Bson>) {
    static NULL: Bson = Bson::Null;
    // An empty array keys as undefined, just below null.
    static UNDEFINED: Bson = Bson::Undefined;
    match (value, rest.first()) {
        (Some(Bson::Array(items)), _) if items.is_empty() => out.push(&UNDEFINED),
        (Some(Bson::Array(items)), None) => out.extend(items),
        (Some(v), None) => out.push(v),
        (Some(Bson::Document(d)), Some(next)) => key_values(d.get(next), &rest[1..], out),
        (Some(Bson::Array(items)), Some(next)) => {
            match next.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(item) => key_values(Some(item), &rest[1..], out),
                None => {
                    for item in items {
                        match item {
                            Bson::Document(_) => key_values(Some(item), rest, out),
                            _ => out.push(&NULL),
                        }
                    }
                }
            }
        }
        _ => out.push(&NULL),
    }
}

/// MongoDB's `FieldPath` validation, returning the path's components.
pub(crate) fn field_path(path: &str) -> CmdResult<Vec<String>> {
    if path.is_empty() {
        return Err(CommandError::new(
            40352,
            "FieldPath cannot be constructed with empty string",
        ));
    }
    if path.ends_with('.') {
        return Err(CommandError::new(
            40353,
            "FieldPath must not end with a '.'.",
        ));
    }
    path.split('.')
        .map(|part| {
            if part.is_empty() {
                Err(CommandError::new(15998, "FieldPath field names may not be empty strings."))
            } else if part.starts_with('$') {
                Err(CommandError::new(
                    16410,
                    "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
                ))
            } else if part.contains('\0') {
                Err(CommandError::new(16411, "FieldPath field names may not contain '\0'."))
            } else {
                Ok(part.to_string())
            }
        })
        .collect()
}

/// Applies a `find` projection; an empty projection returns the document.
pub fn project(doc: &Document, projection: &Document) -> CmdResult<Document> {
    if projection.is_empty() {
        return Ok(doc.clone());
    }
    Ok(Projection::parse(projection, Kind::Find)?.apply(doc))
}

/// Checks a `find` projection without applying it.
pub fn validate_projection(projection: &Document) -> CmdResult<()> {
    if !projection.is_empty() {
        Projection::parse(projection, Kind::Find)?;
    }
    Ok(())
}

/// Wraps a stage's parse error the way `$project` and friends report it.
pub(crate) fn stage_error(stage: &str, e: CommandError) -> CommandError {
    CommandError::new(
        e.code,
        format!("Invalid {stage} :: caused by :: {}", e.errmsg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Decimal128};

    /// The `_id`s of `docs` after sorting by `spec`.
    fn order(docs: &[Document], spec: Document) -> Vec<i32> {
        let mut docs = docs.to_vec();
        sort_documents(&mut docs, &spec).unwrap();
        docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
    }

    #[test]
    fn sorts_mixed_types_in_canonical_order() {
        let dec = Bson::Decimal128("2.5".parse::<Decimal128>().unwrap());
        let docs = [
            doc! {"_id": 0, "v": "str"},
            doc! {"_id": 1, "v": 3i64},
            doc! {"_id": 2, "v": null},
            doc! {"_id": 3},
            doc! {"_id": 4, "v": {"x": 1}},
            doc! {"_id": 5, "v": true},
            doc! {"_id": 6, "v": dec},
            doc! {"_id": 7, "v": Bson::MinKey},
            doc! {"_id": 8, "v": 1.5},
            doc! {"_id": 9, "v": bson::DateTime::from_millis(0)},
        ];
        // null and missing tie, so they keep their input order (stable).
        assert_eq!(order(&docs, doc! {"v": 1}), [7, 2, 3, 8, 6, 1, 0, 4, 5, 9]);
        assert_eq!(order(&docs, doc! {"v": -1}), [9, 5, 4, 0, 1, 6, 8, 2, 3, 7]);
    }

    #[test]
    fn arrays_sort_by_their_smallest_or_largest_element() {
        // The example of MongoDB's DOCS-2760: [] < missing < [0, 1] < 1 == [1].
        let docs = [
            doc! {"_id": 0},
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": []},
            doc! {"_id": 3, "a": [1]},
            doc! {"_id": 4, "a": [0, 1]},
        ];
        assert_eq!(order(&docs, doc! {"a": 1}), [2, 0, 4, 1, 3]);
        assert_eq!(order(&docs, doc! {"a": -1}), [1, 3, 4, 0, 2]);
        let nested = [
            doc! {"_id": 0, "a": [{"b": 5}, {"b": 1}]},
            doc! {"_id": 1, "a": [{"b": 3}]},
            doc! {"_id": 2, "a": {"b": [4, 0]}},
        ];
        assert_eq!(order(&nested, doc! {"a.b": 1}), [2, 0, 1]);
        assert_eq!(order(&nested, doc! {"a.b": -1}), [0, 2, 1]);
        assert_eq!(order(&nested, doc! {"a.0.b": 1}), [2, 1, 0]);
    }

    #[test]
    fn multi_key_stable_sort_with_numeric_directions() {
        let docs = [
            doc! {"_id": 0, "a": 1, "b": 1},
            doc! {"_id": 1, "a": 2, "b": 1},
            doc! {"_id": 2, "a": 1, "b": 2},
            doc! {"_id": 3, "a": 2, "b": 1},
        ];
        assert_eq!(order(&docs, doc! {"b": -1, "a": 1}), [2, 0, 1, 3]);
        assert_eq!(order(&docs, doc! {"b": 1.0, "a": -1i64}), [1, 3, 0, 2]);
        assert_eq!(order(&docs, doc! {"a": 1.9}), [0, 2, 1, 3]); // truncates to 1
        assert_eq!(order(&docs, doc! {}), [0, 1, 2, 3]);
    }

    #[test]
    fn sort_spec_errors() {
        let cases = [
            (
                doc! {"a": 2},
                15975,
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
            ),
            (
                doc! {"a": 0},
                15975,
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
            ),
            (
                doc! {"a": f64::NAN},
                15975,
                "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
            ),
            (
                doc! {"asc": "123"},
                15974,
                "Illegal key in $sort specification: asc: \"123\"",
            ),
            (
                doc! {"a": true},
                15974,
                "Illegal key in $sort specification: a: true",
            ),
            (
                doc! {"a": {"x": 1}},
                17312,
                "$meta is the only expression supported by $sort right now",
            ),
            (
                doc! {"a..b": 1},
                15998,
                "FieldPath field names may not be empty strings.",
            ),
            (
                doc! {"$natural": 1},
                2,
                "$natural must be handled before sorting",
            ),
        ];
        for (spec, code, msg) in cases {
            let e = sort_documents(&mut [doc! {}], &spec).unwrap_err();
            assert_eq!((e.code, e.errmsg.as_str()), (code, msg), "{spec}");
        }
    }

    #[test]
    fn find_projection_entry_points() {
        let d = doc! {"_id": 1, "a": 1, "b": 2};
        assert_eq!(project(&d, &doc! {}).unwrap(), d);
        assert_eq!(
            project(&d, &doc! {"b": 1}).unwrap(),
            doc! {"_id": 1, "b": 2}
        );
        assert!(validate_projection(&doc! {"a": 1, "b": 0}).is_err());
        assert!(validate_projection(&doc! {}).is_ok());
        let e = field_path("a.").unwrap_err();
        assert_eq!(
            (e.code, e.errmsg.as_str()),
            (40353, "FieldPath must not end with a '.'.")
        );
        assert_eq!(field_path("").unwrap_err().code, 40352);
        assert_eq!(field_path("a.$b").unwrap_err().code, 16410);
    }
}

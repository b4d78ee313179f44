//! Behaviour tests for the public update API. Expected oplog entries and
//! error texts are taken from the server's own unit tests
//! (`src/mongo/db/update/*_node_test.cpp`) and jstests where they exist; the
//! round-trip property at the end covers the rest.

use bson::{doc, Bson, Document};

use super::value::docs_binary_equal;
use super::*;

fn run(d: Document, u: Document) -> UpdateOutcome {
    match apply_update(&d, &u, false) {
        Ok(r) => r,
        Err(e) => panic!("update {u:?} on {d:?} failed: {e}"),
    }
}

/// Asserts the new document (field order included) and the `diff`.
fn check(d: Document, u: Document, want_doc: Document, want_diff: Document) {
    let r = run(d.clone(), u.clone());
    assert!(r.changed, "{u:?} should change {d:?}");
    assert!(
        docs_binary_equal(&r.doc, &want_doc),
        "doc for {u:?}: got {:?}, want {want_doc:?}",
        r.doc
    );
    assert_eq!(
        r.oplog_o,
        doc! {"$v": 2, "diff": want_diff.clone()},
        "diff for {u:?}"
    );
    let replayed = apply_oplog_update(&d, &r.oplog_o).unwrap();
    assert!(
        docs_binary_equal(&replayed, &want_doc),
        "replay of {u:?}: {replayed:?}"
    );
}

fn noop(d: Document, u: Document) {
    let r = run(d.clone(), u.clone());
    assert!(!r.changed, "{u:?} should not change {d:?}, got {:?}", r.doc);
    assert!(docs_binary_equal(&r.doc, &d));
}

fn fails(d: Document, u: Document) -> (i32, String, String) {
    match apply_update(&d, &u, false) {
        Ok(r) => panic!("{u:?} on {d:?} should fail, got {:?}", r.doc),
        Err(e) => (e.code, e.code_name, e.errmsg),
    }
}

#[test]
fn set_logs_updates_inserts_and_array_entries() {
    check(
        doc! {"a": 1},
        doc! {"$set": {"a": 2}},
        doc! {"a": 2},
        doc! {"u": {"a": 2}},
    );
    // set_node_test ApplyCreatePath-style: parents are created as documents.
    check(
        doc! {"c": 5},
        doc! {"$set": {"a.b": 6}},
        doc! {"c": 5, "a": {"b": 6}},
        doc! {"i": {"a": {"b": 6}}},
    );
    check(
        doc! {"a": {}},
        doc! {"$set": {"a.b.c": 1, "a.d": 2}},
        doc! {"a": {"b": {"c": 1}, "d": 2}},
        doc! {"sa": {"i": {"b": {"c": 1}, "d": 2}}},
    );
    check(
        doc! {"a": [0, 1, 2]},
        doc! {"$set": {"a.1": 6}},
        doc! {"a": [0, 6, 2]},
        doc! {"sa": {"a": true, "u1": 6}},
    );
    check(
        doc! {"a": [{"b": 1}]},
        doc! {"$set": {"a.0.b": 5}},
        doc! {"a": [{"b": 5}]},
        doc! {"sa": {"a": true, "s0": {"u": {"b": 5}}}},
    );
    // Past the end: nulls pad the array but only the new entry is logged.
    check(
        doc! {"a": [1]},
        doc! {"$set": {"a.3": 5}},
        doc! {"a": [1, null, null, 5]},
        doc! {"sa": {"a": true, "u3": 5}},
    );
    check(
        doc! {"a": [1]},
        doc! {"$set": {"a.2.b": 1}},
        doc! {"a": [1, null, {"b": 1}]},
        doc! {"sa": {"a": true, "u2": {"b": 1}}},
    );
    // A numeric name on an object is a field name, not an index.
    check(
        doc! {"a": {"0": 1}},
        doc! {"$set": {"a.0": 2}},
        doc! {"a": {"0": 2}},
        doc! {"sa": {"u": {"0": 2}}},
    );
}

#[test]
fn fields_apply_in_5_0_order() {
    // Lexicographic for names, numeric for numbers; new fields append in that order.
    check(
        doc! {"_id": 1},
        doc! {"$set": {"b": 1, "a": 1}, "$inc": {"A": 1}},
        doc! {"_id": 1, "A": 1, "a": 1, "b": 1},
        doc! {"i": {"A": 1, "a": 1, "b": 1}},
    );
    check(
        doc! {"a": {}},
        doc! {"$set": {"a.10": 1, "a.2": 1}},
        doc! {"a": {"2": 1, "10": 1}},
        doc! {"sa": {"i": {"2": 1, "10": 1}}},
    );
    check(
        doc! {"a": []},
        doc! {"$set": {"a.10": 1, "a.2": 2}},
        doc! {"a": [null, null, 2, null, null, null, null, null, null, null, 1]},
        doc! {"sa": {"a": true, "u2": 2, "u10": 1}},
    );
    // Sub-diffs appear in application order: here the destination 'a' first.
    check(
        doc! {"a": {"b": {"c": 1, "d": 2}}, "b": 3, "c": {"d": 4}},
        doc! {"$rename": {"c.d": "a.b.c"}},
        doc! {"a": {"b": {"c": 4, "d": 2}}, "b": 3, "c": {}},
        doc! {"sa": {"sb": {"u": {"c": 4}}}, "sc": {"d": {"d": false}}},
    );
}

#[test]
fn unset() {
    check(
        doc! {"a": {"b": 1}},
        doc! {"$unset": {"a.b": 1}},
        doc! {"a": {}},
        doc! {"sa": {"d": {"b": false}}},
    );
    check(
        doc! {"a": [1], "b": 1},
        doc! {"$unset": {"a.0": 1}},
        doc! {"a": [null], "b": 1},
        doc! {"sa": {"a": true, "u0": null}},
    );
    check(
        doc! {"a": 1, "b": 2},
        doc! {"$unset": {"a": ""}},
        doc! {"b": 2},
        doc! {"d": {"a": false}},
    );
    noop(doc! {"a": 1}, doc! {"$unset": {"b": 1, "a.x": 1, "c.d": 1}});
}

#[test]
fn arithmetic() {
    check(
        doc! {"a": [0, 1, 2]},
        doc! {"$inc": {"a.1": 6}},
        doc! {"a": [0, 7, 2]},
        doc! {"sa": {"a": true, "u1": 7}},
    );
    check(
        doc! {"a": i32::MAX},
        doc! {"$inc": {"a": 1}},
        doc! {"a": 2_147_483_648_i64},
        doc! {"u": {"a": 2_147_483_648_i64}},
    );
    check(
        doc! {"a": 1},
        doc! {"$inc": {"a": 0.5}},
        doc! {"a": 1.5},
        doc! {"u": {"a": 1.5}},
    );
    check(
        doc! {"a": 2_i64},
        doc! {"$mul": {"a": 3}},
        doc! {"a": 6_i64},
        doc! {"u": {"a": 6_i64}},
    );
    check(
        doc! {},
        doc! {"$inc": {"a": 5_i64}},
        doc! {"a": 5_i64},
        doc! {"i": {"a": 5_i64}},
    );
    check(
        doc! {},
        doc! {"$mul": {"a": 2.5}},
        doc! {"a": 0.0},
        doc! {"i": {"a": 0.0}},
    );
    // 1 + 0 and 1 * 1 keep the type: nothing to log. 1 + 0.0 changes the type.
    noop(
        doc! {"a": 1, "b": 1},
        doc! {"$inc": {"a": 0}, "$mul": {"b": 1}},
    );
    check(
        doc! {"a": 1},
        doc! {"$inc": {"a": 0.0}},
        doc! {"a": 1.0},
        doc! {"u": {"a": 1.0}},
    );
    let (code, name, msg) = fails(doc! {"_id": 1, "a": "x"}, doc! {"$inc": {"a": 1}});
    assert_eq!((code, name.as_str()), (14, "TypeMismatch"));
    assert_eq!(
        msg,
        "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string"
    );
    let (code, _, msg) = fails(doc! {"_id": 1, "a": i64::MAX}, doc! {"$inc": {"a": 1}});
    assert_eq!(code, 2);
    assert_eq!(
        msg,
        "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}"
    );
    let (code, _, msg) = fails(doc! {"_id": 1}, doc! {"$inc": {"a": "1"}});
    assert_eq!(
        (code, msg.as_str()),
        (14, "Cannot increment with non-numeric argument: {a: \"1\"}")
    );
}

#[test]
fn min_max_current_date() {
    check(
        doc! {"a": 5},
        doc! {"$min": {"a": 3}},
        doc! {"a": 3},
        doc! {"u": {"a": 3}},
    );
    noop(
        doc! {"a": 5, "b": 5},
        doc! {"$min": {"a": 5.0}, "$max": {"b": 1}},
    );
    check(
        doc! {"a": 5},
        doc! {"$max": {"a": "x"}},
        doc! {"a": "x"},
        doc! {"u": {"a": "x"}},
    );
    check(
        doc! {},
        doc! {"$max": {"a.b": 1}},
        doc! {"a": {"b": 1}},
        doc! {"i": {"a": {"b": 1}}},
    );
    let r = run(
        doc! {"a": 1},
        doc! {"$currentDate": {"a": true, "b": {"$type": "timestamp"}}},
    );
    assert!(matches!(r.doc.get("a"), Some(Bson::DateTime(_))));
    assert!(matches!(r.doc.get("b"), Some(Bson::Timestamp(_))));
    assert_eq!(
        apply_oplog_update(&doc! {"a": 1}, &r.oplog_o).unwrap(),
        r.doc
    );
}

#[test]
fn push_logging_follows_push_node() {
    check(
        doc! {"a": [0]},
        doc! {"$push": {"a": 1}},
        doc! {"a": [0, 1]},
        doc! {"sa": {"a": true, "u1": 1}},
    );
    check(
        doc! {},
        doc! {"$push": {"a": 1}},
        doc! {"a": [1]},
        doc! {"i": {"a": [1]}},
    );
    // Pushing onto an empty array is a normal update, not an append.
    check(
        doc! {"a": []},
        doc! {"$push": {"a": 1}},
        doc! {"a": [1]},
        doc! {"u": {"a": [1]}},
    );
    check(
        doc! {"a": [0]},
        doc! {"$push": {"a": {"$each": [1, 2]}}},
        doc! {"a": [0, 1, 2]},
        doc! {"sa": {"a": true, "u1": 1, "u2": 2}},
    );
    check(
        doc! {"a": [1, 2]},
        doc! {"$push": {"a": {"$each": [0], "$position": 0}}},
        doc! {"a": [0, 1, 2]},
        doc! {"u": {"a": [0, 1, 2]}},
    );
    check(
        doc! {"a": [1, 2, 3]},
        doc! {"$push": {"a": {"$each": [9], "$position": -1}}},
        doc! {"a": [1, 2, 9, 3]},
        doc! {"u": {"a": [1, 2, 9, 3]}},
    );
    check(
        doc! {"a": [3, 1]},
        doc! {"$push": {"a": {"$each": [2], "$sort": 1, "$slice": -2}}},
        doc! {"a": [2, 3]},
        doc! {"u": {"a": [2, 3]}},
    );
    check(
        doc! {"a": [{"x": 2}, {"x": 1}]},
        doc! {"$push": {"a": {"$each": [{"x": 3}], "$sort": {"x": -1}}}},
        doc! {"a": [{"x": 3}, {"x": 2}, {"x": 1}]},
        doc! {"u": {"a": [{"x": 3}, {"x": 2}, {"x": 1}]}},
    );
    noop(doc! {"a": [1]}, doc! {"$push": {"a": {"$each": []}}});
    let (code, _, msg) = fails(doc! {"_id": 1, "a": 1}, doc! {"$push": {"a": 2}});
    assert_eq!(code, 2);
    assert_eq!(
        msg,
        "The field 'a' must be an array but is of type int in document {_id: 1}"
    );
}

#[test]
fn add_to_set_pop_pull() {
    check(
        doc! {"a": [0]},
        doc! {"$addToSet": {"a": 1}},
        doc! {"a": [0, 1]},
        doc! {"u": {"a": [0, 1]}},
    );
    check(
        doc! {},
        doc! {"$addToSet": {"a": {"$each": [0, 1, 0]}}},
        doc! {"a": [0, 1]},
        doc! {"i": {"a": [0, 1]}},
    );
    noop(
        doc! {"a": [1, 2]},
        doc! {"$addToSet": {"a": {"$each": [1.0, 2]}}},
    );
    check(
        doc! {"a": [1, 2, 3]},
        doc! {"$pop": {"a": -1}},
        doc! {"a": [2, 3]},
        doc! {"u": {"a": [2, 3]}},
    );
    noop(doc! {"a": []}, doc! {"$pop": {"a": 1}, "$pull": {"b": 1}});
    check(
        doc! {"a": [1, 2, 1, 3]},
        doc! {"$pull": {"a": 1}},
        doc! {"a": [2, 3]},
        doc! {"u": {"a": [2, 3]}},
    );
    check(
        doc! {"a": [1, 5, 7, "x"]},
        doc! {"$pull": {"a": {"$gte": 5}}},
        doc! {"a": [1, "x"]},
        doc! {"u": {"a": [1, "x"]}},
    );
    check(
        doc! {"a": [{"k": 1, "v": 2}, {"k": 2}, 7]},
        doc! {"$pull": {"a": {"k": 1}}},
        doc! {"a": [{"k": 2}, 7]},
        doc! {"u": {"a": [{"k": 2}, 7]}},
    );
    check(
        doc! {"a": [1, 2, 3]},
        doc! {"$pullAll": {"a": [1, 3]}},
        doc! {"a": [2]},
        doc! {"u": {"a": [2]}},
    );
    let (code, _, msg) = fails(doc! {"a": 1}, doc! {"$pop": {"a": 1}});
    assert_eq!(
        (code, msg.as_str()),
        (14, "Path 'a' contains an element of non-array type 'int'")
    );
    let (code, _, msg) = fails(doc! {"a": 1}, doc! {"$addToSet": {"a": 1}});
    assert_eq!(code, 2);
    assert_eq!(
        msg,
        "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int"
    );
    let (code, _, msg) = fails(doc! {"a": {"b": 5}}, doc! {"$pull": {"a.b.c": 1}});
    assert_eq!(code, 28);
    assert_eq!(
        msg,
        "Cannot use the part (c) of (a.b.c) to traverse the element ({b: 5})"
    );
}

#[test]
fn rename_follows_rename_node() {
    check(
        doc! {"a": 2},
        doc! {"$rename": {"a": "b"}},
        doc! {"b": 2},
        doc! {"d": {"a": false}, "i": {"b": 2}},
    );
    check(
        doc! {"a": 2, "b": 1},
        doc! {"$rename": {"a": "b"}},
        doc! {"b": 2},
        doc! {"d": {"a": false}, "u": {"b": 2}},
    );
    // The destination is written even when it already holds an equal value.
    check(
        doc! {"a": 2, "b": 2},
        doc! {"$rename": {"a": "b"}},
        doc! {"b": 2},
        doc! {"d": {"a": false}, "u": {"b": 2}},
    );
    check(
        doc! {"a": 1, "b": 1_i64},
        doc! {"$rename": {"a": "b"}},
        doc! {"b": 1},
        doc! {"d": {"a": false}, "u": {"b": 1}},
    );
    check(
        doc! {"a": {"c": {"d": 6}}, "b": 1},
        doc! {"$rename": {"a.c": "b"}},
        doc! {"a": {}, "b": {"d": 6}},
        doc! {"u": {"b": {"d": 6}}, "sa": {"d": {"c": false}}},
    );
    check(
        doc! {"a": 2, "b": 1, "c": {}},
        doc! {"$rename": {"a": "c.r.d"}},
        doc! {"b": 1, "c": {"r": {"d": 2}}},
        doc! {"d": {"a": false}, "sc": {"i": {"r": {"d": 2}}}},
    );
    check(
        doc! {"$a": 2},
        doc! {"$rename": {"$a": "a"}},
        doc! {"a": 2},
        doc! {"d": {"$a": false}, "i": {"a": 2}},
    );
    noop(doc! {"b": 2}, doc! {"$rename": {"a": "b"}});
    let (code, _, msg) = fails(
        doc! {"_id": "test_object", "a": [1, 2], "b": 2},
        doc! {"$rename": {"b": "a.2"}},
    );
    assert_eq!(code, 2);
    assert_eq!(
        msg,
        "The destination field cannot be an array element, 'a.2' in doc with _id: \"test_object\" has an array field called 'a'"
    );
    let (_, _, msg) = fails(doc! {"a": [1, 2], "b": 2}, doc! {"$rename": {"b": "a.1"}});
    assert_eq!(
        msg,
        "The destination field cannot be an array element, 'a.1' in doc with no id has an array field called 'a'"
    );
    let (_, _, msg) = fails(
        doc! {"_id": "test_object", "a": [{"a": 1}, {"b": 2}]},
        doc! {"$rename": {"a.0.a": "b"}},
    );
    assert_eq!(
        msg,
        "The source field cannot be an array element, 'a.0.a' in doc with _id: \"test_object\" has an array field called 'a'"
    );
    let (code, name, msg) = fails(
        doc! {"a": [{"a": 1}, {"b": 2}]},
        doc! {"$rename": {"a.a": "b"}},
    );
    assert_eq!((code, name.as_str()), (28, "PathNotViable"));
    assert_eq!(
        msg,
        "cannot use the part (a of a.a) to traverse the element ({a: [ { a: 1 }, { b: 2 } ]})"
    );
}

#[test]
fn immutable_id_and_path_errors() {
    let (code, _, msg) = fails(doc! {"_id": 1}, doc! {"$set": {"_id": 2}});
    assert_eq!(code, 66);
    assert_eq!(
        msg,
        "Performing an update on the path '_id' would modify the immutable field '_id'"
    );
    noop(doc! {"_id": 1}, doc! {"$set": {"_id": 1}});
    let (code, _, _) = fails(doc! {"_id": {"a": 1}}, doc! {"$set": {"_id.b": 1}});
    assert_eq!(code, 66);
    let (code, _, _) = fails(doc! {"_id": 1, "a": 1}, doc! {"$rename": {"_id": "b"}});
    assert_eq!(code, 66);
    let (code, name, msg) = fails(doc! {"a": 5}, doc! {"$set": {"a.b": 5}});
    assert_eq!((code, name.as_str()), (28, "PathNotViable"));
    assert_eq!(msg, "Cannot create field 'b' in element {a: 5}");
    let (_, _, msg) = fails(
        doc! {"eatenBy": [{"name": "alice", "amount": 2.0}]},
        doc! {"$set": {"eatenBy.amount": 1}},
    );
    assert_eq!(
        msg,
        "Cannot create field 'amount' in element {eatenBy: [ { name: \"alice\", amount: 2.0 } ]}"
    );
    let (code, _, msg) = fails(doc! {}, doc! {"$set": {"a": 1}, "$inc": {"a.b": 1}});
    assert_eq!(
        (code, msg.as_str()),
        (40, "Updating the path 'a.b' would create a conflict at 'a'")
    );
    let (code, _, msg) = fails(doc! {}, doc! {"$foo": {"a": 1}});
    assert_eq!(code, 9);
    assert_eq!(
        msg,
        "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array"
    );
    let (code, _, _) = fails(doc! {}, doc! {"$set": {"$a": 1}});
    assert_eq!(code, 52);
    let (code, _, _) = fails(doc! {"a": []}, doc! {"$set": {"a.2000000": 1}});
    assert_eq!(code, 34);
}

#[test]
fn empty_operator_is_a_noop_in_7_0() {
    noop(doc! {"_id": 1, "a": 1}, doc! {"$set": {}});
    noop(doc! {"_id": 1, "a": 1}, doc! {"$set": {}, "$unset": {}});
}

#[test]
fn set_on_insert_only_applies_to_inserts() {
    let u = doc! {"$setOnInsert": {"b": 1}, "$set": {"c": 1}};
    let r = apply_update(&doc! {"_id": 1}, &u, false).unwrap();
    assert_eq!(r.doc, doc! {"_id": 1, "c": 1});
    let r = apply_update(
        &doc! {"a": 1},
        &doc! {"$setOnInsert": {"_id": 7, "b": 1}},
        true,
    )
    .unwrap();
    let keys: Vec<&str> = r.doc.keys().map(String::as_str).collect();
    assert_eq!(keys, ["_id", "a", "b"]);
    // The set-on-insert path still takes part in conflict detection.
    assert_eq!(
        fails(doc! {}, doc! {"$setOnInsert": {"a": 1}, "$set": {"a.b": 1}}).0,
        40
    );
}

#[test]
fn replacement() {
    let r = run(doc! {"_id": 1, "a": 1}, doc! {"b": 2});
    assert!(r.changed);
    assert_eq!(r.doc, doc! {"_id": 1, "b": 2});
    assert_eq!(r.oplog_o, doc! {"_id": 1, "b": 2});
    assert_eq!(r.oplog_o2, Some(doc! {"_id": 1}));
    assert_eq!(
        apply_oplog_update(&doc! {"_id": 1, "a": 1}, &r.oplog_o).unwrap(),
        r.doc
    );
    // Only a byte-identical replacement is a no-op.
    assert!(!run(doc! {"_id": 1, "a": 1}, doc! {"_id": 1, "a": 1}).changed);
    assert!(run(doc! {"_id": 1, "a": 1}, doc! {"_id": 1, "a": 1.0}).changed);
    let r = run(doc! {"_id": 1, "a": 1}, doc! {"a": 2, "_id": 1.0});
    let keys: Vec<&str> = r.doc.keys().map(String::as_str).collect();
    assert_eq!(keys, ["_id", "a"]);
    let (code, _, msg) = fails(doc! {"_id": 1}, doc! {"_id": 2, "a": 1});
    assert_eq!(code, 66);
    assert_eq!(msg, "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2");
    let (code, _, msg) = fails(doc! {"_id": 1}, doc! {"a": 1, "$set": {"b": 1}});
    assert_eq!(code, 52);
    assert_eq!(
        msg,
        "The dollar ($) prefixed field '$set' in '$set' is not allowed in the context of an update's \
         replacement document. Consider using an aggregation pipeline with $replaceWith."
    );
}

#[test]
fn operator_detection() {
    assert!(is_operator_update(&doc! {"$set": {"a": 1}}).unwrap());
    assert!(!is_operator_update(&doc! {"a": 1}).unwrap());
    assert!(!is_operator_update(&doc! {}).unwrap());
    let e = is_operator_update(&doc! {"$set": {"a": 1}, "b": 1}).unwrap_err();
    assert_eq!(e.code, 9);
    assert_eq!(
        e.errmsg,
        "Unknown modifier: b. Expected a valid update modifier or pipeline-style update specified as an array"
    );
    assert_eq!(
        is_operator_update(&doc! {"b": 1, "$set": {"a": 1}})
            .unwrap_err()
            .code,
        52
    );
}

#[test]
fn replays_legacy_and_delta_entries() {
    // jstests/core/apply_ops1.js: no $v means $v: 1, fields set in lexicographic order.
    let d = doc! {"_id": 10};
    assert_eq!(
        apply_oplog_update(&d, &doc! {"$set": {"z": 1, "a": 2}}).unwrap(),
        doc! {"_id": 10, "a": 2, "z": 1}
    );
    assert_eq!(
        apply_oplog_update(
            &d,
            &doc! {"$v": 1, "$set": {"x.y": 1}, "$unset": {"q": true}}
        )
        .unwrap(),
        doc! {"_id": 10, "x": {"y": 1}}
    );
    // 4.4 order for numeric names, and non-viable $set paths are skipped.
    assert_eq!(
        apply_oplog_update(
            &doc! {"a": {}, "b": 1},
            &doc! {"$set": {"a.10": 1, "a.2": 1, "b.c": 1, "d": 1}}
        )
        .unwrap(),
        doc! {"a": {"10": 1, "2": 1}, "b": 1, "d": 1}
    );
    assert_eq!(
        apply_oplog_update(&d, &doc! {"$inc": {"a": 1}})
            .unwrap_err()
            .code,
        9
    );
    // jstests/replsets/apply_ops_null_diff (type mismatch during replay).
    let d = doc! {"_id": 1, "a": null};
    assert_eq!(
        apply_oplog_update(&d, &doc! {"$v": 2, "diff": {"sa": {"a": true, "u0": 1}}}).unwrap(),
        d
    );
    assert_eq!(
        apply_oplog_update(
            &d,
            &doc! {"$v": 2, "diff": {"u": {"b": 1}, "sa": {"a": true, "u0": 1}}}
        )
        .unwrap(),
        doc! {"_id": 1, "a": null, "b": 1}
    );
    // Replacement entries carry _id; they replace the whole document.
    assert_eq!(
        apply_oplog_update(&doc! {"_id": 1, "a": 1}, &doc! {"_id": 1, "b": 1}).unwrap(),
        doc! {"_id": 1, "b": 1}
    );
    assert_eq!(
        apply_oplog_update(&d, &doc! {"$v": 3, "diff": {}})
            .unwrap_err()
            .code,
        6448500
    );
    assert_eq!(
        apply_oplog_update(&d, &doc! {"$v": 2, "diff": 1})
            .unwrap_err()
            .code,
        4772600
    );
}

#[test]
fn upsert_seed_extracts_equalities() {
    assert_eq!(
        upsert_seed(
            &doc! {"b": 1, "_id": 5, "a.y": 2, "a.x": {"$eq": 3}, "c": {"$gt": 1}, "r": {"$in": [4]}}
        ),
        doc! {"_id": 5, "a": {"x": 3, "y": 2}, "b": 1, "r": 4}
    );
    assert_eq!(
        upsert_seed(
            &doc! {"$and": [{"x": 1}, {"y": {"z": 1}}], "$or": [{"w": 2}], "$expr": {"$eq": [1, 1]}}
        ),
        doc! {"w": 2, "x": 1, "y": {"z": 1}}
    );
    // Conflicting predicates: the server fails the upsert; we keep the first.
    assert_eq!(upsert_seed(&doc! {"a": 1, "a.b": 2}), doc! {"a": 1});
    let seed = upsert_seed(&doc! {"_id": 1, "n": 2});
    let r = apply_update(
        &seed,
        &doc! {"$inc": {"n": 1}, "$setOnInsert": {"s": true}},
        true,
    )
    .unwrap();
    assert_eq!(r.doc, doc! {"_id": 1, "n": 3, "s": true});
}

// ---------------------------------------------------------------------------
// Round-trip property: for generated documents D and updates U,
// replaying apply_update(D, U).oplog_o on D reproduces apply_update(D, U).doc.

/// splitmix64: small, deterministic, good enough to drive a generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: [&str; 7] = ["a", "b", "c", "x", "y", "2", "10"];
const INDEXES: [&str; 3] = ["0", "1", "3"];

fn gen_scalar(r: &mut Rng) -> Bson {
    match r.below(7) {
        0 => Bson::Int32(r.below(5) as i32 - 1),
        1 => Bson::Int64(r.below(5) as i64),
        2 => Bson::Double((r.below(5) as f64) / 2.0),
        3 => Bson::String(r.pick(&["p", "q", ""]).to_string()),
        4 => Bson::Boolean(r.chance(50)),
        5 => Bson::Null,
        _ => Bson::Int32(i32::MAX),
    }
}

fn gen_value(r: &mut Rng, depth: u32) -> Bson {
    if depth == 0 || r.chance(55) {
        return gen_scalar(r);
    }
    if r.chance(50) {
        Bson::Document(gen_doc(r, depth - 1))
    } else {
        Bson::Array((0..r.below(4)).map(|_| gen_value(r, depth - 1)).collect())
    }
}

fn gen_doc(r: &mut Rng, depth: u32) -> Document {
    let mut d = Document::new();
    for _ in 0..r.below(4) {
        d.insert(*r.pick(&NAMES), gen_value(r, depth));
    }
    d
}

fn gen_path(r: &mut Rng) -> String {
    let len = 1 + r.below(3);
    let mut parts = vec![r.pick(&NAMES[..5]).to_string()];
    for _ in 1..len {
        let p = if r.chance(40) {
            r.pick(&INDEXES)
        } else {
            r.pick(&NAMES)
        };
        parts.push(p.to_string());
    }
    parts.join(".")
}

fn gen_update(r: &mut Rng) -> Document {
    let mut u = Document::new();
    for _ in 0..1 + r.below(4) {
        let path = gen_path(r);
        let (op, arg): (&str, Bson) = match r.below(14) {
            0 | 1 => ("$set", gen_value(r, 2)),
            2 => ("$unset", Bson::Int32(1)),
            3 => (
                "$inc",
                r.pick(&[
                    Bson::Int32(1),
                    Bson::Int64(2),
                    Bson::Double(0.5),
                    Bson::Int32(0),
                ])
                .clone(),
            ),
            4 => (
                "$mul",
                r.pick(&[Bson::Int32(2), Bson::Double(1.5), Bson::Int32(1)])
                    .clone(),
            ),
            5 => ("$min", gen_scalar(r)),
            6 => ("$max", gen_scalar(r)),
            7 => ("$push", gen_scalar(r)),
            8 => {
                let mut each =
                    doc! {"$each": (0..r.below(3)).map(|_| gen_scalar(r)).collect::<Vec<_>>()};
                if r.chance(30) {
                    each.insert("$position", r.below(4) as i32 - 1);
                }
                if r.chance(30) {
                    each.insert("$slice", r.below(5) as i32 - 2);
                }
                if r.chance(20) {
                    each.insert("$sort", 1);
                }
                ("$push", Bson::Document(each))
            }
            9 => (
                "$addToSet",
                doc! {"$each": [gen_scalar(r), gen_scalar(r)]}.into(),
            ),
            10 => ("$pop", Bson::Int32(*r.pick(&[1, -1]))),
            11 => ("$pull", gen_scalar(r)),
            12 => ("$rename", Bson::String(gen_path(r))),
            _ => ("$setOnInsert", gen_scalar(r)),
        };
        let mut fields = match u.remove(op) {
            Some(Bson::Document(f)) => f,
            _ => Document::new(),
        };
        fields.insert(path, arg);
        u.insert(op, fields);
    }
    u
}

#[test]
fn oplog_entries_replay_to_the_same_document() {
    let mut r = Rng(0x5EED_0F0B_1065);
    let (mut ok, mut changed, mut failed) = (0, 0, 0);
    for case in 0..20_000 {
        let mut d = doc! {"_id": case};
        d.extend(gen_doc(&mut r, 3));
        let u = gen_update(&mut r);
        let out = match apply_update(&d, &u, r.chance(10)) {
            Ok(out) => out,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        ok += 1;
        assert_eq!(out.oplog_o2, Some(doc! {"_id": case}));
        if !out.changed {
            assert!(
                docs_binary_equal(&out.doc, &d),
                "no-op changed the document: {d:?} {u:?}"
            );
            continue;
        }
        changed += 1;
        let replayed = apply_oplog_update(&d, &out.oplog_o).unwrap_or_else(|e| {
            panic!("replay failed: {e}\nD={d:?}\nU={u:?}\no={:?}", out.oplog_o)
        });
        assert!(
            docs_binary_equal(&replayed, &out.doc),
            "replay differs\nD={d:?}\nU={u:?}\no={:?}\nwant={:?}\ngot ={replayed:?}",
            out.oplog_o,
            out.doc
        );
    }
    // The generator has to exercise the interesting paths, not only errors.
    assert!(
        ok > 8_000 && changed > 6_000,
        "ok={ok} changed={changed} failed={failed}"
    );
}

#[test]
fn replacement_entries_replay_to_the_same_document() {
    let mut r = Rng(42);
    for case in 0..2_000 {
        let mut d = doc! {"_id": case};
        d.extend(gen_doc(&mut r, 3));
        let mut repl = gen_doc(&mut r, 3);
        if r.chance(50) {
            repl.insert("_id", case);
        }
        let out = run(d.clone(), repl);
        if out.changed {
            assert_eq!(apply_oplog_update(&d, &out.oplog_o).unwrap(), out.doc);
        }
    }
}

/// A 4.4 primary logged `$set`/`$unset` of the final values; replaying such
/// an entry must agree with applying the same operators directly (names
/// without digits, so both field orders coincide).
#[test]
fn legacy_entries_agree_with_direct_application() {
    let mut r = Rng(7);
    let mut compared = 0;
    for case in 0..5_000 {
        let mut d = doc! {"_id": case};
        d.extend(gen_doc(&mut r, 3));
        let mut set = Document::new();
        let mut unset = Document::new();
        for _ in 0..1 + r.below(3) {
            let path = gen_path(&mut r);
            if path.split('.').any(|p| p == "2" || p == "10") {
                continue;
            }
            if r.chance(70) {
                set.insert(path, gen_value(&mut r, 2));
            } else {
                unset.insert(path, "");
            }
        }
        let u = doc! {"$set": set.clone(), "$unset": unset.clone()};
        let Ok(direct) = apply_update(&d, &u, false) else {
            continue;
        };
        let legacy = apply_oplog_update(&d, &doc! {"$v": 1, "$set": set, "$unset": unset}).unwrap();
        assert!(
            docs_binary_equal(&legacy, &direct.doc),
            "D={d:?} U={u:?} legacy={legacy:?}"
        );
        compared += 1;
    }
    assert!(compared > 2_000, "compared={compared}");
}

/// Malformed input of every kind must produce errors, never panics.
#[test]
fn arbitrary_updates_and_diffs_never_panic() {
    let mut r = Rng(99);
    for case in 0..5_000 {
        let d = gen_doc(&mut r, 3);
        let junk = gen_doc(&mut r, 3);
        let _ = apply_update(&d, &junk, false);
        let mut ops = Document::new();
        ops.insert(
            *r.pick(&["$set", "$push", "$pull", "$rename", "$bit", "$x"]),
            gen_value(&mut r, 2),
        );
        let _ = apply_update(&d, &ops, case % 2 == 0);
        let mut diff = Document::new();
        for _ in 0..r.below(4) {
            let key = format!(
                "{}{}",
                r.pick(&["u", "i", "d", "s", "a", "l", "x"]),
                r.pick(&NAMES)
            );
            diff.insert(key, gen_value(&mut r, 2));
        }
        let _ = apply_oplog_update(&d, &doc! {"$v": 2, "diff": diff});
        let _ = upsert_seed(&junk);
    }
}

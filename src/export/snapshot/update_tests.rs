//! The update applier against hand-written server behaviour and against the
//! test server, whose update engine logs `$v: 2` diffs the way mongod 7.0
//! does: replaying its diff must give exactly (byte for byte, field order
//! included) the document the update produced.

use bson::{doc, Bson, Document};

use super::update::{apply_update, is_replacement};
use crate::export::sample::Rng;

fn bytes(d: &Document) -> Vec<u8> {
    bson::to_vec(d).unwrap()
}

#[track_caller]
fn same(got: &Document, want: &Document) {
    assert_eq!(got, want);
    assert_eq!(
        bytes(got),
        bytes(want),
        "field order differs: {got} vs {want}"
    );
}

#[test]
fn diff_sections_apply_in_the_servers_order() {
    let pre = doc! {"_id": 1, "a": 1, "b": {"c": 1, "d": 2}, "e": [1, 2, 3], "f": 0, "g": 9};
    let o = doc! {"$v": 2, "diff": {
        "d": {"a": false},
        "u": {"f": 5, "new": 1},
        "i": {"g": 10, "h": 1},
        "sb": {"d": {"c": false}, "i": {"x": 1}},
        "se": {"a": true, "l": 5, "u1": 20, "u4": 40},
    }};
    same(
        &apply_update(&pre, &o).unwrap(),
        &doc! {"_id": 1, "b": {"d": 2, "x": 1}, "e": [1, 20, 3, null, 40], "f": 5, "new": 1, "g": 10, "h": 1},
    );
}

#[test]
fn diff_resizes_arrays_and_nulls_fields_of_another_type() {
    let pre = doc! {"a": [1, 2, 3, 4], "b": 5, "c": {"x": 1}, "n": [[1, 2], {"k": 1}]};
    let o = doc! {"$v": 2, "diff": {
        "sa": {"a": true, "l": 2, "u1": 9},
        "sb": {"u": {"x": 1}},
        "sc": {"a": true, "u0": 1},
        "sn": {"a": true, "s0": {"a": true, "u3": 7}, "s1": {"u": {"k": 2}}},
    }};
    same(
        &apply_update(&pre, &o).unwrap(),
        &doc! {"a": [1, 9], "b": null, "c": null, "n": [[1, 2, null, 7], {"k": 2}]},
    );
    // Growing without entries pads with nulls; a sub-diff past the end
    // finds nothing and leaves null.
    let o = doc! {"$v": 2, "diff": {"sa": {"a": true, "l": 6, "s5": {"u": {"x": 1}}}}};
    same(
        &apply_update(&doc! {"a": [1]}, &o).unwrap(),
        &doc! {"a": [1, null, null, null, null, null]},
    );
}

#[test]
fn malformed_updates_are_errors_never_panics() {
    let pre = doc! {"a": [1], "b": {}};
    let bad = [
        doc! {"$v": 2, "diff": {}},
        doc! {"$v": 2},
        doc! {"$v": 2, "diff": 5},
        doc! {"$v": 2, "diff": {"u": {"x": 1}, "d": {"y": false}}},
        doc! {"$v": 2, "diff": {"x": {}}},
        doc! {"$v": 2, "diff": {"u": 1}},
        doc! {"$v": 2, "diff": {"sb": {"u": {"x": 1}}, "u": {"y": 1}}},
        doc! {"$v": 2, "diff": {"sb": 1}},
        doc! {"$v": 2, "diff": {"sb": {}}},
        doc! {"$v": 2, "diff": {"sa": {"a": false}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "x1": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "ux": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "u": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "s0": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "l": 1.0}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "l": -1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "l": 1, "u3": 1}}},
        doc! {"$v": 2, "diff": {"u": {"x": 1}, "i": {"x": 2}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "u5": 1, "u2": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "u99999999": 1}}},
        doc! {"$v": 2, "diff": {"sa": {"a": true, "é1": 1}}},
        doc! {"$v": 3, "diff": {}},
        doc! {"$v": "2", "diff": {}},
        doc! {"$inc": {"a": 1}},
        doc! {"$set": 1},
        doc! {"$set": {"a..b": 1}},
    ];
    for o in bad {
        assert!(apply_update(&pre, &o).is_err(), "accepted {o}");
    }
}

#[test]
fn deeply_nested_diffs_are_refused_not_overflowing_the_stack() {
    let mut diff = doc! {"u": {"x": 1}};
    let mut pre = doc! {"x": 0};
    for _ in 0..300 {
        diff = doc! {"sa": diff};
        pre = doc! {"a": pre};
    }
    let e = apply_update(&pre, &doc! {"$v": 2, "diff": diff}).unwrap_err();
    assert!(e.contains("deeper"), "{e}");
}

/// Legacy entries, with what 4.4 leaves (checked against the test server's
/// port of 4.4's oplog application too).
#[test]
fn legacy_set_and_unset_replay_like_4_4() {
    let cases: Vec<(Document, Document, Document)> = vec![
        // New fields are appended in byte order of their names.
        (
            doc! {"_id": 1, "z": 0},
            doc! {"$set": {"b": 1, "a": 2, "z": 3}},
            doc! {"_id": 1, "z": 3, "a": 2, "b": 1},
        ),
        (
            doc! {"_id": 1},
            doc! {"$v": 1, "$set": {"x.y.z": 1}},
            doc! {"_id": 1, "x": {"y": {"z": 1}}},
        ),
        (
            doc! {"_id": 1, "arr": [1]},
            doc! {"$set": {"arr.3": 9}},
            doc! {"_id": 1, "arr": [1, null, null, 9]},
        ),
        (
            doc! {"_id": 1, "arr": [{"k": 1}]},
            doc! {"$set": {"arr.0.k": 2, "arr.2.k": 3}},
            doc! {"_id": 1, "arr": [{"k": 2}, null, {"k": 3}]},
        ),
        // A path through a scalar cannot be created: skipped, not failed.
        (
            doc! {"_id": 1, "s": "str"},
            doc! {"$set": {"s.a": 1, "t": 1}},
            doc! {"_id": 1, "s": "str", "t": 1},
        ),
        (
            doc! {"_id": 1, "a": 1, "b": {"c": 1, "d": 1}},
            doc! {"$unset": {"a": true, "b.c": 1, "nope.x": 1}},
            doc! {"_id": 1, "b": {"d": 1}},
        ),
        (
            doc! {"_id": 1, "arr": [1, 2]},
            doc! {"$unset": {"arr.0": ""}},
            doc! {"_id": 1, "arr": [null, 2]},
        ),
        (
            doc! {"_id": 1, "a": 1},
            doc! {"$set": {"a": 5}, "$unset": {"b": ""}},
            doc! {"_id": 1, "a": 5},
        ),
        // Unversioned replacement without _id keeps the stored _id.
        (
            doc! {"_id": 7, "a": 1},
            doc! {"b": 2},
            doc! {"_id": 7, "b": 2},
        ),
    ];
    for (pre, o, want) in cases {
        let got = apply_update(&pre, &o).unwrap();
        same(&got, &want);
        let server = mongo_testserver::update::apply_oplog_update(&pre, &o).unwrap();
        same(&got, &server);
    }
}

#[test]
fn replacements_are_recognised() {
    assert!(is_replacement(&doc! {"_id": 1, "a": 1}));
    assert!(is_replacement(&doc! {"a": 1}));
    assert!(!is_replacement(&doc! {"$v": 2, "diff": {"u": {"a": 1}}}));
    assert!(!is_replacement(&doc! {"$set": {"a": 1}}));
    same(
        &apply_update(&doc! {"_id": 1, "old": 1}, &doc! {"_id": 1, "new": 2}).unwrap(),
        &doc! {"_id": 1, "new": 2},
    );
}

fn value(rng: &mut Rng, depth: u32) -> Bson {
    match rng.below(if depth > 2 { 6 } else { 9 }) {
        0 => Bson::Int32(rng.below(5) as i32),
        1 => Bson::Int64(rng.below(1000) as i64),
        2 => Bson::Double(rng.below(100) as f64 / 4.0),
        3 => Bson::String(["a", "b", "zz", ""][rng.below(4) as usize].into()),
        4 => Bson::Null,
        5 => Bson::Boolean(rng.below(2) == 0),
        6 | 7 => Bson::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => Bson::Document(document(rng, depth + 1)),
    }
}

fn document(rng: &mut Rng, depth: u32) -> Document {
    let mut d = Document::new();
    for name in ["a", "b", "c", "arr", "sub", "k"] {
        if rng.below(3) > 0 {
            d.insert(name, value(rng, depth));
        }
    }
    d
}

const PATHS: [&str; 16] = [
    "a",
    "b",
    "c",
    "new",
    "arr",
    "arr.0",
    "arr.1",
    "arr.5",
    "arr.0.k",
    "sub",
    "sub.a",
    "sub.k",
    "sub.new.deep",
    "sub.arr.2",
    "k.a",
    "arr.1.arr",
];

fn update(rng: &mut Rng) -> Document {
    let mut path = || PATHS[rng.below(PATHS.len() as u64) as usize].to_string();
    let (p1, p2) = (path(), path());
    let v = value(rng, 2);
    let n = Bson::Int32(rng.below(7) as i32 - 3);
    match rng.below(12) {
        0 => doc! {"$set": {p1: v}},
        1 => doc! {"$set": {p1: v.clone(), p2: n}},
        2 => doc! {"$unset": {p1: ""}},
        3 => doc! {"$inc": {p1: n}},
        4 => doc! {"$mul": {p1: n}},
        5 => doc! {"$push": {p1: {"$each": [v, n], "$slice": 3}}},
        6 => doc! {"$pull": {p1: n}},
        7 => doc! {"$addToSet": {p1: v}},
        8 => doc! {"$pop": {p1: if rng.below(2) == 0 { 1 } else { -1 }}},
        9 => doc! {"$rename": {p1: p2}},
        10 => doc! {"$max": {p1: n}, "$unset": {p2: 1}},
        _ => doc! {"$set": {p1: v}, "$min": {p2: n}},
    }
}

/// Thousands of generated documents and updates: whenever the test server
/// accepts an update, replaying the diff it logged reproduces its result
/// exactly, and replaying it a second time changes nothing (what replaying
/// an oplog slice over data copied after the update relies on).
#[test]
fn generated_updates_replay_exactly_as_the_test_server_logged_them() {
    let mut rng = Rng::new(20261121);
    let (mut checked, mut arrays) = (0, 0);
    for _ in 0..10000 {
        let mut pre = doc! {"_id": 1};
        pre.extend(document(&mut rng, 0));
        let upd = update(&mut rng);
        let Ok(outcome) = mongo_testserver::update::apply_update(&pre, &upd, false) else {
            continue;
        };
        if !outcome.changed {
            continue;
        }
        let got = apply_update(&pre, &outcome.oplog_o)
            .unwrap_or_else(|e| panic!("{pre} with {upd} logged {}: {e}", outcome.oplog_o));
        assert_eq!(
            bytes(&got),
            bytes(&outcome.doc),
            "{pre} with {upd} (logged {}): got {got}, the server has {}",
            outcome.oplog_o,
            outcome.doc
        );
        let again = apply_update(&got, &outcome.oplog_o).unwrap();
        assert_eq!(
            bytes(&again),
            bytes(&got),
            "not idempotent: {pre} with {upd}"
        );
        checked += 1;
        if outcome
            .oplog_o
            .get_document("diff")
            .is_ok_and(has_array_diff)
        {
            arrays += 1;
        }
    }
    eprintln!("{checked} updates replayed, {arrays} with array diffs");
    assert!(checked > 3000, "only {checked} updates changed something");
    assert!(arrays > 150, "only {arrays} array diffs");
}

fn has_array_diff(diff: &Document) -> bool {
    diff.get_bool("a") == Ok(true)
        || diff
            .iter()
            .any(|(k, v)| k.starts_with('s') && matches!(v, Bson::Document(d) if has_array_diff(d)))
}

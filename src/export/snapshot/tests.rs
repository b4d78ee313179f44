//! The snapshot reader on hand-made backups: every kind of oplog entry a
//! replica set writes (CRUD, DDL, applyOps, split transactions), chains of
//! incrementals cut at a time, and the failures that must be clear errors.

use bson::{doc, Document, RawDocumentBuf, Timestamp};

use super::fixtures::{backup, cmd, del, full, ins, set, ts, upd};
use super::{Snapshot, SnapshotError};
use crate::catalog::{BackupKind, OpTime};
use crate::restore::pitr::{Link, PitrPlan};
use crate::storage::BackupFiles;

fn docs_of(s: &Snapshot, ns: &str) -> Vec<Document> {
    let c = s
        .collections()
        .iter()
        .find(|c| c.namespace() == ns)
        .unwrap_or_else(|| panic!("no {ns} in {:?}", names(s)));
    s.documents(c)
        .unwrap()
        .map(|d| d.unwrap().to_document().unwrap())
        .collect()
}

fn names(s: &Snapshot) -> Vec<String> {
    s.collections().iter().map(|c| c.namespace()).collect()
}

#[test]
fn the_slice_is_applied_to_documents_copied_while_it_was_written() {
    let root = tempfile::tempdir().unwrap();
    let file = vec![
        doc! {"_id": 1, "v": 1},
        doc! {"_id": 2, "v": 1},
        // Copied after entry 3 had inserted it and entry 4 updated it.
        doc! {"_id": 3, "v": 2, "w": 1},
        doc! {"_id": 4, "v": 1},
        doc! {"_id": 5, "v": 1},
    ];
    let ns = "app.c";
    let entries = [
        upd(1, ns, 1, set(doc! {"v": 10})),
        del(2, ns, 2),
        ins(3, ns, doc! {"_id": 3, "v": 1}),
        upd(
            4,
            ns,
            3,
            doc! {"$v": 2, "diff": {"u": {"v": 2}, "i": {"w": 1}}},
        ),
        ins(5, ns, doc! {"_id": 6, "v": 6}),
        upd(6, ns, 6, set(doc! {"v": 60})),
        del(7, ns, 4),
        ins(8, ns, doc! {"_id": 4, "v": "again"}),
        upd(9, ns, 5, doc! {"_id": 5, "replaced": true}),
        ins(10, ns, doc! {"_id": 7}),
        del(11, ns, 7),
        // An update of a document neither copied nor inserted: applyOps
        // upserts it, so the export does too.
        upd(12, ns, 8, set(doc! {"x": 1})),
        doc! {"op": "n", "ns": "", "o": {"msg": "periodic noop"}, "ts": ts(13)},
        // Numbers of equal value are the same _id.
        upd(14, ns, 1.0, set(doc! {"v": 11})),
    ];
    let link = full(root.path(), &[("app", "c", file)], &entries);
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    assert_eq!(s.as_of(), Some(OpTime::from(ts(50))));
    assert_eq!(
        docs_of(&s, ns),
        vec![
            doc! {"_id": 1, "v": 11},
            doc! {"_id": 3, "v": 2, "w": 1},
            doc! {"_id": 4, "v": "again"},
            doc! {"_id": 5, "replaced": true},
            doc! {"_id": 6, "v": 60},
            doc! {"_id": 8, "x": 1},
        ]
    );
    let c = &s.collections()[0];
    assert_eq!(
        c.options,
        doc! { "validator": { "a": { "$exists": true } } }
    );
    assert_eq!(c.indexes.len(), 1);
}

#[test]
fn creates_drops_and_renames_decide_what_exists() {
    let root = tempfile::tempdir().unwrap();
    let one = |v: i32| vec![doc! {"_id": 1, "v": v}];
    let entries = [
        // A collection made during the copy, with an index.
        cmd(
            1,
            "app",
            doc! {"create": "made", "capped": true, "size": 4096, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
        ),
        ins(2, "app.made", doc! {"_id": "m"}),
        cmd(
            3,
            "app",
            doc! {"createIndexes": "made", "v": 2, "key": {"m": 1}, "name": "m_1"},
        ),
        cmd(
            4,
            "app",
            doc! {"commitIndexBuild": "made", "indexBuildUUID": bson::Uuid::new(), "indexes": [{"v": 2, "key": {"n": 1}, "name": "n_1"}]},
        ),
        cmd(5, "app", doc! {"dropIndexes": "made", "index": "m_1"}),
        cmd(
            6,
            "app",
            doc! {"collMod": "made", "validator": {"m": {"$type": "string"}}, "index": {"name": "n_1", "hidden": true}},
        ),
        // Dropped, then made again: only what came after the drop counts.
        upd(7, "app.redo", 1, set(doc! {"v": 7})),
        cmd(8, "app", doc! {"drop": "redo"}),
        ins(9, "app.redo", doc! {"_id": 2, "v": "new"}),
        // Renamed over an existing collection (dropTarget), then changed
        // under its new name; the old name is free again.
        cmd(
            10,
            "app",
            doc! {"renameCollection": "app.moved", "to": "app.target", "stayTemp": false, "dropTarget": true},
        ),
        upd(11, "app.target", 1, set(doc! {"v": 11})),
        ins(12, "app.moved", doc! {"_id": "fresh"}),
        // A whole database dropped.
        cmd(13, "gone", doc! {"dropDatabase": 1}),
        ins(14, "app.implicit", doc! {"_id": 1}),
        cmd(
            15,
            "app",
            doc! {"create": "v", "viewOn": "made", "pipeline": []},
        ),
        cmd(16, "app", doc! {"startIndexBuild": "made", "indexes": []}),
    ];
    let link = full(
        root.path(),
        &[
            ("app", "redo", one(1)),
            ("app", "moved", one(2)),
            ("app", "target", one(3)),
            ("gone", "a", one(4)),
            ("gone", "b", one(5)),
        ],
        &entries,
    );
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    assert_eq!(
        names(&s),
        [
            "app.implicit",
            "app.made",
            "app.moved",
            "app.redo",
            "app.target",
            "app.v"
        ]
    );
    assert_eq!(docs_of(&s, "app.made"), vec![doc! {"_id": "m"}]);
    assert_eq!(docs_of(&s, "app.redo"), vec![doc! {"_id": 2, "v": "new"}]);
    assert_eq!(docs_of(&s, "app.target"), vec![doc! {"_id": 1, "v": 11}]);
    assert_eq!(docs_of(&s, "app.moved"), vec![doc! {"_id": "fresh"}]);
    assert_eq!(docs_of(&s, "app.implicit"), vec![doc! {"_id": 1}]);
    let made = s.collections().iter().find(|c| c.name == "made").unwrap();
    assert_eq!(
        made.options,
        doc! {"capped": true, "size": 4096, "validator": {"m": {"$type": "string"}}}
    );
    let idx: Vec<&str> = made
        .indexes
        .iter()
        .map(|i| i.get_str("name").unwrap())
        .collect();
    assert_eq!(idx, ["_id_", "n_1"]);
    assert_eq!(made.indexes[1].get_bool("hidden"), Ok(true));
    let view = s.collections().iter().find(|c| c.name == "v").unwrap();
    assert!(view.is_view());
    assert_eq!(s.documents(view).unwrap().count(), 0);
    // The renamed collection keeps the metadata of its file.
    let target = s.collections().iter().find(|c| c.name == "target").unwrap();
    assert_eq!(
        target.options,
        doc! { "validator": { "a": { "$exists": true } } }
    );
}

#[test]
fn what_cannot_be_applied_fails_that_collection_with_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let entries = [
        cmd(1, "app", doc! {"convertToCapped": "odd", "size": 100}),
        cmd(
            2,
            "app",
            doc! {"renameCollection": "other.unknown", "to": "app.replaced", "dropTarget": true},
        ),
        ins(3, "app.fine", doc! {"_id": 2}),
    ];
    let link = full(
        root.path(),
        &[
            ("app", "odd", vec![doc! {"_id": 1}]),
            ("app", "fine", vec![doc! {"_id": 1}]),
            ("app", "replaced", vec![]),
        ],
        &entries,
    );
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    assert_eq!(docs_of(&s, "app.fine").len(), 2);
    for (name, needle) in [("odd", "convertToCapped"), ("replaced", "other.unknown")] {
        let c = s.collections().iter().find(|c| c.name == name).unwrap();
        let e = s.documents(c).err().unwrap();
        let text = e.to_string();
        assert!(matches!(e, SnapshotError::Unreadable { .. }), "{text}");
        assert!(
            text.contains(needle) && text.contains("--ns-exclude app."),
            "{text}"
        );
    }
    // A bad update names the backup, the file, the time and the collection.
    let root = tempfile::tempdir().unwrap();
    let link = full(
        root.path(),
        &[("app", "c", vec![doc! {"_id": 1}])],
        &[upd(7, "app.c", 1, doc! {"$v": 2, "diff": {"sx": 5}})],
    );
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    let e = s
        .documents(&s.collections()[0])
        .map(|d| d.collect::<Result<Vec<_>, _>>());
    let text = match e {
        Err(e) | Ok(Err(e)) => e.to_string(),
        Ok(Ok(d)) => panic!("applied a broken diff: {d:?}"),
    };
    assert!(
        text.contains("backup full")
            && text.contains("oplog.bson")
            && text.contains("Timestamp(1007, 1)")
            && text.contains("app.c"),
        "{text}"
    );
}

#[test]
fn transactions_and_apply_ops_are_unwrapped() {
    let root = tempfile::tempdir().unwrap();
    let lsid = doc! {"id": bson::Uuid::new()};
    let txn = |i: u32, ops: Vec<Document>, partial: bool| {
        let mut o = doc! {"applyOps": ops};
        if partial {
            o.insert("partialTxn", true);
        }
        let mut e = cmd(i, "admin", o);
        e.insert("lsid", lsid.clone());
        e.insert("txnNumber", 5_i64);
        e
    };
    let entries = [
        cmd(
            1,
            "admin",
            doc! {"applyOps": [
                {"op": "i", "ns": "app.c", "o": {"_id": 2}},
                {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [{"op": "u", "ns": "app.c", "o": set(doc!{"v": 1}), "o2": {"_id": 1}}]}},
                {"op": "c", "ns": "app.$cmd", "o": {"create": "in_txn"}},
                {"op": "i", "ns": "app.in_txn", "o": {"_id": 1}},
                // A namespace the backup left out: no collection appears.
                {"op": "i", "ns": "other.left_out", "o": {"_id": 1}},
            ]},
        ),
        txn(
            2,
            vec![doc! {"op": "i", "ns": "app.c", "o": {"_id": 3}}],
            true,
        ),
        txn(
            3,
            vec![doc! {"op": "d", "ns": "app.c", "o": {"_id": 2}}],
            false,
        ),
    ];
    let link = full(
        root.path(),
        &[("app", "c", vec![doc! {"_id": 1}])],
        &entries,
    );
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    assert_eq!(names(&s), ["app.c", "app.in_txn"]);
    assert_eq!(
        docs_of(&s, "app.c"),
        vec![doc! {"_id": 1, "v": 1}, doc! {"_id": 3}]
    );
    assert_eq!(docs_of(&s, "app.in_txn"), vec![doc! {"_id": 1}]);
    // Prepared transactions are sharded-cluster territory: refused.
    let root = tempfile::tempdir().unwrap();
    let link = full(
        root.path(),
        &[],
        &[cmd(1, "admin", doc! {"applyOps": [], "prepare": true})],
    );
    let e = Snapshot::of_backup(link.dir.clone()).unwrap_err();
    assert!(e.to_string().contains("prepared transaction"), "{e}");
}

/// A chain: the full, two incrementals and a full that bridges onward,
/// read at several times, with a split transaction across two files.
#[test]
fn a_point_in_time_applies_the_chain_up_to_the_time_only() {
    let root = tempfile::tempdir().unwrap();
    let lsid = doc! {"id": bson::Uuid::new()};
    let part = |i: u32, op: Document, partial: bool| {
        let mut o = doc! {"applyOps": [op]};
        if partial {
            o.insert("partialTxn", true);
        }
        let mut e = cmd(i, "admin", o);
        e.insert("lsid", lsid.clone());
        e.insert("txnNumber", 1_i64);
        e
    };
    let f = backup(
        root.path(),
        "f1",
        BackupKind::Full,
        &[
            ("app", "c", vec![doc! {"_id": 1, "v": 0}]),
            ("app", "quiet", vec![doc! {"_id": 1}]),
        ],
        &[upd(1, "app.c", 1, set(doc! {"v": 1}))],
        0,
        1,
        None,
        None,
    );
    let i1 = backup(
        root.path(),
        "i1",
        BackupKind::Incremental,
        &[],
        &[
            ins(2, "app.c", doc! {"_id": 2}),
            part(3, doc! {"op": "i", "ns": "app.c", "o": {"_id": "t1"}}, true),
        ],
        1,
        3,
        Some("f1"),
        None,
    );
    let i2 = backup(
        root.path(),
        "i2",
        BackupKind::Incremental,
        &[],
        &[
            part(
                4,
                doc! {"op": "i", "ns": "app.c", "o": {"_id": "t2"}},
                false,
            ),
            upd(5, "app.c", 2, set(doc! {"v": 5})),
            // Already in the previous file: skipped, not applied twice.
            ins(3, "app.c", doc! {"_id": "dup"}),
        ],
        3,
        5,
        Some("i1"),
        None,
    );
    // The bridge continues the chain; the new full's data is not read.
    let f2 = backup(
        root.path(),
        "f2",
        BackupKind::Full,
        &[("app", "c", vec![doc! {"_id": "ignored"}])],
        &[del(8, "app.c", 1)],
        7,
        8,
        None,
        Some((&[upd(6, "app.c", 1, set(doc! {"v": 6}))], 5, "i2")),
    );
    let at = |until: Option<u32>, links: &[&Link]| {
        let plan = PitrPlan {
            full: f.clone(),
            incrementals: links.iter().map(|l| (*l).clone()).collect(),
            until: until.map(|i| Timestamp {
                time: 1000 + i,
                increment: u32::MAX,
            }),
            restores_to: ts(until.unwrap_or(8)).into(),
        };
        let s = Snapshot::of_plan(&plan).unwrap();
        assert_eq!(s.backups().count(), 1 + links.len());
        (docs_of(&s, "app.c"), docs_of(&s, "app.quiet"))
    };
    let (c, quiet) = at(Some(2), &[&i1]);
    assert_eq!(c, vec![doc! {"_id": 1, "v": 1}, doc! {"_id": 2}]);
    assert_eq!(quiet, vec![doc! {"_id": 1}]);
    // Before the commit, none of the transaction; at it, all of it.
    assert_eq!(
        at(Some(3), &[&i1, &i2]).0,
        vec![doc! {"_id": 1, "v": 1}, doc! {"_id": 2}]
    );
    assert_eq!(
        at(Some(4), &[&i1, &i2]).0,
        vec![
            doc! {"_id": 1, "v": 1},
            doc! {"_id": 2},
            doc! {"_id": "t1"},
            doc! {"_id": "t2"}
        ]
    );
    assert_eq!(
        at(Some(6), &[&i1, &i2, &f2]).0,
        vec![
            doc! {"_id": 1, "v": 6},
            doc! {"_id": 2, "v": 5},
            doc! {"_id": "t1"},
            doc! {"_id": "t2"}
        ]
    );
    assert_eq!(
        at(None, &[&i1, &i2, &f2]).0,
        vec![
            doc! {"_id": 2, "v": 5},
            doc! {"_id": "t1"},
            doc! {"_id": "t2"}
        ]
    );
}

#[test]
fn damaged_and_unsuitable_backups_are_refused_whole() {
    let root = tempfile::tempdir().unwrap();
    let link = full(root.path(), &[("app", "c", vec![doc! {"_id": 1}])], &[]);
    let inc = backup(
        root.path(),
        "inc",
        BackupKind::Incremental,
        &[],
        &[],
        50,
        60,
        Some("full"),
        None,
    );
    let e = Snapshot::of_backup(inc.dir.clone()).unwrap_err();
    assert!(
        e.to_string().contains("is an incremental") && e.to_string().contains("--at"),
        "{e}"
    );
    let data = root.path().join("full/app/c.bson");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[6] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let e = Snapshot::of_backup(link.dir.clone()).unwrap_err();
    assert!(matches!(e, SnapshotError::Damaged { .. }), "{e}");
    assert!(crate::error_chain(&e).contains("c.bson"), "{e}");
    let e = Snapshot::of_backup(BackupFiles::local(root.path().join("nothing"))).unwrap_err();
    assert!(e.to_string().contains("manifest"), "{e}");
}

#[test]
fn documents_come_out_as_the_raw_bytes_of_the_file_when_untouched() {
    let root = tempfile::tempdir().unwrap();
    let d = doc! {"_id": 1, "x": {"y": [1, 2.5, "z"]}, "when": bson::DateTime::from_millis(5)};
    let link = full(
        root.path(),
        &[("app", "c", vec![d.clone()])],
        &[ins(1, "app.other", doc! {"_id": 1})],
    );
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    let c = s.collections().iter().find(|c| c.name == "c").unwrap();
    let got: Vec<RawDocumentBuf> = s.documents(c).unwrap().map(Result::unwrap).collect();
    assert_eq!(got[0].as_bytes(), bson::to_vec(&d).unwrap().as_slice());
}

#[test]
fn capped_collections_keep_only_what_their_limits_allow() {
    let root = tempfile::tempdir().unwrap();
    let big = "x".repeat(1500);
    let mut entries = vec![
        cmd(
            1,
            "app",
            doc! {"create": "by_count", "capped": true, "size": 100_000, "max": 3},
        ),
        cmd(
            2,
            "app",
            doc! {"create": "by_size", "capped": true, "size": 10},
        ),
    ];
    for i in 0..5 {
        entries.push(ins(3 + 2 * i, "app.by_count", doc! {"_id": i as i32}));
        entries.push(ins(
            4 + 2 * i,
            "app.by_size",
            doc! {"_id": i as i32, "b": big.as_str()},
        ));
    }
    let link = full(root.path(), &[], &entries);
    let s = Snapshot::of_backup(link.dir.clone()).unwrap();
    let ids = |ns: &str| -> Vec<i32> {
        docs_of(&s, ns)
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    assert_eq!(ids("app.by_count"), [2, 3, 4], "the newest 3 (max)");
    // A size of 10 means 4096 bytes: two documents of ~1.5 KB fit, not three.
    assert_eq!(ids("app.by_size"), [3, 4]);
}

"""A second, independent official client (PyMongo) against the test server.

Starts the real `mongo-testserver` binary on a free port, or uses the
replica set in MONGODB_TEST_URI when it is set.
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from bson import Timestamp
from pymongo import ASCENDING, MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

ROOT = Path(__file__).resolve().parents[3]


def _server_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(
        ["cargo", "build", "-q", "-p", "mongo-testserver", "--bin", "mongo-testserver"],
        cwd=ROOT,
        check=True,
    )
    return target / "debug" / "mongo-testserver"


@pytest.fixture(scope="module")
def uri():
    external = os.environ.get("MONGODB_TEST_URI", "").strip()
    if external:
        yield external
        return
    proc = subprocess.Popen(
        [str(_server_binary()), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("mongodb://"), f"no URI printed: {line!r} {proc.stderr.read()}"
        yield line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def db(uri):
    client = MongoClient(uri, serverSelectionTimeoutMS=10000)
    name = f"pytest_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def test_insert_and_find_with_get_more(db):
    coll = db["items"]
    result = coll.insert_many([{"_id": i, "sq": i * i} for i in range(500)])
    assert len(result.inserted_ids) == 500
    cursor = coll.find({"sq": {"$gte": 100}}).sort("_id", ASCENDING).batch_size(25)
    ids = [d["_id"] for d in cursor]
    assert ids == list(range(10, 500))
    assert coll.count_documents({"sq": {"$lt": 100}}) == 10
    assert coll.find_one({"_id": 7}) == {"_id": 7, "sq": 49}


def test_collection_names_and_indexes(db):
    db.create_collection("a")
    db["b"].insert_one({"x": 1})
    db["b"].create_index([("x", ASCENDING)], unique=True, name="x_unique")
    assert sorted(db.list_collection_names()) == ["a", "b"]
    indexes = {ix["name"]: ix for ix in db["b"].list_indexes()}
    assert set(indexes) == {"_id_", "x_unique"}
    assert indexes["x_unique"]["unique"] is True
    assert dict(indexes["x_unique"]["key"]) == {"x": 1}
    with pytest.raises(DuplicateKeyError) as err:
        db["b"].insert_one({"x": 1})
    assert err.value.code == 11000


def test_oplog_records_the_writes(db):
    coll = db["logged"]
    coll.insert_one({"_id": "k", "n": 1})
    coll.update_one({"_id": "k"}, {"$inc": {"n": 1}})
    coll.delete_one({"_id": "k"})
    entries = list(
        db.client.local["oplog.rs"].find({"ns": f"{db.name}.logged"}).sort("$natural", 1)
    )
    assert [e["op"] for e in entries] == ["i", "u", "d"]
    assert entries[0]["o"] == {"_id": "k", "n": 1}
    assert entries[1]["o"] == {"$v": 2, "diff": {"u": {"n": 2}}}
    assert entries[1]["o2"] == {"_id": "k"}
    assert all(isinstance(e["ts"], Timestamp) for e in entries)
    assert entries[0]["ts"] < entries[1]["ts"] < entries[2]["ts"]


def test_unknown_command_is_command_not_found(db):
    with pytest.raises(OperationFailure) as err:
        db.command("definitelyNotACommand")
    assert err.value.code == 59
    assert err.value.details["codeName"] == "CommandNotFound"

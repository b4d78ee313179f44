//! Tests of BsonReader on valid, truncated and corrupted streams.

use std::io::{Read, Write};
use std::path::Path;

use bson::{doc, RawDocumentBuf};

use super::{bson_bytes, sample_docs};
use crate::storage::*;

fn read_all(bytes: &[u8]) -> (usize, Option<StorageError>) {
    let mut reader = BsonReader::new(bytes, "/b/db/c.bson");
    let mut ok = 0;
    for doc in &mut reader {
        match doc {
            Ok(_) => ok += 1,
            Err(e) => return (ok, Some(e)),
        }
    }
    assert_eq!(reader.documents_read() as usize, ok);
    assert_eq!(reader.offset() as usize, bytes.len());
    (ok, None)
}

#[test]
fn bson_reader_reads_valid_streams() {
    let docs = sample_docs(100);
    let bytes = bson_bytes(&docs);
    let read: Vec<RawDocumentBuf> = BsonReader::new(&bytes[..], "x")
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read.len(), 100);
    assert_eq!(read[7].to_document().unwrap(), docs[7]);
    assert_eq!(read_all(&[]).0, 0);
}

#[test]
fn bson_reader_reports_truncation_with_position() {
    let bytes = bson_bytes(&sample_docs(3));
    let one = bson_bytes(&sample_docs(1)).len();
    // Cut inside the third document's body.
    let (ok, err) = read_all(&bytes[..bytes.len() - 5]);
    assert_eq!(ok, 2);
    let err = err.unwrap();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Truncated { .. }), "{msg}");
    assert!(msg.contains("/b/db/c.bson"), "{msg}");
    assert!(msg.contains("document #3"), "{msg}");
    assert!(msg.contains(&format!("byte offset {}", 2 * one)), "{msg}");

    // Cut inside a length prefix.
    let (ok, err) = read_all(&bytes[..one + 2]);
    assert_eq!(ok, 1);
    assert!(matches!(err, Some(StorageError::Truncated { .. })));
}

#[test]
fn bson_reader_rejects_corrupt_documents() {
    let good =
        bson_bytes(&[doc! { "a": 1, "s": "hello", "sub": { "x": [1, 2, { "deep": "é" }] } }]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length below 5", {
            let mut b = good.clone();
            b[..4].copy_from_slice(&4i32.to_le_bytes());
            b
        }),
        ("negative length", {
            let mut b = good.clone();
            b[..4].copy_from_slice(&(-1i32).to_le_bytes());
            b
        }),
        ("absurd length", {
            let mut b = good.clone();
            b[..4].copy_from_slice(&(64 * 1024 * 1024i32).to_le_bytes());
            b
        }),
        ("no terminating NUL", {
            let mut b = good.clone();
            let last = b.len() - 1;
            b[last] = 1;
            b
        }),
        ("unknown element type", {
            let mut b = good.clone();
            b[4] = 0x77;
            b
        }),
        ("invalid UTF-8 deep inside", {
            let mut b = good.clone();
            let at = b.windows(2).position(|w| w == "é".as_bytes()).unwrap();
            b[at] = 0xff;
            b
        }),
        ("nested length lies", {
            let mut b = good.clone();
            // The embedded document "sub" starts after its name's NUL.
            let at = b.windows(4).position(|w| w == b"sub\0").unwrap() + 4;
            b[at] = b[at].wrapping_add(40);
            b
        }),
    ];
    for (what, bad) in cases {
        let mut stream = good.clone();
        stream.extend_from_slice(&bad);
        let (ok, err) = read_all(&stream);
        assert_eq!(ok, 1, "{what}");
        let err = err.unwrap_or_else(|| panic!("{what}: not detected"));
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                StorageError::Corrupt { .. } | StorageError::Truncated { .. }
            ),
            "{what}: {msg}"
        );
        assert!(msg.contains("document #2"), "{what}: {msg}");
        assert!(
            msg.contains(&format!("byte offset {}", good.len())),
            "{what}: {msg}"
        );
    }
}

#[test]
fn bson_reader_stops_after_an_error() {
    let mut reader = BsonReader::new(&[1u8, 0, 0, 0, 0][..], "x");
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
}

#[test]
fn bson_reader_survives_hostile_nesting() {
    // A document nested 100,000 levels deep must not overflow the stack.
    let depth = 100_000usize;
    // Build from the inside out: {} then {"a": inner} repeatedly.
    let mut doc = vec![5u8, 0, 0, 0, 0];
    for _ in 0..depth {
        let mut outer = Vec::with_capacity(doc.len() + 8);
        let len = (4 + 1 + 2 + doc.len() + 1) as i32;
        outer.extend_from_slice(&len.to_le_bytes());
        outer.push(0x03);
        outer.extend_from_slice(b"a\0");
        outer.extend_from_slice(&doc);
        outer.push(0);
        doc = outer;
    }
    assert!(doc.len() < MAX_DOCUMENT_SIZE);
    let (ok, err) = read_all(&doc);
    assert_eq!(ok, 1, "{err:?}");
}

#[test]
fn compressed_stream_damage_is_reported() {
    let data = bson_bytes(&sample_docs(200));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();

    for (name, stored) in [("c.bson.gz", gz), ("c.bson.zst", zst)] {
        let path = Path::new("/b/db").join(name);
        // Cut short: never a clean end of stream.
        let cut = &stored[..stored.len() / 2];
        let decoder = crate::storage::reader::decoder_for(name, cut, &path).unwrap();
        let (_, err) = read_all_from(decoder, &path);
        let err = err.unwrap_or_else(|| panic!("{name}: truncation not detected"));
        assert!(
            matches!(
                err,
                StorageError::Truncated { .. } | StorageError::Corrupt { .. }
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");

        // Garbage in the middle.
        let mut garbled = stored.clone();
        let mid = garbled.len() / 2;
        for b in &mut garbled[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let decoder = crate::storage::reader::decoder_for(name, &garbled[..], &path).unwrap();
        let (_, err) = read_all_from(decoder, &path);
        assert!(err.is_some(), "{name}: corruption not detected");
    }
}

fn read_all_from<R: Read>(r: R, path: &Path) -> (usize, Option<StorageError>) {
    let mut ok = 0;
    for doc in BsonReader::new(r, path) {
        match doc {
            Ok(_) => ok += 1,
            Err(e) => return (ok, Some(e)),
        }
    }
    (ok, None)
}

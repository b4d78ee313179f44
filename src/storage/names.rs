//! Names on disk.
//!
//! Collection names may contain almost anything (`/`, spaces, `$`, unicode),
//! so they are escaped before they become file names, exactly like
//! `mongodump` does so that `mongorestore` can read our backups:
//! mongo-tools' `outputPath` (mongodump/prepare.go) uses Go's
//! `url.QueryEscape`, which keeps `A-Z a-z 0-9 - _ . ~`, writes a space as
//! `+` and every other byte of the UTF-8 name as `%XX` (upper-case hex).
//! When the escaped name is longer than 238 bytes (so that
//! `<name>.metadata.json.gz` still fits in 255), it keeps the first 208
//! bytes, then `%24` and the unpadded base64url SHA-1 of the raw name;
//! `mongorestore` then reads the real name from the metadata file.
//!
//! Database names are used as-is by mongodump; MongoDB forbids `/ \ . " $`
//! and NUL in them, so [`validate_rel_path`] only has to refuse anything that
//! could leave the backup directory.

use super::StorageError;

/// The longest escaped name mongodump keeps whole (255 minus the longest
/// suffix, `.metadata.json.gz`).
const MAX_ESCAPED_LEN: usize = 238;
/// How much of an over-long escaped name mongodump keeps before the hash.
const TRUNCATED_PREFIX_LEN: usize = 208;
/// The longest file name Linux filesystems accept.
const MAX_COMPONENT_LEN: usize = 255;

/// The file-name form of a collection name, as `mongodump` writes it.
///
/// `.` and `..` (which MongoDB does not allow as collection names, but which
/// must never become path components) are written as `%2E` and `%2E%2E`, which
/// `mongorestore` unescapes back to the same name.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => push_percent(&mut out, b),
        }
    }
    if out == "." || out == ".." {
        return "%2E".repeat(out.len());
    }
    if out.len() > MAX_ESCAPED_LEN {
        // `out` is pure ASCII, so any byte index is a char boundary. Cutting
        // through a `%XX` is what mongodump does too; the name is recovered
        // from the metadata file, never from the truncated file name.
        out.truncate(TRUNCATED_PREFIX_LEN);
        out.push_str("%24");
        out.push_str(&base64url_nopad(&sha1(name.as_bytes())));
    }
    out
}

/// The collection name a file name stands for (the inverse of
/// [`escape_name`], like Go's `url.QueryUnescape`: `+` is a space, `%XX` a
/// byte).
///
/// It never fails: a `%` not followed by two hex digits (not something
/// mongodump writes) is kept literally, and bytes that are not UTF-8 become
/// U+FFFD, so a stray file name still yields a printable name. A name that
/// mongodump truncated cannot be recovered from the file name: the manifest
/// (or the metadata file's `collectionName`) holds the real one.
pub fn unescape_name(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|&c| hex_value(c)),
                bytes.get(i + 2).and_then(|&c| hex_value(c)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that `rel` (a `/`-separated path relative to a backup directory,
/// as a writer is asked for or a manifest names) stays inside it.
///
/// Refused: empty paths and components, `.` and `..`, absolute paths,
/// backslashes and NUL bytes (never produced by [`escape_name`] or valid in
/// database names), components longer than a file name can be, and
/// `manifest.json` at the top, which only `commit` may write.
pub(crate) fn validate_rel_path(rel: &str) -> Result<(), StorageError> {
    let invalid = |reason| {
        Err(StorageError::InvalidName {
            name: rel.to_string(),
            reason,
        })
    };
    if rel.is_empty() {
        return invalid("the path is empty");
    }
    if rel.starts_with('/') {
        return invalid("absolute paths are not allowed inside a backup");
    }
    if rel.contains('\\') || rel.contains('\0') {
        return invalid("backslashes and NUL bytes are not allowed in backup file names");
    }
    if rel == crate::catalog::MANIFEST_FILE {
        return invalid("manifest.json is reserved for the backup's manifest");
    }
    for component in rel.split('/') {
        match component {
            "" => return invalid("the path has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return invalid("`.` and `..` would leave the backup directory"),
            c if c.len() > MAX_COMPONENT_LEN => return invalid(
                "a path component is longer than 255 bytes (escape_name shortens collection names)",
            ),
            _ => {}
        }
    }
    Ok(())
}

fn push_percent(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Go's `base64.RawURLEncoding`: URL-safe alphabet, no padding.
fn base64url_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        // A chunk of k bytes yields k + 1 significant characters.
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// SHA-1, needed only to reproduce mongodump's file names for over-long
/// collection names (not for security); the crate has no SHA-1 dependency
/// and this is small.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());

    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }

    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        for name in ["users", "Orders_2024", "a.b-c~d", "system.views"] {
            assert_eq!(escape_name(name), name);
        }
    }

    #[test]
    fn escaping_matches_go_query_escape() {
        // Expected values are what Go's url.QueryEscape returns (and Python's
        // urllib.parse.quote_plus(name, safe="")).
        let cases = [
            ("a/b", "a%2Fb"),
            ("100%", "100%25"),
            ("with space", "with+space"),
            ("a+b", "a%2Bb"),
            ("$cmd", "%24cmd"),
            ("oplog.$main", "oplog.%24main"),
            ("ümlaut", "%C3%BCmlaut"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("a\\b:c*d?e\"f<g>h|i", "a%5Cb%3Ac%2Ad%3Fe%22f%3Cg%3Eh%7Ci"),
            ("#&=@,;", "%23%26%3D%40%2C%3B"),
        ];
        for (name, escaped) in cases {
            assert_eq!(escape_name(name), escaped, "escaping {name:?}");
            assert_eq!(unescape_name(escaped), name, "unescaping {escaped:?}");
        }
    }

    #[test]
    fn round_trip_of_odd_names() {
        for name in [
            "a/b/../c",
            "%2F",
            "%",
            "  ",
            "+",
            "tab\there",
            "emoji 🦀 coll",
            "$",
            "a.$b",
            "~tilde~",
            "mixed/%/ /é/$",
        ] {
            let escaped = escape_name(name);
            assert!(
                escaped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~%+".contains(&b)),
                "{escaped:?}"
            );
            assert_eq!(unescape_name(&escaped), name);
        }
    }

    #[test]
    fn dot_names_never_become_path_components() {
        assert_eq!(escape_name("."), "%2E");
        assert_eq!(escape_name(".."), "%2E%2E");
        assert_eq!(unescape_name("%2E%2E"), "..");
        assert_eq!(escape_name("..."), "...");
    }

    #[test]
    fn unescape_is_lenient_with_stray_percent() {
        assert_eq!(unescape_name("50%"), "50%");
        assert_eq!(unescape_name("%zz"), "%zz");
        assert_eq!(unescape_name("%2f"), "/");
        assert_eq!(unescape_name("%FF"), "\u{FFFD}");
    }

    #[test]
    fn sha1_and_base64_known_answers() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        // 56 bytes: padding spills into a second block.
        assert_eq!(
            hex::encode(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(base64url_nopad(b""), "");
        assert_eq!(base64url_nopad(b"f"), "Zg");
        assert_eq!(base64url_nopad(b"fo"), "Zm8");
        assert_eq!(base64url_nopad(b"foo"), "Zm9v");
        assert_eq!(base64url_nopad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn long_names_are_truncated_like_mongodump() {
        // 238 escaped bytes are kept whole, 239 are not.
        let fits = "a".repeat(238);
        assert_eq!(escape_name(&fits), fits);

        let long = "b".repeat(300);
        let escaped = escape_name(&long);
        assert_eq!(escaped.len(), 238);
        assert!(escaped.starts_with(&"b".repeat(208)));
        assert_eq!(&escaped[208..211], "%24");
        assert_eq!(&escaped[211..], base64url_nopad(&sha1(long.as_bytes())));
        // base64url (unpadded) of the SHA-1 of 300 "b"s, computed independently.
        assert_eq!(&escaped[211..], "vsXuGH5Kr_g88spGnu-w6X33Fyc");

        // Multi-byte characters triple in size when escaped.
        let unicode = "é".repeat(50);
        assert_eq!(escape_name(&unicode).len(), 238);
        assert!(
            validate_rel_path(&format!("db/{}.metadata.json.gz", escape_name(&unicode))).is_ok()
        );
    }

    #[test]
    fn relative_paths_are_confined() {
        for ok in [
            "oplog.bson",
            "db/coll.bson",
            "db/a%2Fb.metadata.json",
            "d b/x",
        ] {
            assert!(validate_rel_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "db/../../x",
            "db/./x",
            "db//x",
            "db/",
            "a\\b",
            "a\0b",
            "manifest.json",
        ] {
            let err = validate_rel_path(bad).err();
            assert!(
                matches!(err, Some(StorageError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_rel_path(&format!("db/{}", "x".repeat(256))).is_err());
    }
}

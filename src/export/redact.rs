//! `--redact PATH`: replacing chosen fields with consistent fake values.
//!
//! Each fake is derived from an HMAC-SHA256 of the original value (its BSON
//! type and bytes) under a key drawn at random for each export. So within
//! one export the same original always gives the same fake (in every field
//! and collection, which keeps joins and duplicates intact), while nobody
//! without the key can confirm a guess of what a fake stands for, and two
//! exports give different fakes.
//!
//! Paths use dot notation; `*` stands for any one field name; a path that
//! ends on a document or an array redacts every value inside it (so
//! `address` and `address.*` are the same); arrays on the way are entered
//! element by element (`contacts.email` reaches the email of every
//! contact), unless the next part is an index (`phones.0`).
//!
//! What a value becomes (a fake never equals its original):
//! - a string that looks like an email address: `user-<16 hex>@example.invalid`;
//! - a string that looks like a phone number (digits and `+-(). `, 6 to 20
//!   digits): the same string with every digit replaced;
//! - any other string: `redacted-<16 hex>`;
//! - int32, int64, double, decimal128: a non-negative number of the same type;
//! - ObjectId: another ObjectId; date: another date (1970 to 2033);
//!   binary: bytes of the same length and subtype;
//! - null stays null; every other type (booleans, timestamps, regular
//!   expressions, code, ...) becomes a `redacted-<16 hex>` string.

use bson::{doc, Binary, Bson, Document};
use sha2::{Digest, Sha256};

/// One `--redact` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactPath {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Field(String),
    Any,
}

impl RedactPath {
    pub fn parse(text: &str) -> Result<RedactPath, String> {
        if text.is_empty() {
            return Err("a --redact path cannot be empty".into());
        }
        let parts = text
            .split('.')
            .map(|p| match p {
                "" => Err(format!(
                    "the --redact path {text:?} has an empty part; write fields as a.b.c"
                )),
                "*" => Ok(Part::Any),
                p if p.contains('*') => Err(format!(
                    "the --redact path {text:?}: `*` stands for a whole field name (a.*), not part of one"
                )),
                p => Ok(Part::Field(p.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedactPath {
            text: text.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Replaces the values at the chosen paths; see the module documentation.
pub struct Redactor {
    paths: Vec<RedactPath>,
    key: [u8; 32],
}

impl Redactor {
    /// `key` must be secret and fresh for each export (see [`random_key`]).
    pub fn new(paths: Vec<RedactPath>, key: [u8; 32]) -> Redactor {
        Redactor { paths, key }
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Redacts `doc` in place; returns how many values were replaced.
    pub fn apply(&self, doc: &mut Document) -> u64 {
        let mut n = 0;
        for path in &self.paths {
            n += self.in_document(doc, &path.parts);
        }
        n
    }

    fn in_document(&self, doc: &mut Document, parts: &[Part]) -> u64 {
        let Some((head, rest)) = parts.split_first() else {
            return 0;
        };
        match head {
            Part::Field(name) => doc.get_mut(name).map_or(0, |v| self.at(v, rest)),
            Part::Any => doc.iter_mut().map(|(_, v)| self.at(v, rest)).sum(),
        }
    }

    fn at(&self, value: &mut Bson, parts: &[Part]) -> u64 {
        if parts.is_empty() {
            return self.everything(value);
        }
        match value {
            Bson::Document(d) => self.in_document(d, parts),
            Bson::Array(items) => {
                let index = match &parts[0] {
                    Part::Field(f) => f.parse::<usize>().ok(),
                    Part::Any => None,
                };
                match index {
                    Some(i) => items.get_mut(i).map_or(0, |v| self.at(v, &parts[1..])),
                    None => items.iter_mut().map(|v| self.at(v, parts)).sum(),
                }
            }
            _ => 0,
        }
    }

    /// Every value inside `value` (or `value` itself when it is a leaf).
    fn everything(&self, value: &mut Bson) -> u64 {
        match value {
            Bson::Document(d) => d.iter_mut().map(|(_, v)| self.everything(v)).sum(),
            Bson::Array(items) => items.iter_mut().map(|v| self.everything(v)).sum(),
            Bson::Null => 0,
            leaf => {
                *leaf = self.fake(leaf);
                1
            }
        }
    }

    /// The fake for `original`: the first candidate (counter 0, 1, ...)
    /// that differs from it, so a fake can never give the original away.
    pub fn fake(&self, original: &Bson) -> Bson {
        let bytes = bson::to_vec(&doc! { "v": original.clone() }).unwrap_or_default();
        let mut counter = 0u32;
        loop {
            let candidate = self.candidate(original, &bytes, counter);
            if &candidate != original || counter >= 16 {
                return candidate;
            }
            counter += 1;
        }
    }

    /// `len` pseudo-random bytes for `input`: HMAC-SHA256 in counter mode.
    fn stream(&self, input: &[u8], counter: u32, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut block = 0u32;
        while out.len() < len {
            let mut msg = Vec::with_capacity(input.len() + 8);
            msg.extend_from_slice(&counter.to_be_bytes());
            msg.extend_from_slice(&block.to_be_bytes());
            msg.extend_from_slice(input);
            out.extend_from_slice(&hmac_sha256(&self.key, &msg));
            block = block.wrapping_add(1);
        }
        out.truncate(len);
        out
    }

    fn candidate(&self, original: &Bson, input: &[u8], counter: u32) -> Bson {
        let mac = self.stream(input, counter, 32);
        let word = u64::from_be_bytes([
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
        ]);
        let tag = hex::encode(&mac[..8]);
        match original {
            Bson::String(s) if looks_like_email(s) => {
                Bson::String(format!("user-{tag}@example.invalid"))
            }
            Bson::String(s) if looks_like_phone(s) => {
                let digits = self.stream(input, counter, s.len());
                let mut i = 0;
                Bson::String(
                    s.chars()
                        .map(|c| {
                            if c.is_ascii_digit() {
                                i += 1;
                                char::from(b'0' + digits[i - 1] % 10)
                            } else {
                                c
                            }
                        })
                        .collect(),
                )
            }
            Bson::Int32(_) => Bson::Int32((word >> 33) as i32),
            Bson::Int64(_) => Bson::Int64((word >> 1) as i64),
            Bson::Double(_) => Bson::Double((word >> 11) as f64 / (1u64 << 53) as f64 * 1e6),
            Bson::Decimal128(_) => format!("{}", word % 1_000_000_000_000)
                .parse()
                .map(Bson::Decimal128)
                .unwrap_or_else(|_| Bson::String(format!("redacted-{tag}"))),
            Bson::ObjectId(_) => {
                let mut b = [0u8; 12];
                b.copy_from_slice(&mac[8..20]);
                Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))
            }
            Bson::DateTime(_) => Bson::DateTime(bson::DateTime::from_millis(
                (word % 2_000_000_000_000) as i64,
            )),
            Bson::Binary(b) => Bson::Binary(Binary {
                subtype: b.subtype,
                bytes: self.stream(input, counter, b.bytes.len()),
            }),
            _ => Bson::String(format!("redacted-{tag}")),
        }
    }
}

/// `local@domain.tld`, without spaces.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Digits with the usual phone punctuation, 6 to 20 digits.
fn looks_like_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || "+-(). ".contains(c))
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// A fresh secret key from the operating system's random source.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    super::sample::os_random(&mut key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use hmac::{KeyInit, Mac};

    fn redactor(paths: &[&str]) -> Redactor {
        Redactor::new(
            paths
                .iter()
                .map(|p| RedactPath::parse(p).unwrap())
                .collect(),
            [7u8; 32],
        )
    }

    #[test]
    fn hmac_matches_rfc_4231_and_the_hmac_crate() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        for (key, msg) in [
            (vec![0u8; 0], b"".to_vec()),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key".to_vec(),
            ),
            (vec![1u8; 64], vec![2u8; 1000]),
        ] {
            let mut m = hmac::Hmac::<Sha256>::new_from_slice(&key).unwrap();
            m.update(&msg);
            assert_eq!(
                hmac_sha256(&key, &msg).as_slice(),
                m.finalize().into_bytes().as_slice()
            );
        }
    }

    #[test]
    fn fakes_keep_the_kind_of_value_and_never_the_original() {
        let r = redactor(&[]);
        let email = r.fake(&Bson::String("Jane.Doe@corp.example.com".into()));
        let Bson::String(email) = email else { panic!() };
        assert!(
            email.starts_with("user-") && email.ends_with("@example.invalid"),
            "{email}"
        );
        let Bson::String(phone) = r.fake(&Bson::String("+1 (555) 010-4477".into())) else {
            panic!()
        };
        assert_eq!(phone.len(), "+1 (555) 010-4477".len());
        assert_eq!(
            phone.replace(|c: char| c.is_ascii_digit(), "9"),
            "+9 (999) 999-9999"
        );
        assert_ne!(phone, "+1 (555) 010-4477");
        let Bson::String(other) = r.fake(&Bson::String("12 Main Street".into())) else {
            panic!()
        };
        assert!(
            other.starts_with("redacted-") && other.len() == 25,
            "{other}"
        );
        assert!(matches!(r.fake(&Bson::Int32(42)), Bson::Int32(n) if n >= 0 && n != 42));
        assert!(matches!(r.fake(&Bson::Int64(42)), Bson::Int64(n) if n >= 0 && n != 42));
        assert!(matches!(r.fake(&Bson::Double(4.5)), Bson::Double(f) if (0.0..1e6).contains(&f)));
        assert!(matches!(
            r.fake(&Bson::Decimal128("1.5".parse().unwrap())),
            Bson::Decimal128(_)
        ));
        let oid = ObjectId::new();
        assert!(matches!(r.fake(&Bson::ObjectId(oid)), Bson::ObjectId(o) if o != oid));
        assert!(matches!(
            r.fake(&Bson::DateTime(bson::DateTime::now())),
            Bson::DateTime(_)
        ));
        let bin = Binary {
            subtype: BinarySubtype::Uuid,
            bytes: vec![3; 16],
        };
        match r.fake(&Bson::Binary(bin.clone())) {
            Bson::Binary(b) => {
                assert_eq!(b.subtype, BinarySubtype::Uuid);
                assert_eq!(b.bytes.len(), 16);
                assert_ne!(b.bytes, bin.bytes);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(r.fake(&Bson::Boolean(true)), Bson::String(s) if s.starts_with("redacted-"))
        );
    }

    #[test]
    fn equal_originals_give_equal_fakes_and_keys_make_them_differ() {
        let a = redactor(&[]);
        let b = Redactor::new(Vec::new(), [8u8; 32]);
        let v = Bson::String("someone@example.com".into());
        assert_eq!(a.fake(&v), a.fake(&v.clone()));
        assert_ne!(
            a.fake(&v),
            a.fake(&Bson::String("someone2@example.com".into()))
        );
        assert_ne!(
            a.fake(&v),
            b.fake(&v),
            "another export, another key, other fakes"
        );
        // The type is part of the original: 5 and 5L are different values.
        assert_ne!(
            bson::to_vec(&doc! {"v": a.fake(&Bson::Int32(5))}).unwrap(),
            bson::to_vec(&doc! {"v": a.fake(&Bson::Int64(5))}).unwrap()
        );
    }

    #[test]
    fn paths_reach_nested_fields_arrays_and_wildcards() {
        let r = redactor(&[
            "email",
            "address.*",
            "contacts.phone",
            "tags.0",
            "a.*.secret",
        ]);
        let mut d = doc! {
            "_id": 1,
            "email": "x@y.org",
            "address": { "street": "1 Road", "city": "Town", "geo": { "lat": 1.5, "lng": 2.5 }, "none": null },
            "contacts": [ { "phone": "555-0100", "name": "A" }, { "phone": "555-0101" }, "loose" ],
            "tags": ["keep0?", "keep1"],
            "a": { "x": { "secret": "s1", "open": "o" }, "y": { "secret": "s2" } },
            "name": "visible",
        };
        let n = r.apply(&mut d);
        assert_eq!(n, 1 + 4 + 2 + 1 + 2);
        assert_eq!(d.get_str("name").unwrap(), "visible");
        assert_eq!(d.get_i32("_id").unwrap(), 1);
        let addr = d.get_document("address").unwrap();
        assert!(addr.get_str("street").unwrap().starts_with("redacted-"));
        assert!(addr.get_document("geo").unwrap().get_f64("lat").unwrap() != 1.5);
        assert_eq!(addr.get("none"), Some(&Bson::Null));
        let contacts = d.get_array("contacts").unwrap();
        assert_eq!(contacts[2], Bson::String("loose".into()));
        let c0 = contacts[0].as_document().unwrap();
        assert_ne!(c0.get_str("phone").unwrap(), "555-0100");
        assert_eq!(c0.get_str("name").unwrap(), "A");
        let tags = d.get_array("tags").unwrap();
        assert_ne!(tags[0], Bson::String("keep0?".into()));
        assert_eq!(tags[1], Bson::String("keep1".into()));
        let a = d.get_document("a").unwrap();
        assert_eq!(a.get_document("x").unwrap().get_str("open").unwrap(), "o");
        assert_ne!(
            a.get_document("y").unwrap().get_str("secret").unwrap(),
            "s2"
        );
        // Paths that lead nowhere change nothing.
        let mut plain = doc! { "email": 5, "address": "flat" };
        let before = plain.clone();
        assert_eq!(redactor(&["email.x", "nothere"]).apply(&mut plain), 0);
        assert_eq!(plain, before);
    }

    #[test]
    fn bad_paths_are_refused_with_the_reason() {
        assert!(RedactPath::parse("").is_err());
        assert!(RedactPath::parse("a..b")
            .unwrap_err()
            .contains("empty part"));
        assert!(RedactPath::parse("a.em*")
            .unwrap_err()
            .contains("whole field name"));
        assert!(RedactPath::parse("address.*").is_ok());
    }
}

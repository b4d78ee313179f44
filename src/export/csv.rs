//! `--format csv`: one line per document with the `--fields` chosen, after
//! a header line of the field names, quoted as RFC 4180 says (a value with
//! a comma, a double quote, a CR or an LF is enclosed in double quotes,
//! and its double quotes doubled); lines end with LF, as mongoexport's do.
//!
//! Fields are dot paths (`address.city`); a number part indexes an array
//! (`phones.0`). Values are written as:
//! - missing fields and null: nothing (an empty value);
//! - strings: as they are;
//! - int32, int64: the integer; double: the shortest decimal that reads
//!   back as the same double (`2.5`, `1`, `1e300`, `1.5e-7`; `NaN`,
//!   `Infinity`, `-Infinity` spelled out);
//!   decimal128: its decimal string;
//! - booleans: `true` / `false`;
//! - ObjectId: its 24 hex digits; dates: ISO 8601 in UTC with
//!   milliseconds (`2026-11-21T10:15:00.000Z`);
//! - everything else (documents, arrays, binary, timestamps, ...): relaxed
//!   Extended JSON (`{"$binary":{"base64":"AAE=","subType":"00"}}`).

use bson::{Bson, Document};

/// Splits `--fields` into paths, refusing empty ones.
pub fn parse_fields(fields: &[String]) -> Result<Vec<Vec<String>>, String> {
    if fields.is_empty() {
        return Err(
            "--format csv needs --fields naming the columns, e.g. --fields name,address.city"
                .into(),
        );
    }
    fields
        .iter()
        .map(|f| {
            let parts: Vec<String> = f.split('.').map(str::to_string).collect();
            if f.is_empty() || parts.iter().any(String::is_empty) {
                Err(format!(
                    "the field {f:?} of --fields is not a dot path like a.b"
                ))
            } else {
                Ok(parts)
            }
        })
        .collect()
}

/// The header line (with its newline).
pub fn header(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| quote(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The line for `doc` (with its newline).
pub fn row(doc: &Document, paths: &[Vec<String>]) -> String {
    let mut line = paths
        .iter()
        .map(|p| quote(&render(lookup(doc, p))))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn lookup<'a>(doc: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    let mut cur = doc.get(first)?;
    for part in rest {
        cur = match cur {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn render(value: Option<&Bson>) -> String {
    match value {
        None | Some(Bson::Null) => String::new(),
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::Int32(n)) => n.to_string(),
        Some(Bson::Int64(n)) => n.to_string(),
        Some(Bson::Double(f)) if f.is_nan() => "NaN".into(),
        Some(Bson::Double(f)) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        // Plain notation where it stays short, exponent notation beyond.
        Some(Bson::Double(f)) if *f == 0.0 || (1e-5..1e16).contains(&f.abs()) => f.to_string(),
        Some(Bson::Double(f)) => format!("{f:e}"),
        Some(Bson::Decimal128(d)) => d.to_string(),
        Some(Bson::Boolean(b)) => b.to_string(),
        Some(Bson::ObjectId(o)) => o.to_hex(),
        Some(Bson::DateTime(d)) => {
            match chrono::DateTime::from_timestamp_millis(d.timestamp_millis()) {
                Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                None => Bson::DateTime(*d).into_relaxed_extjson().to_string(),
            }
        }
        Some(other) => other.clone().into_relaxed_extjson().to_string(),
    }
}

fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn values_are_rendered_and_quoted_as_documented() {
        let fields = [
            "name",
            "address.city",
            "n",
            "f",
            "big",
            "ok",
            "id",
            "when",
            "nested",
            "phones.1",
            "gone",
            "nil",
        ]
        .map(str::to_string);
        let paths = parse_fields(&fields).unwrap();
        let oid = bson::oid::ObjectId::parse_str("64b7f0a1c2d3e4f5a6b7c8d9").unwrap();
        let d = doc! {
            "name": "Doe, \"JD\"\nJane",
            "address": { "city": "Zürich" },
            "n": 42_i64, "f": 2.5, "big": 1e300, "ok": true, "id": oid,
            "when": bson::DateTime::from_millis(1_700_000_000_123),
            "nested": { "a": [1, "x"] },
            "phones": ["111", "222"],
            "nil": null,
        };
        assert_eq!(
            header(&fields),
            "name,address.city,n,f,big,ok,id,when,nested,phones.1,gone,nil\n"
        );
        assert_eq!(
            row(&d, &paths),
            "\"Doe, \"\"JD\"\"\nJane\",Zürich,42,2.5,1e300,true,64b7f0a1c2d3e4f5a6b7c8d9,2023-11-14T22:13:20.123Z,\"{\"\"a\"\":[1,\"\"x\"\"]}\",222,,\n"
        );
        assert_eq!(render(Some(&Bson::Double(f64::NAN))), "NaN");
        assert_eq!(render(Some(&Bson::Double(f64::NEG_INFINITY))), "-Infinity");
        assert_eq!(render(Some(&Bson::Double(1.0))), "1");
        assert_eq!(quote("a\rb"), "\"a\rb\"");
    }

    #[test]
    fn fields_are_required_and_checked() {
        assert!(parse_fields(&[]).unwrap_err().contains("--fields"));
        assert!(parse_fields(&["a..b".to_string()]).is_err());
        assert!(parse_fields(&["".to_string()]).is_err());
    }
}

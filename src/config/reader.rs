//! Typed access to one TOML table with error reporting: every getter
//! records a precise error (wrong type, bad value) in the [`Sink`] and
//! returns `None`, so the caller carries on and the whole file is checked.

use std::ops::Range;
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::duration::{parse_with_units, DURATION_HINT};
use super::error::{join_path, Sink};
use super::suggest::{closest, or_list};

pub(crate) type Span = Option<Range<usize>>;

/// A value with the span of its text in the file.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// One table of the file (`[jobs.x]`, an inline table, a dotted-key table).
pub(crate) struct Section<'d> {
    table: &'d dyn TableLike,
    /// Dotted key path of the table, e.g. `jobs.prod-full`.
    pub path: String,
    /// Where to point for problems with the table as a whole (a missing
    /// key): its `[header]`, or its key for inline and dotted tables.
    pub anchor: Span,
}

impl<'d> Section<'d> {
    pub fn new(table: &'d dyn TableLike, path: String, anchor: Span) -> Self {
        Section {
            table,
            path,
            anchor,
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        join_path(&self.path, key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.table.get(key).is_some_and(|item| !item.is_none())
    }

    /// Span of `key` itself (not its value).
    pub fn key_span(&self, key: &str) -> Span {
        self.table.key(key).and_then(|k| k.span())
    }

    /// Span of the value of `key`, falling back to the key.
    pub fn value_span(&self, key: &str) -> Span {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.key_span(key))
    }

    /// The entries, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&'d str, &'d Item)> + 'd {
        self.table.iter()
    }

    /// A sub-table, or an error if `key` holds something else.
    pub fn table(&self, sink: &mut Sink<'_>, key: &str, what: &str) -> Option<Section<'d>> {
        let item = self.table.get(key)?;
        let path = self.key_path(key);
        match item.as_table_like() {
            Some(table) => {
                let anchor = item.span().or_else(|| self.key_span(key));
                Some(Section::new(table, path, anchor))
            }
            None => {
                let hint = item
                    .is_array_of_tables()
                    .then(|| format!("write [{path}.NAME] headers, not [[{path}]]"));
                sink.error(
                    self.value_span(key),
                    &path,
                    format!("expected {what}, found {}", type_name(item)),
                    hint,
                );
                None
            }
        }
    }

    /// Reports every key not in `known`, pointing at the key, with a
    /// "did you mean" for near misses and the valid keys otherwise.
    pub fn reject_unknown(&self, sink: &mut Sink<'_>, known: &[&str]) {
        self.reject_unknown_except(sink, known, &[]);
    }

    /// [`reject_unknown`](Self::reject_unknown) that leaves the `handled`
    /// keys alone: keys the caller rejects with a better message of its own
    /// (a literal `password`), and that must not be offered as valid keys.
    pub fn reject_unknown_except(&self, sink: &mut Sink<'_>, known: &[&str], handled: &[&str]) {
        for (key, _) in self.table.iter() {
            if known.contains(&key) || handled.contains(&key) {
                continue;
            }
            let hint = match closest(key, known.iter().copied()) {
                Some(near) => format!("did you mean {near:?}?"),
                None => format!("valid keys here: {}", known.join(", ")),
            };
            sink.error(
                self.key_span(key),
                &self.key_path(key),
                format!("unknown key {key:?}"),
                Some(hint),
            );
        }
    }

    /// Reports a missing required key at the table's header.
    pub fn missing(&self, sink: &mut Sink<'_>, key: &str, hint: Option<String>) {
        sink.error(
            self.anchor.clone(),
            &self.key_path(key),
            format!("missing required key {key:?}"),
            hint,
        );
    }

    fn value(&self, sink: &mut Sink<'_>, key: &str, expected: &str) -> Option<(&'d Value, Span)> {
        let item = self.table.get(key)?;
        match item.as_value() {
            Some(value) => Some((value, value.span().or_else(|| self.key_span(key)))),
            None => {
                self.wrong_type(sink, key, expected, type_name(item), None);
                None
            }
        }
    }

    fn wrong_type(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
        expected: &str,
        found: &str,
        hint: Option<String>,
    ) {
        sink.error(
            self.value_span(key),
            &self.key_path(key),
            format!("expected {expected}, found {found}"),
            hint,
        );
    }

    pub fn string(&self, sink: &mut Sink<'_>, key: &str) -> Option<Spanned<&'d str>> {
        let (value, span) = self.value(sink, key, "string")?;
        match value.as_str() {
            Some(s) => Some(Spanned { value: s, span }),
            None => {
                let hint = value
                    .as_integer()
                    .map(|n| format!("write it in quotes: {key} = \"{n}\""));
                self.wrong_type(sink, key, "string", value_type_name(value), hint);
                None
            }
        }
    }

    /// A required string: reports a missing key with `hint`.
    pub fn required_string(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
        hint: Option<String>,
    ) -> Option<Spanned<&'d str>> {
        if !self.contains(key) {
            self.missing(sink, key, hint);
            return None;
        }
        self.string(sink, key)
    }

    pub fn integer(&self, sink: &mut Sink<'_>, key: &str) -> Option<Spanned<i64>> {
        let (value, span) = self.value(sink, key, "integer")?;
        match value.as_integer() {
            Some(n) => Some(Spanned { value: n, span }),
            None => {
                let hint = value
                    .as_str()
                    .filter(|s| s.parse::<i64>().is_ok())
                    .map(|s| format!("remove the quotes: {key} = {s}"));
                self.wrong_type(sink, key, "integer", value_type_name(value), hint);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn integer_in(&self, sink: &mut Sink<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let n = self.integer(sink, key)?;
        if (min..=max).contains(&n.value) {
            return Some(n.value);
        }
        sink.error(
            n.span,
            &self.key_path(key),
            format!("{key} = {} is out of range {min}-{max}", n.value),
            None,
        );
        None
    }

    /// A number: a TOML float, or an integer (so `factor = 2` is accepted
    /// as readily as `factor = 2.0`).
    pub fn number(&self, sink: &mut Sink<'_>, key: &str) -> Option<Spanned<f64>> {
        let (value, span) = self.value(sink, key, "number")?;
        let number = match value {
            Value::Float(f) => Some(*f.value()),
            // Precision is lost only far beyond any sensible setting, which
            // the caller's range check rejects anyway.
            Value::Integer(n) => Some(*n.value() as f64),
            _ => None,
        };
        if let Some(n) = number {
            return Some(Spanned { value: n, span });
        }
        let hint = value
            .as_str()
            .filter(|s| s.parse::<f64>().is_ok_and(f64::is_finite))
            .map(|s| format!("remove the quotes: {key} = {s}"));
        self.wrong_type(sink, key, "number", value_type_name(value), hint);
        None
    }

    pub fn boolean(&self, sink: &mut Sink<'_>, key: &str) -> Option<bool> {
        let (value, _) = self.value(sink, key, "boolean")?;
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                let hint = format!("write {key} = true or {key} = false, without quotes");
                self.wrong_type(sink, key, "boolean", value_type_name(value), Some(hint));
                None
            }
        }
    }

    /// An array of strings. Each non-string element is reported; the
    /// strings are returned anyway (with `false`) so they get checked too.
    pub fn strings(&self, sink: &mut Sink<'_>, key: &str) -> Option<(Vec<Spanned<&'d str>>, bool)> {
        let (value, _) = self.value(sink, key, "array of strings")?;
        let Some(array) = value.as_array() else {
            let hint = value
                .as_str()
                .map(|s| format!("write a list: {key} = [{s:?}]"));
            self.wrong_type(sink, key, "array of strings", value_type_name(value), hint);
            return None;
        };
        let mut out = Vec::new();
        let mut all_strings = true;
        for element in array.iter() {
            match element.as_str() {
                Some(s) => out.push(Spanned {
                    value: s,
                    span: element.span(),
                }),
                None => {
                    all_strings = false;
                    sink.error(
                        element.span(),
                        &self.key_path(key),
                        format!("expected string, found {}", value_type_name(element)),
                        None,
                    );
                }
            }
        }
        Some((out, all_strings))
    }

    /// A duration string; `units` restricts the units allowed (letters).
    pub fn duration(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
        units: &str,
    ) -> Option<Spanned<Duration>> {
        let (value, span) = self.value(sink, key, "string")?;
        let Some(text) = value.as_str() else {
            let hint = match value.as_integer() {
                Some(n) => format!("durations are quoted, with a unit: {key} = \"{n}s\""),
                None => DURATION_HINT.to_string(),
            };
            self.wrong_type(sink, key, "string", value_type_name(value), Some(hint));
            return None;
        };
        let path = self.key_path(key);
        match parse_with_units(text) {
            Ok((duration, used)) => {
                if let Some(bad) = used.iter().find(|u| !units.contains(**u)) {
                    let allowed: Vec<String> = units.chars().map(|c| c.to_string()).collect();
                    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                    sink.error(
                        span,
                        &path,
                        format!("{key} does not take the unit \"{bad}\" in {text:?}"),
                        Some(format!("use {}", or_list(&allowed))),
                    );
                    return None;
                }
                Some(Spanned {
                    value: duration,
                    span,
                })
            }
            Err(reason) => {
                sink.error(
                    span,
                    &path,
                    format!("invalid duration {text:?}: {reason}"),
                    Some(DURATION_HINT.to_string()),
                );
                None
            }
        }
    }

    /// A string that must be one of `names`, converted with `from_name`.
    pub fn choice<T>(
        &self,
        sink: &mut Sink<'_>,
        key: &str,
        what: &str,
        names: &[&str],
        from_name: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let s = self.string(sink, key)?;
        if let Some(value) = from_name(s.value) {
            return Some(value);
        }
        let hint = closest(s.value, names.iter().copied()).map(|n| format!("did you mean {n:?}?"));
        sink.error(
            s.span,
            &self.key_path(key),
            format!("invalid {what} {:?} (expected {})", s.value, or_list(names)),
            hint,
        );
        None
    }
}

/// TOML type names as sysadmins know them ("table", not "inline table").
pub(crate) fn type_name(item: &Item) -> &'static str {
    match item {
        Item::Value(value) => value_type_name(value),
        other => other.type_name(),
    }
}

fn value_type_name(value: &Value) -> &'static str {
    match value {
        Value::InlineTable(_) => "table",
        other => other.type_name(),
    }
}

//! The projection engine behind find's `projection` and the aggregation
//! stages `$project`, `$addFields`, `$set` and `$unset`.
//!
//! Parsing follows the server's `projection_parser.cpp`: which spec is an
//! inclusion or an exclusion, `_id`'s special standing, path collisions and
//! their error codes. Applying follows `projection_node.cpp`: included and
//! excluded paths are applied walking the input document (so its field
//! order is kept, arrays are traversed element by element), then computed
//! fields are evaluated against the original document and set in place or
//! appended.

use bson::{Bson, Document};

use super::field_path;
use crate::aggregate::{is_expression_name, parse_expression, Expression};
use crate::compare::{is_number, render, to_f64, truthy, type_name};
use crate::error::{CmdResult, CommandError};
use crate::matcher::Matcher;

/// Who parses a projection: the rules differ slightly between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// `find`: allows `$slice`/`$elemMatch` and an empty projection.
    Find,
    /// `$project`.
    Project,
    /// `$addFields`/`$set`: every value is an expression; nothing is removed.
    AddFields,
}

#[derive(Debug, Clone)]
enum Node {
    Include,
    Exclude,
    Computed(Expression),
    /// find's `$slice`: `(skip, limit)`; a `None` skip takes from the front
    /// (or, for a negative limit, from the back).
    Slice(Option<i64>, i64),
    ElemMatch(Box<Matcher>),
    Children(Vec<(String, Node)>),
}

impl Node {
    fn has_computed(&self) -> bool {
        match self {
            Node::Computed(_) => true,
            Node::Children(c) => c.iter().any(|(_, n)| n.has_computed()),
            _ => false,
        }
    }
}

/// A parsed projection tree.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    root: Vec<(String, Node)>,
    inclusion: bool,
    add_fields: bool,
}

#[derive(Default)]
struct Ctx {
    inclusion: Option<bool>,
    id_specified: bool,
    id_included: bool,
    has_slice: bool,
    has_elem_match: bool,
}

impl Projection {
    pub(crate) fn parse(spec: &Document, kind: Kind) -> CmdResult<Projection> {
        if spec.is_empty() && kind == Kind::Project {
            return Err(CommandError::new(
                51272,
                "projection specification must have at least one field",
            ));
        }
        let mut ctx = Ctx::default();
        let mut root = Vec::new();
        for (key, value) in spec {
            ctx.id_specified |= key == "_id" || key.starts_with("_id.");
            parse_element(&mut ctx, kind, key, value, true, &mut root)?;
        }
        if kind == Kind::AddFields {
            return Ok(Projection {
                root,
                inclusion: true,
                add_fields: true,
            });
        }
        let inclusion = ctx.inclusion.unwrap_or(if ctx.has_slice {
            ctx.id_included
        } else {
            ctx.has_elem_match || ctx.id_included
        });
        if inclusion && !ctx.id_specified {
            root.insert(0, ("_id".to_string(), Node::Include));
        }
        if !inclusion && ctx.id_included {
            root.retain(|(k, _)| k != "_id");
        }
        Ok(Projection {
            root,
            inclusion,
            add_fields: false,
        })
    }

    pub(crate) fn apply(&self, doc: &Document) -> Document {
        let mut out = if self.add_fields {
            doc.clone()
        } else {
            project_doc(&self.root, doc, self.inclusion)
        };
        if self.root.iter().any(|(_, n)| n.has_computed()) {
            apply_expressions(&self.root, doc, &mut out, self.inclusion);
        }
        out
    }
}

fn parse_element(
    ctx: &mut Ctx,
    kind: Kind,
    key: &str,
    value: &Bson,
    top: bool,
    parent: &mut Vec<(String, Node)>,
) -> CmdResult<()> {
    // $addFields has no positional syntax: such keys fail as field paths.
    let positional = kind != Kind::AddFields && (key.ends_with(".$") || key == "$");
    if positional && kind != Kind::Find {
        return Err(CommandError::new(
            31324,
            "Cannot use positional projection in aggregation projection",
        ));
    }
    if kind != Kind::AddFields && key.contains(".$.") {
        return Err(CommandError::new(
            31394,
            "As of 4.4, it's illegal to specify positional operator in the middle of a path.Positional \
             projection may only be used at the end, for example: a.b.$. If the query previously used a form \
             like a.b.$.d, remove the parts following the '$' and the results will be equivalent.",
        ));
    }
    if positional {
        field_path(key.strip_suffix(".$").unwrap_or(key))?;
        return Err(CommandError::new(
            37,
            "positional projection is not supported by mongo-testserver",
        ));
    }
    let is_id = top && key == "_id";
    let node = match value {
        Bson::Document(sub) => return parse_sub_object(ctx, kind, key, sub, top, parent),
        _ if kind == Kind::AddFields => Node::Computed(parse_expression(value)?),
        Bson::Boolean(_)
        | Bson::Int32(_)
        | Bson::Int64(_)
        | Bson::Double(_)
        | Bson::Decimal128(_) => {
            let include = truthy(value);
            if !is_id {
                let clash = ctx.inclusion.is_some_and(|i| i != include);
                if clash && include {
                    return Err(CommandError::new(
                        31253,
                        format!("Cannot do inclusion on field {key} in exclusion projection"),
                    ));
                }
                if clash {
                    return Err(CommandError::new(
                        31254,
                        format!("Cannot do exclusion on field {key} in inclusion projection"),
                    ));
                }
                ctx.inclusion = Some(include);
            } else {
                // {_id: 0} alone leaves the default: an exclusion.
                ctx.id_included |= include;
            }
            if include {
                Node::Include
            } else {
                Node::Exclude
            }
        }
        _ => {
            if ctx.inclusion == Some(false) {
                let shown = format!("{key}: {}", render(value));
                return Err(CommandError::new(
                    31310,
                    format!("Cannot use an expression {shown} in an exclusion projection"),
                ));
            }
            ctx.inclusion = Some(true);
            Node::Computed(parse_expression(value)?)
        }
    };
    add_node(parent, &field_path(key)?, node)
}

fn parse_sub_object(
    ctx: &mut Ctx,
    kind: Kind,
    key: &str,
    sub: &Document,
    top: bool,
    parent: &mut Vec<(String, Node)>,
) -> CmdResult<()> {
    let path = field_path(key)?;
    if let (1, Some((op, arg))) = (sub.len(), sub.iter().next()) {
        if op.starts_with('$') {
            let node = match (op.as_str(), kind) {
                ("$slice", Kind::Find) => {
                    ctx.has_slice = true;
                    parse_find_slice(arg)?
                }
                ("$elemMatch", Kind::Find) => {
                    if !matches!(arg, Bson::Document(_)) {
                        let msg = format!(
                            "elemMatch: Invalid argument, object required, but got {}",
                            type_name(arg)
                        );
                        return Err(CommandError::new(31274, msg));
                    }
                    if path.len() > 1 || !top {
                        return Err(CommandError::new(
                            31275,
                            "Cannot use $elemMatch projection on a nested field.",
                        ));
                    }
                    ctx.has_elem_match = true;
                    let mut filter = Document::new();
                    filter.insert(key, sub.clone());
                    Node::ElemMatch(Box::new(Matcher::new(&filter)?))
                }
                ("$elemMatch", _) => {
                    return Err(CommandError::new(
                        168,
                        "Cannot use $elemMatch in this context",
                    ));
                }
                _ if is_expression_name(op) => {
                    if ctx.inclusion == Some(false) && kind != Kind::AddFields {
                        let msg = "Cannot use expression other than $meta in exclusion projection";
                        return Err(CommandError::new(31252, msg));
                    }
                    ctx.inclusion = Some(true);
                    Node::Computed(parse_expression(&Bson::Document(sub.clone()))?)
                }
                _ => return Err(CommandError::new(31325, format!("Unknown expression {op}"))),
            };
            return add_node(parent, &path, node);
        }
    }
    if sub.is_empty() {
        if kind == Kind::AddFields {
            return add_node(
                parent,
                &path,
                Node::Computed(parse_expression(&Bson::Document(Document::new()))?),
            );
        }
        let msg = "An empty sub-projection is not a valid value. Found empty object at path";
        return Err(CommandError::new(51270, msg));
    }
    let mut children = Vec::new();
    for (k, v) in sub {
        parse_element(ctx, kind, k, v, false, &mut children)?;
    }
    // Merge into whatever the path already holds ({a: {b: 1}, "a.c": 1}).
    for (k, node) in children {
        let mut full = path.clone();
        full.extend(field_path(&k)?);
        add_node(parent, &full, node)?;
    }
    Ok(())
}

fn parse_find_slice(arg: &Bson) -> CmdResult<Node> {
    let as_int = |v: &Bson| match v {
        Bson::Int32(i) => i64::from(*i),
        _ => to_f64(v)
            .map_or(0, |f| f as i64)
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX)),
    };
    match arg {
        _ if is_number(arg) => Ok(Node::Slice(None, as_int(arg))),
        Bson::Array(items) => {
            let [skip, limit] = items.as_slice() else {
                return Err(CommandError::new(
                    31272,
                    "$slice array argument should be of form [skip, limit]",
                ));
            };
            for (v, code, what) in [(skip, 31257, "skip"), (limit, 31258, "limit")] {
                if !is_number(v) {
                    let msg = format!(
                        "$slice expects the {what} argument to be a number, got {}",
                        type_name(v)
                    );
                    return Err(CommandError::new(code, msg));
                }
            }
            if as_int(limit) <= 0 {
                let msg = format!("$slice limit must be positive, got {}", as_int(limit));
                return Err(CommandError::new(31259, msg));
            }
            Ok(Node::Slice(Some(as_int(skip)), as_int(limit)))
        }
        _ => Err(CommandError::new(
            31273,
            "$slice only supports numbers and [skip, limit] arrays",
        )),
    }
}

/// Inserts `node` at `path` below `parent`, refusing paths that collide
/// with an existing leaf.
fn add_node(parent: &mut Vec<(String, Node)>, path: &[String], node: Node) -> CmdResult<()> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let existing = parent.iter_mut().find(|(k, _)| k == first);
    if rest.is_empty() {
        if existing.is_some() {
            return Err(CommandError::new(
                31250,
                format!("Path collision at {}", path.join(".")),
            ));
        }
        parent.push((first.clone(), node));
        return Ok(());
    }
    match existing {
        Some((_, Node::Children(children))) => add_node(children, rest, node),
        Some(_) => Err(CommandError::new(
            31249,
            format!(
                "Path collision at {} remaining portion {}",
                path.join("."),
                rest.join(".")
            ),
        )),
        None => {
            let mut children = Vec::new();
            add_node(&mut children, rest, node)?;
            parent.push((first.clone(), Node::Children(children)));
            Ok(())
        }
    }
}

/// The include/exclude pass, walking the input so its field order is kept.
fn project_doc(nodes: &[(String, Node)], doc: &Document, inclusion: bool) -> Document {
    let mut out = Document::new();
    for (key, value) in doc {
        let node = nodes.iter().find(|(k, _)| k == key).map(|(_, n)| n);
        let projected = match node {
            None | Some(Node::Computed(_)) => (!inclusion).then(|| value.clone()),
            Some(Node::Include) => Some(value.clone()),
            Some(Node::Exclude) => None,
            Some(Node::Children(children)) => project_value(children, value, inclusion),
            Some(Node::Slice(skip, limit)) => Some(slice(value, *skip, *limit)),
            Some(Node::ElemMatch(m)) => first_match(m, key, value),
        };
        if let Some(v) = projected {
            out.insert(key.clone(), v);
        }
    }
    out
}

fn project_value(children: &[(String, Node)], value: &Bson, inclusion: bool) -> Option<Bson> {
    match value {
        Bson::Document(d) => Some(Bson::Document(project_doc(children, d, inclusion))),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|v| project_value(children, v, inclusion))
                .collect(),
        )),
        // {"a.b": 1} says nothing about a scalar `a`: inclusion drops it,
        // exclusion keeps it.
        _ => (!inclusion).then(|| value.clone()),
    }
}

fn slice(value: &Bson, skip: Option<i64>, limit: i64) -> Bson {
    let Bson::Array(items) = value else {
        return value.clone();
    };
    let len = items.len() as i64;
    let (start, count) = match skip {
        None if limit >= 0 => (0, limit),
        None => ((len + limit).max(0), len),
        Some(s) if s < 0 => ((len + s).max(0), limit),
        Some(s) => (s.min(len), limit),
    };
    let start = usize::try_from(start).unwrap_or(0);
    let count = usize::try_from(count).unwrap_or(0);
    Bson::Array(items.iter().skip(start).take(count).cloned().collect())
}

/// find's `$elemMatch` projection: the first matching element, or nothing.
fn first_match(matcher: &Matcher, key: &str, value: &Bson) -> Option<Bson> {
    let Bson::Array(items) = value else {
        return None;
    };
    items
        .iter()
        .find(|item| {
            let mut probe = Document::new();
            probe.insert(key, Bson::Array(vec![(*item).clone()]));
            matcher.matches(&probe)
        })
        .map(|item| Bson::Array(vec![item.clone()]))
}

/// The computed-field pass (`applyExpressions`): expressions see the
/// original document; a computed path through a scalar replaces it with a
/// document, through an array applies to each element.
fn apply_expressions(
    nodes: &[(String, Node)],
    root: &Document,
    out: &mut Document,
    inclusion: bool,
) {
    for (key, node) in nodes {
        match node {
            Node::Computed(expr) => match expr.evaluate(root) {
                Some(v) => {
                    out.insert(key.clone(), v);
                }
                None => {
                    out.remove(key);
                }
            },
            Node::Children(children) if node.has_computed() => {
                match expressions_into(children, root, out.get(key), inclusion) {
                    Some(v) => out.insert(key.clone(), v),
                    None => out.remove(key),
                };
            }
            _ => {}
        }
    }
}

fn expressions_into(
    children: &[(String, Node)],
    root: &Document,
    value: Option<&Bson>,
    inclusion: bool,
) -> Option<Bson> {
    match value {
        Some(Bson::Document(d)) => {
            let mut d = d.clone();
            apply_expressions(children, root, &mut d, inclusion);
            Some(Bson::Document(d))
        }
        Some(Bson::Array(items)) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|v| expressions_into(children, root, Some(v), inclusion))
                .collect(),
        )),
        _ => {
            let mut d = Document::new();
            apply_expressions(children, root, &mut d, inclusion);
            Some(Bson::Document(d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    /// `projects! { kind: doc, spec => expected; ... }`
    macro_rules! projects {
        ($($kind:ident: $d:expr, $spec:expr => $want:expr;)*) => {
            $({
                let got = Projection::parse(&$spec, Kind::$kind).unwrap().apply(&$d);
                assert_eq!(got, $want, "spec {}", $spec);
                // Field order is part of the contract, not just the contents.
                assert_eq!(got.keys().collect::<Vec<_>>(), $want.keys().collect::<Vec<_>>());
            })*
        };
    }

    /// `rejects! { kind: spec => code, message; ... }`
    macro_rules! rejects {
        ($($kind:ident: $spec:expr => $code:expr, $msg:expr;)*) => {
            $({
                let e = Projection::parse(&$spec, Kind::$kind).unwrap_err();
                assert_eq!((e.code, e.errmsg.as_str()), ($code, $msg), "spec {}", $spec);
            })*
        };
    }

    #[test]
    fn inclusion_exclusion_and_id() {
        let d = doc! {"b": 2, "_id": 7, "a": 1, "c": {"x": 1, "y": 2}};
        projects! {
            Find: d, doc! {"a": 1} => doc! {"_id": 7, "a": 1};
            Find: d, doc! {"a": 1, "b": true} => doc! {"b": 2, "_id": 7, "a": 1};
            Find: d, doc! {"a": 1, "_id": 0} => doc! {"a": 1};
            Find: d, doc! {"a": 0} => doc! {"b": 2, "_id": 7, "c": {"x": 1, "y": 2}};
            Find: d, doc! {"a": 0, "_id": 0} => doc! {"b": 2, "c": {"x": 1, "y": 2}};
            Find: d, doc! {"a": false, "_id": 1} => doc! {"b": 2, "_id": 7, "c": {"x": 1, "y": 2}};
            Find: d, doc! {"_id": 1} => doc! {"_id": 7};
            Find: d, doc! {"_id": 0} => doc! {"b": 2, "a": 1, "c": {"x": 1, "y": 2}};
            Find: d, doc! {"c.y": 1} => doc! {"_id": 7, "c": {"y": 2}};
            Find: d, doc! {"c": {"y": 1}} => doc! {"_id": 7, "c": {"y": 2}};
            Find: d, doc! {"c.y": 0} => doc! {"b": 2, "_id": 7, "a": 1, "c": {"x": 1}};
            Find: d, doc! {"missing": 1} => doc! {"_id": 7};
            Find: d, doc! {"a": 1.5, "_id": 0.0} => doc! {"a": 1};
            Project: d, doc! {"a": 1} => doc! {"_id": 7, "a": 1};
        }
    }

    #[test]
    fn dotted_paths_through_arrays_and_scalars() {
        let d = doc! {"_id": 1, "a": [{"b": 1, "c": 2}, {"c": 3}, 5, [{"b": 4}]], "s": 9};
        projects! {
            Find: d, doc! {"a.b": 1} => doc! {"_id": 1, "a": [{"b": 1}, {}, [{"b": 4}]]};
            Find: d, doc! {"a.b": 0} => doc! {"_id": 1, "a": [{"c": 2}, {"c": 3}, 5, [{}]], "s": 9};
            Find: d, doc! {"s.x": 1, "_id": 0} => doc! {};
            Find: d, doc! {"s.x": 0, "_id": 0} => d.clone().into_iter().filter(|(k, _)| k != "_id").collect::<Document>();
        }
    }

    #[test]
    fn computed_fields() {
        let d = doc! {"_id": 1, "a": {"b": 5}, "c": [{"d": 1}, {"d": 2}, 3]};
        projects! {
            Find: d, doc! {"x": "$a.b"} => doc! {"_id": 1, "x": 5};
            Find: d, doc! {"x": "$c.d", "a": 1} => doc! {"_id": 1, "a": {"b": 5}, "x": [1, 2]};
            Find: d, doc! {"x": {"$literal": "$a"}, "_id": 0} => doc! {"x": "$a"};
            Find: d, doc! {"x": "lit", "y": null, "_id": 0} => doc! {"x": "lit", "y": null};
            Find: d, doc! {"x": "$nope", "_id": 0} => doc! {};
            Project: d, doc! {"a.z": "$a.b"} => doc! {"_id": 1, "a": {"z": 5}};
            Project: d, doc! {"a": "$$ROOT.a.b", "_id": 0} => doc! {"a": 5};
            Project: doc! {"s": 1}, doc! {"s.t": {"$literal": 2}} => doc! {"s": {"t": 2}};
            AddFields: d, doc! {"a.e": 6, "z": "$a.b"} => doc! {"_id": 1, "a": {"b": 5, "e": 6}, "c": [{"d": 1}, {"d": 2}, 3], "z": 5};
            AddFields: d, doc! {"_id": "$a.b", "a": {"b": 0}} => doc! {"_id": 5, "a": {"b": 0}, "c": [{"d": 1}, {"d": 2}, 3]};
            AddFields: d, doc! {"c.k": true} => doc! {"_id": 1, "a": {"b": 5}, "c": [{"d": 1, "k": true}, {"d": 2, "k": true}, {"k": true}]};
            AddFields: d, doc! {"e": {}} => doc! {"_id": 1, "a": {"b": 5}, "c": [{"d": 1}, {"d": 2}, 3], "e": {}};
        }
    }

    #[test]
    fn find_only_slice_and_elem_match() {
        let d = doc! {"_id": 1, "a": [1, 2, 3, 4], "b": "x", "o": [{"k": 1}, {"k": 2}, {"k": 2}]};
        projects! {
            Find: d, doc! {"a": {"$slice": 2}} => doc! {"_id": 1, "a": [1, 2], "b": "x", "o": [{"k": 1}, {"k": 2}, {"k": 2}]};
            Find: d, doc! {"a": {"$slice": -1}, "_id": 1} => doc! {"_id": 1, "a": [4]};
            Find: d, doc! {"a": {"$slice": [1, 2]}, "b": 1} => doc! {"_id": 1, "a": [2, 3], "b": "x"};
            Find: d, doc! {"a": {"$slice": [-2, 5]}, "b": 1} => doc! {"_id": 1, "a": [3, 4], "b": "x"};
            Find: d, doc! {"o": {"$elemMatch": {"k": 2}}} => doc! {"_id": 1, "o": [{"k": 2}]};
            Find: d, doc! {"o": {"$elemMatch": {"k": 9}}, "b": 1} => doc! {"_id": 1, "b": "x"};
        }
    }

    #[test]
    fn parse_errors_match_mongodb() {
        let middle = "As of 4.4, it's illegal to specify positional operator in the middle of a \
                      path.Positional projection may only be used at the end, for example: a.b.$. \
                      If the query previously used a form like a.b.$.d, remove the parts following \
                      the '$' and the results will be equivalent.";
        rejects! {
            Find: doc! {"foo": true, "bar": false} => 31254, "Cannot do exclusion on field bar in inclusion projection";
            Find: doc! {"foo": 0, "bar": 1} => 31253, "Cannot do inclusion on field bar in exclusion projection";
            Find: doc! {"a": 0, "b": "x"} => 31310, "Cannot use an expression b: \"x\" in an exclusion projection";
            Find: doc! {"a": 0, "b": {"$literal": 1}} => 31252, "Cannot use expression other than $meta in exclusion projection";
            Find: doc! {"a": 1, "a.b": 1} => 31249, "Path collision at a.b remaining portion b";
            Find: doc! {"a.b": 1, "a": 1} => 31250, "Path collision at a";
            Find: doc! {"a": {}} => 51270, "An empty sub-projection is not a valid value. Found empty object at path";
            Find: doc! {"": 1} => 40352, "FieldPath cannot be constructed with empty string";
            Find: doc! {"v..d": 1} => 15998, "FieldPath field names may not be empty strings.";
            Find: doc! {"$v": 1} => 16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.";
            Find: doc! {"v.$.foo": 1} => 31394, middle;
            Find: doc! {"a": {"$foo": 1}} => 31325, "Unknown expression $foo";
            Find: doc! {"a": {"$slice": [1]}} => 31272, "$slice array argument should be of form [skip, limit]";
            Find: doc! {"a": {"$slice": [1, 0]}} => 31259, "$slice limit must be positive, got 0";
            Find: doc! {"a": {"$slice": "x"}} => 31273, "$slice only supports numbers and [skip, limit] arrays";
            Find: doc! {"a.b": {"$elemMatch": {}}} => 31275, "Cannot use $elemMatch projection on a nested field.";
            Find: doc! {"a": {"$elemMatch": 1}} => 31274, "elemMatch: Invalid argument, object required, but got int";
            Find: doc! {"a.$": 1} => 37, "positional projection is not supported by mongo-testserver";
            Project: doc! {} => 51272, "projection specification must have at least one field";
            Project: doc! {"v.$": 1} => 31324, "Cannot use positional projection in aggregation projection";
            Project: doc! {"a": {"$elemMatch": {}}} => 168, "Cannot use $elemMatch in this context";
            AddFields: doc! {"$a": 1} => 16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.";
        }
    }
}

//! Parsing an operator-style update (`{$set: {...}, $inc: {...}}`) into the
//! list of field operations in the order the server applies them.
//!
//! This mirrors `UpdateDriver::parse` + `UpdateObjectNode::parseAndMerge`:
//! operators are read in document order, each field's argument is validated
//! ("init") before it is merged into a path tree, the tree reports
//! conflicting paths, and the tree is then walked with the children of every
//! node ordered by `pathsupport::cmpPathsAndArrayIndexes` (5.0+: strings
//! lexicographically, numeric names numerically). Legacy `$v: 1` oplog
//! entries are walked in plain lexicographic order, as 4.4 did.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::args::{self, Op};
use super::value::{codes, err, fmt_elem, type_name};
use crate::error::{codes as ec, CmdResult};

/// Operator names the server knows (`modifier_table.cpp`).
pub(crate) const MODIFIERS: [&str; 15] = [
    "$addToSet",
    "$bit",
    "$currentDate",
    "$inc",
    "$max",
    "$min",
    "$mul",
    "$pop",
    "$pull",
    "$pullAll",
    "$push",
    "$rename",
    "$set",
    "$setOnInsert",
    "$unset",
];

/// `validateMod` in `update_driver.cpp`.
pub(crate) fn validate_modifier(name: &str, arg: &Bson) -> CmdResult<()> {
    if !MODIFIERS.contains(&name) {
        return Err(err(
            ec::FAILED_TO_PARSE,
            format!(
                "Unknown modifier: {name}. Expected a valid update modifier or pipeline-style \
                 update specified as an array"
            ),
        ));
    }
    if !matches!(arg, Bson::Document(_)) {
        return Err(err(
            ec::FAILED_TO_PARSE,
            format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: \
                 {{<field>: ...}}}} not {{{}}}",
                type_name(arg),
                fmt_elem(name, arg)
            ),
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// 5.0+: `cmpPathsAndArrayIndexes`.
    Modern,
    /// 4.4 and earlier: plain byte order (used to replay `$v: 1` entries).
    Legacy,
}

#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub(crate) parts: Vec<String>,
    pub(crate) op: Op,
}

impl Leaf {
    pub(crate) fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

/// `pathsupport::cmpPathsAndArrayIndexes`: numeric-looking names (no leading
/// zero) order by length first, everything else byte-wise.
pub(crate) fn cmp_components(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| {
        let bytes = s.as_bytes();
        !bytes.is_empty() && bytes[0].is_ascii_digit() && !(bytes[0] == b'0' && bytes.len() > 1)
    };
    if !numeric(a) || !numeric(b) {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

enum TreeNode {
    Inner(Vec<(String, TreeNode)>),
    Leaf(usize),
}

struct Tree {
    order: Order,
    root: Vec<(String, TreeNode)>,
    leaves: Vec<Leaf>,
}

fn find(children: &[(String, TreeNode)], order: Order, name: &str) -> Result<usize, usize> {
    children.binary_search_by(|(n, _)| match order {
        Order::Modern => cmp_components(n, name),
        Order::Legacy => n.as_bytes().cmp(name.as_bytes()),
    })
}

fn conflict(parts: &[String], upto: usize) -> crate::error::CommandError {
    err(
        ec::CONFLICTING_UPDATE_OPERATORS,
        format!(
            "Updating the path '{}' would create a conflict at '{}'",
            parts.join("."),
            parts[..upto].join(".")
        ),
    )
}

impl Tree {
    /// The tree-building half of `parseAndMerge`.
    fn insert(&mut self, leaf: Leaf) -> CmdResult<()> {
        let order = self.order;
        let parts = leaf.parts.clone();
        let mut children = &mut self.root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match find(children, order, part) {
                Ok(pos) => {
                    if last {
                        return Err(conflict(&parts, parts.len()));
                    }
                    match &mut children[pos].1 {
                        TreeNode::Inner(grand) => children = grand,
                        TreeNode::Leaf(_) => return Err(conflict(&parts, i + 1)),
                    }
                }
                Err(pos) => {
                    if last {
                        children.insert(pos, (part.clone(), TreeNode::Leaf(self.leaves.len())));
                        self.leaves.push(leaf);
                        return Ok(());
                    }
                    children.insert(pos, (part.clone(), TreeNode::Inner(Vec::new())));
                    match &mut children[pos].1 {
                        TreeNode::Inner(grand) => children = grand,
                        TreeNode::Leaf(_) => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    fn walk(children: &[(String, TreeNode)], out: &mut Vec<usize>) {
        for (_, node) in children {
            match node {
                TreeNode::Inner(grand) => Self::walk(grand, out),
                TreeNode::Leaf(i) => out.push(*i),
            }
        }
    }
}

/// `FieldRef` parsing plus `fieldchecker::isUpdatable`.
fn split_path(path: &str) -> CmdResult<Vec<String>> {
    if path.is_empty() {
        return Err(err(
            ec::EMPTY_FIELD_NAME,
            "An empty update path is not valid.",
        ));
    }
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) {
        return Err(err(
            ec::EMPTY_FIELD_NAME,
            format!("The update path '{path}' contains an empty field name, which is not allowed."),
        ));
    }
    Ok(parts)
}

pub(crate) fn is_positional(p: &str) -> bool {
    p == "$"
}

pub(crate) fn is_array_filter(p: &str) -> bool {
    p.len() >= 3 && p.starts_with("$[") && p.ends_with(']')
}

/// The positional checks of `parseAndMerge`; returns whether the path uses `$`.
fn check_positional(parts: &[String]) -> CmdResult<bool> {
    let dotted = parts.join(".");
    let count = parts.iter().filter(|p| is_positional(p)).count();
    if count > 1 {
        return Err(err(
            ec::BAD_VALUE,
            format!("Too many positional (i.e. '$') elements found in path '{dotted}'"),
        ));
    }
    if parts.first().is_some_and(|p| is_positional(p)) {
        return Err(err(
            ec::BAD_VALUE,
            format!("Cannot have positional (i.e. '$') element in the first position in path '{dotted}'"),
        ));
    }
    Ok(count == 1)
}

/// Array filters (`$[]`, `$[id]`) are checked while the tree is built; we
/// have no `arrayFilters` to offer, so every identifier is unknown.
fn check_array_filters(parts: &[String]) -> CmdResult<()> {
    let dotted = parts.join(".");
    for (i, p) in parts.iter().enumerate() {
        if !is_array_filter(p) {
            continue;
        }
        if i == 0 {
            return Err(err(
                ec::BAD_VALUE,
                format!(
                    "Cannot have array filter identifier (i.e. '$[<id>]') element in the first \
                     position in path '{dotted}'"
                ),
            ));
        }
        let id = &p[2..p.len() - 1];
        if !id.is_empty() {
            return Err(err(
                ec::BAD_VALUE,
                format!("No array filter found for identifier '{id}' in path '{dotted}'"),
            ));
        }
        return Err(err(
            codes::NOT_IMPLEMENTED,
            format!("the all-positional operator '$[]' is not supported by this test server (path '{dotted}')"),
        ));
    }
    Ok(())
}

/// Parses the whole update; returns the leaves in application order.
pub(crate) fn parse(update: &Document, order: Order) -> CmdResult<Vec<Leaf>> {
    let mut tree = Tree {
        order,
        root: Vec::new(),
        leaves: Vec::new(),
    };
    let mut positional = false;
    for (modifier, arg) in update {
        validate_modifier(modifier, arg)?;
        let Bson::Document(fields) = arg else {
            continue;
        };
        for (path, value) in fields {
            positional |= parse_field(&mut tree, modifier, path, value)?;
        }
    }
    if positional {
        // We are never given the query's match details, which is exactly the
        // server's situation when the query did not match through an array.
        return Err(err(
            ec::BAD_VALUE,
            "The positional operator did not find the match needed from the query.",
        ));
    }
    let mut order_idx = Vec::new();
    Tree::walk(&tree.root, &mut order_idx);
    let mut slots: Vec<Option<Leaf>> = tree.leaves.into_iter().map(Some).collect();
    Ok(order_idx
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect())
}

fn parse_field(tree: &mut Tree, modifier: &str, path: &str, value: &Bson) -> CmdResult<bool> {
    let mut positional = false;
    let dest_path = if modifier == "$rename" {
        // The placeholder goes in first, so a conflict on the source path is
        // reported before anything about the destination.
        let parts = split_path(path)?;
        positional |= check_positional(&parts)?;
        check_array_filters(&parts)?;
        tree.insert(Leaf {
            parts,
            op: Op::RenameSource,
        })?;
        match value {
            Bson::String(to) => to.clone(),
            _ => {
                return Err(err(
                    ec::BAD_VALUE,
                    format!(
                        "The 'to' field for $rename must be a string: {}",
                        fmt_elem(path, value)
                    ),
                ))
            }
        }
    } else {
        path.to_string()
    };
    let parts = split_path(&dest_path)?;
    positional |= check_positional(&parts)?;
    let op = args::init_op(modifier, path, value)?;
    check_array_filters(&parts)?;
    tree.insert(Leaf { parts, op })?;
    Ok(positional)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn order_of(update: Document) -> Vec<String> {
        parse(&update, Order::Modern)
            .unwrap()
            .iter()
            .map(Leaf::dotted)
            .collect()
    }

    #[test]
    fn numeric_components_sort_numerically() {
        assert_eq!(cmp_components("2", "10"), Ordering::Less);
        assert_eq!(cmp_components("b", "a"), Ordering::Greater);
        assert_eq!(cmp_components("01", "1"), Ordering::Less);
        assert_eq!(
            order_of(doc! {"$set": {"a.10": 1, "a.2": 1, "b": 1}, "$inc": {"a.1x": 1, "Z": 1}}),
            ["Z", "a.2", "a.10", "a.1x", "b"]
        );
        let legacy: Vec<String> = parse(&doc! {"$set": {"a.10": 1, "a.2": 1}}, Order::Legacy)
            .unwrap()
            .iter()
            .map(Leaf::dotted)
            .collect();
        assert_eq!(legacy, ["a.10", "a.2"]);
    }

    #[test]
    fn conflicts_name_the_shorter_path() {
        let e = parse(&doc! {"$set": {"a": 1}, "$inc": {"a.b": 1}}, Order::Modern).unwrap_err();
        assert_eq!(e.code, 40);
        assert_eq!(
            e.errmsg,
            "Updating the path 'a.b' would create a conflict at 'a'"
        );
        let e = parse(&doc! {"$set": {"a.b": 1}, "$inc": {"a": 1}}, Order::Modern).unwrap_err();
        assert_eq!(
            e.errmsg,
            "Updating the path 'a' would create a conflict at 'a'"
        );
        let e = parse(
            &doc! {"$rename": {"a": "b"}, "$set": {"a.x": 1}},
            Order::Modern,
        )
        .unwrap_err();
        assert_eq!(
            e.errmsg,
            "Updating the path 'a.x' would create a conflict at 'a'"
        );
    }

    #[test]
    fn argument_errors() {
        let e = |u: Document| parse(&u, Order::Modern).unwrap_err();
        assert_eq!(
            e(doc! {"$inc": {"a": "x"}}).errmsg,
            "Cannot increment with non-numeric argument: {a: \"x\"}"
        );
        assert_eq!(
            e(doc! {"$pop": {"a": 2}}).errmsg,
            "$pop expects 1 or -1, found: 2"
        );
        assert_eq!(
            e(doc! {"$pop": {"a": "x"}}).errmsg,
            "Expected a number in: a: \"x\""
        );
        assert_eq!(
            e(doc! {"$rename": {"a": "a.b"}}).errmsg,
            "The source and target field for $rename must not be on the same path: a: \"a.b\""
        );
        assert_eq!(e(doc! {"$set": {"a..b": 1}}).code, 56);
        assert_eq!(e(doc! {"$foo": {"a": 1}}).code, 9);
        assert_eq!(
            e(doc! {"$set": 1}).errmsg,
            "Modifiers operate on fields but we found type int instead. For example: {$mod: \
             {<field>: ...}} not {$set: 1}"
        );
        assert_eq!(
            e(doc! {"$set": {"a.$": 1}}).errmsg,
            "The positional operator did not find the match needed from the query."
        );
        assert_eq!(
            e(doc! {"$set": {"a.$[x]": 1}}).errmsg,
            "No array filter found for identifier 'x' in path 'a.$[x]'"
        );
        assert_eq!(
            e(doc! {"$addToSet": {"a": {"$each": [], "b": 1}}}).errmsg,
            "Found unexpected fields after $each in $addToSet: { $each: [], b: 1 }"
        );
    }

    #[test]
    fn empty_operator_documents_are_allowed() {
        // 5.0+ treats {$set: {}} as a no-op instead of FailedToParse.
        assert!(parse(&doc! {"$set": {}}, Order::Modern).unwrap().is_empty());
    }
}

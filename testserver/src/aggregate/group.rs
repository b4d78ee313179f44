//! `$group`: parsing accumulator specs and folding each group's values
//! with `$sum`, `$avg`, `$min`, `$max`, `$first`, `$last`, `$push`,
//! `$addToSet` and `$count`, following the server's
//! `accumulation_statement.cpp` and `accumulator_*.cpp` (numeric widening,
//! null/missing handling, missing results reported as null).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::{parse_expression, Expression, Stage};
use crate::compare::{cmp_bson, decimal_sum, is_number, Num};
use crate::error::{CmdResult, CommandError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    Count,
}

pub(super) fn parse_group(spec: &Document) -> CmdResult<Stage> {
    let id = spec
        .get("_id")
        .ok_or_else(|| CommandError::new(15955, "a group specification must include an _id"))?;
    let id = parse_expression(id)?;
    let mut accumulators = Vec::new();
    for (field, value) in spec.iter().filter(|(k, _)| *k != "_id") {
        let acc = match value {
            Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => d,
            _ => {
                return Err(CommandError::new(
                    40234,
                    format!("The field '{field}' must be an accumulator object"),
                ))
            }
        };
        if field.contains('.') {
            return Err(CommandError::new(
                40235,
                format!("The field name '{field}' cannot contain '.'"),
            ));
        }
        if field.starts_with('$') {
            return Err(CommandError::new(
                40236,
                format!("The field name '{field}' cannot be an operator name"),
            ));
        }
        let [(op, arg)] = acc.iter().collect::<Vec<_>>()[..] else {
            return Err(CommandError::new(
                40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        };
        if matches!(arg, Bson::Array(_)) {
            return Err(CommandError::new(
                40237,
                format!("The {op} accumulator is a unary operator"),
            ));
        }
        let op = match op.as_str() {
            "$sum" => AccOp::Sum,
            "$avg" => AccOp::Avg,
            "$min" => AccOp::Min,
            "$max" => AccOp::Max,
            "$first" => AccOp::First,
            "$last" => AccOp::Last,
            "$push" => AccOp::Push,
            "$addToSet" => AccOp::AddToSet,
            "$count" if matches!(arg, Bson::Document(d) if d.is_empty()) => AccOp::Count,
            "$count" => {
                return Err(CommandError::bad_value(
                    "$count takes no arguments, i.e. $count:{}",
                ))
            }
            _ => {
                return Err(CommandError::new(
                    15952,
                    format!("unknown group operator '{op}'"),
                ))
            }
        };
        let expr = if op == AccOp::Count {
            Expression::Literal(Bson::Int32(1))
        } else {
            parse_expression(arg)?
        };
        accumulators.push((field.clone(), op, expr));
    }
    Ok(Stage::Group(id, accumulators))
}

/// `Bson` ordered by MongoDB's comparison, so equal group keys (1 and 1.0)
/// land in one group.
struct Key(Bson);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_bson(&self.0, &other.0)
    }
}

pub(super) fn group(
    docs: Vec<Document>,
    id: &Expression,
    accs: &[(String, AccOp, Expression)],
) -> Vec<Document> {
    // Groups come out in the order their first document arrived; mongod
    // leaves the order unspecified.
    let mut index: BTreeMap<Key, usize> = BTreeMap::new();
    let mut groups: Vec<(Bson, Vec<Vec<Option<Bson>>>)> = Vec::new();
    for doc in &docs {
        let key = id.evaluate(doc).unwrap_or(Bson::Null);
        let slot = *index.entry(Key(key.clone())).or_insert_with(|| {
            groups.push((key, vec![Vec::new(); accs.len()]));
            groups.len() - 1
        });
        for (i, (_, _, expr)) in accs.iter().enumerate() {
            groups[slot].1[i].push(expr.evaluate(doc));
        }
    }
    groups
        .into_iter()
        .map(|(key, inputs)| {
            let mut out = Document::new();
            out.insert("_id", key);
            for ((field, op, _), values) in accs.iter().zip(inputs) {
                out.insert(field.clone(), accumulate(*op, values));
            }
            out
        })
        .collect()
}

/// One accumulator over a group's values (`None` = missing).
fn accumulate(op: AccOp, values: Vec<Option<Bson>>) -> Bson {
    let present = || values.iter().flatten();
    let nullish = |v: &&Bson| matches!(v, Bson::Null | Bson::Undefined);
    match op {
        AccOp::Sum | AccOp::Count => sum(present().filter(|v| is_number(v)), false),
        AccOp::Avg => sum(present().filter(|v| is_number(v)), true),
        AccOp::Min => present()
            .filter(|v| !nullish(v))
            .min_by(|a, b| cmp_bson(a, b))
            .cloned()
            .unwrap_or(Bson::Null),
        AccOp::Max => present()
            .filter(|v| !nullish(v))
            .max_by(|a, b| cmp_bson(a, b))
            .cloned()
            .unwrap_or(Bson::Null),
        // A missing first/last value comes out as null.
        AccOp::First => values.first().cloned().flatten().unwrap_or(Bson::Null),
        AccOp::Last => values.last().cloned().flatten().unwrap_or(Bson::Null),
        AccOp::Push => Bson::Array(present().cloned().collect()),
        AccOp::AddToSet => {
            let mut set: Vec<Bson> = Vec::new();
            for v in present() {
                if !set.iter().any(|s| cmp_bson(s, v) == Ordering::Equal) {
                    set.push(v.clone());
                }
            }
            Bson::Array(set)
        }
    }
}

/// `$sum`/`$avg` over numeric values: Int32 totals widen to Int64 and then
/// Double on overflow, Int64 to Double; any Double makes a Double, any
/// Decimal128 a Decimal128 (MongoDB's `AccumulatorSum`/`AccumulatorAvg`).
fn sum<'a>(values: impl Iterator<Item = &'a Bson>, average: bool) -> Bson {
    let (mut widest, mut count, mut ints) = (0u8, 0u64, 0i128);
    let (mut doubles, mut nums) = (Neumaier::default(), Vec::new());
    for v in values {
        count += 1;
        nums.extend(Num::of(v));
        match v {
            Bson::Int32(i) => ints = ints.saturating_add(i128::from(*i)),
            Bson::Int64(i) => {
                widest = widest.max(1);
                ints = ints.saturating_add(i128::from(*i));
            }
            Bson::Double(d) => {
                widest = widest.max(2);
                doubles.add(*d);
            }
            _ => widest = 3,
        }
    }
    if widest == 3 {
        return Bson::Decimal128(decimal_sum(&nums, if average { count.max(1) } else { 1 }));
    }
    let as_double = || {
        let mut total = doubles.clone();
        let hi = ints as f64;
        total.add(hi);
        // i128 -> f64 rounds; the remainder keeps large int totals exact.
        total.add(ints.saturating_sub(hi as i128) as f64);
        total.value()
    };
    match (average, widest) {
        (true, _) if count == 0 => Bson::Null,
        (true, _) => Bson::Double(as_double() / count as f64),
        (false, 0) if i32::try_from(ints).is_ok() => Bson::Int32(ints as i32),
        (false, 0 | 1) if i64::try_from(ints).is_ok() => Bson::Int64(ints as i64),
        _ => Bson::Double(as_double()),
    }
}

/// Compensated double summation, close to mongod's double-double sums.
#[derive(Debug, Clone, Default)]
struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if t.is_finite() {
            self.compensation += if self.sum.abs() >= x.abs() {
                (self.sum - t) + x
            } else {
                (x - t) + self.sum
            };
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        if self.sum.is_finite() {
            self.sum + self.compensation
        } else {
            self.sum
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::run_pipeline;
    use bson::{doc, Bson, Decimal128, Document};

    fn group(input: &[Document], spec: Document) -> Vec<Document> {
        run_pipeline(input.to_vec(), &[doc! {"$group": spec}]).unwrap()
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    /// `sums! { values => expected $sum; ... }` over `{_id: null}`.
    macro_rules! sums {
        ($($values:expr => $want:expr;)*) => {
            $({
                let input: Vec<Document> = $values.into_iter().map(|v: Bson| doc! {"v": v}).collect();
                let out = group(&input, doc! {"_id": null, "s": {"$sum": "$v"}});
                assert_eq!(out, vec![doc! {"_id": null, "s": $want}], "{:?}", input);
            })*
        };
    }

    #[test]
    fn sum_widens_like_mongod() {
        let big = i64::from(i32::MAX);
        sums! {
            vec![Bson::Int32(1), Bson::Int32(2)] => Bson::Int32(3);
            vec![Bson::Int32(i32::MAX), Bson::Int32(1)] => Bson::Int64(big + 1);
            vec![Bson::Int64(1), Bson::Int32(2)] => Bson::Int64(3);
            vec![Bson::Int64(i64::MAX), Bson::Int64(1)] => Bson::Double(-(i64::MIN as f64));
            vec![Bson::Int32(1), Bson::Double(0.5)] => Bson::Double(1.5);
            vec![Bson::Int32(1), dec("0.5")] => dec("1.5");
            vec![Bson::String("x".into()), Bson::Null, Bson::Array(vec![1.into()])] => Bson::Int32(0);
            vec![Bson::Double(0.1), Bson::Double(0.2), Bson::Double(-0.3)] => Bson::Double(2.7755575615628914e-17); // exact, as double-double sums are
        }
    }

    #[test]
    fn accumulators_on_one_group() {
        let input = [
            doc! {"k": "a", "v": 3, "w": "x"},
            doc! {"k": "a", "v": 1.5},
            doc! {"k": "a", "v": null, "w": "y"},
            doc! {"k": "a", "v": 3},
        ];
        let spec = doc! {
            "_id": "$k", "n": {"$count": {}}, "one": {"$sum": 1}, "sum": {"$sum": "$v"}, "avg": {"$avg": "$v"},
            "min": {"$min": "$v"}, "max": {"$max": "$w"}, "first": {"$first": "$w"}, "last": {"$last": "$w"},
            "push": {"$push": "$w"}, "set": {"$addToSet": "$v"},
        };
        let want = doc! {
            "_id": "a", "n": 4, "one": 4, "sum": 7.5, "avg": 2.5, "min": 1.5, "max": "y", "first": "x",
            "last": null, "push": ["x", "y"], "set": [3, 1.5, null],
        };
        assert_eq!(group(&input, spec), vec![want]);
    }

    #[test]
    fn group_keys_compare_by_value() {
        let input = [
            doc! {"k": 1},
            doc! {"k": 1.0},
            doc! {"k": null},
            doc! {},
            doc! {"k": {"x": 1}},
            doc! {"k": {"x": 1i64}},
        ];
        let out = group(&input, doc! {"_id": "$k", "c": {"$sum": 1}});
        let want = vec![
            doc! {"_id": 1, "c": 2},
            doc! {"_id": null, "c": 2},
            doc! {"_id": {"x": 1}, "c": 2},
        ];
        assert_eq!(out, want);
        let by_doc = group(&input[..2], doc! {"_id": {"key": "$k", "none": "$missing"}});
        assert_eq!(by_doc, vec![doc! {"_id": {"key": 1}}]);
        assert!(group(&[], doc! {"_id": null, "s": {"$sum": 1}}).is_empty());
        let empty_avg = group(
            &[doc! {"v": "x"}],
            doc! {"_id": 0, "a": {"$avg": "$v"}, "m": {"$min": "$v"}},
        );
        assert_eq!(empty_avg, vec![doc! {"_id": 0, "a": null, "m": "x"}]);
    }

    #[test]
    fn group_spec_errors() {
        let cases = [
            (
                doc! {"n": {"$sum": 1}},
                15955,
                "a group specification must include an _id",
            ),
            (
                doc! {"_id": null, "v": {}},
                40234,
                "The field 'v' must be an accumulator object",
            ),
            (
                doc! {"_id": null, "v": 1},
                40234,
                "The field 'v' must be an accumulator object",
            ),
            (
                doc! {"_id": null, "a.b": {"$sum": 1}},
                40235,
                "The field name 'a.b' cannot contain '.'",
            ),
            (
                doc! {"_id": null, "v": {"$sum": 1, "$avg": 1}},
                40238,
                "The field 'v' must specify one accumulator",
            ),
            (
                doc! {"_id": null, "sum": {"$sum": []}},
                40237,
                "The $sum accumulator is a unary operator",
            ),
            (
                doc! {"_id": null, "v": {"$foo": 1}},
                15952,
                "unknown group operator '$foo'",
            ),
            (
                doc! {"_id": {"$foo": 1}},
                168,
                "Unrecognized expression '$foo'",
            ),
        ];
        for (spec, code, msg) in cases {
            let e = run_pipeline(Vec::new(), &[doc! {"$group": spec.clone()}]).unwrap_err();
            assert_eq!((e.code, e.errmsg.as_str()), (code, msg), "{spec}");
        }
    }
}

//! Conditions on request metadata, in the MongoDB-style query language gateways use for conditional routing.
//!
//! A condition is a table whose keys are request fields and whose values are either a literal (implicit
//! `$eq`) or a table of operators: `$eq $ne $in $nin $gt $gte $lt $lte`. The keys `$and` and `$or` take a list
//! of conditions. Several keys in one table must all hold (implicit `$and`). Field names are metadata keys,
//! optionally prefixed `metadata.`, or the typed request fields `task_class`, `complexity`, `input_tokens`,
//! `expected_output_tokens`, `streaming`, `deferrable`.
//!
//! ```toml
//! when = { "metadata.plan" = "enterprise", input_tokens = { "$gt" = 8000 } }
//! when = { "$or" = [ { region = { "$in" = ["eu", "uk"] } }, { priority = { "$gte" = 5 } } ] }
//! ```
//!
//! A missing field satisfies only `$ne` and `$nin`.

use crate::model::{MetaRef, MetaValue, RequestInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A condition as written in a config file, before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// A list (operands of `$in`, `$nin`, `$and`, `$or`).
    List(Vec<RawValue>),
    /// A table (a condition, or a table of operators).
    Map(BTreeMap<String, RawValue>),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (also true when the field is missing).
    Ne,
    /// Equal to one of a list.
    In,
    /// Equal to none of a list (also true when the field is missing).
    Nin,
    /// Greater than (numbers) or lexicographically after (strings).
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "$eq" => Op::Eq,
            "$ne" => Op::Ne,
            "$in" => Op::In,
            "$nin" => Op::Nin,
            "$gt" => Op::Gt,
            "$gte" => Op::Gte,
            "$lt" => Op::Lt,
            "$lte" => Op::Lte,
            _ => return None,
        })
    }
}

/// A validated condition, evaluated against a [`RequestInfo`] without allocating.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// All must hold.
    And(Vec<Condition>),
    /// At least one must hold.
    Or(Vec<Condition>),
    /// `field op operand`.
    Compare {
        /// Field name (with any `metadata.` prefix removed).
        field: String,
        /// Operator.
        op: Op,
        /// Operand(s).
        operands: Vec<MetaValue>,
    },
}

const OPERATORS: &str = "$eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $and, $or";

impl Condition {
    /// Validates a raw condition; errors carry the field path below `path`.
    pub fn compile(raw: &RawValue, path: &str) -> Result<Condition, (String, String)> {
        let RawValue::Map(map) = raw else {
            return Err((path.to_string(), "expected a table of conditions like { plan = \"pro\" }".into()));
        };
        if map.is_empty() {
            return Err((path.to_string(), "expected at least one condition, found an empty table".into()));
        }
        let mut all = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = format!("{path}.{key}");
            match key.as_str() {
                "$and" | "$or" => {
                    let RawValue::List(items) = value else {
                        return Err((here, format!("expected a list of conditions after {key}")));
                    };
                    if items.is_empty() {
                        return Err((here, format!("expected a non-empty list of conditions after {key}")));
                    }
                    let subs = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| Condition::compile(item, &format!("{here}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?;
                    all.push(if key == "$and" { Condition::And(subs) } else { Condition::Or(subs) });
                }
                k if k.starts_with('$') => {
                    return Err((
                        here,
                        format!("unknown operator `{k}` at field level: expected a field name or one of $and, $or"),
                    ));
                }
                field => {
                    let field = field.strip_prefix("metadata.").unwrap_or(field).to_string();
                    match value {
                        RawValue::Map(ops) => {
                            if ops.is_empty() {
                                return Err((here, "expected an operator table like { \"$gt\" = 5 }".into()));
                            }
                            for (op_name, operand) in ops {
                                let op_path = format!("{here}.{op_name}");
                                let op = Op::parse(op_name).ok_or_else(|| {
                                    (
                                        op_path.clone(),
                                        format!("unknown operator `{op_name}`: expected one of {OPERATORS}"),
                                    )
                                })?;
                                let operands = compile_operands(op, operand, &op_path)?;
                                all.push(Condition::Compare { field: field.clone(), op, operands });
                            }
                        }
                        literal => {
                            let operands = compile_operands(Op::Eq, literal, &here)?;
                            all.push(Condition::Compare { field, op: Op::Eq, operands });
                        }
                    }
                }
            }
        }
        Ok(if all.len() == 1 { all.pop().expect("one element") } else { Condition::And(all) })
    }

    /// Whether the request satisfies the condition.
    pub fn matches(&self, req: &RequestInfo) -> bool {
        match self {
            Condition::And(cs) => cs.iter().all(|c| c.matches(req)),
            Condition::Or(cs) => cs.iter().any(|c| c.matches(req)),
            Condition::Compare { field, op, operands } => {
                let Some(v) = req.meta(field) else {
                    return matches!(op, Op::Ne | Op::Nin);
                };
                match op {
                    Op::Eq => v.equals(&operands[0]),
                    Op::Ne => !v.equals(&operands[0]),
                    Op::In => operands.iter().any(|o| v.equals(o)),
                    Op::Nin => !operands.iter().any(|o| v.equals(o)),
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte => compare(v, &operands[0]).is_some_and(|ord| match op {
                        Op::Gt => ord.is_gt(),
                        Op::Gte => ord.is_ge(),
                        Op::Lt => ord.is_lt(),
                        _ => ord.is_le(),
                    }),
                }
            }
        }
    }
}

fn compare(v: MetaRef<'_>, operand: &MetaValue) -> Option<std::cmp::Ordering> {
    match operand {
        MetaValue::Num(n) => v.as_num()?.partial_cmp(n),
        MetaValue::Str(s) => Some(v.as_str()?.cmp(s.as_str())),
        MetaValue::Bool(_) => None,
    }
}

fn scalar(raw: &RawValue, path: &str) -> Result<MetaValue, (String, String)> {
    match raw {
        RawValue::Bool(b) => Ok(MetaValue::Bool(*b)),
        RawValue::Num(n) => Ok(MetaValue::Num(*n)),
        RawValue::Str(s) => Ok(MetaValue::Str(s.clone())),
        _ => Err((path.to_string(), "expected a string, number or boolean".into())),
    }
}

fn compile_operands(op: Op, raw: &RawValue, path: &str) -> Result<Vec<MetaValue>, (String, String)> {
    match op {
        Op::In | Op::Nin => match raw {
            RawValue::List(items) => {
                items.iter().enumerate().map(|(i, x)| scalar(x, &format!("{path}[{i}]"))).collect()
            }
            _ => Err((path.to_string(), "expected a list of values".into())),
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => match scalar(raw, path)? {
            MetaValue::Bool(_) => Err((path.to_string(), "expected a number or string to compare with".into())),
            v => Ok(vec![v]),
        },
        Op::Eq | Op::Ne => Ok(vec![scalar(raw, path)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(json: &str) -> Condition {
        let raw: RawValue = serde_json::from_str(json).unwrap();
        Condition::compile(&raw, "when").unwrap()
    }

    fn req() -> RequestInfo {
        let mut r = RequestInfo::new(1, 9000);
        r.task_class = Some("complex".into());
        r.metadata = vec![
            ("plan".into(), MetaValue::Str("enterprise".into())),
            ("priority".into(), MetaValue::Num(5.0)),
            ("region".into(), MetaValue::Str("eu".into())),
        ];
        r
    }

    #[test]
    fn every_operator_behaves() {
        let r = req();
        let cases = [
            (r#"{"plan": "enterprise"}"#, true),
            (r#"{"metadata.plan": {"$eq": "free"}}"#, false),
            (r#"{"plan": {"$ne": "free"}}"#, true),
            (r#"{"region": {"$in": ["eu", "uk"]}}"#, true),
            (r#"{"region": {"$nin": ["eu", "uk"]}}"#, false),
            (r#"{"priority": {"$gt": 5}}"#, false),
            (r#"{"priority": {"$gte": 5}}"#, true),
            (r#"{"priority": {"$lt": 5}}"#, false),
            (r#"{"priority": {"$lte": 5}}"#, true),
            (r#"{"input_tokens": {"$gt": 8000}, "task_class": "complex"}"#, true),
            (r#"{"$or": [{"plan": "free"}, {"priority": {"$gte": 3}}]}"#, true),
            (r#"{"$and": [{"plan": "enterprise"}, {"region": "us"}]}"#, false),
            (r#"{"missing": {"$ne": "x"}}"#, true),
            (r#"{"missing": {"$nin": ["x"]}}"#, true),
            (r#"{"missing": "x"}"#, false),
            (r#"{"missing": {"$gt": 1}}"#, false),
        ];
        for (json, want) in cases {
            assert_eq!(cond(json).matches(&r), want, "{json}");
        }
    }

    #[test]
    fn invalid_conditions_name_the_path() {
        let bad = [
            (r#"{"plan": {"$gtx": 1}}"#, "when.plan.$gtx"),
            (r#"{"$xor": []}"#, "when.$xor"),
            (r#"{"$or": {"a": 1}}"#, "when.$or"),
            (r#"{"region": {"$in": "eu"}}"#, "when.region.$in"),
            (r#"{"priority": {"$gt": true}}"#, "when.priority.$gt"),
            (r#"{}"#, "when"),
        ];
        for (json, path) in bad {
            let raw: RawValue = serde_json::from_str(json).unwrap();
            let (p, msg) = Condition::compile(&raw, "when").unwrap_err();
            assert_eq!(p, path, "{json}: {msg}");
            assert!(msg.starts_with("expected") || msg.starts_with("unknown"), "{msg}");
        }
    }
}

//! The search space: tuned parameters with their ranges, candidate generation (grid, random, Latin
//! hypercube) and writing a candidate's values into a policy configuration by field path.
//!
//! A candidate is a list of unit coordinates, one per dimension (a scalar parameter is one dimension, a
//! simplex of `k` fields is `k`), mapped onto the parameter ranges. Values are rounded (4 significant
//! digits, simplex weights to 4 decimals) *before* evaluation, so the configuration written to
//! `best-policy.toml` is exactly the one that was simulated.

use super::config::Method;
use crate::params::round_simplex;
pub use crate::params::{Param, Value};
use crate::rng::{Stream, key, sequential};
use rand::{RngExt, seq::SliceRandom};
use router_core::PolicySpec;

/// Generates the candidates of a method: `n` of them (grid: the full grid, whose size the caller checks).
pub fn generate(params: &[Param], method: Method, n: usize, steps: u32, seed: u64) -> Vec<Vec<Value>> {
    let dims: usize = params.iter().map(Param::dims).sum();
    let mut rng = sequential(key(seed, 0, Stream::Tune, 0, 0));
    let units: Vec<Vec<f64>> = match method {
        Method::Grid => return grid(params, steps),
        Method::Random => (0..n).map(|_| (0..dims).map(|_| rng.random::<f64>()).collect()).collect(),
        Method::Lhs | Method::SuccessiveHalving => {
            // One random permutation of the n strata per dimension, a uniform draw inside each stratum.
            let mut cols: Vec<Vec<f64>> = Vec::with_capacity(dims);
            for _ in 0..dims {
                let mut strata: Vec<usize> = (0..n).collect();
                strata.shuffle(&mut rng);
                cols.push(strata.iter().map(|&s| (s as f64 + rng.random::<f64>()) / n as f64).collect());
            }
            (0..n).map(|i| cols.iter().map(|c| c[i]).collect()).collect()
        }
    };
    units
        .iter()
        .map(|u| {
            let mut at = 0;
            params
                .iter()
                .map(|p| {
                    let v = p.from_unit(&u[at..at + p.dims()]);
                    at += p.dims();
                    v
                })
                .collect()
        })
        .collect()
}

/// The number of grid points (at most: rounding may merge a few), computed without building the grid, so
/// that a huge `steps` is refused at once; saturating.
pub fn grid_size(params: &[Param], steps: u32) -> usize {
    params.iter().fold(1usize, |acc, p| {
        let n = p.spec.steps.unwrap_or(steps).max(1) as usize;
        let axis = match p.range {
            // Compositions of n parts over k fields: C(n + k - 1, k - 1).
            None => (1..p.dims()).fold(1usize, |c, i| c.saturating_mul(n + i) / i),
            Some((lo, hi)) if p.spec.integer => n.min((hi.floor() - lo.ceil()) as usize + 1),
            Some(_) => n,
        };
        acc.saturating_mul(axis)
    })
}

fn grid(params: &[Param], steps: u32) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for p in params {
        let values = p.grid(steps);
        out = out
            .iter()
            .flat_map(|prefix| values.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat()))
            .collect();
    }
    out
}

/// Writes `values` into a copy of `base` at the parameters' paths; the error names the failing path.
pub fn apply(base: &PolicySpec, params: &[Param], values: &[Value]) -> Result<PolicySpec, String> {
    let mut doc = toml::Value::try_from(base).map_err(|e| format!("cannot represent the policy: {e}"))?;
    for (p, v) in params.iter().zip(values) {
        match v {
            Value::Scalar(x) => {
                let item = if p.spec.integer { toml::Value::Integer(*x as i64) } else { toml::Value::Float(*x) };
                set_path(&mut doc, &p.spec.path, item)?;
            }
            Value::Simplex(w) => {
                let fields = p.spec.simplex.as_deref().unwrap_or_default();
                for (f, x) in fields.iter().zip(w) {
                    set_path(&mut doc, &format!("{}.{f}", p.spec.path), toml::Value::Float(*x))?;
                }
            }
        }
    }
    let text = toml::to_string(&doc).map_err(|e| format!("cannot represent the policy: {e}"))?;
    let de = toml::Deserializer::parse(&text).map_err(|e| e.message().to_string())?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        format!("at `{path}`: {}", e.inner().message().trim())
    })
}

/// Sets the dotted `path` of a TOML document, creating missing tables; a number in place of a duration
/// string is read as seconds.
fn set_path(doc: &mut toml::Value, path: &str, value: toml::Value) -> Result<(), String> {
    let mut node = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| format!("`{}` is not a table", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            table.insert((*part).to_string(), value);
            return Ok(());
        }
        node = table.entry((*part).to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
    }
    Ok(())
}

/// The values `base` already has for `params`, if it sets every one of them within its range (a simplex's
/// fields are normalised to sum to 1). Tuning adds this point as candidate 0, so the search sees the
/// configuration as written.
pub fn current(base: &PolicySpec, params: &[Param]) -> Option<Vec<Value>> {
    let doc = toml::Value::try_from(base).ok()?;
    let get = |path: &str| -> Option<f64> {
        let mut node = &doc;
        for part in path.split('.') {
            node = node.get(part)?;
        }
        match node {
            toml::Value::Float(x) => Some(*x),
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::String(s) => router_core::Duration::parse(s).ok().map(|d| d.nanos() as f64 / 1e9),
            _ => None,
        }
    };
    params
        .iter()
        .map(|p| match (&p.spec.simplex, p.range) {
            (Some(fields), _) => {
                let w: Vec<f64> = fields.iter().map(|f| get(&format!("{}.{f}", p.spec.path)).unwrap_or(0.0)).collect();
                let sum: f64 = w.iter().sum();
                (sum > 0.0 && w.iter().all(|x| *x >= 0.0))
                    .then(|| Value::Simplex(round_simplex(&w.iter().map(|x| x / sum).collect::<Vec<_>>())))
            }
            (None, Some((lo, hi))) => get(&p.spec.path).filter(|x| (lo..=hi).contains(x)).map(Value::Scalar),
            (None, None) => None,
        })
        .collect()
}

/// The values as table cells, one per column of [`Param::columns`].
pub fn flatten(values: &[Value]) -> Vec<f64> {
    values
        .iter()
        .flat_map(|v| match v {
            Value::Scalar(x) => vec![*x],
            Value::Simplex(w) => w.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamSpec;
    use router_core::PolicyKind;

    fn scalar(path: &str, lo: f64, hi: f64, integer: bool) -> Param {
        Param::new(&ParamSpec {
            path: path.into(),
            simplex: None,
            min: Some(lo),
            max: Some(hi),
            integer,
            log: false,
            steps: None,
        })
        .unwrap()
    }

    fn simplex() -> Param {
        Param::new(&ParamSpec {
            path: "weights".into(),
            simplex: Some(vec!["cost".into(), "latency".into(), "load".into(), "quota".into()]),
            min: None,
            max: None,
            integer: false,
            log: false,
            steps: None,
        })
        .unwrap()
    }

    #[test]
    fn lhs_uses_every_stratum_once_per_dimension() {
        let params = [scalar("buffer", 0.0, 1.0, false)];
        let c = generate(&params, Method::Lhs, 50, 5, 7);
        let mut strata: Vec<usize> = c
            .iter()
            .map(|v| match v[0] {
                Value::Scalar(x) => ((x * 50.0).floor() as usize).min(49),
                _ => unreachable!(),
            })
            .collect();
        strata.sort_unstable();
        // Rounding to 4 significant digits can move a value across a stratum edge only by < 1e-4.
        let distinct = {
            let mut s = strata.clone();
            s.dedup();
            s.len()
        };
        assert!(distinct >= 48, "{strata:?}");
        assert_eq!(generate(&params, Method::Lhs, 50, 5, 7), c, "same seed, same candidates");
        assert_ne!(generate(&params, Method::Lhs, 50, 5, 8), c);
    }

    #[test]
    fn simplex_values_sum_to_one_and_stay_in_range() {
        let params = [simplex(), scalar("retry.max_attempts", 1.0, 4.0, true)];
        for v in generate(&params, Method::Random, 200, 5, 1) {
            let Value::Simplex(w) = &v[0] else { panic!() };
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{w:?}");
            assert!(w.iter().all(|x| (0.0..=1.0).contains(x)));
            let Value::Scalar(n) = v[1] else { panic!() };
            assert!((1.0..=4.0).contains(&n) && n.fract() == 0.0);
        }
    }

    #[test]
    fn grid_is_the_product_of_axes() {
        // 4 weights in 2 parts: C(5, 3) = 10 compositions; 3 buffer values.
        let mut p = simplex();
        p.spec.steps = Some(2);
        let params = [p, scalar("buffer", 0.0, 0.2, false)];
        assert_eq!(grid_size(&params, 3), 30);
        let g = generate(&params, Method::Grid, 0, 3, 0);
        assert_eq!(g.len(), 30);
        assert_eq!(g[0], vec![Value::Simplex(vec![1.0, 0.0, 0.0, 0.0]), Value::Scalar(0.0)]);
        assert_eq!(g[29], vec![Value::Simplex(vec![0.0, 0.0, 0.0, 1.0]), Value::Scalar(0.2)]);
        // Integer axes do not repeat values.
        assert_eq!(scalar("retry.max_attempts", 1.0, 2.0, true).grid(5).len(), 2);
    }

    #[test]
    fn current_reads_the_policy_as_written() {
        let mut base = PolicySpec::new("hybrid", PolicyKind::Hybrid);
        base.weights = Some(router_core::HybridWeights { cost: 2.0, latency: 1.0, load: 1.0, quota: 0.0 });
        base.latency_ceiling = Some(router_core::Duration::from_secs(30));
        let params = [simplex(), scalar("latency_ceiling", 1.0, 60.0, false)];
        assert_eq!(
            current(&base, &params),
            Some(vec![Value::Simplex(vec![0.5, 0.25, 0.25, 0.0]), Value::Scalar(30.0)])
        );
        // Outside the range, or not set: not a candidate.
        assert_eq!(current(&base, &[scalar("latency_ceiling", 1.0, 10.0, false)]), None);
        assert_eq!(current(&base, &[scalar("buffer", 0.0, 1.0, false)]), None);
    }

    #[test]
    fn apply_sets_nested_paths_and_reports_unknown_fields() {
        let base = PolicySpec::new("hybrid", PolicyKind::Hybrid);
        let params =
            [simplex(), scalar("retry.max_attempts", 1.0, 4.0, true), scalar("latency_ceiling", 1.0, 60.0, false)];
        let values = vec![Value::Simplex(vec![0.1, 0.2, 0.3, 0.4]), Value::Scalar(3.0), Value::Scalar(12.5)];
        let spec = apply(&base, &params, &values).unwrap();
        let w = spec.weights.unwrap();
        assert_eq!((w.cost, w.latency, w.load, w.quota), (0.1, 0.2, 0.3, 0.4));
        assert_eq!(spec.retry.unwrap().max_attempts, 3);
        assert_eq!(spec.latency_ceiling.unwrap().nanos(), 12_500_000_000);
        let typo = [scalar("bufer", 0.0, 1.0, false)];
        let e = apply(&base, &typo, &[Value::Scalar(0.5)]).unwrap_err();
        assert!(e.contains("bufer"), "{e}");
    }
}

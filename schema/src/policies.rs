//! The validation of a file's `[[policies]]`: every policy, with the file's endpoints, groups and seed, must
//! build a router-core [`Router`]; errors are mapped onto the file's field paths.

use crate::error::SchemaError;
use crate::parse::nearest;
use router_core::{ConfigError, Endpoint, PolicySpec, QualityConfig, Router, RouterConfig};
use std::path::Path;

/// One router configuration per policy of `policies`, in order, each with `endpoints`, `groups`, `seed` and
/// the quality model's `quality` (see [`crate::quality_config`]); every one is checked by building its
/// [`Router`].
///
/// Errors: a duplicate policy name (`policies[i].name`), or router-core's error with its path rewritten
/// from the router's root (`policy.x`) to the file's (`policies[i].x`). For an unknown target or endpoint
/// the error suggests the nearest endpoint id or group name.
pub fn compile_policies(
    file: &Path,
    endpoints: &[Endpoint],
    policies: &[PolicySpec],
    groups: &[PolicySpec],
    seed: u64,
    quality: &QualityConfig,
) -> Result<Vec<RouterConfig>, SchemaError> {
    let mut names: Vec<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
    names.extend(groups.iter().map(|g| g.name.as_str()));
    let mut configs = Vec::with_capacity(policies.len());
    for (i, p) in policies.iter().enumerate() {
        if let Some(j) = policies[..i].iter().position(|q| q.name == p.name) {
            return Err(SchemaError::invalid(
                file,
                &format!("policies[{i}].name"),
                format!("duplicate policy name `{}` (also policies[{j}])", p.name),
            ));
        }
        let cfg = RouterConfig {
            endpoints: endpoints.to_vec(),
            policy: p.clone(),
            groups: groups.to_vec(),
            seed,
            quality: quality.clone(),
        };
        Router::new(&cfg).map_err(|e| router_error(file, i, e, &names))?;
        configs.push(cfg);
    }
    Ok(configs)
}

/// Maps a router-core error of policy number `policy` (paths relative to one router config) onto the file's
/// field paths, with a "did you mean" among `names` for an unknown target or endpoint.
fn router_error(file: &Path, policy: usize, e: ConfigError, names: &[&str]) -> SchemaError {
    let path = match e.path.strip_prefix("policy") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("policies[{policy}]{rest}"),
        _ => e.path.clone(),
    };
    let mut out = SchemaError::invalid(file, &path, e.message.clone());
    for marker in ["unknown target `", "unknown endpoint `"] {
        if let Some(rest) = e.message.strip_prefix(marker)
            && let Some(name) = rest.split('`').next()
        {
            out = out.with_suggestion(nearest(name, names.iter().copied()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> PolicySpec {
        toml::from_str(text).expect("policy")
    }

    #[test]
    fn every_policy_is_compiled_in_order() {
        let eps = [Endpoint::new("a"), Endpoint::new("b")];
        let ps = [spec("name = \"rr\"\nkind = \"round-robin\""), spec("name = \"c\"\nkind = \"cost\"")];
        let cfgs = compile_policies(Path::new("f.toml"), &eps, &ps, &[], 7, &QualityConfig::default()).expect("valid");
        assert_eq!(cfgs.len(), 2);
        assert_eq!((cfgs[1].policy.name.as_str(), cfgs[1].seed, cfgs[1].endpoints.len()), ("c", 7, 2));
    }

    #[test]
    fn duplicate_names_and_unknown_endpoints_name_the_field() {
        let eps = [Endpoint::new("cheap"), Endpoint::new("premium")];
        let rr = spec("name = \"rr\"\nkind = \"round-robin\"");
        let e = compile_policies(Path::new("f.toml"), &eps, &[rr.clone(), rr], &[], 0, &QualityConfig::default())
            .expect_err("duplicate");
        assert_eq!(e.to_string(), "f.toml: field `policies[1].name`: duplicate policy name `rr` (also policies[0])");
        let fb = spec("name = \"fb\"\nkind = \"cost\"\nfallbacks = [\"premuim\"]");
        let e = compile_policies(Path::new("f.toml"), &eps, &[fb], &[], 0, &QualityConfig::default())
            .expect_err("unknown endpoint");
        assert_eq!(e.path, "policies[0].fallbacks[0]");
        assert_eq!(e.suggestion.as_deref(), Some("premium"));
    }

    #[test]
    fn quality_errors_name_the_file_and_the_field() {
        let mut eps = [Endpoint::new("cheap"), Endpoint::new("premium")];
        eps[1].quality.0.insert("code".into(), 1.2);
        let cost = spec("name = \"c\"\nkind = \"cost\"");
        let q = QualityConfig::default();
        let e =
            compile_policies(Path::new("f.toml"), &eps, std::slice::from_ref(&cost), &[], 0, &q).expect_err("accuracy");
        assert_eq!(
            e.to_string(),
            "f.toml: field `endpoints[1].quality.code`: expected an accuracy (the fraction answered acceptably) in 0..=1, found 1.2"
        );
        eps[1].quality.0.insert("code".into(), 0.9);
        eps[1].quality.0.insert("default".into(), 0.95);
        let bar = spec("name = \"bar\"\nkind = \"quality\"\nmin_quality = 0.8\ntargets = [\"premium\", \"cheap\"]");
        let e = compile_policies(Path::new("f.toml"), &eps, &[cost.clone(), bar], &[], 0, &q).expect_err("no accuracy");
        assert_eq!(e.path, "policies[1].targets[1]");
        assert!(e.message.contains("`cheap`"), "{e}");
        let q = QualityConfig { discrimination: [("code".to_string(), 0.0)].into_iter().collect() };
        let e = compile_policies(Path::new("f.toml"), &eps, &[cost], &[], 0, &q).expect_err("discrimination");
        assert_eq!(e.path, "quality.discrimination.code");
    }
}

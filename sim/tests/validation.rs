//! Runs every validation model of `scenarios/validation/` (and the quickstart identities) as
//! `routesim validate --quick` does, and requires every check to pass.

use sim::validate::{Effort, MODELS, render, run_all};

#[test]
fn every_validation_model_matches_its_closed_form() {
    let results = run_all(Effort::QUICK, &|_| {}).expect("validation runs");
    let table = render(&results);
    assert!(results.iter().all(|r| r.pass), "{table}");
    // Every shipped model contributes at least one check.
    for (path, _) in MODELS {
        let stem = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let label = match stem {
            "mm1" => "M/M/1 ",
            "mmc" => "M/M/10 ",
            "mg1-lognormal" => "M/G/1 lognormal",
            "md1" => "M/D/1",
            "erlang-b" => "M/M/10/10",
            "littles-law" => "Little's law",
            other => panic!("validation model {other} has no check"),
        };
        assert!(results.iter().any(|r| r.name.starts_with(label)), "no check for {path}:\n{table}");
    }
}

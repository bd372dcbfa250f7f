//! Client keys in scenarios (`[[keys]]`): denials by reason, budgets that reset with the day, limits that
//! hold, key metadata reaching the router, determinism, and the scenario the README shows.

use router_core::{DenyReason, NANOS_PER_SEC};
use sim::engine::{self, RequestRecord, RunOptions, RunResult};
use sim::scenario::{Compiled, Scenario};
use std::path::Path;

const BASE: &str = include_str!("../../sim/tests/data/base.toml");
const TEAM_KEYS: &str = include_str!("../../scenarios/team-keys.toml");

fn compile(text: &str) -> Compiled {
    let path = Path::new("test.toml");
    Scenario::parse(path, text).unwrap_or_else(|e| panic!("{e}")).compile(path).unwrap_or_else(|e| panic!("{e}"))
}

fn run(model: &Compiled, policy: usize) -> (RunResult, Vec<RequestRecord>) {
    let mut recs = Vec::new();
    let mut sink = |r: &RequestRecord| recs.push(r.clone());
    let res = engine::run(model, policy, 0, RunOptions { records: Some(&mut sink), ..Default::default() });
    (res, recs)
}

fn denied(r: &RunResult, reason: DenyReason) -> u64 {
    r.metrics.counts.denied[reason.index()]
}

#[test]
fn an_rpm_limit_admits_at_most_its_rate_and_denies_the_rest() {
    // 20 requests/s for 2000 requests (about 100 s); the key carries all of them at 60 per minute.
    let model = compile(&format!("{BASE}\n[[keys]]\nid = \"k\"\nshare = 1.0\nlimits = {{ rpm = 60 }}\n"));
    let (r, recs) = run(&model, 0);
    let c = &r.metrics.counts;
    // Records come in completion order: sort the admitted ones by arrival.
    let mut admitted: Vec<&RequestRecord> = recs.iter().filter(|x| !x.rejected).collect();
    admitted.sort_by_key(|x| x.arrival_ns);
    assert_eq!(c.denied_total(), denied(&r, DenyReason::Rpm));
    assert_eq!(c.succeeded + c.failed_total() + c.rejected + c.denied_total() + r.in_flight, c.requests);
    // Every sliding minute holds at most 60 admissions.
    for (i, a) in admitted.iter().enumerate() {
        let window = admitted[i..].iter().take_while(|b| b.arrival_ns < a.arrival_ns + 60 * NANOS_PER_SEC).count();
        assert!(window <= 60, "{window} admissions in the minute after {}", a.arrival_s);
    }
    let span_min = recs.last().unwrap().arrival_s / 60.0;
    assert!(admitted.len() as f64 <= 60.0 * span_min.ceil() && admitted.len() >= 60, "{}", admitted.len());
    assert!(c.denied_total() > 1500, "most of the 20/s is denied: {}", c.denied_total());
}

#[test]
fn a_daily_budget_stops_spend_and_resets_at_midnight() {
    // 1 request/s for 30 hours on one endpoint; each costs (100 x 3 + 50 x 15) / 1e6 = $0.00105.
    let model = compile(
        r#"
name = "budget"
seed = 3
duration = "30h"

[traffic]
rate = 1.0

[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 50 }

[[endpoints]]
id = "premium"
price = { input_per_mtok = 3.0, output_per_mtok = 15.0 }
ttft = { dist = "exponential", mean = "800ms" }
tpot = { dist = "constant", value = "15ms" }

[[policies]]
name = "rr"
kind = "round-robin"

[[keys]]
id = "k"
share = 1.0
limits = { daily_budget_usd = 1.0 }
"#,
    );
    let (r, recs) = run(&model, 0);
    let day = 86_400.0;
    let spent_day0: f64 = recs.iter().filter(|x| x.arrival_s < day).map(|x| x.cost_usd).sum();
    // The budget is checked before each request: spend stops within a few requests' cost of it.
    assert!((1.0..1.01).contains(&spent_day0), "day 0 spend {spent_day0}");
    let first_denial = recs.iter().find(|x| x.rejected).expect("the budget runs out").arrival_s;
    assert!(first_denial > 900.0 && first_denial < day, "{first_denial}");
    assert!(recs.iter().filter(|x| x.arrival_s > first_denial && x.arrival_s < day).all(|x| x.rejected));
    // After midnight UTC (simulated day 1) requests are served again.
    let after = recs.iter().find(|x| x.arrival_s >= day).unwrap();
    assert!(!after.rejected && after.error.is_none());
    assert!(denied(&r, DenyReason::DailyBudget) > 50_000);
}

#[test]
fn key_metadata_feeds_conditional_routing() {
    let text = format!(
        "{}\n[[keys]]\nid = \"search\"\nshare = 0.5\nmetadata = {{ team = \"search\" }}\n",
        BASE.replace(
            "name = \"rr\"\nkind = \"round-robin\"",
            "name = \"by-team\"\nkind = \"conditional\"\nrules = [{ when = { team = \"search\" }, target = \"premium\" }]\ndefault = \"cheap\""
        )
    );
    let model = compile(&text);
    let (r, _) = run(&model, 0);
    let share = r.metrics.endpoint_attempts[1] as f64 / r.metrics.counts.attempts as f64;
    assert!((share - 0.5).abs() < 0.05, "the search key's half goes to premium: {share}");
    assert_eq!(r.metrics.counts.denied_total(), 0);
}

#[test]
fn the_team_keys_scenario_denies_by_reason_and_is_deterministic() {
    let path = Path::new("scenarios/team-keys.toml");
    let mut s = Scenario::parse(path, TEAM_KEYS).unwrap();
    s.replications = 1;
    let model = s.compile(path).unwrap();
    let (by_team, _) = run(&model, 0);
    let (cheapest, _) = run(&model, 1);
    // Routing the search team to the frontier spends its budget; the cheap policy never does.
    assert!(denied(&by_team, DenyReason::DailyBudget) > 1000);
    assert_eq!(denied(&cheapest, DenyReason::DailyBudget), 0);
    // RPM admission depends on arrivals only: the same under both policies (common random numbers).
    assert!(denied(&by_team, DenyReason::Rpm) > 0);
    assert_eq!(denied(&by_team, DenyReason::Rpm), denied(&cheapest, DenyReason::Rpm));
    assert!(denied(&by_team, DenyReason::Concurrency) > 0);
    let c = &by_team.metrics.counts;
    assert_eq!(c.succeeded + c.failed_total() + c.rejected + c.denied_total() + by_team.in_flight, c.requests);
    let (again, _) = run(&model, 0);
    assert_eq!(again.metrics.counts, by_team.metrics.counts);
    assert_eq!(again.metrics.cost_usd.to_bits(), by_team.metrics.cost_usd.to_bits());
}

#[test]
fn a_gateways_keys_paste_in_with_a_share() {
    let text = format!(
        "{BASE}\n[[keys]]\nid = \"k\"\nshare = 0.2\nhash = \"sha256:00112233445566778899aabbccddeeff:{}\"\nmodels = [\"gpt-4o*\"]\nendpoint_tags = [\"eu\"]\nexpires = 2030-01-01\nrevoked = false\ndescription = \"x\"\n",
        "0".repeat(64)
    );
    let model = compile(&text);
    assert_eq!(model.scenario.keys[0].share, 0.2);
}

#[test]
fn routesim_run_shows_denials_in_the_table_and_by_reason_in_the_csv() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let out_dir = std::env::temp_dir().join(format!("routesim-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routesim"))
        .args(["run", "scenarios/team-keys.toml", "--replications", "1", "--out"])
        .arg(&out_dir)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header = stdout.lines().find(|l| l.starts_with("policy ")).unwrap();
    assert!(header.trim_end().ends_with("denied"), "{header}");
    let csv = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    let cols: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let get = |row: &[&str], c: &str| -> f64 { row[cols.iter().position(|x| *x == c).unwrap()].parse().unwrap() };
    for row in &rows {
        let parts: f64 =
            ["denied_rpm", "denied_tpm", "denied_concurrency", "denied_budget"].iter().map(|c| get(row, c)).sum();
        assert_eq!(get(row, "denied"), parts, "the reasons add up to the total");
    }
    assert!(get(&rows[0], "denied_budget") > 0.0 && get(&rows[1], "denied_budget") == 0.0);
    let _ = std::fs::remove_dir_all(&out_dir);
}

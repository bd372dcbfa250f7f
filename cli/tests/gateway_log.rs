//! End to end: the production gateway's request log replays through `routesim replay` and fits through
//! `routesim fit` with no mapping and no `--format`.
//!
//! The gateway runs in-process on 127.0.0.1 (ephemeral port) in front of two mock upstreams, also on
//! loopback; a bounded open-loop load (a few seconds, a few hundred requests, streamed and not, with some
//! upstream failures) goes through it, in two runs of the gateway (a restart in the middle); then the log
//! they wrote is handed to the `routesim` binary.

use routesim_gateway::GatewayConfig;
use routesim_live::load::generator::{LoadSpec, client, open_loop};
use routesim_live::mock_upstream::{MockReply, MockUpstream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCENARIO: &str = r#"
name = "gateway-log"
seed = 11
replications = 2
duration = "1h"    # ignored by replay: the log decides how long a run is

[traffic]
rate = 1.0

# The gateway logs requests without a class as `default`.
[[traffic.classes]]
name = "default"
input_tokens = { dist = "constant", value = 40 }
output_tokens = { dist = "constant", value = 16 }

[[endpoints]]
id = "e0"
price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
ttft = { dist = "exponential", mean = "20ms" }
tpot = { dist = "constant", value = "2ms" }

[[endpoints]]
id = "e1"
price = { input_per_mtok = 3.0, output_per_mtok = 6.0 }
ttft = { dist = "exponential", mean = "40ms" }
tpot = { dist = "constant", value = "3ms" }

[[policies]]
name = "rr"
kind = "round-robin"

[[policies]]
name = "cost"
kind = "cost"
fallbacks = ["e1"]
"#;

fn gateway_config(e0: &str, e1: &str, log: &Path) -> GatewayConfig {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[request_log]\npath = \"{}\"\n\n[health]\ninterval = \"0s\"\n\n\
         [[endpoints]]\nid = \"e0\"\nprice = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}\nupstream = {{ base_url = \"{e0}\" }}\n\n\
         [[endpoints]]\nid = \"e1\"\nprice = {{ input_per_mtok = 3.0, output_per_mtok = 6.0 }}\nupstream = {{ base_url = \"{e1}\" }}\n\n\
         [[policies]]\nname = \"rr\"\nkind = \"round-robin\"\nfallbacks = [\"e1\", \"e0\"]\n",
        log.display()
    );
    GatewayConfig::parse(Path::new("gateway.toml"), &text, None, &|_| None).expect("gateway config")
}

fn reply(delay_ms: u64, gap_ms: u64, n: usize) -> MockReply {
    MockReply::Ok {
        delay: Duration::from_millis(delay_ms),
        gap: Duration::from_millis(gap_ms),
        chunks: (0..n).map(|i| format!("w{i} ")).collect(),
        prompt_tokens: 40,
    }
}

#[test]
fn the_gateway_log_replays_and_fits_with_no_mapping() {
    let dir = std::env::temp_dir().join(format!("routesim-gateway-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("requests.jsonl");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (ok, failed, first_run) = rt.block_on(async {
        let m0 = MockUpstream::start(reply(20, 2, 12)).await;
        let m1 = MockUpstream::start(reply(40, 3, 20)).await;
        // Two 5xx on e0 (fewer than the circuit breaker's default 5 in a row): failed first attempts,
        // served by the fallback.
        m0.script((0..2).map(|_| MockReply::status(503)));
        // Two runs of the gateway on the same log, 1.5 s each: the second continues the first's ids and
        // arrivals, so the log reads as one.
        let (mut ok, mut failed, mut first_run) = (0, 0, 0);
        for run in 0..2 {
            let gw =
                routesim_gateway::start(gateway_config(&m0.base_url(), &m1.base_url(), &log)).await.expect("start");
            let c = client();
            let spec = |stream: bool| LoadSpec {
                url: format!("{}/v1/chat/completions", gw.url()),
                body: serde_json::json!({"model": "auto", "stream": stream, "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Replay me through routesim."}]})
                .to_string()
                .into(),
                rate: 60.0,
                duration: Duration::from_millis(1500),
                timeout: Duration::from_secs(10),
            };
            let (plain, streamed) = (spec(false), spec(true));
            let (a, b) = tokio::join!(open_loop(&c, &plain), open_loop(&c, &streamed));
            gw.shutdown();
            gw.wait().await.expect("drained");
            ok += a.ok + b.ok;
            failed += a.failed + b.failed;
            if run == 0 {
                first_run = (a.ok + a.failed + b.ok + b.failed) as usize;
            }
        }
        (ok, failed, first_run)
    });
    assert_eq!((ok, failed), (360, 0));
    let text = std::fs::read_to_string(&log).expect("log written");
    assert_eq!(text.lines().count(), 360, "one row per request");
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let on = |id: &str| rows.iter().filter(|r| r["endpoint"] == id).count();
    assert!(on("e0") > 150 && on("e1") > 150, "round-robin: e0 {} e1 {}", on("e0"), on("e1"));
    assert_eq!(rows.iter().filter(|r| r["attempts"] == 2).count(), 2, "the two failed first attempts");
    assert_eq!(rows.iter().filter(|r| r["ttft_s"].is_number()).count(), 180, "a TTFT for every stream");
    let mut ids: Vec<u64> = rows.iter().map(|r| r["request_id"].as_u64().expect("id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=360).collect::<Vec<u64>>(), "the second run's ids follow the first's");
    let arrivals: Vec<f64> = rows.iter().map(|r| r["arrival_s"].as_f64().expect("arrival")).collect();
    // Rows are written as requests end, so a run's arrivals are not in file order; the runs' rows are.
    let (first_run_last, second_run_first) = (
        arrivals[..first_run].iter().copied().fold(0.0, f64::max),
        arrivals[first_run..].iter().copied().fold(f64::INFINITY, f64::min),
    );
    assert!(
        second_run_first >= first_run_last,
        "arrivals go on after the restart: {first_run_last} then {second_run_first}"
    );

    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).expect("scenario");
    let out_dir = dir.join("replay");
    let routesim = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_routesim")).args(args).output().expect("runs");
    let out = routesim(&[
        "replay",
        scenario.to_str().expect("utf-8"),
        "--log",
        log.to_str().expect("utf-8"),
        "--replications",
        "2",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("as logged") && stdout.contains("360 of 360 rows, 0 malformed"), "{stdout}");
    assert!(out_dir.join("summary.csv").is_file());

    let providers = dir.join("providers.toml");
    let fit = routesim(&["fit", "--log", log.to_str().expect("utf-8"), "--out", providers.to_str().expect("utf-8")]);
    assert!(fit.status.success(), "fit failed: {}", String::from_utf8_lossy(&fit.stderr));
    let fitted = std::fs::read_to_string(&providers).expect("providers.toml");
    for id in ["id = \"e0\"", "id = \"e1\""] {
        assert!(fitted.contains(id), "{id} missing from\n{fitted}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#![cfg(feature = "live")]
//! `routesim mock` and `routesim load` as commands: the mock binary serves a scenario's endpoints, a gateway
//! routes to them, and `routesim load --log` sends a log's arrivals through the gateway at their scheduled
//! times (scaled), measuring in scenario time.
//!
//! Everything runs on 127.0.0.1 with ephemeral ports, bounded in requests and time; the mock process is
//! killed when the test ends, whatever happens.

mod common;

use sim::scenario::Scenario;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Kills the child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("live-cli", name)
}

/// Two endpoints with constant service times (TTFT 200 ms, then 10 tokens at 20 ms: 380 ms in all) and no
/// errors, round robin.
const SCENARIO: &str = r#"
name = "cli-mock"
seed = 7
requests = 10
[traffic]
rate = 2.0
[[traffic.classes]]
name = "chat"
input_tokens = { dist = "constant", value = 100 }
output_tokens = { dist = "constant", value = 10 }
[[endpoints]]
id = "a"
ttft = { dist = "constant", value = "200ms" }
tpot = { dist = "constant", value = "20ms" }
[[endpoints]]
id = "b"
ttft = { dist = "constant", value = "200ms" }
tpot = { dist = "constant", value = "20ms" }
[[policies]]
name = "rr"
kind = "round-robin"
"#;

/// A generic-schema log: `n` chat requests 0.5 s apart (scenario time), in shuffled row order.
fn write_log(path: &Path, n: usize) {
    let mut rows: Vec<String> =
        (0..n).map(|i| format!("{i},{:.3},chat,100,10,a,0.2,0.38,ok,0.0,,false,false", 0.5 * i as f64)).collect();
    rows.reverse();
    let header = "request_id,arrival_s,class,input_tokens,output_tokens,endpoint,ttft_s,latency_s,status,cost_usd,\
                  cache_key,deferrable,output_known";
    std::fs::write(path, format!("{header}\n{}\n", rows.join("\n"))).expect("write log");
}

#[test]
fn routesim_load_sends_a_logs_arrivals_through_a_gateway_to_routesim_mock() {
    const SCALE: f64 = 5.0;
    const ROWS: usize = 12;
    let dir = scratch("load");
    let scenario_path = dir.join("scenario.toml");
    std::fs::write(&scenario_path, SCENARIO).unwrap();
    let log = dir.join("log.csv");
    write_log(&log, ROWS);
    let exe = env!("CARGO_BIN_EXE_routesim");

    // `routesim mock` on an ephemeral port: its first lines name the address and each endpoint's base URL.
    let mut mock = KillOnDrop(
        Command::new(exe)
            .args(["mock", scenario_path.to_str().unwrap(), "--listen", "127.0.0.1:0", "--time-scale"])
            .arg(SCALE.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("routesim mock starts"),
    );
    let mut lines = BufReader::new(mock.0.stdout.take().unwrap()).lines();
    let banner = lines.next().expect("a banner").unwrap();
    assert!(banner.starts_with("mock providers of scenario \"cli-mock\" on 127.0.0.1:"), "{banner}");
    let mut base_urls = std::collections::HashMap::new();
    for _ in 0..2 {
        let line = lines.next().expect("a base URL per endpoint").unwrap();
        let mut parts = line.split_whitespace();
        let id = parts.next().unwrap().to_string();
        let url = line.split('"').nth(1).expect("a quoted base_url").to_string();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/{id}/v1")), "{line}");
        base_urls.insert(id, url);
    }

    // The production gateway in this process, over the mock's endpoints (the config `routesim live` writes).
    let model = Scenario::load(&scenario_path).unwrap().compile(&scenario_path).unwrap();
    let gateway_log = dir.join("gateway-log.jsonl");
    let text =
        routesim_live::harness::gateway_config(&model, 0, 0, SCALE, &|id| base_urls[id].clone(), &gateway_log).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cfg = routesim_gateway::GatewayConfig::parse(Path::new("gateway.toml"), &text, None, &|_| None).unwrap();
    let gw = rt.block_on(routesim_gateway::start(cfg)).expect("gateway starts");

    // `routesim load --log`: the log's arrivals, not the scenario's traffic.
    let results = dir.join("results.csv");
    let out = Command::new(exe)
        .args(["load", scenario_path.to_str().unwrap(), "--target", gw.url().as_str()])
        .args(["--log", log.to_str().unwrap(), "--requests", &ROWS.to_string(), "--time-scale"])
        .arg(SCALE.to_string())
        .args(["--out", results.to_str().unwrap()])
        .output()
        .expect("routesim load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("{ROWS} requests sent to {}", gw.url())), "{stdout}");
    gw.shutdown();
    rt.block_on(gw.wait()).unwrap();

    // Every row was sent at its scheduled time and came back with the mock's service time, in scenario time.
    let mut r = csv::Reader::from_path(&results).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), ROWS);
    let mut scheduled: Vec<f64> = rows.iter().map(|x| x[1].parse().unwrap()).collect();
    scheduled.sort_by(f64::total_cmp);
    for (i, s) in scheduled.iter().enumerate() {
        assert!((s - 0.5 * i as f64).abs() < 1e-6, "row {i} scheduled at {s} s, the log says {}", 0.5 * i as f64);
    }
    for x in &rows {
        assert_eq!(&x[4], "200", "{x:?}");
        let latency: f64 = x[6].parse().unwrap();
        // 380 ms of service plus the gateway and loopback, a few real ms times the scale.
        assert!((0.38..0.38 + 0.2).contains(&latency), "latency {latency} s in scenario time: {x:?}");
    }
    let endpoints: std::collections::HashSet<&str> = rows.iter().map(|x| x.get(8).unwrap()).collect();
    assert_eq!(endpoints.len(), 2, "round robin over both mock endpoints: {endpoints:?}");

    // The gateway saw the requests at the log's pace, scaled: 0.5 s apart in scenario time, 0.1 s real.
    let mut arrivals: Vec<f64> = std::fs::read_to_string(&gateway_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["arrival_s"].as_f64().unwrap())
        .collect();
    assert_eq!(arrivals.len(), ROWS);
    arrivals.sort_by(f64::total_cmp);
    let span = arrivals[ROWS - 1] - arrivals[0];
    let expected = 0.5 * (ROWS - 1) as f64 / SCALE;
    assert!((span - expected).abs() < 0.05, "first to last arrival {span:.3} s real, expected {expected:.3} s");
    drop(mock);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_commands_name_what_is_wrong_with_their_arguments() {
    let exe = env!("CARGO_BIN_EXE_routesim");
    let dir = scratch("args");
    let scenario_path = dir.join("scenario.toml");
    std::fs::write(&scenario_path, SCENARIO).unwrap();
    let s = scenario_path.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(exe).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["mock", s, "--time-scale", "0", "--listen", "127.0.0.1:0"]);
    assert!(e.contains("--time-scale: expected a positive number, found 0"), "{e}");
    let e = run(&["load", s, "--target", "http://example.com:80"]);
    assert!(e.contains("loopback"), "{e}");
    let e = run(&["live", s, "--policy", "rr", "--replications", "0"]);
    assert!(e.contains("--replications: expected at least 1"), "{e}");
    let e = run(&["live", s, "--policy", "rr", "--canary", "rr"]);
    assert!(e.contains("--canary: `rr` is already the served --policy"), "{e}");
    let e = run(&["live", s, "--policy", "rr", "--canary", "nope"]);
    assert!(e.contains("nope"), "{e}");
    let e = run(&["live", s, "--policy", "rr", "--canary", "rr", "--canary-fraction", "2"]);
    assert!(e.contains("--canary-fraction: expected a number in [0, 1], found 2"), "{e}");
    let e = run(&["live", s, "--policy", "rr", "--canary-fraction", "0.5"]);
    assert!(e.contains("--canary"), "a fraction without a canary: {e}");
    // Nothing listens: the load still ends, and says how many requests failed.
    let out = Command::new(exe)
        .args(["load", s, "--target", "http://127.0.0.1:9", "--requests", "3", "--time-scale", "20"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 requests sent") && stdout.contains("ok 0 (0.00%)"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn routesim_overhead_sends_the_same_schedule_direct_and_through_the_gateway() {
    let exe = env!("CARGO_BIN_EXE_routesim");
    let dir = scratch("overhead");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/gateway-overhead.toml");
    let out = Command::new(exe)
        .args(["overhead", scenario.to_str().unwrap(), "--rates", "100", "--duration", "1s"])
        .args(["--out", dir.to_str().unwrap()])
        .output()
        .expect("routesim overhead runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut r = csv::Reader::from_path(dir.join("overhead.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let modes: Vec<&str> = rows.iter().map(|x| x.get(0).unwrap()).collect();
    assert_eq!(modes, ["non-streaming", "streaming"], "both modes by default");
    for x in &rows {
        // About 100 Poisson arrivals in one second, none failed on either path.
        let n: f64 = x[2].parse().unwrap();
        assert!((60.0..=140.0).contains(&n), "{n} requests: {x:?}");
        assert_eq!((&x[3], &x[4]), ("0", "0"), "{x:?}");
        let (direct, gateway): (f64, f64) = (x[5].parse().unwrap(), x[7].parse().unwrap());
        assert!(direct > 0.0 && gateway > 0.0, "{x:?}");
        assert_eq!(x[9].parse::<f64>().unwrap(), gateway - direct, "overhead = gateway - direct");
    }
    // Every request through the gateway is in its log.
    let logged = std::fs::read_to_string(dir.join("gateway-log-non-streaming-100.jsonl")).unwrap().lines().count();
    assert_eq!(logged as f64, rows[0][2].parse::<f64>().unwrap());
    let bad = Command::new(exe).args(["overhead", scenario.to_str().unwrap(), "--modes", "bulk"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--modes: expected non-streaming or streaming, found `bulk`")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

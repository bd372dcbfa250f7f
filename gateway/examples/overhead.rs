//! The gateway's overhead benchmark (a benchmark, not a timed test).
//!
//! ```text
//! cargo run --release -p routesim-gateway --example overhead -- [--duration 30] [--rates 500,1000,2000]
//!     [--saturation 10] [--shards 1] [--modes non-streaming,streaming] [--lock-bench yes|no]
//!     [--shadow-bench yes|no|only]
//! ```
//!
//! Everything runs in this process on 127.0.0.1: a mock upstream, the gateway (round-robin over two
//! endpoints on that mock, request log on) and two open-loop load generators (`routesim_gateway::load`)
//! started together at the same rate, one straight to the mock and one through the gateway. Overhead at a
//! quantile = through-gateway latency minus direct latency at that quantile, measured side by side in one
//! run. Then the saturation throughput (closed loop, 64 workers), the peak RSS of the process, and the
//! router lock micro-benchmark (one `Mutex<Router>` shared by every thread against one router per thread),
//! and the shadow policy micro-benchmark: the router work of one request (decide, dispatch, result, as
//! `routing.rs` does it) over 16 endpoints without and with one shadow policy (its decision, its feedback,
//! its counters and its log object), alternated in blocks in one run, so that the extra cost per request is
//! a side-by-side difference.

use bytes::Bytes;
use router_core::{Decision, Outcome, RequestInfo, Router};
use routesim_gateway::GatewayConfig;
use routesim_gateway::load::{LoadReport, LoadSpec, closed_loop, open_loop};
use routesim_gateway::metrics::{overhead_buckets, overhead_quantile_us};
use routesim_gateway::mock::{MockReply, MockUpstream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    duration: u64,
    rates: Vec<f64>,
    saturation: u64,
    shards: usize,
    /// Which of non-streaming (`false`) and streaming (`true`) to run.
    modes: Vec<bool>,
    /// Whether to run the router lock micro-benchmark at the end.
    lock_bench: bool,
    /// Whether to run the shadow policy micro-benchmark at the end.
    shadow_bench: bool,
    /// Run only the shadow policy micro-benchmark (`--shadow-bench only`).
    shadow_only: bool,
}

/// Prints a usage error and exits with status 2.
fn usage(message: &str) -> ! {
    eprintln!(
        "error: {message}\nusage: overhead [--duration SECONDS] [--rates 500,1000,2000] [--saturation SECONDS] \
         [--shards N] \
         [--modes non-streaming,streaming] [--lock-bench yes|no] [--shadow-bench yes|no|only]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        duration: 30,
        rates: vec![500.0, 1000.0, 2000.0],
        saturation: 10,
        shards: 1,
        modes: vec![false, true],
        lock_bench: true,
        shadow_bench: true,
        shadow_only: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--duration" => a.duration = val.parse().unwrap_or_else(|_| usage("--duration takes whole seconds")),
            "--rates" => {
                a.rates = val
                    .split(',')
                    .map(|r| r.parse().unwrap_or_else(|_| usage("--rates takes numbers like 500,1000")))
                    .collect()
            }
            "--saturation" => a.saturation = val.parse().unwrap_or_else(|_| usage("--saturation takes whole seconds")),
            "--shards" => a.shards = val.parse().unwrap_or_else(|_| usage("--shards takes a whole number")),
            "--modes" => {
                a.modes = val
                    .split(',')
                    .map(|m| match m {
                        "non-streaming" => false,
                        "streaming" => true,
                        _ => usage("--modes takes non-streaming, streaming or both, comma-separated"),
                    })
                    .collect()
            }
            "--lock-bench" => {
                a.lock_bench = match val.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => usage("--lock-bench takes yes or no"),
                }
            }
            "--shadow-bench" => {
                (a.shadow_bench, a.shadow_only) = match val.as_str() {
                    "yes" => (true, false),
                    "no" => (false, false),
                    "only" => (true, true),
                    _ => usage("--shadow-bench takes yes, no or only"),
                }
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
        i += 2;
    }
    a
}

fn config(mock: &str, shards: usize, log: &Path) -> GatewayConfig {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
router_shards = {shards}

[request_log]
path = "{}"

[health]
interval = "0s"

[[endpoints]]
id = "a"
upstream = {{ base_url = "{mock}" }}

[[endpoints]]
id = "b"
upstream = {{ base_url = "{mock}" }}

[[policies]]
name = "rr"
kind = "round-robin"
"#,
        log.display()
    );
    GatewayConfig::parse(Path::new("bench.toml"), &text, None, &|_| None).expect("bench config")
}

fn us(r: &LoadReport, q: f64) -> f64 {
    r.quantile_us(q) as f64
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// decide + on_dispatch + on_result per request, from `threads` threads for `dur`: requests per second.
fn lock_bench(cfg: &router_core::RouterConfig, threads: usize, shared: bool, dur: Duration) -> f64 {
    let one = Arc::new(Mutex::new(Router::new(cfg).expect("router")));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let router = if shared { one.clone() } else { Arc::new(Mutex::new(Router::new(cfg).expect("router"))) };
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut req = RequestInfo::new(0, 500);
                while start.elapsed() < dur {
                    for _ in 0..256 {
                        n += 1;
                        req.id = n * 64 + t as u64;
                        let now = start.elapsed().as_nanos() as u64;
                        let d = router.lock().expect("lock").decide(&req, now);
                        if let Decision::Route { endpoint, .. } = d {
                            router.lock().expect("lock").on_dispatch(endpoint, &req, now);
                            let o = Outcome::success(1_000_000, None, 500, 100);
                            router.lock().expect("lock").on_result(endpoint, &req, &o, now + 1_000_000);
                        }
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// The shadow micro-benchmark: nanoseconds per request of the router work without and with one shadow
/// policy, over 16 endpoints, in alternating blocks of `block` requests for `rounds` rounds (one thread).
fn shadow_bench(rounds: usize, block: u64) -> (f64, f64) {
    use routesim_gateway::router_pool::RouterPool;
    let mut text = String::from("[server]\nlisten = \"127.0.0.1:0\"\n\n");
    for i in 0..16 {
        let price = 0.5 + i as f64 * 0.25;
        text.push_str(&format!(
            "[[endpoints]]\nid = \"ep{i}\"\nprice = {{ input_per_mtok = {price}, output_per_mtok = {price} }}\n\
             upstream = {{ base_url = \"http://127.0.0.1:9/v1\" }}\n\n"
        ));
    }
    text.push_str(
        "[[policies]]\nname = \"served\"\nkind = \"least-outstanding\"\n\n\
         [[policies]]\nname = \"candidate\"\nkind = \"latency\"\n\n[rollout]\nshadow = [\"candidate\"]\n",
    );
    let cfg = GatewayConfig::parse(Path::new("shadow-bench.toml"), &text, None, &|_| None).expect("bench config");
    let plain = RouterPool::new(&cfg.router, 1).expect("routers");
    let shadowed = RouterPool::with_rollout(&cfg.router, 1, &cfg.rollout).expect("routers");
    let ids: Vec<String> = cfg.router.endpoints.iter().map(|e| e.id.clone()).collect();
    let metrics = routesim_gateway::metrics::Metrics::new(&ids);
    let shadow_m = metrics.rollout.shadow_series(&["candidate".to_string()], &ids);
    let names = ["candidate".to_string()];
    let start = Instant::now();
    let mut id = 0u64;
    // One request as routing.rs serves it: decide, (shadow decisions), dispatch, result, (shadow counters and
    // the log's shadow object).
    let mut run = |pool: &RouterPool, n: u64| -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            id += 1;
            let req = RequestInfo::new(id, 500);
            let scope = router_core::Scope::default();
            let now = start.elapsed().as_nanos() as u64;
            let d = pool.with(0, |r| r.decide_in(&req, now, &scope));
            let mut shadow: Vec<Option<router_core::EndpointIdx>> = Vec::new();
            if pool.shadows() > 0 {
                pool.each_shadow(|_, _, r| {
                    shadow.push(match r.decide_in(&req, now, &scope) {
                        Decision::Route { endpoint, .. } => Some(endpoint),
                        _ => None,
                    })
                });
            }
            let Decision::Route { endpoint, .. } = d else { continue };
            pool.with(0, |r| r.on_dispatch(endpoint, &req, now));
            if !shadow.is_empty() {
                pool.each_shadow(|_, _, r| r.on_dispatch(endpoint, &req, now));
            }
            let o = Outcome::success(1_000_000 + (id % 7) * 100_000, None, 500, 100);
            let later = now + 1_000_000;
            pool.with(0, |r| r.on_result(endpoint, &req, &o, later));
            if !shadow.is_empty() {
                pool.each_shadow(|_, _, r| r.on_result(endpoint, &req, &o, later));
                let mut out = std::collections::BTreeMap::new();
                for ((c, m), name) in shadow.iter().zip(&shadow_m).zip(&names) {
                    m.decisions.inc();
                    if *c == Some(endpoint) {
                        m.agreements.inc();
                    }
                    m.choices[c.map_or(ids.len(), |e| e.get())].inc();
                    out.insert(name.clone(), c.map(|e| ids[e.get()].clone()));
                }
                std::hint::black_box(out);
            }
        }
        t.elapsed()
    };
    let (mut without, mut with) = (Duration::ZERO, Duration::ZERO);
    run(&plain, block);
    run(&shadowed, block);
    for _ in 0..rounds {
        without += run(&plain, block);
        with += run(&shadowed, block);
    }
    let per = |d: Duration| d.as_nanos() as f64 / (rounds as u64 * block) as f64;
    (per(without), per(with))
}

fn print_shadow_bench() {
    let (without, with) = shadow_bench(40, 20_000);
    println!();
    println!(
        "shadow policy micro-benchmark (16 endpoints, router work per request, one thread, 40 alternating blocks of 20000):"
    );
    println!("| without shadow (ns/req) | with one shadow (ns/req) | extra per shadow (ns) | ratio |");
    println!("|---|---|---|---|");
    println!("| {without:.0} | {with:.0} | {:.0} | {:.2} |", with - without, with / without);
}

fn main() {
    let a = args();
    if a.shadow_only {
        print_shadow_bench();
        return;
    }
    routesim_gateway::upstream::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let mock = MockUpstream::start(MockReply::ok(8)).await;
        let dir = std::env::temp_dir().join(format!("gw-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = config(&mock.base_url(), a.shards, &dir.join("requests.jsonl"));
        let router_cfg = cfg.router.clone();
        let gw = routesim_gateway::start(cfg).await.expect("gateway");
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4096)
            .build()
            .expect("client");
        let direct_url = format!("{}/chat/completions", mock.base_url());
        let gw_url = format!("{}/v1/chat/completions", gw.url());
        let body = |stream: bool| {
            Bytes::from(
                serde_json::json!({"model": "auto", "stream": stream, "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": "Benchmark prompt of a few words."}]})
                .to_string(),
            )
        };
        // Warm the pools.
        let warm = |url: String, stream: bool| LoadSpec {
            url,
            body: body(stream),
            rate: 500.0,
            duration: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        };
        let (wd, wg) = (warm(direct_url.clone(), false), warm(gw_url.clone(), false));
        tokio::join!(open_loop(&client, &wd), open_loop(&client, &wg));

        println!(
            "| mode | rate (req/s) | direct p50 / p99 (us) | gateway p50 / p99 (us) | overhead p50 | overhead p99 | gateway's own time p50 / p99 (bucket bound) | failed (direct / gateway) | generator lag max |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for &stream in &a.modes {
            for &rate in &a.rates {
                let spec = |url: &str| LoadSpec {
                    url: url.to_string(),
                    body: body(stream),
                    rate,
                    duration: Duration::from_secs(a.duration),
                    timeout: Duration::from_secs(10),
                };
                let (sd, sg) = (spec(&direct_url), spec(&gw_url));
                let before = overhead_buckets(&gw.app().metrics.render());
                let (d, g) = tokio::join!(open_loop(&client, &sd), open_loop(&client, &sg));
                let after = overhead_buckets(&gw.app().metrics.render());
                println!(
                    "| {} | {rate} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} us | {:.0} us | <= {:.0} / <= {:.0} us | {} / {} | {:.1} ms |",
                    if stream { "streaming" } else { "non-streaming" },
                    us(&d, 0.5),
                    us(&d, 0.99),
                    us(&g, 0.5),
                    us(&g, 0.99),
                    us(&g, 0.5) - us(&d, 0.5),
                    us(&g, 0.99) - us(&d, 0.99),
                    overhead_quantile_us(&before, &after, 0.5),
                    overhead_quantile_us(&before, &after, 0.99),
                    d.failed,
                    g.failed,
                    d.max_lag.max(g.max_lag).as_secs_f64() * 1e3,
                );
            }
        }
        if a.saturation > 0 {
            let dur = Duration::from_secs(a.saturation);
            let direct = closed_loop(&client, &direct_url, body(false), 64, dur).await;
            let through = closed_loop(&client, &gw_url, body(false), 64, dur).await;
            let through_s = closed_loop(&client, &gw_url, body(true), 64, dur).await;
            println!();
            println!(
                "saturation (closed loop, 64 workers, {}s, load generator and mock in the same process): direct {:.0} req/s; through the gateway {:.0} req/s non-streaming, {:.0} req/s streaming; failed {} / {} / {}",
                a.saturation,
                direct.throughput(),
                through.throughput(),
                through_s.throughput(),
                direct.failed,
                through.failed,
                through_s.failed
            );
        }
        let m = gw.app().metrics.render();
        let dropped = m
            .lines()
            .find_map(|l| l.strip_prefix("routesim_gateway_log_rows_dropped_total "))
            .unwrap_or("?")
            .to_string();
        println!("peak RSS of the whole process (gateway + mock + load generator): {:.0} MiB", peak_rss_mib());
        println!("request log rows dropped: {dropped}; router shards: {}", a.shards);
        gw.shutdown();
        let _ = gw.wait().await;
        let _ = std::fs::remove_dir_all(&dir);

        if a.shadow_bench {
            print_shadow_bench();
        }
        if !a.lock_bench {
            return;
        }
        println!();
        println!("router lock micro-benchmark (decide + on_dispatch + on_result, 2 s each):");
        println!("| threads | one Mutex<Router> (req/s) | one router per thread (req/s) |");
        println!("|---|---|---|");
        for threads in [1, 2, 4] {
            let shared = lock_bench(&router_cfg, threads, true, Duration::from_secs(2));
            let per = lock_bench(&router_cfg, threads, false, Duration::from_secs(2));
            println!("| {threads} | {shared:.0} | {per:.0} |");
        }
    });
}

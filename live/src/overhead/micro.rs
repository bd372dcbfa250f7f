//! Micro-benchmarks of the gateway's router work, without HTTP: the router lock (one `Mutex<Router>` shared
//! by every thread against one router per thread) and the cost of one shadow policy per request.
//! `routesim overhead --lock-bench`, `--shadow-bench`.

use router_core::{Decision, Outcome, RequestInfo, Router};
use routesim_gateway::GatewayConfig;
use routesim_gateway::router_pool::RouterPool;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Threads of the lock micro-benchmark's rows.
pub const LOCK_THREADS: [usize; 3] = [1, 2, 4];

/// The router lock micro-benchmark on `cfg` (2 s a cell) as a Markdown table with its title.
pub fn lock_table(cfg: &router_core::RouterConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "router lock micro-benchmark (decide + on_dispatch + on_result, 2 s each):");
    let _ = writeln!(out, "| threads | one Mutex<Router> (req/s) | one router per thread (req/s) |");
    let _ = writeln!(out, "|---|---|---|");
    for threads in LOCK_THREADS {
        let shared = lock_bench(cfg, threads, true, Duration::from_secs(2));
        let per = lock_bench(cfg, threads, false, Duration::from_secs(2));
        let _ = writeln!(out, "| {threads} | {shared:.0} | {per:.0} |");
    }
    out
}

/// The shadow policy micro-benchmark (40 alternating blocks of 20,000 requests) as a Markdown table with its
/// title.
pub fn shadow_table() -> anyhow::Result<String> {
    let (without, with) = shadow_bench(40, 20_000)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "shadow policy micro-benchmark (16 endpoints, router work per request, one thread, 40 alternating blocks of 20000):"
    );
    let _ = writeln!(out, "| without shadow (ns/req) | with one shadow (ns/req) | extra per shadow (ns) | ratio |");
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(out, "| {without:.0} | {with:.0} | {:.0} | {:.2} |", with - without, with / without);
    Ok(out)
}

/// decide + on_dispatch + on_result per request, from `threads` threads for `dur`: requests per second.
pub fn lock_bench(cfg: &router_core::RouterConfig, threads: usize, shared: bool, dur: Duration) -> f64 {
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
pub fn shadow_bench(rounds: usize, block: u64) -> anyhow::Result<(f64, f64)> {
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
    let cfg = GatewayConfig::parse(Path::new("shadow-bench.toml"), &text, None, &|_| None)
        .map_err(|e| anyhow::anyhow!("the shadow benchmark's config is invalid: {e}"))?;
    let plain = RouterPool::new(&cfg.router, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shadowed = RouterPool::with_rollout(&cfg.router, 1, &cfg.rollout).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    Ok((per(without), per(with)))
}

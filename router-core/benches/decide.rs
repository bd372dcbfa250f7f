//! Cost of one routing decision with its feedback, per policy and endpoint count.
//!
//! Each iteration is one request: `decide` + `on_dispatch` + `on_result`, with the clock advancing 1 ms per
//! request (1,000 requests/s), over a pool of 1024 requests with metadata (user, plan, region, priority),
//! task classes, and endpoints with prices, tiers, limits and capabilities (see `tests/common/workload.rs`).
//! Bench ids are `decide/<policy>/<n>` for every policy kind and n in 4, 16, 64.
//!
//! ```text
//! cargo bench -p router-core --bench decide
//! cargo bench -p router-core --bench decide -- --warm-up-time 1 --measurement-time 2   # quicker
//! ```

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use router_core::PolicyKind;
use std::hint::black_box;

#[path = "../tests/common/workload.rs"]
mod workload;

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for kind in PolicyKind::ALL {
        for n in [4usize, 16, 64] {
            let mut driver = workload::Driver::new(kind, n);
            // Warm the averages, windows and circuits up before timing.
            for _ in 0..10_000 {
                driver.step();
            }
            group.bench_function(BenchmarkId::new(kind.name(), n), |b| b.iter(|| black_box(driver.step())));
        }
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);

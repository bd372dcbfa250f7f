#[path = "../tests/common/workload.rs"]
mod workload;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = router_core::PolicyKind::ALL.into_iter().find(|k| k.name() == args[1]).unwrap();
    let n: usize = args[2].parse().unwrap();
    let iters: u64 = args[3].parse().unwrap();
    let mut d = workload::Driver::new(kind, n);
    for _ in 0..iters {
        std::hint::black_box(d.step());
    }
}

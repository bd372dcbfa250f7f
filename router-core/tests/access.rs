//! Properties of the per-key meter: whatever the arrival times and request lengths, the limits hold.

use proptest::prelude::*;
use router_core::{KeyLimits, KeyMeter, NANOS_PER_SEC};

proptest! {
    /// No sliding minute ever holds more than `rpm` admissions, no instant more than `concurrency` requests
    /// in flight, and every denial names a retry time in the future.
    #[test]
    fn rpm_and_concurrency_are_never_exceeded(
        rpm in 1u32..20,
        conc in 1u32..5,
        gaps in proptest::collection::vec(0u64..5_000, 1..300),
        lens in proptest::collection::vec(0u64..20_000, 300),
    ) {
        let mut m = KeyMeter::new(KeyLimits { rpm: Some(rpm), concurrency: Some(conc), ..Default::default() });
        let ms = NANOS_PER_SEC / 1000;
        let mut now = 0u64;
        let mut admitted: Vec<u64> = Vec::new();
        let mut open: Vec<(u64, router_core::Admission)> = Vec::new();
        for (i, g) in gaps.iter().enumerate() {
            now += g * ms;
            open.retain(|(end, a)| if *end <= now { m.finish(*end, *a, 10, 0.0); false } else { true });
            match m.admit(now, 10) {
                Ok(a) => {
                    admitted.push(now);
                    open.push((now + lens[i] * ms, a));
                    prop_assert!(open.len() as u32 <= conc);
                    let in_window = admitted.iter().filter(|&&t| t + 60 * NANOS_PER_SEC > now).count();
                    prop_assert!(in_window as u32 <= rpm);
                }
                Err(d) => prop_assert!(d.retry_after > 0),
            }
        }
    }

    /// Spend added in a day is what the record holds, and a budget of B denies once B is reached.
    #[test]
    fn daily_spend_adds_up(costs in proptest::collection::vec(0.0f64..0.5, 1..50)) {
        let mut m = KeyMeter::new(KeyLimits { daily_budget_usd: Some(2.0), ..Default::default() });
        let mut spent = 0.0;
        for (i, c) in costs.iter().enumerate() {
            let now = i as u64 * NANOS_PER_SEC;
            match m.admit(now, 1) {
                Ok(a) => { m.finish(now, a, 1, *c); spent += c; }
                Err(_) => prop_assert!(spent >= 2.0),
            }
        }
        prop_assert!((m.spend().day_usd - spent).abs() < 1e-9);
    }
}

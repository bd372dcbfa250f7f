//! The TPM estimate: the quota filter and `on_dispatch` count a request's tokens the same way, so an endpoint
//! is filled exactly to its TPM limit and not past it.

mod common;

use common::*;
use router_core::{Outcome, RequestInfo};

const TPM: &str = "[[endpoints]]\nid = \"a\"\nlimits = { tpm = 1000 }\n[[endpoints]]\nid = \"b\"\n\
                   [policy]\nname = \"f\"\nkind = \"fallback\"\ntargets = [\"a\", \"b\"]\n";

/// A request of `input` tokens that does not say how many it will produce (so 256 output tokens are assumed).
fn open_ended(id: u64, input: u32) -> RequestInfo {
    RequestInfo::new(id, input)
}

#[test]
fn the_filter_and_on_dispatch_count_the_same_tpm_estimate() {
    let mut r = router(TPM);
    let a = idx(&r, "a");
    // 244 input + 256 assumed output = 500 tokens.
    let first = open_ended(1, 244);
    assert_eq!(r.tracking().tpm_estimate(&first), 500);
    assert_eq!(pick_id(&mut r, &first, 0), "a");
    r.on_dispatch(a, &first, 0);
    assert_eq!(r.state(a).window_tokens(), 500, "on_dispatch counts what the filter counted");
    // 500 of 1000 used: a request of 501 tokens does not fit, one of exactly 500 does.
    assert!(!r.is_eligible(a, &open_ended(2, 245), 0), "500 + 501 > 1000");
    assert_eq!(pick_id(&mut r, &open_ended(2, 245), 0), "b");
    assert!(r.is_eligible(a, &open_ended(3, 244), 0), "500 + 500 = 1000 fits");
    let second = open_ended(3, 244);
    assert_eq!(pick_id(&mut r, &second, 0), "a");
    r.on_dispatch(a, &second, 0);
    assert_eq!(r.state(a).window_tokens(), 1000);
    // Full: even a one-token request (1 + 256) goes elsewhere.
    assert_eq!(pick_id(&mut r, &open_ended(4, 1), 0), "b");
    // A request that says how much it will produce is counted as input + that.
    let mut r = router(TPM);
    let sized = RequestInfo { expected_output_tokens: Some(600), ..RequestInfo::new(5, 400) };
    assert_eq!(pick_id(&mut r, &sized, 0), "a");
    r.on_dispatch(a, &sized, 0);
    assert_eq!(r.state(a).window_tokens(), 1000);
    assert_eq!(pick_id(&mut r, &open_ended(6, 1), 0), "b");
}

#[test]
fn on_result_adds_only_the_tokens_beyond_the_estimate() {
    let mut r = router(TPM);
    let a = idx(&r, "a");
    // 100 + 256 counted at dispatch; 300 were produced: 44 more.
    let long = open_ended(1, 100);
    r.on_dispatch(a, &long, 0);
    r.on_result(a, &long, &Outcome::success(1_000_000, None, 100, 300), 0);
    assert_eq!(r.state(a).window_tokens(), 400);
    // 100 + 256 counted; 50 produced: the reservation stays (the window never gives tokens back).
    let short = open_ended(2, 100);
    r.on_dispatch(a, &short, 0);
    r.on_result(a, &short, &Outcome::success(1_000_000, None, 100, 50), 0);
    assert_eq!(r.state(a).window_tokens(), 756);
}

//! Quality routing: the cheapest endpoint whose predicted acceptance for the request meets a bar.

use super::cost::expected_cost;
use super::predict::QualityTable;
use super::{Ctx, Policy, WeightedTarget};
use crate::model::{EndpointIdx, RequestInfo};
use std::sync::Arc;

/// Among the eligible targets (after the shared filter: health, circuit, quota, capability, context), the
/// cheapest whose predicted acceptance of the request is at least `min_quality` (see
/// [`QualityTable::predict`]). When none meets the bar, the one with the highest predicted acceptance: the
/// request spills upward, to better endpoints, never down. Ties go to the lower cost, then to the earlier
/// target. (The router's build rejects a target without an accuracy for some class; should one still lack a
/// prediction, it never meets the bar and is chosen only when no candidate has one.)
#[derive(Debug)]
pub struct QualityBar {
    targets: Vec<WeightedTarget>,
    min_quality: f64,
    table: Arc<QualityTable>,
}

impl QualityBar {
    /// Quality routing over `targets` at bar `min_quality` (0..=1), predicting with `table`.
    pub fn new(targets: Vec<WeightedTarget>, min_quality: f64, table: Arc<QualityTable>) -> Self {
        QualityBar { targets, min_quality, table }
    }
}

/// The best candidate so far: whether it meets the bar, its prediction and its cost.
#[derive(Clone, Copy)]
struct Best {
    index: usize,
    meets: bool,
    predicted: f64,
    cost: f64,
}

impl Best {
    /// Whether `other` beats `self`: meeting the bar first; then, among those meeting it, the lower cost, and
    /// among those missing it, the higher prediction, then the lower cost. Equal candidates keep the earlier.
    #[inline]
    fn beaten_by(&self, other: &Best) -> bool {
        if self.meets != other.meets {
            return other.meets;
        }
        if !self.meets && other.predicted != self.predicted {
            return other.predicted > self.predicted;
        }
        other.cost < self.cost
    }
}

impl Policy for QualityBar {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        let default_out = ctx.tracking.default_output_tokens;
        let predictor = self.table.predictor(req.task_class.as_deref());
        let start = ctx.gather(&self.targets, req);
        let mut best: Option<Best> = None;
        let n = ctx.candidates(start).len();
        for i in 0..n {
            let e = ctx.scratch[start + i].ep;
            // No prediction ranks below every prediction (-1 < 0).
            let predicted = predictor.predict(e, req.difficulty).unwrap_or(-1.0);
            let cand = Best {
                index: i,
                meets: predicted >= self.min_quality,
                predicted,
                cost: expected_cost(ctx, e, req, default_out),
            };
            if best.is_none_or(|b| b.beaten_by(&cand)) {
                best = Some(cand);
            }
        }
        let chosen = best.map(|b| b.index);
        let picked = chosen.map(|i| ctx.scratch[start + i].ep);
        ctx.settle(start, chosen);
        ctx.release(start);
        picked
    }
}

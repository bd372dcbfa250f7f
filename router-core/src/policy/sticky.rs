//! Sticky routing: the same key keeps going to the same endpoint, by consistent hashing.

use super::{Ctx, Policy, Target, WeightedTarget};
use crate::keyed_rand::mix64;
use crate::model::{EndpointIdx, RequestInfo, fnv1a};

/// Hashes a metadata field (`key`: a user, session or tenant id) onto a ring on which every target owns
/// `virtual_nodes` points, and sends the request to the owner of the first point at or after the hash.
/// The same key keeps its endpoint while that endpoint stays eligible (prompt caches and conversation state
/// stay warm); when it is not, the request walks on to the next owner on the ring, and comes back when the
/// endpoint recovers. Adding one endpoint to n moves only about 1/(n+1) of the keys.
///
/// Requests without the key go to `default`; without a default, or when nothing in it is eligible, to a ring
/// position derived from the request id.
#[derive(Debug)]
pub struct Sticky {
    key: String,
    targets: Vec<WeightedTarget>,
    ring: Vec<(u64, u16)>,
    default: Option<Target>,
}

impl Sticky {
    /// A ring over `targets`, whose names (stable across configs) place their points: `names[i]` is the name of
    /// `targets[i]`. At most [`crate::MAX_ENDPOINTS`] targets take part.
    pub fn new(
        key: String,
        targets: Vec<WeightedTarget>,
        names: &[String],
        virtual_nodes: u32,
        default: Option<Target>,
    ) -> Self {
        debug_assert_eq!(names.len(), targets.len(), "one name per target");
        let mut ring: Vec<(u64, u16)> = names
            .iter()
            .take(targets.len().min(crate::MAX_ENDPOINTS))
            .enumerate()
            .flat_map(|(i, name)| {
                let base = fnv1a(name.as_bytes());
                (0..virtual_nodes as u64).map(move |v| (mix64(base ^ mix64(v)), i as u16))
            })
            .collect();
        ring.sort_unstable();
        Sticky { key, targets, ring, default }
    }

    fn walk(&self, ctx: &mut Ctx<'_>, req: &RequestInfo, hash: u64) -> Option<EndpointIdx> {
        if self.ring.is_empty() {
            return None;
        }
        let start = self.ring.partition_point(|(p, _)| *p < hash);
        // The router caps a policy's targets at MAX_ENDPOINTS, so a 256-bit set covers them.
        let mut tried = [0u64; 4];
        let mut left = self.targets.len();
        for k in 0..self.ring.len() {
            let t = self.ring[(start + k) % self.ring.len()].1 as usize;
            if tried[t / 64] & (1 << (t % 64)) != 0 {
                continue;
            }
            tried[t / 64] |= 1 << (t % 64);
            left = left.saturating_sub(1);
            if let Some(ep) = ctx.resolve(self.targets[t].target, req) {
                return Some(ep);
            }
            if left == 0 {
                break;
            }
        }
        None
    }
}

impl Policy for Sticky {
    fn select(&self, ctx: &mut Ctx<'_>, req: &RequestInfo) -> Option<EndpointIdx> {
        match req.meta(&self.key) {
            Some(v) => self.walk(ctx, req, mix64(v.stable_hash())),
            None => match self.default {
                Some(d) => ctx.resolve(d, req).or_else(|| self.walk(ctx, req, mix64(req.id))),
                None => self.walk(ctx, req, mix64(req.id)),
            },
        }
    }
}

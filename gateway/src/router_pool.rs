//! The routers a generation serves with, behind their locks, and the monotonic clock they are fed: the
//! control arm's and the canary arm's shards and the shadow routers of `[rollout]`. A reload builds the next
//! pool as the [`RouterPool::successor`] of the one in force, so routers keep what they learned.

use crate::rollout::Rollout;
use router_core::{ConfigError, Nanos, Router, RouterConfig};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The routers behind their locks, and the monotonic clock they are fed: the served policy's (the control
/// arm), the canary policy's when `[rollout]` has one (as many shards each), and one router per shadow
/// policy (fed by every shard).
pub struct RouterPool {
    /// `arms[0]`: control; `arms[1]`: canary.
    arms: Vec<Vec<Mutex<Router>>>,
    /// Shadow routers, in `[rollout] shadow` order, with their policy names.
    shadows: Vec<(String, Mutex<Router>)>,
    epoch: Instant,
    /// Where router time 0 (`epoch`) falls in its UTC minute, in nanoseconds: the LiteLLM compat policies key
    /// their per-minute counters by the calendar minute, as LiteLLM does (`Router::set_calendar_origin`).
    calendar_origin: Nanos,
}

/// Nanoseconds since the start of the current UTC minute (0 if the system clock is before 1970).
fn into_utc_minute() -> Nanos {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (since_epoch.as_nanos() % 60_000_000_000) as Nanos
}

impl RouterPool {
    /// `n` routers built from `cfg` (1 = one router behind one mutex).
    pub fn new(cfg: &RouterConfig, n: usize) -> Result<RouterPool, ConfigError> {
        Self::with_rollout(cfg, n, &Rollout::default())
    }

    /// `n` routers of `cfg` and, for `rollout`, `n` of the canary policy and one per shadow policy.
    pub fn with_rollout(cfg: &RouterConfig, n: usize, rollout: &Rollout) -> Result<RouterPool, ConfigError> {
        Self::built(cfg, n, rollout, Instant::now(), into_utc_minute())
    }

    /// The pool's routers, with time 0 at `epoch`, `calendar_origin` nanoseconds into its UTC minute.
    fn built(
        cfg: &RouterConfig,
        n: usize,
        rollout: &Rollout,
        epoch: Instant,
        calendar_origin: Nanos,
    ) -> Result<RouterPool, ConfigError> {
        let new = |c: &RouterConfig| {
            let mut r = Router::new(c)?;
            r.set_calendar_origin(calendar_origin);
            Ok::<_, ConfigError>(r)
        };
        let build = |c: &RouterConfig| (0..n.max(1)).map(|_| new(c).map(Mutex::new)).collect::<Result<Vec<_>, _>>();
        let mut arms: Vec<Vec<Mutex<Router>>> = vec![build(cfg)?];
        if let Some(c) = &rollout.canary {
            arms.push(build(&c.router)?);
        }
        let shadows = rollout
            .shadows
            .iter()
            .map(|c| Ok((c.policy.name.clone(), Mutex::new(new(c)?))))
            .collect::<Result<_, ConfigError>>()?;
        Ok(RouterPool { arms, shadows, epoch, calendar_origin })
    }

    /// The pool of a reloaded configuration: same clock and shard count; each new router adopts the state
    /// of the endpoints it keeps (by id, see `Router::adopt_state`) from its counterpart here: control
    /// shard `i` from control shard `i`, canary shard `i` from canary shard `i` (control's when there was
    /// no canary), a shadow from the shadow of the same name (control shard 0's when it is new).
    pub fn successor(&self, cfg: &RouterConfig, rollout: &Rollout) -> Result<RouterPool, ConfigError> {
        let mut next = Self::built(cfg, self.len(), rollout, self.epoch, self.calendar_origin)?;
        // Each old router is locked only while its state is copied.
        fn lock(m: &Mutex<Router>) -> std::sync::MutexGuard<'_, Router> {
            m.lock().unwrap_or_else(|p| p.into_inner())
        }
        for (a, arm) in next.arms.iter_mut().enumerate() {
            let from = self.arms.get(a).unwrap_or(&self.arms[0]);
            for (i, m) in arm.iter_mut().enumerate() {
                let new = m.get_mut().unwrap_or_else(|p| p.into_inner());
                new.adopt_state(&lock(&from[i]));
            }
        }
        for (name, m) in next.shadows.iter_mut() {
            let new = m.get_mut().unwrap_or_else(|p| p.into_inner());
            match self.shadows.iter().find(|(n, _)| n == name) {
                Some((_, old)) => new.adopt_state(&lock(old)),
                None => new.adopt_state(&lock(&self.arms[0][0])),
            };
        }
        Ok(next)
    }

    /// Where router time 0 falls in its UTC minute, in nanoseconds (see [`Router::set_calendar_origin`]).
    pub fn calendar_origin(&self) -> Nanos {
        self.calendar_origin
    }

    /// Nanoseconds since the pool was built.
    pub fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    /// The instant of router time `t`.
    pub fn instant_at(&self, t: Nanos) -> Instant {
        self.epoch + Duration::from_nanos(t)
    }

    /// Number of routers per arm.
    pub fn len(&self) -> usize {
        self.arms[0].len()
    }

    /// Whether there are no routers (never: there is at least one).
    pub fn is_empty(&self) -> bool {
        self.arms[0].is_empty()
    }

    /// The router that serves request `id`.
    pub fn shard_of(&self, id: u64) -> usize {
        (id % self.arms[0].len() as u64) as usize
    }

    /// Calls `f` with the control arm's router `shard` locked. Never hold it across an await: `f` is
    /// synchronous.
    pub fn with<R>(&self, shard: usize, f: impl FnOnce(&mut Router) -> R) -> R {
        self.with_arm(0, shard, f)
    }

    /// Calls `f` with router `shard` of arm `arm` (0 control, 1 canary) locked.
    pub fn with_arm<R>(&self, arm: usize, shard: usize, f: impl FnOnce(&mut Router) -> R) -> R {
        let mut g = self.arms[arm][shard].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Calls `f` on every serving router (every shard of every arm) in turn, with its arm and shard.
    pub fn each(&self, mut f: impl FnMut(usize, usize, &mut Router)) {
        for (a, arm) in self.arms.iter().enumerate() {
            for (i, m) in arm.iter().enumerate() {
                let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
                f(a, i, &mut g);
            }
        }
    }

    /// Number of shadow routers.
    pub fn shadows(&self) -> usize {
        self.shadows.len()
    }

    /// Calls `f` on every shadow router in turn, with its index and policy name.
    pub fn each_shadow(&self, mut f: impl FnMut(usize, &str, &mut Router)) {
        for (i, (name, m)) in self.shadows.iter().enumerate() {
            let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
            f(i, name, &mut g);
        }
    }

    /// The name of the policy of arm `arm`.
    pub fn policy_name(&self, arm: usize) -> String {
        self.with_arm(arm, 0, |r| r.name().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::{Endpoint, PolicyKind, PolicySpec};

    fn config() -> RouterConfig {
        RouterConfig {
            endpoints: vec![Endpoint::new("a"), Endpoint::new("b")],
            policy: PolicySpec::new("rr", PolicyKind::RoundRobin),
            groups: vec![],
            seed: 1,
            quality: Default::default(),
        }
    }

    /// Router time 0 sits where the pool was built in its UTC minute (LiteLLM's per-minute counters roll on the
    /// calendar minute), and a reload's pool keeps the same clock.
    #[test]
    fn router_time_zero_sits_at_the_pools_second_of_the_utc_minute_and_reloads_keep_it() {
        let before = into_utc_minute();
        let pool = RouterPool::new(&config(), 2).unwrap();
        let after = into_utc_minute();
        let origin = pool.calendar_origin();
        let within =
            if before <= after { (before..=after).contains(&origin) } else { origin >= before || origin <= after };
        assert!(within, "origin {origin} not between {before} and {after}");
        let next = pool.successor(&config(), &Rollout::default()).unwrap();
        assert_eq!(next.calendar_origin(), origin);
        assert_eq!(next.instant_at(0), pool.instant_at(0));
    }
}

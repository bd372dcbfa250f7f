//! Per-client-key limits and budgets, as a clock-free meter shared by the gateway and the simulator.
//!
//! A client key may carry requests-per-minute, tokens-per-minute and concurrency limits and a spend budget in
//! USD per calendar day and per calendar month (UTC). A [`KeyMeter`] holds one key's usage and answers
//! [`KeyMeter::admit`] before a request is routed; the caller reports the request's end with
//! [`KeyMeter::finish`] (tokens used and cost, priced with the endpoint's [`crate::Price`] as everywhere
//! else). Time is an argument, in nanoseconds since the Unix epoch on the caller's clock: the gateway passes
//! wall-clock time, the simulator its virtual time (which starts on 1970-01-01, so its days are 86 400 s long
//! and its months are calendar months).
//!
//! - RPM: an exact sliding window of the last minute's admissions; `Retry-After` is when the oldest leaves.
//! - TPM: a sliding minute of one-second buckets. Admission reserves the request's estimated tokens in the
//!   second it starts; its end takes the reservation back (if still in the window) and counts the tokens
//!   actually used in the second it ends. A request is denied when the window's tokens plus its own
//!   estimate would exceed the limit (so a single request estimated above the limit is never admitted).
//! - Concurrency: requests admitted and not yet finished.
//! - Budgets: spend is charged when a request ends (its cost is known then); a key whose spend in the
//!   current day (or month) has reached the budget is denied until the period turns. In-flight requests may
//!   overshoot a budget by their own cost: spend is never reserved ahead, since the cost of an answer is not
//!   known before it.
//!
//! [`SpendRecord`] is the part worth keeping across restarts (the gateway persists it).

use crate::model::{NANOS_PER_SEC, Nanos};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One minute in nanoseconds.
const MINUTE: Nanos = 60 * NANOS_PER_SEC;
/// Seconds in a day.
const DAY_SECS: u64 = 86_400;

/// The limits and budgets of one client key (each absent: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests admitted per sliding minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens (input + output) per sliding minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Spend per calendar day (UTC), USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget_usd: Option<f64>,
    /// Spend per calendar month (UTC), USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget_usd: Option<f64>,
}

impl KeyLimits {
    /// The first invalid field (`rpm`, `tpm`, ...) and what was expected, if any.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.rpm == Some(0) {
            return Err(("rpm", "expected a positive number of requests per minute (omit it for no limit)".into()));
        }
        if self.tpm == Some(0) {
            return Err(("tpm", "expected a positive number of tokens per minute (omit it for no limit)".into()));
        }
        if self.concurrency == Some(0) {
            return Err(("concurrency", "expected a positive number of requests (omit it for no limit)".into()));
        }
        for (name, b) in [("daily_budget_usd", self.daily_budget_usd), ("monthly_budget_usd", self.monthly_budget_usd)]
        {
            if let Some(b) = b
                && !(b.is_finite() && b >= 0.0)
            {
                return Err((name, format!("expected a budget in USD >= 0, found {b}")));
            }
        }
        Ok(())
    }

    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == KeyLimits::default()
    }
}

/// Why a request was denied before routing. The first five come from a [`KeyMeter`]; the others are the
/// gateway's authentication checks, named here so that both sides count denials under one vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenyReason {
    /// The key's requests per minute are used up.
    Rpm,
    /// The key's tokens per minute are used up.
    Tpm,
    /// The key has as many requests in flight as it may.
    Concurrency,
    /// The key's daily budget is spent.
    DailyBudget,
    /// The key's monthly budget is spent.
    MonthlyBudget,
    /// No `Authorization: Bearer` key.
    MissingKey,
    /// A key that matches no known key.
    InvalidKey,
    /// A revoked (disabled) key.
    Revoked,
    /// A key past its expiry.
    Expired,
    /// A model (or endpoint) the key may not use.
    NotAllowed,
}

impl DenyReason {
    /// Every reason, in a stable order (metric columns).
    pub const ALL: [DenyReason; 10] = [
        DenyReason::Rpm,
        DenyReason::Tpm,
        DenyReason::Concurrency,
        DenyReason::DailyBudget,
        DenyReason::MonthlyBudget,
        DenyReason::MissingKey,
        DenyReason::InvalidKey,
        DenyReason::Revoked,
        DenyReason::Expired,
        DenyReason::NotAllowed,
    ];

    /// The limit reasons a [`KeyMeter`] gives (the simulator's metric columns).
    pub const LIMITS: [DenyReason; 5] =
        [DenyReason::Rpm, DenyReason::Tpm, DenyReason::Concurrency, DenyReason::DailyBudget, DenyReason::MonthlyBudget];

    /// Snake-case name (metric label, log field).
    pub fn name(self) -> &'static str {
        match self {
            DenyReason::Rpm => "rpm",
            DenyReason::Tpm => "tpm",
            DenyReason::Concurrency => "concurrency",
            DenyReason::DailyBudget => "daily_budget",
            DenyReason::MonthlyBudget => "monthly_budget",
            DenyReason::MissingKey => "missing_key",
            DenyReason::InvalidKey => "invalid_key",
            DenyReason::Revoked => "revoked",
            DenyReason::Expired => "expired",
            DenyReason::NotAllowed => "not_allowed",
        }
    }

    /// Index in [`DenyReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this is a spend budget (HTTP 402) rather than a rate limit (429) or an authentication failure.
    pub fn is_budget(self) -> bool {
        matches!(self, DenyReason::DailyBudget | DenyReason::MonthlyBudget)
    }
}

/// A denial by a [`KeyMeter`]: the reason and how long until a retry can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Which limit.
    pub reason: DenyReason,
    /// Nanoseconds until the limit lets a request through again (at least one second's worth is advised).
    pub retry_after: Nanos,
}

/// A request admitted by [`KeyMeter::admit`]; hand it back to [`KeyMeter::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "an admission must be finished, or the key's concurrency is never given back"]
pub struct Admission {
    /// Tokens reserved in the TPM window at admission.
    pub reserved_tokens: u64,
    /// When they were reserved (the `now` of the admission).
    pub reserved_at: Nanos,
}

/// The calendar periods of an instant (UTC): day and month numbers and when they end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periods {
    /// Days since 1970-01-01.
    pub day: u64,
    /// Months since January 1970.
    pub month: u64,
    /// Start of the next day, nanoseconds since the epoch.
    pub next_day: Nanos,
    /// Start of the next month, nanoseconds since the epoch.
    pub next_month: Nanos,
}

impl Periods {
    /// The day and month of `now` (nanoseconds since the Unix epoch).
    pub fn of(now: Nanos) -> Periods {
        let day = now / NANOS_PER_SEC / DAY_SECS;
        let (y, m, _) = civil_from_days(day as i64);
        let month = (y - 1970) as u64 * 12 + (m - 1) as u64;
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let next_month_day = days_from_civil(ny, nm, 1) as u64;
        Periods {
            day,
            month,
            next_day: (day + 1) * DAY_SECS * NANOS_PER_SEC,
            next_month: next_month_day.saturating_mul(DAY_SECS * NANOS_PER_SEC),
        }
    }
}

/// Year, month (1..=12), day (1..=31) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day number since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A key's spend in its current day and month: what survives a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendRecord {
    /// Day number (since 1970-01-01) of `day_usd`.
    pub day: u64,
    /// Spend on that day, USD.
    pub day_usd: f64,
    /// Month number (since January 1970) of `month_usd`.
    pub month: u64,
    /// Spend in that month, USD.
    pub month_usd: f64,
}

impl SpendRecord {
    /// Rolls the periods forward to those of `p` (a new period starts at zero).
    fn roll(&mut self, p: &Periods) {
        if self.day != p.day {
            self.day = p.day;
            self.day_usd = 0.0;
        }
        if self.month != p.month {
            self.month = p.month;
            self.month_usd = 0.0;
        }
    }
}

/// Seconds of token history kept for the TPM window.
const TPM_BUCKETS: usize = 60;

/// One key's usage and limits.
#[derive(Clone, Debug)]
pub struct KeyMeter {
    limits: KeyLimits,
    /// Admission times within the last minute (at most `rpm` of them are needed).
    admitted: VecDeque<Nanos>,
    /// Tokens per second of the last minute: (second number, tokens), a ring indexed by second.
    tokens: [(u64, i64); TPM_BUCKETS],
    in_flight: u32,
    spend: SpendRecord,
    /// Whether the spend changed since [`KeyMeter::take_dirty`] was last called.
    dirty: bool,
}

impl KeyMeter {
    /// A meter with no usage.
    pub fn new(limits: KeyLimits) -> KeyMeter {
        KeyMeter {
            limits,
            admitted: VecDeque::new(),
            tokens: [(u64::MAX, 0); TPM_BUCKETS],
            in_flight: 0,
            spend: SpendRecord::default(),
            dirty: false,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &KeyLimits {
        &self.limits
    }

    /// Replaces the limits (a reloaded key file), keeping the usage.
    pub fn set_limits(&mut self, limits: KeyLimits) {
        self.limits = limits;
    }

    /// Requests admitted and not finished.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The spend record (periods as of the last call that moved time).
    pub fn spend(&self) -> SpendRecord {
        self.spend
    }

    /// Restores a persisted spend record (kept only if its periods are not older than the meter's own).
    pub fn restore(&mut self, r: SpendRecord) {
        if r.day >= self.spend.day && r.month >= self.spend.month {
            self.spend = r;
        }
    }

    /// The spend record if it changed since the last call, for a persistence flush.
    pub fn take_dirty(&mut self) -> Option<SpendRecord> {
        std::mem::take(&mut self.dirty).then_some(self.spend)
    }

    /// Tokens in the sliding minute ending at `now`.
    pub fn window_tokens(&self, now: Nanos) -> u64 {
        let sec = now / NANOS_PER_SEC;
        let total: i64 =
            self.tokens.iter().filter(|(s, _)| *s != u64::MAX && *s + (TPM_BUCKETS as u64) > sec).map(|(_, t)| t).sum();
        total.max(0) as u64
    }

    fn add_tokens(&mut self, now: Nanos, delta: i64) {
        let sec = now / NANOS_PER_SEC;
        let slot = &mut self.tokens[(sec % TPM_BUCKETS as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += delta;
    }

    /// Decides whether a request with `estimated_tokens` (its input, as far as known) may start at `now`.
    /// Checks, in order: budgets (month, then day), concurrency, RPM, TPM. Admitted, it counts in the
    /// windows and in flight until [`KeyMeter::finish`].
    pub fn admit(&mut self, now: Nanos, estimated_tokens: u64) -> Result<Admission, Denial> {
        let p = Periods::of(now);
        self.spend.roll(&p);
        let l = self.limits;
        if l.monthly_budget_usd.is_some_and(|b| self.spend.month_usd >= b) {
            return Err(Denial { reason: DenyReason::MonthlyBudget, retry_after: p.next_month.saturating_sub(now) });
        }
        if l.daily_budget_usd.is_some_and(|b| self.spend.day_usd >= b) {
            return Err(Denial { reason: DenyReason::DailyBudget, retry_after: p.next_day.saturating_sub(now) });
        }
        if l.concurrency.is_some_and(|c| self.in_flight >= c) {
            return Err(Denial { reason: DenyReason::Concurrency, retry_after: NANOS_PER_SEC });
        }
        while self.admitted.front().is_some_and(|&t| t + MINUTE <= now) {
            self.admitted.pop_front();
        }
        if let Some(rpm) = l.rpm
            && self.admitted.len() >= rpm as usize
        {
            // The window frees up when the oldest of the last `rpm` admissions is a minute old.
            let oldest = self.admitted[self.admitted.len() - rpm as usize];
            return Err(Denial { reason: DenyReason::Rpm, retry_after: (oldest + MINUTE).saturating_sub(now) });
        }
        if let Some(tpm) = l.tpm {
            // The request's own estimate counts: it is reserved now, so two requests that each fit alone
            // cannot both be admitted over the limit, and one larger than the limit is never admitted.
            let used = self.window_tokens(now);
            if used.saturating_add(estimated_tokens) > tpm {
                let retry_after = match tpm.checked_sub(estimated_tokens) {
                    Some(room) => self.tpm_retry_after(now, room),
                    // Larger than the whole limit: no wait lets it through (a smaller request may pass).
                    None => MINUTE,
                };
                return Err(Denial { reason: DenyReason::Tpm, retry_after });
            }
        }
        if l.rpm.is_some() {
            self.admitted.push_back(now);
            let keep = l.rpm.unwrap_or(0) as usize;
            while self.admitted.len() > keep {
                self.admitted.pop_front();
            }
        }
        self.add_tokens(now, estimated_tokens as i64);
        self.in_flight += 1;
        Ok(Admission { reserved_tokens: estimated_tokens, reserved_at: now })
    }

    /// Nanoseconds until the TPM window holds at most `room` tokens, if no new tokens arrive.
    fn tpm_retry_after(&self, now: Nanos, room: u64) -> Nanos {
        let sec = now / NANOS_PER_SEC;
        let mut live: Vec<(u64, i64)> =
            self.tokens.iter().copied().filter(|(s, _)| *s != u64::MAX && *s + (TPM_BUCKETS as u64) > sec).collect();
        live.sort_unstable();
        let mut total: i64 = live.iter().map(|(_, t)| t).sum();
        for (s, t) in live {
            total -= t;
            if total <= room as i64 {
                // Bucket `s` leaves the window at second s + 60.
                return ((s + TPM_BUCKETS as u64) * NANOS_PER_SEC).saturating_sub(now).max(1);
            }
        }
        MINUTE
    }

    /// Reports the end of an admitted request: the tokens it used (input + output) and its cost in USD.
    pub fn finish(&mut self, now: Nanos, admission: Admission, tokens: u64, cost_usd: f64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let rsec = admission.reserved_at / NANOS_PER_SEC;
        let slot = &mut self.tokens[(rsec % TPM_BUCKETS as u64) as usize];
        if slot.0 == rsec {
            slot.1 -= admission.reserved_tokens as i64;
        }
        self.add_tokens(now, tokens as i64);
        let p = Periods::of(now);
        self.spend.roll(&p);
        if cost_usd.is_finite() && cost_usd > 0.0 {
            self.spend.day_usd += cost_usd;
            self.spend.month_usd += cost_usd;
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = NANOS_PER_SEC;

    #[test]
    fn calendar_periods_follow_the_utc_calendar() {
        // 2024-02-29T12:00:00Z = 1709208000 s.
        let p = Periods::of(1_709_208_000 * S);
        assert_eq!(civil_from_days(p.day as i64), (2024, 2, 29));
        assert_eq!(p.month, (2024 - 1970) * 12 + 1);
        assert_eq!(p.next_day, 1_709_251_200 * S); // 2024-03-01T00:00Z
        assert_eq!(p.next_month, 1_709_251_200 * S);
        let dec = Periods::of(1_703_980_800 * S); // 2023-12-31T00:00Z
        assert_eq!(dec.next_month, 1_704_067_200 * S); // 2024-01-01
        for d in [0i64, 59, 365, 11_016, 19_782, 50_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn rpm_is_a_sliding_minute_with_an_exact_retry_after() {
        let mut m = KeyMeter::new(KeyLimits { rpm: Some(2), ..Default::default() });
        let a = m.admit(10 * S, 0).unwrap();
        m.finish(10 * S, a, 0, 0.0);
        let b = m.admit(30 * S, 0).unwrap();
        m.finish(30 * S, b, 0, 0.0);
        let d = m.admit(40 * S, 0).unwrap_err();
        assert_eq!(d, Denial { reason: DenyReason::Rpm, retry_after: 30 * S });
        assert!(m.admit(70 * S, 0).is_ok(), "the first admission left the window at 70 s");
    }

    #[test]
    fn tpm_reserves_the_estimate_and_settles_the_actual_tokens() {
        let mut m = KeyMeter::new(KeyLimits { tpm: Some(1000), ..Default::default() });
        let a = m.admit(0, 400).unwrap();
        assert_eq!(m.window_tokens(0), 400);
        m.finish(2 * S, a, 1200, 0.0);
        assert_eq!(m.window_tokens(2 * S), 1200);
        let d = m.admit(5 * S, 10).unwrap_err();
        assert_eq!(d.reason, DenyReason::Tpm);
        // The 1200 counted at 2 s leave at 62 s.
        assert_eq!(d.retry_after, 57 * S);
        assert!(m.admit(61 * S, 10).is_err());
        assert!(m.admit(62 * S, 10).is_ok());
        // A request longer than the window: its reservation has left, and only its tokens count.
        let long = m.admit(100 * S, 500).unwrap();
        m.finish(200 * S, long, 300, 0.0);
        assert_eq!(m.window_tokens(200 * S), 300);
    }

    #[test]
    fn tpm_counts_the_requests_own_estimate_at_admission() {
        let mut m = KeyMeter::new(KeyLimits { tpm: Some(1000), ..Default::default() });
        // One request larger than the whole limit is never admitted (no wait would let it through).
        let d = m.admit(0, 1_000_000).unwrap_err();
        assert_eq!(d, Denial { reason: DenyReason::Tpm, retry_after: MINUTE });
        assert_eq!(m.window_tokens(0), 0, "a denial reserves nothing");
        // Two concurrent 600-token requests: the first reserves 600, the second would make 1200.
        let a = m.admit(0, 600).unwrap();
        let d = m.admit(S / 2, 600).unwrap_err();
        assert_eq!(d.reason, DenyReason::Tpm);
        assert_eq!(d.retry_after, 60 * S - S / 2, "the 600 reserved at 0 s leave at 60 s");
        // A request that fits beside the reservation is admitted, up to the limit exactly.
        let b = m.admit(S, 400).unwrap();
        assert_eq!(m.window_tokens(S), 1000);
        assert_eq!(m.admit(S, 1).unwrap_err().reason, DenyReason::Tpm);
        // Settling gives back what was reserved and not used.
        m.finish(2 * S, a, 100, 0.0);
        m.finish(2 * S, b, 100, 0.0);
        assert_eq!(m.window_tokens(2 * S), 200);
        assert!(m.admit(2 * S, 800).is_ok());
    }

    #[test]
    fn concurrency_counts_requests_in_flight() {
        let mut m = KeyMeter::new(KeyLimits { concurrency: Some(1), ..Default::default() });
        let a = m.admit(0, 1).unwrap();
        assert_eq!(m.admit(0, 1).unwrap_err().reason, DenyReason::Concurrency);
        m.finish(S, a, 1, 0.0);
        assert!(m.admit(S, 1).is_ok());
    }

    #[test]
    fn budgets_deny_until_the_period_turns_and_survive_a_restore() {
        let day = DAY_SECS * S;
        let lim = KeyLimits { daily_budget_usd: Some(1.0), monthly_budget_usd: Some(1.5), ..Default::default() };
        let mut m = KeyMeter::new(lim);
        let a = m.admit(day / 2, 10).unwrap();
        m.finish(day / 2, a, 10, 1.0);
        let d = m.admit(day / 2 + S, 10).unwrap_err();
        assert_eq!(d, Denial { reason: DenyReason::DailyBudget, retry_after: day / 2 - S });
        let saved = m.take_dirty().expect("spend changed");
        assert!(m.take_dirty().is_none());
        // A fresh meter (a restart) with the saved record denies as well.
        let mut fresh = KeyMeter::new(lim);
        fresh.restore(saved);
        assert_eq!(fresh.admit(day / 2 + 2 * S, 10).unwrap_err().reason, DenyReason::DailyBudget);
        // Next day: allowed; after another 0.5 USD, the month is spent.
        let b = fresh.admit(day + S, 10).unwrap();
        fresh.finish(day + S, b, 10, 0.5);
        let d = fresh.admit(day + 2 * S, 10).unwrap_err();
        assert_eq!(d.reason, DenyReason::MonthlyBudget);
        assert_eq!(d.retry_after, 31 * day - (day + 2 * S)); // February 1970 starts on day 31
    }

    #[test]
    fn limits_are_validated_by_field() {
        assert_eq!(KeyLimits { rpm: Some(0), ..Default::default() }.validate().unwrap_err().0, "rpm");
        let neg = KeyLimits { daily_budget_usd: Some(-1.0), ..Default::default() };
        assert_eq!(neg.validate().unwrap_err().0, "daily_budget_usd");
        assert!(KeyLimits::default().validate().is_ok());
    }
}

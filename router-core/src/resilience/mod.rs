//! Resilience around the policy's choice: retries with backoff and a budget, the response cache and the
//! batcher of deferrable requests. Fallback chains are configured in [`crate::config::FallbackSpec`] and
//! followed by [`crate::Router::next_attempt`].

pub mod batch;
pub mod cache;
pub mod retry;

pub use batch::{BatchTicket, Batcher};
pub use cache::ResponseCache;
pub use retry::{RetryBudget, backoff_delay};

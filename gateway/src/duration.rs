//! router-core's durations (nanoseconds, as configured) where the runtime wants `std::time::Duration`.

/// Converts router-core durations to std ones.
pub trait IntoStd {
    /// As a `std::time::Duration`.
    fn into_std(self) -> std::time::Duration;
}

impl IntoStd for router_core::Duration {
    fn into_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos())
    }
}

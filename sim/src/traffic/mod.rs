//! Traffic models: arrival processes and the mix of task classes.

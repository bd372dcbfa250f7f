//! Fitting provider models to a log.

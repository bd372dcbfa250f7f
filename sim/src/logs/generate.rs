//! `routesim gen-log`.

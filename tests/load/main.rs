//! `mfa-conform load` end to end: checks and errors under load, coordinated omission, the
//! user pool, plans and stages, thresholds and baselines, signals, and a real flow against
//! the reference server.

#[path = "../support/mod.rs"]
pub mod support;

mod checks;
mod coordinated_omission;
mod interrupt;
mod pool;
mod reference;
mod sigterm;
mod stages;
mod thresholds;

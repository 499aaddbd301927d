//! Response snapshots end to end: catching changes, the shipped reference snapshots, the
//! review commands, snapshot settings in scenarios, and stability without secrets.

#[path = "../support/mod.rs"]
pub mod support;

mod changes;
mod reference;
mod review;
mod scenario;
mod stability;

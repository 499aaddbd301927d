//! `mfa-conform run` end to end: mistakes in scenarios and profiles, targets that deviate
//! or lack capabilities, and signals.

#[path = "../support/mod.rs"]
pub mod support;

mod errors;
mod field;
mod interrupt;
mod targets;

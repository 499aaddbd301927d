//! The harness against hostile targets (under `run` and `load`), and no secret in anything
//! it writes or prints.

#[path = "../support/mod.rs"]
pub mod support;

mod hostile_load;
mod hostile_run;
mod secrets_everywhere;

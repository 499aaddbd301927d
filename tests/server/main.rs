//! The reference server end to end, over real HTTP on loopback: the MFA flows, every
//! error, the security rules (also under concurrency), a fuzzer, and slow clients.

#[path = "../support/mod.rs"]
pub mod support;

mod concurrency;
mod errors;
mod fidelity;
mod flows;
mod fuzz;
mod security;
mod slow_client;

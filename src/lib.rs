//! mfa-conform: a conformance test harness, load generator and reference server for
//! multi-factor-authentication APIs in the shape of Auth0's Authentication API.

pub mod cli;
pub mod engine;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod target;
pub mod totp;

//! The engine: executes one scenario against a target, step by step, and returns its
//! result. `run` (conformance) and `load` drive it; it knows nothing of reports.
//!
//! - [`context`]: what the scenarios of a run share, and how much detail to keep;
//! - [`session`]: one execution of a scenario's steps (variables, secrets met);
//! - [`request`]: rendering a step's request from the variables (pure);
//! - [`response`]: the response as checks see it; [`check`]: checks and captures on it;
//! - [`result`]: the result model every sink reads;
//! - [`template`], [`control`] (test-control hooks), [`redact`], and the exchange log.
//!
//! Requests go out through a [`crate::transport::Transport`].

pub mod check;
pub mod context;
pub mod control;
mod log;
pub mod redact;
pub mod request;
pub mod response;
pub mod result;
pub mod session;
pub mod template;

pub use context::{ClockSource, Detail, RunContext};
pub use session::Session;

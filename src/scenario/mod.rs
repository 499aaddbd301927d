//! Scenarios: the format (`model`), and loading a suite from a directory with errors that
//! point at the file, line and column the user wrote (`load`).

pub mod load;
pub mod model;

pub use load::{LoadError, Suite, SuiteScenario};
pub use model::*;

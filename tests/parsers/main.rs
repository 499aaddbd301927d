//! The parsers on malformed input: property tests, the committed fuzz corpora, and the
//! committed JSON Schema of the scenario format.

#[path = "../support/mod.rs"]
pub mod support;

mod fuzz_corpus_replay;
mod properties;
mod schema;

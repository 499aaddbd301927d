//! One scenario file's text through the same parse + validate as `Suite::load`, against
//! the committed catalogue. Never a panic; every rejection is a non-empty, located error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_conform::scenario::Catalogue;
use mfa_conform::scenario::load::{load_catalogue, load_scenario, normalize_line_breaks};
use std::path::Path;
use std::sync::OnceLock;

const CATALOGUE: &str = include_str!("../../scenarios/requirements.yaml");

fn catalogue() -> &'static Catalogue {
    static CELL: OnceLock<Catalogue> = OnceLock::new();
    CELL.get_or_init(|| {
        load_catalogue(Path::new("requirements.yaml"), CATALOGUE)
            .expect("the committed catalogue loads")
    })
}

fuzz_target!(|data: &[u8]| {
    // Suite::load reads files as UTF-8; anything else is rejected before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_scenario(Path::new("fuzz.yaml"), text, catalogue()) {
        Ok(scenario) => {
            assert!(
                !scenario.scenario.steps.is_empty(),
                "a loaded scenario has steps"
            );
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a rejection carries at least one error");
            // YAML counts a lone CR as a line break too.
            let lines = normalize_line_breaks(text).lines().count() as u64 + 1;
            for error in errors {
                assert!(!error.message.trim().is_empty(), "empty message: {error:?}");
                assert!(
                    (1..=lines).contains(&error.line) && error.column >= 1,
                    "location {}:{} outside the input ({lines} lines): {error}",
                    error.line,
                    error.column
                );
                let shown = error.to_string();
                assert!(shown.starts_with("fuzz.yaml:"), "{shown}");
            }
        }
    }
});

//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and crash regressions
//! (`fuzz/regressions/<target>/`) through the functions the fuzz targets call
//! (`mfa_conform::fuzzing`): no input panics, and every rejection is an error with a message
//! and a location inside the input.

use mfa_conform::fuzzing::{self, Outcome};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, with its bytes.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let dir = Path::new(ROOT).join("fuzz").join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Runs the fuzz target's function `f` on each input, reporting which file panicked;
/// returns how many inputs were accepted and how many rejected.
fn replay(target: &str, minimum: usize, f: fn(&[u8]) -> Outcome) -> (usize, usize) {
    let files = inputs(target);
    assert!(
        files.len() >= minimum,
        "fuzz/corpus/{target} holds {} files; expected at least {minimum}",
        files.len()
    );
    let (mut accepted, mut rejected) = (0, 0);
    let mut failures = Vec::new();
    for (path, bytes) in &files {
        match std::panic::catch_unwind(|| f(bytes)) {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Rejected) => rejected += 1,
            Ok(Outcome::NotText) => {}
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    (accepted, rejected)
}

#[test]
fn scenario_corpus() {
    let (accepted, rejected) = replay("scenario", 20, fuzzing::scenario);
    // The corpus exercises both sides: files that load and files that are refused.
    assert!(accepted > 0, "no corpus scenario loads");
    assert!(rejected > 0, "no corpus scenario is refused");
}

#[test]
fn profile_corpus() {
    let (accepted, _) = replay("profile", 5, fuzzing::profile);
    assert!(accepted > 0, "no corpus profile loads");
}

#[test]
fn template_corpus() {
    let (rendered, _) = replay("template", 20, fuzzing::template);
    assert!(rendered > 0, "no corpus template renders");
}

//! The reference server's snapshots shipped in `snapshots/reference/` are current: the
//! whole suite runs against a fresh embedded reference server and every step's response is
//! compared with its committed snapshot. A change to the server's responses (or a new,
//! renamed or removed step) fails here with a diff, and leaves `.snap.new` files to settle:
//!
//! ```sh
//! cargo run -- snapshots review                      # or: snapshots accept --all
//! cargo run -- run --snapshot --snapshots record     # re-record everything
//! ```

use crate::support::snapshots::*;
use crate::support::{SCENARIOS, SNAPSHOTS, tempdir};
use mfa_conform::engine::result::CheckStatus;
use mfa_conform::snapshot::{Mode, SnapshotOptions};
use std::path::Path;

#[tokio::test(flavor = "multi_thread")]
async fn shipped_reference_snapshots_are_current() {
    let reports = tempdir("reference");
    let outcome = run_with(
        Path::new(SCENARIOS),
        None,
        SnapshotOptions {
            all: true,
            ..snapshots(Path::new(SNAPSHOTS), Some(Mode::Compare))
        },
        &reports,
    )
    .await;
    let summary = outcome.snapshots.clone().unwrap();
    assert_eq!(summary.profile, "reference");
    let problems: Vec<String> = snapshot_checks(&outcome)
        .into_iter()
        .filter(|(_, _, c)| c.status != CheckStatus::Passed)
        .map(|(scenario, step, c)| format!("{scenario} / {step}: {}\n{}", c.message, c.actual))
        .collect();
    let fix = "settle them with `cargo run -- snapshots review` (or `snapshots accept --all`), \
               or re-record: `cargo run -- run --snapshot --snapshots record`";
    assert!(
        problems.is_empty(),
        "{} response(s) of the reference server differ from snapshots/reference/; {fix}\n\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        summary.unreferenced.is_empty(),
        "snapshots no step of the suite writes any more ({fix}):\n{:#?}",
        summary.unreferenced
    );
    assert!(
        summary.matched > 100,
        "the whole suite is compared: {}",
        summary.matched
    );
    // Every scenario that ran to its end was compared (skips and errors aside).
    assert_eq!(summary.missing, 0);
}

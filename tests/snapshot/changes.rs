//! A deliberate change to a response is caught: a proxy in front of the reference server
//! adds a field, changes a status, a type or a text. Exact comparison shows each as a
//! readable unified diff (in the check, the terminal and the reports) and writes
//! `.snap.new`; shape comparison against another profile's snapshots catches the
//! structural ones and lets a changed text pass. Also the modes (compare, record,
//! new-only, off) and the severity.

use crate::assert_pinned;
use crate::support::snapshots::*;
use crate::support::{TempDir, tempdir};
use mfa_conform::engine::result::{CheckStatus, ScenarioStatus};
use mfa_conform::run::RunOutcome;
use mfa_conform::scenario::model::Severity;
use mfa_conform::snapshot::{Comparison, Mode, SnapshotOptions};
use std::path::PathBuf;
use std::sync::Arc;

struct Setup {
    dir: TempDir,
    suite: PathBuf,
    profile: PathBuf,
    snaps: PathBuf,
    proxy: Arc<Proxy>,
}

/// A proxy, the small suite, a `vendor` profile, and its snapshots recorded from the
/// unchanged responses.
async fn recorded(tag: &str) -> Setup {
    let dir = tempdir(tag);
    let (url, proxy) = proxy(Mutation::None).await;
    let setup = Setup {
        suite: small_suite(&dir),
        profile: profile(&dir, "vendor", &url),
        snaps: dir.join("snapshots"),
        dir,
        proxy,
    };
    let outcome = setup.run(snapshots(&setup.snaps, Some(Mode::Record))).await;
    let summary = outcome.snapshots.unwrap();
    // `flow` is marked `snapshot: true`; `unmarked` is not.
    assert_eq!((summary.written, summary.mode), (3, Mode::Record));
    assert_eq!(
        files(&setup.snaps, ".snap")
            .iter()
            .map(|p| p.strip_prefix(&setup.snaps).unwrap().display().to_string())
            .collect::<Vec<_>>(),
        [
            "vendor/flow/associate.snap",
            "vendor/flow/confirm.snap",
            "vendor/flow/log-in.snap"
        ]
    );
    setup
}

impl Setup {
    async fn run(&self, options: SnapshotOptions) -> RunOutcome {
        run_with(
            &self.suite,
            Some(&self.profile),
            options,
            &self.dir.join("reports"),
        )
        .await
    }

    async fn run_mutated(&self, mutation: Mutation, options: SnapshotOptions) -> RunOutcome {
        *self.proxy.mutation.lock().unwrap() = mutation;
        self.run(options).await
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.snaps.join(path)).unwrap()
    }

    /// What a person reads for the one failed snapshot check: the message and the diff,
    /// with the temporary directory replaced.
    fn failure(&self, outcome: &RunOutcome) -> (String, String) {
        let failed: Vec<_> = snapshot_checks(outcome)
            .into_iter()
            .filter(|(_, _, c)| c.status == CheckStatus::Failed)
            .collect();
        assert_eq!(failed.len(), 1, "{failed:#?}");
        let (_, step, check) = &failed[0];
        let dir = self.snaps.display().to_string();
        let text = format!(
            "{}\n{}\n{}",
            check.check.replace(&dir, "<snapshots>"),
            check.message.replace(&dir, "<snapshots>"),
            check.actual.replace(&dir, "<snapshots>")
        );
        (step.clone(), text)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extra_field_is_a_diff_and_a_pending_snapshot() {
    let setup = recorded("extra").await;
    let outcome = setup
        .run_mutated(Mutation::ExtraField, snapshots(&setup.snaps, None))
        .await;
    assert_eq!(outcome.exit.code(), 1);
    let summary = outcome.snapshots.as_ref().unwrap();
    assert_eq!(
        (summary.mode, summary.matched, summary.differed),
        (Mode::Compare, 2, 1)
    );
    let (step, text) = setup.failure(&outcome);
    assert_eq!(step, "associate");
    assert_pinned!("snapshots_changes__extra_field", text);
    // The new response waits beside the old snapshot, which is untouched.
    assert!(
        setup
            .read("vendor/flow/associate.snap.new")
            .contains("vendor_hint")
    );
    assert!(
        !setup
            .read("vendor/flow/associate.snap")
            .contains("vendor_hint")
    );
    // The terminal and the Markdown summary show the diff.
    let terminal = mfa_conform::report::console::summary(&outcome.report);
    assert!(terminal.contains("+  \"vendor_hint\": \"x\""), "{terminal}");
    let markdown = std::fs::read_to_string(setup.dir.join("reports/summary.md")).unwrap();
    assert!(markdown.contains("```diff"), "{markdown}");
    assert!(markdown.contains("+  \"vendor_hint\": \"x\""), "{markdown}");
    let junit = std::fs::read_to_string(setup.dir.join("reports/junit.xml")).unwrap();
    assert!(junit.contains("vendor_hint"), "{junit}");

    // Unchanged again: the comparison passes and the stale `.snap.new` goes away.
    let outcome = setup
        .run_mutated(Mutation::None, snapshots(&setup.snaps, None))
        .await;
    assert_eq!(outcome.exit.code(), 0);
    assert!(files(&setup.snaps, ".snap.new").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_status_is_a_diff() {
    let setup = recorded("status").await;
    let outcome = setup
        .run_mutated(Mutation::ChangedStatus, snapshots(&setup.snaps, None))
        .await;
    assert_eq!(outcome.exit.code(), 1);
    let (step, text) = setup.failure(&outcome);
    assert_eq!(step, "log in");
    assert_pinned!("snapshots_changes__changed_status", text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_change_is_a_diff_in_exact_and_in_shape_mode() {
    let setup = recorded("type").await;
    let outcome = setup
        .run_mutated(Mutation::TypeChange, snapshots(&setup.snaps, None))
        .await;
    let (step, text) = setup.failure(&outcome);
    assert_eq!(step, "confirm");
    assert_pinned!("snapshots_changes__type_change_exact", text);

    let outcome = setup
        .run_mutated(Mutation::TypeChange, shape_against(&setup.snaps, "vendor"))
        .await;
    assert_eq!(outcome.exit.code(), 1);
    let (step, text) = setup.failure(&outcome);
    assert_eq!(step, "confirm");
    assert_pinned!("snapshots_changes__type_change_shape", text);
    // Shape comparison only reads.
    assert_eq!(files(&setup.snaps, ".snap.new").len(), 1);
}

/// A vendor compared with the reference server's snapshots: same shape despite other
/// texts; an extra field or another status is reported per step.
#[tokio::test(flavor = "multi_thread")]
async fn shape_comparison_against_the_reference_profile() {
    let dir = tempdir("shape");
    let suite = small_suite(&dir);
    let snaps = dir.join("snapshots");
    // The reference server's own snapshots (profile `reference`).
    let reference = run_with(
        &suite,
        None,
        snapshots(&snaps, Some(Mode::Record)),
        &dir.join("r0"),
    )
    .await;
    assert_eq!(reference.snapshots.unwrap().profile, "reference");
    let (url, proxy) = proxy(Mutation::ChangedText).await;
    let profile = profile(&dir, "vendor", &url);

    let outcome = run_with(
        &suite,
        Some(&profile),
        shape_against(&snaps, "reference"),
        &dir.join("r1"),
    )
    .await;
    assert_eq!(outcome.exit.code(), 0, "{:#?}", snapshot_checks(&outcome));
    let checks = snapshot_checks(&outcome);
    assert_eq!(checks.len(), 3);
    for (_, _, check) in &checks {
        assert_eq!(check.status, CheckStatus::Passed);
        assert_eq!(check.message, "same shape as reference");
    }
    let summary = outcome.snapshots.unwrap();
    assert_eq!((summary.matched, summary.differed), (3, 0));
    assert!(
        summary
            .render()
            .contains("3 step(s) same shape as reference")
    );
    let markdown = std::fs::read_to_string(dir.join("r1/summary.md")).unwrap();
    assert!(
        markdown.contains("| flow | log in | same shape as reference |"),
        "{markdown}"
    );

    // A field the reference lacks is a legitimate variation: reported, not failed.
    *proxy.mutation.lock().unwrap() = Mutation::ExtraField;
    let outcome = run_with(
        &suite,
        Some(&profile),
        shape_against(&snaps, "reference"),
        &dir.join("r2-lenient"),
    )
    .await;
    assert_eq!(outcome.exit.code(), 0, "{:#?}", snapshot_checks(&outcome));
    let notes: Vec<_> = snapshot_checks(&outcome)
        .into_iter()
        .filter(|(_, _, c)| c.message.contains("legitimate"))
        .map(|(_, step, c)| (step, c.message))
        .collect();
    assert_eq!(
        notes,
        [(
            "associate".to_owned(),
            "same shape as reference (legitimate: $.vendor_hint is extra)".to_owned()
        )]
    );
    // `shape-strict` keeps every difference.
    let outcome = run_with(
        &suite,
        Some(&profile),
        SnapshotOptions {
            compare: Comparison::ShapeStrict,
            ..shape_against(&snaps, "reference")
        },
        &dir.join("r2"),
    )
    .await;
    let failed: Vec<_> = snapshot_checks(&outcome)
        .into_iter()
        .filter(|(_, _, c)| c.status == CheckStatus::Failed)
        .map(|(_, step, c)| (step, c.message))
        .collect();
    assert_eq!(
        failed,
        [(
            "associate".to_owned(),
            "not the same shape as reference: $.vendor_hint is extra".to_owned()
        )]
    );
    let compatibility = std::fs::read_to_string(dir.join("r2/compatibility.md")).unwrap();
    assert!(
        compatibility.contains("2 of 3 step(s) have the same shape as `reference`"),
        "{compatibility}"
    );

    *proxy.mutation.lock().unwrap() = Mutation::ChangedStatus;
    let outcome = run_with(
        &suite,
        Some(&profile),
        shape_against(&snaps, "reference"),
        &dir.join("r3"),
    )
    .await;
    let messages: Vec<_> = snapshot_checks(&outcome)
        .into_iter()
        .filter(|(_, _, c)| c.status == CheckStatus::Failed)
        .map(|(_, _, c)| c.message)
        .collect();
    assert_eq!(
        messages,
        ["not the same shape as reference: status 403 -> 401"]
    );
    assert!(files(&snaps, ".snap.new").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_should_severity_makes_a_mismatch_a_warning() {
    let setup = recorded("should").await;
    let outcome = setup
        .run_mutated(
            Mutation::ChangedText,
            SnapshotOptions {
                severity: Severity::Should,
                ..snapshots(&setup.snaps, None)
            },
        )
        .await;
    assert_eq!(outcome.exit.code(), 0);
    assert_eq!(outcome.report.summary.warnings, 1);
    let (_, _, check) = snapshot_checks(&outcome)
        .into_iter()
        .find(|(_, _, c)| c.status == CheckStatus::Failed)
        .unwrap();
    assert_eq!(check.severity, Severity::Should);
    assert!(
        check
            .actual
            .contains("+  \"error_description\": \"Multi-factor")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn modes_new_only_record_and_off() {
    let setup = recorded("modes").await;
    let flow = |name: &str| format!("vendor/flow/{name}");
    std::fs::remove_file(setup.snaps.join(flow("confirm.snap"))).unwrap();

    // compare: the missing one is pending, and fails.
    let outcome = setup.run(snapshots(&setup.snaps, None)).await;
    assert_eq!(outcome.exit.code(), 1);
    let summary = outcome.snapshots.as_ref().unwrap();
    assert_eq!((summary.matched, summary.missing), (2, 1));
    let (_, text) = setup.failure(&outcome);
    assert!(text.contains("no snapshot yet"), "{text}");
    assert!(setup.snaps.join(flow("confirm.snap.new")).is_file());

    // new-only: written, the others compared.
    let outcome = setup
        .run(snapshots(&setup.snaps, Some(Mode::NewOnly)))
        .await;
    assert_eq!(outcome.exit.code(), 0);
    let summary = outcome.snapshots.unwrap();
    assert_eq!((summary.matched, summary.written), (2, 1));
    assert!(setup.snaps.join(flow("confirm.snap")).is_file());
    assert!(files(&setup.snaps, ".snap.new").is_empty());

    // `--snapshot` snapshots the unmarked scenario too; afterwards its snapshot is
    // compared without the flag.
    let outcome = setup
        .run(SnapshotOptions {
            all: true,
            ..snapshots(&setup.snaps, Some(Mode::NewOnly))
        })
        .await;
    assert_eq!(outcome.snapshots.unwrap().written, 2);
    assert_eq!(
        files(&setup.snaps.join("vendor/unmarked"), ".snap")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        ["jwks-2.snap", "log-in.snap"]
    );
    let outcome = setup.run(snapshots(&setup.snaps, None)).await;
    assert_eq!(outcome.snapshots.unwrap().matched, 5);

    // record: a snapshot no step writes any more is removed; an unknown scenario
    // directory is only listed.
    std::fs::write(setup.snaps.join(flow("renamed-step.snap")), "---\n---\nx\n").unwrap();
    std::fs::create_dir_all(setup.snaps.join("vendor/gone")).unwrap();
    let outcome = setup.run(snapshots(&setup.snaps, None)).await;
    let summary = outcome.snapshots.unwrap();
    assert_eq!(
        summary
            .unreferenced
            .iter()
            .map(|p| p.strip_prefix(&setup.snaps).unwrap().display().to_string())
            .collect::<Vec<_>>(),
        ["vendor/flow/renamed-step.snap", "vendor/gone"]
    );
    let outcome = setup.run(snapshots(&setup.snaps, Some(Mode::Record))).await;
    let summary = outcome.snapshots.unwrap();
    assert_eq!((summary.written, summary.unchanged), (0, 5));
    assert_eq!(summary.removed.len(), 1);
    assert!(!setup.snaps.join(flow("renamed-step.snap")).exists());

    // off: nothing compared, nothing written.
    let outcome = setup
        .run_mutated(
            Mutation::ExtraField,
            snapshots(&setup.snaps, Some(Mode::Off)),
        )
        .await;
    assert!(outcome.snapshots.is_none());
    assert_eq!(outcome.exit.code(), 0);
    assert!(snapshot_checks(&outcome).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_snapshots_a_run_is_unchanged_and_bad_options_are_refused() {
    let dir = tempdir("defaults");
    let suite = small_suite(&dir);
    // No directory for the profile and no `--snapshot`: off.
    let outcome = run_with(
        &suite,
        None,
        snapshots(&dir.join("none"), None),
        &dir.join("r"),
    )
    .await;
    assert!(outcome.snapshots.is_none());
    assert!(!dir.join("none").exists());
    assert!(
        outcome
            .report
            .scenarios
            .iter()
            .all(|s| s.status == ScenarioStatus::Passed)
    );
    // `--snapshot` without snapshots yet: they are written (new-only).
    let outcome = run_with(
        &suite,
        None,
        SnapshotOptions {
            all: true,
            ..snapshots(&dir.join("first"), None)
        },
        &dir.join("r"),
    )
    .await;
    let summary = outcome.snapshots.unwrap();
    assert_eq!((summary.mode, summary.written), (Mode::NewOnly, 5));

    let bad = |options: SnapshotOptions| {
        let suite = suite.clone();
        async move {
            mfa_conform::run::run(mfa_conform::run::RunOptions {
                scenarios: vec![suite],
                quiet: true,
                snapshots: options,
                ..Default::default()
            })
            .await
            .err()
            .expect("refused")
            .to_string()
        }
    };
    let missing = bad(shape_against(&dir.join("none"), "reference")).await;
    assert!(
        missing.contains("no snapshots of profile \"reference\""),
        "{missing}"
    );
    let record = bad(SnapshotOptions {
        mode: Some(Mode::Record),
        ..shape_against(&dir.join("first"), "reference")
    })
    .await;
    assert!(record.contains("only reads snapshots"), "{record}");
    let path = bad(SnapshotOptions {
        profile: Some("../x".into()),
        ..snapshots(&dir.join("first"), None)
    })
    .await;
    assert!(path.contains("not a path"), "{path}");
}

//! Snapshots of the whole suite are stable and hold no secret: two consecutive runs against
//! reference servers (each with its own port, RSA key, users, tokens and codes) write
//! byte-identical files, and no token, code, TOTP secret, id, username, password or phone
//! number the run used appears in any snapshot or report file.

use crate::support::snapshots::*;
use crate::support::{SCENARIOS, tempdir};
use mfa_conform::snapshot::{Mode, SnapshotOptions};
use std::path::Path;

fn record_all(dir: &Path) -> SnapshotOptions {
    SnapshotOptions {
        all: true,
        ..snapshots(dir, Some(Mode::Record))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_against_the_reference_server_give_identical_snapshots() {
    let dir = tempdir("twice");
    let suite = Path::new(SCENARIOS);
    let first = run_with(suite, None, record_all(&dir.join("first")), &dir.join("r1")).await;
    let second = run_with(
        suite,
        None,
        record_all(&dir.join("second")),
        &dir.join("r2"),
    )
    .await;
    let (a, b) = (first.snapshots.unwrap(), second.snapshots.unwrap());
    assert_eq!(a.profile, "reference");
    assert!(
        a.written > 100,
        "the whole suite is snapshotted: {}",
        a.written
    );
    assert_eq!(a.written, b.written);

    let first_files = files(&dir.join("first"), ".snap");
    let second_files = files(&dir.join("second"), ".snap");
    let relative = |files: &[std::path::PathBuf], root: &Path| -> Vec<String> {
        files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().display().to_string())
            .collect()
    };
    assert_eq!(
        relative(&first_files, &dir.join("first")),
        relative(&second_files, &dir.join("second"))
    );
    let mut differing = Vec::new();
    for (x, y) in first_files.iter().zip(&second_files) {
        let (tx, ty) = (
            std::fs::read_to_string(x).unwrap(),
            std::fs::read_to_string(y).unwrap(),
        );
        if tx != ty {
            differing.push(mfa_conform::snapshot::diff::unified(
                &tx,
                &ty,
                &x.display().to_string(),
                &y.display().to_string(),
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "a dynamic value leaked into the snapshots:\n{}",
        differing.join("\n")
    );

    // A third run compares with the first run's snapshots (the default once they exist).
    let third = run_with(
        suite,
        None,
        snapshots(&dir.join("first"), None),
        &dir.join("r3"),
    )
    .await;
    let summary = third.snapshots.unwrap();
    assert_eq!(summary.mode, Mode::Compare);
    assert_eq!(
        (summary.matched, summary.differed, summary.missing),
        (a.written, 0, 0)
    );
    assert!(files(&dir.join("first"), ".snap.new").is_empty());
    assert!(
        summary.unreferenced.is_empty(),
        "{:?}",
        summary.unreferenced
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_or_token_reaches_a_snapshot_or_report_file() {
    let dir = tempdir("secrets");
    let (url, proxy) = proxy(Mutation::None).await;
    let profile = profile(&dir, "vendor", &url);
    let suite = Path::new(SCENARIOS);
    let snaps = dir.join("snapshots");
    let recorded = run_with(suite, Some(&profile), record_all(&snaps), &dir.join("r1")).await;
    assert!(recorded.snapshots.unwrap().written > 100);
    // A second run with changed responses leaves diffs in `.snap.new` files and reports.
    *proxy.mutation.lock().unwrap() = Mutation::TypeChange;
    let compared = run_with(
        suite,
        Some(&profile),
        SnapshotOptions {
            all: true,
            ..snapshots(&snaps, None)
        },
        &dir.join("r2"),
    )
    .await;
    assert!(compared.snapshots.as_ref().unwrap().differed > 0);

    let mut secrets = proxy.secrets.lock().unwrap().clone();
    secrets.push("mfa-conform-secret".into());
    secrets.retain(|s| s.len() >= 6);
    secrets.sort();
    secrets.dedup();
    assert!(
        secrets.len() > 300,
        "the run should have met many tokens and codes: {}",
        secrets.len()
    );
    let mut texts: Vec<(String, String)> = files(&snaps, ".snap")
        .into_iter()
        .chain(files(&snaps, ".snap.new"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    assert!(texts.len() > 100);
    // The diffs every report shows.
    let checks = snapshot_checks(&compared);
    assert!(checks.iter().any(|(_, _, c)| c.actual.contains("@@")));
    for (scenario, step, check) in checks {
        texts.push((
            format!("the snapshot check of {scenario} / {step}"),
            format!("{}\n{}\n{}", check.check, check.actual, check.message),
        ));
    }
    // The target's address is replaced by `[base_url]` too.
    let address = url.trim_start_matches("http://").to_owned();
    for (name, text) in &texts {
        assert!(!text.contains(&address), "{name} contains {address}");
        for secret in &secrets {
            // All-digit codes only as whole values: a 6-digit code may occur inside a
            // longer number.
            let found = if secret.bytes().all(|b| b.is_ascii_digit()) {
                text.contains(&format!("\"{secret}\""))
            } else {
                text.contains(secret.as_str())
            };
            assert!(!found, "{name} contains {secret:?}");
        }
    }
}

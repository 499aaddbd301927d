//! `mfa-conform snapshots review|accept|reject|pending`: the review screen with its diff,
//! driven by scripted stdin and through a pseudo-terminal; accept and reject leave no
//! stray `.snap.new`; and the whole loop (a changed response, review, accept, a clean
//! comparison).

use crate::assert_pinned;
use crate::support::snapshots::*;
use crate::support::{BIN, TempDir, tempdir};
use mfa_conform::snapshot::Mode;
use mfa_conform::snapshot::file::{Meta, SnapFile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn snap(path: &Path, step: &str, contents: &str) {
    SnapFile {
        meta: Meta {
            source: Some("scenarios/flow.yaml".into()),
            description: Some(step.into()),
            expression: Some("POST /oauth/token".into()),
            info: vec![
                ("profile".into(), "vendor".into()),
                ("scenario".into(), "flow".into()),
                ("step".into(), step.into()),
            ],
        },
        contents: contents.into(),
    }
    .write(path)
    .unwrap();
}

const OLD: &str = "status: 403\ncontent-type: application/json\n\n{\n  \"error\": \"mfa_required\",\n  \"mfa_token\": \"[mfa_token]\"\n}\n";
const NEW: &str = "status: 401\ncontent-type: application/json\n\n{\n  \"error\": \"mfa_required\",\n  \"mfa_token\": \"[mfa_token]\"\n}\n";

/// Three pending snapshots: a changed one, a new one, another changed one.
fn pending_dir(tag: &str) -> (TempDir, PathBuf) {
    let tmp = tempdir(tag);
    let dir = tmp.join("snapshots");
    snap(&dir.join("vendor/flow/log-in.snap"), "log in", OLD);
    snap(&dir.join("vendor/flow/log-in.snap.new"), "log in", NEW);
    snap(
        &dir.join("vendor/flow/confirm.snap.new"),
        "confirm",
        "status: 200\n\n{\n  \"token_type\": \"Bearer\"\n}\n",
    );
    snap(&dir.join("vendor/other/step.snap"), "step", OLD);
    snap(&dir.join("vendor/other/step.snap.new"), "step", NEW);
    (tmp, dir)
}

fn mfa_conform(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8], dir: &Path) -> String {
    String::from_utf8_lossy(bytes).replace(&dir.display().to_string(), "<snapshots>")
}

#[test]
fn review_with_scripted_input_accepts_rejects_and_skips() {
    let (_tmp, dir) = pending_dir("review");
    let d = dir.to_str().unwrap();
    // `x` is not an answer: asked again.
    let output = mfa_conform(&["snapshots", "review", "--dir", d], "r\nx\na\ns\n");
    assert!(output.status.success());
    assert_pinned!(
        "snapshots_review__review_screen",
        text(&output.stdout, &dir)
    );
    // confirm (new): rejected, nothing left.
    assert!(!dir.join("vendor/flow/confirm.snap").exists());
    assert!(!dir.join("vendor/flow/confirm.snap.new").exists());
    // log in (changed): accepted.
    let accepted = SnapFile::read(&dir.join("vendor/flow/log-in.snap")).unwrap();
    assert_eq!(accepted.contents, NEW);
    assert!(!dir.join("vendor/flow/log-in.snap.new").exists());
    // other/step: skipped, still pending.
    assert!(dir.join("vendor/other/step.snap.new").is_file());
    let output = mfa_conform(&["snapshots", "pending", "--dir", d], "");
    assert_eq!(
        text(&output.stdout, &dir),
        "<snapshots>/vendor/other/step.snap.new (changed)\n1 pending snapshot(s)\n"
    );
}

#[test]
fn review_stops_at_quit_or_end_of_input() {
    let (_tmp, dir) = pending_dir("quit");
    let d = dir.to_str().unwrap();
    let output = mfa_conform(&["snapshots", "review", "--dir", d], "q\n");
    assert!(output.status.success());
    assert!(text(&output.stdout, &dir).ends_with("accepted 0, rejected 0, skipped 3\n"));
    let output = mfa_conform(&["snapshots", "review", "--dir", d], "a\n");
    assert!(text(&output.stdout, &dir).ends_with("accepted 1, rejected 0, skipped 2\n"));
    assert_eq!(files(&dir, ".snap.new").len(), 2);
    let output = mfa_conform(&["snapshots", "review", "--dir", d, "--all"], "a\na\n");
    assert!(output.status.success());
    assert!(files(&dir, ".snap.new").is_empty());
    let output = mfa_conform(&["snapshots", "review", "--dir", d], "");
    assert_eq!(text(&output.stdout, &dir), "no pending snapshots\n");
}

/// A person at a terminal: `script` gives the review a pseudo-terminal (so it colours the
/// diff) and types the answers.
#[test]
fn review_through_a_pseudo_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("`script` (util-linux) is not installed: pseudo-terminal test skipped");
        return;
    }
    let (_tmp, dir) = pending_dir("pty");
    let command = format!("{BIN} snapshots review --dir {}", dir.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\na\nr\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[31m-status: 403\x1b[0m"),
        "coloured diff: {screen}"
    );
    assert!(
        screen.contains("accepted 2, rejected 1, skipped 0"),
        "{screen}"
    );
    assert!(files(&dir, ".snap.new").is_empty());
    assert!(dir.join("vendor/flow/confirm.snap").is_file());
    assert_eq!(
        SnapFile::read(&dir.join("vendor/other/step.snap"))
            .unwrap()
            .contents,
        OLD
    );
}

#[test]
fn accept_and_reject_leave_no_pending_files() {
    let (_tmp, dir) = pending_dir("accept");
    let d = dir.to_str().unwrap();
    let output = mfa_conform(&["snapshots", "accept", "--dir", d], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--all"));
    let output = mfa_conform(
        &["snapshots", "reject", &format!("{d}/vendor/none.snap")],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no pending snapshot there"));

    // A `.snap` path names its pending file; a directory every one below it.
    let output = mfa_conform(
        &[
            "snapshots",
            "reject",
            &format!("{d}/vendor/flow/log-in.snap"),
        ],
        "",
    );
    assert!(output.status.success());
    assert_eq!(
        SnapFile::read(&dir.join("vendor/flow/log-in.snap"))
            .unwrap()
            .contents,
        OLD
    );
    let output = mfa_conform(&["snapshots", "accept", &format!("{d}/vendor/other")], "");
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout, &dir),
        "accepted <snapshots>/vendor/other/step.snap\naccepted 1 snapshot(s)\n"
    );
    let output = mfa_conform(&["snapshots", "accept", "--all", "--dir", d], "");
    assert!(output.status.success());
    assert!(files(&dir, ".snap.new").is_empty());
    assert_eq!(files(&dir, ".snap").len(), 3);

    let (_tmp, dir) = pending_dir("reject-all");
    let output = mfa_conform(
        &[
            "snapshots",
            "reject",
            "--all",
            "--dir",
            dir.to_str().unwrap(),
        ],
        "",
    );
    assert!(output.status.success());
    assert!(files(&dir, ".snap.new").is_empty());
    assert_eq!(files(&dir, ".snap").len(), 2);
}

/// A changed response fails the run and leaves a pending snapshot; accepting it in review
/// makes the next run pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_reviewed_change_passes_the_next_run() {
    let dir = tempdir("loop");
    let (url, proxy) = proxy(Mutation::None).await;
    let suite = small_suite(&dir);
    let profile = profile(&dir, "vendor", &url);
    let snaps = dir.join("snapshots");
    let reports = dir.join("reports");
    run_with(
        &suite,
        Some(&profile),
        snapshots(&snaps, Some(Mode::Record)),
        &reports,
    )
    .await;
    *proxy.mutation.lock().unwrap() = Mutation::TypeChange;
    let outcome = run_with(&suite, Some(&profile), snapshots(&snaps, None), &reports).await;
    assert_eq!(outcome.exit.code(), 1);

    let output = mfa_conform(
        &["snapshots", "review", "--dir", snaps.to_str().unwrap()],
        "a\n",
    );
    let screen = text(&output.stdout, &snaps);
    assert!(screen.contains("+  \"expires_in\": \"86400\","), "{screen}");
    assert!(
        screen.contains("accepted 1, rejected 0, skipped 0"),
        "{screen}"
    );

    let outcome = run_with(&suite, Some(&profile), snapshots(&snaps, None), &reports).await;
    assert_eq!(outcome.exit.code(), 0);
    assert_eq!(outcome.snapshots.unwrap().matched, 3);
    assert!(files(&snaps, ".snap.new").is_empty());
}

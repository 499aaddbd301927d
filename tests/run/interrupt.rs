//! SIGINT and SIGTERM during `mfa-conform run`: no new scenario starts, the running one
//! finishes, the reports cover what ran (`interrupted: true`) and the exit code is 130; a
//! second signal quits at once.
//!
//! The target is a small server of the test: `GET /fast` and `GET /later` answer at once,
//! `GET /stall` waits until the test releases it. With `--jobs 1` the scenarios run in
//! file order (`a-fast`, `b-stall`, `c-later`, `d-later`), so the signal always lands while
//! `b-stall` is waiting, and `c-later`/`d-later` must never reach the server.

use crate::support::{BIN, copy_fixtures, tempdir};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

#[derive(Default)]
struct Seen {
    fast: AtomicU64,
    stall: AtomicU64,
    later: AtomicU64,
}

struct Target {
    base_url: String,
    seen: Arc<Seen>,
    release: watch::Sender<bool>,
}

async fn target() -> Target {
    let seen = Arc::new(Seen::default());
    let (release, released) = watch::channel(false);
    let app = Router::new()
        .route(
            "/fast",
            get(|State((seen, _)): State<(Arc<Seen>, watch::Receiver<bool>)>| async move {
                seen.fast.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"ok": true}))
            }),
        )
        .route(
            "/stall",
            get(
                |State((seen, mut released)): State<(Arc<Seen>, watch::Receiver<bool>)>| async move {
                    seen.stall.fetch_add(1, Ordering::SeqCst);
                    let _ = released.wait_for(|r| *r).await;
                    axum::Json(serde_json::json!({"ok": true}))
                },
            ),
        )
        .route(
            "/later",
            get(|State((seen, _)): State<(Arc<Seen>, watch::Receiver<bool>)>| async move {
                seen.later.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"ok": true}))
            }),
        )
        .with_state((seen.clone(), released));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Target {
        base_url: format!("http://{addr}"),
        seen,
        release,
    }
}

/// Writes the suite of `tests/fixtures/interrupt/` into `dir/suite` (one `GET` each:
/// `a-fast`, `b-stall`, `c-later`, `d-later`) and a profile with a 60-s timeout, so only
/// the test's release (or a second signal) ends the stalled request. Returns (suite,
/// profile, report directory).
fn write_suite(dir: &Path, base_url: &str) -> (PathBuf, PathBuf, PathBuf) {
    let suite = dir.join("suite");
    copy_fixtures(
        "interrupt",
        [
            "requirements.yaml",
            "a-fast.yaml",
            "b-stall.yaml",
            "c-later.yaml",
            "d-later.yaml",
        ],
        &suite,
    );
    let profile = dir.join("profile.yaml");
    std::fs::write(&profile, format!("base_url: {base_url}\ntimeout: 60s\n")).unwrap();
    (suite, profile, dir.join("reports"))
}

/// The running binary, with its stdout and stderr collected as they arrive.
struct Running {
    child: tokio::process::Child,
    pid: u32,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    text
}

fn start(suite: &Path, profile: &Path, reports: &Path) -> Running {
    let mut child = tokio::process::Command::new(BIN)
        .args(["run", "--jobs", "1", "--scenarios"])
        .arg(suite)
        .arg("--profile")
        .arg(profile)
        .arg("--report-dir")
        .arg(reports)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    Running {
        child,
        pid,
        stdout,
        stderr,
    }
}

impl Running {
    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until stderr contains `text`.
    async fn stderr_shows(&self, text: &str, within: Duration) {
        let waiting = Instant::now();
        while !self.stderr.lock().unwrap().contains(text) {
            assert!(
                waiting.elapsed() < within,
                "no {text:?} on stderr within {within:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit code, which must come within `within`.
    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running {within:?} later\n{}", self.output()))
            .unwrap();
        // Let the readers drain what the process wrote last.
        tokio::time::sleep(Duration::from_millis(100)).await;
        status.code()
    }
}

async fn wait_for(what: &str, counter: &AtomicU64, running: &Running) {
    let waiting = Instant::now();
    while counter.load(Ordering::SeqCst) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "{what} never reached the target\n{}",
            running.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One signal while `b-stall` waits: the run finishes `b-stall`, starts nothing else,
/// writes every report for `a-fast` and `b-stall` with `interrupted: true`, exits 130.
async fn one_signal(signal: &str) {
    let target = target().await;
    let dir = tempdir(&format!("interrupt-{signal}"));
    let (suite, profile, reports) = write_suite(&dir, &target.base_url);
    let mut running = start(&suite, &profile, &reports);
    wait_for("GET /stall", &target.seen.stall, &running).await;
    running.signal(signal);
    running
        .stderr_shows(
            &format!("interrupted (SIG{signal})"),
            Duration::from_secs(10),
        )
        .await;
    // The scenario that was running when the signal came is allowed to finish.
    target.release.send(true).unwrap();
    let code = running.exit_code(Duration::from_secs(20)).await;
    let output = running.output();
    assert_eq!(code, Some(130), "{output}");
    assert_eq!(target.seen.fast.load(Ordering::SeqCst), 1, "{output}");
    assert_eq!(target.seen.stall.load(Ordering::SeqCst), 1, "{output}");
    assert_eq!(
        target.seen.later.load(Ordering::SeqCst),
        0,
        "a scenario started after the signal\n{output}"
    );

    let text = std::fs::read_to_string(reports.join("report.json"))
        .unwrap_or_else(|e| panic!("report.json: {e}\n{output}"));
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["interrupted"], true, "{report:#}");
    let scenarios: Vec<(&str, &str)> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        scenarios,
        [("a-fast", "passed"), ("b-stall", "passed")],
        "{report:#}"
    );
    assert_eq!(report["summary"]["scenarios"], 2, "{report:#}");
    assert_eq!(report["summary"]["passed"], 2, "{report:#}");
    for file in ["junit.xml", "summary.md", "compatibility.md"] {
        assert!(reports.join(file).is_file(), "no {file}\n{output}");
    }
    let summary = std::fs::read_to_string(reports.join("summary.md")).unwrap();
    assert!(
        summary.to_lowercase().contains("interrupted"),
        "summary.md does not say the run was interrupted:\n{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_finishes_the_running_scenario_writes_the_reports_and_exits_130() {
    one_signal("INT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_running_scenario_writes_the_reports_and_exits_130() {
    one_signal("TERM").await;
}

/// A second signal (of the other kind) while the run waits for the stalled request: the
/// process quits at once with 130, long before the profile's 60-s timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_quits_at_once() {
    for (first, second) in [("INT", "TERM"), ("TERM", "INT")] {
        let target = target().await;
        let dir = tempdir(&format!("twice-{first}-{second}"));
        let (suite, profile, reports) = write_suite(&dir, &target.base_url);
        let mut running = start(&suite, &profile, &reports);
        wait_for("GET /stall", &target.seen.stall, &running).await;
        running.signal(first);
        running
            .stderr_shows(
                &format!("interrupted (SIG{first})"),
                Duration::from_secs(10),
            )
            .await;
        let sent = Instant::now();
        running.signal(second);
        let code = running.exit_code(Duration::from_secs(10)).await;
        let output = running.output();
        assert_eq!(code, Some(130), "{output}");
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "quitting took {:?}\n{output}",
            sent.elapsed()
        );
        assert!(
            output.contains(&format!("SIG{second}: quitting now")),
            "{output}"
        );
        assert!(
            !reports.join("report.json").exists(),
            "a run that quit at once wrote a report\n{output}"
        );
        assert_eq!(target.seen.later.load(Ordering::SeqCst), 0, "{output}");
        drop(target.release);
    }
}

//! Ctrl-C during `mfa-conform load`: the run stops, still writes every report for the time
//! that ran (`interrupted: true`), and exits 130.

mod load_common;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use load_common::*;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_writes_its_report_and_exits_130() {
    let seen = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/ping",
            get(|State(seen): State<Arc<AtomicU64>>| async move {
                seen.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"ok": true}))
            }),
        )
        .with_state(seen.clone());
    let base_url = serve(app).await;
    let dir = tempdir("interrupt");
    let (suite, profile) = write_suite(&dir, &base_url, "");
    let reports = dir.join("reports");
    let args = cli(
        &suite,
        &profile,
        &reports,
        &[
            "--rate",
            "50/s",
            "--duration",
            "60s",
            "--progress-every",
            "1s",
        ],
    );
    let child = tokio::process::Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();

    // The first request is the calibration flow; once measured flows arrive the Ctrl-C
    // handler is in place. Let it measure for about two seconds.
    let waiting = Instant::now();
    while seen.load(Ordering::SeqCst) < 2 {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let sent = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the run stops soon after Ctrl-C")
        .unwrap();
    let output_text = describe(&output);
    assert_eq!(output.status.code(), Some(130), "{output_text}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        sent.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("interrupted"),
        "{output_text}"
    );

    assert_interrupted_reports(&reports, seen.load(Ordering::SeqCst));
}

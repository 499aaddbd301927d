//! Checks keep running under load, and failed requests are counted by kind: a target that
//! answers a wrong status to every 10th request gets that requirement in `check_failures`
//! with the exact count; 5xx answers and timeouts show up in `errors_by_kind`.

use crate::support::load::*;
use crate::support::{describe, run_bin, tempdir};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the n-th request (from 1) gets.
type Rule = fn(u64) -> Answer;

#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    Sleep(Duration),
}

struct Counting {
    seen: AtomicU64,
    answer: Rule,
}

async fn ping(State(state): State<Arc<Counting>>) -> Response {
    let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
    match (state.answer)(n) {
        Answer::Ok => axum::Json(json!({"ok": true})).into_response(),
        Answer::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            axum::Json(json!({"error": "deliberate"})),
        )
            .into_response(),
        Answer::Sleep(d) => {
            tokio::time::sleep(d).await;
            axum::Json(json!({"ok": true})).into_response()
        }
    }
}

/// Runs the ping flow at 100/s for 2 s against a server answering with `answer`; returns
/// the output, the report directory, the server's counter and the run's directory.
async fn run_load(
    tag: &str,
    answer: Rule,
    profile_extra: &str,
    thresholds: &[&str],
) -> (
    std::process::Output,
    std::path::PathBuf,
    Arc<Counting>,
    crate::support::TempDir,
) {
    let state = Arc::new(Counting {
        seen: AtomicU64::new(0),
        answer,
    });
    let base_url = serve(
        Router::new()
            .route("/ping", get(ping))
            .with_state(state.clone()),
    )
    .await;
    let dir = tempdir(tag);
    let (suite, profile) = write_suite(&dir, &base_url, profile_extra);
    let reports = dir.join("reports");
    let mut extra = vec!["--rate", "100/s", "--duration", "2s"];
    for t in thresholds {
        extra.extend(["--threshold", t]);
    }
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    (output, reports, state, dir)
}

/// [`run_load`], for a run that completes; returns (exit code, load.json, requests the
/// server saw).
async fn run(
    tag: &str,
    answer: Rule,
    profile_extra: &str,
    thresholds: &[&str],
) -> (Option<i32>, Value, u64) {
    let (output, reports, state, _dir) = run_load(tag, answer, profile_extra, thresholds).await;
    assert!(reports.join("load.json").exists(), "{}", describe(&output));
    (
        output.status.code(),
        report(&reports),
        state.seen.load(Ordering::SeqCst),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_failures_are_counted_by_requirement_under_load() {
    // Every 10th request answers 418: the flow's `status: 200` check fails.
    let (code, report, seen) = run(
        "checks",
        |n| {
            if n % 10 == 0 {
                Answer::Status(418)
            } else {
                Answer::Ok
            }
        },
        "",
        &["checks<1%"],
    )
    .await;
    // The calibration flow is request 1; every request after it is one measured flow.
    let flows = report["flows"]["count"].as_u64().unwrap();
    assert_eq!(flows, seen - 1, "{report:#}");
    assert!((190..=200).contains(&flows), "{flows} flows");
    let expected = seen / 10;
    let failures = report["check_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let failure = &failures[0];
    assert_eq!(failure["requirement"], "T-PING-200");
    assert_eq!(failure["severity"], "must");
    assert_eq!(failure["count"].as_u64().unwrap(), expected, "{failure:#}");
    let sample = failure["sample"].as_str().unwrap();
    assert!(
        sample.starts_with("ping: ") && sample.contains("418"),
        "{sample}"
    );
    let with_failures = report["flows"]["with_check_failures"].as_u64().unwrap();
    assert_eq!(with_failures, expected);
    let share = with_failures as f64 / flows as f64;
    assert!((share - 0.10).abs() < 0.01, "{share}");
    // A failed `must` check ends the flow: it counts as failed. 418 is no transport error.
    assert_eq!(report["flows"]["failed"].as_u64().unwrap(), expected);
    assert_eq!(report["errors_by_kind"], json!({}));
    assert_eq!(report["requests"]["errors"], 0);
    // The gate sees the same 10%.
    assert_eq!(code, Some(4), "{:#}", report["thresholds"]);
    let gate = &report["thresholds"][0];
    assert_eq!(gate["passed"], false);
    assert!(
        (gate["actual"].as_f64().unwrap() - 10.0).abs() < 1.0,
        "{gate:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_counted_by_kind() {
    // Every 5th request is a 500; every 7th (not also a 5th) outlasts the profile's
    // 300-ms timeout.
    let (code, report, seen) = run(
        "errors",
        |n| {
            if n % 5 == 0 {
                Answer::Status(500)
            } else if n % 7 == 0 {
                Answer::Sleep(Duration::from_secs(2))
            } else {
                Answer::Ok
            }
        },
        "timeout: 300ms\n",
        &["errors<1%"],
    )
    .await;
    let count = |divisor: u64, except: u64| {
        (2..=seen)
            .filter(|n| n % divisor == 0 && (except == 0 || n % except != 0))
            .count() as u64
    };
    let (http_500, timeouts) = (count(5, 0), count(7, 5));
    let kinds = &report["errors_by_kind"];
    assert_eq!(
        kinds,
        &json!({"http_500": http_500, "timeout": timeouts}),
        "{report:#}"
    );
    assert_eq!(
        report["requests"]["errors"].as_u64().unwrap(),
        http_500 + timeouts
    );
    let step = &report["steps"][0];
    assert_eq!(step["name"], "ping");
    assert_eq!(step["errors"].as_u64().unwrap(), http_500 + timeouts);
    // A timed-out flow failed and took about the timeout.
    assert_eq!(
        report["flows"]["failed"].as_u64().unwrap(),
        http_500 + timeouts
    );
    // Failed flows are timed apart: the successful flows' percentiles hold only those.
    let max = report["flows"]["failed_latency"]["max"].as_f64().unwrap();
    assert!((290.0..1000.0).contains(&max), "max {max} ms");
    let ok_max = report["flows"]["latency"]["max"].as_f64().unwrap();
    assert!(
        ok_max < 290.0,
        "a timed-out flow among the successful: {ok_max} ms"
    );
    assert_eq!(code, Some(4), "{:#}", report["thresholds"]);
    let rate = report["thresholds"][0]["actual"].as_f64().unwrap();
    let expected = (http_500 + timeouts) as f64 / (seen - 1) as f64 * 100.0;
    assert!((rate - expected).abs() < 0.5, "{rate} vs {expected}");
}

/// A target that reads each request and closes the connection without answering.
async fn hanging_up_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The first request on each path (the preflight, the calibration flow) is answered, on
    // a connection it may not keep, so the load starts; every later request loses its
    // connection.
    let answered = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answered = answered.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&request)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                if answered.lock().unwrap().insert(path) {
                    let body = r#"{"ok":true}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
                }
                drop(socket);
            });
        }
    });
    format!("http://{addr}")
}

/// README: errors are counted by kind (`timeout`, `connect`, `connection_reset`, ...).
/// A connection closed before the answer is a reset, not a failure to connect: the
/// transport message reads "... connection closed before message completed", and
/// `error_kind` (src/load/metrics.rs) tests `contains("connect")` before
/// `contains("reset") || contains("closed")`, so "connection ..." always matches
/// `connect` first.
#[tokio::test(flavor = "multi_thread")]

async fn a_connection_closed_mid_request_counts_as_connection_reset() {
    let base_url = hanging_up_server().await;
    let dir = tempdir("hang-up");
    let (suite, profile) = write_suite(&dir, &base_url, "");
    let reports = dir.join("reports");
    let output = run_bin(cli(
        &suite,
        &profile,
        &reports,
        &["--rate", "20/s", "--duration", "1s"],
    ))
    .await;
    // Every measured flow failed: the run does not pass.
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("flows failed"),
        "{}",
        describe(&output)
    );
    let report = report(&reports);
    let kinds = report["errors_by_kind"].as_object().unwrap();
    let flows = report["flows"]["count"].as_u64().unwrap();
    assert!(flows > 0);
    assert_eq!(
        kinds.keys().collect::<Vec<_>>(),
        vec!["connection_reset"],
        "{kinds:?}"
    );
    assert_eq!(kinds["connection_reset"].as_u64().unwrap(), flows);
}

/// A flow that fails on its own (here: the target answers 500) stops the run before the
/// load starts, with the failure, exit 3 and no report; the load never starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_calibration_flow_stops_the_run() {
    let (output, reports, state, _dir) =
        run_load("calibration-fails", |_| Answer::Status(500), "", &[]).await;
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ping: the calibration flow failed before the load started"),
        "{stderr}"
    );
    assert!(!reports.join("load.json").exists());
    assert_eq!(
        state.seen.load(Ordering::SeqCst),
        1,
        "only the calibration flow ran"
    );
}

//! The user pool under load: a flow with a user and no `setup` uses up its pool user (an
//! enrollment cannot run twice for one user), so a pool sized
//! from a slow calibration flow can run dry. The open model counts the starts it then
//! drops (`starts.dropped_pool`) and warns; the closed model must say so too.

use crate::support::load::*;
use crate::support::{describe, fixture_text, run_bin, tempdir};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `GET /ping` answers at once, except the first request (the calibration flow), which
/// takes 200 ms: the pool is then sized for flows 100 times slower than they are.
async fn slow_first_server() -> String {
    let seen = Arc::new(AtomicU64::new(0));
    serve(
        Router::new()
            .route(
                "/users",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(serde_json::json!({"username": "u", "password": "p"})),
                    )
                }),
            )
            .route(
                "/ping",
                get(|State(seen): State<Arc<AtomicU64>>| async move {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    axum::Json(serde_json::json!({"ok": true}))
                }),
            )
            .with_state(seen),
    )
    .await
}

async fn run(tag: &str, model: &[&str]) -> serde_json::Value {
    let base_url = slow_first_server().await;
    let dir = tempdir(tag);
    let (suite, profile) = write_suite(
        &dir,
        &base_url,
        &format!("control: {{users: {base_url}/users}}\n"),
    );
    // A flow with a provisioned user and no setup: each run uses its user up.
    std::fs::write(
        suite.join("ping.yaml"),
        fixture_text("ping/ping.yaml").replace("user: false", "user: true"),
    )
    .unwrap();
    let reports = dir.join("reports");
    let mut extra = model.to_vec();
    extra.extend(["--duration", "2s"]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    report(&reports)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_model_run_out_of_pool_users_counts_and_warns() {
    // 200 starts (100/s for 2 s) and 50 single-use pool users: 150 starts find no user.
    let report = run("pool-open", &["--rate", "100/s", "--pool", "50"]).await;
    let starts = &report["starts"];
    let flows = report["flows"]["count"].as_u64().unwrap();
    assert_eq!(flows, 50, "{starts:#}");
    assert_eq!(
        starts["dropped_pool"].as_u64().unwrap(),
        200 - 50,
        "{starts:#}"
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("smaller than") && warnings.contains("dropped because no pool user"),
        "{warnings}"
    );
}

/// The closed model sizes the pool as `vus / calibration time * duration`; with a slow
/// calibration flow the pool is used up within milliseconds, and the virtual users then
/// idle for the rest of the run (`closed()` in src/load/driver.rs sleeps 20 ms and retries
/// when `take` finds no user). Nothing in the report says so: no warning,
/// `starts.dropped_pool` is 0, and the only trace is the throughput (flows = pool size,
/// then zero flows per second in the timeline), so a `throughput>N` gate would fail with
/// no explanation. The open model counts and warns (the test above).
#[tokio::test(flavor = "multi_thread")]

async fn a_closed_model_run_out_of_pool_users_says_so() {
    let report = run("pool-closed", &["--vus", "2"]).await;
    let flows = report["flows"]["count"].as_u64().unwrap();
    let pool = report["options"]["pool_size"].as_u64().unwrap();
    // The pool ran dry: every user was used once, then nothing ran.
    assert_eq!(flows, pool, "{:#}", report["timeline"]);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("pool"),
        "the VUs ran out of pool users after {flows} flows and idled; no warning says so: {warnings}\n{:#}",
        report["timeline"]
    );
}

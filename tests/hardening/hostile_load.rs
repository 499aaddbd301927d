//! The hostile-target suite under `load`: the same misbehaving target (hangs, resets, HTML
//! or invalid UTF-8 for JSON, 50 MB bodies, trickling bytes, redirect loops, an untrusted
//! certificate, Connection: close), met after the calibration flow. Each run completes,
//! writes load.json, counts its failed requests by kind (wrong answers, a 302 or HTML, are
//! check failures, not errors) and, as most of its flows failed, exits 1. A target that
//! fails the calibration flow (an untrusted certificate) stops the run before it starts.

use crate::support::hostile::*;
use crate::support::{describe, read_json, tempdir};
use mfa_conform::server::tls::TlsSource;
use mfa_conform::server::{self, ServeOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct LoadOutcome {
    report: Value,
    elapsed: Duration,
}

/// Runs `mfa-conform load --scenario NAME` with `model` (e.g. `--vus 4 --duration 2s`)
/// against `base_url`; asserts no panic, exit 0 (1 when most flows failed), and a load.json
/// whose error count matches its errors by kind.
async fn load(tag: &str, base_url: &str, name: &str, model: &[&str], extra: &str) -> LoadOutcome {
    let dir = tempdir(tag);
    let (output, reports, elapsed) = run_load(&dir, base_url, name, model, extra).await;
    assert_no_panic(&output);
    let report = read_json(&reports.join("load.json"));
    let mostly_failed = report["flows"]["failed"].as_u64().unwrap_or(0) * 2
        > report["flows"]["count"].as_u64().unwrap_or(0);
    let expected = if mostly_failed { 1 } else { 0 };
    assert_eq!(
        output.status.code(),
        Some(expected),
        "{}",
        describe(&output)
    );
    let by_kind = errors_by_kind(&report);
    eprintln!(
        "{name}: {} flows, {} requests, errors {:?}, check failures {}",
        report["flows"]["count"], report["requests"]["count"], by_kind, report["check_failures"]
    );
    assert!(
        report["flows"]["count"].as_u64().unwrap_or(0) > 0,
        "no flow ran: {report:#}"
    );
    assert_eq!(
        report["requests"]["errors"].as_u64(),
        Some(by_kind.values().sum::<u64>()),
        "every error is counted under a kind: {report:#}"
    );
    LoadOutcome { report, elapsed }
}

/// Runs `load --scenario NAME` with `model` against `base_url`, reports in `dir/reports`;
/// gives the output, the report directory and how long it took.
async fn run_load(
    dir: &std::path::Path,
    base_url: &str,
    name: &str,
    model: &[&str],
    extra: &str,
) -> (std::process::Output, std::path::PathBuf, Duration) {
    let (suite, profile) = write_suite(dir, base_url, CASES, extra);
    let reports = dir.join("reports");
    let args = crate::support::load::cli_for(name, &suite, &profile, &reports, model);
    let started = Instant::now();
    let (output, _) = run_bin_measured(args, false).await;
    (output, reports, started.elapsed())
}

fn errors_by_kind(report: &Value) -> BTreeMap<String, u64> {
    report["errors_by_kind"]
        .as_object()
        .unwrap_or_else(|| panic!("no errors_by_kind in {report:#}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// Asserts that every request errored, all under `kind`.
fn assert_all_errors(report: &Value, kind: &str) {
    let by_kind = errors_by_kind(report);
    let requests = report["requests"]["count"].as_u64().unwrap();
    assert!(requests > 0, "{report:#}");
    assert_eq!(
        by_kind,
        BTreeMap::from([(kind.to_owned(), requests)]),
        "every request is a {kind}: {report:#}"
    );
}

/// Asserts no request error and a check failure of `requirement` whose sample mentions
/// `words`.
fn assert_check_failures(report: &Value, requirement: &str, words: &[&str]) {
    assert!(
        errors_by_kind(report).is_empty(),
        "no request errors: {report:#}"
    );
    let failure = report["check_failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["requirement"] == requirement)
        .unwrap_or_else(|| panic!("no {requirement} check failure in {report:#}"));
    assert!(failure["count"].as_u64().unwrap_or(0) > 0, "{failure:#}");
    let sample = failure["sample"].as_str().unwrap_or_default();
    for word in words {
        assert!(sample.contains(word), "{word:?} not in {sample:?}");
    }
}

const VUS: &[&str] = &["--vus", "4", "--duration", "2s"];
const RATE: &[&str] = &["--rate", "20/s", "--duration", "2s"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_hanging_target_counts_timeouts() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-hang", &base, "hang", VUS, "").await;
    assert_all_errors(&out.report, "timeout");
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_hanging_target_open_model_counts_timeouts() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-hang-open", &base, "hang", RATE, "").await;
    assert_all_errors(&out.report, "timeout");
    // 20/s for 2 s: the schedule keeps starting flows however stalled the target is.
    let requests = out.report["requests"]["count"].as_u64().unwrap();
    assert!(requests >= 20, "{requests} requests in 2 s at 20/s");
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_resets_are_connection_resets() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-reset", &base, "reset", VUS, "").await;
    assert_all_errors(&out.report, "connection_reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_html_is_a_check_failure() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-html", &base, "html", VUS, "").await;
    assert_check_failures(&out.report, "H-JSON", &["not JSON"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_invalid_utf8_is_a_check_failure() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-utf8", &base, "bad-utf8", VUS, "").await;
    assert_check_failures(&out.report, "H-JSON", &["not JSON"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_huge_bodies_are_body_too_large() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-huge", &base, "huge", VUS, "").await;
    assert_all_errors(&out.report, "body_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_trickling_bodies_time_out() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-trickle", &base, "trickle", VUS, "").await;
    assert_all_errors(&out.report, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_redirect_loop_is_a_check_failure_not_an_error() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-redirect", &base, "redirect", VUS, "").await;
    assert_check_failures(&out.report, "H-STATUS", &["302"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_connection_close_passes() {
    let base = hostile_server_after_calibration().await;
    let out = load("load-close", &base, "close", VUS, "").await;
    assert!(errors_by_kind(&out.report).is_empty(), "{:#}", out.report);
    assert_eq!(
        out.report["check_failures"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        out.report
    );
    assert_eq!(out.report["flows"]["failed"], 0, "{:#}", out.report);
}

/// An untrusted certificate is found by the preflight request: one message naming the
/// remedy, exit 3, before any load and with no report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_untrusted_certificate_stops_before_the_load() {
    let dir = tempdir("load-tls-ca");
    let running = server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServeOptions {
            tls: Some(TlsSource::SelfSigned {
                ca_out: dir.join("ca.pem"),
            }),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let (output, reports, _) = run_load(&dir, &running.base_url, "healthy", VUS, "").await;
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot be reached") && stderr.contains("tls.ca_cert"),
        "{stderr}"
    );
    assert!(!reports.join("load.json").exists());
    running.shutdown().await;
}

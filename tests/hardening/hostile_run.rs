//! The hostile-target suite under `run`: a target that hangs, resets mid-response, answers
//! HTML or invalid UTF-8 where JSON is expected, sends 50 MB, trickles a byte a second,
//! redirects to itself, presents an untrusted certificate, or closes every connection.
//! For each: the right exit code, a message a person understands, no panic, and the
//! reports (report.json, junit.xml, summary.md) still written.

use crate::support::hostile::*;
use crate::support::{copy_fixtures, describe, read_json, tempdir};
use mfa_conform::server::tls::TlsSource;
use mfa_conform::server::{self, ServeOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

struct Outcome {
    code: Option<i32>,
    report: Value,
    output: Output,
    elapsed: Duration,
    peak_rss_kb: Option<u64>,
}

/// Runs `mfa-conform run --jobs 1` with the scenarios `cases` against `base_url`; checks
/// that there was no panic and that the three reports are written and well-formed.
async fn run_suite(
    tag: &str,
    base_url: &str,
    cases: &[(&str, &str)],
    profile_extra: &str,
    measure_rss: bool,
) -> Outcome {
    let dir = tempdir(tag);
    let (suite, profile) = write_suite(&dir, base_url, cases, profile_extra);
    run_with(&dir, &suite, &profile, cases, measure_rss).await
}

async fn run_with(
    dir: &Path,
    suite: &Path,
    profile: &Path,
    cases: &[(&str, &str)],
    measure_rss: bool,
) -> Outcome {
    let reports = dir.join("reports");
    let args: Vec<String> = vec![
        "run".into(),
        "--scenarios".into(),
        suite.display().to_string(),
        "--profile".into(),
        profile.display().to_string(),
        "--report-dir".into(),
        reports.display().to_string(),
        "--jobs".into(),
        "1".into(),
    ];
    let started = Instant::now();
    let (output, peak_rss_kb) = run_bin_measured(args, measure_rss).await;
    let elapsed = started.elapsed();
    assert_no_panic(&output);
    let report = check_reports(&reports, cases, &output);
    Outcome {
        code: output.status.code(),
        report,
        output,
        elapsed,
        peak_rss_kb,
    }
}

/// report.json parses and lists every scenario; junit.xml is well-formed enough (one test
/// case per scenario, closed root); summary.md has the totals.
fn check_reports(reports: &Path, cases: &[(&str, &str)], output: &Output) -> Value {
    let context = describe(output);
    let report = read_json(&reports.join("report.json"));
    assert_eq!(
        report["scenarios"].as_array().map(Vec::len),
        Some(cases.len()),
        "{context}"
    );
    let junit = std::fs::read_to_string(reports.join("junit.xml"))
        .unwrap_or_else(|e| panic!("junit.xml: {e}\n{context}"));
    assert!(junit.trim_start().starts_with("<?xml"), "{junit}");
    assert!(junit.trim_end().ends_with("</testsuites>"), "{junit}");
    assert_eq!(
        junit.matches("<testcase").count(),
        cases.len(),
        "one test case per scenario: {junit}"
    );
    let summary = std::fs::read_to_string(reports.join("summary.md"))
        .unwrap_or_else(|e| panic!("summary.md: {e}\n{context}"));
    assert!(!summary.trim().is_empty(), "summary.md is empty");
    report
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name} in {report:#}"))
}

/// The first step's error message of a scenario (panics if there is none).
fn step_error(report: &Value, name: &str) -> String {
    let step = &scenario(report, name)["steps"][0];
    assert_eq!(step["error"]["kind"], "transport", "{step:#}");
    let message = step["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no step error in {step:#}"))
        .to_owned();
    eprintln!("{name}: step error: {message}");
    message
}

/// The failed check of a scenario for `requirement`: (actual, message).
fn failed_check(report: &Value, name: &str, requirement: &str) -> (String, String) {
    let step = &scenario(report, name)["steps"][0];
    let check = step["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["requirement"] == requirement && c["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed {requirement} check in {step:#}"));
    let actual = check["actual"].as_str().unwrap_or_default().to_owned();
    let message = check["message"].as_str().unwrap_or_default().to_owned();
    eprintln!("{name}: {requirement} failed: actual {actual:?}, message {message:?}");
    (actual, message)
}

fn case(name: &str) -> (&'static str, &'static str) {
    *CASES.iter().find(|(n, _)| *n == name).unwrap()
}

fn assert_mentions(text: &str, words: &[&str]) {
    let lower = text.to_ascii_lowercase();
    for word in words {
        assert!(
            lower.contains(&word.to_ascii_lowercase()),
            "{word:?} not in the message: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_target_times_out_and_the_run_goes_on() {
    let (base, log) = hostile_server_logged().await;
    let cases = [case("hang"), case("healthy")];
    let out = run_suite("run-hang", &base, &cases, "", false).await;
    let log = log.lock().unwrap().clone();
    let position = |path: &str| log.iter().position(|p| p == path);
    assert!(
        position("/hang") < position("/ok") && position("/hang").is_some(),
        "with --jobs 1 the healthy scenario runs after the hanging one: {log:?}"
    );
    assert_eq!(out.code, Some(3), "{}", describe(&out.output));
    let message = step_error(&out.report, "hang");
    assert_mentions(&message, &["timed out", "/hang"]);
    assert_eq!(scenario(&out.report, "hang")["status"], "failed");
    assert_eq!(
        scenario(&out.report, "healthy")["status"],
        "passed",
        "the run continues after a timeout"
    );
    assert!(
        out.elapsed < Duration::from_secs(8),
        "the 1-s timeout bounds the run: {:?}",
        out.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_timeout_message_names_the_timeout() {
    let base = hostile_server().await;
    let cases = [case("hang")];
    let out = run_suite("run-hang-duration", &base, &cases, "", false).await;
    let message = step_error(&out.report, "hang");
    assert!(
        message.contains("1s") || message.contains("1 s"),
        "the message should name the 1s timeout: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_response_is_a_connection_error() {
    let base = hostile_server().await;
    let cases = [case("reset"), case("healthy")];
    let out = run_suite("run-reset", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(3), "{}", describe(&out.output));
    let message = step_error(&out.report, "reset");
    assert_mentions(&message, &["/reset"]);
    let lower = message.to_ascii_lowercase();
    assert!(
        lower.contains("connection") && (lower.contains("reset") || lower.contains("closed")),
        "the message should say the connection was reset/closed: {message}"
    );
    assert_eq!(scenario(&out.report, "healthy")["status"], "passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_where_json_is_expected_fails_a_check() {
    let base = hostile_server().await;
    let cases = [case("html"), case("healthy")];
    let out = run_suite("run-html", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(1), "{}", describe(&out.output));
    let step = &scenario(&out.report, "html")["steps"][0];
    assert!(step["error"].is_null(), "not a transport error: {step:#}");
    let (actual, message) = failed_check(&out.report, "html", "H-JSON");
    assert_mentions(&format!("{actual} {message}"), &["not JSON"]);
    assert_eq!(scenario(&out.report, "healthy")["status"], "passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_declared_as_json_fails_a_check() {
    let base = hostile_server().await;
    let cases = [case("bad-utf8"), case("healthy")];
    let out = run_suite("run-utf8", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(1), "{}", describe(&out.output));
    let step = &scenario(&out.report, "bad-utf8")["steps"][0];
    assert!(step["error"].is_null(), "not a transport error: {step:#}");
    let (actual, message) = failed_check(&out.report, "bad-utf8", "H-JSON");
    assert_mentions(&format!("{actual} {message}"), &["not JSON"]);
    // The reported body is lossy UTF-8, not an error.
    let body = step["response"]["body"]
        .as_str()
        .or(step["exchange"]["response_body"].as_str())
        .unwrap_or_default();
    assert!(
        body.contains('\u{FFFD}'),
        "the body is shown lossily: {step:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_body_hits_the_read_limit_with_bounded_memory() {
    let base = hostile_server().await;
    let measure = have_gnu_time();
    // Baseline: the same binary on a healthy suite.
    let baseline = run_suite("run-huge-baseline", &base, &[case("healthy")], "", measure).await;
    assert_eq!(baseline.code, Some(0), "{}", describe(&baseline.output));
    let cases = [case("huge"), case("healthy")];
    let out = run_suite("run-huge", &base, &cases, "", measure).await;
    assert_eq!(out.code, Some(3), "{}", describe(&out.output));
    let message = step_error(&out.report, "huge");
    assert_mentions(&message, &["exceeds", "10 MB"]);
    assert_eq!(scenario(&out.report, "healthy")["status"], "passed");
    match (baseline.peak_rss_kb, out.peak_rss_kb) {
        (Some(before), Some(after)) => {
            let grown_mb = after.saturating_sub(before) as f64 / 1024.0;
            eprintln!("peak RSS: healthy {before} KB, 50 MB body {after} KB (+{grown_mb:.1} MB)");
            assert!(
                grown_mb < 40.0,
                "memory grew by {grown_mb:.1} MB reading a 50 MB body"
            );
        }
        _ => eprintln!("note: /usr/bin/time is not usable here; memory assertion skipped"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_times_out() {
    let base = hostile_server().await;
    let cases = [case("trickle"), case("healthy")];
    let out = run_suite("run-trickle", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(3), "{}", describe(&out.output));
    let message = step_error(&out.report, "trickle");
    assert_mentions(&message, &["timed out", "/trickle"]);
    assert_eq!(scenario(&out.report, "healthy")["status"], "passed");
    assert!(
        out.elapsed < Duration::from_secs(8),
        "the total-request timeout fires although bytes keep coming: {:?}",
        out.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_not_followed() {
    let base = hostile_server().await;
    let cases = [case("redirect"), case("healthy")];
    let out = run_suite("run-redirect", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(1), "{}", describe(&out.output));
    let step = &scenario(&out.report, "redirect")["steps"][0];
    assert!(step["error"].is_null(), "not a transport error: {step:#}");
    let (actual, message) = failed_check(&out.report, "redirect", "H-STATUS");
    assert_mentions(&format!("{actual} {message}"), &["302"]);
    assert_eq!(scenario(&out.report, "healthy")["status"], "passed");
}

/// A TLS reference server whose CA is written to `dir/ca.pem`; a one-step suite against
/// it (`GET /.well-known/jwks.json`). Returns (suite, base_url, ca path).
async fn tls_target(dir: &Path) -> (PathBuf, String, PathBuf) {
    let ca = dir.join("ca.pem");
    let running = server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServeOptions {
            tls: Some(TlsSource::SelfSigned { ca_out: ca.clone() }),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base_url = running.base_url.clone();
    std::mem::forget(running); // lives for the test process
    let suite = dir.join("suite");
    copy_fixtures("hostile", ["requirements.yaml", "jwks.yaml"], &suite);
    (suite, base_url, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_names_the_profile_settings() {
    let dir = tempdir("run-tls");
    let (suite, base_url, ca) = tls_target(&dir).await;
    assert!(base_url.starts_with("https://"), "{base_url}");
    let cases = [("jwks", "")];
    let profile = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("base_url: {base_url}\ntimeout: 10s\n{extra}"),
        )
        .unwrap();
        path
    };

    // Found by the preflight request: one message, exit 3, before any scenario.
    let untrusted = profile("untrusted.yaml", "");
    let reports = dir.join("untrusted/reports");
    let args: Vec<String> = [
        "run",
        "--scenarios",
        &suite.display().to_string(),
        "--profile",
        &untrusted.display().to_string(),
        "--report-dir",
        &reports.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (output, _) = run_bin_measured(args, false).await;
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_mentions(&message, &["certificate", "tls.ca_cert", "tls.insecure"]);
    assert!(!reports.exists(), "nothing ran");

    let trusted = profile(
        "trusted.yaml",
        &format!("tls: {{ca_cert: {}}}\n", ca.display()),
    );
    let out = run_with(&dir.join("trusted"), &suite, &trusted, &cases, false).await;
    assert_eq!(out.code, Some(0), "{}", describe(&out.output));

    let insecure = profile("insecure.yaml", "tls: {insecure: true}\n");
    let out = run_with(&dir.join("insecure"), &suite, &insecure, &cases, false).await;
    assert_eq!(out.code, Some(0), "{}", describe(&out.output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_after_every_request_passes() {
    let base = hostile_server().await;
    let cases = [case("close"), case("healthy")];
    let out = run_suite("run-close", &base, &cases, "", false).await;
    assert_eq!(out.code, Some(0), "{}", describe(&out.output));
    let close = scenario(&out.report, "close");
    assert_eq!(close["status"], "passed", "{close:#}");
    assert_eq!(close["steps"].as_array().map(Vec::len), Some(3));
}

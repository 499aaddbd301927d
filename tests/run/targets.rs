//! The runner can fail: a target with deliberate deviations (a proxy in front of the
//! reference server that changes a status, drops a field, or lets a recovery code be used
//! twice) is reported failing with the right requirement id for each deviation, and a
//! target that lacks a capability gets skips.

use crate::assert_pinned;
use crate::support::{control_profile, copy_fixtures, tempdir};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mfa_conform::run::{RunOptions, run};
use mfa_conform::server::{self, ServeOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Deviation {
    None,
    /// `mfa_required` answered with 401 instead of 403.
    WrongStatus,
    /// `barcode_uri` missing from the OTP association.
    MissingField,
    /// A recovery code that already worked works again (the first answer is replayed).
    ReusableRecoveryCode,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    deviation: Deviation,
    used_recovery_codes: Mutex<HashMap<String, (u16, Vec<u8>)>>,
    /// Every secret value the target sent back (tokens, TOTP secrets, codes, passwords).
    secrets: Arc<Mutex<Vec<String>>>,
}

const SECRET_KEYS: [&str; 10] = [
    "mfa_token",
    "access_token",
    "id_token",
    "secret",
    "barcode_uri",
    "oob_code",
    "recovery_code",
    "recovery_codes",
    "code",
    "password",
];

fn collect_secrets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if SECRET_KEYS.contains(&k.as_str()) {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(items) => {
                            out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                        }
                        _ => {}
                    }
                } else {
                    collect_secrets(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_secrets(i, out)),
        _ => {}
    }
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recovery_code = (proxy.deviation == Deviation::ReusableRecoveryCode)
        .then(|| {
            url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "recovery_code")
                .map(|(_, v)| v.into_owned())
        })
        .flatten();
    if let Some(code) = &recovery_code
        && let Some((status, body)) = proxy.used_recovery_codes.lock().unwrap().get(code)
    {
        return (
            StatusCode::from_u16(*status).unwrap(),
            [("content-type", "application/json")],
            body.clone(),
        )
            .into_response();
    }
    let url = format!(
        "{}{}",
        proxy.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = proxy.client.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let upstream = request.send().await.unwrap();
    let mut status = upstream.status().as_u16();
    let content_type = upstream
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut bytes = upstream.bytes().await.unwrap().to_vec();
    if let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) {
        collect_secrets(&json, &mut proxy.secrets.lock().unwrap());
        match proxy.deviation {
            Deviation::WrongStatus if json["error"] == "mfa_required" => status = 401,
            Deviation::MissingField => {
                if let Some(map) = json.as_object_mut() {
                    map.remove("barcode_uri");
                }
            }
            _ => {}
        }
        bytes = serde_json::to_vec(&json).unwrap();
    }
    if let Some(code) = recovery_code
        && status == 200
    {
        proxy
            .used_recovery_codes
            .lock()
            .unwrap()
            .insert(code, (status, bytes.clone()));
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Some(ct) = content_type {
        response
            .headers_mut()
            .insert("content-type", ct.parse().unwrap());
    }
    response
}

/// Starts a reference server and a deviating proxy in front of it; returns the proxy URL.
async fn deviant_target(deviation: Deviation) -> String {
    deviant_target_recording(deviation, Arc::default()).await
}

async fn deviant_target_recording(
    deviation: Deviation,
    secrets: Arc<Mutex<Vec<String>>>,
) -> String {
    let upstream = server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServeOptions {
            control: true,
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let proxy = Arc::new(Proxy {
        upstream: upstream.base_url.clone(),
        client: reqwest::Client::new(),
        deviation,
        used_recovery_codes: Mutex::new(HashMap::new()),
        secrets,
    });
    std::mem::forget(upstream); // lives for the test process
    let app = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Writes the suite of `tests/fixtures/targets/` (a recovery-code flow and an SMS
/// scenario) into `dir/suite` and a profile for `base_url` claiming `capabilities`.
fn write_suite(dir: &Path, base_url: &str, capabilities: &str) -> PathBuf {
    copy_fixtures(
        "targets",
        ["requirements.yaml", "recovery.yaml", "sms.yaml"],
        &dir.join("suite"),
    );
    control_profile(dir, "profile", base_url, capabilities)
}

/// Runs the test suite against a target with `deviation`; returns exit code and the ids of
/// failed requirements.
async fn run_against(deviation: Deviation, capabilities: &str) -> (u8, Vec<String>, Value) {
    run_with(
        deviation,
        capabilities,
        None,
        &format!("{deviation:?}-{}", capabilities.len()),
    )
    .await
}

async fn run_with(
    deviation: Deviation,
    capabilities: &str,
    expected_failures: Option<&str>,
    tag: &str,
) -> (u8, Vec<String>, Value) {
    let base_url = deviant_target(deviation).await;
    let dir = tempdir(tag);
    let profile = write_suite(&dir, &base_url, capabilities);
    let expected_failures = expected_failures.map(|text| {
        let path = dir.join("expected.yaml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let outcome = run(RunOptions {
        profile: Some(profile),
        scenarios: vec![dir.join("suite")],
        jobs: 4,
        report_dir: Some(dir.join("reports")),
        quiet: true,
        expected_failures,
        ..RunOptions::default()
    })
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reports/report.json")).unwrap())
            .unwrap();
    // The verdict comes first in the compatibility report, and agrees with the exit code.
    let compatibility = std::fs::read_to_string(dir.join("reports/compatibility.md")).unwrap();
    let verdict = compatibility.lines().nth(2).unwrap_or_default().to_owned();
    match outcome.exit.code() {
        0 => assert!(
            verdict.starts_with("**Verdict: PASSED**"),
            "{compatibility}"
        ),
        1 => assert!(
            verdict.starts_with("**Verdict: FAILED**"),
            "{compatibility}"
        ),
        _ => {}
    }
    let failed: Vec<String> = report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    (outcome.exit.code(), failed, report)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_faithful_target_passes() {
    let (code, failed, report) = run_against(Deviation::None, "[otp, recovery-code, sms]").await;
    assert_eq!(failed, Vec::<String>::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["passed"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_status_is_reported_with_its_requirement() {
    let (code, failed, _) = run_against(Deviation::WrongStatus, "[otp, recovery-code, sms]").await;
    assert_eq!(code, 1);
    assert_eq!(failed, vec!["T-LOGIN-403"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_field_is_reported_with_its_requirement() {
    let (code, failed, report) =
        run_against(Deviation::MissingField, "[otp, recovery-code, sms]").await;
    assert_eq!(code, 1);
    assert_eq!(failed, vec!["T-ASSOC-BARCODE"]);
    let check = &report["scenarios"][0]["steps"][1]["checks"][0];
    assert_eq!(check["actual"], "$.barcode_uri is absent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reusable_recovery_code_is_reported_with_its_requirement() {
    let (code, failed, report) =
        run_against(Deviation::ReusableRecoveryCode, "[otp, recovery-code, sms]").await;
    assert_eq!(code, 1);
    assert_eq!(failed, vec!["T-RC-ONCE"], "{report:#}");
    let text = report.to_string();
    assert!(text.contains("status was 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_capabilities_give_skips_not_failures() {
    let (code, failed, report) = run_against(Deviation::None, "[otp]").await;
    assert_eq!(code, 0, "{report:#}");
    assert!(failed.is_empty());
    assert_eq!(report["summary"]["skipped"], 2);
    let reasons: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["skip_reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"the target does not claim: recovery-code"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"the target does not claim: sms"),
        "{reasons:?}"
    );
}

const EXPECTED: &str = "- {requirement: T-LOGIN-403, reason: \"fixed in 2.0\"}\n";

#[tokio::test(flavor = "multi_thread")]
async fn expected_failures_keep_the_run_green() {
    let (code, failed, report) = run_with(
        Deviation::WrongStatus,
        "[otp, recovery-code, sms]",
        Some(EXPECTED),
        "expected-fail",
    )
    .await;
    assert_eq!(code, 0, "{report:#}");
    assert!(failed.is_empty());
    assert_eq!(report["summary"]["expected_failures"], 1);
    let login = report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "T-LOGIN-403")
        .unwrap();
    assert_eq!(login["status"], "expected");
}

#[tokio::test(flavor = "multi_thread")]
async fn expected_failures_that_pass_are_flagged() {
    let (code, _, report) = run_with(
        Deviation::None,
        "[otp, recovery-code, sms]",
        Some(EXPECTED),
        "expected-pass",
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["unexpected_passes"][0], "T-LOGIN-403");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_any_report_file() {
    let secrets = Arc::new(Mutex::new(Vec::new()));
    let base_url = deviant_target_recording(Deviation::None, secrets.clone()).await;
    let dir = tempdir("secrets");
    let profile = write_suite(&dir, &base_url, "[otp, recovery-code, sms]");
    let outcome = run(RunOptions {
        profile: Some(profile),
        scenarios: vec![dir.join("suite")],
        jobs: 2,
        report_dir: Some(dir.join("reports")),
        quiet: true,
        ..RunOptions::default()
    })
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    assert_eq!(outcome.exit.code(), 0);
    let mut secrets = secrets.lock().unwrap().clone();
    secrets.push("mfa-conform-secret".into());
    secrets.retain(|s| s.len() >= 6);
    assert!(
        secrets.len() >= 8,
        "the run should have met tokens and codes: {}",
        secrets.len()
    );
    let terminal = mfa_conform::report::console::summary(&outcome.report);
    for entry in std::fs::read_dir(dir.join("reports")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{} leaks a secret",
                path.display()
            );
            assert!(
                !terminal.contains(secret.as_str()),
                "the terminal summary leaks a secret"
            );
        }
    }
}

/// The terminal summary and `summary.md` a person reads after a failing run.
#[tokio::test(flavor = "multi_thread")]
async fn failure_output_reads_well() {
    let base_url = deviant_target(Deviation::MissingField).await;
    let dir = tempdir("output");
    let profile = write_suite(&dir, &base_url, "[otp, recovery-code]");
    let outcome = run(RunOptions {
        profile: Some(profile),
        scenarios: vec![dir.join("suite")],
        jobs: 1,
        report_dir: Some(dir.join("reports")),
        quiet: true,
        ..RunOptions::default()
    })
    .await
    .map_err(|e| e.to_string())
    .unwrap();
    let terminal = mfa_conform::report::console::summary(&outcome.report);
    let markdown = std::fs::read_to_string(dir.join("reports/summary.md")).unwrap();
    insta::with_settings!({filters => vec![
        (r"127\.0\.0\.1:\d+", "[addr]"),
        (r"\d+\.\d+s\b", "[secs]"),
        (r"\d+ ms\b", "[ms]"),
        (r"sha256:[0-9a-f]+", "[hash]"),
        (r"/tmp/[^ )`\n]+", "[dir]"),
    ]}, {
        assert_pinned!("run_targets__terminal_summary", terminal);
        assert_pinned!("run_targets__summary_md", markdown);
    });
}

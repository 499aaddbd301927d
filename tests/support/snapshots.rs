//! Helpers for the response-snapshot tests: a proxy in front of a reference server that can
//! change its responses (an extra field, a status, a type, a text) and records every secret
//! value that passes through it, a small suite whose scenario snapshots every step, target
//! profiles, and runs of the conformance driver with snapshot options.

use super::{control_profile, copy_fixtures, files_under};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use mfa_conform::engine::result::CheckResult;
use mfa_conform::run::{RunOptions, RunOutcome, run};
use mfa_conform::server::{self, ServeOptions};
use mfa_conform::snapshot::{Comparison, Mode, SnapshotOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the proxy changes the reference server's answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mutation {
    None,
    /// The OTP association gains `"vendor_hint": "x"`.
    ExtraField,
    /// `mfa_required` is answered with 401 instead of 403.
    ChangedStatus,
    /// `expires_in` is a string.
    TypeChange,
    /// `mfa_required` has another `error_description` (same shape).
    ChangedText,
}

pub struct Proxy {
    upstream: String,
    client: reqwest::Client,
    pub mutation: Mutex<Mutation>,
    /// Every secret value seen in a request or a response: tokens, codes, TOTP secrets,
    /// ids, usernames, passwords, phone numbers.
    pub secrets: Mutex<Vec<String>>,
}

const SECRET_KEYS: [&str; 17] = [
    "mfa_token",
    "access_token",
    "id_token",
    "secret",
    "barcode_uri",
    "oob_code",
    "binding_code",
    "otp",
    "recovery_code",
    "recovery_codes",
    "code",
    "password",
    "username",
    "client_secret",
    "id",
    "phone_number",
    "email",
];

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if SECRET_KEYS.contains(&k.as_str()) {
                    strings(v, out);
                } else {
                    collect(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            out.push(s.clone());
            // The TOTP secret inside `barcode_uri`, the suffix of `totp|dev_...`.
            if let Some(secret) = s.split(['?', '&']).find_map(|p| p.strip_prefix("secret=")) {
                out.push(secret.to_owned());
            }
            if let Some((_, suffix)) = s.rsplit_once('|') {
                out.push(suffix.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        _ => {}
    }
}

fn request_values(body: &[u8], out: &mut Vec<String>) {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        collect(&json, out);
    } else {
        for (k, v) in url::form_urlencoded::parse(body) {
            if SECRET_KEYS.contains(&k.as_ref()) {
                out.push(v.into_owned());
            }
        }
    }
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    request_values(&body, &mut proxy.secrets.lock().unwrap());
    if let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        proxy.secrets.lock().unwrap().push(token.to_owned());
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
    let upstream_headers = upstream.headers().clone();
    let mut bytes = upstream.bytes().await.unwrap().to_vec();
    if let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) {
        collect(&json, &mut proxy.secrets.lock().unwrap());
        let mutation = *proxy.mutation.lock().unwrap();
        let map = json.as_object_mut();
        match (mutation, map) {
            (Mutation::ExtraField, Some(map)) if map.contains_key("barcode_uri") => {
                map.insert("vendor_hint".into(), "x".into());
            }
            (Mutation::ChangedStatus, Some(map))
                if map.get("error") == Some(&"mfa_required".into()) =>
            {
                status = 401;
            }
            (Mutation::TypeChange, Some(map)) if map.contains_key("expires_in") => {
                let text = map["expires_in"].to_string();
                map.insert("expires_in".into(), text.into());
            }
            (Mutation::ChangedText, Some(map))
                if map.get("error") == Some(&"mfa_required".into()) =>
            {
                map.insert(
                    "error_description".into(),
                    "Multi-factor authentication is required".into(),
                );
            }
            _ => {}
        }
        bytes = serde_json::to_vec(&json).unwrap();
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for name in ["content-type", "www-authenticate", "cache-control"] {
        if let Some(value) = upstream_headers.get(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// A fresh reference server with a proxy in front of it; returns the proxy's URL.
pub async fn proxy(mutation: Mutation) -> (String, Arc<Proxy>) {
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
        mutation: Mutex::new(mutation),
        secrets: Mutex::new(Vec::new()),
    });
    std::mem::forget(upstream); // lives for the test process
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), proxy)
}

/// Writes `<dir>/<name>.yaml`, a profile for a target at `base_url` with every capability.
pub fn profile(dir: &Path, name: &str, base_url: &str) -> PathBuf {
    control_profile(
        dir,
        name,
        base_url,
        "[otp, sms, voice, email, recovery-code, clock]",
    )
}

/// Writes the small suite of `tests/fixtures/snapshot/` into `<dir>/suite`: `flow` (log
/// in, enroll OTP, confirm; every step snapshotted, one path redacted by the scenario) and
/// `unmarked` (no `snapshot` key: snapshotted only with `--snapshot` or once it has
/// snapshots, but never its first `jwks` step; the second, of the same name, is
/// `jwks-2.snap`).
pub fn small_suite(dir: &Path) -> PathBuf {
    let suite = dir.join("suite");
    copy_fixtures(
        "snapshot",
        ["requirements.yaml", "flow.yaml", "unmarked.yaml"],
        &suite,
    );
    suite
}

/// Snapshot options for a run.
pub fn snapshots(dir: &Path, mode: Option<Mode>) -> SnapshotOptions {
    SnapshotOptions {
        dir: Some(dir.to_owned()),
        mode,
        ..SnapshotOptions::default()
    }
}

pub fn shape_against(dir: &Path, profile: &str) -> SnapshotOptions {
    SnapshotOptions {
        dir: Some(dir.to_owned()),
        compare: Comparison::Shape,
        profile: Some(profile.to_owned()),
        ..SnapshotOptions::default()
    }
}

/// Runs `suite` against `profile` (`None`: the embedded reference server).
pub async fn run_with(
    suite: &Path,
    profile: Option<&Path>,
    snapshots: SnapshotOptions,
    reports: &Path,
) -> RunOutcome {
    run(RunOptions {
        profile: profile.map(Path::to_owned),
        scenarios: vec![suite.to_owned()],
        jobs: 8,
        report_dir: Some(reports.to_owned()),
        quiet: true,
        snapshots,
        ..RunOptions::default()
    })
    .await
    .map_err(|e| e.to_string())
    .unwrap()
}

/// The snapshot checks of a run: (scenario, step, check).
pub fn snapshot_checks(outcome: &RunOutcome) -> Vec<(String, String, CheckResult)> {
    outcome
        .report
        .scenarios
        .iter()
        .flat_map(|s| {
            s.steps.iter().flat_map(move |st| {
                st.checks
                    .iter()
                    .filter(|c| c.requirement == "snapshot")
                    .map(move |c| (s.name.clone(), st.name.clone(), c.clone()))
            })
        })
        .collect()
}

/// Every file below `dir` whose name ends with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect()
}

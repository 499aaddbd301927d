//! No secret that crosses the wire during `run` and `load` reaches a file the harness writes
//! or its terminal output, even at `-vv`.
//!
//! The reference server runs as a separate process with a distinctive client secret; a
//! small recording proxy of the test sits between it and the harness (the profile points
//! at the proxy, control API included). Every secret value the proxy sees is harvested:
//! the client secret, user passwords from `/__control/users`, `mfa_token`s, access and id
//! tokens, `oob_code`s, binding codes from `/__control/messages`, TOTP secrets (also inside
//! `barcode_uri`), the `barcode_uri`s, recovery codes, and the OTP codes the harness sends.
//! Then, with `-vv`: the full suite recording snapshots, a compare run against snapshots
//! made to differ (so `.snap.new` files and diffs are written), and a short load run.
//! Every file they produce and their stdout and stderr are searched for every value.
//!
//! Values of six characters or more that are not all digits are searched as plain
//! substrings (raw, form-encoded, JSON- and HTML-escaped), and so are the first twelve
//! characters of those of 16 or more (a value cut short still gives its start away). The 6-digit codes (OTP, binding
//! codes) would also match latencies, counts and timestamps, so they are searched where a
//! code would be written: quoted (`"123456"`, `'123456'`, `\"123456\"` inside a JSON
//! string, `&quot;123456&quot;` in XML), after `=` (a form or query), or as a YAML value
//! (`: 123456` at the end of a line).

use crate::support::{BIN, SCENARIOS, files_under, fixture, tempdir};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const CLIENT_ID: &str = "secrets-test-client";
const CLIENT_SECRET: &str = "CLIENT-SECRET-7f3a9c41e2b8d6055b1e";

/// Scenarios whose snapshots are made to differ, so the compare run writes `.snap.new`
/// files and diffs of responses full of secrets.
const CHANGED: [&str; 5] = [
    "otp-enrollment",
    "otp-login",
    "recovery-code-login",
    "sms-enrollment",
    "challenge-oob",
];

/// One request and its response, as the proxy saw them.
struct Recorded {
    path: String,
    request_type: String,
    request: Bytes,
    response: Bytes,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<Vec<Recorded>>,
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut upstream = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        // The Host header goes through, so issuer and audiences are the proxy's.
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body.clone()).send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(format!("proxy: {e}")))
                .unwrap();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let response = answer.bytes().await.unwrap_or_default();
    proxy.seen.lock().unwrap().push(Recorded {
        path,
        request_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        request: body,
        response: response.clone(),
    });
    let mut builder = Response::builder().status(status);
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            builder = builder.header(name, value);
        }
    }
    builder.body(Body::from(response)).unwrap()
}

/// The harvested secrets, by kind.
#[derive(Default)]
struct Harvest {
    by_kind: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Harvest {
    fn add(&mut self, kind: &'static str, value: &str) {
        if !value.is_empty() {
            self.by_kind
                .entry(kind)
                .or_default()
                .insert(value.to_owned());
        }
    }

    /// Server-issued secrets in a response body, by key.
    fn harvest_response(&mut self, path: &str, json: &Value) {
        match json {
            Value::Object(map) => {
                for (key, value) in map {
                    let text = value.as_str().unwrap_or_default();
                    match key.as_str() {
                        "access_token" | "id_token" | "refresh_token" => {
                            self.add("access/id token", text)
                        }
                        "mfa_token" => self.add("mfa_token", text),
                        "oob_code" => self.add("oob_code", text),
                        "secret" => self.add("TOTP secret", text),
                        "barcode_uri" => {
                            self.add("barcode_uri", text);
                            if let Some(secret) = text
                                .split(['?', '&'])
                                .find_map(|p| p.strip_prefix("secret="))
                            {
                                self.add("TOTP secret", secret);
                            }
                        }
                        "recovery_code" => self.add("recovery code", text),
                        "recovery_codes" => {
                            for code in value.as_array().into_iter().flatten() {
                                self.add("recovery code", code.as_str().unwrap_or_default());
                            }
                        }
                        "password" if path.starts_with("/__control/users") => {
                            self.add("user password", text)
                        }
                        "code" if path.starts_with("/__control/messages") => {
                            self.add("binding code", text)
                        }
                        _ => self.harvest_response(path, value),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.harvest_response(path, v)),
            _ => {}
        }
    }

    /// Secrets the harness computed and sent: OTP codes (literal values written in the
    /// scenario files, such as a deliberately wrong code, are test data, not secrets).
    fn harvest_request(&mut self, fields: &[(String, String)], scenario_text: &str) {
        for (key, value) in fields {
            let literal = scenario_text.contains(&format!("\"{value}\""));
            if key == "otp" && !literal {
                self.add("OTP code", value);
            }
        }
    }

    fn count(&self) -> usize {
        self.by_kind.values().map(BTreeSet::len).sum()
    }
}

/// `(key, value)` pairs of a form or JSON request body.
fn request_fields(content_type: &str, body: &[u8]) -> Vec<(String, String)> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        url::form_urlencoded::parse(body).into_owned().collect()
    } else if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        map.into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
            .collect()
    } else {
        Vec::new()
    }
}

/// The forms a secret may take in a file: raw, form- or percent-encoded, JSON-escaped,
/// HTML-escaped.
fn variants(secret: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(secret.to_owned());
    out.insert(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    let json = serde_json::to_string(secret).unwrap();
    out.insert(json[1..json.len() - 1].to_owned());
    out.insert(
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;"),
    );
    out
}

/// Where secrets were found: (where, kind, value).
struct Scanner {
    long: Regex,
    kind_of: BTreeMap<String, (&'static str, String)>,
    codes: BTreeMap<String, &'static str>,
    code_context: Regex,
}

impl Scanner {
    fn new(harvest: &Harvest) -> Scanner {
        let mut kind_of = BTreeMap::new();
        let mut codes = BTreeMap::new();
        for (kind, values) in &harvest.by_kind {
            for value in values {
                if value.len() >= 6 && value.bytes().all(|b| b.is_ascii_digit()) {
                    codes.insert(value.clone(), *kind);
                } else if value.len() >= 6 {
                    for variant in variants(value) {
                        kind_of.insert(variant, (*kind, value.clone()));
                    }
                    // A secret cut short (a long value shortened for a message) leaks its
                    // start: twelve characters of a random value are as distinctive. A
                    // barcode URI starts with the same `otpauth://...` as every other.
                    if value.len() >= 16 && *kind != "barcode_uri" {
                        let start: String = value.chars().take(12).collect();
                        kind_of
                            .entry(start)
                            .or_insert((*kind, format!("{value} (its start)")));
                    }
                }
            }
        }
        let mut literals: Vec<&String> = kind_of.keys().collect();
        literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let pattern = literals
            .iter()
            .map(|s| regex::escape(s))
            .collect::<Vec<_>>()
            .join("|");
        Scanner {
            long: regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 28)
                .dfa_size_limit(1 << 28)
                .build()
                .unwrap(),
            kind_of,
            codes,
            // Quoted (also `\"…\"` inside JSON and `&quot;…&quot;` in XML), after `=`,
            // or a YAML value.
            code_context: Regex::new(r#"(?m)(?:["'=;]|: )([0-9]{6,10})(?:["'&\\\s]|$)"#).unwrap(),
        }
    }

    fn scan(&self, place: &str, text: &str, found: &mut Vec<String>) {
        for hit in self.long.find_iter(text) {
            let (kind, value) = &self.kind_of[hit.as_str()];
            found.push(format!(
                "{place}: {kind} {value:?} in …{}…",
                context(text, hit.start(), hit.end())
            ));
        }
        for hit in self.code_context.captures_iter(text) {
            let code = hit.get(1).unwrap();
            if let Some(kind) = self.codes.get(code.as_str()) {
                found.push(format!(
                    "{place}: {kind} {:?} in …{}…",
                    code.as_str(),
                    context(text, code.start(), code.end())
                ));
            }
        }
    }
}

fn context(text: &str, start: usize, end: usize) -> String {
    let mut from = start.saturating_sub(60);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + 60).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    text[from..to].replace('\n', "⏎")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
        output.status.code(),
        tail(&String::from_utf8_lossy(&output.stdout)),
        tail(&String::from_utf8_lossy(&output.stderr))
    )
}

fn tail(text: &str) -> &str {
    let mut from = text.len().saturating_sub(4000);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

async fn harness(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_report_a_snapshot_a_load_report_or_the_terminal() {
    let dir = tempdir("secrets");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The repository's suite, plus the probe scenario.
    let suite = dir.join("scenarios");
    std::fs::create_dir_all(&suite).unwrap();
    for entry in std::fs::read_dir(SCENARIOS).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, suite.join(path.file_name().unwrap())).unwrap();
        }
    }
    // A scenario whose `should` checks fail on purpose (warnings: the run still passes) so
    // that secrets meet every way a check shows a value: a whole body shortened with `…`
    // (which can cut a token in two), a long token or URI cut short, and an expectation
    // rendered from the OTP the step just sent.
    std::fs::copy(
        fixture("secrets/zz-failing-checks.yaml"),
        suite.join("zz-failing-checks.yaml"),
    )
    .unwrap();
    let scenarios = suite.display().to_string();
    let scenarios = scenarios.as_str();

    // The reference server, as its own process, with a client secret of its own.
    let config = dir.join("server.yaml");
    std::fs::write(
        &config,
        format!("clients:\n  - {{client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}}}\n"),
    )
    .unwrap();
    let mut server = tokio::process::Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut first_line),
    )
    .await
    .expect("the server prints its address")
    .unwrap();
    let upstream = first_line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_owned();

    // The recording proxy in front of it.
    let proxy = Arc::new(Proxy {
        upstream,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let profile = dir.join("secrets-target.yaml");
    std::fs::write(
        &profile,
        format!(
            "base_url: {base_url}
client_id: {CLIENT_ID}
client_secret: {CLIENT_SECRET}
realm: Username-Password-Authentication
capabilities: [otp, sms, voice, email, recovery-code, clock]
control:
  users: {base_url}/__control/users
  messages: {base_url}/__control/messages
  clock: {base_url}/__control/clock
timeout: 20s
"
        ),
    )
    .unwrap();
    let profile = profile.display().to_string();
    let snapshots = out.join("snapshots").display().to_string();
    let mut outputs: Vec<(String, Output)> = Vec::new();

    // 1. The full suite, recording a snapshot of every step.
    let run = harness(strings(&[
        "-vv",
        "run",
        "--scenarios",
        scenarios,
        "--profile",
        &profile,
        "--snapshot",
        "--snapshots",
        "record",
        "--snapshot-dir",
        &snapshots,
        "--report-dir",
        &out.join("run").display().to_string(),
    ]))
    .await;
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("run").join("report.json")).unwrap())
            .unwrap();
    let probe_failures = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "zz-failing-checks")
        .flat_map(|s| s["steps"].as_array().unwrap())
        .flat_map(|s| s["checks"].as_array().unwrap())
        .filter(|c| c["status"] == "failed")
        .count();
    assert_eq!(probe_failures, 8, "{:#}", report["scenarios"]);
    outputs.push(("run -vv (record)".into(), run));

    // 2. The same scenarios compared with snapshots made to differ: `.snap.new` files and
    // unified diffs in the reports and the terminal.
    let snapshot_root = out.join("snapshots").join("secrets-target");
    let mut changed = 0;
    for scenario in CHANGED {
        let files = files_under(&snapshot_root.join(scenario));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Keep the header and the status; the body becomes one line every new
            // response differs from.
            let head = text.split("\n\n").next().unwrap();
            std::fs::write(&file, format!("{head}\n\n{{\"changed\": true}}\n")).unwrap();
            changed += 1;
        }
    }
    assert!(changed >= 10, "only {changed} snapshots to change");
    let mut compare_args = strings(&["-vv", "run", "--scenarios", scenarios, "--profile"]);
    compare_args.push(profile.clone());
    for scenario in CHANGED {
        compare_args.extend(strings(&["--name", scenario]));
    }
    compare_args.extend(strings(&[
        "--snapshots",
        "compare",
        "--snapshot-dir",
        &snapshots,
        "--report-dir",
        &out.join("compare").display().to_string(),
    ]));
    let compare = harness(compare_args).await;
    assert_eq!(compare.status.code(), Some(1), "{}", describe(&compare));
    outputs.push(("run -vv (compare)".into(), compare));
    let pending = files_under(&snapshot_root);
    let pending = pending
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".snap.new"))
        .count();
    assert!(pending >= 10, "only {pending} .snap.new files were written");

    // 3. A short load run.
    let load = harness(strings(&[
        "-vv",
        "load",
        "--scenarios",
        scenarios,
        "--profile",
        &profile,
        "--scenario",
        "otp-login",
        "--rate",
        "20/s",
        "--duration",
        "2s",
        "--report-dir",
        &out.join("load").display().to_string(),
    ]))
    .await;
    assert_eq!(load.status.code(), Some(0), "{}", describe(&load));
    outputs.push(("load -vv".into(), load));

    // SIGTERM stops the server gracefully.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "the server exited with {status}");

    // Harvest every secret that crossed the wire.
    let scenario_text: String = {
        let files = files_under(&suite);
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    };
    let mut harvest = Harvest::default();
    harvest.add("client secret", CLIENT_SECRET);
    let recorded = std::mem::take(&mut *proxy.seen.lock().unwrap());
    for exchange in &recorded {
        if let Ok(json) = serde_json::from_slice::<Value>(&exchange.response) {
            harvest.harvest_response(&exchange.path, &json);
        }
        harvest.harvest_request(
            &request_fields(&exchange.request_type, &exchange.request),
            &scenario_text,
        );
    }
    let counts: BTreeMap<&str, usize> =
        harvest.by_kind.iter().map(|(k, v)| (*k, v.len())).collect();
    for kind in [
        "client secret",
        "user password",
        "mfa_token",
        "access/id token",
        "oob_code",
        "binding code",
        "TOTP secret",
        "barcode_uri",
        "recovery code",
        "OTP code",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was harvested from {} exchanges: {counts:?}",
            recorded.len()
        );
    }

    let scanner = Scanner::new(&harvest);
    // The scanner finds what it should: the server's configuration holds the client
    // secret, and a code in each context it checks.
    let mut found = Vec::new();
    scanner.scan(
        "server.yaml",
        &std::fs::read_to_string(&config).unwrap(),
        &mut found,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let (code, _) = scanner.codes.iter().next().expect("6-digit codes");
    for sample in [
        format!("{{\"otp\":\"{code}\"}}"),
        format!("\"check\": \"equals \\\"{code}\\\"\""),
        format!("<failure message=\"equals &quot;{code}&quot;\"/>"),
        format!("otp={code}&x=1"),
        format!("binding_code: {code}\n"),
    ] {
        let mut hits = Vec::new();
        scanner.scan("sample", &sample, &mut hits);
        assert_eq!(hits.len(), 1, "{sample}: {hits:?}");
    }

    // Every file produced, and what each command printed.
    let files = files_under(&out);
    let mut found = Vec::new();
    let mut kinds_of_files: BTreeSet<String> = BTreeSet::new();
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        kinds_of_files.insert(if name.ends_with(".snap.new") {
            ".snap.new".to_owned()
        } else if name.ends_with(".snap") {
            ".snap".to_owned()
        } else {
            name
        });
        scanner.scan(&file.display().to_string(), &text, &mut found);
    }
    for expected in [
        "report.json",
        "junit.xml",
        "summary.md",
        "compatibility.md",
        ".snap",
        ".snap.new",
        "load.json",
        "load.md",
        "load.html",
        "load.hlog",
    ] {
        assert!(
            kinds_of_files.contains(expected),
            "no {expected} was written: {kinds_of_files:?}"
        );
    }
    let mut printed = 0;
    for (command, output) in &outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            printed += text.len();
            scanner.scan(&format!("{command} {stream}"), &text, &mut found);
        }
    }
    // `-vv` did log the exchanges (so the terminal was really exposed to them).
    let run_stderr = String::from_utf8_lossy(&outputs[0].1.stderr);
    assert!(
        run_stderr.contains("POST ") && run_stderr.contains("/mfa/associate -> 200"),
        "-vv logged no exchange:\n{}",
        tail(&run_stderr)
    );
    assert!(
        run_stderr.contains("[REDACTED]"),
        "-vv logged no redacted value"
    );
    eprintln!(
        "harvested {} secrets from {} exchanges {counts:?}; scanned {} files and {printed} bytes of output",
        harvest.count(),
        recorded.len(),
        files.len()
    );
    let leaks = found.len();
    found.truncate(40);
    assert!(
        leaks == 0,
        "{leaks} secrets leaked (the first 40):\n{}",
        found.join("\n")
    );
}

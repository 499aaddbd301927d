//! Shared helpers of the hostile-target suite (`hostile_run.rs`, `hostile_load.rs`): a
//! purpose-built misbehaving HTTP/1.1 server on raw loopback sockets (one path per
//! behaviour), a suite of one-step scenarios (one per behaviour, plus a healthy one), a
//! profile with a 1-second timeout, and readers for the reports.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mfa-conform");

/// The body every well-behaved answer carries.
const OK_BODY: &str = r#"{"ok":true}"#;

/// Size of the oversized body: 50 MB (the harness reads at most 10 MB).
pub const HUGE_BYTES: usize = 50 * 1024 * 1024;

/// The behaviours, as (scenario name, path). Each scenario is one `GET path` checked for
/// `status: 200` and `$.ok == true`.
pub const CASES: &[(&str, &str)] = &[
    ("hang", "/hang"),
    ("reset", "/reset"),
    ("html", "/html"),
    ("bad-utf8", "/bad-utf8"),
    ("huge", "/huge"),
    ("trickle", "/trickle"),
    ("redirect", "/redirect"),
    ("close", "/close"),
    ("healthy", "/ok"),
];

/// Starts the misbehaving server on a free loopback port of the current runtime; returns
/// its base URL.
pub async fn hostile_server() -> String {
    hostile_server_logged().await.0
}

/// The paths requested so far, in arrival order.
pub type RequestLog = Arc<Mutex<Vec<String>>>;

/// [`hostile_server`], and the log of the paths it was asked for.
pub async fn hostile_server_logged() -> (String, RequestLog) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = RequestLog::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(connection(stream, server_log.clone()));
        }
    });
    (format!("http://{addr}"), log)
}

/// Reads one request head; returns its path, or None when the peer closed.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).into_owned();
            // GET requests without a body: nothing else to drain.
            let line = text.lines().next().unwrap_or_default().to_owned();
            return line.split_whitespace().nth(1).map(str::to_owned);
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
}

fn head(status: &str, content_type: &str, length: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n{extra}\r\n"
    )
}

/// Serves one connection: keep-alive, one behaviour per request path.
async fn connection(mut stream: TcpStream, log: RequestLog) {
    while let Some(path) = read_request(&mut stream).await {
        log.lock().unwrap().push(path.clone());
        match path.as_str() {
            "/ok" => {
                let answer = head("200 OK", "application/json", OK_BODY.len(), "") + OK_BODY;
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            // Accepts, reads the request, and never answers (until the client gives up).
            "/hang" => {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            // Headers and part of the body, then a TCP reset (SO_LINGER 0).
            "/reset" => {
                let partial = r#"{"ok":true,"pad":""#;
                let answer = head("200 OK", "application/json", 1000, "") + partial;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
                return;
            }
            "/html" => {
                let body = "<!doctype html><html><body><h1>Welcome</h1></body></html>";
                let answer = head("200 OK", "text/html; charset=utf-8", body.len(), "") + body;
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            // Declared JSON, but the bytes are not UTF-8.
            "/bad-utf8" => {
                let body: &[u8] = b"{\"ok\":true,\"name\":\"\xff\xfe\xc3\x28\x80\"}";
                let mut answer = head("200 OK", "application/json", body.len(), "").into_bytes();
                answer.extend_from_slice(body);
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
            }
            // 50 MB, streamed in 64 KB chunks (the server never holds more than one).
            "/huge" => {
                let answer = head("200 OK", "application/json", HUGE_BYTES, "");
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let prefix = br#"{"ok":true,"pad":""#;
                let chunk = vec![b'a'; 64 * 1024];
                let mut sent = 0;
                if stream.write_all(prefix).await.is_err() {
                    return;
                }
                sent += prefix.len();
                while sent < HUGE_BYTES - 2 {
                    let n = chunk.len().min(HUGE_BYTES - 2 - sent);
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                }
                if stream.write_all(b"\"}").await.is_err() {
                    return;
                }
            }
            // Headers at once, then the body one byte per second.
            "/trickle" => {
                let answer = head("200 OK", "application/json", OK_BODY.len(), "");
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                for byte in OK_BODY.bytes() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                }
            }
            // A redirect to itself, forever.
            "/redirect" => {
                let answer = head("302 Found", "text/plain", 0, "location: /redirect\r\n");
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            // A correct answer, then the connection is closed (no keep-alive).
            "/close" => {
                let answer = head(
                    "200 OK",
                    "application/json",
                    OK_BODY.len(),
                    "connection: close\r\n",
                ) + OK_BODY;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
            _ => {
                let body = r#"{"error":"not_found"}"#;
                let answer = head("404 Not Found", "application/json", body.len(), "") + body;
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The catalogue: the two requirements every hostile scenario checks.
pub const CATALOGUE: &str = r#"version: "test"
requirements:
  - {id: H-STATUS, area: errors, text: the answer is a 200, source: test, level: must}
  - {id: H-JSON, area: errors, text: the answer is JSON with ok true, source: test, level: must}
"#;

/// A one-step scenario: `GET path`, a 200 with `{"ok": true}`. `close` takes three steps,
/// so each of its requests needs a new connection.
pub fn scenario(name: &str, path: &str) -> String {
    let steps = if name == "close" { 3 } else { 1 };
    let mut text = format!("description: The target's {name} behaviour.\nuser: false\nsteps:\n");
    for i in 1..=steps {
        text += &format!(
            "  - name: get {name} {i}\n    request: {{method: GET, path: {path}}}\n    checks:\n      - {{req: H-STATUS, status: 200}}\n      - {{req: H-JSON, path: $.ok, equals: true}}\n"
        );
    }
    text
}

/// A fresh temporary directory for one test.
pub fn tempdir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mfa-conform-hostile-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `suite/` (catalogue and the scenarios named by `cases`, file names prefixed by
/// their order so the suite runs them in that order) and `profile.yaml` (`base_url`, a 1-s
/// timeout and `extra` lines); returns (suite dir, profile).
pub fn write_suite(
    dir: &Path,
    base_url: &str,
    cases: &[(&str, &str)],
    extra: &str,
) -> (PathBuf, PathBuf) {
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(suite.join("requirements.yaml"), CATALOGUE).unwrap();
    for (name, path) in cases {
        std::fs::write(suite.join(format!("{name}.yaml")), scenario(name, path)).unwrap();
    }
    let profile = dir.join("profile.yaml");
    std::fs::write(
        &profile,
        format!("base_url: {base_url}\ntimeout: 1s\n{extra}"),
    )
    .unwrap();
    (suite, profile)
}

/// Runs the binary with `args` to completion on a blocking thread (so the test's own
/// servers keep serving). With `measure_rss`, it runs under `/usr/bin/time` and the peak
/// RSS (KB) is returned too.
pub async fn run_bin(args: Vec<String>, measure_rss: bool) -> (Output, Option<u64>) {
    tokio::task::spawn_blocking(move || {
        let rss_file = std::env::temp_dir().join(format!(
            "mfa-conform-hostile-rss-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let mut command = if measure_rss {
            let mut c = std::process::Command::new("/usr/bin/time");
            c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(BIN);
            c
        } else {
            std::process::Command::new(BIN)
        };
        let output = command.args(&args).env("NO_COLOR", "1").output().unwrap();
        let rss = measure_rss
            .then(|| std::fs::read_to_string(&rss_file).ok())
            .flatten()
            .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
        let _ = std::fs::remove_file(&rss_file);
        (output, rss)
    })
    .await
    .unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Whether `/usr/bin/time` (GNU time, for peak RSS) can be used.
pub fn have_gnu_time() -> bool {
    std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The exit code, stdout and stderr of a finished run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// No panic anywhere in the output.
pub fn assert_no_panic(output: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "the harness panicked:\n{}",
        describe(output)
    );
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

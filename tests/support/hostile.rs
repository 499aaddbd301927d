//! The hostile-target suite's helpers (`hardening/hostile_run.rs`, `hostile_load.rs`): a
//! purpose-built misbehaving HTTP/1.1 server on raw loopback sockets (one path per
//! behaviour), the suite of one-step scenarios in `tests/fixtures/hostile/` (one per
//! behaviour, plus a healthy one), and a profile with a 1-second timeout.

use super::{BIN, copy_fixtures, describe, run_bin};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body every well-behaved answer carries.
const OK_BODY: &str = r#"{"ok":true}"#;

/// Size of the oversized body: 50 MB (the harness reads at most 10 MB).
pub const HUGE_BYTES: usize = 50 * 1024 * 1024;

/// The behaviours, as (scenario name, path). Each scenario (`tests/fixtures/hostile/`) is
/// one `GET path` checked for `status: 200` and `$.ok == true`; `close` takes three steps,
/// so each of its requests needs a new connection.
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
    start(false).await
}

/// [`hostile_server`] that answers the first request on each path (the preflight, `load`'s
/// calibration flow) as `/ok` does, on a connection it then closes: the load starts, and
/// every measured flow meets the misbehaviour.
pub async fn hostile_server_after_calibration() -> String {
    start(true).await.0
}

async fn start(answer_first: bool) -> (String, RequestLog) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = RequestLog::default();
    let server_log = log.clone();
    let answered = answer_first.then(Answered::default);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(connection(stream, server_log.clone(), answered.clone()));
        }
    });
    (format!("http://{addr}"), log)
}

/// The paths already answered correctly once.
type Answered = Arc<Mutex<std::collections::HashSet<String>>>;

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

/// A correct answer that says the connection closes after it.
fn ok_then_close() -> String {
    head(
        "200 OK",
        "application/json",
        OK_BODY.len(),
        "connection: close\r\n",
    ) + OK_BODY
}

/// Serves one connection: keep-alive, one behaviour per request path.
async fn connection(mut stream: TcpStream, log: RequestLog, answered: Option<Answered>) {
    while let Some(path) = read_request(&mut stream).await {
        log.lock().unwrap().push(path.clone());
        if answered
            .as_ref()
            .is_some_and(|a| a.lock().unwrap().insert(path.clone()))
        {
            let _ = stream.write_all(ok_then_close().as_bytes()).await;
            return;
        }
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
                let _ = stream.write_all(ok_then_close().as_bytes()).await;
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

/// Writes `suite/` (the catalogue and the scenarios named by `cases`) and `profile.yaml`
/// (`base_url`, a 1-s timeout and `extra` lines); returns (suite dir, profile).
pub fn write_suite(
    dir: &Path,
    base_url: &str,
    cases: &[(&str, &str)],
    extra: &str,
) -> (PathBuf, PathBuf) {
    let suite = dir.join("suite");
    let scenarios = cases.iter().map(|(name, _)| format!("{name}.yaml"));
    copy_fixtures(
        "hostile",
        std::iter::once("requirements.yaml".to_owned()).chain(scenarios),
        &suite,
    );
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
pub async fn run_bin_measured(args: Vec<String>, measure_rss: bool) -> (Output, Option<u64>) {
    if !measure_rss {
        return (run_bin(args).await, None);
    }
    tokio::task::spawn_blocking(move || {
        let rss_file = tempfile::NamedTempFile::new().unwrap();
        let output = std::process::Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(rss_file.path())
            .arg(BIN)
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let rss = std::fs::read_to_string(rss_file.path())
            .ok()
            .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
        (output, rss)
    })
    .await
    .unwrap()
}

/// Whether `/usr/bin/time` (GNU time, for peak RSS) can be used.
pub fn have_gnu_time() -> bool {
    std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
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

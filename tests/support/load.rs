//! Helpers for the end-to-end tests of `mfa-conform load`: purpose-built HTTP servers on
//! loopback, the one-step ping suite (`tests/fixtures/ping/`) and a profile in a temporary
//! directory, `LoadArgs` with the command line's defaults, and readers for the reports.

use super::{BIN, TempDir, copy_fixtures, describe, read_json, tempdir};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use mfa_conform::load::LoadArgs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Writes `suite/` (the catalogue and the ping scenario: one `GET /ping`, no user, no
/// setup) and `profile.yaml` (just a base_url, and `extra` profile lines) into `dir`;
/// returns (suite dir, profile).
pub fn write_suite(dir: &Path, base_url: &str, extra: &str) -> (PathBuf, PathBuf) {
    let suite = dir.join("suite");
    copy_fixtures("ping", ["requirements.yaml", "ping.yaml"], &suite);
    let profile = dir.join("profile.yaml");
    std::fs::write(&profile, format!("base_url: {base_url}\n{extra}")).unwrap();
    (suite, profile)
}

/// Serves `app` on a free loopback port of the current runtime; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// `LoadArgs` as the command line would give them with no option but these.
pub fn args(scenarios: &Path, profile: Option<&Path>, report_dir: &Path) -> LoadArgs {
    LoadArgs {
        target: mfa_conform::target::TargetArgs {
            profile: profile.map(Path::to_owned),
            base_url: None,
            scenarios: vec![scenarios.to_owned()],
        },
        scenario: vec!["ping".into()],
        tags: Vec::new(),
        vus: None,
        rate: None,
        duration: None,
        iterations: None,
        warmup: None,
        stages: None,
        plan: None,
        pool: None,
        max_in_flight: 10_000,
        thresholds: Vec::new(),
        baseline: None,
        max_regression: None,
        report_dir: Some(report_dir.to_owned()),
        progress_every: "5s".parse().unwrap(),
        threads: None,
    }
}

/// `load.json` of a report directory.
pub fn report(dir: &Path) -> Value {
    read_json(&dir.join("load.json"))
}

/// A number of `load.json` (`report["flows"]["latency"]["p99"]`, ...).
pub fn num(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Sum of the flows per second of the timeline.
pub fn timeline_flows(report: &Value) -> u64 {
    report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["flows"].as_u64().unwrap())
        .sum()
}

/// Reads an HdrHistogram interval log: for each tag, the number of intervals and the total
/// count of the decoded histograms.
pub fn hlog_counts(path: &Path) -> BTreeMap<String, (usize, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut counts: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.unwrap_or_else(|e| panic!("{}: bad entry {e:?}", path.display()));
        if let LogEntry::Interval(interval) = entry {
            let tag = interval
                .tag()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .unwrap();
            let histogram: hdrhistogram::Histogram<u64> = deserializer
                .deserialize(&mut std::io::Cursor::new(raw))
                .unwrap();
            let slot = counts.entry(tag).or_default();
            slot.0 += 1;
            slot.1 += histogram.len();
        }
    }
    counts
}

/// A server whose `GET /ping` answers 200 with a small JSON body at once.
pub async fn ok_server() -> String {
    serve(Router::new().route(
        "/ping",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
    ))
    .await
}

/// Command-line arguments of a `load` run of the ping flow against `profile`.
pub fn cli(suite: &Path, profile: &Path, reports: &Path, extra: &[&str]) -> Vec<String> {
    cli_for("ping", suite, profile, reports, extra)
}

/// Command-line arguments of a `load` run of the flow `name` against `profile`.
pub fn cli_for(
    name: &str,
    suite: &Path,
    profile: &Path,
    reports: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "load".into(),
        "--scenarios".into(),
        suite.display().to_string(),
        "--profile".into(),
        profile.display().to_string(),
        "--scenario".into(),
        name.into(),
        "--report-dir".into(),
        reports.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The reports of a load run stopped by a signal after the target saw `seen` requests
/// (one of them the calibration flow's, at 50/s for about 2 s): `interrupted: true`, every
/// flow the target saw counted once, in the timeline and the interval log too, and the
/// Markdown and HTML reports saying so.
pub fn assert_interrupted_reports(reports: &Path, seen: u64) {
    let report = report(reports);
    assert_eq!(report["interrupted"], true, "{report:#}");
    let flows = report["flows"]["count"].as_u64().unwrap();
    assert!((60..=200).contains(&flows), "{flows} flows\n{report:#}");
    assert_eq!(flows, seen - 1, "{:#}", report["starts"]);
    assert_eq!(report["flows"]["failed"], 0);
    let measured = report["duration_s"].as_f64().unwrap();
    assert!(
        (1.5..10.0).contains(&measured),
        "measured {measured} s of a 60-s plan"
    );
    assert_eq!(timeline_flows(&report), flows, "{:#}", report["timeline"]);
    let hlog = hlog_counts(&reports.join("load.hlog"));
    assert_eq!(hlog.get("flow").map(|c| c.1), Some(flows), "{hlog:?}");
    let markdown = std::fs::read_to_string(reports.join("load.md")).unwrap();
    assert!(markdown.contains("**Interrupted**"), "{markdown}");
    let html = std::fs::read_to_string(reports.join("load.html")).unwrap();
    assert!(html.contains("<b>interrupted</b>"));
}

/// `GET /ping` counts the request, then answers at once for the first `fast` requests and
/// never for the later ones. Returns the base URL and the count.
pub async fn ping_server(fast: u64) -> (String, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/ping",
            get(move |State(seen): State<Arc<AtomicU64>>| async move {
                if seen.fetch_add(1, Ordering::SeqCst) >= fast {
                    std::future::pending::<()>().await;
                }
                axum::Json(serde_json::json!({"ok": true}))
            }),
        )
        .with_state(seen.clone());
    (serve(app).await, seen)
}

/// Waits until the target has seen `count` requests (at most a minute).
pub async fn wait_for_requests(seen: &AtomicU64, count: u64) {
    let waiting = Instant::now();
    while seen.load(Ordering::SeqCst) < count {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary with `args`, its output captured, killed if the test drops it.
pub fn spawn_bin(args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// `kill -SIGNAL pid`.
pub fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Runs `load` at 50/s for a 60-s plan against a `/ping` target that always answers, sends
/// `signal` once it has measured for about two seconds, and returns the process's output
/// (which must come within 5 s of the signal), the run's directory (reports in `reports/`)
/// and the requests the target saw (the first is the calibration flow's).
pub async fn signalled_load_run(tag: &str, signal: &str) -> (Output, TempDir, u64) {
    let (base_url, seen) = ping_server(u64::MAX).await;
    let dir = tempdir(tag);
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
    let child = spawn_bin(&args);
    let pid = child.id().unwrap();
    // Once measured flows arrive the signal handlers are in place.
    wait_for_requests(&seen, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill(signal, pid);
    let sent = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the run stops soon after the signal")
        .unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopping took {:?}\n{}",
        sent.elapsed(),
        describe(&output)
    );
    (output, dir, seen.load(Ordering::SeqCst))
}

//! Release gates and exit codes of `mfa-conform load`, through the binary: a threshold that
//! holds exits 0, one that fails exits 4 with `passed: false` in load.json, a malformed one
//! exits 2 with a message naming it, and a regression against `--baseline` beyond
//! `--max-regression` exits 5.

use crate::support::load::*;
use crate::support::{TempDir, describe, run_bin, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A target answering `GET /ping` at once, the suite and profile for it, and the report
/// directory of this test.
async fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf, PathBuf) {
    let base_url = ok_server().await;
    let dir = tempdir(tag);
    let (suite, profile) = write_suite(&dir, &base_url, "");
    let reports = dir.join("reports");
    (dir, suite, profile, reports)
}

fn thresholds(report: &Value) -> Vec<(String, Option<f64>, bool)> {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["threshold"].as_str().unwrap().to_owned(),
                t["actual"].as_f64(),
                t["passed"].as_bool().unwrap(),
            )
        })
        .collect()
}

const SHORT: [&str; 4] = ["--rate", "50/s", "--duration", "1s"];

#[tokio::test(flavor = "multi_thread")]
async fn thresholds_that_hold_exit_0() {
    let (_dir, suite, profile, reports) = setup("thresholds-pass").await;
    let mut extra = SHORT.to_vec();
    extra.extend([
        "--threshold",
        "flow:p99<5s",
        "--threshold",
        "step:ping:p95<5000ms",
        "--threshold",
        "errors<1%",
        "--threshold",
        "checks<1%",
        "--threshold",
        "throughput>10",
    ]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = report(&reports);
    let results = thresholds(&report);
    assert_eq!(results.len(), 5, "{results:?}");
    for (expr, actual, passed) in &results {
        assert!(passed, "{expr}: {actual:?}");
        assert!(actual.is_some(), "{expr} was not measured");
    }
    // The actual values are in the threshold's unit: ms, %, flows/s.
    assert_eq!(results[2].1, Some(0.0), "errors in percent");
    let throughput = results[4].1.unwrap();
    assert!(
        (30.0..=60.0).contains(&throughput),
        "50/s for 1 s: {throughput}"
    );
    assert_eq!(report["flows"]["failed"], 0);
    assert_eq!(report["options"]["thresholds"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_threshold_exits_4() {
    let (_dir, suite, profile, reports) = setup("thresholds-fail").await;
    let mut extra = SHORT.to_vec();
    extra.extend([
        "--threshold",
        "flow:p99<0.001ms",
        "--threshold",
        "flow:p99<5s",
    ]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let report = report(&reports);
    let results = thresholds(&report);
    let (expr, actual, passed) = &results[0];
    assert_eq!(expr, "flow:p99<0.001ms");
    assert!(!passed);
    let actual = actual.expect("the flow p99 was measured");
    assert!(actual > 0.001, "{actual}");
    assert_eq!(actual, report["flows"]["latency"]["p99"].as_f64().unwrap());
    assert!(results[1].2, "flow:p99<5s holds: {results:?}");
    let markdown = std::fs::read_to_string(reports.join("load.md")).unwrap();
    assert!(
        markdown.contains("| `flow:p99<0.001ms` |") && markdown.contains("FAIL"),
        "{markdown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_threshold_exits_2_with_a_message() {
    let (_dir, suite, profile, reports) = setup("thresholds-bad").await;
    for (bad, why) in [
        ("flow:p42<1ms", "unknown percentile"),
        ("latency<1ms", "unknown metric"),
        ("flow:p99<soon", "not a latency"),
        ("errors=1%", "no comparison"),
        // A gate on a step no selected flow has could never be evaluated.
        (
            "step:no-such-step:p99<5s",
            "no step \"no-such-step\" in the selected flows",
        ),
    ] {
        let mut extra = SHORT.to_vec();
        extra.extend(["--threshold", bad]);
        let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("threshold {bad:?}")) && stderr.contains(why),
            "{bad}: {stderr}"
        );
        assert!(
            !reports.join("load.json").exists(),
            "bad input is refused before the run"
        );
    }
    let mut extra = SHORT.to_vec();
    extra.extend(["--baseline", "/nonexistent/load.json"]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--baseline /nonexistent/load.json"),
        "{}",
        describe(&output)
    );
    let mut extra = SHORT.to_vec();
    extra.extend(["--max-regression", "lots"]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--max-regression"),
        "{}",
        describe(&output)
    );
}

/// Divides every latency of a load.json by `factor` (flow percentiles and each step's).
fn faster_by(report: &Value, factor: f64) -> Value {
    let mut baseline = report.clone();
    let shrink = |latency: &mut Value| {
        for (_, v) in latency.as_object_mut().unwrap() {
            if let Some(x) = v.as_f64()
                && v.is_f64()
            {
                *v = Value::from(x / factor);
            }
        }
    };
    shrink(&mut baseline["flows"]["latency"]);
    for step in baseline["steps"].as_array_mut().unwrap() {
        shrink(&mut step["latency"]);
    }
    baseline
}

async fn run_against_baseline(
    suite: &Path,
    profile: &Path,
    reports: &Path,
    baseline: &Path,
    max: &str,
) -> (Option<i32>, Value) {
    let mut extra = SHORT.to_vec();
    let baseline = baseline.display().to_string();
    extra.extend(["--baseline", &baseline, "--max-regression", max]);
    let output = run_bin(cli(suite, profile, reports, &extra)).await;
    let code = output.status.code();
    assert!(reports.join("load.json").exists(), "{}", describe(&output));
    (code, report(reports))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regression_against_the_baseline_exits_5() {
    let (dir, suite, profile, reports) = setup("regression").await;
    let output = run_bin(cli(&suite, &profile, &reports, &SHORT)).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let first = report(&reports);
    let baseline = dir.join("baseline.json");
    std::fs::write(&baseline, faster_by(&first, 100.0).to_string()).unwrap();

    let (code, report) =
        run_against_baseline(&suite, &profile, &dir.join("again"), &baseline, "10%").await;
    assert_eq!(code, Some(5), "{:#}", report["baseline"]);
    let deltas = report["baseline"]["deltas"].as_array().unwrap();
    let delta = |metric: &str| {
        deltas
            .iter()
            .find(|d| d["metric"] == metric)
            .unwrap_or_else(|| panic!("no delta for {metric}: {deltas:#?}"))
    };
    for metric in ["flow:p50", "flow:p95", "flow:p99", "step:ping:p99"] {
        let d = delta(metric);
        assert_eq!(d["regressed"], true, "{d:#}");
        assert!(d["change_percent"].as_f64().unwrap() > 1000.0, "{d:#}");
    }
    assert_eq!(report["baseline"]["max_regression_percent"], 10.0);
    // The thresholds (none) held; it is the regression that fails the run.
    assert!(report["thresholds"].as_array().unwrap().is_empty());
    let markdown = std::fs::read_to_string(dir.join("again/load.md")).unwrap();
    assert!(markdown.contains("REGRESSED"), "{markdown}");

    // The same comparison with a looser limit passes: the limit is what decides.
    let (code, report) =
        run_against_baseline(&suite, &profile, &dir.join("loose"), &baseline, "1000000%").await;
    assert_eq!(code, Some(0), "{:#}", report["baseline"]);
    assert!(
        report["baseline"]["deltas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["regressed"] == false),
        "{:#}",
        report["baseline"]
    );
}

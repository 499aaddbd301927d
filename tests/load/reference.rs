//! `mfa-conform load` against the embedded reference server with the repository's own
//! scenarios: a real MFA flow (log in, enroll OTP, confirm, log in again, verify) replayed
//! in the open model completes without a failed flow, and every report is written: the
//! HdrHistogram interval log decodes to the same counts as load.json, and load.html holds
//! its SVG charts.

use crate::support::load::*;
use crate::support::{SCENARIOS, describe, run_bin, tempdir};

#[tokio::test(flavor = "multi_thread")]
async fn otp_login_against_the_reference_server() {
    let dir = tempdir("reference");
    let reports = dir.join("reports");
    let output = run_bin(
        [
            "load",
            "--scenarios",
            SCENARIOS,
            "--scenario",
            "otp-login",
            "--rate",
            "50/s",
            "--duration",
            "2s",
            "--report-dir",
            reports.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let text = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let report = report(&reports);
    let flows = &report["flows"];
    let count = flows["count"].as_u64().unwrap();
    assert!((95..=100).contains(&count), "{count} flows\n{text}");
    assert_eq!(flows["failed"], 0, "{report:#}");
    assert_eq!(flows["with_check_failures"], 0, "{report:#}");
    assert_eq!(report["check_failures"], serde_json::json!([]));
    assert_eq!(report["errors_by_kind"], serde_json::json!({}));
    assert_eq!(report["interrupted"], false);
    assert_eq!(report["target"], "reference");
    assert_eq!(report["scenarios"], serde_json::json!(["otp-login"]));
    let starts = &report["starts"];
    assert_eq!(starts["dropped_pool"], 0, "{starts:#}");
    assert_eq!(starts["dropped_in_flight"], 0, "{starts:#}");
    // Five requests per flow, each step timed.
    assert_eq!(report["requests"]["count"].as_u64().unwrap(), 5 * count);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{steps:#?}");
    assert!(steps.iter().all(|s| s["count"].as_u64() == Some(count)));
    assert_eq!(timeline_flows(&report), count, "{:#}", report["timeline"]);

    let hlog_text = std::fs::read_to_string(reports.join("load.hlog")).unwrap();
    let lines: Vec<&str> = hlog_text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("Tag=flow,")),
        "{hlog_text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Tag=step:")),
        "{hlog_text}"
    );
    // The log decodes, and its intervals add up to the totals of load.json.
    let hlog = hlog_counts(&reports.join("load.hlog"));
    assert_eq!(hlog["flow"].1, count, "{hlog:?}");
    assert_eq!(hlog["step:log_in"].1, count, "{hlog:?}");
    assert_eq!(hlog.len(), 6, "flow and five steps: {hlog:?}");

    let html = std::fs::read_to_string(reports.join("load.html")).unwrap();
    assert!(html.contains("<svg"), "{html}");
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "percentile and timeline charts"
    );
    let markdown = std::fs::read_to_string(reports.join("load.md")).unwrap();
    assert!(
        markdown.contains("flow (from intended start)"),
        "{markdown}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("reports: "));
}

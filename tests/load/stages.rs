//! How much a plan runs: `--iterations`, `--warmup` (run, then discarded) and ramping
//! `--stages` in both models.

use crate::support::load::*;
use crate::support::{describe, run_bin, tempdir};
use serde_json::Value;

async fn run(tag: &str, plan: &[&str]) -> Value {
    let base_url = ok_server().await;
    let dir = tempdir(tag);
    let (suite, profile) = write_suite(&dir, &base_url, "");
    let reports = dir.join("reports");
    let mut extra = plan.to_vec();
    // Flows without setup use up their user; do not let the pool limit these plans.
    extra.extend(["--pool", "5000"]);
    let output = run_bin(cli(&suite, &profile, &reports, &extra)).await;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    report(&reports)
}

fn flows(report: &Value) -> u64 {
    report["flows"]["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn iterations_stop_the_run_in_either_model() {
    let open = run("iterations-open", &["--rate", "50/s", "--iterations", "30"]).await;
    assert_eq!(flows(&open), 30, "{open:#}");
    assert_eq!(open["starts"]["scheduled"], 30);
    // 30 flows at 50/s take 0.6 s, not the day a plan without --duration allows.
    assert!(open["duration_s"].as_f64().unwrap() < 5.0);
    let closed = run("iterations-closed", &["--vus", "3", "--iterations", "30"]).await;
    assert_eq!(flows(&closed), 30, "{closed:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn warmup_is_run_then_discarded() {
    let report = run(
        "warmup",
        &["--rate", "50/s", "--warmup", "1s", "--duration", "1s"],
    )
    .await;
    let n = flows(&report);
    assert!((45..=50).contains(&n), "{n} flows measured of 50 + 50");
    assert_eq!(report["starts"]["scheduled"], 50);
    let measured = report["duration_s"].as_f64().unwrap();
    assert!((0.9..1.5).contains(&measured), "measured {measured} s");
    assert_eq!(report["options"]["plan"]["warmup"], 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_model_stages_run_their_length() {
    let report = run("stages-closed", &["--stages", "1s:2,1s:2"]).await;
    assert_eq!(report["options"]["plan"]["model"], "closed");
    let measured = report["duration_s"].as_f64().unwrap();
    assert!((1.9..3.0).contains(&measured), "measured {measured} s");
    assert!(flows(&report) > 20, "{:#}", report["timeline"]);
}

/// A linear ramp from 0 to 50/s over 1 s, then 1 s at 50/s: about 25 + 50 = 75 starts
/// over 2 s. `open()` in src/load/driver.rs spaces starts by the reciprocal of the rate at
/// the previous start: at t = 10 ms the ramp's rate is 0.5/s, so the next start is
/// scheduled 2 s later, past the end of the plan. The run makes 1 flow and ends after
/// 0.02 s; the README's `--stages "30s:100/s,2m:500/s,30s:0/s"` skips its whole first
/// stage the same way (the next start after t = 10 ms is at t = 30 s).
#[tokio::test(flavor = "multi_thread")]

async fn open_model_stages_ramp_up() {
    let report = run("stages-open", &["--stages", "1s:50/s,1s:50/s"]).await;
    assert_eq!(report["options"]["plan"]["model"], "open");
    let measured = report["duration_s"].as_f64().unwrap();
    let scheduled = report["starts"]["scheduled"].as_u64().unwrap();
    assert!(
        measured >= 1.9 && (60..=90).contains(&scheduled),
        "{scheduled} starts in {measured} s, expected about 75 in 2 s\n{:#}",
        report["timeline"]
    );
}

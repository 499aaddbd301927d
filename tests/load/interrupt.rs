//! Ctrl-C during `mfa-conform load`: the run stops, still writes every report for the time
//! that ran (`interrupted: true`), and exits 130.

use crate::support::describe;
use crate::support::load::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_writes_its_report_and_exits_130() {
    let (output, dir, seen) = signalled_load_run("interrupt", "INT").await;
    let output_text = describe(&output);
    assert_eq!(output.status.code(), Some(130), "{output_text}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("interrupted"),
        "{output_text}"
    );
    assert_interrupted_reports(&dir.join("reports"), seen);
}

//! The terminal summary: a line per scenario, details for what failed (expected vs actual,
//! the request and the response, secrets redacted), and the totals.

use super::RunReport;
use crate::engine::result::{CheckStatus, ScenarioResult, ScenarioStatus};
use crate::scenario::model::Severity;
use std::fmt::Write;

/// One line as a scenario finishes.
pub fn scenario_line(s: &ScenarioResult) -> String {
    let label = match s.status {
        ScenarioStatus::Passed if s.warnings > 0 => "WARN",
        ScenarioStatus::Passed => "PASS",
        ScenarioStatus::Failed => "FAIL",
        ScenarioStatus::Skipped => "SKIP",
    };
    let mut line = format!("{label} {}", s.name);
    match s.status {
        ScenarioStatus::Skipped => {
            let _ = write!(line, " ({})", s.skip_reason.as_deref().unwrap_or(""));
        }
        _ if s.warnings > 0 => {
            let _ = write!(
                line,
                " ({} warning{})",
                s.warnings,
                if s.warnings == 1 { "" } else { "s" }
            );
        }
        _ => {}
    }
    line
}

/// Details of failures and warnings, then the totals.
pub fn summary(report: &RunReport) -> String {
    summary_with(report, true)
}

/// [`summary`]; without `diffs`, a differing snapshot is its one-line message (the diff is
/// in `summary.md`, and on the terminal with `-v`).
pub fn summary_with(report: &RunReport, diffs: bool) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        let interesting = s.status == ScenarioStatus::Failed || s.warnings > 0;
        if !interesting {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} {}",
            if s.status == ScenarioStatus::Failed {
                "FAILED"
            } else {
                "WARNINGS"
            },
            s.name
        );
        let _ = writeln!(out, "  file: {}", s.file);
        if let Some(e) = &s.error {
            let _ = writeln!(out, "  error: {}", e.message);
        }
        for step in &s.steps {
            let failed: Vec<_> = step
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Failed)
                .collect();
            if failed.is_empty() && step.error.is_none() {
                continue;
            }
            let _ = writeln!(out, "  step: {}", step.name);
            if let Some(e) = &step.error {
                let _ = writeln!(out, "    error: {}", e.message);
            }
            for c in failed {
                let level = match c.severity {
                    Severity::Must => "must",
                    Severity::Should => "should",
                };
                if c.origin.is_snapshot() {
                    let _ = writeln!(out, "    [{}] ({level}) {}", c.requirement, c.check);
                    let _ = writeln!(out, "      {}", c.message);
                    if diffs {
                        for line in c.actual.lines() {
                            let _ = writeln!(out, "      {line}");
                        }
                    }
                    continue;
                }
                let _ = writeln!(
                    out,
                    "    [{}] ({level}) expected {}",
                    c.requirement, c.check
                );
                let _ = writeln!(out, "      actual: {}", c.actual);
            }
            if let Some(x) = &step.exchange {
                let _ = writeln!(out, "    request: {} {}", x.method, x.url);
                if let Some(body) = &x.request_body {
                    let _ = writeln!(out, "      body: {body}");
                }
                if let Some(status) = x.status {
                    let _ = writeln!(
                        out,
                        "    response: {status} {}",
                        x.content_type.as_deref().unwrap_or("")
                    );
                }
                if let Some(body) = &x.response_body {
                    let _ = writeln!(out, "      body: {body}");
                }
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(out);
    if report.interrupted {
        let _ = writeln!(out, "interrupted: the report covers the scenarios that ran");
    }
    if s.expected_failures > 0 {
        let _ = writeln!(
            out,
            "{} check(s) failed as expected (known deviations)",
            s.expected_failures
        );
    }
    if !s.unexpected_passes.is_empty() {
        let _ = writeln!(
            out,
            "now passing, remove from the expected failures: {}",
            s.unexpected_passes.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "scenarios: {} passed, {} failed, {} skipped, {} warnings ({} checks passed, {} failed) in {:.2}s",
        s.passed,
        s.failed,
        s.skipped,
        s.warnings,
        s.checks_passed,
        s.checks_failed,
        report.duration_ms / 1000.0
    );
    out
}

//! Markdown: `summary.md` (fit for a CI job summary) and `compatibility.md` (requirements by
//! area: what a vendor shows a customer).

use super::{RequirementStatus, RunReport};
use crate::engine::result::{
    CheckOrigin, CheckResult, CheckStatus, ScenarioResult, ScenarioStatus, StepResult,
};
use std::collections::BTreeMap;
use std::fmt::Write;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn summary(report: &RunReport) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let verdict = if s.failed == 0 && !report.interrupted {
        "passed"
    } else {
        "FAILED"
    };
    let _ = writeln!(
        out,
        "# mfa-conform: {} against `{}`\n",
        verdict, report.target.name
    );
    if report.interrupted {
        let _ = writeln!(out, "**Interrupted**: only part of the suite ran.\n");
    }
    let _ = writeln!(
        out,
        "| scenarios | passed | failed | skipped | warnings | expected failures |\n|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} |\n",
        s.scenarios, s.passed, s.failed, s.skipped, s.warnings, s.expected_failures
    );
    let _ = writeln!(
        out,
        "Target `{}`, suite {} (`{}`), {:.0} ms.\n",
        report.target.base_url, report.suite.version, report.suite.content_hash, report.duration_ms
    );
    let failed = with_status(report, ScenarioStatus::Failed);
    if !failed.is_empty() {
        let _ = writeln!(out, "## Failures\n");
        for scenario in failed {
            let _ = writeln!(out, "### {}\n", scenario.name);
            if let Some(e) = &scenario.error {
                let _ = writeln!(out, "- error: {}", e.message);
            }
            for step in &scenario.steps {
                if let Some(e) = &step.error {
                    let _ = writeln!(out, "- step **{}**: {}", step.name, e.message);
                }
                for c in step
                    .checks
                    .iter()
                    .filter(|c| c.status == CheckStatus::Failed)
                {
                    let _ = writeln!(
                        out,
                        "- step **{}** `{}` ({}): {}",
                        step.name,
                        c.requirement,
                        c.severity.as_str(),
                        c.message
                    );
                    out.push_str(&diff_block(c));
                }
            }
            out.push('\n');
        }
    }
    let warned: Vec<_> = every_check(report)
        .filter(|(_, _, c)| {
            c.status == CheckStatus::Failed && c.severity == crate::scenario::Severity::Should
        })
        .collect();
    if !warned.is_empty() {
        let _ = writeln!(out, "## Warnings (`should`)\n");
        for (s, st, c) in warned {
            let _ = writeln!(
                out,
                "- {} / {} `{}`: {}",
                s.name, st.name, c.requirement, c.message
            );
            out.push_str(&diff_block(c));
        }
        out.push('\n');
    }
    if !s.unexpected_passes.is_empty() {
        let _ = writeln!(
            out,
            "## Expected failures that now pass\n\nRemove them from the known-deviations file: {}\n",
            s.unexpected_passes.join(", ")
        );
    }
    let skipped = with_status(report, ScenarioStatus::Skipped);
    if !skipped.is_empty() {
        let _ = writeln!(out, "## Skipped\n");
        for s in skipped {
            let _ = writeln!(
                out,
                "- {}: {}",
                s.name,
                s.skip_reason.as_deref().unwrap_or("")
            );
        }
    }
    let snapshots = snapshot_section(report, true);
    if !snapshots.is_empty() {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&snapshots);
    }
    out
}

/// The unified diff of a failed snapshot check, as a fenced block inside a list item.
fn diff_block(c: &CheckResult) -> String {
    if !c.origin.is_snapshot() || c.actual.trim().is_empty() {
        return String::new();
    }
    let mut out = String::from("\n  ```diff\n");
    for line in c.actual.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("  ```\n");
    out
}

/// Response snapshots: counts, and in shape comparison the verdict of every step
/// (`all_steps`) or of the differing ones.
fn snapshot_section(report: &RunReport, all_steps: bool) -> String {
    let checks: Vec<_> = every_check(report)
        .filter(|(_, _, c)| c.origin.is_snapshot())
        .collect();
    if checks.is_empty() {
        return String::new();
    }
    let same = checks
        .iter()
        .filter(|(_, _, c)| c.status == CheckStatus::Passed)
        .count();
    let mut out = String::new();
    let shape_of = checks.iter().find_map(|(_, _, c)| match &c.origin {
        CheckOrigin::Shape { profile } => Some(profile.as_str()),
        _ => None,
    });
    match shape_of {
        Some(profile) => {
            let _ = writeln!(
                out,
                "## Response shapes compared with `{profile}`\n\n{same} of {} step(s) have the same shape as `{profile}` (status, media type, keys, value types, array lengths).\n",
                checks.len()
            );
            let rows: Vec<_> = checks
                .iter()
                .filter(|(_, _, c)| all_steps || c.status != CheckStatus::Passed)
                .collect();
            if !rows.is_empty() {
                let _ = writeln!(out, "| scenario | step | shape |\n|---|---|---|");
                for (s, st, c) in rows {
                    let verdict = if c.status == CheckStatus::Passed {
                        format!("same shape as {profile}")
                    } else {
                        c.message.clone()
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        cell(&s.name),
                        cell(&st.name),
                        cell(&verdict)
                    );
                }
                out.push('\n');
            }
        }
        None => {
            let _ = writeln!(
                out,
                "## Response snapshots\n\n{same} of {} snapshot(s) match; {} differ.\n",
                checks.len(),
                checks.len() - same
            );
        }
    }
    out
}

pub fn compatibility(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# MFA API compatibility report\n");
    let _ = writeln!(out, "{}\n", verdict_line(report));
    let _ = writeln!(
        out,
        "- Target: `{}` ({})\n- Capabilities claimed: {}\n- Suite: version {}, content hash `{}`\n- Date: {}\n- Tool: mfa-conform {}{}\n- Clock: {}\n",
        report.target.name,
        report.target.base_url,
        if report.target.capabilities.is_empty() {
            "none".to_owned()
        } else {
            report.target.capabilities.join(", ")
        },
        report.suite.version,
        report.suite.content_hash,
        report.started_at,
        report.tool.version,
        if report.strict { " (strict)" } else { "" },
        report.target.clock
    );
    let reasons = expected_reasons(report);
    if !reasons.is_empty() {
        let _ = writeln!(
            out,
            "Known deviations (expected failures) and their reasons:\n"
        );
        for (id, reason) in &reasons {
            let _ = writeln!(out, "- `{id}`: {reason}");
        }
        let _ = writeln!(out);
    }
    let mut by_area: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for r in &report.requirements {
        by_area.entry(r.area).or_default().push(r);
    }
    let _ = writeln!(
        out,
        "| area | pass | warn | fail | expected | skip |\n|---|---|---|---|---|---|"
    );
    for (area, reqs) in &by_area {
        let count = |st: RequirementStatus| reqs.iter().filter(|r| r.status == st).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            area.title(),
            count(RequirementStatus::Pass),
            count(RequirementStatus::Warn),
            count(RequirementStatus::Fail),
            count(RequirementStatus::Expected),
            count(RequirementStatus::Skip)
        );
    }
    out.push('\n');
    for (area, reqs) in &by_area {
        let _ = writeln!(
            out,
            "## {}\n\n| requirement | level | status | text | source |\n|---|---|---|---|---|",
            area.title()
        );
        for r in reqs {
            let status = match r.status {
                RequirementStatus::Pass => "pass",
                RequirementStatus::Warn => "WARN",
                RequirementStatus::Fail => "FAIL",
                RequirementStatus::Expected => "expected failure",
                RequirementStatus::Skip => "skip",
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                r.id,
                r.level.as_str(),
                status,
                cell(&r.text),
                cell(&r.source)
            );
        }
        out.push('\n');
    }
    let shapes_compared = report
        .scenarios
        .iter()
        .flat_map(|s| s.checks())
        .any(|c| matches!(c.origin, CheckOrigin::Shape { .. }));
    if shapes_compared {
        out.push_str(&snapshot_section(report, false));
    }
    out
}

/// The verdict, first in every human-readable report.
fn verdict_line(report: &RunReport) -> String {
    let s = &report.summary;
    if report.interrupted {
        format!(
            "**Verdict: INTERRUPTED**: {} of {} scenarios ran before the run was stopped.",
            s.passed + s.failed + s.skipped,
            s.scenarios
        )
    } else if s.failed > 0 {
        format!(
            "**Verdict: FAILED**: {} of {} scenarios failed.",
            s.failed, s.scenarios
        )
    } else {
        format!(
            "**Verdict: PASSED**: {} scenarios passed, {} skipped, {} with warnings, {} expected failures.",
            s.passed, s.skipped, s.warnings, s.expected_failures
        )
    }
}

/// Each requirement listed as a known deviation that failed as expected, with its reason.
fn expected_reasons(report: &RunReport) -> BTreeMap<&str, &str> {
    report
        .scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .flat_map(|st| &st.checks)
        .filter_map(|c| {
            Some((
                c.requirement.as_str(),
                c.expected_failure_reason.as_deref()?,
            ))
        })
        .collect()
}

/// Every check of the run with its scenario and step, in report order.
fn every_check(
    report: &RunReport,
) -> impl Iterator<Item = (&ScenarioResult, &StepResult, &CheckResult)> {
    report.scenarios.iter().flat_map(|s| {
        s.steps
            .iter()
            .flat_map(move |st| st.checks.iter().map(move |c| (s, st, c)))
    })
}

/// The scenarios that ended with `status`, in report order.
fn with_status(report: &RunReport, status: ScenarioStatus) -> Vec<&ScenarioResult> {
    report
        .scenarios
        .iter()
        .filter(|s| s.status == status)
        .collect()
}

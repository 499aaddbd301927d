//! Reports: one result model ([`RunReport`]) fanned out to sinks, one file per format
//! (terminal, JSON, JUnit XML, Markdown summary, compatibility report).

pub mod console;
pub mod json;
pub mod junit;
pub mod markdown;

use crate::engine::result::{CheckStatus, ScenarioResult, ScenarioStatus};
use crate::scenario::Suite;
use crate::scenario::model::{Area, Severity};
use serde::Serialize;
use std::path::Path;

/// Version of the `report.json` schema (README, "report.json").
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub suite: SuiteInfo,
    pub target: TargetInfo,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: f64,
    /// Stopped by a signal before every scenario ran.
    pub interrupted: bool,
    pub strict: bool,
    pub summary: Summary,
    pub scenarios: Vec<ScenarioResult>,
    pub requirements: Vec<RequirementOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteInfo {
    pub version: String,
    pub content_hash: String,
    pub dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub base_url: String,
    pub capabilities: Vec<String>,
    /// Whose clock TOTP codes followed: the target's (through its clock hook) or local time.
    pub clock: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub scenarios: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// `should` checks that failed.
    pub warnings: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub expected_failures: usize,
    /// Requirements listed as expected failures whose checks all passed.
    pub unexpected_passes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementStatus {
    Pass,
    Warn,
    Fail,
    Expected,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequirementOutcome {
    pub id: String,
    pub area: Area,
    pub text: String,
    pub source: String,
    pub level: Severity,
    pub status: RequirementStatus,
    pub checks_passed: usize,
    pub checks_failed: usize,
}

/// Facts about a run that are not scenario results.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub target: TargetInfo,
    pub started_at: String,
    pub duration_ms: f64,
    pub interrupted: bool,
    pub strict: bool,
    /// Requirement ids listed as expected failures.
    pub expected: Vec<String>,
}

impl RunReport {
    pub fn summarise(suite: &Suite, meta: RunMeta, scenarios: Vec<ScenarioResult>) -> RunReport {
        let RunMeta {
            target,
            started_at,
            duration_ms,
            interrupted,
            strict,
            expected,
        } = meta;
        let mut summary = Summary {
            scenarios: scenarios.len(),
            ..Summary::default()
        };
        for s in &scenarios {
            match s.status {
                ScenarioStatus::Passed => summary.passed += 1,
                ScenarioStatus::Failed => summary.failed += 1,
                ScenarioStatus::Skipped => summary.skipped += 1,
            }
            summary.warnings += s.warnings;
            for c in s.checks() {
                match c.status {
                    CheckStatus::Passed => summary.checks_passed += 1,
                    CheckStatus::Failed => summary.checks_failed += 1,
                    CheckStatus::ExpectedFailure => summary.expected_failures += 1,
                }
            }
        }
        let requirements: Vec<RequirementOutcome> = suite
            .catalogue
            .requirements
            .iter()
            .map(|r| {
                let checks = scenarios
                    .iter()
                    .flat_map(|s| s.checks())
                    .filter(|c| c.requirement == r.id);
                let (mut passed, mut failed_must, mut failed_should, mut expected_fail) =
                    (0, 0, 0, 0);
                for c in checks {
                    match (c.status, c.severity) {
                        (CheckStatus::Passed, _) => passed += 1,
                        (CheckStatus::Failed, Severity::Must) => failed_must += 1,
                        (CheckStatus::Failed, Severity::Should) => failed_should += 1,
                        (CheckStatus::ExpectedFailure, _) => expected_fail += 1,
                    }
                }
                let status = if failed_must > 0 {
                    RequirementStatus::Fail
                } else if failed_should > 0 {
                    if strict {
                        RequirementStatus::Fail
                    } else {
                        RequirementStatus::Warn
                    }
                } else if expected_fail > 0 {
                    RequirementStatus::Expected
                } else if passed > 0 {
                    RequirementStatus::Pass
                } else {
                    RequirementStatus::Skip
                };
                RequirementOutcome {
                    id: r.id.clone(),
                    area: r.area,
                    text: r.text.clone(),
                    source: r.source.clone(),
                    level: r.level,
                    status,
                    checks_passed: passed,
                    checks_failed: failed_must + failed_should + expected_fail,
                }
            })
            .collect();
        summary.unexpected_passes = expected
            .iter()
            .filter(|id| {
                requirements
                    .iter()
                    .any(|r| &r.id == *id && r.status == RequirementStatus::Pass)
            })
            .cloned()
            .collect();
        RunReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "mfa-conform",
                version: env!("CARGO_PKG_VERSION"),
            },
            suite: SuiteInfo {
                version: suite.catalogue.version.clone(),
                content_hash: suite.content_hash.clone(),
                dir: suite.dir.display().to_string(),
            },
            target,
            started_at,
            duration_ms,
            interrupted,
            strict,
            summary,
            scenarios,
            requirements,
        }
    }
}

/// Writes every file report into `dir`.
pub fn write_all(report: &RunReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), json::render(report))?;
    std::fs::write(dir.join("junit.xml"), junit::render(report))?;
    std::fs::write(dir.join("summary.md"), markdown::summary(report))?;
    std::fs::write(
        dir.join("compatibility.md"),
        markdown::compatibility(report),
    )?;
    Ok(())
}

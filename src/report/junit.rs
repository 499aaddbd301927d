//! `junit.xml`: one test case per scenario, for CI systems.

use super::RunReport;
use crate::engine::result::{CheckStatus, ScenarioStatus};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new("mfa-conform");
    let mut suite = TestSuite::new(format!("conformance: {}", report.target.name));
    for scenario in &report.scenarios {
        let status = match scenario.status {
            ScenarioStatus::Passed => TestCaseStatus::success(),
            ScenarioStatus::Skipped => {
                let mut s = TestCaseStatus::skipped();
                if let Some(reason) = &scenario.skip_reason {
                    s.set_message(reason.clone());
                }
                s
            }
            ScenarioStatus::Failed => {
                let errored =
                    scenario.error.is_some() || scenario.steps.iter().any(|s| s.error.is_some());
                let mut s = TestCaseStatus::non_success(if errored {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                });
                let mut lines = Vec::new();
                if let Some(e) = &scenario.error {
                    lines.push(e.message.clone());
                }
                for step in &scenario.steps {
                    if let Some(e) = &step.error {
                        lines.push(format!("{}: {}", step.name, e.message));
                    }
                    for c in step
                        .checks
                        .iter()
                        .filter(|c| c.status == CheckStatus::Failed)
                    {
                        lines.push(format!("{}: [{}] {}", step.name, c.requirement, c.message));
                        if c.origin.is_snapshot() && !c.actual.is_empty() {
                            lines.push(c.actual.trim_end().to_owned());
                        }
                    }
                }
                s.set_message(lines.first().cloned().unwrap_or_default());
                s.set_description(lines.join("\n"));
                s
            }
        };
        let mut case = TestCase::new(scenario.name.clone(), status);
        case.set_classname(relative(&scenario.file));
        case.set_time(Duration::from_secs_f64(scenario.duration_ms / 1000.0));
        case.set_assertions(scenario.checks().count());
        suite.add_test_case(case);
    }
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_default()
}

/// A scenario file as CI systems show it: relative to the working directory when it is
/// below it (an absolute path would differ from machine to machine).
fn relative(file: &str) -> String {
    let path = std::path::Path::new(file);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| file.to_owned())
}

//! The result model every sink (terminal, JSON, JUnit, Markdown) reads.

use super::control::ControlError;
use super::response::Observed;
use crate::scenario::model::Severity;
use crate::transport::TransportError;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    /// Failed, but listed in the known-deviations file.
    ExpectedFailure,
}

/// Where a check comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOrigin {
    /// A check a scenario wrote, of the catalogue requirement [`CheckResult::requirement`].
    Requirement,
    /// The response compared with its recorded snapshot.
    Snapshot,
    /// The response's shape compared with the snapshot of another profile.
    Shape { profile: String },
}

impl CheckOrigin {
    pub fn is_snapshot(&self) -> bool {
        !matches!(self, CheckOrigin::Requirement)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The catalogue requirement, or `snapshot` for snapshot comparisons.
    pub requirement: String,
    #[serde(skip)]
    pub origin: CheckOrigin,
    pub severity: Severity,
    pub status: CheckStatus,
    /// What was checked, e.g. `$.error equals "mfa_required"`.
    pub check: String,
    /// What was found (redacted).
    pub actual: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_failure_reason: Option<String>,
}

pub use crate::scenario::model::Phase;

/// What went wrong outside the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Connection refused, DNS, TLS, timeout, reset: the target could not be reached.
    Transport,
    /// A control hook (users, messages, clock) failed.
    Control,
    /// A template referred to something undefined, a capture found nothing...
    Scenario,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
    /// What the transport reported, for a [`ErrorKind::Transport`] error.
    #[serde(skip)]
    pub transport: Option<TransportError>,
}

impl StepError {
    /// A mistake of the scenario (a template, a capture).
    pub fn scenario(message: impl Into<String>) -> StepError {
        StepError {
            kind: ErrorKind::Scenario,
            message: message.into(),
            transport: None,
        }
    }

    pub fn control(error: &ControlError) -> StepError {
        StepError {
            kind: ErrorKind::Control,
            message: error.to_string(),
            transport: None,
        }
    }

    /// The same error, its message prefixed with what was being done.
    pub fn context(mut self, doing: &str) -> StepError {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// A request that failed: `shown` is the request line as a report may show it
    /// (`POST https://...`, redacted).
    pub fn transport(shown: &str, error: TransportError) -> StepError {
        let message = match &error {
            TransportError::BodyTooLarge | TransportError::InvalidRequest(_) => error.to_string(),
            _ => format!("{shown}: {error}"),
        };
        let kind = match &error {
            TransportError::InvalidRequest(_) => ErrorKind::Scenario,
            _ => ErrorKind::Transport,
        };
        StepError {
            kind,
            message,
            transport: Some(error),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub phase: Phase,
    /// Index of the step's definition in its phase (`setup`, `steps`, `teardown`).
    #[serde(skip)]
    pub position: usize,
    pub name: String,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// The raw response (unredacted, in memory only) for sinks that need more than the
    /// checks, such as response snapshots.
    #[serde(skip)]
    pub observed: Option<Observed>,
}

impl StepResult {
    /// A `must` check failed or the step could not run: later steps are not attempted.
    pub fn is_blocking(&self) -> bool {
        self.error.is_some()
            || self
                .checks
                .iter()
                .any(|c| c.status == CheckStatus::Failed && c.severity == Severity::Must)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioStatus {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub file: String,
    pub tags: Vec<String>,
    pub status: ScenarioStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub duration_ms: f64,
    /// `should` checks that failed.
    pub warnings: usize,
    pub steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

impl ScenarioResult {
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }

    /// Settles `status` and `warnings` from the checks and errors (`strict`: `should`
    /// failures fail too).
    pub fn settle(&mut self, strict: bool) {
        if self.status == ScenarioStatus::Skipped {
            return;
        }
        self.warnings = self
            .checks()
            .filter(|c| c.status == CheckStatus::Failed && c.severity == Severity::Should)
            .count();
        let failed_check = self
            .checks()
            .any(|c| c.status == CheckStatus::Failed && (c.severity == Severity::Must || strict));
        let errored = self.error.is_some() || self.steps.iter().any(|s| s.error.is_some());
        self.status = if failed_check || errored {
            ScenarioStatus::Failed
        } else {
            ScenarioStatus::Passed
        };
    }
}

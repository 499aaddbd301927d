//! What the scenarios of one run share: the target, its HTTP client and control hooks, the
//! templates, the clock offset, the run's redactor, the catalogue's levels and how much
//! detail to keep ([`Detail`]).

use super::control::ControlClient;
use super::redact::Redactor;
use super::result::{Phase, ScenarioResult, ScenarioStatus, StepError};
use super::session::Session;
use super::template::{Builtins, Templates};
use crate::scenario::load::{Suite, SuiteScenario};
use crate::scenario::model::{Capability, Check, Severity};
use crate::target::Target;
use crate::transport::http::{ClientError, client};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

/// How much of each exchange the engine keeps; fixed when the context is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Conformance runs: every request and response is reported (redacted), logged and
    /// kept for snapshots, every check described, every body parsed.
    Full,
    /// Load runs: only what measuring needs, so the generator spends its CPU on requests.
    /// A check is described only when it fails, and an exchange's secrets are learnt only
    /// then; nothing is logged; a body is parsed only when a check or capture reads it.
    Measure,
}

impl Detail {
    /// Whether exchanges are reported, logged and kept whole.
    pub fn reports(self) -> bool {
        self == Detail::Full
    }
}

/// Everything shared by the scenarios of one run.
/// Whose clock time-based values (TOTP codes) follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ClockSource {
    /// The target's, read through its clock hook; `offset_seconds` ahead of local time.
    Target { offset_seconds: i64 },
    /// Local time: the target has no clock hook to read.
    Local,
}

impl std::fmt::Display for ClockSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockSource::Target { offset_seconds } => write!(
                f,
                "the target's clock (read through control.clock; {offset_seconds:+} s from local time)"
            ),
            ClockSource::Local => write!(
                f,
                "local time (the target has no control.clock hook; its clock is assumed to be right)"
            ),
        }
    }
}

pub struct RunContext {
    pub target: Target,
    pub http: reqwest::Client,
    pub control: ControlClient,
    pub templates: Templates,
    pub clock_offset: Arc<AtomicI64>,
    pub redactor: Redactor,
    levels: HashMap<String, Severity>,
    detail: Detail,
}

impl RunContext {
    pub fn new(
        target: Target,
        suite: &Suite,
        redactor: Redactor,
        detail: Detail,
    ) -> Result<RunContext, ClientError> {
        let http = client(&target)?;
        let control = ControlClient {
            http: http.clone(),
            timeout: target.timeout,
        };
        let clock_offset = Arc::new(AtomicI64::new(0));
        let templates = Templates::new(Builtins {
            clock_offset: clock_offset.clone(),
            control: control.clone(),
            messages_hook: target.profile.control.messages.clone(),
        });
        if let Some(secret) = &target.profile.client_secret {
            redactor.add(secret);
        }
        let levels = suite
            .catalogue
            .requirements
            .iter()
            .map(|r| (r.id.clone(), r.level))
            .collect();
        Ok(RunContext {
            target,
            http,
            control,
            templates,
            clock_offset,
            redactor,
            levels,
            detail,
        })
    }

    /// One request before any scenario: an unreachable target (connection refused, a name
    /// that does not resolve, a TLS failure, no answer within the timeout) is one message,
    /// not one per scenario. Any HTTP answer, whatever its status, means reachable.
    pub async fn preflight(&self) -> Result<(), String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.target.base_url()
        );
        match self.http.get(&url).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "the target {} cannot be reached: {}",
                self.target.base_url(),
                crate::transport::http::describe_reqwest(&e)
            )),
        }
    }

    /// Follows the target's clock: the offset of TOTP codes (and anything else
    /// time-based) becomes the target's time minus the local time, read through the clock
    /// hook. Without a clock hook, or when its answer has no `now`, local time is used.
    pub async fn sync_clock(&self) -> Result<ClockSource, super::control::ControlError> {
        let hook = self.target.profile.control.clock.as_ref();
        let Some(now) = self.control.target_now(hook).await? else {
            return Ok(ClockSource::Local);
        };
        let local = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let offset = now - local;
        self.clock_offset
            .store(offset, std::sync::atomic::Ordering::SeqCst);
        Ok(ClockSource::Target {
            offset_seconds: offset,
        })
    }

    pub fn detail(&self) -> Detail {
        self.detail
    }

    fn missing_capabilities(&self, scenario: &SuiteScenario) -> Vec<Capability> {
        scenario
            .scenario
            .requires
            .iter()
            .copied()
            .filter(|c| !self.target.has(*c))
            .collect()
    }

    /// Runs one scenario: provision its user, setup, steps (until one blocks), teardown.
    pub async fn run_scenario(&self, suite_scenario: &SuiteScenario) -> ScenarioResult {
        let started = Instant::now();
        let scenario = &suite_scenario.scenario;
        let mut result = ScenarioResult {
            name: suite_scenario.name.clone(),
            file: suite_scenario.file.display().to_string(),
            tags: scenario.tags.clone(),
            status: ScenarioStatus::Passed,
            skip_reason: None,
            duration_ms: 0.0,
            warnings: 0,
            steps: Vec::new(),
            error: None,
        };
        let missing = self.missing_capabilities(suite_scenario);
        if !missing.is_empty() {
            result.status = ScenarioStatus::Skipped;
            result.skip_reason = Some(format!(
                "the target does not claim: {}",
                missing
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return result;
        }
        let mut session = match self.session(&scenario.vars, scenario.user).await {
            Ok(session) => session,
            Err(error) => {
                result.error = Some(error);
                result.duration_ms = ms(started);
                return result;
            }
        };
        let mut blocked = false;
        for (phase, steps) in scenario.phases() {
            for (position, step) in steps.iter().enumerate() {
                if blocked && phase != Phase::Teardown {
                    break;
                }
                let step_result = session.run_step(phase, position, step).await;
                blocked |= step_result.is_blocking();
                result.steps.push(step_result);
            }
        }
        result.duration_ms = ms(started);
        result
    }

    /// A fresh session: target values, scenario `vars`, and (if `with_user`) a newly
    /// provisioned user. Secrets it meets stay in its own redactor.
    pub async fn session(
        &self,
        scenario_vars: &indexmap::IndexMap<String, Value>,
        with_user: bool,
    ) -> Result<Session<'_>, StepError> {
        let profile = &self.target.profile;
        let vars = json!({
            "target": {
                "base_url": self.target.base_url(),
                "client_id": profile.client_id,
                "client_secret": profile.client_secret,
                "realm": profile.realm,
                "audience": self.target.audience(),
            },
            "vars": scenario_vars,
        });
        let mut session = self.resume(vars, self.redactor.child());
        if with_user {
            let user = self
                .control
                .provision_user(profile.control.users.as_ref())
                .await
                .map_err(|e| StepError::control(&e).context("provisioning the scenario's user"))?;
            session.redactor.add(&user.password);
            session.vars["user"] = json!({"username": user.username, "password": user.password});
        }
        // `vars` are templated like everything else, once per scenario: a value may use the
        // target, the user and the built-ins (`{{ unique_phone() }}`), and stays the same in
        // every step.
        let rendered = self
            .templates
            .render_json(&session.vars["vars"], &session.vars)
            .map_err(|e| StepError::scenario(format!("vars: {e}")))?;
        session.vars["vars"] = rendered;
        Ok(session)
    }

    /// A session continuing from saved variables (a load-test pool user after its setup).
    pub fn resume(&self, vars: Value, redactor: Redactor) -> Session<'_> {
        Session::new(self, vars, redactor)
    }

    /// A check's severity: its requirement's level, lowered by the check's own.
    pub(super) fn severity(&self, check: &Check) -> Severity {
        let level = self
            .levels
            .get(&check.req.value)
            .copied()
            .unwrap_or(Severity::Must);
        check
            .severity
            .as_ref()
            .map(|s| s.value.min(level))
            .unwrap_or(level)
    }
}

pub(super) fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vars_are_templated_once_per_scenario() {
        let target = crate::target::reference("http://127.0.0.1:9");
        let suite = crate::suite::load(&[]).unwrap();
        let ctx = RunContext::new(target, &suite, Redactor::default(), Detail::Full).unwrap();
        let vars: indexmap::IndexMap<String, Value> = [
            ("phone".to_owned(), json!("{{ unique_phone() }}")),
            ("client".to_owned(), json!("{{ target.client_id }}")),
            ("plain".to_owned(), json!(3)),
        ]
        .into_iter()
        .collect();
        let session = ctx.session(&vars, false).await.unwrap();
        let rendered = &session.vars["vars"];
        let phone = rendered["phone"].as_str().unwrap();
        assert!(crate::server::store::is_e164(phone), "{phone}");
        assert_eq!(
            rendered["client"],
            json!(crate::server::config::DEFAULT_CLIENT_ID)
        );
        assert_eq!(rendered["plain"], json!(3));
        let bad: indexmap::IndexMap<String, Value> =
            [("x".to_owned(), json!("{{ user.pasword }}"))]
                .into_iter()
                .collect();
        let Err(error) = ctx.session(&bad, false).await else {
            panic!("an undefined name is an error");
        };
        assert!(error.message.starts_with("vars: "), "{}", error.message);
    }
}

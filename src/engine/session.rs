//! One execution of a scenario's steps: its variables (user, captures) and the secrets it
//! has met. A step is rendered ([`super::request`]), sent through a [`Transport`], and its
//! response ([`Observed`]) checked and captured from.

use super::check::{self, Rendered as RenderedCheck};
use super::context::{RunContext, ms};
use super::log::ExchangeLog;
use super::redact::{Redactor, is_sensitive};
use super::request::{self, ShownBody};
use super::response::Observed;
use super::result::{
    CheckOrigin, CheckResult, CheckStatus, Exchange, Phase, StepError, StepResult,
};
use super::template::TemplateError;
use crate::scenario::model::{Action, BodyExpect, Capture, Check, Request, Step, Subject};
use crate::transport::Transport;
use crate::transport::http::ReqwestTransport;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Variables a step assigns (captures, a new user), put back once the step is done.
type Assigned = Vec<(String, Value)>;

/// One execution of a scenario's steps: its variables (user, captures) and the secrets it
/// has met, so redaction stays per flow and memory stays flat on long load runs.
pub struct Session<'a> {
    ctx: &'a RunContext,
    pub redactor: Redactor,
    pub vars: Value,
    /// The body fields of the last request (for `sent` captures; load mode learns them as
    /// secrets only if one of its checks fails).
    sent: Option<Value>,
}

impl<'a> Session<'a> {
    pub(super) fn new(ctx: &'a RunContext, vars: Value, redactor: Redactor) -> Session<'a> {
        Session {
            ctx,
            redactor,
            vars,
            sent: None,
        }
    }

    /// Runs one step (the `position`-th of its `phase`), sending its request (if any)
    /// with the run's HTTP client.
    pub async fn run_step(&mut self, phase: Phase, position: usize, step: &Step) -> StepResult {
        let ctx = self.ctx;
        let mut transport = ReqwestTransport::new(&ctx.http, ctx.target.timeout);
        self.run_step_via(phase, position, step, &mut transport)
            .await
    }

    /// Runs one step, sending its request through `transport`.
    pub async fn run_step_via<T: Transport>(
        &mut self,
        phase: Phase,
        position: usize,
        step: &Step,
        transport: &mut T,
    ) -> StepResult {
        // The variables are moved out for the step, so templates read them without a copy
        // (a copy only when the step has a matrix to add); captures go back in at the end.
        let vars = std::mem::take(&mut self.vars);
        let with_matrix;
        let ctx = if step.matrix.is_empty() {
            &vars
        } else {
            let mut copy = vars.clone();
            copy["matrix"] = Value::Object(
                step.matrix
                    .iter()
                    .filter_map(|(k, v)| v.first().map(|v| (k.clone(), v.clone())))
                    .collect(),
            );
            with_matrix = copy;
            &with_matrix
        };
        let mut result = StepResult {
            phase,
            position,
            name: self
                .ctx
                .templates
                .render(&step.name.value, ctx)
                .unwrap_or_else(|_| step.name.value.clone()),
            duration_ms: 0.0,
            exchange: None,
            checks: Vec::new(),
            error: None,
            observed: None,
        };
        let mut assigned = Vec::new();
        self.step_in(step, ctx, transport, &mut result, &mut assigned)
            .await;
        self.vars = vars;
        for (name, value) in assigned {
            self.vars[name.as_str()] = value;
        }
        result
    }

    async fn step_in<T: Transport>(
        &mut self,
        step: &Step,
        vars: &Value,
        transport: &mut T,
        result: &mut StepResult,
        assigned: &mut Assigned,
    ) {
        let started = Instant::now();
        let observed = match self.act(step, vars, result, transport, assigned).await {
            Ok(observed) => observed,
            Err(error) => {
                result.error = Some(error);
                result.duration_ms = ms(started);
                return;
            }
        };
        let reports = self.ctx.detail().reports();
        if reports {
            if let Some(json) = &observed.json {
                self.redactor.add_from_json(json);
            }
            if let Some(exchange) = &mut result.exchange {
                exchange.response_body = Some(observed.reported_body(&self.redactor));
            }
        }
        self.check(step, vars, &observed, result);
        self.capture(step, &observed, result, assigned);
        result.duration_ms = ms(started);
        if reports {
            result.observed = Some(observed);
        }
    }

    /// Executes the step's action.
    async fn act<T: Transport>(
        &mut self,
        step: &Step,
        vars: &Value,
        result: &mut StepResult,
        transport: &mut T,
        assigned: &mut Assigned,
    ) -> Result<Observed, StepError> {
        match step.action() {
            Some(Action::AdvanceClock(seconds)) => self.advance_clock(seconds).await,
            Some(Action::NewUser(name)) => self.new_user(name, assigned).await,
            Some(Action::Request(request)) => {
                self.request(step, request, vars, result, transport).await
            }
            None => Err(StepError::scenario("the step has no action")),
        }
    }

    async fn advance_clock(&mut self, seconds: u64) -> Result<Observed, StepError> {
        let ctx = self.ctx;
        ctx.control
            .advance_clock(ctx.target.profile.control.clock.as_ref(), seconds)
            .await
            .map_err(|e| StepError::control(&e))?;
        // Follow the target's clock where it can be read; else assume it moved as asked.
        if let Ok(crate::engine::ClockSource::Local) | Err(_) = ctx.sync_clock().await {
            ctx.clock_offset
                .fetch_add(i64::try_from(seconds).unwrap_or(i64::MAX), Ordering::SeqCst);
        }
        Ok(Observed {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
            json: None,
        })
    }

    async fn new_user(
        &mut self,
        name: &str,
        assigned: &mut Assigned,
    ) -> Result<Observed, StepError> {
        let ctx = self.ctx;
        let user = ctx
            .control
            .provision_user(ctx.target.profile.control.users.as_ref())
            .await
            .map_err(|e| StepError::control(&e))?;
        self.redactor.add(&user.password);
        let value = json!({"username": user.username, "password": user.password});
        assigned.push((name.to_owned(), value.clone()));
        Ok(Observed {
            status: 201,
            headers: Vec::new(),
            body: value.to_string(),
            json: Some(value),
        })
    }

    /// Renders, sends and logs the step's request; the exchange goes into `result`.
    async fn request<T: Transport>(
        &mut self,
        step: &Step,
        request: &Request,
        vars: &Value,
        result: &mut StepResult,
        transport: &mut T,
    ) -> Result<Observed, StepError> {
        let reports = self.ctx.detail().reports();
        // Run mode reports and snapshots every body; load mode parses JSON only when a
        // check or capture reads it.
        let needs_json = reports || needs_json(step);
        let rendered = request::render(
            &self.ctx.templates,
            self.ctx.target.base_url(),
            request,
            vars,
            reports || needs_headers(step),
        )
        .map_err(|e| StepError::scenario(e.to_string()))?;
        let outgoing = &rendered.outgoing;
        // (The body first: the secrets it sends are kept out of the URL too.)
        let request_body = reports.then(|| self.shown_body(&rendered)).flatten();
        result.exchange = Some(Exchange {
            method: outgoing.method.as_str().to_owned(),
            url: if reports {
                self.redactor.text(&outgoing.url)
            } else {
                String::new()
            },
            request_body,
            status: None,
            content_type: None,
            response_body: None,
        });
        // `-v` logs each exchange's request line and status, `-vv` its headers and bodies,
        // all redacted. Load mode logs nothing: it learns secrets only on failures.
        let log = reports
            .then(|| ExchangeLog::start(&result.name, outgoing, &self.redactor))
            .flatten();
        if let Some(log) = &log {
            log.request(outgoing, result.exchange.as_ref(), &self.redactor);
        }
        let received = transport
            .send(outgoing)
            .await
            .map(|received| Observed::received(received, needs_json))
            .map_err(|e| {
                let shown = format!(
                    "{} {}",
                    outgoing.method.as_str(),
                    self.redactor.text(&outgoing.url)
                );
                StepError::transport(&shown, e)
            });
        if let Some(log) = &log {
            log.response(&received, &self.redactor);
        }
        // For `sent` captures, and in load mode learnt as secrets only if a check fails.
        self.sent = rendered.fields;
        let observed = received?;
        if let Some(exchange) = &mut result.exchange {
            exchange.status = Some(observed.status);
            exchange.content_type = observed.header("content-type").map(str::to_owned);
        }
        Ok(observed)
    }

    /// The request body as the report shows it. Secrets sent (an OTP the harness computed,
    /// a delivered binding code) are learnt first, so messages keep them out too.
    fn shown_body(&self, rendered: &request::Rendered) -> Option<String> {
        Some(match rendered.shown_body()? {
            ShownBody::Fields(fields) => {
                self.redactor.add_from_json(fields);
                self.redactor.json(fields).to_string()
            }
            ShownBody::Raw(text) => self.redactor.text(text),
        })
    }

    /// Evaluates the step's checks into `result` (a check that cannot be rendered stops
    /// them with an error).
    fn check(&mut self, step: &Step, vars: &Value, observed: &Observed, result: &mut StepResult) {
        // Load mode describes a check only when it fails: a passing check costs its
        // predicate and nothing else.
        let describe_all = self.ctx.detail().reports();
        for check in &step.checks {
            let severity = self.ctx.severity(check);
            let rendered = match self.render_check(check, vars) {
                Ok(r) => r,
                Err(e) => {
                    result.error = Some(StepError::scenario(self.redactor.text(&e.to_string())));
                    break;
                }
            };
            if !describe_all && check::passes(&rendered, observed) {
                result.checks.push(CheckResult {
                    requirement: check.req.value.clone(),
                    origin: CheckOrigin::Requirement,
                    severity,
                    status: CheckStatus::Passed,
                    check: String::new(),
                    actual: String::new(),
                    message: String::new(),
                    expected_failure_reason: None,
                });
                continue;
            }
            result.checks.push(check::evaluate(
                &rendered,
                severity,
                observed,
                &self.redactor,
            ));
        }
        let failed = result
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Failed);
        if !describe_all && failed {
            // Load mode learns this exchange's secrets only when a failure will show it:
            // the fields it sent (a computed OTP) and the response's.
            if let Some(sent) = &self.sent {
                self.redactor.add_from_json(sent);
            }
            if let Some(json) = &observed.json {
                self.redactor.add_from_json(json);
            }
            for c in &mut result.checks {
                c.actual = self.redactor.text(&c.actual);
                c.message = self.redactor.text(&c.message);
            }
        }
    }

    fn render_check<'c>(
        &self,
        check: &'c Check,
        vars: &Value,
    ) -> Result<RenderedCheck<'c>, TemplateError> {
        let templates = &self.ctx.templates;
        let render = |v: &Option<Value>| -> Result<Option<Value>, TemplateError> {
            v.as_ref()
                .map(|v| templates.render_json(v, vars))
                .transpose()
        };
        Ok(RenderedCheck {
            check,
            path: check
                .path
                .as_ref()
                .map(|p| templates.render(p, vars))
                .transpose()?,
            equals: render(&check.equals)?,
            not_equals: render(&check.not_equals)?,
            one_of: check
                .one_of
                .as_ref()
                .map(|l| {
                    l.iter()
                        .map(|v| templates.render_json(v, vars))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        })
    }

    /// Extracts the step's captures; the first that finds nothing is the step's error
    /// (unless it has one already).
    fn capture(
        &mut self,
        step: &Step,
        observed: &Observed,
        result: &mut StepResult,
        assigned: &mut Assigned,
    ) {
        for (capture_name, capture) in &step.capture {
            match check::capture(capture, observed, self.sent.as_ref()) {
                Ok(value) => {
                    if is_sensitive(capture_name) {
                        self.redactor.add_from_json(&json!({"secret": value}));
                    }
                    assigned.push((capture_name.clone(), value));
                }
                Err(e) => {
                    if result.error.is_none() {
                        result.error =
                            Some(StepError::scenario(format!("capture {capture_name}: {e}")));
                    }
                }
            }
        }
    }
}

/// Whether a step's checks or captures read the response's headers.
pub fn needs_headers(step: &Step) -> bool {
    step.checks
        .iter()
        .any(|c| matches!(c.subject(), Subject::Header(_)))
        || step
            .capture
            .values()
            .any(|c| matches!(c, Capture::Header { .. }))
}

/// Whether a step's checks or captures read the response body as JSON.
pub fn needs_json(step: &Step) -> bool {
    step.checks.iter().any(|c| {
        matches!(
            c.subject(),
            Subject::Path(_) | Subject::Body(BodyExpect::Json)
        )
    }) || step.capture.values().any(|c| matches!(c, Capture::Path(_)))
}

//! The engine: executes one scenario against a target, step by step (template -> request
//! -> response -> checks and captures), and returns its result. `run` (conformance) drives
//! it over a whole suite; it knows nothing of reports.

pub mod check;
pub mod control;
pub mod redact;
pub mod result;
pub mod template;

use crate::scenario::load::{Suite, SuiteScenario};
use crate::scenario::model::{Capability, Severity, Step};
use crate::target::Target;
use check::{Observed, Rendered};
use control::{ControlClient, describe_reqwest};
use redact::{Redactor, is_sensitive};
use result::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;
use template::{Builtins, Templates};

/// Largest response body read; a bigger one fails the step (memory stays bounded).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// Longest response body kept in a report.
const MAX_REPORTED_BODY: usize = 4096;

/// Everything shared by the scenarios of one run.
pub struct RunContext {
    pub target: Target,
    pub http: reqwest::Client,
    pub control: ControlClient,
    pub templates: Templates,
    pub clock_offset: Arc<AtomicI64>,
    pub redactor: Redactor,
    levels: HashMap<String, Severity>,
    /// Load mode: keep only what measuring needs (no redacted copies of bodies, no raw
    /// responses), so the generator spends its CPU on requests.
    pub lean: bool,
}

/// Builds the HTTP client a target needs (timeouts, trusted CA, no redirects followed: a
/// conformance check must see the raw response).
pub fn http_client(target: &Target) -> Result<reqwest::Client, String> {
    crate::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(target.timeout)
        .connect_timeout(target.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mfa-conform/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &target.profile.tls.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("tls.ca_cert: cannot read {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "tls.ca_cert: {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if target.profile.tls.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

impl RunContext {
    pub fn new(target: Target, suite: &Suite, redactor: Redactor) -> Result<RunContext, String> {
        let http = http_client(&target)?;
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
            lean: false,
        })
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
        for (phase, steps) in [
            (Phase::Setup, &scenario.setup),
            (Phase::Steps, &scenario.steps),
            (Phase::Teardown, &scenario.teardown),
        ] {
            for step in steps {
                if blocked && phase != Phase::Teardown {
                    break;
                }
                let step_result = session.run_step(phase, step).await;
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
        let mut session = Session {
            ctx: self,
            redactor: self.redactor.child(),
            sent: None,
            vars: json!({
                "target": {
                    "base_url": self.target.base_url(),
                    "client_id": profile.client_id,
                    "client_secret": profile.client_secret,
                    "realm": profile.realm,
                    "audience": self.target.audience(),
                },
                "vars": scenario_vars,
            }),
        };
        if with_user {
            let user = self
                .control
                .provision_user(profile.control.users.as_ref())
                .await
                .map_err(|e| StepError {
                    kind: ErrorKind::Control,
                    message: format!("provisioning the scenario's user: {e}"),
                })?;
            session.redactor.add(&user.password);
            session.vars["user"] = json!({"username": user.username, "password": user.password});
        }
        Ok(session)
    }

    /// A session continuing from saved variables (a load-test pool user after its setup).
    pub fn resume(&self, vars: Value, redactor: Redactor) -> Session<'_> {
        Session {
            ctx: self,
            redactor,
            vars,
            sent: None,
        }
    }

    fn severity(&self, check: &crate::scenario::model::Check) -> Severity {
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
    /// Runs one step, sending its request (if any) with the run's HTTP client.
    pub async fn run_step(&mut self, phase: Phase, step: &Step) -> StepResult {
        self.run_step_via(phase, step, &mut ReqwestTransport).await
    }

    /// Runs one step, sending its request through `transport`.
    pub async fn run_step_via<T: Transport>(
        &mut self,
        phase: Phase,
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
        let mut assigned = Vec::new();
        let result = self
            .step_in(phase, step, ctx, transport, &mut assigned)
            .await;
        self.vars = vars;
        for (name, value) in assigned {
            self.vars[name.as_str()] = value;
        }
        result
    }

    async fn step_in<T: Transport>(
        &mut self,
        phase: Phase,
        step: &Step,
        ctx: &Value,
        transport: &mut T,
        assigned: &mut Vec<(String, Value)>,
    ) -> StepResult {
        let started = Instant::now();
        let name = self
            .ctx
            .templates
            .render(&step.name.value, ctx)
            .unwrap_or_else(|_| step.name.value.clone());
        let mut result = StepResult {
            phase,
            name,
            duration_ms: 0.0,
            exchange: None,
            checks: Vec::new(),
            error: None,
            observed: None,
        };
        let observed = match self
            .perform(step, ctx, &mut result, transport, assigned)
            .await
        {
            Ok(observed) => observed,
            Err(error) => {
                result.error = Some(error);
                result.duration_ms = ms(started);
                return result;
            }
        };
        let lean = self.ctx.lean;
        if !lean {
            if let Some(json) = &observed.json {
                self.redactor.add_from_json(json);
            }
            if let Some(exchange) = &mut result.exchange {
                exchange.response_body = Some(self.reported_body(&observed));
            }
        }
        for check in &step.checks {
            let severity = self.ctx.severity(check);
            let rendered = match self.render_check(check, ctx) {
                Ok(r) => r,
                Err(e) => {
                    result.error = Some(StepError {
                        kind: ErrorKind::Scenario,
                        message: self.redactor.text(&e),
                    });
                    break;
                }
            };
            // Lean mode describes a check only when it fails: a passing check costs its
            // predicate and nothing else.
            if lean && check::passes(&rendered, &observed) {
                result.checks.push(CheckResult {
                    requirement: check.req.value.clone(),
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
                &observed,
                &self.redactor,
            ));
        }
        if lean
            && result
                .checks
                .iter()
                .any(|c| c.status == CheckStatus::Failed)
        {
            // Lean mode learns this exchange's secrets only when a failure will show it:
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
        for (capture_name, capture) in &step.capture {
            match check::capture(capture, &observed, self.sent.as_ref()) {
                Ok(value) => {
                    if is_sensitive(capture_name) {
                        self.redactor.add_from_json(&json!({"secret": value}));
                    }
                    assigned.push((capture_name.clone(), value));
                }
                Err(e) => {
                    if result.error.is_none() {
                        result.error = Some(StepError {
                            kind: ErrorKind::Scenario,
                            message: format!("capture {capture_name}: {e}"),
                        });
                    }
                }
            }
        }
        result.duration_ms = ms(started);
        if !lean {
            result.observed = Some(observed);
        }
        result
    }

    fn render_check<'c>(
        &self,
        check: &'c crate::scenario::model::Check,
        ctx: &Value,
    ) -> Result<Rendered<'c>, String> {
        let render = |v: &Option<Value>| -> Result<Option<Value>, String> {
            v.as_ref()
                .map(|v| self.ctx.templates.render_json(v, ctx))
                .transpose()
        };
        Ok(Rendered {
            check,
            path: check
                .path
                .as_ref()
                .map(|p| self.ctx.templates.render(p, ctx))
                .transpose()?,
            equals: render(&check.equals)?,
            not_equals: render(&check.not_equals)?,
            one_of: check
                .one_of
                .as_ref()
                .map(|l| {
                    l.iter()
                        .map(|v| self.ctx.templates.render_json(v, ctx))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        })
    }

    /// Executes the step's action.
    async fn perform<T: Transport>(
        &mut self,
        step: &Step,
        ctx: &Value,
        result: &mut StepResult,
        transport: &mut T,
        assigned: &mut Vec<(String, Value)>,
    ) -> Result<Observed, StepError> {
        let scenario_error = |message: String| StepError {
            kind: ErrorKind::Scenario,
            message,
        };
        if let Some(seconds) = step.advance_clock {
            self.ctx
                .control
                .advance_clock(self.ctx.target.profile.control.clock.as_ref(), seconds)
                .await
                .map_err(|e| StepError {
                    kind: ErrorKind::Control,
                    message: e.0,
                })?;
            self.ctx
                .clock_offset
                .fetch_add(i64::try_from(seconds).unwrap_or(i64::MAX), Ordering::SeqCst);
            return Ok(Observed {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
                json: None,
            });
        }
        if let Some(name) = &step.new_user {
            let user = self
                .ctx
                .control
                .provision_user(self.ctx.target.profile.control.users.as_ref())
                .await
                .map_err(|e| StepError {
                    kind: ErrorKind::Control,
                    message: e.0,
                })?;
            self.redactor.add(&user.password);
            let value = json!({"username": user.username, "password": user.password});
            assigned.push((name.clone(), value.clone()));
            return Ok(Observed {
                status: 201,
                headers: Vec::new(),
                body: value.to_string(),
                json: Some(value),
            });
        }
        let request = step
            .request
            .as_ref()
            .ok_or_else(|| scenario_error("the step has no action".into()))?;
        let path = self
            .ctx
            .templates
            .render(&request.path, ctx)
            .map_err(&scenario_error)?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path
        } else {
            let base = self.ctx.target.base_url();
            let mut url = String::with_capacity(base.len() + path.len());
            url.push_str(base);
            url.push_str(&path);
            url
        };
        let mut headers = Vec::with_capacity(request.headers.len() + 2);
        for (name, value) in &request.headers {
            let value = self
                .ctx
                .templates
                .render(value, ctx)
                .map_err(&scenario_error)?;
            headers.push((name.clone(), value));
        }
        if let Some(bearer) = &request.bearer {
            let token = self
                .ctx
                .templates
                .render(bearer, ctx)
                .map_err(&scenario_error)?;
            let mut value = String::with_capacity(7 + token.len());
            value.push_str("Bearer ");
            value.push_str(&token);
            headers.push(("authorization".to_owned(), value));
        }
        let omit: Vec<String> = request
            .omit
            .iter()
            .map(|k| self.ctx.templates.render(k, ctx))
            .collect::<Result<_, _>>()
            .map_err(&scenario_error)?;
        let has_content_type = request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        let lean = self.ctx.lean;
        let mut request_body = None;
        let mut body = None;
        let mut sent = None;
        if let Some(json_body) = &request.json {
            let mut rendered = self
                .ctx
                .templates
                .render_json(json_body, ctx)
                .map_err(&scenario_error)?;
            if let Value::Object(map) = &mut rendered {
                omit.iter().for_each(|k| {
                    map.shift_remove(k);
                });
            }
            if !lean {
                // Secrets sent (an OTP the harness computed, a delivered binding code) are
                // kept from messages too, e.g. a check expecting the same value.
                self.redactor.add_from_json(&rendered);
                request_body = Some(self.redactor.json(&rendered).to_string());
            }
            if !has_content_type {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
            }
            body = Some(rendered.to_string());
            sent = Some(rendered);
        } else if let Some(form) = &request.form {
            let mut map = Map::with_capacity(form.len());
            for (key, value) in form {
                let value = self
                    .ctx
                    .templates
                    .render_json(value, ctx)
                    .map_err(&scenario_error)?;
                map.insert(key.clone(), value);
            }
            omit.iter().for_each(|k| {
                map.shift_remove(k);
            });
            let fields = Value::Object(map);
            if !lean {
                self.redactor.add_from_json(&fields);
                request_body = Some(self.redactor.json(&fields).to_string());
            }
            if !has_content_type {
                headers.push((
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ));
            }
            if let Value::Object(map) = &fields {
                body = Some(encode_form(map));
            }
            sent = Some(fields);
        } else if let Some(raw) = &request.body {
            let rendered = self
                .ctx
                .templates
                .render(raw, ctx)
                .map_err(&scenario_error)?;
            if !lean {
                request_body = Some(self.redactor.text(&rendered));
            }
            body = Some(rendered);
        }
        result.exchange = Some(Exchange {
            method: request.method.as_str().to_owned(),
            url: if lean {
                String::new()
            } else {
                self.redactor.text(&url)
            },
            request_body,
            status: None,
            content_type: None,
            response_body: None,
        });
        let outgoing = Outgoing {
            method: request.method.as_str(),
            url,
            headers,
            body,
            // Run mode reports and snapshots every body; load mode parses JSON only when
            // a check or capture reads it.
            needs_json: !lean || needs_json(step),
            needs_headers: !lean || needs_headers(step),
        };
        // For `sent` captures, and in load mode learnt as secrets only if a check fails
        // (see `step_in`).
        self.sent = sent;
        // `-v` logs each exchange's request line and status, `-vv` its headers and bodies,
        // all redacted. Load mode (lean) logs nothing: it learns secrets only on failures.
        let log = (!lean && tracing::enabled!(tracing::Level::INFO))
            .then(|| ExchangeLog::new(&result.name, outgoing.method, &outgoing.url, self));
        if let Some(log) = &log {
            log.request(&outgoing, result.exchange.as_ref(), &self.redactor);
        }
        let received = transport.send(self.ctx, &outgoing, &self.redactor).await;
        if let Some(log) = &log {
            log.response(&received, self);
        }
        let observed = received?;
        if let Some(exchange) = &mut result.exchange {
            exchange.status = Some(observed.status);
            exchange.content_type = observed.header("content-type").map(str::to_owned);
        }
        Ok(observed)
    }

    fn reported_body(&self, observed: &Observed) -> String {
        let text = match &observed.json {
            Some(json) => self.redactor.json(json).to_string(),
            None => self.redactor.text(&observed.body),
        };
        if text.len() > MAX_REPORTED_BODY {
            let mut end = MAX_REPORTED_BODY;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}… ({} bytes)", &text[..end], text.len())
        } else {
            text
        }
    }
}

/// A request step, rendered and ready to send.
pub struct Outgoing<'s> {
    pub method: &'s str,
    /// Absolute URL.
    pub url: String,
    /// Names as the scenario wrote them, values rendered.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Whether a check or capture reads the body as JSON (else `Observed::json` may be
    /// left `None`).
    pub needs_json: bool,
    /// Whether anything reads the response's headers (else `Observed::headers` may be
    /// left empty).
    pub needs_headers: bool,
}

/// Sends rendered requests: `run` uses the run's reqwest client, `load` its own
/// keep-alive HTTP/1.1 connections. Either answers with the response as checks see it, or
/// a transport error whose message says what happened (timeout, reset, TLS...).
pub trait Transport: Send {
    fn send(
        &mut self,
        ctx: &RunContext,
        request: &Outgoing<'_>,
        redactor: &Redactor,
    ) -> impl std::future::Future<Output = Result<Observed, StepError>> + Send;
}

/// The run's reqwest client: redirects are not followed, bodies are read up to
/// [`MAX_RESPONSE_BYTES`].
pub struct ReqwestTransport;

impl Transport for ReqwestTransport {
    async fn send(
        &mut self,
        ctx: &RunContext,
        request: &Outgoing<'_>,
        redactor: &Redactor,
    ) -> Result<Observed, StepError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .expect("methods of the model are valid");
        let mut builder = ctx.http.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let timeout = ctx.target.timeout;
        let transport = |e: &reqwest::Error| StepError {
            kind: ErrorKind::Transport,
            message: if e.is_timeout() {
                format!(
                    "{} {}: timeout after {} (the profile's `timeout`): {}",
                    request.method,
                    redactor.text(&request.url),
                    humantime_secs(timeout),
                    describe_reqwest(e)
                )
            } else {
                format!(
                    "{} {}: {}",
                    request.method,
                    redactor.text(&request.url),
                    describe_reqwest(e)
                )
            },
        };
        let mut response = builder.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(body_too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Observed::new(status, headers, body, request.needs_json))
    }
}

/// The error of a response body over [`MAX_RESPONSE_BYTES`].
pub fn body_too_large() -> StepError {
    StepError {
        kind: ErrorKind::Transport,
        message: format!(
            "the response body exceeds {} MB; stopped reading",
            MAX_RESPONSE_BYTES / (1024 * 1024)
        ),
    }
}

/// Whether a step's checks or captures read the response's headers.
pub fn needs_headers(step: &Step) -> bool {
    step.checks.iter().any(|c| c.header.is_some())
        || step
            .capture
            .values()
            .any(|c| matches!(c, crate::scenario::model::Capture::Header { .. }))
}

/// Whether a step's checks or captures read the response body as JSON.
pub fn needs_json(step: &Step) -> bool {
    step.checks.iter().any(|c| {
        c.status.is_none()
            && c.header.is_none()
            && !matches!(c.body, Some(crate::scenario::model::BodyExpect::Empty))
    }) || step
        .capture
        .values()
        .any(|c| matches!(c, crate::scenario::model::Capture::Path(_)))
}

/// The log lines of one request step (`tracing`, target `mfa_conform::engine`): at info
/// the request line and the status, at debug the headers and bodies too. Everything shown
/// goes through the session's redactor.
struct ExchangeLog {
    step: String,
    line: String,
    started: Instant,
}

impl ExchangeLog {
    fn new(step: &str, method: &str, url: &str, session: &Session<'_>) -> ExchangeLog {
        ExchangeLog {
            step: session.redactor.text(step),
            line: format!("{method} {}", session.redactor.text(url)),
            started: Instant::now(),
        }
    }

    fn request(&self, request: &Outgoing<'_>, exchange: Option<&Exchange>, r: &Redactor) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let mut text = format!("--> {}", self.line);
        for (name, value) in &request.headers {
            text.push_str(&format!("\n{name}: {}", r.header(name, value)));
        }
        // The exchange holds the body as the report shows it: sensitive fields masked.
        if let Some(body) = exchange.and_then(|e| e.request_body.as_deref()) {
            text.push_str(&format!("\n\n{body}"));
        }
        tracing::debug!(step = %self.step, "{text}");
    }

    fn response(&self, received: &Result<Observed, StepError>, session: &Session<'_>) {
        let elapsed = ms(self.started);
        let observed = match received {
            Ok(observed) => observed,
            Err(error) => {
                let message = session.redactor.text(&error.message);
                tracing::info!(step = %self.step, "{} -> failed after {elapsed:.0} ms: {message}", self.line);
                return;
            }
        };
        tracing::info!(step = %self.step, "{} -> {} ({elapsed:.0} ms)", self.line, observed.status);
        if tracing::enabled!(tracing::Level::DEBUG) {
            // The response's own secrets join the redactor before its body is shown.
            if let Some(json) = &observed.json {
                session.redactor.add_from_json(json);
            }
            let mut text = format!("<-- {} {}", observed.status, self.line);
            for (name, value) in &observed.headers {
                text.push_str(&format!(
                    "\n{name}: {}",
                    session.redactor.header(name, value)
                ));
            }
            if !observed.body.is_empty() {
                text.push_str(&format!("\n\n{}", session.reported_body(observed)));
            }
            tracing::debug!(step = %self.step, "{text}");
        }
    }
}

fn encode_form(map: &Map<String, Value>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::String(s) => {
                out.append_pair(key, s);
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => out.append_pair(key, s),
                        other => out.append_pair(key, &other.to_string()),
                    };
                }
            }
            other => {
                out.append_pair(key, &other.to_string());
            }
        }
    }
    out.finish()
}

/// `10s`, `1.5s`, `500ms`.
pub fn humantime_secs(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

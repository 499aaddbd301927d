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
}

impl<'a> Session<'a> {
    pub async fn run_step(&mut self, phase: Phase, step: &Step) -> StepResult {
        let started = Instant::now();
        let mut ctx = self.vars.clone();
        ctx["matrix"] = Value::Object(
            step.matrix
                .iter()
                .filter_map(|(k, v)| v.first().map(|v| (k.clone(), v.clone())))
                .collect(),
        );
        let name = self
            .ctx
            .templates
            .render(&step.name.value, &ctx)
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
        let observed = match self.perform(step, &ctx, &mut result).await {
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
            let rendered = match self.render_check(check, &ctx) {
                Ok(r) => r,
                Err(e) => {
                    result.error = Some(StepError {
                        kind: ErrorKind::Scenario,
                        message: self.redactor.text(&e),
                    });
                    break;
                }
            };
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
            // Lean mode learns this response's secrets only when a failure will show it.
            if let Some(json) = &observed.json {
                self.redactor.add_from_json(json);
            }
            for c in &mut result.checks {
                c.actual = self.redactor.text(&c.actual);
                c.message = self.redactor.text(&c.message);
            }
        }
        for (capture_name, capture) in &step.capture {
            match check::capture(capture, &observed) {
                Ok(value) => {
                    if is_sensitive(capture_name) {
                        self.redactor.add_from_json(&json!({"secret": value}));
                    }
                    self.vars[capture_name] = value;
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
    async fn perform(
        &mut self,
        step: &Step,
        ctx: &Value,
        result: &mut StepResult,
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
            self.vars[name] = value.clone();
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
            format!("{}{}", self.ctx.target.base_url(), path)
        };
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .expect("methods of the model are valid");
        let mut builder = self.ctx.http.request(method, &url);
        for (name, value) in &request.headers {
            let value = self
                .ctx
                .templates
                .render(value, ctx)
                .map_err(&scenario_error)?;
            builder = builder.header(name.as_str(), value);
        }
        if let Some(bearer) = &request.bearer {
            let token = self
                .ctx
                .templates
                .render(bearer, ctx)
                .map_err(&scenario_error)?;
            builder = builder.header("authorization", format!("Bearer {token}"));
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
        let mut request_body = None;
        if let Some(json_body) = &request.json {
            let mut body = self
                .ctx
                .templates
                .render_json(json_body, ctx)
                .map_err(&scenario_error)?;
            if let Value::Object(map) = &mut body {
                omit.iter().for_each(|k| {
                    map.shift_remove(k);
                });
            }
            if !self.ctx.lean {
                // Secrets sent (an OTP the harness computed, a delivered binding code) are
                // kept from messages too, e.g. a check expecting the same value.
                self.redactor.add_from_json(&body);
                request_body = Some(self.redactor.json(&body).to_string());
            }
            if !has_content_type {
                builder = builder.header("content-type", "application/json");
            }
            builder = builder.body(body.to_string());
        } else if let Some(form) = &request.form {
            let rendered = self
                .ctx
                .templates
                .render_json(&Value::Object(form.clone().into_iter().collect()), ctx)
                .map_err(&scenario_error)?;
            let Value::Object(mut map) = rendered else {
                unreachable!("an object renders to an object")
            };
            omit.iter().for_each(|k| {
                map.shift_remove(k);
            });
            if !self.ctx.lean {
                let fields = Value::Object(map.clone());
                self.redactor.add_from_json(&fields);
                request_body = Some(self.redactor.json(&fields).to_string());
            }
            if !has_content_type {
                builder = builder.header("content-type", "application/x-www-form-urlencoded");
            }
            builder = builder.body(encode_form(&map));
        } else if let Some(raw) = &request.body {
            let body = self
                .ctx
                .templates
                .render(raw, ctx)
                .map_err(&scenario_error)?;
            if !self.ctx.lean {
                request_body = Some(self.redactor.text(&body));
            }
            builder = builder.body(body);
        }
        result.exchange = Some(Exchange {
            method: request.method.as_str().to_owned(),
            url: if self.ctx.lean {
                String::new()
            } else {
                self.redactor.text(&url)
            },
            request_body,
            status: None,
            content_type: None,
            response_body: None,
        });
        let timeout = self.ctx.target.timeout;
        let transport = |e: &reqwest::Error| StepError {
            kind: ErrorKind::Transport,
            message: if e.is_timeout() {
                format!(
                    "{} {}: timeout after {} (the profile's `timeout`): {}",
                    request.method.as_str(),
                    self.redactor.text(&url),
                    humantime_secs(timeout),
                    describe_reqwest(e)
                )
            } else {
                format!(
                    "{} {}: {}",
                    request.method.as_str(),
                    self.redactor.text(&url),
                    describe_reqwest(e)
                )
            },
        };
        let http_request = builder.build().map_err(|e| transport(&e))?;
        // `-v` logs each exchange's request line and status, `-vv` its headers and bodies,
        // all redacted. Load mode (lean) logs nothing: it learns secrets only on failures.
        let log = (!self.ctx.lean && tracing::enabled!(tracing::Level::INFO))
            .then(|| ExchangeLog::new(&result.name, request.method.as_str(), &url, self));
        if let Some(log) = &log {
            log.request(&http_request, result.exchange.as_ref(), &self.redactor);
        }
        let received = async {
            let mut response = self
                .ctx
                .http
                .execute(http_request)
                .await
                .map_err(|e| transport(&e))?;
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
                    return Err(StepError {
                        kind: ErrorKind::Transport,
                        message: format!(
                            "the response body exceeds {} MB; stopped reading",
                            MAX_RESPONSE_BYTES / (1024 * 1024)
                        ),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            let json = serde_json::from_slice(&body).ok();
            Ok(Observed {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
                json,
                headers,
            })
        }
        .await;
        if let Some(log) = &log {
            log.response(&received, self);
        }
        let observed = received?;
        let status = observed.status;
        if let Some(exchange) = &mut result.exchange {
            exchange.status = Some(status);
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

    fn request(&self, request: &reqwest::Request, exchange: Option<&Exchange>, r: &Redactor) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let mut text = format!("--> {}", self.line);
        for (name, value) in request.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            text.push_str(&format!("\n{name}: {}", r.header(name.as_str(), &value)));
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
fn humantime_secs(d: std::time::Duration) -> String {
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

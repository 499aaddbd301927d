//! The log lines of one request step (`tracing`, target `mfa_conform::engine`): at info
//! the request line and the status, at debug the headers and bodies too. Everything shown
//! goes through the session's redactor.

use super::redact::Redactor;
use super::response::Observed;
use super::result::{Exchange, StepError};
use crate::transport::Outgoing;
use std::time::Instant;

pub(super) struct ExchangeLog {
    step: String,
    line: String,
    started: Instant,
}

impl ExchangeLog {
    /// A log for this exchange if `-v` asked for one.
    pub(super) fn start(step: &str, request: &Outgoing, redactor: &Redactor) -> Option<Self> {
        tracing::enabled!(tracing::Level::INFO).then(|| ExchangeLog {
            step: redactor.text(step),
            line: format!(
                "{} {}",
                request.method.as_str(),
                redactor.text(&request.url)
            ),
            started: Instant::now(),
        })
    }

    pub(super) fn request(&self, request: &Outgoing, exchange: Option<&Exchange>, r: &Redactor) {
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

    pub(super) fn response(&self, received: &Result<Observed, StepError>, redactor: &Redactor) {
        let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
        let observed = match received {
            Ok(observed) => observed,
            Err(error) => {
                let message = redactor.text(&error.message);
                tracing::info!(step = %self.step, "{} -> failed after {elapsed:.0} ms: {message}", self.line);
                return;
            }
        };
        tracing::info!(step = %self.step, "{} -> {} ({elapsed:.0} ms)", self.line, observed.status);
        if tracing::enabled!(tracing::Level::DEBUG) {
            // The response's own secrets join the redactor before its body is shown.
            if let Some(json) = &observed.json {
                redactor.add_from_json(json);
            }
            let mut text = format!("<-- {} {}", observed.status, self.line);
            for (name, value) in &observed.headers {
                text.push_str(&format!("\n{name}: {}", redactor.header(name, value)));
            }
            if !observed.body.is_empty() {
                text.push_str(&format!("\n\n{}", observed.reported_body(redactor)));
            }
            tracing::debug!(step = %self.step, "{text}");
        }
    }
}

//! The test-control hooks of a target: provision users, read delivered codes, move the
//! clock. Each hook is a URL speaking the reference server's contract, or a command that
//! prints the same JSON.

use crate::target::Hook;
use crate::transport::http::describe_reqwest;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct ProvisionedUser {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub to: String,
    #[serde(default)]
    pub channel: Option<String>,
    pub code: String,
}

/// The hook, or the error naming it and what it was needed for.
fn needed<'h>(
    hook: Option<&'h Hook>,
    name: &'static str,
    purpose: &'static str,
) -> Result<&'h Hook, ControlError> {
    hook.ok_or(ControlError::NoHook {
        hook: name,
        purpose,
    })
}

#[derive(Debug, Clone)]
pub struct ControlClient {
    pub http: reqwest::Client,
    pub timeout: Duration,
}

/// A failed control call; the message names the hook.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// The profile has no hook for what a scenario asked.
    #[error("the target profile has no control.{hook} hook to {purpose}")]
    NoHook {
        hook: &'static str,
        purpose: &'static str,
    },
    #[error("control.messages: bad URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The hook's URL could not be reached.
    #[error("control {method} {url}: {reason}")]
    Unreachable {
        method: reqwest::Method,
        url: String,
        reason: String,
    },
    #[error("control {method} {url} answered {status}: {excerpt}")]
    Status {
        method: reqwest::Method,
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("control {method} {url}: response is not JSON: {reason}")]
    NotJson {
        method: reqwest::Method,
        url: String,
        reason: String,
    },
    /// The hook's command failed (empty, not runnable, timed out, non-zero exit, no JSON).
    #[error("control.{hook}: {problem}")]
    Command { hook: String, problem: String },
    /// The hook answered JSON of another shape.
    #[error("control.{hook}: expected {expected}: {reason}")]
    Shape {
        hook: &'static str,
        expected: &'static str,
        reason: String,
    },
}

impl ControlClient {
    pub async fn provision_user(
        &self,
        hook: Option<&Hook>,
    ) -> Result<ProvisionedUser, ControlError> {
        let hook = needed(hook, "users", "provision users")?;
        let value = match hook {
            Hook::Url(url) => {
                self.call(reqwest::Method::POST, url, None, &[201, 200])
                    .await?
            }
            Hook::Command { command } => self.run_command("users", command, &[]).await?,
        };
        serde_json::from_value(value).map_err(|e| ControlError::Shape {
            hook: "users",
            expected: "{\"username\": ..., \"password\": ...}",
            reason: e.to_string(),
        })
    }

    pub async fn messages(
        &self,
        hook: Option<&Hook>,
        to: &str,
    ) -> Result<Vec<Message>, ControlError> {
        let hook = needed(hook, "messages", "read codes")?;
        let value = match hook {
            Hook::Url(url) => {
                let mut url = url::Url::parse(url).map_err(|e| ControlError::BadUrl {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
                url.query_pairs_mut().append_pair("to", to);
                self.call(reqwest::Method::GET, url.as_str(), None, &[200])
                    .await?
            }
            Hook::Command { command } => {
                self.run_command("messages", command, &[("{to}", to)])
                    .await?
            }
        };
        serde_json::from_value(value).map_err(|e| ControlError::Shape {
            hook: "messages",
            expected: "[{\"to\", \"channel\", \"code\"}, ...]",
            reason: e.to_string(),
        })
    }

    pub async fn advance_clock(
        &self,
        hook: Option<&Hook>,
        seconds: u64,
    ) -> Result<(), ControlError> {
        let hook = needed(hook, "clock", "move the clock")?;
        match hook {
            Hook::Url(url) => {
                let body = serde_json::json!({"advance_seconds": seconds});
                self.call(reqwest::Method::POST, url, Some(body), &[204, 200])
                    .await?;
            }
            Hook::Command { command } => {
                self.run_command("clock", command, &[("{seconds}", &seconds.to_string())])
                    .await?;
            }
        }
        Ok(())
    }

    /// The target's current time (epoch seconds), read through the clock hook: a GET on
    /// its URL, or its command run with `{seconds}` = 0; `None` when the answer carries no
    /// `now`. The harness follows this clock, so a target whose clock earlier runs moved
    /// ahead still gets the right TOTP codes.
    pub async fn target_now(&self, hook: Option<&Hook>) -> Result<Option<i64>, ControlError> {
        let Some(hook) = hook else {
            return Ok(None);
        };
        let value = match hook {
            Hook::Url(url) => self.call(reqwest::Method::GET, url, None, &[200]).await?,
            Hook::Command { command } => {
                self.run_command("clock", command, &[("{seconds}", "0")])
                    .await?
            }
        };
        Ok(value.get("now").and_then(Value::as_i64))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Value, ControlError> {
        let mut request = self.http.request(method.clone(), url).timeout(self.timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| ControlError::Unreachable {
            method: method.clone(),
            url: url.to_owned(),
            reason: describe_reqwest(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        if !ok.contains(&status) {
            return Err(ControlError::Status {
                method,
                url: url.to_owned(),
                status,
                excerpt: text.chars().take(200).collect(),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ControlError::NotJson {
            method: method.clone(),
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn run_command(
        &self,
        hook: &str,
        command: &[String],
        substitutions: &[(&str, &str)],
    ) -> Result<Value, ControlError> {
        let failed = |problem: String| ControlError::Command {
            hook: hook.to_owned(),
            problem,
        };
        let (program, args) = command
            .split_first()
            .ok_or_else(|| failed("the command is empty".into()))?;
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                substitutions
                    .iter()
                    .fold(a.clone(), |acc, (from, to)| acc.replace(from, to))
            })
            .collect();
        let output = tokio::time::timeout(
            self.timeout,
            tokio::process::Command::new(program)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| failed(format!("{program} timed out")))?
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
        if !output.status.success() {
            return Err(failed(format!(
                "{program} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&stdout).map_err(|e| failed(format!("{program} printed no JSON: {e}")))
    }
}

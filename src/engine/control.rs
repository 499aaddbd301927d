//! The test-control hooks of a target: provision users, read delivered codes, move the
//! clock. Each hook is a URL speaking the reference server's contract, or a command that
//! prints the same JSON.

use crate::target::Hook;
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

#[derive(Debug, Clone)]
pub struct ControlClient {
    pub http: reqwest::Client,
    pub timeout: Duration,
}

/// A failed control call, with a message naming the hook.
#[derive(Debug, Clone)]
pub struct ControlError(pub String);

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ControlClient {
    pub async fn provision_user(
        &self,
        hook: Option<&Hook>,
    ) -> Result<ProvisionedUser, ControlError> {
        let hook = hook.ok_or_else(|| {
            ControlError("the target profile has no control.users hook to provision users".into())
        })?;
        let value = match hook {
            Hook::Url(url) => {
                self.call(reqwest::Method::POST, url, None, &[201, 200])
                    .await?
            }
            Hook::Command { command } => self.run_command("users", command, &[]).await?,
        };
        serde_json::from_value(value).map_err(|e| {
            ControlError(format!(
                "control.users: expected {{\"username\": ..., \"password\": ...}}: {e}"
            ))
        })
    }

    pub async fn messages(
        &self,
        hook: Option<&Hook>,
        to: &str,
    ) -> Result<Vec<Message>, ControlError> {
        let hook = hook.ok_or_else(|| {
            ControlError("the target profile has no control.messages hook to read codes".into())
        })?;
        let value = match hook {
            Hook::Url(url) => {
                let mut url = url::Url::parse(url)
                    .map_err(|e| ControlError(format!("control.messages: bad URL {url:?}: {e}")))?;
                url.query_pairs_mut().append_pair("to", to);
                self.call(reqwest::Method::GET, url.as_str(), None, &[200])
                    .await?
            }
            Hook::Command { command } => {
                self.run_command("messages", command, &[("{to}", to)])
                    .await?
            }
        };
        serde_json::from_value(value).map_err(|e| {
            ControlError(format!(
                "control.messages: expected [{{\"to\", \"channel\", \"code\"}}, ...]: {e}"
            ))
        })
    }

    pub async fn advance_clock(
        &self,
        hook: Option<&Hook>,
        seconds: u64,
    ) -> Result<(), ControlError> {
        let hook = hook.ok_or_else(|| {
            ControlError("the target profile has no control.clock hook to move the clock".into())
        })?;
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
        let response = request.send().await.map_err(|e| {
            ControlError(format!("control {method} {url}: {}", describe_reqwest(&e)))
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| {
            ControlError(format!("control {method} {url}: {}", describe_reqwest(&e)))
        })?;
        if !ok.contains(&status) {
            return Err(ControlError(format!(
                "control {method} {url} answered {status}: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| ControlError(format!("control {method} {url}: response is not JSON: {e}")))
    }

    async fn run_command(
        &self,
        hook: &str,
        command: &[String],
        substitutions: &[(&str, &str)],
    ) -> Result<Value, ControlError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| ControlError(format!("control.{hook}: the command is empty")))?;
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
        .map_err(|_| ControlError(format!("control.{hook}: {program} timed out")))?
        .map_err(|e| ControlError(format!("control.{hook}: cannot run {program}: {e}")))?;
        if !output.status.success() {
            return Err(ControlError(format!(
                "control.{hook}: {program} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&stdout)
            .map_err(|e| ControlError(format!("control.{hook}: {program} printed no JSON: {e}")))
    }
}

/// A user-facing description of a transport error (the chain of causes, shortest form).
pub fn describe_reqwest(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if error.is_timeout() {
        parts.push("timed out".to_owned());
    }
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    let text = parts.join(": ");
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("tls handshake")
    {
        return format!(
            "{text} (the target's TLS certificate is not trusted: name its CA in the profile's tls.ca_cert, or set tls.insecure: true for a throwaway target)"
        );
    }
    text
}

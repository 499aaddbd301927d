//! The reqwest transport: the HTTP client a target needs (its timeout, its TLS settings,
//! no redirects followed: a conformance check must see the raw response).

use super::tls::{TlsConfigError, UNTRUSTED_HINT, client_config};
use super::{MAX_RESPONSE_BYTES, Outgoing, Received, Transport, TransportError};
use crate::target::Target;
use std::time::Duration;

/// Why the HTTP client of a target cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Builds the HTTP client a target needs (HTTP/2 or HTTP/1.1 by ALPN).
pub fn client(target: &Target) -> Result<reqwest::Client, ClientError> {
    let tls = client_config(&target.profile.tls, &[b"h2", b"http/1.1"])?;
    Ok(reqwest::Client::builder()
        .timeout(target.timeout)
        .connect_timeout(target.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mfa-conform/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(tls)
        .build()?)
}

/// Requests through a reqwest client: redirects are not followed, bodies are read up to
/// [`MAX_RESPONSE_BYTES`].
pub struct ReqwestTransport<'c> {
    client: &'c reqwest::Client,
    /// The client's timeout (for the message of a timeout).
    timeout: Duration,
}

impl<'c> ReqwestTransport<'c> {
    pub fn new(client: &'c reqwest::Client, timeout: Duration) -> ReqwestTransport<'c> {
        ReqwestTransport { client, timeout }
    }

    fn error(&self, error: &reqwest::Error) -> TransportError {
        classify(error, self.timeout)
    }
}

impl Transport for ReqwestTransport<'_> {
    async fn send(&mut self, request: &Outgoing) -> Result<Received, TransportError> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .expect("methods of the model are valid");
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| self.error(&e))?;
        let status = response.status().as_u16();
        let headers = response
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
        while let Some(chunk) = response.chunk().await.map_err(|e| self.error(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TransportError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Received {
            status,
            headers,
            body,
        })
    }
}

/// What a reqwest error is: reqwest exposes timeouts and connection failures; the rest is
/// told by the causes it wraps (rustls and I/O errors) and, failing those, by their text.
fn classify(error: &reqwest::Error, timeout: Duration) -> TransportError {
    let text = describe_reqwest(error);
    if error.is_timeout() {
        return TransportError::Timeout {
            after: timeout,
            cause: Some(text),
        };
    }
    let lower = text.to_ascii_lowercase();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.is::<rustls::Error>() {
            return TransportError::Tls(text);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return TransportError::Reset(text);
        }
        source = e.source();
    }
    if lower.contains("certificate") || lower.contains("tls") {
        TransportError::Tls(text)
    } else if lower.contains("reset")
        || lower.contains("closed")
        || lower.contains("broken pipe")
        || lower.contains("incomplete")
    {
        TransportError::Reset(text)
    } else if error.is_connect() || lower.contains("refused") || lower.contains("dns") {
        TransportError::Connect(text)
    } else {
        TransportError::Other(text)
    }
}

/// A user-facing description of a reqwest error (the chain of causes, shortest form).
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
        return format!("{text} ({UNTRUSTED_HINT})");
    }
    text
}

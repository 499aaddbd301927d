//! Why an exchange failed, as both transports (the run's reqwest client and load mode's own
//! connections) report it. The variant says what happened, for callers that branch on it
//! (load mode counts errors by kind); the text says it for people, as each transport
//! words it.

use super::MAX_RESPONSE_BYTES;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No complete answer within the profile's `timeout`.
    #[error("timeout after {} (the profile's `timeout`){}", humantime_secs(*after), cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    Timeout {
        after: Duration,
        cause: Option<String>,
    },
    /// The target could not be reached (refused, unreachable, no such host).
    #[error("{0}")]
    Connect(String),
    /// The TLS handshake failed (an untrusted certificate, a protocol mismatch).
    #[error("{0}")]
    Tls(String),
    /// The connection was reset or closed before the answer was complete.
    #[error("{0}")]
    Reset(String),
    /// The response body is over [`MAX_RESPONSE_BYTES`].
    #[error("the response body exceeds {} MB; stopped reading", MAX_RESPONSE_BYTES / (1024 * 1024))]
    BodyTooLarge,
    /// The answer is not valid HTTP.
    #[error("{0}")]
    InvalidResponse(String),
    /// The request cannot be sent as the scenario wrote it (a line break in a header).
    #[error("{0}")]
    InvalidRequest(String),
    /// Anything else the transport reported.
    #[error("{0}")]
    Other(String),
}

/// `10s`, `1.5s`, `500ms`.
pub fn humantime_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened() {
        let timeout = TransportError::Timeout {
            after: Duration::from_millis(1500),
            cause: None,
        };
        assert_eq!(
            timeout.to_string(),
            "timeout after 1.5s (the profile's `timeout`)"
        );
        let timeout = TransportError::Timeout {
            after: Duration::from_secs(10),
            cause: Some("timed out".into()),
        };
        assert_eq!(
            timeout.to_string(),
            "timeout after 10s (the profile's `timeout`): timed out"
        );
        assert_eq!(
            TransportError::BodyTooLarge.to_string(),
            "the response body exceeds 10 MB; stopped reading"
        );
        assert_eq!(humantime_secs(Duration::from_millis(500)), "500ms");
    }
}

//! Sending a rendered request and reading the answer. Two transports implement
//! [`Transport`]: [`http::ReqwestTransport`] (the run's reqwest client, for `run` and for
//! requests to other origins) and load mode's own keep-alive HTTP/1.1 connections
//! (`load::conn`). Both share the error type ([`TransportError`]), the TLS configuration
//! ([`tls::client_config`]) and the body limit.

pub mod error;
pub mod http;
pub mod tls;

pub use error::{TransportError, humantime_secs};

use crate::scenario::model::Method;

/// Largest response body read; a bigger one fails the step (memory stays bounded).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// A request, rendered and ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Names as the scenario wrote them, values rendered.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Whether anything reads the response's headers (else a transport may leave
    /// [`Received::headers`] empty).
    pub needs_headers: bool,
}

/// A response as it came off the wire.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends rendered requests: either the response, or why there is none.
pub trait Transport: Send {
    fn send(
        &mut self,
        request: &Outgoing,
    ) -> impl std::future::Future<Output = Result<Received, TransportError>> + Send;
}

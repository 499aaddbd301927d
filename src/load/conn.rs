//! Load mode's HTTP/1.1 client. A flow takes one keep-alive connection from an idle pool,
//! sends each of its requests on it from its own task (writes the request, reads the
//! response with httparse), and gives it back when the flow ends. There is no connection
//! task and no channel between the flow and its socket, so a request costs little more
//! than its two system calls: the generator must not be what limits the measurement.
//!
//! HTTP/1.1 only (as wrk): `Content-Length`, chunked and close-delimited bodies, `1xx`
//! interim responses skipped, `Connection: close` honoured. HTTPS through rustls with the
//! profile's `tls.ca_cert` / `tls.insecure`. Requests to another origin than the target's
//! go through the run's reqwest client.

use crate::scenario::model::Method;
use crate::target::Target;
use crate::transport::http::ReqwestTransport;
use crate::transport::tls::{TlsConfigError, UNTRUSTED_HINT, client_config};
use crate::transport::{MAX_RESPONSE_BYTES, Outgoing, Received, Transport, TransportError};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head (status line and headers) read.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Response headers parsed without a heap allocation; more are parsed with one.
const FEW_HEADERS: usize = 24;
/// Most response headers accepted.
const MAX_HEADERS: usize = 128;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8192;
const USER_AGENT: &str = concat!("mfa-conform/", env!("CARGO_PKG_VERSION"));

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a target's endpoint cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("base_url {base:?}: {reason}")]
    BaseUrl { base: String, reason: String },
    #[error("base_url {base:?} has no {part}")]
    Missing { base: String, part: &'static str },
    #[error("cannot resolve {host}: {error} (connect)")]
    Resolve { host: String, error: std::io::Error },
    #[error("{host} resolves to no address (connect)")]
    NoAddress { host: String },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// The target's origin: where to connect, what to send as `Host`, and the idle
/// connections.
pub struct Endpoint {
    /// `scheme://authority` exactly as the profile's `base_url` spells it: URLs that start
    /// with it (then `/` or `?`) use these connections.
    origin: String,
    /// The `Host` header.
    authority: String,
    addrs: Vec<SocketAddr>,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

impl Endpoint {
    /// Resolves the target's host once (as wrk does) and prepares TLS if the target is
    /// HTTPS. `Err` says what is wrong with the profile or the name.
    pub async fn new(target: &Target) -> Result<Endpoint, EndpointError> {
        let base = target.base_url();
        let bad = |reason: String| EndpointError::BaseUrl {
            base: base.to_owned(),
            reason,
        };
        let missing = |part| EndpointError::Missing {
            base: base.to_owned(),
            part,
        };
        let url = url::Url::parse(base).map_err(|e| bad(e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("unsupported scheme {other}"))),
        };
        let host = url.host_str().ok_or_else(|| missing("host"))?.to_owned();
        let port = url.port_or_known_default().ok_or_else(|| missing("port"))?;
        let after_scheme = &base[url.scheme().len() + 3..];
        let authority_end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let authority = after_scheme[..authority_end]
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        let origin = base[..url.scheme().len() + 3 + authority_end].to_owned();
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host.as_str(), port))
            .await
            .map_err(|error| EndpointError::Resolve {
                host: host.clone(),
                error,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(EndpointError::NoAddress { host });
        }
        let tls = if https {
            let name = ServerName::try_from(bare_host.clone()).map_err(|e| bad(e.to_string()))?;
            let config = client_config(&target.profile.tls, &[b"http/1.1"])?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Endpoint {
            origin,
            authority,
            addrs,
            tls,
            timeout: target.timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The request target (path and query) of `url` if it is on this origin.
    fn request_target<'u>(&self, url: &'u str) -> Option<&'u str> {
        let rest = url.strip_prefix(self.origin.as_str())?;
        match rest.as_bytes().first() {
            None => Some("/"),
            Some(b'/') => Some(rest),
            Some(b'?') => None,
            _ => None,
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Idle connections now.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    async fn connect(&self) -> Result<Conn, ConnError> {
        let mut last = None;
        let mut stream = None;
        for addr in &self.addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match stream {
            Some(s) => s,
            None => {
                return Err(ConnError::Connect(
                    last.map(|e| e.to_string()).unwrap_or_default(),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(stream),
            Some((connector, name)) => Box::new(
                connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| ConnError::Tls(e.to_string()))?,
            ),
        };
        Ok(Conn {
            io,
            buf: Vec::with_capacity(8192),
        })
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum ConnError {
    Connect(String),
    Tls(String),
    /// The peer closed the connection; `before_response`: before any byte of the answer.
    Closed {
        before_response: bool,
    },
    Io {
        error: std::io::Error,
        before_response: bool,
    },
    TooLarge,
    Invalid(String),
}

impl ConnError {
    /// An idle connection the target had already closed: the request never reached it.
    fn stale(&self) -> bool {
        match self {
            ConnError::Closed { before_response } => *before_response,
            ConnError::Io {
                error,
                before_response,
            } => {
                *before_response
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::UnexpectedEof
                    )
            }
            _ => false,
        }
    }
}

impl From<ConnError> for TransportError {
    fn from(error: ConnError) -> TransportError {
        match error {
            ConnError::Connect(e) => {
                TransportError::Connect(format!("cannot connect: {e} (connect)"))
            }
            ConnError::Tls(e) => {
                let lower = e.to_ascii_lowercase();
                TransportError::Tls(
                    if lower.contains("certificate") || lower.contains("unknownissuer") {
                        format!("TLS handshake failed: {e} ({UNTRUSTED_HINT})")
                    } else {
                        format!("TLS handshake failed: {e}")
                    },
                )
            }
            ConnError::Closed { .. } => TransportError::Reset(
                "the target closed the connection before the response was complete".to_owned(),
            ),
            ConnError::Io { error, .. } => match error.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                    TransportError::Reset(format!("connection reset by the target: {error}"))
                }
                std::io::ErrorKind::BrokenPipe => {
                    TransportError::Reset(format!("broken pipe: {error}"))
                }
                std::io::ErrorKind::UnexpectedEof => {
                    TransportError::Reset(format!("I/O error: {error}"))
                }
                _ => TransportError::Other(format!("I/O error: {error}")),
            },
            ConnError::TooLarge => TransportError::BodyTooLarge,
            ConnError::Invalid(e) => {
                TransportError::InvalidResponse(format!("invalid HTTP response: {e}"))
            }
        }
    }
}

/// A response off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

/// One connection and its read buffer.
struct Conn {
    io: Box<dyn Io>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    async fn fill(&mut self, answered: bool) -> Result<usize, ConnError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        self.io
            .read_buf(&mut self.buf)
            .await
            .map_err(|error| ConnError::Io {
                error,
                before_response: !answered,
            })
    }

    /// Writes `wire` and reads the answer. `no_body`: a HEAD request; `keep_headers`: the
    /// caller reads the response's headers (else only framing headers are looked at).
    async fn exchange(
        &mut self,
        wire: &[u8],
        no_body: bool,
        keep_headers: bool,
    ) -> Result<Response, ConnError> {
        if !self.buf.is_empty() {
            // Bytes nobody asked for: the connection is out of step.
            return Err(ConnError::Invalid(
                "the target sent data before the request".into(),
            ));
        }
        self.io
            .write_all(wire)
            .await
            .map_err(|error| ConnError::Io {
                error,
                before_response: true,
            })?;
        self.io.flush().await.map_err(|error| ConnError::Io {
            error,
            before_response: true,
        })?;
        let head = loop {
            let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
            let mut many;
            let mut parsed = httparse::Response::new(&mut few);
            let mut outcome = parsed.parse(&self.buf);
            if matches!(outcome, Err(httparse::Error::TooManyHeaders)) {
                many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
                parsed = httparse::Response::new(&mut many);
                outcome = parsed.parse(&self.buf);
            }
            match outcome {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.unwrap_or(0);
                    if (100..200).contains(&status) && status != 101 {
                        // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                        self.buf.drain(..len);
                        continue;
                    }
                    break Head::of(&parsed, len, keep_headers)?;
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD_BYTES {
                        return Err(ConnError::Invalid(format!(
                            "the response head exceeds {} KiB",
                            MAX_HEAD_BYTES / 1024
                        )));
                    }
                }
                Err(e) => return Err(ConnError::Invalid(e.to_string())),
            }
            let answered = !self.buf.is_empty();
            if self.fill(answered).await? == 0 {
                return Err(ConnError::Closed {
                    before_response: !answered,
                });
            }
        };
        let Head {
            status,
            headers,
            len: head_len,
            chunked,
            length,
            mut keep_alive,
        } = head;
        let body = if no_body || status == 204 || status == 304 {
            self.buf.drain(..head_len);
            Vec::new()
        } else if chunked {
            self.buf.drain(..head_len);
            self.chunked_body().await?
        } else if let Some(length) = length {
            if length > MAX_RESPONSE_BYTES as u64 {
                return Err(ConnError::TooLarge);
            }
            let end = head_len + length as usize;
            while self.buf.len() < end {
                if self.fill(true).await? == 0 {
                    return Err(ConnError::Closed {
                        before_response: false,
                    });
                }
            }
            // One copy of the body; the buffer is then empty again (no memmove).
            let body = self.buf[head_len..end].to_vec();
            self.buf.drain(..end);
            body
        } else {
            self.buf.drain(..head_len);
            // Delimited by the end of the connection.
            keep_alive = false;
            loop {
                if self.buf.len() > MAX_RESPONSE_BYTES {
                    return Err(ConnError::TooLarge);
                }
                if self.fill(true).await? == 0 {
                    break;
                }
            }
            std::mem::take(&mut self.buf)
        };
        if !self.buf.is_empty() {
            keep_alive = false;
        }
        Ok(Response {
            status,
            headers,
            body,
            keep_alive,
        })
    }

    /// A `Transfer-Encoding: chunked` body, up to [`MAX_RESPONSE_BYTES`].
    async fn chunked_body(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut body = Vec::new();
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() > 1024 {
                            return Err(ConnError::Invalid("a chunk size line is too long".into()));
                        }
                    }
                    Err(_) => return Err(ConnError::Invalid("bad chunk size".into())),
                }
                if self.fill(true).await? == 0 {
                    return Err(ConnError::Closed {
                        before_response: false,
                    });
                }
            };
            if size == 0 {
                self.buf.drain(..consumed);
                // Trailer fields, if any, then the empty line.
                loop {
                    if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        let empty = end == 0;
                        self.buf.drain(..end + 2);
                        if empty {
                            return Ok(body);
                        }
                        continue;
                    }
                    if self.buf.len() > MAX_HEAD_BYTES {
                        return Err(ConnError::Invalid("the chunked trailer is too long".into()));
                    }
                    if self.fill(true).await? == 0 {
                        return Err(ConnError::Closed {
                            before_response: false,
                        });
                    }
                }
            }
            if body.len() as u64 + size > MAX_RESPONSE_BYTES as u64 {
                return Err(ConnError::TooLarge);
            }
            let size = size as usize;
            while self.buf.len() < consumed + size + 2 {
                if self.fill(true).await? == 0 {
                    return Err(ConnError::Closed {
                        before_response: false,
                    });
                }
            }
            if &self.buf[consumed + size..consumed + size + 2] != b"\r\n" {
                return Err(ConnError::Invalid("a chunk does not end with CRLF".into()));
            }
            body.extend_from_slice(&self.buf[consumed..consumed + size]);
            self.buf.drain(..consumed + size + 2);
        }
    }
}

/// What the head of a response says.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    len: usize,
    chunked: bool,
    length: Option<u64>,
    keep_alive: bool,
}

impl Head {
    fn of(parsed: &httparse::Response<'_, '_>, len: usize, keep: bool) -> Result<Head, ConnError> {
        let (mut close, mut keep_alive_token, mut chunked, mut length) =
            (false, false, false, None);
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                close |= lists(h.value, "close");
                keep_alive_token |= lists(h.value, "keep-alive");
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked |= lists(h.value, "chunked");
            } else if h.name.eq_ignore_ascii_case("content-length") {
                let parsed_length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| ConnError::Invalid("bad Content-Length".into()))?;
                if length.is_some_and(|l| l != parsed_length) {
                    return Err(ConnError::Invalid(
                        "conflicting Content-Length headers".into(),
                    ));
                }
                length = Some(parsed_length);
            }
        }
        let headers = if keep {
            parsed
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), text(h.value)))
                .collect()
        } else {
            Vec::new()
        };
        let http10 = parsed.version == Some(0);
        Ok(Head {
            status: parsed.code.unwrap_or(0),
            headers,
            len,
            chunked,
            length,
            keep_alive: !close && (!http10 || keep_alive_token),
        })
    }
}

/// Whether a header value lists `token` among its comma-separated values.
fn lists(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A header value as text (lossy only when it is not UTF-8).
fn text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

/// Serialises a request. `Err` if a header would break the message (a line break in a
/// name or value).
fn write_request(
    wire: &mut Vec<u8>,
    method: Method,
    target: &str,
    authority: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Result<(), TransportError> {
    wire.clear();
    // One allocation for the whole message (a flow's transport starts with an empty one).
    let size = method.as_str().len()
        + target.len()
        + authority.len()
        + USER_AGENT.len()
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
        + body.map(str::len).unwrap_or(0)
        + 128;
    wire.reserve(size);
    for (name, value) in headers {
        if name.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f) || name.is_empty() {
            return Err(TransportError::InvalidRequest(format!(
                "header name {name:?} is not a valid HTTP token"
            )));
        }
        if memchr::memchr3(b'\r', b'\n', 0, value.as_bytes()).is_some() {
            return Err(TransportError::InvalidRequest(format!(
                "header {name}: the value contains a line break"
            )));
        }
    }
    let has = |wanted: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(wanted));
    wire.extend_from_slice(method.as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(target.as_bytes());
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    if !has("host") {
        wire.extend_from_slice(b"host: ");
        wire.extend_from_slice(authority.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    if !has("user-agent") {
        wire.extend_from_slice(b"user-agent: ");
        wire.extend_from_slice(USER_AGENT.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    if !has("accept") {
        wire.extend_from_slice(b"accept: */*\r\n");
    }
    for (name, value) in headers {
        wire.extend_from_slice(name.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    let needs_length =
        body.is_some() || matches!(method, Method::Post | Method::Put | Method::Patch);
    if needs_length && !has("content-length") {
        let length = body.map(str::len).unwrap_or(0);
        wire.extend_from_slice(b"content-length: ");
        wire.extend_from_slice(length.to_string().as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        wire.extend_from_slice(body.as_bytes());
    }
    Ok(())
}

/// The transport of one flow: the connection it holds between its steps, given back to
/// the endpoint's idle pool when the flow ends (only ever in a clean state).
pub struct LoadTransport<'e> {
    endpoint: &'e Endpoint,
    conn: Option<Conn>,
    wire: Vec<u8>,
    /// For requests to another origin.
    other_origins: ReqwestTransport<'e>,
}

impl<'e> LoadTransport<'e> {
    /// Requests to the endpoint's origin on its connections, others through `http`.
    pub fn new(endpoint: &'e Endpoint, http: &'e reqwest::Client) -> LoadTransport<'e> {
        LoadTransport {
            endpoint,
            conn: None,
            wire: Vec::new(),
            other_origins: ReqwestTransport::new(http, endpoint.timeout),
        }
    }

    async fn exchange(&mut self, no_body: bool, keep_headers: bool) -> Result<Response, ConnError> {
        loop {
            let (mut conn, reused) = match self.conn.take().or_else(|| self.endpoint.take_idle()) {
                Some(conn) => (conn, true),
                None => (self.endpoint.connect().await?, false),
            };
            match conn.exchange(&self.wire, no_body, keep_headers).await {
                Ok(response) => {
                    if response.keep_alive {
                        self.conn = Some(conn);
                    }
                    return Ok(response);
                }
                // A kept-alive connection the target had closed meanwhile: the request
                // never reached it, so it goes again on another connection.
                Err(e) if reused && e.stale() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for LoadTransport<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.endpoint.give_back(conn);
        }
    }
}

impl Transport for LoadTransport<'_> {
    async fn send(&mut self, request: &Outgoing) -> Result<Received, TransportError> {
        let Some(target) = self.endpoint.request_target(&request.url) else {
            return self.other_origins.send(request).await;
        };
        write_request(
            &mut self.wire,
            request.method,
            target,
            &self.endpoint.authority,
            &request.headers,
            request.body.as_deref(),
        )?;
        let timeout = self.endpoint.timeout;
        // (The model has no HEAD request: every answer may have a body.)
        let exchange = self.exchange(false, request.needs_headers);
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(TransportError::Timeout {
                after: timeout,
                cause: None,
            }),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(response)) => Ok(Received {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A server that answers each connection's requests with `replies` in turn (one per
    /// request read), then closes.
    async fn server(
        replies: Vec<&'static [u8]>,
    ) -> (Endpoint, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for reply in replies {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return seen;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                seen.push(String::from_utf8_lossy(&got).into_owned());
                socket.write_all(reply).await.unwrap();
            }
            seen
        });
        let endpoint = Endpoint {
            origin: format!("http://{addr}"),
            authority: addr.to_string(),
            addrs: vec![addr],
            tls: None,
            timeout: Duration::from_secs(5),
            idle: Mutex::new(Vec::new()),
        };
        (endpoint, handle)
    }

    fn http() -> &'static reqwest::Client {
        static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        CLIENT.get_or_init(reqwest::Client::new)
    }

    fn get(url: String) -> Outgoing {
        Outgoing {
            method: Method::Get,
            url,
            headers: vec![("authorization".into(), "Bearer t".into())],
            body: None,
            needs_headers: true,
        }
    }

    async fn send(t: &mut LoadTransport<'_>, url: String) -> Result<Response, ConnError> {
        let request = get(url);
        let target = t.endpoint.request_target(&request.url).unwrap().to_owned();
        write_request(
            &mut t.wire,
            Method::Get,
            &target,
            &t.endpoint.authority.clone(),
            &request.headers,
            None,
        )
        .unwrap();
        t.exchange(false, true).await
    }

    #[tokio::test]
    async fn keep_alive_content_length_and_chunked_on_one_connection() {
        let (endpoint, handle) = server(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n{}",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;ext=1\r\n2]\r\n0\r\nX-T: y\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        let first = send(&mut t, format!("{base}/a?x=1")).await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"{}"[..]));
        assert!(first.headers.contains(&("x-a".into(), "1".into())));
        let second = send(&mut t, format!("{base}/b")).await.unwrap();
        assert_eq!(
            (second.status, second.body.as_slice()),
            (201, &b"[1,2]"[..])
        );
        let third = send(&mut t, format!("{base}/c")).await.unwrap();
        assert_eq!((third.status, third.body.len()), (204, 0));
        drop(t);
        let seen = handle.await.unwrap();
        assert_eq!(seen.len(), 3, "one connection carried the three requests");
        assert!(
            seen[0].starts_with("GET /a?x=1 HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("authorization: Bearer t\r\n"));
        assert!(seen[0].contains(&format!("host: {}\r\n", endpoint.authority)));
    }

    #[tokio::test]
    async fn close_delimited_and_connection_close_are_not_reused() {
        let (endpoint, handle) = server(vec![
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        ])
        .await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        let r = send(&mut t, format!("{base}/")).await.unwrap();
        assert!(!r.keep_alive);
        assert!(t.conn.is_none());
        handle.await.unwrap();

        let (endpoint, _handle) = server(vec![b"HTTP/1.0 200 OK\r\n\r\nuntil the end"]).await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        let r = send(&mut t, format!("{base}/")).await.unwrap();
        assert_eq!(r.body, b"until the end");
        assert!(!r.keep_alive);
    }

    #[tokio::test]
    async fn oversized_garbage_and_truncated_answers_are_errors() {
        let (endpoint, _h) = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        ])
        .await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        assert!(matches!(
            send(&mut t, format!("{base}/")).await,
            Err(ConnError::TooLarge)
        ));

        let (endpoint, _h) = server(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]).await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        let e = send(&mut t, format!("{base}/")).await.unwrap_err();
        assert!(matches!(e, ConnError::Invalid(_)), "{e:?}");

        let (endpoint, _h) =
            server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]).await;
        let base = endpoint.origin.clone();
        let mut t = LoadTransport::new(&endpoint, http());
        let e = send(&mut t, format!("{base}/")).await.unwrap_err();
        assert!(!e.stale(), "part of the answer came: never sent again");
        let e = TransportError::from(e);
        assert!(matches!(e, TransportError::Reset(_)), "{e:?}");
        assert!(e.to_string().contains("closed"), "{e}");
    }

    #[test]
    fn requests_are_well_formed_and_refuse_header_injection() {
        let mut wire = Vec::new();
        write_request(
            &mut wire,
            Method::Post,
            "/oauth/token",
            "example.test:8443",
            &[("content-type".into(), "application/json".into())],
            Some("{}"),
        )
        .unwrap();
        let text = String::from_utf8(wire.clone()).unwrap();
        assert!(text.starts_with("POST /oauth/token HTTP/1.1\r\nhost: example.test:8443\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
        assert!(
            write_request(
                &mut wire,
                Method::Get,
                "/",
                "h",
                &[("x".into(), "a\r\nb: c".into())],
                None
            )
            .is_err()
        );
        assert!(
            write_request(
                &mut wire,
                Method::Get,
                "/",
                "h",
                &[("x y".into(), "v".into())],
                None
            )
            .is_err()
        );
    }

    #[test]
    fn origins_match_exactly() {
        let endpoint = Endpoint {
            origin: "http://127.0.0.1:8080".into(),
            authority: "127.0.0.1:8080".into(),
            addrs: vec![],
            tls: None,
            timeout: Duration::from_secs(1),
            idle: Mutex::new(Vec::new()),
        };
        assert_eq!(
            endpoint.request_target("http://127.0.0.1:8080/mfa/x?y=1"),
            Some("/mfa/x?y=1")
        );
        assert_eq!(endpoint.request_target("http://127.0.0.1:8080"), Some("/"));
        assert_eq!(endpoint.request_target("http://127.0.0.1:80800/x"), None);
        assert_eq!(endpoint.request_target("https://127.0.0.1:8080/x"), None);
    }
}

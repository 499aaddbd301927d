//! `mfa-conform serve`: the reference implementation of the Auth0-style MFA API, used as the
//! default target of `run` and `load` and as a local stand-in for Auth0 in other projects' CI.

pub mod client_auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod jwt;
pub mod params;
mod random;
mod routes;
pub mod store;
pub mod tls;

use axum::http::HeaderMap;
use client_auth::ClientKey;
use clock::Clock;
use config::ServerConfig;
use jwt::Signer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Store;

/// Everything a handler needs, shared as `State<Arc<AppState>>`.
pub struct AppState {
    pub config: ServerConfig,
    pub clock: Clock,
    /// Made on a blocking thread at start-up, so the port opens at once; the first request
    /// that needs it waits for it.
    signer: tokio::sync::OnceCell<Arc<Signer>>,
    store: Mutex<Store>,
    scheme: &'static str,
    /// Public keys of the clients that may use `private_key_jwt`, by client id.
    client_keys: HashMap<String, ClientKey>,
}

impl AppState {
    pub fn new(config: ServerConfig, tls: bool) -> anyhow::Result<AppState> {
        let clock = Clock::default();
        let mut store = Store::new(
            config.limits.clone(),
            config.factors.clone(),
            config.recovery_codes,
            config.tenant_name.clone(),
        );
        for user in &config.users {
            store
                .seed_user(user, clock.now())
                .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        }
        let mut client_keys = HashMap::new();
        for client in &config.clients {
            if let Some(pem) = &client.public_key_pem {
                let key = ClientKey::from_pem(pem).map_err(|e| {
                    anyhow::anyhow!("configuration: client {}: {e}", client.client_id)
                })?;
                client_keys.insert(client.client_id.clone(), key);
            }
        }
        Ok(AppState {
            client_keys,
            signer: tokio::sync::OnceCell::new(),
            clock,
            store: Mutex::new(store),
            scheme: if tls { "https" } else { "http" },
            config,
        })
    }

    /// The token signer, generating its RSA key on first use.
    pub async fn signer(&self) -> Result<Arc<Signer>, error::ApiError> {
        self.signer
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(Signer::generate)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .and_then(|r| r)
                    .map(Arc::new)
            })
            .await
            .cloned()
            .map_err(|e| {
                tracing::error!("RSA key generation failed: {e:#}");
                error::ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "Token signing is unavailable.",
                )
            })
    }

    /// The store, even if a handler panicked while holding it (its data stays consistent:
    /// every mutation is completed before anything that can fail).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `https://host:port` as the client addressed us (or the configured public URL).
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }

    pub fn issuer(&self, headers: &HeaderMap) -> String {
        format!("{}/", self.base_url(headers))
    }

    /// The public key of a client that may use `private_key_jwt`.
    pub fn client_key(&self, client_id: &str) -> Option<&ClientKey> {
        self.client_keys.get(client_id)
    }

    /// What a `client_assertion`'s `aud` may be: the issuer or the token endpoint, as
    /// addressed and as `https://` (how SDKs build it from the domain).
    pub fn assertion_audiences(&self, headers: &HeaderMap) -> Vec<String> {
        let base = self.base_url(headers);
        let https = https_form(&base);
        let mut audiences = vec![format!("{base}/"), format!("{base}/oauth/token")];
        if https != base {
            audiences.extend([format!("{https}/"), format!("{https}/oauth/token")]);
        }
        audiences
    }

    /// The audiences of the MFA API: `<base>/mfa/`, and `https://<host>/mfa/` whatever
    /// the listener's scheme, since SDKs build it from the domain and always say `https`.
    pub fn mfa_audiences(&self, headers: &HeaderMap) -> [String; 2] {
        let base = self.base_url(headers);
        [
            format!("{base}/mfa/"),
            format!("{}/mfa/", https_form(&base)),
        ]
    }
}

/// `base` with an `https` scheme.
fn https_form(base: &str) -> String {
    match base.strip_prefix("http://") {
        Some(host) => format!("https://{host}"),
        None => base.to_owned(),
    }
}

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config: ServerConfig,
    /// Mount the `/__control/*` test API.
    pub control: bool,
    pub tls: Option<tls::TlsSource>,
}

/// A server running on a background task; dropping it does not stop it, `shutdown` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: Arc<AppState>,
    /// The PEM certificate clients should trust, when serving TLS.
    pub certificate_pem: Option<String>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Stops a [`RunningServer`] from elsewhere (a signal handler).
#[derive(Clone)]
pub struct Stopper(axum_server::Handle<SocketAddr>);

impl Stopper {
    pub fn stop(&self) {
        self.0.graceful_shutdown(Some(Duration::from_secs(2)));
    }
}

impl RunningServer {
    pub fn stopper(&self) -> Stopper {
        Stopper(self.handle.clone())
    }

    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        let _ = self.task.await;
    }

    /// Waits until the server stops (it only stops on error or `shutdown`).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }
}

/// Binds `addr` (port 0 picks a free port) and serves on a background task.
pub async fn start(addr: SocketAddr, options: ServeOptions) -> anyhow::Result<RunningServer> {
    crate::install_crypto_provider();
    let state = Arc::new(AppState::new(
        options.config.clone(),
        options.tls.is_some(),
    )?);
    let app = routes::router(state.clone(), options.control);
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let service = app.into_make_service();
    let header_timeout =
        Duration::from_secs(options.config.limits.header_read_timeout_seconds.max(1));
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (task, certificate_pem) = match &options.tls {
        Some(source) => {
            let material = source.load()?;
            let config = axum_server::tls_rustls::RustlsConfig::from_pem(
                material.chain_pem.into_bytes(),
                material.key_pem.into_bytes(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
            let mut server = axum_server::from_tcp_rustls(listener, config)?.handle(handle.clone());
            http1_settings(server.http_builder(), header_timeout);
            (tokio::spawn(server.serve(service)), Some(material.cert_pem))
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.handle(handle.clone());
            http1_settings(server.http_builder(), header_timeout);
            (tokio::spawn(server.serve(service)), None)
        }
    };
    spawn_purger(state.clone());
    let warm = state.clone();
    tokio::spawn(async move {
        let _ = warm.signer().await;
    });
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    Ok(RunningServer {
        addr,
        base_url: format!("{scheme}://{host}:{}", addr.port()),
        state,
        certificate_pem,
        handle,
        task,
    })
}

/// HTTP/1 settings of either listener. A client may shut down its sending side once the
/// request is out (`shutdown(SHUT_WR)`); hyper's default then drops the connection without
/// an answer whenever it reads the end of stream before the handler has finished, so
/// half-closed connections are allowed. A client that never finishes its request head is
/// cut off after `header_timeout` (`limits.header_read_timeout_seconds`).
fn http1_settings(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .half_close(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
}

/// Drops expired `mfa_token`s and `oob_code`s every few seconds, so memory stays flat.
fn spawn_purger(state: Arc<AppState>) {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { return };
            let now = state.clock.now();
            state.store().purge_expired(now);
            if let Some(signer) = state.signer.get() {
                signer.purge_verified(now);
            }
        }
    });
}

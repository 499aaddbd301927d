//! mfa-conform: a conformance test harness, load generator and reference server for
//! multi-factor-authentication APIs in the shape of Auth0's Authentication API.

pub mod cli;
pub mod engine;
pub mod exit;
pub mod fuzzing;
pub mod init;
pub mod load;
pub mod output;
pub mod report;
pub mod run;
pub mod scenario;
pub mod select;
pub mod server;
pub mod signals;
pub mod snapshot;
pub mod suite;
pub mod target;
pub mod totp;
pub mod transport;
pub mod units;

/// Makes aws-lc-rs the process's TLS crypto provider. Two providers (ring, from the HTTP
/// client, and aws-lc-rs) are linked in, and rustls refuses to guess between them.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

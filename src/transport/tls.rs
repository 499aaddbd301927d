//! The TLS client configuration of a target, built once from its profile and used by both
//! transports: the run's reqwest client and load mode's own connections. The web PKI roots
//! plus the profile's `tls.ca_cert`, or no verification at all with `tls.insecure`.

use crate::target::Tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;

/// What a user is told when the target's certificate is not trusted.
pub const UNTRUSTED_HINT: &str = "the target's TLS certificate is not trusted: name its CA in the profile's tls.ca_cert, or set tls.insecure: true for a throwaway target";

/// A profile whose TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("tls.ca_cert: cannot read {}: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("tls.ca_cert: {} is not a PEM certificate: {reason}", path.display())]
    NotPem { path: PathBuf, reason: String },
    #[error("tls.ca_cert: {}: unusable certificate: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("tls.ca_cert: {} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
    #[error("TLS: {0}")]
    Protocol(#[from] rustls::Error),
}

/// The client configuration for a target's `tls` settings, offering `alpn` (most preferred
/// first).
pub fn client_config(tls: &Tls, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsConfigError> {
    crate::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(tls)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn roots(tls: &Tls) -> Result<rustls::RootCertStore, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let Some(path) = &tls.ca_cert else {
        return Ok(roots);
    };
    let pem = std::fs::read(path).map_err(|error| TlsConfigError::Unreadable {
        path: path.clone(),
        error,
    })?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsConfigError::NotPem {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsConfigError::Unusable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsConfigError::Empty { path: path.clone() });
    }
    Ok(roots)
}

/// `tls.insecure: true`: any certificate is accepted (signatures are still checked, so the
/// handshake itself is sound).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_file(contents: &str) -> (PathBuf, Tls) {
        let path = std::env::temp_dir().join(format!(
            "mfa-conform-tls-{}-{}.pem",
            std::process::id(),
            contents.len()
        ));
        std::fs::write(&path, contents).unwrap();
        let tls = Tls {
            ca_cert: Some(path.clone()),
            insecure: false,
        };
        (path, tls)
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let (path, tls) = ca_file("not a certificate\n");
        let error = client_config(&tls, &[b"http/1.1"]).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(error, TlsConfigError::Empty { .. }), "{error}");
        assert!(error.to_string().contains("holds no PEM certificate"));

        let missing = Tls {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let error = client_config(&missing, &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("tls.ca_cert: cannot read /nonexistent/ca.pem")
        );
    }

    #[test]
    fn the_profile_decides_verification_and_the_caller_alpn() {
        let config = client_config(&Tls::default(), &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let insecure = Tls {
            ca_cert: None,
            insecure: true,
        };
        assert!(client_config(&insecure, &[b"http/1.1"]).is_ok());
    }
}

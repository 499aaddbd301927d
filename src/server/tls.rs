//! TLS material for `serve --tls`: a given certificate and key, or a fresh private CA and a
//! leaf certificate for `localhost`, `127.0.0.1` and `::1`, with the CA written to a file the
//! user (or an SDK that insists on `https://`) can trust.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum TlsSource {
    /// Generate a CA and a leaf certificate; write the CA (PEM) to this path.
    SelfSigned { ca_out: PathBuf },
    /// Use these PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

pub struct TlsMaterial {
    /// What the server presents.
    pub chain_pem: String,
    pub key_pem: String,
    /// What clients should trust (the CA for a generated certificate).
    pub cert_pem: String,
}

impl TlsSource {
    pub fn load(&self) -> anyhow::Result<TlsMaterial> {
        match self {
            TlsSource::Files { cert, key } => {
                let read = |p: &PathBuf| {
                    std::fs::read_to_string(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
                };
                let cert_pem = read(cert)?;
                Ok(TlsMaterial {
                    chain_pem: cert_pem.clone(),
                    key_pem: read(key)?,
                    cert_pem,
                })
            }
            TlsSource::SelfSigned { ca_out } => {
                let material = generate()?;
                if let Some(dir) = ca_out.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(ca_out, &material.cert_pem)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", ca_out.display()))?;
                Ok(material)
            }
        }
    }
}

/// A private CA and a server certificate it signed, valid for the loopback names.
pub fn generate() -> anyhow::Result<TlsMaterial> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mfa-conform local CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(TlsMaterial {
        chain_pem: format!("{}{}", leaf.pem(), ca_cert.pem()),
        key_pem: leaf_key.serialize_pem(),
        cert_pem: ca_cert.pem(),
    })
}

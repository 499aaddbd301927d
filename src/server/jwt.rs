//! RS256 token signing for access tokens and `id_token`s, the JWKS that lets SDKs verify
//! them, and verification of the `/mfa/` access tokens the server accepts back.
//!
//! The key pair is generated at start-up (aws-lc-rs makes an RSA-2048 key in milliseconds),
//! so tokens from one server run are never valid on another.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwks: Value,
}

/// Claims of the access tokens this server issues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub azp: String,
    /// Unique id, so two tokens issued in the same second differ.
    pub jti: String,
}

impl AccessClaims {
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope.split(' ').any(|s| s == wanted)
    }
}

/// Claims of an `id_token`.
#[derive(Debug, Serialize)]
pub struct IdClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub name: &'a str,
}

/// Why a presented access token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    Expired,
    WrongAudience,
}

impl Signer {
    pub fn generate() -> anyhow::Result<Signer> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = pair
            .as_der()
            .map_err(|_| anyhow::anyhow!("RSA key serialisation failed"))?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
        let kid = super::random::hex(12);
        let jwks = json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&n),
            "e": URL_SAFE_NO_PAD.encode(&e),
        }]});
        Ok(Signer {
            encoding,
            decoding,
            kid,
            jwks,
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Verifies signature, issuer and audience; expiry is checked against `now`, the
    /// server's (advanceable) clock, not the wall clock.
    pub fn verify_access(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<AccessClaims, TokenRejection> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims = ["exp", "iss", "sub", "aud"]
            .into_iter()
            .map(String::from)
            .collect();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map_err(|_| TokenRejection::Malformed)?
            .claims;
        if claims.aud != audience {
            return Err(TokenRejection::WrongAudience);
        }
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://h/".into(),
            sub: "auth0|1".into(),
            aud: aud.into(),
            iat: 0,
            exp,
            scope: "enroll read:authenticators".into(),
            azp: "c".into(),
            jti: "j".into(),
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let signer = Signer::generate().unwrap();
        let token = signer.sign(&claims("https://h/mfa/", 100)).unwrap();
        let got = signer
            .verify_access(&token, "https://h/", "https://h/mfa/", 50)
            .unwrap();
        assert!(got.has_scope("enroll") && !got.has_scope("remove:authenticators"));
        assert_eq!(
            signer.verify_access(&token, "https://h/", "https://h/mfa/", 100),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            signer.verify_access(&token, "https://h/", "https://h/api/", 50),
            Err(TokenRejection::WrongAudience)
        );
        assert_eq!(
            signer.verify_access(&token, "https://other/", "https://h/mfa/", 50),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn another_servers_tokens_are_refused() {
        let a = Signer::generate().unwrap();
        let b = Signer::generate().unwrap();
        let token = a.sign(&claims("https://h/mfa/", 100)).unwrap();
        assert_eq!(
            b.verify_access(&token, "https://h/", "https://h/mfa/", 50),
            Err(TokenRejection::Malformed)
        );
        let jwk = &a.jwks()["keys"][0];
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["e"], "AQAB");
    }
}

//! RS256 token signing for access tokens and `id_token`s, the JWKS that lets SDKs verify
//! them, and verification of the `/mfa/` access tokens the server accepts back.
//!
//! The key pair is generated at start-up (aws-lc-rs makes an RSA-2048 key in milliseconds),
//! so tokens from one server run are never valid on another.

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Signer {
    /// The parsed key pair, kept for every signature: jsonwebtoken's `encode` re-parses and
    /// re-checks the private key on each call, which was 40% of a grant's CPU.
    pair: RsaKeyPair,
    decoding: DecodingKey,
    kid: String,
    jwks: Value,
    /// Tokens whose signature has been checked, with their claims: an RSA verification
    /// costs tens of microseconds, a lookup a few hundred nanoseconds. Issuer, audience and
    /// expiry are still checked on every use. Keyed by the token's SHA-256 (32 bytes, not
    /// the ~760-byte token); expired entries are dropped by the server's purger.
    verified: Mutex<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

fn cache_key(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Verified tokens kept at most; the cache is emptied when full (tokens live 10 minutes, so
/// a long run re-verifies at worst once per token per fill).
const VERIFIED_CACHE: usize = 100_000;

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
            pair,
            decoding,
            kid,
            jwks,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A compact JWS (RFC 7515): `base64url(header).base64url(claims).base64url(RS256)`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Forgets verified tokens that have expired at `now`, so the cache holds live tokens
    /// only (memory stays flat on a long run). Returns how many remain.
    pub fn purge_verified(&self, now: i64) -> usize {
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, claims| claims.exp > now);
        if cache.capacity() > 1024 && cache.len() < cache.capacity() / 4 {
            cache.shrink_to_fit();
        }
        cache.len()
    }

    /// Verifies signature, issuer and audience (one of `audiences`); expiry is checked against `now`, the
    /// server's (advanceable) clock, not the wall clock.
    pub fn verify_access(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[&str],
        now: i64,
    ) -> Result<Arc<AccessClaims>, TokenRejection> {
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key(token))
            .cloned();
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature(token)?);
                let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= VERIFIED_CACHE {
                    cache.clear();
                }
                cache.insert(cache_key(token), claims.clone());
                claims
            }
        };
        if claims.iss != issuer {
            return Err(TokenRejection::Malformed);
        }
        if !audiences.contains(&claims.aud.as_str()) {
            return Err(TokenRejection::WrongAudience);
        }
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(claims)
    }

    /// Checks the RS256 signature and the presence of the registered claims.
    fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp", "iss", "sub", "aud"]
            .into_iter()
            .map(String::from)
            .collect();
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenRejection::Malformed)
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
            .verify_access(&token, "https://h/", &["https://h/mfa/"], 50)
            .unwrap();
        assert!(got.has_scope("enroll") && !got.has_scope("remove:authenticators"));
        assert_eq!(
            signer.verify_access(&token, "https://h/", &["https://h/mfa/"], 100),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            signer.verify_access(&token, "https://h/", &["https://h/api/"], 50),
            Err(TokenRejection::WrongAudience)
        );
        assert_eq!(
            signer.verify_access(&token, "https://other/", &["https://h/mfa/"], 50),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn the_verified_cache_keeps_live_tokens_only() {
        let signer = Signer::generate().unwrap();
        let short = signer.sign(&claims("https://h/mfa/", 100)).unwrap();
        let long = signer.sign(&claims("https://h/mfa/", 700)).unwrap();
        for token in [&short, &long] {
            signer
                .verify_access(token, "https://h/", &["https://h/mfa/"], 50)
                .unwrap();
        }
        assert_eq!(signer.purge_verified(50), 2);
        assert_eq!(
            signer.purge_verified(100),
            1,
            "the expired token is forgotten"
        );
        // A purged token is still refused for its expiry, not re-accepted.
        assert_eq!(
            signer.verify_access(&short, "https://h/", &["https://h/mfa/"], 100),
            Err(TokenRejection::Expired)
        );
        assert_eq!(signer.purge_verified(700), 0);
    }

    #[test]
    fn another_servers_tokens_are_refused() {
        let a = Signer::generate().unwrap();
        let b = Signer::generate().unwrap();
        let token = a.sign(&claims("https://h/mfa/", 100)).unwrap();
        assert_eq!(
            b.verify_access(&token, "https://h/", &["https://h/mfa/"], 50),
            Err(TokenRejection::Malformed)
        );
        let jwk = &a.jwks()["keys"][0];
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["e"], "AQAB");
    }
}

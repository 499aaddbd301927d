//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the
//! client signs a short-lived JWT with its private key and sends it as `client_assertion`
//! with `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`;
//! the server checks it against the public key configured for the client.
//!
//! Checked: the signature (RS256/384/512 and PS256/384/512 for an RSA key, ES256 or ES384
//! for an EC key), `iss` = `sub` = the client id, `aud` = the server's issuer or token
//! endpoint (as `https://` too), `exp` against the server's clock, and a `jti` never seen
//! before for that client (replay) while the assertion is alive.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

/// The only `client_assertion_type` defined for JWT client authentication.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on `exp`.
pub const LEEWAY_SECONDS: i64 = 30;

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A client's public key, parsed from its PEM at start-up.
#[derive(Clone)]
pub struct ClientKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a `client_assertion` was refused (the `error_description` of the 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("The client_assertion is not a signed JWT.")]
    NotAJwt,
    #[error("The client_assertion algorithm {0:?} does not fit the client's key.")]
    Algorithm(Algorithm),
    #[error("The client_assertion signature is invalid.")]
    Signature,
    #[error("The client_assertion audience must be {0}.")]
    Audience(String),
    #[error("The client_assertion iss and sub must be the client_id.")]
    Subject,
    #[error("The client_assertion has no {0} claim.")]
    Missing(String),
    #[error("The client_assertion is malformed.")]
    Malformed,
    #[error("The client_assertion has expired.")]
    Expired,
}

/// The claims of a verified assertion that the replay check needs.
#[derive(Debug)]
pub struct Assertion {
    pub exp: i64,
    pub jti: String,
}

impl ClientKey {
    /// An RSA (2048 bits or more) or EC P-256/P-384 public key, PEM `PUBLIC KEY`
    /// (SubjectPublicKeyInfo, what `openssl pkey -pubout` writes).
    pub fn from_pem(pem: &str) -> anyhow::Result<ClientKey> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("not a PEM public key (BEGIN PUBLIC KEY): {e}"))?;
        let der = der.as_ref();
        if ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).is_ok() {
            return Ok(ClientKey {
                key: DecodingKey::from_rsa_der(der),
                algorithms: RSA_ALGORITHMS.to_vec(),
            });
        }
        for (curve, algorithm) in [
            (&ECDSA_P256_SHA256_FIXED, Algorithm::ES256),
            (&ECDSA_P384_SHA384_FIXED, Algorithm::ES384),
        ] {
            if ParsedPublicKey::new(curve, der).is_ok() {
                return Ok(ClientKey {
                    key: DecodingKey::from_ec_der(der),
                    algorithms: vec![algorithm],
                });
            }
        }
        anyhow::bail!("unsupported public key: use RSA (2048 bits or more), EC P-256 or EC P-384")
    }

    /// Verifies `assertion` for `client_id`; the reason for a refusal otherwise.
    pub fn verify(
        &self,
        assertion: &str,
        client_id: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Assertion, AssertionError> {
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| AssertionError::NotAJwt)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AssertionError::Algorithm(header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = self.algorithms.clone();
        validation.validate_exp = false;
        validation.set_audience(audiences);
        validation.set_issuer(&[client_id]);
        validation.sub = Some(client_id.to_owned());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        #[derive(Deserialize)]
        struct Claims {
            exp: Option<i64>,
            jti: Option<String>,
        }
        let claims = jsonwebtoken::decode::<Claims>(assertion, &self.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AssertionError::Signature,
                ErrorKind::InvalidAudience => AssertionError::Audience(
                    audiences
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "the issuer".into()),
                ),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => AssertionError::Subject,
                ErrorKind::MissingRequiredClaim(claim) => AssertionError::Missing(claim.clone()),
                _ => AssertionError::Malformed,
            })?
            .claims;
        let exp = claims.exp.ok_or(AssertionError::Malformed)?;
        if exp + LEEWAY_SECONDS <= now {
            return Err(AssertionError::Expired);
        }
        match claims.jti {
            Some(jti) if !jti.is_empty() => Ok(Assertion { exp, jti }),
            _ => Err(AssertionError::Missing("jti".into())),
        }
    }
}

/// The `sub` (or `iss`) of an assertion, unverified: which client it claims to be, when
/// the request names no `client_id`.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Names {
        sub: Option<String>,
        iss: Option<String>,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let names: Names = serde_json::from_slice(&bytes).ok()?;
    names.sub.or(names.iss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
        RsaKeyPair,
    };
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{Value, json};

    const CLIENT: &str = "app";
    const NOW: i64 = 1_700_000_000;

    fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn jws(alg: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn claims(jti: &str) -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": "https://h/", "exp": NOW + 60, "iat": NOW, "jti": jti})
    }

    fn rsa() -> (RsaKeyPair, ClientKey) {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = ClientKey::from_pem(&pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        (pair, key)
    }

    fn rsa_sign(pair: &RsaKeyPair, pss: bool) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
        move |input| {
            let mut signature = vec![0; pair.public_modulus_len()];
            let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding = if pss {
                &RSA_PSS_SHA256
            } else {
                &RSA_PKCS1_SHA256
            };
            pair.sign(encoding, &SystemRandom::new(), input, &mut signature)
                .unwrap();
            signature
        }
    }

    fn audiences() -> Vec<String> {
        vec!["https://h/".into(), "https://h/oauth/token".into()]
    }

    #[test]
    fn rsa_assertions_verify_with_rs256_and_ps256() {
        let (pair, key) = rsa();
        for (alg, pss) in [("RS256", false), ("PS256", true)] {
            let assertion = jws(alg, &claims("a"), rsa_sign(&pair, pss));
            let verified = key.verify(&assertion, CLIENT, &audiences(), NOW).unwrap();
            assert_eq!((verified.jti.as_str(), verified.exp), ("a", NOW + 60));
        }
        assert_eq!(
            claimed_client(&jws("RS256", &claims("a"), rsa_sign(&pair, false))).as_deref(),
            Some(CLIENT)
        );
    }

    #[test]
    fn ec_p256_assertions_verify_with_es256_only() {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let key = ClientKey::from_pem(&pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        let sign = |input: &[u8]| pair.sign(&rng, input).unwrap().as_ref().to_vec();
        key.verify(&jws("ES256", &claims("e"), sign), CLIENT, &audiences(), NOW)
            .unwrap();
        let err = key
            .verify(&jws("RS256", &claims("e"), sign), CLIENT, &audiences(), NOW)
            .unwrap_err();
        assert_eq!(err, AssertionError::Algorithm(Algorithm::RS256));
    }

    #[test]
    fn refusals_say_why() {
        let (pair, key) = rsa();
        let (other, _) = rsa();
        let refuse = |claims: Value, signer: &RsaKeyPair, now: i64| {
            key.verify(
                &jws("RS256", &claims, rsa_sign(signer, false)),
                CLIENT,
                &audiences(),
                now,
            )
            .unwrap_err()
        };
        assert_eq!(refuse(claims("a"), &other, NOW), AssertionError::Signature);
        let mut c = claims("a");
        c["aud"] = "https://elsewhere/".into();
        let err = refuse(c, &pair, NOW);
        assert_eq!(
            err.to_string(),
            "The client_assertion audience must be https://h/."
        );
        let mut c = claims("a");
        c["iss"] = "someone-else".into();
        assert_eq!(refuse(c, &pair, NOW), AssertionError::Subject);
        let mut c = claims("a");
        c["sub"] = "someone-else".into();
        assert_eq!(refuse(c, &pair, NOW), AssertionError::Subject);
        // Expired beyond the 30-s leeway; inside it still accepted.
        assert_eq!(
            refuse(claims("a"), &pair, NOW + 90),
            AssertionError::Expired
        );
        let inside = jws("RS256", &claims("a"), rsa_sign(&pair, false));
        key.verify(&inside, CLIENT, &audiences(), NOW + 89).unwrap();
        let mut c = claims("a");
        c.as_object_mut().unwrap().remove("jti");
        assert_eq!(refuse(c, &pair, NOW), AssertionError::Missing("jti".into()));
        let mut c = claims("a");
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(refuse(c, &pair, NOW), AssertionError::Missing("exp".into()));
        assert!(
            key.verify("not.a.jwt", CLIENT, &audiences(), NOW)
                .unwrap_err()
                == AssertionError::NotAJwt
        );
    }

    #[test]
    fn keys_must_be_pem_public_keys_of_a_supported_kind() {
        assert!(ClientKey::from_pem("nope").is_err());
        let small = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = small.public_key().as_der().unwrap();
        let mut broken = der.as_ref().to_vec();
        broken.truncate(40);
        assert!(ClientKey::from_pem(&pem(&broken)).is_err());
    }
}

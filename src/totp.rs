//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) as Auth0 uses it.
//!
//! A small pure helper shared by the reference server (to verify codes) and the scenario
//! engine (to compute them); everything else the two sides keep apart.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};

/// Length of one TOTP step in seconds.
pub const STEP_SECONDS: u64 = 30;
/// Number of digits in a code.
pub const DIGITS: usize = 6;

/// Errors from building a TOTP generator out of a user-supplied secret.
#[derive(Debug, thiserror::Error)]
pub enum TotpSecretError {
    #[error("the TOTP secret is not valid base32")]
    NotBase32,
    #[error("the TOTP secret is too short ({0} bits; at least 128 are required)")]
    TooShort(usize),
}

fn generator(secret_base32: &str) -> Result<Totp, TotpSecretError> {
    let cleaned: String = secret_base32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(&cleaned).map_err(|_| TotpSecretError::NotBase32)?;
    let bits = secret.as_bytes().len() * 8;
    if bits < 128 {
        return Err(TotpSecretError::TooShort(bits));
    }
    Ok(totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(STEP_SECONDS)
        .with_skew(0)
        .with_secret(secret)
        .build_noncompliant())
}

/// The step number that contains `unix_seconds`.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The code for the step that contains `unix_seconds`.
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> Result<String, TotpSecretError> {
    Ok(generator(secret_base32)?.generate(unix_seconds).to_string())
}

/// Finds which of the given steps `code` belongs to, comparing in constant time.
///
/// Returns the newest matching step, so a caller that remembers the last accepted step can
/// refuse any code at or before it (a validated code is never accepted twice).
pub fn matching_step(
    secret_base32: &str,
    code: &str,
    steps: impl IntoIterator<Item = u64>,
) -> Result<Option<u64>, TotpSecretError> {
    let generator = generator(secret_base32)?;
    let mut found = None;
    for step in steps {
        let expected = generator.generate(step * STEP_SECONDS).to_string();
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if equal && found.is_none_or(|f| step > f) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// A fresh 160-bit secret from the operating system's CSPRNG, base32 without padding.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new_stack(bytes).to_base32()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA1 seed "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc6238_vectors() {
        assert_eq!(code_at(RFC_SECRET, 59).unwrap(), "287082");
        assert_eq!(code_at(RFC_SECRET, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(RFC_SECRET, 2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn matching_step_finds_previous_step() {
        let now = 1_111_111_109;
        let prev = code_at(RFC_SECRET, now - 30).unwrap();
        let step = step_of(now);
        assert_eq!(
            matching_step(RFC_SECRET, &prev, [step, step - 1]).unwrap(),
            Some(step - 1)
        );
        assert_eq!(matching_step(RFC_SECRET, "000000", [step]).unwrap(), None);
    }

    #[test]
    fn bad_secrets_are_rejected() {
        assert!(matches!(
            code_at("not base32!", 0),
            Err(TotpSecretError::NotBase32)
        ));
        assert!(matches!(
            code_at("GEZDGNBV", 0),
            Err(TotpSecretError::TooShort(40))
        ));
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        code_at(&a, 0).unwrap();
    }
}

//! Unguessable values: tokens, codes and ids, all drawn from `rand::rng()`, a ChaCha12
//! CSPRNG seeded from the operating system.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use rand::RngCore;

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An opaque bearer value with 256 bits of entropy (`mfa_token`, `oob_code`).
pub fn opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn from_alphabet(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// An opaque bearer value that also carries its expiry: 24 random bytes and the expiry
/// (Unix seconds, big-endian). Expired entries can then be dropped from memory and still be
/// answered "expired" rather than "malformed"; forging the expiry gains nothing, since
/// only values the server stored are ever accepted.
pub fn expiring_token(expires_at: i64) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes[..24]);
    bytes[24..].copy_from_slice(&expires_at.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The expiry carried by a value from [`expiring_token`], if it has that shape.
pub fn token_expiry(token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let tail: [u8; 8] = bytes.get(24..32)?.try_into().ok()?;
    (bytes.len() == 32).then(|| i64::from_be_bytes(tail))
}

/// A recovery code: 24 upper-case alphanumerics, as Auth0 issues them.
pub fn recovery_code() -> String {
    from_alphabet(UPPER_ALNUM, 24)
}

/// The `dev_` suffix of an authenticator id: 16 alphanumerics.
pub fn device_suffix() -> String {
    from_alphabet(ALNUM, 16)
}

/// The `enrollment_tx_id` of a push enrollment: 32 alphanumerics.
pub fn enrollment_tx_id() -> String {
    from_alphabet(ALNUM, 32)
}

/// A 6-digit code delivered out of band (SMS, voice, email).
pub fn six_digits() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// A password for a provisioned test user.
pub fn password() -> String {
    format!("Pw-{}", from_alphabet(ALNUM, 20))
}

/// A lower-case hex string of `bytes` random bytes (user ids, key ids).
pub fn hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(opaque_token().len(), 43);
        let rc = recovery_code();
        assert_eq!(rc.len(), 24);
        assert!(rc.bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_eq!(device_suffix().len(), 16);
        assert_eq!(enrollment_tx_id().len(), 32);
        let code = six_digits();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(opaque_token(), opaque_token());
        let token = expiring_token(1_700_000_000);
        assert_eq!(token.len(), 43);
        assert_eq!(token_expiry(&token), Some(1_700_000_000));
        assert_eq!(token_expiry("short"), None);
    }
}

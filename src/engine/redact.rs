//! Keeps secrets out of every report, snapshot and log line: values under sensitive JSON
//! keys are replaced structurally, and every secret value seen during a run (client secret,
//! passwords, tokens, codes) is replaced wherever it appears in text.

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// JSON keys (and capture names) whose values are secrets.
pub const SENSITIVE_KEYS: [&str; 14] = [
    "access_token",
    "id_token",
    "refresh_token",
    "mfa_token",
    "oob_code",
    "binding_code",
    "otp",
    "secret",
    "barcode_uri",
    "recovery_code",
    "recovery_codes",
    "password",
    "client_secret",
    "client_assertion",
];

/// Whether a key names a secret for certain: one of [`SENSITIVE_KEYS`], or a `*_token`,
/// `*_secret` or `*_password`. Snapshots mask these; redaction also every name that
/// merely looks like one ([`is_sensitive`]).
pub fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE_KEYS.iter().any(|k| name == *k)
        || ["_token", "_secret", "_password"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Whether a key or capture name holds a secret (`mfa_token`, `new_recovery_code`, ...):
/// a [secret key](is_secret_key), or a name containing a secret's word. A `*_type` names
/// a kind, not a value: `token_type` is `Bearer`, which must stay readable wherever else
/// it appears (`WWW-Authenticate: Bearer`, a check's expectation).
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if name.ends_with("_type") || name.ends_with("_types") {
        return false;
    }
    is_secret_key(&name)
        || ["token", "secret", "password", "recovery", "code", "otp"]
            .iter()
            .any(|part| name.contains(part))
}

/// Shared by a whole run: scenarios add the secrets they meet; reports redact with it.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<BTreeSet<String>>>,
}

/// Shortest value treated as a secret (shorter ones would redact ordinary words).
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    /// A redactor that starts with this one's secrets and keeps its own additions apart.
    pub fn child(&self) -> Redactor {
        let set = self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Redactor {
            secrets: Arc::new(RwLock::new(set)),
        }
    }

    pub fn add(&self, secret: &str) {
        if secret.len() >= MIN_SECRET_LEN {
            let mut set = self.secrets.write().unwrap_or_else(|e| e.into_inner());
            set.insert(secret.to_owned());
            // Percent- and form-encoded forms show up in URLs and bodies.
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            if encoded != secret {
                set.insert(encoded);
            }
        }
    }

    /// Adds every string under a sensitive key of `value`.
    pub fn add_from_json(&self, value: &Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if is_sensitive(key) {
                        self.add_all_strings(v);
                    } else {
                        self.add_from_json(v);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.add_from_json(v)),
            _ => {}
        }
    }

    fn add_all_strings(&self, value: &Value) {
        match value {
            Value::String(s) => {
                self.add(s);
                // The TOTP secret also sits inside `barcode_uri`.
                if let Some(secret) = s
                    .split(['?', '&'])
                    .find_map(|part| part.strip_prefix("secret="))
                {
                    self.add(secret);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.add_all_strings(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_all_strings(v)),
            _ => {}
        }
    }

    /// Replaces every known secret in `text`, longest first, and the start of one cut
    /// short by an ellipsis (a long value shortened for a message: `"eyJhbGciOi…`).
    pub fn text(&self, text: &str) -> String {
        let set = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut secrets: Vec<&String> = set.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = if text.contains(ELLIPSIS) {
            cut_secrets(text, &secrets)
        } else {
            text.to_owned()
        };
        for secret in secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        out
    }

    /// A header's value as a log may show it: credentials (`authorization`, cookies, any
    /// header named like a secret) are replaced whatever their encoding (a Basic
    /// `client_id:client_secret` is base64, which [`Redactor::text`] would not recognise);
    /// the scheme of an `authorization` header stays.
    pub fn header(&self, name: &str, value: &str) -> String {
        let name = name.to_ascii_lowercase();
        if name == "authorization" || name == "proxy-authorization" {
            match value.trim().split_once(' ') {
                Some((scheme, _)) => format!("{scheme} [REDACTED]"),
                None => "[REDACTED]".into(),
            }
        } else if matches!(name.as_str(), "cookie" | "set-cookie") || is_sensitive(&name) {
            "[REDACTED]".into()
        } else {
            self.text(value)
        }
    }

    /// A copy of `value` with sensitive keys' values replaced (keeping their JSON type) and
    /// known secrets removed from every other string.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if is_sensitive(k) {
                            mask(v)
                        } else {
                            self.json(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::String(s) => Value::String(self.text(s)),
            other => other.clone(),
        }
    }
}

const ELLIPSIS: char = '…';
/// Shortest start of a secret recognised before an ellipsis (shorter ones would also match
/// ordinary text, and give nothing away).
const MIN_CUT_LEN: usize = 4;

/// `text` with every secret's start that runs into an ellipsis replaced by `[REDACTED]`.
fn cut_secrets(text: &str, secrets: &[&String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ELLIPSIS) {
        let before = &rest[..at];
        let longest = secrets
            .iter()
            .filter_map(|secret| {
                (MIN_CUT_LEN..secret.len())
                    .rev()
                    .filter(|k| secret.is_char_boundary(*k))
                    .find(|k| before.ends_with(&secret[..*k]))
            })
            .max();
        match longest {
            Some(k) => {
                out.push_str(&before[..before.len() - k]);
                out.push_str("[REDACTED]");
            }
            None => out.push_str(before),
        }
        out.push(ELLIPSIS);
        rest = &rest[at + ELLIPSIS.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn mask(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String("[REDACTED]".into()),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), mask(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_removed_from_text_and_json() {
        let r = Redactor::default();
        r.add_from_json(&json!({
            "mfa_token": "tok-abcdef",
            "barcode_uri": "otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&issuer=x",
            "error": "mfa_required"
        }));
        r.add("short");
        assert_eq!(r.text("Bearer tok-abcdef"), "Bearer [REDACTED]");
        assert_eq!(r.text("code JBSWY3DPEHPK3PXP"), "code [REDACTED]");
        assert_eq!(r.text("short"), "short");
        let j = r.json(&json!({"recovery_codes": ["ABCDEFGH"], "n": 3, "note": "tok-abcdef"}));
        assert_eq!(
            j,
            json!({"recovery_codes": ["[REDACTED]"], "n": 3, "note": "[REDACTED]"})
        );
    }

    #[test]
    fn credentials_in_headers_are_hidden_whatever_their_encoding() {
        let r = Redactor::default();
        r.add("mfa-conform-secret");
        // base64("mfa-conform-client:mfa-conform-secret"): not a known secret as text.
        let basic = "Basic bWZhLWNvbmZvcm0tY2xpZW50Om1mYS1jb25mb3JtLXNlY3JldA==";
        assert_eq!(r.header("Authorization", basic), "Basic [REDACTED]");
        assert_eq!(r.header("authorization", "Bearer abc"), "Bearer [REDACTED]");
        assert_eq!(r.header("authorization", "opaque"), "[REDACTED]");
        assert_eq!(r.header("set-cookie", "session=abc"), "[REDACTED]");
        assert_eq!(r.header("x-mfa-token", "abc"), "[REDACTED]");
        assert_eq!(
            r.header("x-echo", "was mfa-conform-secret"),
            "was [REDACTED]"
        );
        assert_eq!(
            r.header("content-type", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn a_secret_cut_short_by_an_ellipsis_is_redacted() {
        let r = Redactor::default();
        r.add("PCuoz_dCCCnmuBVx5h_5x3iazQ");
        r.add("otpauth://totp/x:user?secret=JBSWY3DPEHPK3PXP&issuer=x");
        r.add("JBSWY3DPEHPK3PXP");
        assert_eq!(
            r.text(r#"got {"a":"b","mfa_token":"PCuoz_dCCCnmuB…"#),
            r#"got {"a":"b","mfa_token":"[REDACTED]…"#
        );
        // The cut URI loses its start too, not only the secret inside it.
        assert_eq!(
            r.text(r#"got "otpauth://totp/x:user?secret=JBSWY3DPEHPK3PXP&iss…"#),
            r#"got "[REDACTED]…"#
        );
        // Whole secrets, and text that merely ends like an ellipsis, are as before.
        assert_eq!(
            r.text("PCuoz_dCCCnmuBVx5h_5x3iazQ and more… (12 bytes)"),
            "[REDACTED] and more… (12 bytes)"
        );
        assert_eq!(r.text("PCu… x…"), "PCu… x…");
    }

    #[test]
    fn sensitivity_of_names() {
        assert!(!is_sensitive("token_type"));
        assert!(!is_sensitive("authenticator_types"));
        assert!(is_sensitive("mfa_token"));
        assert!(is_sensitive("new_recovery_code"));
        assert!(is_sensitive("enroll_access_token"));
        assert!(!is_sensitive("authenticator_id"));
        assert!(!is_sensitive("error"));
        // Snapshots mask only the certain ones: `token_endpoint` is a URL.
        assert!(is_secret_key("mfa_token") && is_secret_key("otp_secret"));
        assert!(!is_secret_key("token_endpoint") && !is_secret_key("code"));
        assert!(is_sensitive("token_endpoint"));
    }
}

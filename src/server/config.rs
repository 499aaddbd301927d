//! Reference-server configuration: clients, realm, enabled factors, recovery codes, users
//! and limits, from an optional YAML file. Every field has a default, so no file is needed.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const GRANT_PASSWORD: &str = "password";
pub const GRANT_PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
pub const GRANT_MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const GRANT_MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
pub const GRANT_MFA_RECOVERY_CODE: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/// Every grant type the server implements.
pub const ALL_GRANTS: [&str; 5] = [
    GRANT_PASSWORD,
    GRANT_PASSWORD_REALM,
    GRANT_MFA_OTP,
    GRANT_MFA_OOB,
    GRANT_MFA_RECOVERY_CODE,
];

/// The grants that complete a login with a second factor.
pub const MFA_GRANTS: [&str; 3] = [GRANT_MFA_OTP, GRANT_MFA_OOB, GRANT_MFA_RECOVERY_CODE];

pub const DEFAULT_CLIENT_ID: &str = "mfa-conform-client";
pub const DEFAULT_CLIENT_SECRET: &str = "mfa-conform-secret";
pub const DEFAULT_REALM: &str = "Username-Password-Authentication";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Shown as the issuer in `otpauth://` URIs.
    pub tenant_name: String,
    /// The database connection users live in (`realm` of the password-realm grant).
    pub realm: String,
    /// Fixed public base URL (`https://tenant.example.com`). Without it the base URL is
    /// taken from each request's `Host`, so both `localhost` and `127.0.0.1` work.
    pub public_url: Option<String>,
    /// Audience of access tokens when the login names none. Default: `<base>/userinfo`.
    pub default_audience: Option<String>,
    pub clients: Vec<ClientConfig>,
    pub factors: Factors,
    /// Issue a recovery code on a user's first enrollment.
    pub recovery_codes: bool,
    /// Users that exist from the start (more can be made with `POST /__control/users`).
    pub users: Vec<UserConfig>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// `None`: a public client (no client authentication).
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default = "all_grants")]
    pub grant_types: Vec<String>,
    /// PEM public key (`BEGIN PUBLIC KEY`; RSA, EC P-256 or P-384) for `private_key_jwt`:
    /// the client may then authenticate with a signed `client_assertion` (RFC 7523).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Factors {
    pub otp: bool,
    pub sms: bool,
    pub voice: bool,
    pub email: bool,
    /// Guardian push (`oob_channels: [auth0]`), answered through the control API.
    pub push: bool,
    /// With SMS and voice both on, a phone enrollment creates the pair `sms|dev_X` and
    /// `voice|dev_X`, confirmed and deleted together, as Auth0 does.
    pub pair_sms_voice: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    pub password: String,
    /// Whether the user must pass MFA (`mfa_required`) on login.
    #[serde(default = "yes")]
    pub mfa: bool,
    /// Authenticators the user starts with, already confirmed (active), so an
    /// application's own tests can log in deterministically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authenticators: Vec<SeededAuthenticator>,
    /// A known recovery code (24 letters and digits) the user starts with; it rotates on
    /// use like any other. Needs at least one authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// An authenticator a configured user starts with (active).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SeededAuthenticator {
    /// TOTP with a known base32 secret (at least 128 bits: 26 or more characters).
    Otp { secret: String },
    /// SMS to an E.164 number (with voice as its pair when both factors are on and paired).
    Sms { phone_number: String },
    /// Voice calls to an E.164 number (paired with SMS like an enrollment).
    Voice { phone_number: String },
    /// Codes by email.
    Email { email: String },
    /// Guardian push, approved through the control API.
    Push {
        #[serde(default)]
        device_name: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Failed MFA codes a user may make before `too_many_attempts` (token bucket size).
    pub failed_codes: u32,
    /// One failed-code allowance comes back every this many seconds.
    pub failed_code_refill_seconds: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Authenticators a user may hold (active or not) before enrolling is refused.
    pub max_authenticators: usize,
    /// Seconds a client has to send a request's whole head; a client that never finishes
    /// (a stalled or slowloris client) is disconnected instead of holding the connection.
    pub header_read_timeout_seconds: u64,
    /// A push is polled at most once per this many seconds; faster polls get `slow_down`.
    pub push_poll_interval_seconds: u64,
}

fn yes() -> bool {
    true
}

fn all_grants() -> Vec<String> {
    ALL_GRANTS.iter().map(|g| g.to_string()).collect()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tenant_name: "mfa-conform".into(),
            realm: DEFAULT_REALM.into(),
            public_url: None,
            default_audience: None,
            clients: vec![
                ClientConfig {
                    client_id: DEFAULT_CLIENT_ID.into(),
                    client_secret: Some(DEFAULT_CLIENT_SECRET.into()),
                    grant_types: all_grants(),
                    public_key_pem: None,
                },
                ClientConfig {
                    client_id: "mfa-conform-public".into(),
                    client_secret: None,
                    grant_types: all_grants(),
                    public_key_pem: None,
                },
                // A client without the MFA grants, for `unauthorized_client` checks.
                ClientConfig {
                    client_id: "mfa-conform-no-mfa".into(),
                    client_secret: Some("mfa-conform-no-mfa-secret".into()),
                    grant_types: vec![GRANT_PASSWORD.into(), GRANT_PASSWORD_REALM.into()],
                    public_key_pem: None,
                },
            ],
            factors: Factors::default(),
            recovery_codes: true,
            users: Vec::new(),
            limits: Limits::default(),
        }
    }
}

impl Default for Factors {
    fn default() -> Self {
        Factors {
            otp: true,
            sms: true,
            voice: true,
            email: true,
            push: true,
            pair_sms_voice: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            failed_codes: 10,
            failed_code_refill_seconds: 360,
            max_body_bytes: 64 * 1024,
            max_authenticators: 51,
            header_read_timeout_seconds: 30,
            push_poll_interval_seconds: 5,
        }
    }
}

impl UserConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for authenticator in &self.authenticators {
            match authenticator {
                SeededAuthenticator::Otp { secret } => {
                    crate::totp::code_at(secret, 0)
                        .map_err(|e| anyhow::anyhow!("otp secret: {e}"))?;
                }
                SeededAuthenticator::Sms { phone_number }
                | SeededAuthenticator::Voice { phone_number } => anyhow::ensure!(
                    super::store::is_e164(phone_number),
                    "phone_number {phone_number:?} is not in E.164 format (+15551234567)"
                ),
                SeededAuthenticator::Email { email } => anyhow::ensure!(
                    super::store::is_email(email),
                    "email {email:?} is not a valid address"
                ),
                SeededAuthenticator::Push { .. } => {}
            }
        }
        if let Some(code) = &self.recovery_code {
            anyhow::ensure!(
                code.len() == 24 && code.bytes().all(|b| b.is_ascii_alphanumeric()),
                "recovery_code must be 24 letters and digits"
            );
            anyhow::ensure!(
                !self.authenticators.is_empty(),
                "a recovery_code needs at least one authenticator"
            );
        }
        Ok(())
    }
}

impl ServerConfig {
    /// Reads a YAML configuration file; missing keys take their defaults.
    pub fn load(path: &Path) -> anyhow::Result<ServerConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<ServerConfig> {
        let config: ServerConfig = serde_saphyr::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        for client in &self.clients {
            if let Some(pem) = &client.public_key_pem {
                super::client_auth::ClientKey::from_pem(pem).map_err(|e| {
                    anyhow::anyhow!("client {}: public_key_pem: {e}", client.client_id)
                })?;
            }
            for grant in &client.grant_types {
                anyhow::ensure!(
                    ALL_GRANTS.contains(&grant.as_str()),
                    "client {}: unknown grant type {grant:?} (known: {})",
                    client.client_id,
                    ALL_GRANTS.join(", ")
                );
            }
        }
        let mut usernames = std::collections::HashSet::new();
        for user in &self.users {
            anyhow::ensure!(
                usernames.insert(user.username.as_str()),
                "user {:?} is listed twice",
                user.username
            );
            user.validate()
                .map_err(|e| anyhow::anyhow!("user {:?}: {e}", user.username))?;
        }
        anyhow::ensure!(
            self.limits.failed_codes > 0,
            "limits.failed_codes must be > 0"
        );
        anyhow::ensure!(
            self.limits.failed_code_refill_seconds > 0,
            "limits.failed_code_refill_seconds must be > 0"
        );
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("public_url {url:?} is not a URL: {e}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "public_url must be http or https"
            );
        }
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(ServerConfig::parse("{}").unwrap(), ServerConfig::default());
    }

    #[test]
    fn partial_file_overrides_only_what_it_names() {
        let config = ServerConfig::parse(
            "recovery_codes: false\nfactors: {sms: false}\nclients:\n  - client_id: x\n",
        )
        .unwrap();
        assert!(!config.recovery_codes);
        assert!(!config.factors.sms && config.factors.otp);
        assert_eq!(config.clients.len(), 1);
        assert_eq!(config.clients[0].grant_types.len(), 5);
        assert_eq!(config.clients[0].client_secret, None);
    }

    #[test]
    fn unknown_keys_and_grants_are_errors() {
        let err = ServerConfig::parse("recovery_code: false").unwrap_err();
        assert!(err.to_string().contains("recovery_code"), "{err}");
        let err =
            ServerConfig::parse("clients: [{client_id: a, grant_types: [implicit]}]").unwrap_err();
        assert!(err.to_string().contains("unknown grant type"), "{err}");
    }

    #[test]
    fn users_can_start_with_authenticators() {
        let config = ServerConfig::parse(
            r#"
users:
  - username: a@example.com
    password: pw
    authenticators:
      - {type: otp, secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}
      - {type: sms, phone_number: "+15551234567"}
      - {type: email, email: a@example.com}
      - {type: push, device_name: Phone}
    recovery_code: ABCDEFGHIJKLMNOPQRSTUVWX
"#,
        )
        .unwrap();
        let user = &config.users[0];
        assert!(user.mfa);
        assert_eq!(user.authenticators.len(), 4);
        assert_eq!(
            user.authenticators[3],
            SeededAuthenticator::Push {
                device_name: Some("Phone".into())
            }
        );
        for (bad, expected) in [
            ("[{type: otp, secret: JBSWY3DPEHPK3PXP}]", "too short"),
            ("[{type: otp, secret: not-base32!}]", "base32"),
            ("[{type: sms, phone_number: \"555\"}]", "E.164"),
            ("[{type: email, email: nope}]", "email"),
            ("[{type: fax, number: 1}]", "fax"),
            (
                "[{type: sms, phone_number: \"+15551234567\", extra: 1}]",
                "extra",
            ),
        ] {
            let text = format!("users: [{{username: u, password: p, authenticators: {bad}}}]");
            let err = format!("{:#}", ServerConfig::parse(&text).unwrap_err());
            assert!(err.contains(expected), "{bad}: {err}");
        }
        let err = ServerConfig::parse(
            "users: [{username: u, password: p, recovery_code: ABCDEFGHIJKLMNOPQRSTUVWX}]",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("at least one authenticator"),
            "{err}"
        );
        let err = ServerConfig::parse(
            "users: [{username: u, password: p, authenticators: [{type: push}], recovery_code: short}]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("24"), "{err}");
        let err =
            ServerConfig::parse("users: [{username: u, password: p}, {username: u, password: q}]")
                .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn client_keys_must_parse() {
        let err =
            ServerConfig::parse("clients: [{client_id: a, public_key_pem: nope}]").unwrap_err();
        assert!(err.to_string().contains("public_key_pem"), "{err}");
    }
}

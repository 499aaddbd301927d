//! The store's records (users, authenticators, sessions, transactions) and the values it
//! answers with (associations, challenges, list entries, grants).

use super::limiter::TokenBucket;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
    Email,
    /// Push notifications to the Guardian app.
    Auth0,
}

impl Channel {
    pub(super) fn parse(name: &str) -> Option<Channel> {
        match name {
            "sms" => Some(Channel::Sms),
            "voice" => Some(Channel::Voice),
            "email" => Some(Channel::Email),
            "auth0" => Some(Channel::Auth0),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Email => "email",
            Channel::Auth0 => "auth0",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Factor {
    Otp {
        secret: String,
        last_step: Option<u64>,
    },
    /// SMS, voice or email: a code is delivered to `to`.
    Oob { channel: Channel, to: String },
    /// Guardian push: the device answers; named once an enrollment is approved.
    Push { device_name: Option<String> },
}

#[derive(Debug, Clone)]
pub(super) struct Authenticator {
    pub(super) id: String,
    pub(super) factor: Factor,
    pub(super) active: bool,
}

#[derive(Debug, Clone)]
pub(super) struct RecoveryCode {
    pub(super) id: String,
    pub(super) code: String,
}

#[derive(Debug, Clone)]
pub(super) struct User {
    pub(super) id: String,
    pub(super) username: String,
    pub(super) password: String,
    pub(super) mfa: bool,
    pub(super) authenticators: Vec<Authenticator>,
    pub(super) recovery: Option<RecoveryCode>,
    pub(super) limiter: TokenBucket,
}

impl User {
    pub(super) fn has_active_factor(&self) -> bool {
        self.authenticators.iter().any(|a| a.active)
    }
}

/// What an `mfa_token` stands for.
#[derive(Debug, Clone)]
pub struct MfaSession {
    pub user_id: String,
    pub client_id: String,
    pub audience: Option<String>,
    pub scope: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub(super) struct OobTransaction {
    pub(super) user_id: String,
    pub(super) authenticator_id: String,
    /// The `mfa_token` of the login that obtained the `oob_code`, which alone may redeem
    /// it; `None` for an enrollment made with an `/mfa/` access token (any login of the
    /// user confirms it).
    pub(super) mfa_token: Option<String>,
    pub(super) kind: OobKind,
    pub(super) expires_at: i64,
    pub(super) used: bool,
}

/// How an out-of-band transaction is completed.
#[derive(Debug, Clone)]
pub(super) enum OobKind {
    /// SMS, voice, email: the delivered code comes back as `binding_code`.
    Code { binding_code: String },
    /// Guardian push: the device approves or rejects; the client polls.
    Push {
        /// `Some(true)` approved, `Some(false)` rejected, `None` not answered yet.
        answer: Option<bool>,
        /// When the client last polled (for `slow_down`).
        last_poll: Option<i64>,
        /// The enrollment transaction of a push enrollment (in its `barcode_uri`).
        enrollment_tx_id: Option<String>,
    },
}

/// A code "delivered" to a phone or mailbox, readable through the control API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub channel: Channel,
    pub code: String,
}

/// A completed second factor: what the token endpoint needs to issue tokens.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub username: String,
    pub client_id: String,
    pub audience: Option<String>,
    pub scope: String,
    /// A fresh recovery code (only after `mfa-recovery-code`).
    pub recovery_code: Option<String>,
}

/// Outcome of a password check.
pub enum Login {
    /// The user must pass MFA: the `mfa_token` to return in `mfa_required`.
    MfaRequired(String),
    /// No MFA for this user: issue tokens at once.
    Granted(Grant),
}

/// What `/mfa/associate` was asked for.
#[derive(Debug, Clone)]
pub enum Enrollment {
    Otp,
    Oob {
        channel: Channel,
        to: String,
    },
    /// Guardian push; `base_url` is where the app would register (in the `barcode_uri`).
    Push {
        base_url: String,
    },
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Association {
    Otp {
        authenticator_type: &'static str,
        secret: String,
        barcode_uri: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes: Option<Vec<String>>,
    },
    Oob {
        authenticator_type: &'static str,
        binding_method: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes: Option<Vec<String>>,
        oob_channel: Channel,
        oob_code: String,
    },
    /// No `binding_method`: the device answers, the user types nothing.
    Push {
        authenticator_type: &'static str,
        barcode_uri: String,
        oob_channel: Channel,
        oob_code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes: Option<Vec<String>>,
    },
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Challenge {
    Otp {
        challenge_type: &'static str,
    },
    Oob {
        challenge_type: &'static str,
        oob_code: String,
        binding_method: &'static str,
    },
    /// A push sent to the device: `{"challenge_type": "oob", "oob_code": ...}`.
    Push {
        challenge_type: &'static str,
        oob_code: String,
    },
}

/// One entry of `GET /mfa/authenticators`.
#[derive(Debug, Serialize, PartialEq)]
pub struct AuthenticatorView {
    pub id: String,
    pub authenticator_type: &'static str,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Which kinds of challenge a `/mfa/challenge` caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeTypes {
    pub otp: bool,
    pub oob: bool,
}

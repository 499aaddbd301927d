//! The reference server's state and the MFA rules that act on it: users, authenticators,
//! `mfa_token` sessions, out-of-band transactions, delivered messages and attempt limits.
//!
//! Everything lives behind one mutex held for microseconds (crypto happens outside it), so
//! every one-time rule (a TOTP step, an `oob_code`, a recovery code) is one-time under any
//! concurrency: check and consume happen in the same critical section.

use super::config::{Factors, Limits};
use super::error::ApiError;
use super::random;
use crate::totp;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use subtle::ConstantTimeEq;

/// Lifetime of an `mfa_token` (fact sheet §6: 10 minutes).
pub const MFA_TOKEN_SECONDS: i64 = 600;
/// Lifetime of an SMS/voice/email code and its `oob_code` (§6: 5 minutes).
pub const OOB_CODE_SECONDS: i64 = 300;
/// Messages kept per recipient for the control API.
const MESSAGES_PER_RECIPIENT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
    Email,
}

impl Channel {
    fn parse(name: &str) -> Option<Channel> {
        match name {
            "sms" => Some(Channel::Sms),
            "voice" => Some(Channel::Voice),
            "email" => Some(Channel::Email),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Email => "email",
        }
    }
}

#[derive(Debug, Clone)]
enum Factor {
    Otp {
        secret: String,
        last_step: Option<u64>,
    },
    Oob {
        channel: Channel,
        to: String,
    },
}

#[derive(Debug, Clone)]
struct Authenticator {
    id: String,
    factor: Factor,
    active: bool,
}

#[derive(Debug, Clone)]
struct RecoveryCode {
    id: String,
    code: String,
}

/// Failed-code limiter: a token bucket (Auth0: 10 attempts, one back every 6 minutes).
#[derive(Debug, Clone)]
struct TokenBucket {
    tokens: f64,
    updated: i64,
}

impl TokenBucket {
    fn full(limits: &Limits, now: i64) -> Self {
        TokenBucket {
            tokens: limits.failed_codes as f64,
            updated: now,
        }
    }

    fn refill(&mut self, limits: &Limits, now: i64) {
        let elapsed = (now - self.updated).max(0) as f64;
        self.tokens = (self.tokens + elapsed / limits.failed_code_refill_seconds as f64)
            .min(limits.failed_codes as f64);
        self.updated = now;
    }

    fn exhausted(&mut self, limits: &Limits, now: i64) -> bool {
        self.refill(limits, now);
        self.tokens < 1.0
    }

    fn consume(&mut self, limits: &Limits, now: i64) {
        self.refill(limits, now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    username: String,
    password: String,
    mfa: bool,
    authenticators: Vec<Authenticator>,
    recovery: Option<RecoveryCode>,
    limiter: TokenBucket,
}

impl User {
    fn has_active_factor(&self) -> bool {
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
struct OobTransaction {
    user_id: String,
    authenticator_id: String,
    binding_code: String,
    expires_at: i64,
    used: bool,
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
    Oob { channel: Channel, to: String },
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

pub struct Store {
    users: HashMap<String, User>,
    usernames: HashMap<String, String>,
    sessions: HashMap<String, MfaSession>,
    oob: HashMap<String, OobTransaction>,
    messages: HashMap<String, VecDeque<Message>>,
    limits: Limits,
    factors: Factors,
    recovery_codes: bool,
    tenant_name: String,
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn wrong_credentials() -> ApiError {
    ApiError::invalid_grant("Wrong email or password.")
}

fn mask_phone(phone: &str) -> String {
    let keep = phone.len().saturating_sub(4);
    format!("{}{}", "X".repeat(keep), &phone[keep..])
}

fn mask_email(email: &str) -> String {
    let domain = email.split_once('@').map(|(_, d)| d).unwrap_or("");
    let shown: String = domain.chars().take(4).collect();
    let hidden = domain.chars().count().saturating_sub(4);
    format!("****@{shown}{}", "*".repeat(hidden))
}

/// E.164: a `+`, then 7 to 15 digits, not starting with 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn is_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

impl Store {
    pub fn new(
        limits: Limits,
        factors: Factors,
        recovery_codes: bool,
        tenant_name: String,
    ) -> Self {
        Store {
            users: HashMap::new(),
            usernames: HashMap::new(),
            sessions: HashMap::new(),
            oob: HashMap::new(),
            messages: HashMap::new(),
            limits,
            factors,
            recovery_codes,
            tenant_name,
        }
    }

    /// Adds a user; `Err` if the username is taken.
    pub fn add_user(
        &mut self,
        username: &str,
        password: &str,
        mfa: bool,
        now: i64,
    ) -> Result<String, String> {
        if self.usernames.contains_key(username) {
            return Err(format!("user {username:?} already exists"));
        }
        let id = format!("auth0|{}", random::hex(12));
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                username: username.to_owned(),
                password: password.to_owned(),
                mfa,
                authenticators: Vec::new(),
                recovery: None,
                limiter: TokenBucket::full(&self.limits, now),
            },
        );
        self.usernames.insert(username.to_owned(), id.clone());
        Ok(id)
    }

    /// A fresh user that must pass MFA and has no authenticators (`POST /__control/users`).
    pub fn provision_user(&mut self, now: i64) -> (String, String) {
        loop {
            let username = format!("user-{}@example.com", random::hex(8));
            let password = random::password();
            if self.add_user(&username, &password, true, now).is_ok() {
                return (username, password);
            }
        }
    }

    fn user(&self, id: &str) -> Result<&User, ApiError> {
        self.users
            .get(id)
            .ok_or_else(|| ApiError::invalid_grant("The user no longer exists."))
    }

    fn user_mut(&mut self, id: &str) -> Result<&mut User, ApiError> {
        self.users
            .get_mut(id)
            .ok_or_else(|| ApiError::invalid_grant("The user no longer exists."))
    }

    /// The password and password-realm grants.
    pub fn login(
        &mut self,
        username: &str,
        password: &str,
        client_id: &str,
        audience: Option<&str>,
        scope: &str,
        now: i64,
    ) -> Result<Login, ApiError> {
        let user = self
            .usernames
            .get(username)
            .and_then(|id| self.users.get(id))
            .ok_or_else(wrong_credentials)?;
        if !ct_eq(&user.password, password) {
            return Err(wrong_credentials());
        }
        if !user.mfa {
            return Ok(Login::Granted(Grant {
                user_id: user.id.clone(),
                username: user.username.clone(),
                client_id: client_id.to_owned(),
                audience: audience.map(str::to_owned),
                scope: scope.to_owned(),
                recovery_code: None,
            }));
        }
        let token = random::expiring_token(now + MFA_TOKEN_SECONDS);
        self.sessions.insert(
            token.clone(),
            MfaSession {
                user_id: user.id.clone(),
                client_id: client_id.to_owned(),
                audience: audience.map(str::to_owned),
                scope: scope.to_owned(),
                expires_at: now + MFA_TOKEN_SECONDS,
            },
        );
        Ok(Login::MfaRequired(token))
    }

    /// The live session behind an `mfa_token`. `client_id`, when given, must be the client
    /// the token was issued to.
    pub fn session(
        &self,
        mfa_token: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<MfaSession, ApiError> {
        let Some(session) = self.sessions.get(mfa_token) else {
            // Dropped from memory after expiry: the token itself says when it expired.
            return Err(match random::token_expiry(mfa_token) {
                Some(expiry) if expiry <= now => ApiError::expired_mfa_token(),
                _ => ApiError::malformed_mfa_token(),
            });
        };
        if session.expires_at <= now {
            return Err(ApiError::expired_mfa_token());
        }
        if client_id.is_some_and(|c| c != session.client_id) {
            return Err(ApiError::invalid_grant(
                "The mfa_token was issued to another client.",
            ));
        }
        Ok(session.clone())
    }

    fn grant(
        &self,
        session: &MfaSession,
        recovery_code: Option<String>,
    ) -> Result<Grant, ApiError> {
        let user = self.user(&session.user_id)?;
        Ok(Grant {
            user_id: user.id.clone(),
            username: user.username.clone(),
            client_id: session.client_id.clone(),
            audience: session.audience.clone(),
            scope: session.scope.clone(),
            recovery_code,
        })
    }

    /// Refuses a locked-out user before looking at the code.
    fn check_not_locked(&mut self, user_id: &str, now: i64) -> Result<(), ApiError> {
        let limits = self.limits.clone();
        let user = self.user_mut(user_id)?;
        if user.limiter.exhausted(&limits, now) {
            return Err(ApiError::too_many_attempts());
        }
        Ok(())
    }

    fn record_failure(&mut self, user_id: &str, now: i64) {
        let limits = self.limits.clone();
        if let Some(user) = self.users.get_mut(user_id) {
            user.limiter.consume(&limits, now);
        }
    }

    /// The `mfa-otp` grant: a TOTP code for any of the user's OTP authenticators (a pending
    /// one is confirmed by it). Accepts the current and the previous 30-s step, and never a
    /// step at or before the last one accepted for that authenticator.
    pub fn verify_otp(
        &mut self,
        mfa_token: &str,
        client_id: &str,
        otp: &str,
        now: i64,
    ) -> Result<Grant, ApiError> {
        let session = self.session(mfa_token, Some(client_id), now)?;
        let user = self.user(&session.user_id)?;
        if !user
            .authenticators
            .iter()
            .any(|a| matches!(a.factor, Factor::Otp { .. }))
        {
            return Err(if user.has_active_factor() {
                unsupported_type("otp")
            } else {
                ApiError::not_enrolled()
            });
        }
        self.check_not_locked(&session.user_id, now)?;
        let step = totp::step_of(now.max(0) as u64);
        let user = self.user_mut(&session.user_id)?;
        let mut accepted = false;
        for authenticator in &mut user.authenticators {
            let Factor::Otp { secret, last_step } = &mut authenticator.factor else {
                continue;
            };
            let found = totp::matching_step(secret, otp, [step, step.saturating_sub(1)])
                .ok()
                .flatten();
            if let Some(found) = found
                && last_step.is_none_or(|last| found > last)
            {
                *last_step = Some(found);
                authenticator.active = true;
                accepted = true;
                break;
            }
        }
        if !accepted {
            self.record_failure(&session.user_id, now);
            return Err(ApiError::invalid_grant("Invalid otp_code."));
        }
        self.grant(&session, None)
    }

    /// The `mfa-oob` grant for SMS, voice and email: the `oob_code` from associate or
    /// challenge, and the 6-digit code the user received as `binding_code`.
    pub fn verify_oob(
        &mut self,
        mfa_token: &str,
        client_id: &str,
        oob_code: &str,
        binding_code: Option<&str>,
        now: i64,
    ) -> Result<Grant, ApiError> {
        let session = self.session(mfa_token, Some(client_id), now)?;
        let Some(transaction) = self
            .oob
            .get(oob_code)
            .filter(|t| t.user_id == session.user_id)
        else {
            return Err(match random::token_expiry(oob_code) {
                Some(expiry) if expiry <= now && !self.oob.contains_key(oob_code) => {
                    expired_oob_code()
                }
                _ => ApiError::invalid_grant("Malformed oob_code"),
            });
        };
        if transaction.used {
            return Err(ApiError::invalid_grant("Invalid oob_code."));
        }
        if transaction.expires_at <= now {
            return Err(expired_oob_code());
        }
        let binding_code = binding_code.ok_or_else(|| ApiError::missing("binding_code"))?;
        self.check_not_locked(&session.user_id, now)?;
        let transaction = self.oob.get_mut(oob_code).expect("checked above");
        if !ct_eq(&transaction.binding_code, binding_code) {
            self.record_failure(&session.user_id, now);
            return Err(ApiError::invalid_grant("Invalid binding_code."));
        }
        transaction.used = true;
        let authenticator_id = transaction.authenticator_id.clone();
        let user = self.user_mut(&session.user_id)?;
        if !user.authenticators.iter().any(|a| a.id == authenticator_id) {
            return Err(ApiError::invalid_grant(
                "The authenticator no longer exists.",
            ));
        }
        for authenticator in &mut user.authenticators {
            if authenticator.id == authenticator_id
                || phone_pair(&authenticator.id, &authenticator_id)
            {
                authenticator.active = true;
            }
        }
        self.grant(&session, None)
    }

    /// The `mfa-recovery-code` grant: single use, answered with a fresh code that replaces it.
    pub fn verify_recovery_code(
        &mut self,
        mfa_token: &str,
        client_id: &str,
        code: &str,
        now: i64,
    ) -> Result<Grant, ApiError> {
        let session = self.session(mfa_token, Some(client_id), now)?;
        let user = self.user(&session.user_id)?;
        if user.recovery.is_none() || !user.has_active_factor() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unsupported_challenge_type",
                "User does not have a recovery-code.",
            ));
        }
        self.check_not_locked(&session.user_id, now)?;
        let user = self.user_mut(&session.user_id)?;
        let recovery = user.recovery.as_mut().expect("checked above");
        let normalised: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !ct_eq(&recovery.code, &normalised) {
            self.record_failure(&session.user_id, now);
            return Err(ApiError::invalid_grant("Invalid recovery_code."));
        }
        let fresh = random::recovery_code();
        recovery.code = fresh.clone();
        self.grant(&session, Some(fresh))
    }

    /// `/mfa/associate`. `via_mfa_token`: the caller used an `mfa_token`, which is only
    /// allowed while the user has no active authenticator.
    pub fn associate(
        &mut self,
        user_id: &str,
        via_mfa_token: bool,
        enrollment: Enrollment,
        now: i64,
    ) -> Result<Association, ApiError> {
        let factor_enabled = match &enrollment {
            Enrollment::Otp => ("otp", self.factors.otp),
            Enrollment::Oob { channel, .. } => (
                channel.as_str(),
                match channel {
                    Channel::Sms => self.factors.sms,
                    Channel::Voice => self.factors.voice,
                    Channel::Email => self.factors.email,
                },
            ),
        };
        if !factor_enabled.1 {
            return Err(ApiError::invalid_request(format!(
                "The {} factor is not enabled for this tenant.",
                factor_enabled.0
            )));
        }
        let recovery_enabled = self.recovery_codes;
        let pair_phones = self.factors.sms && self.factors.voice && self.factors.pair_sms_voice;
        let max = self.limits.max_authenticators;
        let tenant = self.tenant_name.clone();
        let user = self.user_mut(user_id)?;
        if via_mfa_token && user.has_active_factor() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                "User is already enrolled.",
            ));
        }
        if user.authenticators.len() >= max {
            return Err(ApiError::invalid_request(format!(
                "The user already has {max} authenticators; delete one before enrolling another."
            )));
        }
        let first = user.authenticators.is_empty() && user.recovery.is_none();
        let recovery_codes = (first && recovery_enabled).then(|| {
            let code = random::recovery_code();
            user.recovery = Some(RecoveryCode {
                id: format!("recovery-code|dev_{}", random::device_suffix()),
                code: code.clone(),
            });
            vec![code]
        });
        match enrollment {
            Enrollment::Otp => {
                let secret = totp::generate_secret();
                let barcode_uri = otpauth_uri(&tenant, &user.username, &secret);
                user.authenticators.push(Authenticator {
                    id: format!("totp|dev_{}", random::device_suffix()),
                    factor: Factor::Otp {
                        secret: secret.clone(),
                        last_step: None,
                    },
                    active: false,
                });
                Ok(Association::Otp {
                    authenticator_type: "otp",
                    secret,
                    barcode_uri,
                    recovery_codes,
                })
            }
            Enrollment::Oob { channel, to } => {
                let suffix = random::device_suffix();
                let authenticator_id = format!("{}|dev_{suffix}", channel.as_str());
                user.authenticators.push(Authenticator {
                    id: authenticator_id.clone(),
                    factor: Factor::Oob {
                        channel,
                        to: to.clone(),
                    },
                    active: false,
                });
                // With SMS and voice both enabled, a phone enrollment makes the pair
                // `sms|dev_X` and `voice|dev_X` (fact sheet §3.2); they live and die together.
                if let Some(partner) = phone_partner(channel).filter(|_| pair_phones) {
                    user.authenticators.push(Authenticator {
                        id: format!("{}|dev_{suffix}", partner.as_str()),
                        factor: Factor::Oob {
                            channel: partner,
                            to: to.clone(),
                        },
                        active: false,
                    });
                }
                let user_id = user.id.clone();
                let oob_code = self.send_code(&user_id, &authenticator_id, channel, &to, now);
                Ok(Association::Oob {
                    authenticator_type: "oob",
                    binding_method: "prompt",
                    recovery_codes,
                    oob_channel: channel,
                    oob_code,
                })
            }
        }
    }

    /// Starts an out-of-band transaction and "delivers" its 6-digit code.
    fn send_code(
        &mut self,
        user_id: &str,
        authenticator_id: &str,
        channel: Channel,
        to: &str,
        now: i64,
    ) -> String {
        let oob_code = random::expiring_token(now + OOB_CODE_SECONDS);
        let code = random::six_digits();
        self.oob.insert(
            oob_code.clone(),
            OobTransaction {
                user_id: user_id.to_owned(),
                authenticator_id: authenticator_id.to_owned(),
                binding_code: code.clone(),
                expires_at: now + OOB_CODE_SECONDS,
                used: false,
            },
        );
        let inbox = self.messages.entry(to.to_owned()).or_default();
        if inbox.len() == MESSAGES_PER_RECIPIENT {
            inbox.pop_front();
        }
        inbox.push_back(Message {
            to: to.to_owned(),
            channel,
            code,
        });
        oob_code
    }

    /// `/mfa/challenge`.
    pub fn challenge(
        &mut self,
        mfa_token: &str,
        client_id: &str,
        types: ChallengeTypes,
        authenticator_id: Option<&str>,
        now: i64,
    ) -> Result<Challenge, ApiError> {
        let session = self.session(mfa_token, Some(client_id), now)?;
        let user = self.user(&session.user_id)?;
        if !user.has_active_factor() {
            return Err(ApiError::not_enrolled());
        }
        let allowed = |a: &&Authenticator| match a.factor {
            Factor::Otp { .. } => types.otp,
            Factor::Oob { .. } => types.oob,
        };
        let chosen = match authenticator_id {
            Some(id) => {
                let found = user
                    .authenticators
                    .iter()
                    .find(|a| a.active && a.id == id)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_authenticator",
                            "The authenticator_id does not name an active authenticator of this user.",
                        )
                    })?;
                Some(found).filter(allowed)
            }
            None => user
                .authenticators
                .iter()
                .filter(|a| a.active)
                .find(allowed),
        };
        let wanted = match (types.otp, types.oob) {
            (true, false) => "otp",
            (false, true) => "oob",
            _ => "otp oob",
        };
        let chosen = chosen.ok_or_else(|| unsupported_type(wanted))?.clone();
        match chosen.factor {
            Factor::Otp { .. } => Ok(Challenge::Otp {
                challenge_type: "otp",
            }),
            Factor::Oob { channel, to } => {
                let oob_code = self.send_code(&session.user_id, &chosen.id, channel, &to, now);
                Ok(Challenge::Oob {
                    challenge_type: "oob",
                    oob_code,
                    binding_method: "prompt",
                })
            }
        }
    }

    /// `GET /mfa/authenticators`.
    pub fn list(&self, user_id: &str) -> Result<Vec<AuthenticatorView>, ApiError> {
        let user = self.user(user_id)?;
        let mut views: Vec<AuthenticatorView> = user
            .authenticators
            .iter()
            .map(|a| match &a.factor {
                Factor::Otp { .. } => AuthenticatorView {
                    id: a.id.clone(),
                    authenticator_type: "otp",
                    active: a.active,
                    oob_channel: None,
                    name: None,
                },
                Factor::Oob { channel, to } => AuthenticatorView {
                    id: a.id.clone(),
                    authenticator_type: "oob",
                    active: a.active,
                    oob_channel: Some(*channel),
                    name: Some(match channel {
                        Channel::Email => mask_email(to),
                        Channel::Sms | Channel::Voice => mask_phone(to),
                    }),
                },
            })
            .collect();
        if let Some(recovery) = &user.recovery {
            views.push(AuthenticatorView {
                id: recovery.id.clone(),
                authenticator_type: "recovery-code",
                active: user.has_active_factor(),
                oob_channel: None,
                name: None,
            });
        }
        Ok(views)
    }

    /// `DELETE /mfa/authenticators/{id}`: 404 for an id the user does not have.
    pub fn delete(&mut self, user_id: &str, authenticator_id: &str) -> Result<(), ApiError> {
        let user = self.user_mut(user_id)?;
        let before = user.authenticators.len();
        let mut removed = Vec::new();
        user.authenticators.retain(|a| {
            let gone = a.id == authenticator_id || phone_pair(&a.id, authenticator_id);
            if gone {
                removed.push(a.id.clone());
            }
            !gone
        });
        if user.authenticators.len() < before {
            self.oob
                .retain(|_, t| !removed.contains(&t.authenticator_id));
            return Ok(());
        }
        if user
            .recovery
            .as_ref()
            .is_some_and(|r| r.id == authenticator_id)
        {
            user.recovery = None;
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Authenticator does not exist.",
        ))
    }

    /// Messages delivered to a phone number or email address, oldest first.
    pub fn messages(&self, to: &str) -> Vec<Message> {
        self.messages
            .get(to)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops expired sessions and transactions, so memory stays bounded on long runs.
    pub fn purge_expired(&mut self, now: i64) {
        self.sessions.retain(|_, s| s.expires_at > now);
        self.oob.retain(|_, t| t.expires_at > now);
    }

    /// Whether `user_id` still exists (tokens outlive deleted users otherwise).
    pub fn user_exists(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.users.len(), self.sessions.len(), self.oob.len())
    }
}

/// The other half of an SMS/voice pair.
fn phone_partner(channel: Channel) -> Option<Channel> {
    match channel {
        Channel::Sms => Some(Channel::Voice),
        Channel::Voice => Some(Channel::Sms),
        Channel::Email => None,
    }
}

/// Whether two distinct ids are the `sms|dev_X` / `voice|dev_X` halves of one phone.
fn phone_pair(a: &str, b: &str) -> bool {
    let split = |id: &str| {
        id.split_once('|')
            .map(|(kind, suffix)| (kind.to_owned(), suffix.to_owned()))
    };
    match (split(a), split(b)) {
        (Some((ka, sa)), Some((kb, sb))) => {
            sa == sb
                && ka != kb
                && ["sms", "voice"].contains(&ka.as_str())
                && ["sms", "voice"].contains(&kb.as_str())
        }
        _ => false,
    }
}

fn expired_oob_code() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "expired_token",
        "oob_code is expired",
    )
}

fn unsupported_type(types: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unsupported_challenge_type",
        format!(
            "User does not have any enrolled authenticator with the supported challenge type ({types})"
        ),
    )
}

/// `otpauth://totp/<Tenant>:<user>?secret=…&issuer=<Tenant>&algorithm=SHA1&digits=6&period=30`,
/// the shape Auth0 returns (percent-encoded label and issuer).
fn otpauth_uri(tenant: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(tenant),
        enc(account),
        enc(tenant),
        totp::DIGITS,
        totp::STEP_SECONDS
    )
}

/// Parses the `/mfa/associate` body into an [`Enrollment`].
pub fn parse_enrollment(
    types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    phone_number: Option<&str>,
    email: Option<&str>,
) -> Result<Enrollment, ApiError> {
    let types = types.ok_or_else(|| ApiError::missing("authenticator_types"))?;
    match types.as_slice() {
        [t] if t == "otp" => Ok(Enrollment::Otp),
        [t] if t == "oob" => {
            let channels = channels.ok_or_else(|| ApiError::missing("oob_channels"))?;
            let [name] = channels.as_slice() else {
                return Err(ApiError::invalid_request(
                    "oob_channels must name exactly one channel",
                ));
            };
            let channel = Channel::parse(name).ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "Unsupported oob_channel {name:?}: this server supports sms, voice and email"
                ))
            })?;
            let to = match channel {
                Channel::Sms | Channel::Voice => {
                    let phone = phone_number.ok_or_else(|| ApiError::missing("phone_number"))?;
                    if !is_e164(phone) {
                        return Err(ApiError::invalid_request(
                            "phone_number must be in E.164 format, e.g. +15551234567",
                        ));
                    }
                    phone
                }
                Channel::Email => {
                    let email = email.ok_or_else(|| ApiError::missing("email"))?;
                    if !is_email(email) {
                        return Err(ApiError::invalid_request("email is not a valid address"));
                    }
                    email
                }
            };
            Ok(Enrollment::Oob {
                channel,
                to: to.to_owned(),
            })
        }
        _ => Err(ApiError::invalid_request(
            "authenticator_types must be [\"otp\"] or [\"oob\"]",
        )),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

//! The reference server's state and the MFA rules that act on it: users, authenticators,
//! `mfa_token` sessions, out-of-band transactions, delivered messages and attempt limits.
//!
//! Everything lives behind one mutex held for microseconds (crypto happens outside it), so
//! every one-time rule (a TOTP step, an `oob_code`, a recovery code) is one-time under any
//! concurrency: check and consume happen in the same critical section.
//!
//! By concern: [`model`] (the records and the answers), [`limiter`] (failed-code bucket),
//! [`enroll`] (`/mfa/associate`), [`oob`] (out-of-band codes: delivery, challenge, the
//! `mfa-oob` grant), [`push`] (Guardian push transactions), [`verify`] (the `mfa-otp` and `mfa-recovery-code` grants) and
//! [`manage`] (listing and deleting authenticators) and [`seed`] (configured users).

mod enroll;
mod limiter;
mod manage;
mod model;
mod oob;
mod push;
mod seed;
mod verify;

pub use enroll::{is_e164, is_email, parse_enrollment};
pub use model::{
    Association, AuthenticatorView, Challenge, ChallengeTypes, Channel, Enrollment, Grant, Login,
    Message, MfaSession,
};
pub use push::{DEFAULT_DEVICE_NAME, PushAnswer, PushRef};

use super::client_auth;
use super::config::{Factors, Limits};
use super::error::ApiError;
use super::random;
use axum::http::StatusCode;
use limiter::TokenBucket;
use model::{OobTransaction, User};
use std::collections::{HashMap, VecDeque};
use subtle::ConstantTimeEq;

/// Lifetime of an `mfa_token`: 10 minutes, as documented by Auth0.
pub const MFA_TOKEN_SECONDS: i64 = 600;
/// Lifetime of an SMS/voice/email code and its `oob_code` (5 minutes, as documented).
pub const OOB_CODE_SECONDS: i64 = 300;
/// Messages kept per recipient for the control API.
const MESSAGES_PER_RECIPIENT: usize = 100;

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
    /// `client_assertion` ids seen, by client and `jti`, until the assertion expires.
    assertions: HashMap<(String, String), i64>,
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn wrong_credentials() -> ApiError {
    ApiError::invalid_grant("Wrong email or password.")
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
            assertions: HashMap::new(),
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

    pub fn messages(&self, to: &str) -> Vec<Message> {
        self.messages
            .get(to)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops expired sessions and transactions, so memory stays bounded on long runs.
    pub fn purge_expired(&mut self, now: i64) {
        self.assertions
            .retain(|_, exp| *exp + client_auth::LEEWAY_SECONDS > now);
        self.sessions.retain(|_, s| s.expires_at > now);
        self.oob.retain(|_, t| t.expires_at > now);
    }

    /// Records a `client_assertion`'s `jti`; `false` if the client already used it while
    /// it was alive (a replay).
    pub fn remember_assertion(&mut self, client_id: &str, jti: &str, exp: i64, now: i64) -> bool {
        let key = (client_id.to_owned(), jti.to_owned());
        match self.assertions.get(&key) {
            Some(seen) if *seen + client_auth::LEEWAY_SECONDS > now => false,
            _ => {
                self.assertions.insert(key, exp);
                true
            }
        }
    }

    /// Whether `user_id` still exists (tokens outlive deleted users otherwise).
    pub fn user_exists(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.users.len(), self.sessions.len(), self.oob.len())
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transaction_tests;

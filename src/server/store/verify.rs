//! The `mfa-otp` and `mfa-recovery-code` grants.

use super::model::Factor;
use super::{Store, ct_eq, unsupported_type};
use crate::server::error::ApiError;
use crate::server::random;
use crate::totp;
use axum::http::StatusCode;

use super::Grant;

impl Store {
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
}

//! Out-of-band codes: delivery to a phone or mailbox, `/mfa/challenge`, and the `mfa-oob`
//! grant that checks them (push transactions are in [`super::push`]).

use super::manage::phone_pair;
use super::model::{Authenticator, Factor, OobKind, OobTransaction};
use super::{
    Challenge, ChallengeTypes, Channel, Grant, MESSAGES_PER_RECIPIENT, Message, MfaSession,
    OOB_CODE_SECONDS, Store, ct_eq, expired_oob_code, unsupported_type,
};
use crate::server::error::ApiError;
use crate::server::random;
use axum::http::StatusCode;

impl Store {
    /// The `mfa-oob` grant: the `oob_code` from associate or challenge, redeemed by the
    /// login that obtained it (or, for an enrollment made with an access token, by any
    /// login of the user). SMS, voice and email need the delivered 6-digit code as
    /// `binding_code`; a push is polled until the device answers.
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
            // Another user's code is answered like one never issued.
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
        if transaction
            .mfa_token
            .as_deref()
            .is_some_and(|bound| bound != mfa_token)
        {
            // Obtained by another login of this user: not valid for this one.
            return Err(ApiError::invalid_grant("Invalid oob_code."));
        }
        if matches!(transaction.kind, OobKind::Push { .. }) {
            return self.poll_push(&session, oob_code, now);
        }
        let binding_code = binding_code.ok_or_else(|| ApiError::missing("binding_code"))?;
        self.check_not_locked(&session.user_id, now)?;
        let transaction = self.oob.get_mut(oob_code).expect("checked above");
        let OobKind::Code { binding_code: sent } = &transaction.kind else {
            unreachable!("push handled above");
        };
        if !ct_eq(sent, binding_code) {
            self.record_failure(&session.user_id, now);
            return Err(ApiError::invalid_grant("Invalid binding_code."));
        }
        transaction.used = true;
        let authenticator_id = transaction.authenticator_id.clone();
        self.confirm_authenticator(&session, &authenticator_id)
    }

    /// Activates the authenticator a completed transaction belongs to (and its phone
    /// partner) and grants the login.
    pub(super) fn confirm_authenticator(
        &mut self,
        session: &MfaSession,
        authenticator_id: &str,
    ) -> Result<Grant, ApiError> {
        let user = self.user_mut(&session.user_id)?;
        if !user.authenticators.iter().any(|a| a.id == authenticator_id) {
            return Err(ApiError::invalid_grant(
                "The authenticator no longer exists.",
            ));
        }
        for authenticator in &mut user.authenticators {
            if authenticator.id == authenticator_id
                || phone_pair(&authenticator.id, authenticator_id)
            {
                authenticator.active = true;
            }
        }
        self.grant(session, None)
    }

    /// Starts an out-of-band transaction and "delivers" its 6-digit code. `mfa_token`: the
    /// login the `oob_code` is bound to.
    pub(super) fn send_code(
        &mut self,
        user_id: &str,
        authenticator_id: &str,
        mfa_token: Option<&str>,
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
                mfa_token: mfa_token.map(str::to_owned),
                kind: OobKind::Code {
                    binding_code: code.clone(),
                },
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
            Factor::Oob { .. } | Factor::Push { .. } => types.oob,
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
        let user_id = session.user_id.as_str();
        match chosen.factor {
            Factor::Otp { .. } => Ok(Challenge::Otp {
                challenge_type: "otp",
            }),
            Factor::Oob { channel, to } => {
                let oob_code =
                    self.send_code(user_id, &chosen.id, Some(mfa_token), channel, &to, now);
                Ok(Challenge::Oob {
                    challenge_type: "oob",
                    oob_code,
                    binding_method: "prompt",
                })
            }
            Factor::Push { .. } => {
                let oob_code = self.start_push(user_id, &chosen.id, Some(mfa_token), None, now);
                Ok(Challenge::Push {
                    challenge_type: "oob",
                    oob_code,
                })
            }
        }
    }
}

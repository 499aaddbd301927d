//! Guardian push: a transaction the device approves or rejects (through the control API,
//! standing in for the app) while the client polls the `mfa-oob` grant with its `oob_code`.
//! Polling is answered like the device flow of RFC 8628: `authorization_pending` until the
//! device answers, `slow_down` when polled faster than the interval, `access_denied` when
//! rejected, tokens once approved.

use super::model::{Factor, OobKind, OobTransaction};
use super::{Grant, MfaSession, OOB_CODE_SECONDS, Store};
use crate::server::error::ApiError;
use crate::server::random;
use axum::http::StatusCode;

/// The device name an approved enrollment gets when the approval names none.
pub const DEFAULT_DEVICE_NAME: &str = "mfa-conform device";

/// Which push transaction the device answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRef<'a> {
    /// The `oob_code` of a push challenge or enrollment.
    OobCode(&'a str),
    /// The `enrollment_tx_id` of a push enrollment's `barcode_uri`.
    EnrollmentTx(&'a str),
}

/// The device's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAnswer {
    Approve { device_name: Option<String> },
    Reject,
}

fn pending() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "authorization_pending",
        "Authorization pending: please repeat the request in a few seconds.",
    )
}

fn slow_down(interval: u64) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "slow_down",
        format!("You are polling faster than allowed. Wait {interval} seconds between requests."),
    )
}

fn rejected() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "access_denied",
        "MFA Authorization rejected.",
    )
}

impl Store {
    /// Starts a push transaction (the notification is "sent" to the device) and returns its
    /// `oob_code`, bound to `mfa_token` when one obtained it.
    pub(super) fn start_push(
        &mut self,
        user_id: &str,
        authenticator_id: &str,
        mfa_token: Option<&str>,
        enrollment_tx_id: Option<String>,
        now: i64,
    ) -> String {
        let oob_code = random::expiring_token(now + OOB_CODE_SECONDS);
        self.oob.insert(
            oob_code.clone(),
            OobTransaction {
                user_id: user_id.to_owned(),
                authenticator_id: authenticator_id.to_owned(),
                mfa_token: mfa_token.map(str::to_owned),
                kind: OobKind::Push {
                    answer: None,
                    last_poll: None,
                    enrollment_tx_id,
                },
                expires_at: now + OOB_CODE_SECONDS,
                used: false,
            },
        );
        oob_code
    }

    /// One poll of a live, unused push transaction (checked by the caller).
    pub(super) fn poll_push(
        &mut self,
        session: &MfaSession,
        oob_code: &str,
        now: i64,
    ) -> Result<Grant, ApiError> {
        let interval = self.limits.push_poll_interval_seconds;
        let transaction = self.oob.get_mut(oob_code).expect("checked by the caller");
        let OobKind::Push {
            answer, last_poll, ..
        } = &mut transaction.kind
        else {
            unreachable!("checked by the caller");
        };
        match *answer {
            None => {
                let too_fast = last_poll.is_some_and(|t| now - t < interval as i64);
                *last_poll = Some(now);
                Err(if too_fast {
                    slow_down(interval)
                } else {
                    pending()
                })
            }
            Some(false) => {
                transaction.used = true;
                Err(rejected())
            }
            Some(true) => {
                transaction.used = true;
                let authenticator_id = transaction.authenticator_id.clone();
                self.confirm_authenticator(session, &authenticator_id)
            }
        }
    }

    /// The device's answer to a push (`POST /__control/push`). An approved enrollment
    /// names the device; the authenticator becomes active when the client's next poll
    /// redeems the approval.
    pub fn answer_push(
        &mut self,
        which: PushRef<'_>,
        answer: PushAnswer,
        now: i64,
    ) -> Result<(), ApiError> {
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "No live push transaction matches.",
            )
        };
        let transaction = match which {
            PushRef::OobCode(code) => self.oob.get_mut(code),
            PushRef::EnrollmentTx(id) => self.oob.values_mut().find(
                |t| matches!(&t.kind, OobKind::Push { enrollment_tx_id: Some(tx), .. } if tx == id),
            ),
        }
        .filter(|t| t.expires_at > now)
        .ok_or_else(not_found)?;
        let OobKind::Push {
            answer: slot,
            enrollment_tx_id,
            ..
        } = &mut transaction.kind
        else {
            return Err(not_found());
        };
        if slot.is_some() || transaction.used {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_answered",
                "This push was already answered.",
            ));
        }
        *slot = Some(matches!(answer, PushAnswer::Approve { .. }));
        let enrolling = enrollment_tx_id.is_some();
        let (user_id, authenticator_id) = (
            transaction.user_id.clone(),
            transaction.authenticator_id.clone(),
        );
        if let (PushAnswer::Approve { device_name }, true) = (answer, enrolling)
            && let Some(user) = self.users.get_mut(&user_id)
            && let Some(authenticator) = user
                .authenticators
                .iter_mut()
                .find(|a| a.id == authenticator_id)
        {
            authenticator.factor = Factor::Push {
                device_name: Some(device_name.unwrap_or_else(|| DEFAULT_DEVICE_NAME.to_owned())),
            };
        }
        Ok(())
    }
}

//! `GET /mfa/authenticators` and `DELETE /mfa/authenticators/{id}`.

use super::model::Factor;
use super::{AuthenticatorView, Channel, Store};
use crate::server::error::ApiError;
use axum::http::StatusCode;

impl Store {
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
                        Channel::Sms | Channel::Voice | Channel::Auth0 => mask_phone(to),
                    }),
                },
                Factor::Push { device_name } => AuthenticatorView {
                    id: a.id.clone(),
                    authenticator_type: "oob",
                    active: a.active,
                    oob_channel: Some(Channel::Auth0),
                    name: device_name.clone(),
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
}

pub(super) fn mask_phone(phone: &str) -> String {
    let keep = phone.len().saturating_sub(4);
    format!("{}{}", "X".repeat(keep), &phone[keep..])
}

pub(super) fn mask_email(email: &str) -> String {
    let domain = email.split_once('@').map(|(_, d)| d).unwrap_or("");
    let shown: String = domain.chars().take(4).collect();
    let hidden = domain.chars().count().saturating_sub(4);
    format!("****@{shown}{}", "*".repeat(hidden))
}

/// Whether two distinct ids are the `sms|dev_X` / `voice|dev_X` halves of one phone.
pub(super) fn phone_pair(a: &str, b: &str) -> bool {
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

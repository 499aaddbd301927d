//! `/mfa/associate`: parsing the request and storing the pending authenticator.

use super::model::{Authenticator, Factor, RecoveryCode};
use super::{Association, Channel, Enrollment, Store};
use crate::server::error::ApiError;
use crate::server::random;
use crate::totp;
use axum::http::StatusCode;

impl Store {
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
}

/// The other half of an SMS/voice pair.
pub(super) fn phone_partner(channel: Channel) -> Option<Channel> {
    match channel {
        Channel::Sms => Some(Channel::Voice),
        Channel::Voice => Some(Channel::Sms),
        Channel::Email => None,
    }
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

/// E.164: a `+`, then 7 to 15 digits, not starting with 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

pub(super) fn is_email(email: &str) -> bool {
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

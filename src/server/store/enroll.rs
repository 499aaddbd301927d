//! `/mfa/associate`: parsing the request and storing the pending authenticator.

use super::model::{Authenticator, Factor, RecoveryCode};
use super::{Association, Channel, Enrollment, Store};
use crate::server::error::ApiError;
use crate::server::random;
use crate::totp;
use axum::http::StatusCode;

impl Store {
    /// `/mfa/associate`. `mfa_token`: the caller's bearer when it is an `mfa_token`, which
    /// may enroll only while the user has no active authenticator, and to which the
    /// returned `oob_code` is bound; `None` for an `/mfa/` access token.
    pub fn associate(
        &mut self,
        user_id: &str,
        mfa_token: Option<&str>,
        enrollment: Enrollment,
        now: i64,
    ) -> Result<Association, ApiError> {
        self.check_factor_enabled(&enrollment)?;
        let recovery_codes = self.admit_enrollment(user_id, mfa_token.is_some())?;
        match enrollment {
            Enrollment::Otp => self.enroll_otp(user_id, recovery_codes),
            Enrollment::Oob { channel, to } => {
                let authenticator_id = self.add_oob_authenticator(user_id, channel, &to)?;
                let oob_code =
                    self.send_code(user_id, &authenticator_id, mfa_token, channel, &to, now);
                Ok(Association::Oob {
                    authenticator_type: "oob",
                    binding_method: "prompt",
                    recovery_codes,
                    oob_channel: channel,
                    oob_code,
                })
            }
            Enrollment::Push { base_url } => {
                self.enroll_push(user_id, mfa_token, &base_url, recovery_codes, now)
            }
        }
    }

    fn check_factor_enabled(&self, enrollment: &Enrollment) -> Result<(), ApiError> {
        let (name, enabled) = match enrollment {
            Enrollment::Otp => ("otp", self.factors.otp),
            Enrollment::Push { .. } => ("push", self.factors.push),
            Enrollment::Oob { channel, .. } => (
                channel.as_str(),
                match channel {
                    Channel::Sms => self.factors.sms,
                    Channel::Voice => self.factors.voice,
                    Channel::Email => self.factors.email,
                    Channel::Auth0 => self.factors.push,
                },
            ),
        };
        if enabled {
            Ok(())
        } else {
            Err(ApiError::invalid_request(format!(
                "The {name} factor is not enabled for this tenant."
            )))
        }
    }

    /// Whether this user may enroll one more authenticator now; issues the recovery code
    /// on the first enrollment (when the tenant has them) and returns it.
    fn admit_enrollment(
        &mut self,
        user_id: &str,
        via_mfa_token: bool,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let recovery_enabled = self.recovery_codes;
        let max = self.limits.max_authenticators;
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
        Ok((first && recovery_enabled).then(|| {
            let code = random::recovery_code();
            user.recovery = Some(RecoveryCode {
                id: format!("recovery-code|dev_{}", random::device_suffix()),
                code: code.clone(),
            });
            vec![code]
        }))
    }

    fn enroll_otp(
        &mut self,
        user_id: &str,
        recovery_codes: Option<Vec<String>>,
    ) -> Result<Association, ApiError> {
        let tenant = self.tenant_name.clone();
        let user = self.user_mut(user_id)?;
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

    /// Adds a pending SMS, voice or email authenticator; returns its id. With SMS and
    /// voice both enabled, a phone enrollment makes the pair `sms|dev_X` and
    /// `voice|dev_X`, as Auth0 does; they live and die together.
    pub(super) fn add_oob_authenticator(
        &mut self,
        user_id: &str,
        channel: Channel,
        to: &str,
    ) -> Result<String, ApiError> {
        let pair_phones = self.factors.sms && self.factors.voice && self.factors.pair_sms_voice;
        let user = self.user_mut(user_id)?;
        let suffix = random::device_suffix();
        let authenticator_id = format!("{}|dev_{suffix}", channel.as_str());
        user.authenticators.push(Authenticator {
            id: authenticator_id.clone(),
            factor: Factor::Oob {
                channel,
                to: to.to_owned(),
            },
            active: false,
        });
        if let Some(partner) = phone_partner(channel).filter(|_| pair_phones) {
            user.authenticators.push(Authenticator {
                id: format!("{}|dev_{suffix}", partner.as_str()),
                factor: Factor::Oob {
                    channel: partner,
                    to: to.to_owned(),
                },
                active: false,
            });
        }
        Ok(authenticator_id)
    }

    /// A pending push authenticator and its enrollment transaction: the `barcode_uri`
    /// carries `enrollment_tx_id` and the `base_url` the app would register with; the
    /// client then polls `mfa-oob` with the `oob_code` until the device approves.
    fn enroll_push(
        &mut self,
        user_id: &str,
        mfa_token: Option<&str>,
        base_url: &str,
        recovery_codes: Option<Vec<String>>,
        now: i64,
    ) -> Result<Association, ApiError> {
        let tenant = self.tenant_name.clone();
        let user = self.user_mut(user_id)?;
        let authenticator_id = format!("push|dev_{}", random::device_suffix());
        user.authenticators.push(Authenticator {
            id: authenticator_id.clone(),
            factor: Factor::Push { device_name: None },
            active: false,
        });
        let username = user.username.clone();
        let enrollment_tx_id = random::enrollment_tx_id();
        let barcode_uri = format!(
            "otpauth://totp/{}:{}?enrollment_tx_id={enrollment_tx_id}&base_url={}",
            uri_encode(&tenant),
            uri_encode(&username),
            uri_encode(base_url)
        );
        let oob_code = self.start_push(
            user_id,
            &authenticator_id,
            mfa_token,
            Some(enrollment_tx_id),
            now,
        );
        Ok(Association::Push {
            authenticator_type: "oob",
            barcode_uri,
            oob_channel: Channel::Auth0,
            oob_code,
            recovery_codes,
        })
    }
}

/// The other half of an SMS/voice pair.
pub(super) fn phone_partner(channel: Channel) -> Option<Channel> {
    match channel {
        Channel::Sms => Some(Channel::Voice),
        Channel::Voice => Some(Channel::Sms),
        Channel::Email | Channel::Auth0 => None,
    }
}

/// `otpauth://totp/<Tenant>:<user>?secret=…&issuer=<Tenant>&algorithm=SHA1&digits=6&period=30`,
/// the shape Auth0 returns (percent-encoded label and issuer).
fn otpauth_uri(tenant: &str, account: &str, secret: &str) -> String {
    let enc = uri_encode;
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(tenant),
        enc(account),
        enc(tenant),
        totp::DIGITS,
        totp::STEP_SECONDS
    )
}

/// Percent-encodes a label or query value of an `otpauth://` URI (space as `%20`).
fn uri_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Parses the `/mfa/associate` body into an [`Enrollment`]. A push enrollment's
/// `base_url` is left empty: the caller knows the address it is served at.
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
                    "Unsupported oob_channel {name:?}: this server supports sms, voice, email and auth0"
                ))
            })?;
            let to = match channel {
                Channel::Auth0 => {
                    return Ok(Enrollment::Push {
                        base_url: String::new(),
                    });
                }
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

pub fn is_email(email: &str) -> bool {
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

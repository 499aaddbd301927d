//! Users of the configuration file, with the authenticators they start with: what lets
//! `serve` stand in for Auth0 in an application's own tests (a login with a TOTP code
//! computed from a known secret, a code read from the control API, a known recovery code).

use super::model::{Authenticator, Factor, RecoveryCode};
use super::{Channel, Store};
use crate::server::config::{SeededAuthenticator, UserConfig};
use crate::server::random;

impl Store {
    /// Adds a configured user; its authenticators are active from the start. `Err` if the
    /// username is taken.
    pub fn seed_user(&mut self, config: &UserConfig, now: i64) -> Result<String, String> {
        let user_id = self.add_user(&config.username, &config.password, config.mfa, now)?;
        for seeded in &config.authenticators {
            match seeded {
                SeededAuthenticator::Otp { secret } => self.push_active(
                    &user_id,
                    "totp",
                    Factor::Otp {
                        secret: secret.clone(),
                        last_step: None,
                    },
                ),
                SeededAuthenticator::Sms { phone_number } => {
                    self.seed_oob(&user_id, Channel::Sms, phone_number)?
                }
                SeededAuthenticator::Voice { phone_number } => {
                    self.seed_oob(&user_id, Channel::Voice, phone_number)?
                }
                SeededAuthenticator::Email { email } => {
                    self.seed_oob(&user_id, Channel::Email, email)?
                }
                SeededAuthenticator::Push { device_name } => self.push_active(
                    &user_id,
                    "push",
                    Factor::Push {
                        device_name: Some(
                            device_name
                                .clone()
                                .unwrap_or_else(|| super::DEFAULT_DEVICE_NAME.to_owned()),
                        ),
                    },
                ),
            };
        }
        if let Some(code) = &config.recovery_code {
            let user = self.users.get_mut(&user_id).expect("just added");
            user.recovery = Some(RecoveryCode {
                id: format!("recovery-code|dev_{}", random::device_suffix()),
                code: code.to_ascii_uppercase(),
            });
        }
        Ok(user_id)
    }

    fn push_active(&mut self, user_id: &str, kind: &str, factor: Factor) -> String {
        let id = format!("{kind}|dev_{}", random::device_suffix());
        let user = self.users.get_mut(user_id).expect("just added");
        user.authenticators.push(Authenticator {
            id: id.clone(),
            factor,
            active: true,
        });
        id
    }

    /// A phone or email authenticator (and its SMS/voice partner), active.
    fn seed_oob(&mut self, user_id: &str, channel: Channel, to: &str) -> Result<String, String> {
        let id = self
            .add_oob_authenticator(user_id, channel, to)
            .map_err(|e| e.description)?;
        let suffix = id.split_once('|').map(|(_, s)| s.to_owned());
        let user = self.users.get_mut(user_id).expect("just added");
        for authenticator in &mut user.authenticators {
            if authenticator.id.split_once('|').map(|(_, s)| s) == suffix.as_deref() {
                authenticator.active = true;
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CLIENT, NOW, assert_api_error, code_at};
    use super::super::{ChallengeTypes, Login};
    use super::*;
    use crate::server::config::Factors;
    use crate::server::config::Limits;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn seeded(authenticators: Vec<SeededAuthenticator>, recovery: Option<&str>) -> UserConfig {
        UserConfig {
            username: "seeded@example.com".into(),
            password: "pw".into(),
            mfa: true,
            authenticators,
            recovery_code: recovery.map(str::to_owned),
        }
    }

    fn login(store: &mut Store) -> String {
        match store.login("seeded@example.com", "pw", CLIENT, None, "", NOW) {
            Ok(Login::MfaRequired(token)) => token,
            _ => panic!("MFA is required"),
        }
    }

    #[test]
    fn seeded_authenticators_are_active_and_usable_at_once() {
        let mut store = Store::new(Limits::default(), Factors::default(), true, "T".into());
        let config = seeded(
            vec![
                SeededAuthenticator::Otp {
                    secret: SECRET.into(),
                },
                SeededAuthenticator::Sms {
                    phone_number: "+15550001111".into(),
                },
                SeededAuthenticator::Email {
                    email: "seeded@example.com".into(),
                },
                SeededAuthenticator::Push { device_name: None },
            ],
            Some("abcdefghijklmnopqrstuvwx"),
        );
        let user_id = store.seed_user(&config, NOW).unwrap();
        let list = store.list(&user_id).unwrap();
        let kinds: Vec<(&str, Option<Channel>, bool)> = list
            .iter()
            .map(|v| (v.id.split('|').next().unwrap(), v.oob_channel, v.active))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("totp", None, true),
                ("sms", Some(Channel::Sms), true),
                ("voice", Some(Channel::Voice), true),
                ("email", Some(Channel::Email), true),
                ("push", Some(Channel::Auth0), true),
                ("recovery-code", None, true),
            ]
        );

        // A TOTP code from the known secret, then the known recovery code (upper-cased).
        let token = login(&mut store);
        store
            .verify_otp(&token, CLIENT, &code_at(SECRET, NOW), NOW)
            .unwrap();
        let token = login(&mut store);
        let grant = store
            .verify_recovery_code(&token, CLIENT, "ABCDEFGHIJKLMNOPQRSTUVWX", NOW)
            .unwrap();
        assert!(grant.recovery_code.is_some());
        // A challenge reaches the seeded phone.
        let token = login(&mut store);
        let only_oob = ChallengeTypes {
            otp: false,
            oob: true,
        };
        store
            .challenge(&token, CLIENT, only_oob, None, NOW)
            .unwrap();
        assert_eq!(store.messages("+15550001111").len(), 1);
        // The user is enrolled: the mfa_token no longer enrolls.
        assert_api_error(
            store.associate(&user_id, Some(&token), super::super::Enrollment::Otp, NOW),
            403,
            "access_denied",
        );
        // Taken usernames are refused.
        assert!(store.seed_user(&config, NOW).is_err());
    }
}

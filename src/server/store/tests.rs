//! Unit tests of the [`Store`]: the MFA rules with the clock as a plain number, so step
//! boundaries, expiry instants and the limiter's refill are exact.

use super::manage::{mask_email, mask_phone};
use super::*;
use crate::totp;

/// A Unix time at the very start of a 30-s TOTP step (1_700_000_010 = 30 × 56_666_667).
pub(super) const NOW: i64 = 1_700_000_010;
pub(super) const CLIENT: &str = "client";
pub(super) const PHONE: &str = "+15551239167";

/// One authenticator per enrollment (no SMS/voice pairing), so lists are easy to read;
/// `sms_and_voice_are_enrolled_confirmed_and_deleted_as_a_pair` covers the pairing.
pub(super) fn store() -> Store {
    store_with(
        Limits::default(),
        Factors {
            pair_sms_voice: false,
            ..Factors::default()
        },
        true,
    )
}

pub(super) fn store_with(limits: Limits, factors: Factors, recovery_codes: bool) -> Store {
    Store::new(limits, factors, recovery_codes, "Test Tenant".into())
}

/// A user who must pass MFA, and the `mfa_token` of a login at `now`.
pub(super) fn user_and_token(store: &mut Store, now: i64) -> (String, String) {
    let user_id = store
        .add_user("alice@example.com", "pw", true, now)
        .unwrap();
    (user_id, login(store, "alice@example.com", now))
}

pub(super) fn login(store: &mut Store, username: &str, now: i64) -> String {
    match store.login(username, "pw", CLIENT, None, "openid", now) {
        Ok(Login::MfaRequired(token)) => token,
        Ok(Login::Granted(_)) => panic!("{username} needs no MFA"),
        Err(e) => panic!("login failed: {e}"),
    }
}

pub(super) fn code_at(secret: &str, t: i64) -> String {
    totp::code_at(secret, t as u64).unwrap()
}

/// Enrolls OTP (pending) and returns its secret. `via_mfa_token`: as the first factor.
pub(super) fn associate_otp(
    store: &mut Store,
    user_id: &str,
    mfa_token: Option<&str>,
    now: i64,
) -> String {
    match store
        .associate(user_id, mfa_token, Enrollment::Otp, now)
        .unwrap()
    {
        Association::Otp { secret, .. } => secret,
        other => panic!("not an OTP association: {other:?}"),
    }
}

/// Enrolls OTP and confirms it with the code of `now`; returns the secret.
pub(super) fn enrolled_otp(store: &mut Store, user_id: &str, mfa_token: &str, now: i64) -> String {
    let first = !store.users[user_id].has_active_factor();
    let secret = associate_otp(store, user_id, first.then_some(mfa_token), now);
    store
        .verify_otp(mfa_token, CLIENT, &code_at(&secret, now), now)
        .unwrap();
    secret
}

/// Enrolls SMS (pending) and returns the `oob_code` and the delivered code.
pub(super) fn associate_sms(
    store: &mut Store,
    user_id: &str,
    mfa_token: Option<&str>,
    now: i64,
) -> (String, String) {
    let enrollment = Enrollment::Oob {
        channel: Channel::Sms,
        to: PHONE.into(),
    };
    let oob_code = match store
        .associate(user_id, mfa_token, enrollment, now)
        .unwrap()
    {
        Association::Oob { oob_code, .. } => oob_code,
        other => panic!("not an OOB association: {other:?}"),
    };
    let code = store.messages(PHONE).last().unwrap().code.clone();
    (oob_code, code)
}

fn limiter_tokens(store: &Store, user_id: &str) -> f64 {
    store.users[user_id].limiter.tokens
}

#[track_caller]
pub(super) fn assert_api_error(
    result: Result<impl std::fmt::Debug, ApiError>,
    status: u16,
    error: &str,
) -> ApiError {
    let err = result.expect_err("an error");
    assert_eq!(err.status.as_u16(), status, "{err}");
    assert_eq!(err.error, error, "{err}");
    err
}

// --- the failed-code limiter -----------------------------------------------------------

#[test]
fn token_bucket_allows_ten_failures_then_refills_one_per_360_seconds() {
    let limits = Limits::default();
    let mut bucket = TokenBucket::full(&limits, NOW);
    assert_eq!(bucket.tokens, 10.0);
    for i in 0..10 {
        assert!(!bucket.exhausted(&limits, NOW), "attempt {i}");
        bucket.consume(&limits, NOW);
    }
    assert!(bucket.exhausted(&limits, NOW));
    assert!(bucket.clone().exhausted(&limits, NOW + 359));
    assert!(!bucket.exhausted(&limits, NOW + 360));
    bucket.consume(&limits, NOW + 360);
    assert!(bucket.exhausted(&limits, NOW + 360));
    assert!(!bucket.exhausted(&limits, NOW + 720));
}

#[test]
fn token_bucket_never_exceeds_its_size_nor_goes_negative() {
    let limits = Limits::default();
    let mut bucket = TokenBucket::full(&limits, NOW);
    bucket.refill(&limits, NOW + 100 * 360);
    assert_eq!(bucket.tokens, 10.0);
    for _ in 0..25 {
        bucket.consume(&limits, NOW + 100 * 360);
    }
    assert_eq!(bucket.tokens, 0.0);
    // Exactly one attempt after 6 minutes, however many failures came before.
    assert!(!bucket.exhausted(&limits, NOW + 101 * 360));
    // A clock that seems to go back takes nothing away.
    let before = bucket.tokens;
    bucket.refill(&limits, NOW);
    assert_eq!(bucket.tokens, before);
}

#[test]
fn token_bucket_follows_configured_limits() {
    let limits = Limits {
        failed_codes: 3,
        failed_code_refill_seconds: 10,
        ..Limits::default()
    };
    let mut bucket = TokenBucket::full(&limits, NOW);
    for _ in 0..3 {
        bucket.consume(&limits, NOW);
    }
    assert!(bucket.clone().exhausted(&limits, NOW + 9));
    bucket.refill(&limits, NOW + 25);
    assert_eq!(bucket.tokens, 2.5);
    bucket.refill(&limits, NOW + 1000);
    assert_eq!(bucket.tokens, 3.0);
}

#[test]
fn wrong_codes_lock_the_user_and_the_lock_is_checked_before_the_code() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let secret = enrolled_otp(&mut store, &user_id, &token, NOW);
    assert_eq!(
        limiter_tokens(&store, &user_id),
        10.0,
        "a right code costs nothing"
    );
    let t = NOW + 35;
    for i in 1..=10 {
        let err = assert_api_error(
            store.verify_otp(&token, CLIENT, "000000", t),
            403,
            "invalid_grant",
        );
        assert_eq!(err.description, "Invalid otp_code.");
        assert_eq!(limiter_tokens(&store, &user_id), 10.0 - i as f64);
    }
    let right = code_at(&secret, t);
    assert_api_error(
        store.verify_otp(&token, CLIENT, &right, t),
        429,
        "too_many_attempts",
    );
    // Refused before the code was looked at: it is still unused once the lock lifts.
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, t + 360), t + 360)
        .unwrap();
}

// --- masking, E.164 and e-mail checks ---------------------------------------------------

#[test]
fn phone_numbers_are_masked_but_the_last_four_digits() {
    assert_eq!(mask_phone("+15551239167"), "XXXXXXXX9167");
    assert_eq!(mask_phone("+447700900123"), "XXXXXXXXX0123");
    assert_eq!(mask_phone("+1234567"), "XXXX4567");
    // Shorter than four: nothing to hide, and no panic.
    assert_eq!(mask_phone("12"), "12");
}

#[test]
fn email_addresses_are_masked_as_auth0_does() {
    // The recorded example: `****@exam*******`.
    assert_eq!(mask_email("someone@example.com"), "****@exam*******");
    assert_eq!(mask_email("a@b.io"), "****@b.io");
    assert_eq!(mask_email("x@müller.de"), "****@müll*****");
    assert!(!mask_email("secret.name@example.com").contains("secret"));
}

#[test]
fn the_list_shows_masked_names_and_channels() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    associate_sms(&mut store, &user_id, Some(&token), NOW);
    store
        .associate(
            &user_id,
            Some(&token),
            Enrollment::Oob {
                channel: Channel::Email,
                to: "someone@example.com".into(),
            },
            NOW,
        )
        .unwrap();
    store
        .associate(
            &user_id,
            Some(&token),
            Enrollment::Oob {
                channel: Channel::Voice,
                to: "+447700900123".into(),
            },
            NOW,
        )
        .unwrap();
    associate_otp(&mut store, &user_id, Some(&token), NOW);
    let list = store.list(&user_id).unwrap();
    let by_type: Vec<(&str, Option<Channel>, Option<&str>, bool)> = list
        .iter()
        .map(|v| {
            (
                v.authenticator_type,
                v.oob_channel,
                v.name.as_deref(),
                v.active,
            )
        })
        .collect();
    assert_eq!(
        by_type,
        vec![
            ("oob", Some(Channel::Sms), Some("XXXXXXXX9167"), false),
            ("oob", Some(Channel::Email), Some("****@exam*******"), false),
            ("oob", Some(Channel::Voice), Some("XXXXXXXXX0123"), false),
            ("otp", None, None, false),
            ("recovery-code", None, None, false),
        ]
    );
    assert!(list[0].id.starts_with("sms|dev_"));
    assert!(list[1].id.starts_with("email|dev_"));
    assert!(list[2].id.starts_with("voice|dev_"));
    assert!(list[3].id.starts_with("totp|dev_"));
    assert!(list[4].id.starts_with("recovery-code|dev_"));
    // The JSON shape: no null members.
    let json = serde_json::to_value(&list[3]).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
    let json = serde_json::to_value(&list[0]).unwrap();
    assert_eq!(json["oob_channel"], "sms");
}

#[test]
fn e164_numbers() {
    for good in [
        "+15551239167",
        "+1234567",
        "+123456789012345",
        "+447700900123",
    ] {
        assert!(is_e164(good), "{good}");
    }
    for bad in [
        "",
        "+",
        "15551239167",
        "++15551239167",
        "+123456",
        "+1234567890123456",
        "+0123456789",
        "+1555-123-9167",
        "+1 5551239167",
        "+1555123916a",
        "+１５５５１２３９１６７",
        "+15551239167 ",
    ] {
        assert!(!is_e164(bad), "{bad:?}");
    }
}

#[test]
fn email_checks() {
    for good in ["a@b.co", "first.last+tag@example.com"] {
        assert!(is_email(good), "{good}");
    }
    for bad in [
        "",
        "abc",
        "@b.co",
        "a@localhost",
        "a@.b.co",
        "a@b.co.",
        "a b@c.de",
        "a@b .de",
    ] {
        assert!(!is_email(bad), "{bad:?}");
    }
}

// --- parse_enrollment ------------------------------------------------------------------

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

#[track_caller]
fn enrollment_error(
    types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    phone: Option<&str>,
    email: Option<&str>,
) -> String {
    let err = parse_enrollment(types, channels, phone, email).expect_err("an error");
    assert_eq!(err.status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err.error, "invalid_request", "{err}");
    err.description
}

#[test]
fn parse_enrollment_accepts_each_supported_kind() {
    assert!(matches!(
        parse_enrollment(strings(&["otp"]), None, None, None),
        Ok(Enrollment::Otp)
    ));
    for (channel, expected) in [("sms", Channel::Sms), ("voice", Channel::Voice)] {
        let parsed = parse_enrollment(
            strings(&["oob"]),
            strings(&[channel]),
            Some(PHONE),
            Some("x@y.z"),
        );
        assert!(
            matches!(&parsed, Ok(Enrollment::Oob { channel, to }) if *channel == expected && to == PHONE),
            "{parsed:?}"
        );
    }
    let parsed = parse_enrollment(
        strings(&["oob"]),
        strings(&["email"]),
        Some(PHONE),
        Some("a@b.co"),
    );
    assert!(
        matches!(&parsed, Ok(Enrollment::Oob { channel: Channel::Email, to }) if to == "a@b.co"),
        "{parsed:?}"
    );
    // Push needs neither a phone nor an email.
    let parsed = parse_enrollment(strings(&["oob"]), strings(&["auth0"]), None, None);
    assert!(matches!(&parsed, Ok(Enrollment::Push { .. })), "{parsed:?}");
}

#[test]
fn parse_enrollment_errors() {
    assert_eq!(
        enrollment_error(None, None, None, None),
        "Missing required parameter: authenticator_types"
    );
    assert_eq!(
        enrollment_error(strings(&["oob"]), None, Some(PHONE), None),
        "Missing required parameter: oob_channels"
    );
    assert_eq!(
        enrollment_error(strings(&["oob"]), strings(&["sms"]), None, Some("a@b.co")),
        "Missing required parameter: phone_number"
    );
    assert_eq!(
        enrollment_error(strings(&["oob"]), strings(&["voice"]), None, None),
        "Missing required parameter: phone_number"
    );
    assert_eq!(
        enrollment_error(strings(&["oob"]), strings(&["email"]), Some(PHONE), None),
        "Missing required parameter: email"
    );
    assert!(
        enrollment_error(
            strings(&["oob"]),
            strings(&["sms"]),
            Some("5551239167"),
            None
        )
        .contains("E.164")
    );
    assert!(
        enrollment_error(strings(&["oob"]), strings(&["email"]), None, Some("nope"))
            .contains("email")
    );
    assert!(
        enrollment_error(
            strings(&["oob"]),
            strings(&["sms", "voice"]),
            Some(PHONE),
            None
        )
        .contains("exactly one")
    );
    assert!(
        enrollment_error(strings(&["oob"]), strings(&["telegram"]), None, None).contains("auth0")
    );
    for types in [&["push"][..], &["otp", "oob"], &["OTP"], &[]] {
        assert!(
            enrollment_error(strings(types), None, None, None).contains("authenticator_types"),
            "{types:?}"
        );
    }
}

// --- sessions and purge ----------------------------------------------------------------

#[test]
fn sessions_expire_after_ten_minutes_and_belong_to_their_client() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let session = store.session(&token, Some(CLIENT), NOW + 599).unwrap();
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.expires_at, NOW + MFA_TOKEN_SECONDS);
    let err = assert_api_error(store.session(&token, None, NOW + 600), 401, "expired_token");
    assert_eq!(err.description, "mfa_token is expired");
    let err = assert_api_error(store.session("nope", None, NOW), 403, "invalid_grant");
    assert_eq!(err.description, "Malformed mfa_token");
    assert_api_error(
        store.session(&token, Some("other"), NOW),
        403,
        "invalid_grant",
    );
}

#[test]
fn purge_drops_expired_sessions_and_transactions_only() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let later_token = login(&mut store, "alice@example.com", NOW + 100);
    let (oob_code, code) = associate_sms(&mut store, &user_id, Some(&token), NOW);
    let (second_oob_code, _) = associate_sms(&mut store, &user_id, Some(&token), NOW + 10);
    assert_eq!(store.counts(), (1, 2, 2));

    // A spent transaction stays until it expires, so a replay is still "Invalid".
    store
        .verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW + 1)
        .unwrap();
    store.purge_expired(NOW + 1);
    assert_eq!(store.counts(), (1, 2, 2));
    let err = assert_api_error(
        store.verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW + 2),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Invalid oob_code.");

    // Expiry is exclusive: alive up to the second before.
    store.purge_expired(NOW + 299);
    assert_eq!(store.counts(), (1, 2, 2));
    store.purge_expired(NOW + 300);
    assert_eq!(store.counts(), (1, 2, 1));
    store.purge_expired(NOW + 310);
    assert_eq!(store.counts(), (1, 2, 0));
    store.purge_expired(NOW + 599);
    assert_eq!(store.counts(), (1, 2, 0));
    store.purge_expired(NOW + 600);
    assert_eq!(store.counts(), (1, 1, 0));
    assert!(store.session(&later_token, None, NOW + 600).is_ok());
    store.purge_expired(NOW + 700);
    assert_eq!(store.counts(), (1, 0, 0));

    // Users, authenticators and messages are not the purger's business.
    assert_eq!(store.list(&user_id).unwrap().len(), 3);
    assert_eq!(store.messages(PHONE).len(), 2);

    // Purged values are still answered "expired", not "malformed", as the real API answers them.
    let err = assert_api_error(store.session(&token, None, NOW + 700), 401, "expired_token");
    assert_eq!(err.description, "mfa_token is expired");
    let fresh_token = login(&mut store, "alice@example.com", NOW + 700);
    let err = assert_api_error(
        store.verify_oob(
            &fresh_token,
            CLIENT,
            &second_oob_code,
            Some("123456"),
            NOW + 700,
        ),
        401,
        "expired_token",
    );
    assert_eq!(err.description, "oob_code is expired");
    // A value the server never issued stays malformed.
    assert_api_error(store.session("AAAA", None, NOW), 403, "invalid_grant");
}

// --- users and logins ------------------------------------------------------------------

#[test]
fn users_are_unique_and_logins_check_the_password() {
    let mut store = store();
    store.add_user("a@example.com", "pw", true, NOW).unwrap();
    assert!(
        store
            .add_user("a@example.com", "other", false, NOW)
            .is_err()
    );
    store
        .add_user("plain@example.com", "pw", false, NOW)
        .unwrap();

    for (username, password) in [
        ("a@example.com", "PW"),
        ("nobody@example.com", "pw"),
        ("a@example.com", ""),
    ] {
        match store.login(username, password, CLIENT, None, "", NOW) {
            Err(err) => {
                assert_eq!(err.status, StatusCode::FORBIDDEN);
                assert_eq!(err.error, "invalid_grant");
                assert_eq!(err.description, "Wrong email or password.");
            }
            Ok(_) => panic!("{username}/{password} logged in"),
        }
    }
    match store.login(
        "plain@example.com",
        "pw",
        CLIENT,
        Some("https://api/"),
        "openid",
        NOW,
    ) {
        Ok(Login::Granted(grant)) => {
            assert_eq!(grant.audience.as_deref(), Some("https://api/"));
            assert_eq!(grant.scope, "openid");
            assert_eq!(grant.username, "plain@example.com");
            assert_eq!(grant.recovery_code, None);
        }
        _ => panic!("a user without MFA gets tokens at once"),
    }
    assert_eq!(store.counts().1, 0, "no session for a user without MFA");

    let (first, _) = store.provision_user(NOW);
    let (second, password) = store.provision_user(NOW);
    assert_ne!(first, second);
    assert!(matches!(
        store.login(&second, &password, CLIENT, None, "", NOW),
        Ok(Login::MfaRequired(_))
    ));
}

// --- TOTP rules ------------------------------------------------------------------------

#[test]
fn totp_accepts_the_current_and_previous_step_only() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let secret = associate_otp(&mut store, &user_id, Some(&token), NOW);
    // Confirm with the previous step's code (the step before NOW).
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, NOW - 1), NOW + 5)
        .unwrap();
    assert!(store.list(&user_id).unwrap()[0].active);

    let t = NOW + 5 + 4 * 30;
    for refused in [t - 60, t - 90, t + 30] {
        assert_api_error(
            store.verify_otp(&token, CLIENT, &code_at(&secret, refused), t),
            403,
            "invalid_grant",
        );
    }
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, t - 30), t)
        .unwrap();
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, t), t)
        .unwrap();
}

#[test]
fn a_totp_step_is_never_accepted_twice_nor_an_older_one_after_it() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let secret = enrolled_otp(&mut store, &user_id, &token, NOW);
    // The confirming code again, a second later: refused.
    assert_api_error(
        store.verify_otp(&token, CLIENT, &code_at(&secret, NOW), NOW + 1),
        403,
        "invalid_grant",
    );
    // Next step accepted, then the previous step (still in the window) is refused.
    let t = NOW + 30;
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, t), t)
        .unwrap();
    assert_api_error(
        store.verify_otp(&token, CLIENT, &code_at(&secret, NOW), t),
        403,
        "invalid_grant",
    );
}

#[test]
fn each_otp_authenticator_keeps_its_own_last_step() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let first = enrolled_otp(&mut store, &user_id, &token, NOW);
    let second = associate_otp(&mut store, &user_id, None, NOW);
    // The second (pending) one is confirmed by its own code of the same step.
    store
        .verify_otp(&token, CLIENT, &code_at(&second, NOW), NOW)
        .unwrap();
    assert!(store.list(&user_id).unwrap().iter().all(|v| v.active));
    assert_api_error(
        store.verify_otp(&token, CLIENT, &code_at(&first, NOW), NOW),
        403,
        "invalid_grant",
    );
}

#[test]
fn otp_grant_without_an_otp_authenticator() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let err = assert_api_error(
        store.verify_otp(&token, CLIENT, "123456", NOW),
        401,
        "unsupported_challenge_type",
    );
    assert!(err.description.starts_with("User is not enrolled."));
    let (oob_code, code) = associate_sms(&mut store, &user_id, Some(&token), NOW);
    store
        .verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW)
        .unwrap();
    let err = assert_api_error(
        store.verify_otp(&token, CLIENT, "123456", NOW),
        401,
        "unsupported_challenge_type",
    );
    assert!(err.description.ends_with("(otp)"), "{err}");
    assert_eq!(
        limiter_tokens(&store, &user_id),
        10.0,
        "not counted as failures"
    );
}

// --- OOB rules -------------------------------------------------------------------------

#[test]
fn oob_transactions_are_single_use_bound_to_the_user_and_expire() {
    let mut store = store();
    let (alice, alice_token) = user_and_token(&mut store, NOW);
    store.add_user("bob@example.com", "pw", true, NOW).unwrap();
    let bob_token = login(&mut store, "bob@example.com", NOW);
    let (oob_code, code) = associate_sms(&mut store, &alice, Some(&alice_token), NOW);

    let err = assert_api_error(
        store.verify_oob(&bob_token, CLIENT, &oob_code, Some(&code), NOW),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Malformed oob_code");
    assert_api_error(
        store.verify_oob(&alice_token, CLIENT, &oob_code, None, NOW),
        400,
        "invalid_request",
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = assert_api_error(
        store.verify_oob(&alice_token, CLIENT, &oob_code, Some(wrong), NOW),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Invalid binding_code.");
    assert_eq!(limiter_tokens(&store, &alice), 9.0);

    store
        .verify_oob(&alice_token, CLIENT, &oob_code, Some(&code), NOW + 299)
        .unwrap();
    let err = assert_api_error(
        store.verify_oob(&alice_token, CLIENT, &oob_code, Some(&code), NOW + 299),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Invalid oob_code.");

    // A challenge's code lives 5 minutes.
    let challenge = store
        .challenge(
            &alice_token,
            CLIENT,
            ChallengeTypes {
                otp: true,
                oob: true,
            },
            None,
            NOW + 10,
        )
        .unwrap();
    let Challenge::Oob {
        oob_code,
        binding_method,
        ..
    } = challenge
    else {
        panic!("an SMS challenge");
    };
    assert_eq!(binding_method, "prompt");
    let code = store.messages(PHONE).last().unwrap().code.clone();
    let err = assert_api_error(
        store.verify_oob(&alice_token, CLIENT, &oob_code, Some(&code), NOW + 310),
        401,
        "expired_token",
    );
    assert_eq!(err.description, "oob_code is expired");
}

#[test]
fn delivered_codes_are_six_digits_and_inboxes_keep_the_last_hundred() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let (oob_code, code) = associate_sms(&mut store, &user_id, Some(&token), NOW);
    store
        .verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW)
        .unwrap();
    let types = ChallengeTypes {
        otp: false,
        oob: true,
    };
    for _ in 0..120 {
        store.challenge(&token, CLIENT, types, None, NOW).unwrap();
    }
    let messages = store.messages(PHONE);
    assert_eq!(messages.len(), MESSAGES_PER_RECIPIENT);
    assert!(
        messages
            .iter()
            .all(|m| m.to == PHONE && m.channel == Channel::Sms)
    );
    assert!(
        messages
            .iter()
            .all(|m| m.code.len() == 6 && m.code.bytes().all(|b| b.is_ascii_digit()))
    );
    assert!(store.messages("+19999999999").is_empty());
}

// --- recovery codes --------------------------------------------------------------------

#[test]
fn recovery_code_is_issued_once_used_once_and_rotated() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let first = store
        .associate(&user_id, Some(&token), Enrollment::Otp, NOW)
        .unwrap();
    let Association::Otp {
        secret,
        recovery_codes: Some(codes),
        barcode_uri,
        ..
    } = first
    else {
        panic!("the first enrollment carries a recovery code");
    };
    assert_eq!(
        barcode_uri,
        format!(
            "otpauth://totp/Test%20Tenant:alice%40example.com?secret={secret}&issuer=Test%20Tenant&algorithm=SHA1&digits=6&period=30"
        )
    );
    let code = codes[0].clone();
    assert_eq!(code.len(), 24);

    // Not usable before a factor is active.
    assert_api_error(
        store.verify_recovery_code(&token, CLIENT, &code, NOW),
        403,
        "unsupported_challenge_type",
    );
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, NOW), NOW)
        .unwrap();
    let second = store
        .associate(&user_id, None, Enrollment::Otp, NOW)
        .unwrap();
    assert!(matches!(
        second,
        Association::Otp {
            recovery_codes: None,
            ..
        }
    ));

    // Typed loosely, it still matches; the grant carries a fresh code.
    let typed = format!("{}-{}", code[..12].to_lowercase(), &code[12..]);
    let grant = store
        .verify_recovery_code(&token, CLIENT, &typed, NOW)
        .unwrap();
    let fresh = grant.recovery_code.expect("a fresh code");
    assert_ne!(fresh, code);
    let err = assert_api_error(
        store.verify_recovery_code(&token, CLIENT, &code, NOW),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Invalid recovery_code.");
    store
        .verify_recovery_code(&token, CLIENT, &fresh, NOW)
        .unwrap();
}

#[test]
fn no_recovery_codes_when_disabled() {
    let mut store = store_with(Limits::default(), Factors::default(), false);
    let (user_id, token) = user_and_token(&mut store, NOW);
    let secret = associate_otp(&mut store, &user_id, Some(&token), NOW);
    store
        .verify_otp(&token, CLIENT, &code_at(&secret, NOW), NOW)
        .unwrap();
    assert!(
        store
            .list(&user_id)
            .unwrap()
            .iter()
            .all(|v| v.authenticator_type != "recovery-code")
    );
    let err = assert_api_error(
        store.verify_recovery_code(&token, CLIENT, "AAAAAAAAAAAAAAAAAAAAAAAA", NOW),
        403,
        "unsupported_challenge_type",
    );
    assert_eq!(err.description, "User does not have a recovery-code.");
}

// --- associate, challenge, delete ------------------------------------------------------

#[test]
fn associate_rules() {
    let limits = Limits {
        max_authenticators: 3,
        ..Limits::default()
    };
    let factors = Factors {
        voice: false,
        ..Factors::default()
    };
    let mut store = store_with(limits, factors, true);
    let (user_id, token) = user_and_token(&mut store, NOW);

    let voice = Enrollment::Oob {
        channel: Channel::Voice,
        to: PHONE.into(),
    };
    let err = assert_api_error(
        store.associate(&user_id, Some(&token), voice, NOW),
        400,
        "invalid_request",
    );
    assert!(err.description.contains("voice"), "{err}");

    enrolled_otp(&mut store, &user_id, &token, NOW);
    let err = assert_api_error(
        store.associate(&user_id, Some(&token), Enrollment::Otp, NOW),
        403,
        "access_denied",
    );
    assert_eq!(err.description, "User is already enrolled.");
    store
        .associate(&user_id, None, Enrollment::Otp, NOW)
        .unwrap();
    store
        .associate(&user_id, None, Enrollment::Otp, NOW)
        .unwrap();
    // Three authenticators (the recovery code is not one of them): the fourth is refused.
    assert_api_error(
        store.associate(&user_id, None, Enrollment::Otp, NOW),
        400,
        "invalid_request",
    );
    assert_eq!(store.list(&user_id).unwrap().len(), 4);
}

#[test]
fn challenge_rules() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let all = ChallengeTypes {
        otp: true,
        oob: true,
    };
    let err = assert_api_error(
        store.challenge(&token, CLIENT, all, None, NOW),
        401,
        "unsupported_challenge_type",
    );
    assert!(err.description.starts_with("User is not enrolled."));

    let (oob_code, code) = associate_sms(&mut store, &user_id, Some(&token), NOW);
    let sms_id = store.list(&user_id).unwrap()[0].id.clone();
    // Only pending authenticators: still not enrolled.
    assert_api_error(
        store.challenge(&token, CLIENT, all, Some(&sms_id), NOW),
        401,
        "unsupported_challenge_type",
    );
    store
        .verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW)
        .unwrap();
    // A pending authenticator next to an active one cannot be challenged.
    associate_sms(&mut store, &user_id, None, NOW);
    let pending_id = store.list(&user_id).unwrap()[1].id.clone();
    assert_api_error(
        store.challenge(&token, CLIENT, all, Some(&pending_id), NOW),
        400,
        "invalid_authenticator",
    );

    let otp_only = ChallengeTypes {
        otp: true,
        oob: false,
    };
    let err = assert_api_error(
        store.challenge(&token, CLIENT, otp_only, None, NOW),
        401,
        "unsupported_challenge_type",
    );
    assert!(err.description.ends_with("(otp)"), "{err}");
    // Named but of a type the caller does not accept.
    assert_api_error(
        store.challenge(&token, CLIENT, otp_only, Some(&sms_id), NOW),
        401,
        "unsupported_challenge_type",
    );
    assert_api_error(
        store.challenge(&token, CLIENT, all, Some("sms|dev_AAAAAAAAAAAAAAAA"), NOW),
        400,
        "invalid_authenticator",
    );

    let before = store.messages(PHONE).len();
    let challenge = store
        .challenge(&token, CLIENT, all, Some(&sms_id), NOW)
        .unwrap();
    assert!(matches!(
        challenge,
        Challenge::Oob {
            challenge_type: "oob",
            ..
        }
    ));
    assert_eq!(store.messages(PHONE).len(), before + 1);

    enrolled_otp(&mut store, &user_id, &token, NOW);
    let challenge = store
        .challenge(&token, CLIENT, otp_only, None, NOW)
        .unwrap();
    assert_eq!(
        challenge,
        Challenge::Otp {
            challenge_type: "otp"
        }
    );
    assert_eq!(
        store.messages(PHONE).len(),
        before + 1,
        "an OTP challenge sends nothing"
    );
    assert_eq!(
        serde_json::to_value(&challenge).unwrap(),
        serde_json::json!({"challenge_type": "otp"})
    );
}

#[test]
fn delete_removes_the_authenticator_and_its_transactions() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    enrolled_otp(&mut store, &user_id, &token, NOW);
    let (oob_code, code) = associate_sms(&mut store, &user_id, None, NOW);
    let list = store.list(&user_id).unwrap();
    let sms_id = list[1].id.clone();
    let recovery_id = list[2].id.clone();
    assert_eq!(store.counts().2, 1);

    store.delete(&user_id, &sms_id).unwrap();
    assert_eq!(store.counts().2, 0, "its pending transaction went with it");
    assert_api_error(
        store.verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW),
        403,
        "invalid_grant",
    );
    let err = assert_api_error(store.delete(&user_id, &sms_id), 404, "not_found");
    assert_eq!(err.description, "Authenticator does not exist.");

    // Another user's id is not found either, and stays.
    store.add_user("bob@example.com", "pw", true, NOW).unwrap();
    let bob = store.usernames["bob@example.com"].clone();
    assert_api_error(store.delete(&bob, &recovery_id), 404, "not_found");
    assert_eq!(store.list(&user_id).unwrap().len(), 2);

    store.delete(&user_id, &recovery_id).unwrap();
    assert_eq!(store.list(&user_id).unwrap().len(), 1);
    assert_api_error(store.delete(&user_id, &recovery_id), 404, "not_found");
}

#[test]
fn sms_and_voice_are_enrolled_confirmed_and_deleted_as_a_pair() {
    let mut store = store_with(Limits::default(), Factors::default(), true);
    let user_id = store.add_user("pair@example.com", "pw", true, NOW).unwrap();
    let token = match store
        .login("pair@example.com", "pw", CLIENT, None, "", NOW)
        .unwrap()
    {
        Login::MfaRequired(t) => t,
        Login::Granted(_) => panic!("MFA is required"),
    };
    let association = store
        .associate(
            &user_id,
            Some(&token),
            Enrollment::Oob {
                channel: Channel::Sms,
                to: "+15550100001".into(),
            },
            NOW,
        )
        .unwrap();
    let Association::Oob { oob_code, .. } = association else {
        panic!("an oob association")
    };
    let list = store.list(&user_id).unwrap();
    let phones: Vec<_> = list
        .iter()
        .filter(|v| v.authenticator_type == "oob")
        .collect();
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[0].oob_channel, Some(Channel::Sms));
    assert_eq!(phones[1].oob_channel, Some(Channel::Voice));
    let suffix = |id: &str| id.split_once('|').unwrap().1.to_owned();
    assert_eq!(suffix(&phones[0].id), suffix(&phones[1].id));
    assert!(phones.iter().all(|p| !p.active));

    let code = store.messages("+15550100001")[0].code.clone();
    store
        .verify_oob(&token, CLIENT, &oob_code, Some(&code), NOW)
        .unwrap();
    let list = store.list(&user_id).unwrap();
    assert!(
        list.iter()
            .filter(|v| v.authenticator_type == "oob")
            .all(|v| v.active)
    );

    let voice_id = list
        .iter()
        .find(|v| v.oob_channel == Some(Channel::Voice))
        .unwrap()
        .id
        .clone();
    store.delete(&user_id, &voice_id).unwrap();
    let list = store.list(&user_id).unwrap();
    assert!(
        list.iter().all(|v| v.authenticator_type != "oob"),
        "deleting one half deletes both"
    );
}

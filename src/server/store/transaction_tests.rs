//! Unit tests of out-of-band transactions: an `oob_code` belongs to the login that
//! obtained it, and Guardian push (enrollment, challenge, polling, the device's answer).

use super::tests::{
    CLIENT, NOW, PHONE, assert_api_error, associate_sms, enrolled_otp, login, store, store_with,
    user_and_token,
};
use super::*;
use crate::server::config::Limits;

const ALL: ChallengeTypes = ChallengeTypes {
    otp: true,
    oob: true,
};

fn sms_challenge(store: &mut Store, mfa_token: &str, now: i64) -> (String, String) {
    let Challenge::Oob { oob_code, .. } =
        store.challenge(mfa_token, CLIENT, ALL, None, now).unwrap()
    else {
        panic!("an SMS challenge");
    };
    (oob_code, store.messages(PHONE).last().unwrap().code.clone())
}

#[test]
fn an_oob_code_is_redeemed_only_by_the_login_that_obtained_it() {
    let mut store = store();
    let (user_id, first) = user_and_token(&mut store, NOW);
    let (oob_code, code) = associate_sms(&mut store, &user_id, Some(&first), NOW);
    let second = login(&mut store, "alice@example.com", NOW);

    // The enrollment's code, with another login of the same user: refused.
    let err = assert_api_error(
        store.verify_oob(&second, CLIENT, &oob_code, Some(&code), NOW),
        403,
        "invalid_grant",
    );
    assert_eq!(err.description, "Invalid oob_code.");
    store
        .verify_oob(&first, CLIENT, &oob_code, Some(&code), NOW)
        .unwrap();

    // A challenge's code likewise, both ways round.
    let (oob_code, code) = sms_challenge(&mut store, &second, NOW + 1);
    assert_api_error(
        store.verify_oob(&first, CLIENT, &oob_code, Some(&code), NOW + 1),
        403,
        "invalid_grant",
    );
    store
        .verify_oob(&second, CLIENT, &oob_code, Some(&code), NOW + 1)
        .unwrap();
    // The refused attempt cost no failed-code allowance: nothing was checked.
    assert_eq!(store.users[&user_id].limiter.tokens, 10.0);
}

#[test]
fn an_enrollment_made_with_an_access_token_is_confirmed_by_any_login() {
    let mut store = store();
    let (user_id, first) = user_and_token(&mut store, NOW);
    enrolled_otp(&mut store, &user_id, &first, NOW);
    // Enrolled with an `/mfa/` access token: no login obtained the code.
    let (oob_code, code) = associate_sms(&mut store, &user_id, None, NOW);
    let later = login(&mut store, "alice@example.com", NOW + 5);
    store
        .verify_oob(&later, CLIENT, &oob_code, Some(&code), NOW + 5)
        .unwrap();
}

fn push_enrollment(store: &mut Store, user_id: &str, mfa_token: &str) -> (String, String) {
    let association = store
        .associate(
            user_id,
            Some(mfa_token),
            Enrollment::Push {
                base_url: "https://tenant.example".into(),
            },
            NOW,
        )
        .unwrap();
    let Association::Push {
        barcode_uri,
        oob_code,
        oob_channel,
        authenticator_type,
        ..
    } = association
    else {
        panic!("a push association: {association:?}");
    };
    assert_eq!((authenticator_type, oob_channel), ("oob", Channel::Auth0));
    let tx = barcode_uri
        .split_once("enrollment_tx_id=")
        .and_then(|(_, rest)| rest.split('&').next())
        .unwrap()
        .to_owned();
    (oob_code, tx)
}

#[test]
fn push_enrollment_is_polled_until_the_device_approves() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let (oob_code, tx) = push_enrollment(&mut store, &user_id, &token);
    assert_eq!(tx.len(), 32);
    assert!(tx.bytes().all(|b| b.is_ascii_alphanumeric()), "{tx}");

    let poll = |store: &mut Store, t: i64| store.verify_oob(&token, CLIENT, &oob_code, None, t);
    let err = assert_api_error(poll(&mut store, NOW), 400, "authorization_pending");
    assert_eq!(
        err.description,
        "Authorization pending: please repeat the request in a few seconds."
    );
    // Faster than the 5-s interval: slow_down; at the interval: pending again.
    assert_api_error(poll(&mut store, NOW + 4), 400, "slow_down");
    assert_api_error(poll(&mut store, NOW + 9), 400, "authorization_pending");
    assert!(!store.list(&user_id).unwrap()[0].active);

    // The device scans the code (by the enrollment transaction) and approves.
    store
        .answer_push(
            PushRef::EnrollmentTx(&tx),
            PushAnswer::Approve {
                device_name: Some("Pixel".into()),
            },
            NOW + 10,
        )
        .unwrap();
    // Approved: the next poll gets tokens at once, even a fast one.
    let grant = poll(&mut store, NOW + 11).unwrap();
    assert_eq!(grant.user_id, user_id);
    let push = &store.list(&user_id).unwrap()[0];
    assert_eq!(push.oob_channel, Some(Channel::Auth0));
    assert_eq!(push.authenticator_type, "oob");
    assert_eq!(push.name.as_deref(), Some("Pixel"));
    assert!(push.active && push.id.starts_with("push|dev_"), "{push:?}");

    // Redeemed once only; a second answer is a conflict.
    let err = assert_api_error(poll(&mut store, NOW + 20), 403, "invalid_grant");
    assert_eq!(err.description, "Invalid oob_code.");
    assert_api_error(
        store.answer_push(PushRef::OobCode(&oob_code), PushAnswer::Reject, NOW + 20),
        409,
        "already_answered",
    );
}

#[test]
fn push_challenges_are_answered_by_the_device() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let (oob_code, _) = push_enrollment(&mut store, &user_id, &token);
    store
        .answer_push(
            PushRef::OobCode(&oob_code),
            PushAnswer::Approve { device_name: None },
            NOW,
        )
        .unwrap();
    store
        .verify_oob(&token, CLIENT, &oob_code, None, NOW)
        .unwrap();
    assert_eq!(
        store.list(&user_id).unwrap()[0].name.as_deref(),
        Some(DEFAULT_DEVICE_NAME)
    );

    // A later login: the challenge sends a push (no binding_method).
    let login_token = login(&mut store, "alice@example.com", NOW + 60);
    let challenge = store
        .challenge(&login_token, CLIENT, ALL, None, NOW + 60)
        .unwrap();
    let Challenge::Push {
        challenge_type,
        oob_code,
    } = challenge
    else {
        panic!("a push challenge: {challenge:?}");
    };
    assert_eq!(challenge_type, "oob");
    // Only the login that asked may poll it.
    assert_api_error(
        store.verify_oob(&token, CLIENT, &oob_code, None, NOW + 60),
        403,
        "invalid_grant",
    );
    assert_api_error(
        store.verify_oob(&login_token, CLIENT, &oob_code, None, NOW + 60),
        400,
        "authorization_pending",
    );
    // Rejected: access_denied, and the code is spent.
    store
        .answer_push(PushRef::OobCode(&oob_code), PushAnswer::Reject, NOW + 61)
        .unwrap();
    let err = assert_api_error(
        store.verify_oob(&login_token, CLIENT, &oob_code, None, NOW + 70),
        400,
        "access_denied",
    );
    assert_eq!(err.description, "MFA Authorization rejected.");
    assert_api_error(
        store.verify_oob(&login_token, CLIENT, &oob_code, None, NOW + 80),
        403,
        "invalid_grant",
    );
    // A rejected push is not a failed code.
    assert_eq!(store.users[&user_id].limiter.tokens, 10.0);
}

#[test]
fn the_device_cannot_answer_unknown_expired_or_code_transactions() {
    let mut store = store();
    let (user_id, token) = user_and_token(&mut store, NOW);
    let (sms_code, _) = associate_sms(&mut store, &user_id, Some(&token), NOW);
    let (push_code, tx) = push_enrollment(&mut store, &user_id, &token);
    let approve = || PushAnswer::Approve { device_name: None };
    for which in [
        PushRef::OobCode("nope"),
        PushRef::EnrollmentTx("nope"),
        PushRef::OobCode(&sms_code),
    ] {
        assert_api_error(store.answer_push(which, approve(), NOW), 404, "not_found");
    }
    // A push lives 5 minutes, like other out-of-band codes.
    assert_api_error(
        store.answer_push(PushRef::EnrollmentTx(&tx), approve(), NOW + 300),
        404,
        "not_found",
    );
    let err = assert_api_error(
        store.verify_oob(&token, CLIENT, &push_code, None, NOW + 300),
        401,
        "expired_token",
    );
    assert_eq!(err.description, "oob_code is expired");
}

#[test]
fn push_follows_the_configured_interval_and_switch() {
    let limits = Limits {
        push_poll_interval_seconds: 1,
        ..Limits::default()
    };
    let mut store = store_with(limits, Factors::default(), true);
    let (user_id, token) = user_and_token(&mut store, NOW);
    let (oob_code, _) = push_enrollment(&mut store, &user_id, &token);
    for t in [NOW, NOW + 1, NOW + 2] {
        assert_api_error(
            store.verify_oob(&token, CLIENT, &oob_code, None, t),
            400,
            "authorization_pending",
        );
    }
    assert_api_error(
        store.verify_oob(&token, CLIENT, &oob_code, None, NOW + 2),
        400,
        "slow_down",
    );

    let factors = Factors {
        push: false,
        ..Factors::default()
    };
    let mut store = store_with(Limits::default(), factors, true);
    let (user_id, token) = user_and_token(&mut store, NOW);
    let err = assert_api_error(
        store.associate(
            &user_id,
            Some(&token),
            Enrollment::Push {
                base_url: String::new(),
            },
            NOW,
        ),
        400,
        "invalid_request",
    );
    assert!(err.description.contains("push"), "{err}");
}

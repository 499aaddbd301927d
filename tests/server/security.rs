//! Security behaviours of the reference server : TOTP windows and replay,
//! single-use recovery and OOB codes, lifetimes of codes and tokens (with the control
//! clock instead of sleeping), the failed-code limiter, and one-time rules under
//! concurrency.

use crate::support::server::*;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// A 6-digit code that is none of the codes the server would accept around now.
fn wrong_code(server: &TestServer, secret: &str) -> String {
    let now = server.now();
    let near: Vec<String> = [now - 60, now - 30, now, now + 30, now + 60]
        .iter()
        .map(|t| mfa_conform::totp::code_at(secret, *t).unwrap())
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .expect("a wrong code")
}

/// Sends `n` requests at once (released together by a barrier) and returns the replies.
async fn concurrently(
    server: &TestServer,
    n: usize,
    make: impl Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder,
) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let request = make(&server.http, i);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            Reply::read(request.send().await.expect("request sent")).await
        });
    }
    let mut replies = Vec::with_capacity(n);
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.expect("task"));
    }
    replies
}

fn count(replies: &[Reply], status: u16, error: Option<&str>) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && error.is_none_or(|e| r.body["error"] == e))
        .count()
}

fn otp_request(
    client: &reqwest::Client,
    server: &TestServer,
    mfa_token: &str,
    otp: &str,
) -> reqwest::RequestBuilder {
    client.post(server.url("/oauth/token")).form(&[
        ("grant_type", OTP),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("mfa_token", mfa_token),
        ("otp", otp),
    ])
}

/// Does now what the server's background purger does every 5 s.
fn purge_now(server: &TestServer) {
    let now = server.state.clock.now();
    server.state.store().purge_expired(now);
}

// --- TOTP ------------------------------------------------------------------------------

#[tokio::test]
async fn totp_accepts_the_current_and_the_previous_step() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;
    let secret = enrolled.secret();
    server.advance(90).await;
    server.settle_totp_step().await;

    let mfa_token = server.login(&enrolled.user).await;
    let previous = server.totp(secret, 1);
    server.verify_otp(&mfa_token, &previous).await.ok();
    let current = server.totp(secret, 0);
    assert_ne!(current, previous);
    server.verify_otp(&mfa_token, &current).await.ok();
    server.shutdown().await;
}

#[tokio::test]
async fn totp_refuses_older_and_future_steps() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;
    let secret = enrolled.secret();
    server.advance(150).await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&enrolled.user).await;

    for steps_back in [2, 3] {
        let reply = server
            .verify_otp(&mfa_token, &server.totp(secret, steps_back))
            .await;
        reply.assert_error(403, "invalid_grant");
        assert_eq!(reply.description(), "Invalid otp_code.");
    }
    let next = mfa_conform::totp::code_at(secret, server.now() + 30).unwrap();
    server
        .verify_otp(&mfa_token, &next)
        .await
        .assert_error(403, "invalid_grant");
    // The authenticator itself still works.
    server
        .verify_otp(&mfa_token, &server.totp(secret, 0))
        .await
        .ok();
    server.shutdown().await;
}

#[tokio::test]
async fn a_validated_totp_code_is_never_accepted_twice() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;
    let secret = enrolled.secret();

    // The code that confirmed the enrollment cannot log in.
    let mfa_token = server.login(&enrolled.user).await;
    let reply = server.verify_otp(&mfa_token, &enrolled.confirm_code).await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.description(), "Invalid otp_code.");

    let code = server.fresh_totp(secret).await;
    let first = server.login(&enrolled.user).await;
    server.verify_otp(&first, &code).await.ok();
    // Not with the same mfa_token, not with a new one.
    server
        .verify_otp(&first, &code)
        .await
        .assert_error(403, "invalid_grant");
    let second = server.login(&enrolled.user).await;
    server
        .verify_otp(&second, &code)
        .await
        .assert_error(403, "invalid_grant");
    // Nor the previous step's code once a newer step was accepted.
    server
        .verify_otp(&second, &server.totp(secret, 1))
        .await
        .assert_error(403, "invalid_grant");
    server.shutdown().await;
}

// --- recovery codes and OOB codes ------------------------------------------------------

#[tokio::test]
async fn recovery_codes_are_single_use() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let code = enrolled.recovery_code.clone().unwrap();
    let mfa_token = server.login(&enrolled.user).await;
    server.verify_recovery_code(&mfa_token, &code).await.ok();
    let reply = server.verify_recovery_code(&mfa_token, &code).await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.description(), "Invalid recovery_code.");
    let other_login = server.login(&enrolled.user).await;
    server
        .verify_recovery_code(&other_login, &code)
        .await
        .assert_error(403, "invalid_grant");
    server.shutdown().await;
}

#[tokio::test]
async fn recovery_code_input_is_normalised() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let code = enrolled.recovery_code.clone().unwrap();
    // Lower case, dashes and spaces as a person might type it.
    let typed = format!(
        "{}-{} {}",
        code[..8].to_lowercase(),
        &code[8..16],
        code[16..].to_lowercase()
    );
    let mfa_token = server.login(&enrolled.user).await;
    let reply = server.verify_recovery_code(&mfa_token, &typed).await;
    assert!(reply.ok()["recovery_code"].is_string());
    server.shutdown().await;
}

#[tokio::test]
async fn oob_codes_are_single_use_and_bound_to_the_user() {
    let server = TestServer::shared().await;
    let alice = server.enrolled_email_user().await;
    let bob = server.enrolled_email_user().await;
    let mfa_token = server.login(&alice.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let oob_code = challenge.str("oob_code");
    let code = server.last_code(alice.to.as_deref().unwrap()).await;

    // Bob's login cannot use Alice's transaction, even with the right code.
    let bobs_token = server.login(&bob.user).await;
    let reply = server.verify_oob(&bobs_token, &oob_code, &code).await;
    reply.assert_error(403, "invalid_grant");

    server.verify_oob(&mfa_token, &oob_code, &code).await.ok();
    server
        .verify_oob(&mfa_token, &oob_code, &code)
        .await
        .assert_error(403, "invalid_grant");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_binding_code_is_refused() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let oob_code = challenge.str("oob_code");
    let code = server.last_code(enrolled.to.as_deref().unwrap()).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = server.verify_oob(&mfa_token, &oob_code, wrong).await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.description(), "Invalid binding_code.");
    // A wrong guess does not burn the transaction.
    server.verify_oob(&mfa_token, &oob_code, &code).await.ok();
    server.shutdown().await;
}

#[tokio::test]
async fn oob_codes_expire_after_five_minutes() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_email_user().await;
    let to = enrolled.to.clone().unwrap();

    // Just inside the 5 minutes: accepted.
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    server.advance(290).await;
    let code = server.last_code(&to).await;
    server
        .verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
        .await
        .ok();

    // Past them: expired, although the mfa_token (10 minutes) is still valid.
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let code = server.last_code(&to).await;
    server.advance(301).await;
    let reply = server
        .verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
        .await;
    reply.assert_error(401, "expired_token");
    assert_eq!(reply.description(), "oob_code is expired");
    // Still "expired" once the background purger (every 5 s) dropped it from memory.
    purge_now(&server);
    let reply = server
        .verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
        .await;
    reply.assert_error(401, "expired_token");
    assert_eq!(reply.description(), "oob_code is expired");
    // A new challenge on the same mfa_token works.
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let code = server.last_code(&to).await;
    server
        .verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
        .await
        .ok();
    server.shutdown().await;
}

// --- lifetimes -------------------------------------------------------------------------

#[tokio::test]
async fn mfa_token_expires_after_ten_minutes() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;

    let mfa_token = server.login(&enrolled.user).await;
    server.advance(590).await;
    server.challenge(&mfa_token, json!({})).await.ok();

    let mfa_token = server.login(&enrolled.user).await;
    server.advance(601).await;
    server.settle_totp_step().await;
    let reply = server
        .verify_otp(&mfa_token, &server.totp(enrolled.secret(), 0))
        .await;
    reply.assert_error(401, "expired_token");
    assert_eq!(reply.description(), "mfa_token is expired");
    server
        .challenge(&mfa_token, json!({}))
        .await
        .assert_error(401, "expired_token");
    server
        .verify_recovery_code(&mfa_token, enrolled.recovery_code.as_deref().unwrap())
        .await
        .assert_error(401, "expired_token");
    let reply = server.list(&mfa_token).await;
    reply.assert_error(401, "expired_token");
    assert!(
        reply
            .www_authenticate
            .is_some_and(|h| h.starts_with("Bearer "))
    );
    server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await
        .assert_error(401, "expired_token");
    // Still "expired" once the background purger (every 5 s) dropped it from memory: a
    // client coming back later than that meets a purged token.
    purge_now(&server);
    let reply = server.challenge(&mfa_token, json!({})).await;
    reply.assert_error(401, "expired_token");
    assert_eq!(reply.description(), "mfa_token is expired");
    server
        .verify_otp(&mfa_token, &server.totp(enrolled.secret(), 0))
        .await
        .assert_error(401, "expired_token");
    server
        .list(&mfa_token)
        .await
        .assert_error(401, "expired_token");

    // A fresh login is unaffected, and the code was not used up by the refusals.
    let mfa_token = server.login(&enrolled.user).await;
    server
        .verify_otp(&mfa_token, &server.totp(enrolled.secret(), 0))
        .await
        .ok();
    server.shutdown().await;
}

#[tokio::test]
async fn mfa_api_access_tokens_last_600_seconds() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;
    assert_eq!(enrolled.tokens["expires_in"], 600);
    let access_token = enrolled.access_token();
    let claims = jwt_claims(&access_token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    server.advance(590).await;
    server.list(&access_token).await.ok();
    server.advance(11).await;
    let reply = server.list(&access_token).await;
    reply.assert_error(401, "invalid_token");
    assert_eq!(reply.description(), "The access token is expired.");
    assert!(
        reply
            .www_authenticate
            .as_deref()
            .is_some_and(|h| h.starts_with("Bearer error=\"invalid_token\"")),
        "{reply:?}"
    );
    server
        .associate(&access_token, &json!({"authenticator_types": ["otp"]}))
        .await
        .assert_error(401, "invalid_grant");
    server
        .delete(&access_token, "totp|dev_AAAAAAAAAAAAAAAA")
        .await
        .assert_error(401, "invalid_token");
    server.shutdown().await;
}

#[tokio::test]
async fn another_servers_tokens_are_refused() {
    let a = TestServer::shared().await;
    let b = TestServer::start().await;
    let enrolled = a.enrolled_otp_user().await;
    b.list(&enrolled.access_token())
        .await
        .assert_error(401, "invalid_token");
    b.list(&enrolled.mfa_token)
        .await
        .assert_error(401, "invalid_token");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn mfa_token_is_bound_to_its_client() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let mfa_token = server.login(&enrolled.user).await;
    let code = server.next_totp(enrolled.secret()).await;
    let reply = server
        .token_form(&[
            ("grant_type", OTP),
            ("client_id", PUBLIC_CLIENT_ID),
            ("mfa_token", &mfa_token),
            ("otp", &code),
        ])
        .await;
    reply.assert_error(403, "invalid_grant");
    let reply = server
        .send(server.request(Method::POST, "/mfa/challenge").json(&json!({
            "client_id": PUBLIC_CLIENT_ID,
            "mfa_token": mfa_token,
        })))
        .await;
    reply.assert_error(403, "invalid_grant");
    // The refused attempt did not use the code up.
    server.verify_otp(&mfa_token, &code).await.ok();
    server.shutdown().await;
}

// --- failed-code limiter ---------------------------------------------------------------

#[tokio::test]
async fn ten_wrong_codes_lock_the_user_out_even_for_the_right_code() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let secret = enrolled.secret();
    server.settle_totp_step().await;
    let mfa_token = server.login(&enrolled.user).await;
    let wrong = wrong_code(&server, secret);
    for attempt in 1..=10 {
        let reply = server.verify_otp(&mfa_token, &wrong).await;
        assert_eq!(reply.status, 403, "attempt {attempt}: {reply:?}");
        reply.assert_error(403, "invalid_grant");
    }
    let reply = server.verify_otp(&mfa_token, &server.totp(secret, 0)).await;
    reply.assert_error(429, "too_many_attempts");
    assert_eq!(
        reply.description(),
        "Too many failed codes. Wait for some minutes before retrying."
    );
    // The limiter is the user's: a new login and the other factors are locked too.
    let mfa_token = server.login(&enrolled.user).await;
    server
        .verify_otp(&mfa_token, &server.totp(secret, 0))
        .await
        .assert_error(429, "too_many_attempts");
    server
        .verify_recovery_code(&mfa_token, enrolled.recovery_code.as_deref().unwrap())
        .await
        .assert_error(429, "too_many_attempts");
    // Other users are not.
    let other = server.enrolled_otp_user().await;
    let other_token = server.login(&other.user).await;
    server
        .verify_otp(&other_token, &wrong_code(&server, other.secret()))
        .await
        .assert_error(403, "invalid_grant");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_binding_and_recovery_codes_count_towards_the_lockout() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let recovery = enrolled.recovery_code.clone().unwrap();
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let oob_code = challenge.str("oob_code");
    let code = server.last_code(enrolled.to.as_deref().unwrap()).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        server
            .verify_oob(&mfa_token, &oob_code, wrong)
            .await
            .assert_error(403, "invalid_grant");
    }
    for _ in 0..5 {
        server
            .verify_recovery_code(&mfa_token, "AAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .assert_error(403, "invalid_grant");
    }
    server
        .verify_oob(&mfa_token, &oob_code, &code)
        .await
        .assert_error(429, "too_many_attempts");
    server
        .verify_recovery_code(&mfa_token, &recovery)
        .await
        .assert_error(429, "too_many_attempts");
    server.shutdown().await;
}

#[tokio::test]
async fn the_lockout_refills_one_attempt_per_six_minutes_up_to_ten() {
    let server = TestServer::start().await;
    let enrolled = server.enrolled_otp_user().await;
    let secret = enrolled.secret();
    let mfa_token = server.login(&enrolled.user).await;
    let wrong = wrong_code(&server, secret);
    for _ in 0..10 {
        server
            .verify_otp(&mfa_token, &wrong)
            .await
            .assert_error(403, "invalid_grant");
    }
    server
        .verify_otp(&mfa_token, &wrong)
        .await
        .assert_error(429, "too_many_attempts");

    // 6 minutes give back exactly one attempt.
    server.advance(360).await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&enrolled.user).await;
    let wrong = wrong_code(&server, secret);
    server
        .verify_otp(&mfa_token, &wrong)
        .await
        .assert_error(403, "invalid_grant");
    server
        .verify_otp(&mfa_token, &server.totp(secret, 0))
        .await
        .assert_error(429, "too_many_attempts");

    // Another 6 minutes: the right code goes through.
    server.advance(360).await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&enrolled.user).await;
    server
        .verify_otp(&mfa_token, &server.totp(secret, 0))
        .await
        .ok();

    // Two hours refill the bucket to 10, not to 20.
    server.advance(7200).await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&enrolled.user).await;
    let wrong = wrong_code(&server, secret);
    for attempt in 1..=10 {
        let reply = server.verify_otp(&mfa_token, &wrong).await;
        assert_eq!(reply.status, 403, "attempt {attempt}: {reply:?}");
    }
    server
        .verify_otp(&mfa_token, &server.totp(secret, 0))
        .await
        .assert_error(429, "too_many_attempts");
    server.shutdown().await;
}

// --- concurrency -----------------------------------------------------------------------

const RACERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_sent_concurrently_is_accepted_once() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let code = server.next_totp(enrolled.secret()).await;
    // Half of the requests on one login, half on another: the rule is per code.
    let first = server.login(&enrolled.user).await;
    let second = server.login(&enrolled.user).await;
    let replies = concurrently(&server, RACERS, |client, i| {
        let token = if i % 2 == 0 { &first } else { &second };
        otp_request(client, &server, token, &code)
    })
    .await;
    assert_eq!(count(&replies, 200, None), 1, "{replies:#?}");
    // Every other request is a failed code, and each is counted: 10 refusals, then locked.
    assert_eq!(
        count(&replies, 403, Some("invalid_grant")),
        10,
        "{replies:#?}"
    );
    assert_eq!(count(&replies, 429, Some("too_many_attempts")), RACERS - 11);
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_error_envelope(reply);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_oob_code_sent_concurrently_is_accepted_once() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let oob_code = challenge.str("oob_code");
    let code = server.last_code(enrolled.to.as_deref().unwrap()).await;
    let replies = concurrently(&server, RACERS, |client, _| {
        client.post(server.url("/oauth/token")).form(&[
            ("grant_type", OOB),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("mfa_token", mfa_token.as_str()),
            ("oob_code", oob_code.as_str()),
            ("binding_code", code.as_str()),
        ])
    })
    .await;
    assert_eq!(count(&replies, 200, None), 1, "{replies:#?}");
    assert_eq!(
        count(&replies, 403, Some("invalid_grant")),
        RACERS - 1,
        "{replies:#?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recovery_code_sent_concurrently_is_accepted_once() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let recovery = enrolled.recovery_code.clone().unwrap();
    let mfa_token = server.login(&enrolled.user).await;
    let replies = concurrently(&server, RACERS, |client, _| {
        client.post(server.url("/oauth/token")).form(&[
            ("grant_type", RECOVERY),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("mfa_token", mfa_token.as_str()),
            ("recovery_code", recovery.as_str()),
        ])
    })
    .await;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "{replies:#?}");
    assert!(winners[0].body["recovery_code"].is_string());
    assert_eq!(
        count(&replies, 403, Some("invalid_grant")),
        10,
        "{replies:#?}"
    );
    assert_eq!(count(&replies, 429, Some("too_many_attempts")), RACERS - 11);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_are_counted_exactly() {
    let server = TestServer::shared().await;
    // Ten at once: all refused as wrong (none locked yet), and then the user is locked.
    let locked = server.enrolled_otp_user().await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&locked.user).await;
    let wrong = wrong_code(&server, locked.secret());
    let replies = concurrently(&server, 10, |client, _| {
        otp_request(client, &server, &mfa_token, &wrong)
    })
    .await;
    assert_eq!(
        count(&replies, 403, Some("invalid_grant")),
        10,
        "{replies:#?}"
    );
    server
        .verify_otp(&mfa_token, &server.totp(locked.secret(), 0))
        .await
        .assert_error(429, "too_many_attempts");

    // Nine at once leave exactly one attempt: the right code passes.
    let spared = server.enrolled_otp_user().await;
    server.settle_totp_step().await;
    let mfa_token = server.login(&spared.user).await;
    let wrong = wrong_code(&server, spared.secret());
    let replies = concurrently(&server, 9, |client, _| {
        otp_request(client, &server, &mfa_token, &wrong)
    })
    .await;
    assert_eq!(
        count(&replies, 403, Some("invalid_grant")),
        9,
        "{replies:#?}"
    );
    server
        .verify_otp(&mfa_token, &server.totp(spared.secret(), 0))
        .await
        .ok();
    server.shutdown().await;
}

//! Every error the reference server implements from the API's documented and observed
//! behaviour, over real HTTP: status, `error` code and the JSON envelope, including the errors
//! the framework produces (bad bodies, 413, 404, 405).

use crate::support::server::*;
use mfa_conform::server::config::GRANT_PASSWORD;
use reqwest::Method;
use serde_json::{Value, json};

/// Form parameters, in order.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// The confidential client's credentials plus `params`.
fn with_client<'a>(params: &[(&'a str, &'a str)]) -> Form<'a> {
    let mut all = vec![("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    all.extend_from_slice(params);
    all
}

/// `params` without the one named `name`.
fn without<'a>(params: &[(&'a str, &'a str)], name: &str) -> Form<'a> {
    params.iter().filter(|(k, _)| *k != name).cloned().collect()
}

/// `params` with `name` set to the empty string (which counts as absent).
fn emptied<'a>(params: &[(&'a str, &'a str)], name: &str) -> Form<'a> {
    params
        .iter()
        .map(|(k, v)| if *k == name { (*k, "") } else { (*k, *v) })
        .collect()
}

#[track_caller]
fn assert_missing(reply: &Reply, name: &str) {
    reply.assert_error(400, "invalid_request");
    assert_eq!(
        reply.description(),
        format!("Missing required parameter: {name}"),
        "{reply:?}"
    );
}

/// An access token for the MFA API with exactly `scope`, from a login completed by an
/// email challenge.
async fn mfa_api_token(server: &TestServer, enrolled: &Enrolled, scope: &str) -> String {
    let mfa_token = server
        .login_with(
            &enrolled.user,
            &LoginOptions {
                audience: Some(server.mfa_audience()),
                scope: Some(scope.to_owned()),
            },
        )
        .await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let code = server.last_code(enrolled.to.as_deref().unwrap()).await;
    let reply = server
        .verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
        .await;
    assert_eq!(reply.ok()["scope"], scope);
    reply.str("access_token")
}

// --- 400 invalid_request: missing parameters -------------------------------------------

#[tokio::test]
async fn token_endpoint_reports_each_missing_parameter() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let u = user.username.as_str();
    let p = user.password.as_str();
    let cases: Vec<(Form, Vec<&str>)> = vec![
        (
            with_client(&[
                ("grant_type", GRANT_PASSWORD),
                ("username", u),
                ("password", p),
            ]),
            vec!["grant_type", "client_id", "username", "password"],
        ),
        (
            with_client(&[
                ("grant_type", PASSWORD_REALM),
                ("username", u),
                ("password", p),
                ("realm", REALM),
            ]),
            vec!["grant_type", "client_id", "username", "password", "realm"],
        ),
        (
            with_client(&[("grant_type", OTP), ("mfa_token", "t"), ("otp", "123456")]),
            vec!["grant_type", "client_id", "mfa_token", "otp"],
        ),
        (
            with_client(&[
                ("grant_type", OOB),
                ("mfa_token", "t"),
                ("oob_code", "o"),
                ("binding_code", "123456"),
            ]),
            vec!["grant_type", "client_id", "mfa_token", "oob_code"],
        ),
        (
            with_client(&[
                ("grant_type", RECOVERY),
                ("mfa_token", "t"),
                ("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA"),
            ]),
            vec!["grant_type", "client_id", "mfa_token", "recovery_code"],
        ),
    ];
    for (params, required) in &cases {
        for name in required {
            // Without client_id the secret alone names no client.
            let params = if *name == "client_id" {
                without(params, "client_secret")
            } else {
                params.clone()
            };
            assert_missing(&server.token_form(&without(&params, name)).await, name);
            assert_missing(&server.token_form(&emptied(&params, name)).await, name);
        }
    }
    // An empty body misses grant_type first.
    let reply = server
        .send(server.request(Method::POST, "/oauth/token"))
        .await;
    assert_missing(&reply, "grant_type");
    server.shutdown().await;
}

#[tokio::test]
async fn mfa_oob_without_binding_code_is_invalid_request() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let mfa_token = server.login(&enrolled.user).await;
    let challenge = server.challenge(&mfa_token, json!({})).await;
    let reply = server
        .mfa_grant(OOB, &mfa_token, &[("oob_code", &challenge.str("oob_code"))])
        .await;
    assert_missing(&reply, "binding_code");
    server.shutdown().await;
}

#[tokio::test]
async fn challenge_and_associate_report_each_missing_parameter() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;

    let full =
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "mfa_token": mfa_token});
    for name in ["client_id", "mfa_token"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(name);
        if name == "client_id" {
            body.as_object_mut().unwrap().remove("client_secret");
        }
        let reply = server
            .send(server.request(Method::POST, "/mfa/challenge").json(&body))
            .await;
        assert_missing(&reply, name);
    }

    let cases = [
        (json!({}), "authenticator_types"),
        (json!({"authenticator_types": []}), "authenticator_types"),
        (json!({"authenticator_types": ["oob"]}), "oob_channels"),
        (
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"]}),
            "phone_number",
        ),
        (
            json!({"authenticator_types": ["oob"], "oob_channels": ["voice"], "phone_number": ""}),
            "phone_number",
        ),
        (
            json!({"authenticator_types": ["oob"], "oob_channels": ["email"], "phone_number": "+15551239167"}),
            "email",
        ),
    ];
    for (body, name) in cases {
        assert_missing(&server.associate(&mfa_token, &body).await, name);
    }
    // Nothing was enrolled by the refused calls.
    assert_eq!(server.list(&mfa_token).await.ok(), &json!([]));

    let reply = server
        .send(server.request(Method::GET, "/__control/messages"))
        .await;
    assert_missing(&reply, "to");
    server.shutdown().await;
}

// --- client authentication -------------------------------------------------------------

#[tokio::test]
async fn bad_client_credentials_are_401_invalid_client() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let login = |client: &[(&'static str, &'static str)]| {
        let mut params = vec![
            ("grant_type", PASSWORD_REALM.to_owned()),
            ("username", user.username.clone()),
            ("password", user.password.clone()),
            ("realm", REALM.to_owned()),
        ];
        params.extend(client.iter().map(|(k, v)| (*k, v.to_string())));
        server.send(server.request(Method::POST, "/oauth/token").form(&params))
    };
    for client in [
        &[("client_id", "no-such-client")][..],
        &[("client_id", "no-such-client"), ("client_secret", "x")],
        &[("client_id", CLIENT_ID), ("client_secret", "wrong-secret")],
        &[("client_id", CLIENT_ID)],
        &[
            ("client_id", NO_MFA_CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    ] {
        login(client).await.assert_error(401, "invalid_client");
    }

    // HTTP Basic with a wrong secret, and a Basic header that is not base64.
    let form = [
        ("grant_type", PASSWORD_REALM),
        ("username", user.username.as_str()),
        ("password", user.password.as_str()),
        ("realm", REALM),
    ];
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth/token")
                .basic_auth(CLIENT_ID, Some("wrong-secret"))
                .form(&form),
        )
        .await;
    reply.assert_error(401, "invalid_client");
    let reply = server
        .send(
            server
                .request(Method::POST, "/oauth/token")
                .header("authorization", "Basic !!!not-base64")
                .form(&form),
        )
        .await;
    reply.assert_error(401, "invalid_client");

    // /mfa/challenge authenticates the client the same way.
    let mfa_token = server.login(&user).await;
    for client in [
        json!({"client_id": "no-such-client"}),
        json!({"client_id": CLIENT_ID, "client_secret": "wrong-secret"}),
        json!({"client_id": CLIENT_ID}),
    ] {
        let mut body = client;
        body["mfa_token"] = mfa_token.clone().into();
        let reply = server
            .send(server.request(Method::POST, "/mfa/challenge").json(&body))
            .await;
        reply.assert_error(401, "invalid_client");
    }

    // /mfa/associate checks credentials when some are sent.
    for client in [
        json!({"client_id": "no-such-client"}),
        json!({"client_id": CLIENT_ID, "client_secret": "wrong-secret"}),
    ] {
        let mut body = client;
        body["authenticator_types"] = json!(["otp"]);
        server
            .associate(&mfa_token, &body)
            .await
            .assert_error(401, "invalid_client");
    }
    assert_eq!(server.list(&mfa_token).await.ok(), &json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn mfa_grants_need_the_grant_enabled_for_the_client() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    // The client may log in with a password...
    let reply = server
        .token_form(&[
            ("grant_type", PASSWORD_REALM),
            ("client_id", NO_MFA_CLIENT_ID),
            ("client_secret", NO_MFA_CLIENT_SECRET),
            ("username", &user.username),
            ("password", &user.password),
            ("realm", REALM),
        ])
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");
    // ...but not use any MFA grant.
    for (grant, extra) in [
        (OTP, ("otp", "123456")),
        (OOB, ("oob_code", "x")),
        (RECOVERY, ("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA")),
    ] {
        let reply = server
            .token_form(&[
                ("grant_type", grant),
                ("client_id", NO_MFA_CLIENT_ID),
                ("client_secret", NO_MFA_CLIENT_SECRET),
                ("mfa_token", &mfa_token),
                extra,
            ])
            .await;
        reply.assert_error(403, "unauthorized_client");
        assert_eq!(
            reply.description(),
            format!("Grant type '{grant}' not allowed for the client.")
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_grant_types_are_unsupported() {
    let server = TestServer::shared().await;
    for grant in [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "http://auth0.com/oauth/grant-type/mfa-push",
    ] {
        let reply = server
            .token_form(&with_client(&[("grant_type", grant)]))
            .await;
        reply.assert_error(400, "unsupported_grant_type");
        assert!(reply.description().contains(grant), "{reply:?}");
    }
    server.shutdown().await;
}

// --- 403 invalid_grant -----------------------------------------------------------------

#[tokio::test]
async fn wrong_password_and_unknown_user_are_403_invalid_grant() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    for (username, password) in [
        (user.username.as_str(), "wrong-password"),
        ("nobody@example.com", user.password.as_str()),
        (
            user.username.as_str(),
            &user.password[..user.password.len() - 1],
        ),
    ] {
        for grant in [GRANT_PASSWORD, PASSWORD_REALM] {
            let reply = server
                .token_form(&with_client(&[
                    ("grant_type", grant),
                    ("username", username),
                    ("password", password),
                    ("realm", REALM),
                ]))
                .await;
            reply.assert_error(403, "invalid_grant");
            assert_eq!(reply.description(), "Wrong email or password.");
            assert!(reply.body.get("mfa_token").is_none());
        }
    }
    // An unknown realm is a bad request, not a wrong password.
    let reply = server
        .token_form(&with_client(&[
            ("grant_type", PASSWORD_REALM),
            ("username", &user.username),
            ("password", &user.password),
            ("realm", "no-such-connection"),
        ]))
        .await;
    reply.assert_error(400, "invalid_request");
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_mfa_token_and_oob_code_are_403_invalid_grant() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    for bad in ["garbage", "Fe26.2**not-a-token", "eyJhbGciOi.x.y"] {
        for (grant, extra) in [
            (OTP, ("otp", "123456")),
            (OOB, ("oob_code", "x")),
            (RECOVERY, ("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA")),
        ] {
            let reply = server
                .mfa_grant(grant, bad, &[extra, ("binding_code", "1")])
                .await;
            reply.assert_error(403, "invalid_grant");
            assert_eq!(reply.description(), "Malformed mfa_token", "{grant}");
        }
        let reply = server.challenge(bad, json!({})).await;
        reply.assert_error(403, "invalid_grant");
        assert_eq!(reply.description(), "Malformed mfa_token");
    }
    let mfa_token = server.login(&enrolled.user).await;
    let reply = server
        .verify_oob(&mfa_token, "not-an-oob-code", "123456")
        .await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.description(), "Malformed oob_code");
    server.shutdown().await;
}

// --- bearer-protected endpoints --------------------------------------------------------

#[tokio::test]
async fn bad_bearer_tokens_are_401() {
    // Expired bearers (mfa_token and access token) are in server_security.rs, which owns
    // the clock.
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    // An access token for another audience (the default /userinfo).
    let mfa_token = server.login(&enrolled.user).await;
    let code = server.next_totp(enrolled.secret()).await;
    let other_audience = server
        .verify_otp(&mfa_token, &code)
        .await
        .str("access_token");
    assert_eq!(
        jwt_claims(&other_audience)["aud"],
        format!("{}/userinfo", server.base)
    );

    let associate_body = json!({"authenticator_types": ["otp"]});
    let authenticator = "totp|dev_AAAAAAAAAAAAAAAA";
    let cases: Vec<(&str, Option<String>)> = vec![
        ("absent", None),
        ("not a token", Some("Bearer garbage".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("malformed JWT", Some("Bearer a.b.c".into())),
        (
            "wrong scheme",
            Some(format!("Basic {}", enrolled.access_token())),
        ),
        ("wrong audience", Some(format!("Bearer {other_audience}"))),
    ];
    for (what, authorization) in &cases {
        let with_auth = |request: reqwest::RequestBuilder| match authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        let reply = server
            .send(with_auth(
                server.request(Method::GET, "/mfa/authenticators"),
            ))
            .await;
        assert_eq!(reply.status, 401, "list, {what}: {reply:?}");
        reply.assert_error(401, "invalid_token");
        assert!(
            reply
                .www_authenticate
                .as_deref()
                .is_some_and(|h| h.starts_with("Bearer error=\"invalid_token\"")),
            "list, {what}: {reply:?}"
        );
        let reply = server
            .send(with_auth(server.request(Method::POST, "/mfa/associate")).json(&associate_body))
            .await;
        assert_eq!(reply.status, 401, "associate, {what}: {reply:?}");
        reply.assert_error(401, "invalid_grant");
        let reply = server
            .send(with_auth(server.request(
                Method::DELETE,
                &format!("/mfa/authenticators/{authenticator}"),
            )))
            .await;
        assert_eq!(reply.status, 401, "delete, {what}: {reply:?}");
        reply.assert_error(401, "invalid_token");
    }
    let reply = server.associate("garbage", &associate_body).await;
    assert_eq!(
        reply.description(),
        "The mfa_token provided is invalid. Try getting a new token."
    );

    server.shutdown().await;
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let list = server.list(&enrolled.access_token()).await;
    let id = list.ok()[0]["id"].as_str().unwrap().to_owned();

    // The mfa_token may list and (before enrollment) associate, never delete.
    let mfa_token = server.login(&enrolled.user).await;
    let reply = server.delete(&mfa_token, &id).await;
    reply.assert_error(403, "insufficient_scope");
    assert_eq!(
        reply.description(),
        "Insufficient scope, expected: remove:authenticators"
    );

    let read_only = mfa_api_token(&server, &enrolled, "read:authenticators").await;
    server.list(&read_only).await.ok();
    server
        .delete(&read_only, &id)
        .await
        .assert_error(403, "insufficient_scope");
    server
        .associate(&read_only, &json!({"authenticator_types": ["otp"]}))
        .await
        .assert_error(403, "insufficient_scope");

    let enroll_only = mfa_api_token(&server, &enrolled, "enroll").await;
    server
        .list(&enroll_only)
        .await
        .assert_error(403, "insufficient_scope");
    server
        .associate(&enroll_only, &json!({"authenticator_types": ["otp"]}))
        .await
        .ok();

    // Nothing was deleted.
    let after = server.list(&enrolled.access_token()).await;
    assert!(
        after
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str()),
        "{after:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_and_foreign_authenticator_ids_are_404() {
    let server = TestServer::shared().await;
    let alice = server.enrolled_email_user().await;
    let bob = server.enrolled_email_user().await;
    let bobs_list = server.list(&bob.access_token()).await;
    let bobs_id = bobs_list.ok()[0]["id"].as_str().unwrap().to_owned();

    for id in [
        "email|dev_AAAAAAAAAAAAAAAA".to_owned(),
        "nonsense".to_owned(),
        bobs_id.clone(),
        bobs_id.replace('|', "%7C"),
    ] {
        let reply = server.delete(&alice.access_token(), &id).await;
        reply.assert_error(404, "not_found");
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
    }
    assert_eq!(server.list(&bob.access_token()).await.ok(), bobs_list.ok());
    server.shutdown().await;
}

// --- challenge errors ------------------------------------------------------------------

#[tokio::test]
async fn not_enrolled_is_unsupported_challenge_type() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let not_enrolled = "User is not enrolled. You can use /mfa/associate endpoint to enroll the first authenticator.";

    let reply = server.challenge(&mfa_token, json!({})).await;
    reply.assert_error(401, "unsupported_challenge_type");
    assert_eq!(reply.description(), not_enrolled);
    let reply = server.verify_otp(&mfa_token, "123456").await;
    reply.assert_error(401, "unsupported_challenge_type");
    assert_eq!(reply.description(), not_enrolled);
    let reply = server
        .verify_recovery_code(&mfa_token, "AAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    reply.assert_error(403, "unsupported_challenge_type");
    assert_eq!(reply.description(), "User does not have a recovery-code.");

    // A pending (unconfirmed) enrollment is not an enrollment either.
    server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone_for(&user)}),
        )
        .await
        .ok();
    let reply = server.challenge(&mfa_token, json!({})).await;
    reply.assert_error(401, "unsupported_challenge_type");
    assert_eq!(reply.description(), not_enrolled);
    server
        .verify_recovery_code(&mfa_token, "AAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_error(403, "unsupported_challenge_type");
    server.shutdown().await;
}

#[tokio::test]
async fn no_authenticator_of_the_asked_type_is_unsupported_challenge_type() {
    let server = TestServer::shared().await;
    let otp_user = server.enrolled_otp_user().await;
    let mfa_token = server.login(&otp_user.user).await;
    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "oob"}))
        .await;
    reply.assert_error(401, "unsupported_challenge_type");
    assert_eq!(
        reply.description(),
        "User does not have any enrolled authenticator with the supported challenge type (oob)"
    );

    let email_user = server.enrolled_email_user().await;
    let mfa_token = server.login(&email_user.user).await;
    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "otp"}))
        .await;
    reply.assert_error(401, "unsupported_challenge_type");
    assert!(reply.description().ends_with("(otp)"), "{reply:?}");
    let reply = server.verify_otp(&mfa_token, "123456").await;
    reply.assert_error(401, "unsupported_challenge_type");
    server.shutdown().await;
}

#[tokio::test]
async fn challenge_rejects_unknown_types_and_foreign_authenticators() {
    let server = TestServer::shared().await;
    let alice = server.enrolled_email_user().await;
    let bob = server.enrolled_email_user().await;
    let bobs_id = server.list(&bob.access_token()).await.ok()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mfa_token = server.login(&alice.user).await;

    for id in ["email|dev_AAAAAAAAAAAAAAAA", bobs_id.as_str()] {
        let reply = server
            .challenge(&mfa_token, json!({"authenticator_id": id}))
            .await;
        reply.assert_error(400, "invalid_authenticator");
    }
    // Bob got no code from Alice's attempt.
    assert_eq!(server.messages(bob.to.as_deref().unwrap()).await.len(), 1);

    for challenge_type in ["push", "otp sms", "oob,webauthn"] {
        let reply = server
            .challenge(&mfa_token, json!({"challenge_type": challenge_type}))
            .await;
        reply.assert_error(400, "invalid_request");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn associate_rejects_bad_enrollment_requests() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let phone = phone_for(&user);
    let oob = |channels: Value, extra: Value| {
        let mut body = json!({"authenticator_types": ["oob"], "oob_channels": channels});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        json!({"authenticator_types": ["push"]}),
        json!({"authenticator_types": ["otp", "oob"]}),
        json!({"authenticator_types": ["recovery-code"]}),
        oob(json!(["sms", "voice"]), json!({"phone_number": phone})),
        oob(json!(["fax"]), json!({"phone_number": phone})),
        oob(json!(["sms"]), json!({"phone_number": "5551239167"})),
        oob(json!(["sms"]), json!({"phone_number": "+0123456789"})),
        oob(json!(["voice"]), json!({"phone_number": "+1 555 123 9167"})),
        oob(json!(["sms"]), json!({"phone_number": "+123"})),
        oob(json!(["email"]), json!({"email": "not-an-email"})),
        oob(json!(["email"]), json!({"email": "a@localhost"})),
        oob(json!(["email"]), json!({"email": "a b@example.com"})),
    ];
    for body in &cases {
        let reply = server.associate(&mfa_token, body).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        reply.assert_error(400, "invalid_request");
    }
    assert_eq!(server.list(&mfa_token).await.ok(), &json!([]));
    assert!(server.messages(&phone).await.is_empty());
    server.shutdown().await;
}

// --- malformed requests ----------------------------------------------------------------

#[tokio::test]
async fn malformed_bodies_are_400_invalid_request() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let endpoints = ["/oauth/token", "/mfa/challenge", "/mfa/associate"];
    let bodies: [(&str, &str); 8] = [
        ("application/json", "{nope"),
        ("application/json", "{\"grant_type\": \"password\","),
        ("application/json", "[1, 2]"),
        ("application/json", "\"a string\""),
        ("application/json", "42"),
        ("text/plain", "grant_type=password"),
        ("application/xml", "<grant_type>password</grant_type>"),
        ("multipart/form-data; boundary=x", "--x--"),
    ];
    for path in endpoints {
        for (content_type, body) in bodies {
            let reply = server
                .send(
                    server
                        .request(Method::POST, path)
                        .bearer_auth(&mfa_token)
                        .header("content-type", content_type)
                        .body(body),
                )
                .await;
            assert_eq!(reply.status, 400, "{path} {content_type} {body}: {reply:?}");
            reply.assert_error(400, "invalid_request");
        }
    }

    // Parameters of the wrong JSON type.
    let wrong_types = [
        ("/oauth/token", json!({"grant_type": 5})),
        (
            "/oauth/token",
            json!({"grant_type": OTP, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "mfa_token": mfa_token, "otp": 123456}),
        ),
        ("/oauth/token", json!({"grant_type": ["password"]})),
        (
            "/oauth/token",
            json!({"grant_type": GRANT_PASSWORD, "client_id": {"id": CLIENT_ID}}),
        ),
        (
            "/mfa/challenge",
            json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "mfa_token": true}),
        ),
        (
            "/mfa/challenge",
            json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "mfa_token": mfa_token, "challenge_type": 1}),
        ),
        ("/mfa/associate", json!({"authenticator_types": 7})),
        ("/mfa/associate", json!({"authenticator_types": [1]})),
        (
            "/mfa/associate",
            json!({"authenticator_types": ["oob"], "oob_channels": {"sms": true}}),
        ),
        (
            "/mfa/associate",
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": 15551239167u64}),
        ),
    ];
    for (path, body) in &wrong_types {
        let reply = server
            .send(
                server
                    .request(Method::POST, path)
                    .bearer_auth(&mfa_token)
                    .json(body),
            )
            .await;
        assert_eq!(reply.status, 400, "{path} {body}: {reply:?}");
        reply.assert_error(400, "invalid_request");
    }
    assert_eq!(server.list(&mfa_token).await.ok(), &json!([]));
    server.shutdown().await;
}

/// POSTs a 1 MB JSON body on a connection of its own.
async fn post_one_megabyte(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    bearer: &str,
) -> Reply {
    let body =
        json!({"grant_type": GRANT_PASSWORD, "padding": "a".repeat(1024 * 1024)}).to_string();
    let response = client
        .post(server.url(path))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:?}"));
    Reply::read(response).await
}

#[tokio::test]
async fn a_one_megabyte_body_is_413_with_a_json_error() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    for path in ["/oauth/token", "/mfa/challenge", "/mfa/associate"] {
        // A fresh client each time: the server closes the connection after a 413 (see the
        // next test).
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let reply = post_one_megabyte(&server, &client, path, &mfa_token).await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.text);
        reply.assert_error(413, "invalid_request");
    }
    server.shutdown().await;
}

/// After a 413 the server closes the connection (it did not read the body), but without
/// saying so: a keep-alive client may then send its next request into the dead connection
/// (reqwest fails it with `IncompleteMessage` about one time in five).
#[tokio::test]

async fn a_413_announces_that_the_connection_closes() {
    let server = TestServer::shared().await;
    let body = json!({"padding": "a".repeat(1024 * 1024)}).to_string();
    let response = server
        .http
        .post(server.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("413 response");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let server = TestServer::shared().await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/nope"),
        (Method::POST, "/oauth/tokens"),
        (Method::GET, "/mfa/"),
        (Method::POST, "/mfa/enroll"),
        (Method::GET, "/.well-known/jwks"),
        (Method::GET, "/mfa/authenticators/a/b"),
    ] {
        let reply = server.send(server.request(method.clone(), path)).await;
        assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        reply.assert_error(404, "not_found");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_methods_are_405_json() {
    let server = TestServer::shared().await;
    for (method, path) in [
        (Method::GET, "/oauth/token"),
        (Method::PUT, "/oauth/token"),
        (Method::GET, "/mfa/associate"),
        (Method::GET, "/mfa/challenge"),
        (Method::POST, "/mfa/authenticators"),
        (Method::DELETE, "/mfa/authenticators"),
        (Method::GET, "/mfa/authenticators/totp%7Cdev_x"),
        (Method::POST, "/.well-known/openid-configuration"),
        (Method::POST, "/.well-known/jwks.json"),
        (Method::DELETE, "/__control/users"),
    ] {
        let reply = server.send(server.request(method.clone(), path)).await;
        assert_eq!(reply.status, 405, "{method} {path}: {reply:?}");
        reply.assert_error(405, "method_not_allowed");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn control_api_rejects_bad_input() {
    let server = TestServer::start().await;
    for body in [
        "",
        "{}",
        "{\"advance_seconds\": -5}",
        "{\"advance_seconds\": \"60\"}",
        "{\"advance_seconds\": 60, \"extra\": 1}",
        "nope",
    ] {
        let reply = server
            .send(
                server
                    .request(Method::POST, "/__control/clock")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        reply.assert_error(400, "invalid_request");
    }
    assert_eq!(server.state.clock.offset(), 0);
    let reply = server
        .send(
            server
                .request(Method::GET, "/__control/messages")
                .query(&[("to", "")]),
        )
        .await;
    reply.assert_error(400, "invalid_request");
    server.shutdown().await;
}

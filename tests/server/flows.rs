//! End-to-end MFA flows against the reference server over real HTTP on loopback: every
//! enrollment, challenge and verification path of the API, the request
//! encodings real SDKs use, discovery, JWKS, content types, `--no-control` and TLS.

use crate::support::server::*;
use crate::support::{TempDir, tempdir};
use mfa_conform::server::ServeOptions;
use mfa_conform::server::config::{GRANT_PASSWORD, ServerConfig, UserConfig};
use mfa_conform::server::tls::TlsSource;
use reqwest::Method;
use serde_json::{Value, json};

fn is_base32(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

fn is_recovery_code(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `<kind>|dev_<16 alphanumerics>` .
fn assert_device_id(id: &str, kind: &str) {
    let suffix = id
        .strip_prefix(&format!("{kind}|dev_"))
        .unwrap_or_else(|| panic!("{id:?} is not a {kind}|dev_ id"));
    assert_eq!(suffix.len(), 16, "{id}");
    assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
}

/// The list entry with this authenticator_type.
fn entry<'a>(list: &'a Value, authenticator_type: &str) -> &'a Value {
    list.as_array()
        .expect("authenticator list")
        .iter()
        .find(|a| a["authenticator_type"] == authenticator_type)
        .unwrap_or_else(|| panic!("no {authenticator_type} in {list}"))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("authenticator list")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn otp_enrollment_with_the_mfa_token() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login_for_mfa_api(&user).await;

    // Nothing enrolled yet: an empty array.
    assert_eq!(server.list(&mfa_token).await.ok(), &json!([]));

    let reply = server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await;
    let association = reply.ok();
    assert_eq!(association["authenticator_type"], "otp");
    let secret = reply.str("secret");
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(is_base32(&secret), "{secret}");
    let barcode_uri = reply.str("barcode_uri");
    let account = user.username.replace('@', "%40");
    assert_eq!(
        barcode_uri,
        format!(
            "otpauth://totp/mfa-conform:{account}?secret={secret}&issuer=mfa-conform&algorithm=SHA1&digits=6&period=30"
        )
    );
    let codes = association["recovery_codes"]
        .as_array()
        .expect("recovery_codes");
    assert_eq!(codes.len(), 1);
    assert!(is_recovery_code(codes[0].as_str().unwrap()), "{codes:?}");

    // Pending until confirmed: listed, but not active.
    let list = server.list(&mfa_token).await;
    let totp = entry(list.ok(), "otp");
    assert_device_id(totp["id"].as_str().unwrap(), "totp");
    assert_eq!(totp["active"], false);
    assert!(totp.get("name").is_none() && totp.get("oob_channel").is_none());
    let recovery = entry(list.ok(), "recovery-code");
    assert_device_id(recovery["id"].as_str().unwrap(), "recovery-code");
    assert_eq!(recovery["active"], false);

    server.settle_totp_step().await;
    let reply = server
        .verify_otp(&mfa_token, &server.totp(&secret, 0))
        .await;
    let tokens = reply.ok();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["scope"], MFA_API_SCOPES);
    assert!(
        tokens["id_token"].is_string(),
        "openid asks for an id_token"
    );
    assert!(tokens.get("recovery_code").is_none());
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], server.mfa_audience());
    assert_eq!(claims["azp"], CLIENT_ID);

    let list = server.list(&mfa_token).await;
    assert_eq!(entry(list.ok(), "otp")["active"], true);
    assert_eq!(entry(list.ok(), "recovery-code")["active"], true);
    assert_eq!(list.ok().as_array().unwrap().len(), 2);
    server.shutdown().await;
}

/// SMS, voice and email enrollment: associate sends a code, `mfa-oob` with the `oob_code`
/// and the code as `binding_code` confirms it.
async fn oob_enrollment(channel: &str, to: &str, masked: &str) {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let body = if channel == "email" {
        json!({"authenticator_types": ["oob"], "oob_channels": [channel], "email": to})
    } else {
        json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": to})
    };
    let reply = server.associate(&mfa_token, &body).await;
    let association = reply.ok();
    assert_eq!(association["authenticator_type"], "oob");
    assert_eq!(association["binding_method"], "prompt");
    assert_eq!(association["oob_channel"], channel);
    assert_eq!(
        association["recovery_codes"].as_array().map(Vec::len),
        Some(1)
    );
    let oob_code = reply.str("oob_code");

    let messages = server.messages(to).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], to);
    assert_eq!(messages[0]["channel"], channel);
    let code = messages[0]["code"].as_str().unwrap().to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );

    let list = server.list(&mfa_token).await;
    let pending = entry(list.ok(), "oob");
    let kind = channel;
    assert_device_id(pending["id"].as_str().unwrap(), kind);
    assert_eq!(pending["active"], false);
    assert_eq!(pending["oob_channel"], channel);
    assert_eq!(pending["name"], masked);

    let tokens = server.verify_oob(&mfa_token, &oob_code, &code).await;
    assert_eq!(tokens.ok()["token_type"], "Bearer");
    assert_eq!(tokens.ok()["expires_in"], 86_400, "default audience");
    let claims = jwt_claims(&tokens.str("access_token"));
    assert_eq!(claims["aud"], format!("{}/userinfo", server.base));
    assert!(tokens.ok().get("id_token").is_none(), "no openid scope");

    let list = server.list(&mfa_token).await;
    assert_eq!(entry(list.ok(), "oob")["active"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn sms_enrollment_with_the_delivered_code() {
    oob_enrollment("sms", "+15551239167", "XXXXXXXX9167").await;
}

#[tokio::test]
async fn voice_enrollment_with_the_delivered_code() {
    oob_enrollment("voice", "+447700900123", "XXXXXXXXX0123").await;
}

#[tokio::test]
async fn email_enrollment_with_the_delivered_code() {
    oob_enrollment("email", "someone@example.com", "****@exam*******").await;
}

#[tokio::test]
async fn recovery_code_comes_only_with_the_first_enrollment() {
    let server = TestServer::shared().await;
    let first = server.enrolled_otp_user().await;
    assert!(first.recovery_code.as_deref().is_some_and(is_recovery_code));

    let access_token = first.access_token();
    let reply = server
        .associate(
            &access_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone_for(&first.user)}),
        )
        .await;
    assert!(reply.ok().get("recovery_codes").is_none(), "{reply:?}");
    let reply = server
        .associate(&access_token, &json!({"authenticator_types": ["otp"]}))
        .await;
    assert!(reply.ok().get("recovery_codes").is_none(), "{reply:?}");

    // Still exactly one recovery-code entry.
    let list = server.list(&access_token).await;
    let recovery_entries = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["authenticator_type"] == "recovery-code")
        .count();
    assert_eq!(recovery_entries, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn recovery_code_login_rotates_the_code() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let old = enrolled.recovery_code.clone().expect("recovery code");

    let mfa_token = server.login(&enrolled.user).await;
    let reply = server.verify_recovery_code(&mfa_token, &old).await;
    let tokens = reply.ok();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["access_token"].is_string());
    let new = reply.str("recovery_code");
    assert!(is_recovery_code(&new), "{new}");
    assert_ne!(new, old);

    // The old code stopped working, the new one works (and rotates again).
    let mfa_token = server.login(&enrolled.user).await;
    server
        .verify_recovery_code(&mfa_token, &old)
        .await
        .assert_error(403, "invalid_grant");
    let reply = server.verify_recovery_code(&mfa_token, &new).await;
    let newer = reply.str("recovery_code");
    assert_ne!(newer, new);
    assert_ne!(newer, old);
    server.shutdown().await;
}

#[tokio::test]
async fn otp_challenge_then_otp_grant() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;
    let mfa_token = server.login(&enrolled.user).await;

    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "otp"}))
        .await;
    assert_eq!(reply.ok(), &json!({"challenge_type": "otp"}));

    let code = server.next_totp(enrolled.secret()).await;
    let tokens = server.verify_otp(&mfa_token, &code).await;
    assert_eq!(tokens.ok()["token_type"], "Bearer");
    server.shutdown().await;
}

#[tokio::test]
async fn oob_challenge_sends_a_new_code() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let to = enrolled.to.clone().unwrap();
    let enrollment_code = server.last_code(&to).await;
    assert_eq!(server.messages(&to).await.len(), 1);

    let mfa_token = server.login(&enrolled.user).await;
    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "oob"}))
        .await;
    let challenge = reply.ok();
    assert_eq!(challenge["challenge_type"], "oob");
    assert_eq!(challenge["binding_method"], "prompt");
    let oob_code = reply.str("oob_code");
    assert_ne!(oob_code, enrolled.association["oob_code"].as_str().unwrap());

    let messages = server.messages(&to).await;
    assert_eq!(messages.len(), 2, "the challenge delivered a new code");
    assert_eq!(messages[1]["channel"], "email");
    let code = messages[1]["code"].as_str().unwrap().to_owned();

    // The enrollment's oob_code was used up; the challenge's works with the new code.
    server
        .verify_oob(
            &mfa_token,
            enrolled.association["oob_code"].as_str().unwrap(),
            &enrollment_code,
        )
        .await
        .assert_error(403, "invalid_grant");
    let tokens = server.verify_oob(&mfa_token, &oob_code, &code).await;
    assert_eq!(tokens.ok()["token_type"], "Bearer");
    server.shutdown().await;
}

#[tokio::test]
async fn challenge_picks_the_named_or_a_matching_authenticator() {
    let server = TestServer::shared().await;
    let (enrolled, _access_token, sms_id) = user_with_otp_and_sms(&server).await;
    let phone = phone_for(&enrolled.user);
    let sent_before = server.messages(&phone).await.len();

    let mfa_token = server.login(&enrolled.user).await;
    // authenticator_id names one exactly: the SMS one, which sends a code.
    let reply = server
        .challenge(&mfa_token, json!({"authenticator_id": sms_id}))
        .await;
    assert_eq!(reply.ok()["challenge_type"], "oob");
    assert_eq!(server.messages(&phone).await.len(), sent_before + 1);
    let code = server.last_code(&phone).await;
    let tokens = server
        .verify_oob(&mfa_token, &reply.str("oob_code"), &code)
        .await;
    assert_eq!(tokens.ok()["token_type"], "Bearer");

    // A type list (space-separated) restricts the choice.
    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "oob"}))
        .await;
    assert_eq!(reply.ok()["challenge_type"], "oob");
    let reply = server
        .challenge(&mfa_token, json!({"challenge_type": "otp"}))
        .await;
    assert_eq!(reply.ok(), &json!({"challenge_type": "otp"}));
    // Without challenge_type any enrolled kind will do.
    let reply = server.challenge(&mfa_token, json!({})).await;
    assert!(
        ["otp", "oob"].contains(&reply.ok()["challenge_type"].as_str().unwrap()),
        "{reply:?}"
    );
    server.shutdown().await;
}

/// A user with OTP (confirmed in a login for the MFA API) and a confirmed SMS authenticator
/// added with the `enroll`-scoped access token; returns the access token and the SMS id.
async fn user_with_otp_and_sms(server: &TestServer) -> (Enrolled, String, String) {
    let enrolled = server.enrolled_otp_user().await;
    let access_token = enrolled.access_token();
    let phone = phone_for(&enrolled.user);
    let reply = server
        .associate(
            &access_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone}),
        )
        .await;
    let oob_code = reply.str("oob_code");
    let code = server.last_code(&phone).await;
    // A second enrollment is confirmed in a login, like the first.
    let mfa_token = server.login(&enrolled.user).await;
    server.verify_oob(&mfa_token, &oob_code, &code).await.ok();
    let list = server.list(&access_token).await;
    let sms = entry(list.ok(), "oob");
    assert_eq!(sms["active"], true);
    let sms_id = sms["id"].as_str().unwrap().to_owned();
    (enrolled, access_token, sms_id)
}

async fn delete_flow(percent_encode: bool) {
    let server = TestServer::shared().await;
    let (_enrolled, access_token, sms_id) = user_with_otp_and_sms(&server).await;
    let in_path = if percent_encode {
        sms_id.replace('|', "%7C")
    } else {
        sms_id.clone()
    };
    // What goes on the wire: the client sends `|` as is (it is not in the URL path's
    // percent-encode set) or `%7C`.
    let url = reqwest::Url::parse(&server.url(&format!("/mfa/authenticators/{in_path}"))).unwrap();
    assert_eq!(url.path().contains('|'), !percent_encode, "{url}");
    assert_eq!(url.path().contains("%7C"), percent_encode, "{url}");

    let reply = server.delete(&access_token, &in_path).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.text, "", "204 has an empty body");

    let list = server.list(&access_token).await;
    assert!(!ids(list.ok()).contains(&sms_id), "{list:?}");
    assert_eq!(
        list.ok().as_array().unwrap().len(),
        2,
        "otp and recovery-code remain"
    );

    server
        .delete(&access_token, &in_path)
        .await
        .assert_error(404, "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn delete_with_a_raw_pipe_in_the_id() {
    delete_flow(false).await;
}

#[tokio::test]
async fn delete_with_a_percent_encoded_pipe_in_the_id() {
    delete_flow(true).await;
}

#[tokio::test]
async fn second_association_needs_an_enroll_scoped_access_token() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;

    // The mfa_token enrolled the first factor; once one is active it may not enroll more.
    let reply = server
        .associate(
            &enrolled.mfa_token,
            &json!({"authenticator_types": ["otp"]}),
        )
        .await;
    reply.assert_error(403, "access_denied");
    assert_eq!(reply.description(), "User is already enrolled.");

    // The access token from the MFA login carries `enroll`.
    let claims = jwt_claims(&enrolled.access_token());
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "enroll")
    );
    let reply = server
        .associate(
            &enrolled.access_token(),
            &json!({"authenticator_types": ["otp"]}),
        )
        .await;
    assert_eq!(reply.ok()["authenticator_type"], "otp");
    let list = server.list(&enrolled.access_token()).await;
    let otps: Vec<&Value> = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["authenticator_type"] == "otp")
        .collect();
    assert_eq!(otps.len(), 2);
    assert_eq!(otps.iter().filter(|a| a["active"] == true).count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_accepts_form_and_json_bodies() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_otp_user().await;

    // JSON login.
    let reply = server
        .token_json(&json!({
            "grant_type": PASSWORD_REALM,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": enrolled.user.username,
            "password": enrolled.user.password,
            "realm": REALM,
        }))
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");

    // JSON MFA grant.
    let code = server.next_totp(enrolled.secret()).await;
    let reply = server
        .token_json(&json!({
            "grant_type": OTP,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "mfa_token": mfa_token,
            "otp": code,
        }))
        .await;
    assert_eq!(reply.ok()["token_type"], "Bearer");

    // Form login and form challenge (as .NET sends it).
    let mfa_token = server.login(&enrolled.user).await;
    let reply = server
        .send(server.request(Method::POST, "/mfa/challenge").form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("mfa_token", mfa_token.as_str()),
            ("challenge_type", "otp"),
        ]))
        .await;
    assert_eq!(reply.ok(), &json!({"challenge_type": "otp"}));

    // A form body on /mfa/associate works too.
    let reply = server
        .send(
            server
                .request(Method::POST, "/mfa/associate")
                .bearer_auth(enrolled.access_token())
                .form(&[
                    ("authenticator_types", "oob"),
                    ("oob_channels", "email"),
                    ("email", "form@example.com"),
                ]),
        )
        .await;
    assert_eq!(reply.ok()["oob_channel"], "email");
    server.shutdown().await;
}

#[tokio::test]
async fn json_null_means_absent() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    // The Python SDK sends `"realm": null` and friends.
    let reply = server
        .token_json(&json!({
            "grant_type": GRANT_PASSWORD,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": user.username,
            "password": user.password,
            "realm": null,
            "audience": null,
            "scope": null,
        }))
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");

    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["otp"], "oob_channels": null, "email": null, "client_id": null}),
        )
        .await;
    let secret = reply.str("secret");
    server.settle_totp_step().await;
    let reply = server
        .token_json(&json!({
            "grant_type": OTP,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "mfa_token": mfa_token,
            "otp": server.totp(&secret, 0),
            "binding_code": null,
            "audience": null,
        }))
        .await;
    assert_eq!(reply.ok()["expires_in"], 86_400);
    let reply = server
        .challenge(
            &mfa_token,
            json!({"challenge_type": null, "authenticator_id": null}),
        )
        .await;
    assert_eq!(reply.ok()["challenge_type"], "otp");

    // A required parameter sent as null is missing.
    let reply = server
        .token_json(&json!({
            "grant_type": OTP,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "mfa_token": mfa_token,
            "otp": null,
        }))
        .await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(reply.description(), "Missing required parameter: otp");
    server.shutdown().await;
}

#[tokio::test]
async fn client_authentication_by_http_basic_and_by_body() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;

    // HTTP Basic only: no client_id in the body.
    let basic =
        |request: reqwest::RequestBuilder| request.basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
    let reply = server
        .send(basic(server.request(Method::POST, "/oauth/token")).form(&[
            ("grant_type", PASSWORD_REALM),
            ("username", &user.username),
            ("password", &user.password),
            ("realm", REALM),
        ]))
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");
    let association = server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await;
    let secret = association.str("secret");
    server.settle_totp_step().await;
    let reply = server
        .send(basic(server.request(Method::POST, "/oauth/token")).form(&[
            ("grant_type", OTP),
            ("mfa_token", &mfa_token),
            ("otp", &server.totp(&secret, 1)),
        ]))
        .await;
    assert_eq!(reply.ok()["token_type"], "Bearer");
    let reply = server
        .send(
            basic(server.request(Method::POST, "/mfa/challenge"))
                .json(&json!({"mfa_token": mfa_token})),
        )
        .await;
    assert_eq!(reply.ok()["challenge_type"], "otp");

    // The secret in the body (client_secret_post) is what the helpers use.
    let mfa_token = server.login(&user).await;
    let reply = server.challenge(&mfa_token, json!({})).await;
    assert_eq!(reply.ok()["challenge_type"], "otp");

    // The token names its client: azp is the Basic client.
    let mfa_token = server.login(&user).await;
    let code = server.next_totp(&secret).await;
    let tokens = server.verify_otp(&mfa_token, &code).await;
    assert_eq!(jwt_claims(&tokens.str("access_token"))["azp"], CLIENT_ID);
    server.shutdown().await;
}

#[tokio::test]
async fn public_client_needs_no_secret() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let login = |user: &User| {
        let params = vec![
            ("grant_type", PASSWORD_REALM.to_owned()),
            ("client_id", PUBLIC_CLIENT_ID.to_owned()),
            ("username", user.username.clone()),
            ("password", user.password.clone()),
            ("realm", REALM.to_owned()),
        ];
        server.send(server.request(Method::POST, "/oauth/token").form(&params))
    };
    let reply = login(&user).await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");

    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone_for(&user), "client_id": PUBLIC_CLIENT_ID}),
        )
        .await;
    let oob_code = reply.str("oob_code");
    let code = server.last_code(&phone_for(&user)).await;
    let reply = server
        .token_form(&[
            ("grant_type", OOB),
            ("client_id", PUBLIC_CLIENT_ID),
            ("mfa_token", &mfa_token),
            ("oob_code", &oob_code),
            ("binding_code", &code),
        ])
        .await;
    assert_eq!(
        jwt_claims(&reply.str("access_token"))["azp"],
        PUBLIC_CLIENT_ID
    );

    let reply = login(&user).await;
    let mfa_token = reply.str("mfa_token");
    let reply = server
        .send(server.request(Method::POST, "/mfa/challenge").json(&json!({
            "client_id": PUBLIC_CLIENT_ID,
            "mfa_token": mfa_token,
        })))
        .await;
    assert_eq!(reply.ok()["challenge_type"], "oob");
    server.shutdown().await;
}

#[tokio::test]
async fn list_parameters_may_be_plain_strings() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": "oob", "oob_channels": "sms", "phone_number": phone_for(&user)}),
        )
        .await;
    assert_eq!(reply.ok()["oob_channel"], "sms");
    let reply = server
        .associate(&mfa_token, &json!({"authenticator_types": "otp"}))
        .await;
    assert_eq!(reply.ok()["authenticator_type"], "otp");
    server.shutdown().await;
}

#[tokio::test]
async fn associate_with_and_without_client_credentials() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    // Swift and auth-js send no client_id at all.
    let reply = server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await;
    assert!(reply.ok()["secret"].is_string());
    // go and .NET send client_id and client_secret.
    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["otp"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        .await;
    assert!(reply.ok()["secret"].is_string());
    // A bare client_id of a confidential client is accepted here.
    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["otp"], "client_id": CLIENT_ID}),
        )
        .await;
    assert!(reply.ok()["secret"].is_string());
    assert_eq!(
        server.list(&mfa_token).await.ok().as_array().unwrap().len(),
        4
    );
    server.shutdown().await;
}

#[tokio::test]
async fn password_grant_and_users_without_mfa() {
    let mut config = ServerConfig::default();
    config.users.push(UserConfig {
        username: "plain@example.com".into(),
        password: "plain-password".into(),
        mfa: false,
        authenticators: Vec::new(),
        recovery_code: None,
    });
    let server = TestServer::start_with(ServeOptions {
        config,
        control: true,
        tls: None,
    })
    .await;
    // A user without MFA gets tokens from the password grant itself.
    let reply = server
        .token_form(&[
            ("grant_type", GRANT_PASSWORD),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("username", "plain@example.com"),
            ("password", "plain-password"),
            ("scope", "openid profile"),
        ])
        .await;
    let tokens = reply.ok();
    assert_eq!(tokens["scope"], "openid profile");
    let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["aud"], CLIENT_ID);
    assert_eq!(id_claims["email"], "plain@example.com");
    assert_eq!(id_claims["iss"], format!("{}/", server.base));

    // A provisioned user needs MFA with the plain password grant as well.
    let user = server.new_user().await;
    let reply = server
        .token_form(&[
            ("grant_type", GRANT_PASSWORD),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("username", &user.username),
            ("password", &user.password),
        ])
        .await;
    reply.assert_error(403, "mfa_required");
    assert!(!reply.str("mfa_token").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_and_jwks_verify_the_tokens() {
    let server = TestServer::shared().await;
    let reply = server
        .send(server.request(Method::GET, "/.well-known/openid-configuration"))
        .await;
    let discovery = reply.ok().clone();
    let base = &server.base;
    assert_eq!(discovery["issuer"], format!("{base}/"));
    assert_eq!(discovery["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        discovery["jwks_uri"],
        format!("{base}/.well-known/jwks.json")
    );
    assert_eq!(
        discovery["mfa_challenge_endpoint"],
        format!("{base}/mfa/challenge")
    );
    let grants: Vec<&str> = discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for grant in [GRANT_PASSWORD, PASSWORD_REALM, OTP, OOB, RECOVERY] {
        assert!(grants.contains(&grant), "{grant} in {grants:?}");
    }

    let jwks = server
        .send(
            server.request(
                Method::GET,
                discovery["jwks_uri"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(base.as_str())
                    .unwrap(),
            ),
        )
        .await;
    let key = jwks.ok()["keys"][0].clone();
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .expect("JWKS key");

    let enrolled = server.enrolled_otp_user().await;
    let access_token = enrolled.access_token();
    let header = jwt_part(&access_token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], key["kid"]);

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[format!("{base}/")]);
    validation.set_audience(&[server.mfa_audience()]);
    let data = jsonwebtoken::decode::<Value>(&access_token, &decoding, &validation)
        .expect("the access token verifies against the JWKS key");
    let claims = data.claims;
    assert!(claims["sub"].as_str().unwrap().starts_with("auth0|"));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    let id_token = enrolled.tokens["id_token"].as_str().unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[format!("{base}/")]);
    validation.set_audience(&[CLIENT_ID]);
    let id = jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("the id_token verifies against the JWKS key");
    assert_eq!(id.claims["sub"], claims["sub"]);
    assert_eq!(id.claims["email"], enrolled.user.username.as_str());

    // A tampered token does not verify: the check above can fail.
    let mut parts: Vec<&str> = access_token.split('.').collect();
    let forged_claims = {
        use base64::Engine;
        let mut claims = claims.clone();
        claims["sub"] = "auth0|someone-else".into();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    parts[1] = &forged_claims;
    assert!(jsonwebtoken::decode::<Value>(parts.join("."), &decoding, &validation).is_err());
    server
        .list(&parts.join("."))
        .await
        .assert_error(401, "invalid_token");
    server.shutdown().await;
}

#[tokio::test]
async fn content_types_follow_the_recordings() {
    let server = TestServer::shared().await;
    let user = server.new_user().await;
    let json = Some("application/json");
    let json_utf8 = Some("application/json; charset=utf-8");

    let login = server.login_reply(&user, &LoginOptions::default()).await;
    assert_eq!(login.content_type.as_deref(), json, "token error");
    let mfa_token = login.str("mfa_token");
    let reply = server.list(&mfa_token).await;
    assert_eq!(reply.content_type.as_deref(), json_utf8, "list");
    let reply = server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await;
    assert_eq!(reply.content_type.as_deref(), json_utf8, "associate");
    let secret = reply.str("secret");
    server.settle_totp_step().await;
    let reply = server
        .verify_otp(&mfa_token, &server.totp(&secret, 0))
        .await;
    reply.ok();
    assert_eq!(reply.content_type.as_deref(), json, "token success");
    let reply = server.challenge(&mfa_token, json!({})).await;
    reply.ok();
    assert_eq!(reply.content_type.as_deref(), json_utf8, "challenge");
    // Errors of the /mfa/ family carry the charset too.
    let reply = server.challenge("nope", json!({})).await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.content_type.as_deref(), json_utf8, "challenge error");
    server.shutdown().await;
}

#[tokio::test]
async fn no_control_server_has_no_control_api() {
    let server = TestServer::start_with(ServeOptions {
        config: ServerConfig::default(),
        control: false,
        tls: None,
    })
    .await;
    for (method, path) in [
        (Method::POST, "/__control/users"),
        (Method::GET, "/__control/messages?to=x"),
        (Method::POST, "/__control/clock"),
        (Method::GET, "/__control/clock"),
    ] {
        let reply = server.send(server.request(method, path)).await;
        reply.assert_error(404, "not_found");
    }
    // The public API is still there.
    let reply = server
        .send(server.request(Method::GET, "/.well-known/openid-configuration"))
        .await;
    assert_eq!(reply.ok()["issuer"], format!("{}/", server.base));
    server.shutdown().await;
}

#[tokio::test]
async fn control_api_with_control_enabled() {
    let server = TestServer::start().await;
    let reply = server
        .send(server.request(Method::GET, "/__control/clock"))
        .await;
    let offset = reply.ok()["offset_seconds"].as_i64().unwrap();
    assert_eq!(offset, 0);
    server.advance(42).await;
    let reply = server
        .send(server.request(Method::GET, "/__control/clock"))
        .await;
    assert_eq!(reply.ok()["offset_seconds"], 42);
    assert!((reply.ok()["now"].as_i64().unwrap() - server.now() as i64).abs() <= 1);
    assert_eq!(server.messages("+15550000000").await, Vec::<Value>::new());
    let a = server.new_user().await;
    let b = server.new_user().await;
    assert_ne!(a.username, b.username);
    server.shutdown().await;
}

/// A server with a generated CA, written to `ca.pem` in a directory removed when the test
/// is done.
async fn tls_server(name: &str) -> (TestServer, TempDir) {
    let dir = tempdir(&format!("ca-{name}"));
    let ca_out = dir.join("ca.pem");
    let server = TestServer::start_with(ServeOptions {
        config: ServerConfig::default(),
        control: true,
        tls: Some(TlsSource::SelfSigned {
            ca_out: ca_out.clone(),
        }),
    })
    .await;
    (server, dir)
}

#[tokio::test]
async fn tls_server_works_over_https() {
    let (mut server, ca_dir) = tls_server("http1").await;
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let pem = server.certificate_pem.clone().expect("a CA certificate");
    assert_eq!(std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap(), pem);
    // HTTP/1.1, as most SDKs speak it (the HTTP/2 case is the next test).
    server.http = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();

    let reply = server
        .send(server.request(Method::GET, "/.well-known/openid-configuration"))
        .await;
    assert_eq!(reply.ok()["issuer"], format!("{}/", server.base));
    assert_eq!(
        reply.ok()["token_endpoint"],
        format!("{}/oauth/token", server.base)
    );
    let enrolled = server.enrolled_otp_user().await;
    assert_eq!(enrolled.tokens["expires_in"], 600);
    let claims = jwt_claims(&enrolled.access_token());
    assert_eq!(claims["iss"], format!("{}/", server.base));
    assert_eq!(claims["aud"], server.mfa_audience());
    server.list(&enrolled.access_token()).await.ok();

    // A client that does not trust the CA is refused.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(
        untrusting
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port gets no answer from the API.
    let plain = server.base.replace("https://", "http://");
    let result = untrusting
        .get(format!("{plain}/.well-known/jwks.json"))
        .send()
        .await;
    assert!(result.is_err() || !result.unwrap().status().is_success());
    server.shutdown().await;
}

/// Over TLS, reqwest (like Go's net/http, curl and browsers) negotiates HTTP/2, where the
/// address arrives as `:authority` and there is no `Host` header.
#[tokio::test]

async fn tls_over_http2_uses_the_address_the_client_used() {
    let (server, _ca_dir) = tls_server("http2").await;
    let response = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let discovery: Value = response.json().await.unwrap();
    assert_eq!(discovery["issuer"], format!("{}/", server.base));
    // Tokens for `<base>/mfa/` must be MFA API tokens and work on /mfa/authenticators.
    let enrolled = server.enrolled_otp_user().await;
    assert_eq!(enrolled.tokens["expires_in"], 600);
    server.list(&enrolled.access_token()).await.ok();
    server.shutdown().await;
}

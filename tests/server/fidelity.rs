//! End-to-end checks, over real HTTP, of where the reference server follows the real API
//! closely: an `oob_code` belongs to the login that obtained it, the `https://<host>/mfa/`
//! audience on a plain-HTTP listener, Guardian push (enrollment, challenge, polling and the
//! device's answer through the control API), `private_key_jwt` client authentication and
//! `unauthorized_client` for a configured client without the MFA grants.

use crate::support::ServeProcess;
use crate::support::server::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mfa_conform::server::ServeOptions;
use mfa_conform::server::config::{
    ClientConfig, GRANT_PASSWORD, GRANT_PASSWORD_REALM, ServerConfig,
};
use reqwest::Method;
use serde_json::{Value, json};

/// `POST /__control/push`: the device answers.
async fn device_answers(server: &TestServer, body: Value) -> Reply {
    server
        .send(server.request(Method::POST, "/__control/push").json(&body))
        .await
}

/// One `mfa-oob` poll for a push (no binding code).
async fn poll(server: &TestServer, mfa_token: &str, oob_code: &str) -> Reply {
    server
        .mfa_grant(OOB, mfa_token, &[("oob_code", oob_code)])
        .await
}

#[tokio::test]
async fn an_oob_code_is_redeemed_only_by_the_login_that_obtained_it() {
    let server = TestServer::shared().await;
    let enrolled = server.enrolled_email_user().await;
    let to = enrolled.to.clone().unwrap();
    let asking = server.login(&enrolled.user).await;
    let other = server.login(&enrolled.user).await;
    let challenge = server
        .challenge(&asking, json!({"challenge_type": "oob"}))
        .await;
    let oob_code = challenge.str("oob_code");
    let code = server.last_code(&to).await;

    // Another login of the same user, with the right binding code: refused.
    let reply = server.verify_oob(&other, &oob_code, &code).await;
    reply.assert_error(403, "invalid_grant");
    assert_eq!(reply.description(), "Invalid oob_code.");
    // The login that asked for it still can, once.
    server.verify_oob(&asking, &oob_code, &code).await.ok();
    server
        .verify_oob(&asking, &oob_code, &code)
        .await
        .assert_error(403, "invalid_grant");
}

#[tokio::test]
async fn the_https_mfa_audience_works_on_a_plain_http_listener() {
    let server = TestServer::shared().await;
    assert!(server.base.starts_with("http://"), "{}", server.base);
    let https_audience = format!("{}/mfa/", server.base.replacen("http://", "https://", 1));
    let user = server.new_user().await;
    let mfa_token = server
        .login_with(
            &user,
            &LoginOptions {
                audience: Some(https_audience.clone()),
                scope: Some(MFA_API_SCOPES.to_owned()),
            },
        )
        .await;
    let enrolled = server.enroll_otp(&user, &mfa_token).await;
    // An MFA API token: ten minutes, only MFA scopes, accepted by /mfa/*.
    assert_eq!(enrolled.tokens["expires_in"], 600);
    let access_token = enrolled.access_token();
    assert_eq!(jwt_claims(&access_token)["aud"], https_audience.as_str());
    let list = server.list(&access_token).await;
    assert_eq!(list.ok().as_array().map(Vec::len), Some(2), "{list:?}");
    server
        .associate(&access_token, &json!({"authenticator_types": ["otp"]}))
        .await
        .ok();
}

#[tokio::test]
async fn push_enrollment_is_confirmed_when_the_device_approves() {
    let server = TestServer::start().await;
    let user = server.new_user().await;
    let mfa_token = server.login_for_mfa_api(&user).await;
    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["auth0"]}),
        )
        .await;
    let association = reply.ok().clone();
    assert_eq!(association["authenticator_type"], "oob");
    assert_eq!(association["oob_channel"], "auth0");
    assert!(association.get("binding_method").is_none(), "{association}");
    assert_eq!(
        association["recovery_codes"].as_array().map(Vec::len),
        Some(1)
    );
    let oob_code = reply.str("oob_code");
    let barcode_uri = reply.str("barcode_uri");
    let account = user.username.replace('@', "%40");
    let prefix = format!("otpauth://totp/mfa-conform:{account}?enrollment_tx_id=");
    let rest = barcode_uri
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{barcode_uri}"));
    let (tx, base_url) = rest.split_once("&base_url=").expect("base_url");
    assert_eq!(tx.len(), 32, "{tx}");
    assert!(tx.bytes().all(|b| b.is_ascii_alphanumeric()), "{tx}");
    let encoded_base: String =
        url::form_urlencoded::byte_serialize(server.base.as_bytes()).collect();
    assert_eq!(base_url, encoded_base);

    // Not scanned yet: pending; polled again at once: slow_down; after the interval:
    // pending again.
    let reply = poll(&server, &mfa_token, &oob_code).await;
    reply.assert_error(400, "authorization_pending");
    assert_eq!(
        reply.description(),
        "Authorization pending: please repeat the request in a few seconds."
    );
    poll(&server, &mfa_token, &oob_code)
        .await
        .assert_error(400, "slow_down");
    server.advance(5).await;
    poll(&server, &mfa_token, &oob_code)
        .await
        .assert_error(400, "authorization_pending");
    let list = server.list(&mfa_token).await;
    assert_eq!(list.ok()[0]["active"], false);

    // The device scans the QR code and approves: the next poll completes the login.
    let reply = device_answers(
        &server,
        json!({"enrollment_tx_id": tx, "action": "approve", "device_name": "Test Phone"}),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let tokens = poll(&server, &mfa_token, &oob_code).await;
    assert!(tokens.ok()["access_token"].is_string());
    let list = server.list(&mfa_token).await;
    let push = &list.ok()[0];
    assert_eq!(push["authenticator_type"], "oob");
    assert_eq!(push["oob_channel"], "auth0");
    assert_eq!(push["active"], true);
    assert_eq!(push["name"], "Test Phone");
    assert!(
        push["id"].as_str().unwrap().starts_with("push|dev_"),
        "{push}"
    );
    // Approved once, redeemed once.
    poll(&server, &mfa_token, &oob_code)
        .await
        .assert_error(403, "invalid_grant");
    device_answers(&server, json!({"oob_code": oob_code, "action": "reject"}))
        .await
        .assert_error(409, "already_answered");
    server.shutdown().await;
}

#[tokio::test]
async fn push_challenges_are_approved_or_rejected_by_the_device() {
    let server = TestServer::start().await;
    let user = server.new_user().await;
    let mfa_token = server.login(&user).await;
    let reply = server
        .associate(
            &mfa_token,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["auth0"]}),
        )
        .await;
    let oob_code = reply.str("oob_code");
    let reply = device_answers(&server, json!({"oob_code": oob_code, "action": "approve"})).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    poll(&server, &mfa_token, &oob_code).await.ok();

    for (action, outcome) in [("approve", 200), ("reject", 400)] {
        let login = server.login(&user).await;
        let challenge = server
            .challenge(&login, json!({"challenge_type": "oob"}))
            .await;
        assert_eq!(
            challenge.ok().as_object().unwrap().len(),
            2,
            "only challenge_type and oob_code: {challenge:?}"
        );
        assert_eq!(challenge.body["challenge_type"], "oob");
        let oob_code = challenge.str("oob_code");
        poll(&server, &login, &oob_code)
            .await
            .assert_error(400, "authorization_pending");
        let reply = device_answers(&server, json!({"oob_code": oob_code, "action": action})).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        let reply = poll(&server, &login, &oob_code).await;
        assert_eq!(reply.status, outcome, "{action}: {reply:?}");
        if outcome == 400 {
            reply.assert_error(400, "access_denied");
            assert_eq!(reply.description(), "MFA Authorization rejected.");
        }
    }

    // What the control endpoint refuses.
    for (body, status, error) in [
        (
            json!({"oob_code": "nope", "action": "approve"}),
            404,
            "not_found",
        ),
        (
            json!({"enrollment_tx_id": "nope", "action": "approve"}),
            404,
            "not_found",
        ),
        (
            json!({"oob_code": "x", "action": "maybe"}),
            400,
            "invalid_request",
        ),
        (json!({"action": "approve"}), 400, "invalid_request"),
        (
            json!({"oob_code": "x", "enrollment_tx_id": "y", "action": "approve"}),
            400,
            "invalid_request",
        ),
    ] {
        device_answers(&server, body)
            .await
            .assert_error(status, error);
    }
    server.shutdown().await;
}

// --- client authentication -------------------------------------------------------------

const JWT_CLIENT: &str = "jwt-client";
const BACKEND_CLIENT: &str = "backend";
const BACKEND_SECRET: &str = "backend-secret";

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// A `client_assertion` signed RS256 with `key`.
fn assertion(key: &RsaKeyPair, client_id: &str, audience: &str, exp: u64, jti: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": audience, "exp": exp, "iat": exp - 60, "jti": jti,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("RSA signature");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A server whose configuration adds a `private_key_jwt` client and a backend client that
/// may log in with a password but not use the MFA grants.
async fn server_with_clients(key: &RsaKeyPair) -> TestServer {
    let mut config = ServerConfig::default();
    config.clients.push(ClientConfig {
        client_id: JWT_CLIENT.into(),
        client_secret: None,
        grant_types: ServerConfig::default().clients[0].grant_types.clone(),
        public_key_pem: Some(pem(key.public_key().as_der().unwrap().as_ref())),
    });
    config.clients.push(ClientConfig {
        client_id: BACKEND_CLIENT.into(),
        client_secret: Some(BACKEND_SECRET.into()),
        grant_types: vec![GRANT_PASSWORD.into(), GRANT_PASSWORD_REALM.into()],
        public_key_pem: None,
    });
    TestServer::start_with(ServeOptions {
        config,
        control: true,
        tls: None,
    })
    .await
}

fn login_form<'a>(user: &'a User, client: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", PASSWORD_REALM),
        ("username", user.username.as_str()),
        ("password", user.password.as_str()),
        ("realm", REALM),
    ];
    form.extend_from_slice(client);
    form
}

#[tokio::test]
async fn private_key_jwt_authenticates_the_client_on_every_mfa_call() {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let server = server_with_clients(&key).await;
    let issuer = format!("{}/", server.base);
    let exp = server.now() + 60;
    let jwt_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let discovery = server
        .send(server.request(Method::GET, "/.well-known/openid-configuration"))
        .await;
    assert!(
        discovery.ok()["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );

    // The password login, with the assertion and no client_id (it names the client).
    let user = server.new_user().await;
    let first = assertion(&key, JWT_CLIENT, &issuer, exp, "jti-1");
    let reply = server
        .token_form(&login_form(
            &user,
            &[
                ("client_assertion", &first),
                ("client_assertion_type", jwt_type),
            ],
        ))
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");

    // The same assertion again is a replay.
    server
        .token_form(&login_form(
            &user,
            &[
                ("client_assertion", &first),
                ("client_assertion_type", jwt_type),
            ],
        ))
        .await
        .assert_error(401, "invalid_client");

    // Enroll OTP and confirm it with the token endpoint's URL as audience (https form).
    let secret = server
        .associate(&mfa_token, &json!({"authenticator_types": ["otp"]}))
        .await
        .str("secret");
    let otp = server.next_totp(&secret).await;
    let token_endpoint = format!(
        "{}/oauth/token",
        server.base.replacen("http://", "https://", 1)
    );
    let second = assertion(&key, JWT_CLIENT, &token_endpoint, exp, "jti-2");
    let reply = server
        .token_form(&[
            ("grant_type", OTP),
            ("client_id", JWT_CLIENT),
            ("client_assertion", &second),
            ("client_assertion_type", jwt_type),
            ("mfa_token", &mfa_token),
            ("otp", &otp),
        ])
        .await;
    assert!(reply.ok()["access_token"].is_string());

    // /mfa/challenge takes the assertion too (JSON body).
    let login = server
        .token_form(&login_form(
            &user,
            &[
                (
                    "client_assertion",
                    &assertion(&key, JWT_CLIENT, &issuer, exp, "jti-3"),
                ),
                ("client_assertion_type", jwt_type),
            ],
        ))
        .await
        .str("mfa_token");
    let reply = server
        .send(server.request(Method::POST, "/mfa/challenge").json(&json!({
            "client_assertion": assertion(&key, JWT_CLIENT, &issuer, exp, "jti-4"),
            "client_assertion_type": jwt_type,
            "mfa_token": login,
            "challenge_type": "otp",
        })))
        .await;
    assert_eq!(reply.ok()["challenge_type"], "otp");

    // Refused: another key, another audience, expired, a wrong type, no authentication,
    // and an assertion for a client that has no key.
    let other = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let now = server.now();
    for (assertion_value, client_id, status, error) in [
        (
            assertion(&other, JWT_CLIENT, &issuer, exp, "r1"),
            JWT_CLIENT,
            401,
            "invalid_client",
        ),
        (
            assertion(&key, JWT_CLIENT, "https://elsewhere/", exp, "r2"),
            JWT_CLIENT,
            401,
            "invalid_client",
        ),
        (
            assertion(&key, JWT_CLIENT, &issuer, now - 120, "r3"),
            JWT_CLIENT,
            401,
            "invalid_client",
        ),
        (
            assertion(&key, CLIENT_ID, &issuer, exp, "r4"),
            CLIENT_ID,
            401,
            "invalid_client",
        ),
    ] {
        server
            .token_form(&login_form(
                &user,
                &[
                    ("client_id", client_id),
                    ("client_assertion", &assertion_value),
                    ("client_assertion_type", jwt_type),
                ],
            ))
            .await
            .assert_error(status, error);
    }
    let valid = assertion(&key, JWT_CLIENT, &issuer, exp, "r5");
    server
        .token_form(&login_form(
            &user,
            &[
                ("client_assertion", &valid),
                ("client_assertion_type", "bearer"),
            ],
        ))
        .await
        .assert_error(400, "invalid_request");
    server
        .token_form(&login_form(&user, &[("client_id", JWT_CLIENT)]))
        .await
        .assert_error(401, "invalid_client");
    server.shutdown().await;
}

#[tokio::test]
async fn a_configured_client_without_the_mfa_grants_is_unauthorized_for_them() {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let server = server_with_clients(&key).await;
    let user = server.new_user().await;
    let reply = server
        .token_form(&login_form(
            &user,
            &[
                ("client_id", BACKEND_CLIENT),
                ("client_secret", BACKEND_SECRET),
            ],
        ))
        .await;
    reply.assert_error(403, "mfa_required");
    let mfa_token = reply.str("mfa_token");
    for (grant, extra) in [
        (OTP, ("otp", "123456")),
        (OOB, ("oob_code", "x")),
        (RECOVERY, ("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA")),
    ] {
        let reply = server
            .token_form(&[
                ("grant_type", grant),
                ("client_id", BACKEND_CLIENT),
                ("client_secret", BACKEND_SECRET),
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
    let reply = server
        .send(server.request(Method::POST, "/mfa/challenge").json(&json!({
            "client_id": BACKEND_CLIENT,
            "client_secret": BACKEND_SECRET,
            "mfa_token": mfa_token,
        })))
        .await;
    reply.assert_error(403, "unauthorized_client");
    server.shutdown().await;
}

// --- seeded users ----------------------------------------------------------------------

fn serve_with_config(config_yaml: &str, extra: &[&str]) -> ServeProcess {
    let dir = crate::support::tempdir("fidelity");
    let path = dir.join("server.yaml");
    std::fs::write(&path, config_yaml).unwrap();
    let mut args = vec![std::ffi::OsStr::new("--config"), path.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    ServeProcess::start(&args)
}

const SEEDED_SECRET: &str = "KRUGS4ZANFZSAYJAON2GC3TEFVUW4IDTMVRXEZLU";
const SEEDED_RECOVERY: &str = "RECOVERY0CODE0FOR0TESTS0";

#[tokio::test]
async fn a_seeded_user_logs_in_with_a_code_from_the_known_secret() {
    let serve = serve_with_config(
        &format!(
            r#"
users:
  - username: ci-user@example.com
    password: ci-password
    authenticators:
      - {{type: otp, secret: {SEEDED_SECRET}}}
      - {{type: email, email: ci-user@example.com}}
    recovery_code: {SEEDED_RECOVERY}
"#
        ),
        &["--no-control"],
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = |form: Vec<(&'static str, String)>| {
        let request = http
            .post(format!("{}/oauth/token", serve.base_url))
            .form(&form);
        async move { Reply::read(request.send().await.expect("token request")).await }
    };
    let login = || {
        token(vec![
            ("grant_type", PASSWORD_REALM.into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", CLIENT_SECRET.into()),
            ("username", "ci-user@example.com".into()),
            ("password", "ci-password".into()),
            ("realm", REALM.into()),
            ("scope", "openid".into()),
        ])
    };
    let mfa = |grant: &'static str, mfa_token: String, key: &'static str, value: String| {
        token(vec![
            ("grant_type", grant.into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", CLIENT_SECRET.into()),
            ("mfa_token", mfa_token),
            (key, value),
        ])
    };

    // No enrollment step: the application's test computes the code and is in.
    let reply = login().await;
    reply.assert_error(403, "mfa_required");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = mfa_conform::totp::code_at(SEEDED_SECRET, now).unwrap();
    let tokens = mfa(OTP, reply.str("mfa_token"), "otp", code).await;
    let tokens = tokens.ok();
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["email"],
        "ci-user@example.com"
    );

    // The known recovery code works once, and a fresh one comes back.
    let reply = login().await;
    let recovered = mfa(
        RECOVERY,
        reply.str("mfa_token"),
        "recovery_code",
        SEEDED_RECOVERY.into(),
    )
    .await;
    let fresh = recovered.str("recovery_code");
    assert_ne!(fresh, SEEDED_RECOVERY);
    let reply = login().await;
    let mfa_token = reply.str("mfa_token");
    mfa(
        RECOVERY,
        mfa_token.clone(),
        "recovery_code",
        SEEDED_RECOVERY.into(),
    )
    .await
    .assert_error(403, "invalid_grant");

    // The seeded authenticators are listed, active.
    let list = Reply::read(
        http.get(format!("{}/mfa/authenticators", serve.base_url))
            .bearer_auth(&mfa_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let types: Vec<(String, bool)> = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["authenticator_type"].as_str().unwrap().to_owned(),
                a["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [("otp", true), ("oob", true), ("recovery-code", true)]
            .map(|(t, a)| (t.to_owned(), a))
            .to_vec()
    );
}

#[test]
fn serve_refuses_a_bad_seeded_user_before_listening() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-conform"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            "/nonexistent/x.yaml",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let dir = crate::support::tempdir("bad-seed");
    let path = dir.join("server.yaml");
    std::fs::write(
        &path,
        "users: [{username: u, password: p, authenticators: [{type: otp, secret: SHORT}]}]\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-conform"))
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    drop(dir);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("otp secret"), "{stderr}");
    assert!(output.stdout.is_empty(), "never listened: {output:?}");
}

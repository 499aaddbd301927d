//! Helpers for the end-to-end tests of the reference server: start it on a loopback port,
//! provision users through the control API and walk the MFA flows over real HTTP, so each
//! test reads like the API behaviour it checks.

use mfa_conform::server::config::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REALM, GRANT_MFA_OOB, GRANT_MFA_OTP,
    GRANT_MFA_RECOVERY_CODE, GRANT_PASSWORD_REALM, ServerConfig,
};
use mfa_conform::server::{self, AppState, RunningServer, ServeOptions};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

pub const CLIENT_ID: &str = DEFAULT_CLIENT_ID;
pub const CLIENT_SECRET: &str = DEFAULT_CLIENT_SECRET;
pub const PUBLIC_CLIENT_ID: &str = "mfa-conform-public";
pub const NO_MFA_CLIENT_ID: &str = "mfa-conform-no-mfa";
pub const NO_MFA_CLIENT_SECRET: &str = "mfa-conform-no-mfa-secret";
pub const REALM: &str = DEFAULT_REALM;
pub const OTP: &str = GRANT_MFA_OTP;
pub const OOB: &str = GRANT_MFA_OOB;
pub const RECOVERY: &str = GRANT_MFA_RECOVERY_CODE;
pub const PASSWORD_REALM: &str = GRANT_PASSWORD_REALM;
/// Every scope the `/mfa/` API knows, so one access token can enroll, list and delete.
pub const MFA_API_SCOPES: &str = "openid enroll read:authenticators remove:authenticators";

/// A reference server on a loopback port, with an HTTP client that trusts it.
///
/// Either a server of the test's own ([`TestServer::start`]: needed when the test moves
/// the clock or changes the configuration) or the binary's shared default server
/// ([`TestServer::shared`]; tests on it move the clock by at most a few seconds and use
/// their own users, phone numbers and mailboxes). Starting a server generates an RSA key,
/// which costs a few hundred milliseconds in a debug build, hence the sharing.
pub struct TestServer {
    /// `None` for the shared server, which outlives every test.
    pub running: Option<RunningServer>,
    pub state: Arc<AppState>,
    pub certificate_pem: Option<String>,
    pub base: String,
    pub http: reqwest::Client,
}

/// The shared server: started once per test binary on a runtime of its own, so it keeps
/// serving while each test's runtime comes and goes.
fn shared_server() -> &'static (String, Arc<AppState>) {
    static SHARED: OnceLock<(String, Arc<AppState>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime of the shared server");
            runtime.block_on(async move {
                let running = server::start(
                    "127.0.0.1:0".parse().unwrap(),
                    ServeOptions {
                        config: ServerConfig::default(),
                        control: true,
                        tls: None,
                    },
                )
                .await
                .expect("shared server starts");
                tx.send((running.base_url.clone(), running.state.clone()))
                    .expect("send address");
                let _ = running.wait().await;
            });
        });
        rx.recv().expect("shared server address")
    })
}

fn http_client(certificate_pem: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(pem) = certificate_pem {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA certificate"),
        );
    }
    builder.build().expect("HTTP client")
}

/// A phone number of this user's own (E.164), so tests sharing a server never read each
/// other's messages.
pub fn phone_for(user: &User) -> String {
    let digits: u64 = user
        .username
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("+1555{:08}", digits % 100_000_000)
}

/// An email address of this user's own.
pub fn email_for(user: &User) -> String {
    format!("inbox-{}", user.username)
}

/// A user created through `POST /__control/users`.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub password: String,
}

/// One HTTP answer, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub www_authenticate: Option<String>,
    pub text: String,
    /// The body as JSON (`Value::Null` when it is empty or not JSON).
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE);
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            www_authenticate,
            text,
            body,
        }
    }

    /// Asserts a success status and returns the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        &self.body
    }

    /// Asserts the error envelope: this status, a JSON object with this `error` and a
    /// non-empty `error_description` string.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) -> &Reply {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_error_envelope(self);
        assert_eq!(self.body["error"], error, "error code of {self:?}");
        self
    }

    /// The `error_description` of an error reply.
    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }

    /// A string member of the body; panics with the whole reply if it is missing.
    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in {self:?}"))
            .to_owned()
    }
}

/// Every error this server sends is a JSON object with `error` and `error_description`
/// strings, whatever produced it (a handler, the router or a framework rejection).
#[track_caller]
pub fn assert_error_envelope(reply: &Reply) {
    assert!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "error content type of {reply:?}"
    );
    let object = reply
        .body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not a JSON object: {reply:?}"));
    assert!(
        object
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty()),
        "no error string in {reply:?}"
    );
    assert!(
        object
            .get("error_description")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty()),
        "no error_description string in {reply:?}"
    );
}

/// What an enrollment gave the test: the login it ran in and what associate returned.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub user: User,
    pub mfa_token: String,
    /// The associate response.
    pub association: Value,
    /// The token response of the confirming MFA grant.
    pub tokens: Value,
    /// The recovery code issued on the first enrollment, if any.
    pub recovery_code: Option<String>,
    /// The TOTP secret (OTP enrollments).
    pub secret: Option<String>,
    /// The code that confirmed the enrollment (TOTP or binding code).
    pub confirm_code: String,
    /// Where codes are delivered (SMS, voice and email enrollments).
    pub to: Option<String>,
}

impl Enrolled {
    pub fn access_token(&self) -> String {
        self.tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("an OTP enrollment")
    }
}

/// How to log in: the options of the password-realm grant that matter to MFA.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    pub audience: Option<String>,
    pub scope: Option<String>,
}

impl TestServer {
    /// A server with the default configuration and the control API.
    pub async fn start() -> TestServer {
        Self::start_with(ServeOptions {
            config: ServerConfig::default(),
            control: true,
            tls: None,
        })
        .await
    }

    pub async fn start_with(options: ServeOptions) -> TestServer {
        let running = server::start("127.0.0.1:0".parse().unwrap(), options)
            .await
            .expect("server starts");
        TestServer {
            base: running.base_url.clone(),
            state: running.state.clone(),
            certificate_pem: running.certificate_pem.clone(),
            http: http_client(running.certificate_pem.as_deref()),
            running: Some(running),
        }
    }

    /// The test binary's shared server (default configuration, control API on).
    pub async fn shared() -> TestServer {
        let (base, state) = shared_server();
        TestServer {
            running: None,
            state: state.clone(),
            certificate_pem: None,
            base: base.clone(),
            http: http_client(None),
        }
    }

    /// Stops a server of the test's own; the shared one keeps running.
    pub async fn shutdown(self) {
        if let Some(running) = self.running {
            running.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The audience of access tokens for the MFA API: `<base>/mfa/`.
    pub fn mfa_audience(&self) -> String {
        format!("{}/mfa/", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        Reply::read(request.send().await.expect("request sent")).await
    }

    // --- control API ---------------------------------------------------------------

    pub async fn new_user(&self) -> User {
        let reply = self
            .send(self.request(Method::POST, "/__control/users"))
            .await;
        assert_eq!(reply.status, 201, "create user: {reply:?}");
        User {
            username: reply.str("username"),
            password: reply.str("password"),
        }
    }

    /// Codes delivered to a phone number or mailbox, oldest first.
    pub async fn messages(&self, to: &str) -> Vec<Value> {
        let reply = self
            .send(
                self.request(Method::GET, "/__control/messages")
                    .query(&[("to", to)]),
            )
            .await;
        reply.ok().as_array().expect("message list").clone()
    }

    /// The code of the newest message delivered to `to`.
    pub async fn last_code(&self, to: &str) -> String {
        let messages = self.messages(to).await;
        let last = messages
            .last()
            .unwrap_or_else(|| panic!("no message to {to}"));
        last["code"].as_str().expect("code").to_owned()
    }

    /// Moves the server's clock forward through the control API. Only on a server of the
    /// test's own: on the shared one it would move other tests' codes out of their window.
    pub async fn advance(&self, seconds: u64) {
        assert!(
            self.running.is_some(),
            "only a test's own server may have its clock moved"
        );
        let reply = self
            .send(
                self.request(Method::POST, "/__control/clock")
                    .json(&json!({"advance_seconds": seconds})),
            )
            .await;
        assert_eq!(reply.status, 204, "advance clock: {reply:?}");
    }

    /// The server's clock (wall time plus the advanced offset).
    pub fn now(&self) -> u64 {
        self.state.clock.now() as u64
    }

    /// Makes sure a few seconds of the current 30-s TOTP step remain, so a code computed
    /// now is still in the same step when the server checks it: a server of the test's own
    /// has its clock advanced into the next step, the shared one is waited for (at most
    /// 3 s), since nobody may move its clock.
    pub async fn settle_totp_step(&self) {
        if self.running.is_some() {
            let into_step = self.now() % 30;
            if into_step >= 25 {
                self.advance(30 - into_step + 1).await;
            }
            return;
        }
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time after 1970")
            .as_secs_f64();
        let now = wall + self.state.clock.offset() as f64;
        let left = 30.0 - now.rem_euclid(30.0);
        if left < 3.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(left + 0.05)).await;
        }
    }

    /// The TOTP code of the step `steps_back` steps before the current one.
    pub fn totp(&self, secret: &str, steps_back: u64) -> String {
        mfa_conform::totp::code_at(secret, self.now() - 30 * steps_back).expect("TOTP code")
    }

    /// The code of the current step, safely inside it. After [`Self::enroll_otp`] (which
    /// confirms with the previous step's code) it is good for exactly one more login
    /// without moving the clock.
    pub async fn next_totp(&self, secret: &str) -> String {
        self.settle_totp_step().await;
        self.totp(secret, 0)
    }

    /// Advances to the next TOTP step and returns its code: a code no earlier login can
    /// have used. Only for servers of the test's own.
    pub async fn fresh_totp(&self, secret: &str) -> String {
        assert!(self.running.is_some(), "fresh_totp moves the clock by 30 s");
        self.advance(30).await;
        self.settle_totp_step().await;
        self.totp(secret, 0)
    }

    // --- endpoints -----------------------------------------------------------------

    /// `POST /oauth/token` with a form body.
    pub async fn token_form(&self, params: &[(&str, &str)]) -> Reply {
        self.send(self.request(Method::POST, "/oauth/token").form(params))
            .await
    }

    /// `POST /oauth/token` with a JSON body.
    pub async fn token_json(&self, body: &Value) -> Reply {
        self.send(self.request(Method::POST, "/oauth/token").json(body))
            .await
    }

    /// An MFA grant by the default confidential client (credentials in the body).
    pub async fn mfa_grant(
        &self,
        grant_type: &str,
        mfa_token: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut params = vec![
            ("grant_type", grant_type),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("mfa_token", mfa_token),
        ];
        params.extend_from_slice(extra);
        self.token_form(&params).await
    }

    pub async fn verify_otp(&self, mfa_token: &str, otp: &str) -> Reply {
        self.mfa_grant(OTP, mfa_token, &[("otp", otp)]).await
    }

    pub async fn verify_oob(&self, mfa_token: &str, oob_code: &str, binding_code: &str) -> Reply {
        self.mfa_grant(
            OOB,
            mfa_token,
            &[("oob_code", oob_code), ("binding_code", binding_code)],
        )
        .await
    }

    pub async fn verify_recovery_code(&self, mfa_token: &str, code: &str) -> Reply {
        self.mfa_grant(RECOVERY, mfa_token, &[("recovery_code", code)])
            .await
    }

    /// The password-realm login, answered with anything.
    pub async fn login_reply(&self, user: &User, options: &LoginOptions) -> Reply {
        let mut params = vec![
            ("grant_type", PASSWORD_REALM),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("username", user.username.as_str()),
            ("password", user.password.as_str()),
            ("realm", REALM),
        ];
        if let Some(audience) = &options.audience {
            params.push(("audience", audience));
        }
        if let Some(scope) = &options.scope {
            params.push(("scope", scope));
        }
        self.token_form(&params).await
    }

    /// Logs in with the password and returns the `mfa_token` of the 403 `mfa_required`.
    pub async fn login_with(&self, user: &User, options: &LoginOptions) -> String {
        let reply = self.login_reply(user, options).await;
        reply.assert_error(403, "mfa_required");
        assert_eq!(reply.description(), "Multifactor authentication required");
        reply.str("mfa_token")
    }

    /// A login with the default audience and no scope.
    pub async fn login(&self, user: &User) -> String {
        self.login_with(user, &LoginOptions::default()).await
    }

    /// A login whose tokens will be for the MFA API (`<base>/mfa/`) with every MFA scope.
    pub async fn login_for_mfa_api(&self, user: &User) -> String {
        self.login_with(
            user,
            &LoginOptions {
                audience: Some(self.mfa_audience()),
                scope: Some(MFA_API_SCOPES.to_owned()),
            },
        )
        .await
    }

    /// `POST /mfa/associate` with a bearer token and a JSON body.
    pub async fn associate(&self, bearer: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::POST, "/mfa/associate")
                .bearer_auth(bearer)
                .json(body),
        )
        .await
    }

    /// `POST /mfa/challenge` with a JSON body; client credentials are added.
    pub async fn challenge(&self, mfa_token: &str, extra: Value) -> Reply {
        let mut body = json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "mfa_token": mfa_token,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.send(self.request(Method::POST, "/mfa/challenge").json(&body))
            .await
    }

    pub async fn list(&self, bearer: &str) -> Reply {
        self.send(
            self.request(Method::GET, "/mfa/authenticators")
                .bearer_auth(bearer),
        )
        .await
    }

    /// `DELETE /mfa/authenticators/{id}` with `id` put into the path as given.
    pub async fn delete(&self, bearer: &str, id_in_path: &str) -> Reply {
        self.send(
            self.request(Method::DELETE, &format!("/mfa/authenticators/{id_in_path}"))
                .bearer_auth(bearer),
        )
        .await
    }

    // --- whole flows ---------------------------------------------------------------

    /// A new user with an active OTP authenticator, enrolled in a login for the MFA API.
    pub async fn enrolled_otp_user(&self) -> Enrolled {
        let user = self.new_user().await;
        let mfa_token = self.login_for_mfa_api(&user).await;
        self.enroll_otp(&user, &mfa_token).await
    }

    /// Associates OTP with `bearer` (the `mfa_token`) and confirms it with the code of the
    /// *previous* step (which the server accepts), so the current step's code is still
    /// unused for the test's next login ([`Self::next_totp`]).
    pub async fn enroll_otp(&self, user: &User, mfa_token: &str) -> Enrolled {
        let reply = self
            .associate(mfa_token, &json!({"authenticator_types": ["otp"]}))
            .await;
        let association = reply.ok().clone();
        let secret = reply.str("secret");
        self.settle_totp_step().await;
        let confirm_code = self.totp(&secret, 1);
        let tokens = self.verify_otp(mfa_token, &confirm_code).await.ok().clone();
        Enrolled {
            user: user.clone(),
            mfa_token: mfa_token.to_owned(),
            recovery_code: recovery_code_of(&association),
            association,
            tokens,
            secret: Some(secret),
            confirm_code,
            to: None,
        }
    }

    /// A new user with an active email authenticator, enrolled in a login for the MFA API.
    pub async fn enrolled_email_user(&self) -> Enrolled {
        let user = self.new_user().await;
        let mfa_token = self.login_for_mfa_api(&user).await;
        let to = email_for(&user);
        self.enroll_oob(&user, &mfa_token, "email", &to).await
    }

    /// Associates an SMS, voice or email authenticator and confirms it with the delivered
    /// code.
    pub async fn enroll_oob(&self, user: &User, bearer: &str, channel: &str, to: &str) -> Enrolled {
        let body = match channel {
            "email" => {
                json!({"authenticator_types": ["oob"], "oob_channels": [channel], "email": to})
            }
            _ => {
                json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": to})
            }
        };
        let reply = self.associate(bearer, &body).await;
        let association = reply.ok().clone();
        let code = self.last_code(to).await;
        let tokens = self
            .verify_oob(bearer, &reply.str("oob_code"), &code)
            .await
            .ok()
            .clone();
        Enrolled {
            user: user.clone(),
            mfa_token: bearer.to_owned(),
            recovery_code: recovery_code_of(&association),
            association,
            tokens,
            secret: None,
            confirm_code: code,
            to: Some(to.to_owned()),
        }
    }

    /// A new login of an email-enrolled user completed by an email challenge: an access
    /// token for the MFA API with every MFA scope.
    pub async fn mfa_api_token_by_email(&self, enrolled: &Enrolled) -> String {
        let mfa_token = self.login_for_mfa_api(&enrolled.user).await;
        let challenge = self
            .challenge(&mfa_token, json!({"challenge_type": "oob"}))
            .await;
        let code = self
            .last_code(enrolled.to.as_deref().expect("oob user"))
            .await;
        self.verify_oob(&mfa_token, &challenge.str("oob_code"), &code)
            .await
            .str("access_token")
    }
}

fn recovery_code_of(association: &Value) -> Option<String> {
    association["recovery_codes"]
        .as_array()
        .and_then(|codes| codes.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Decodes one base64url segment of a JWT as JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let segment = token.split('.').nth(index).expect("JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url segment");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

/// The claims of a JWT, unverified.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

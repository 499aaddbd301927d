//! One-time rules of the reference server under concurrency, as properties: proptest picks
//! how many requests race, how they are spread over connections, encodings and client
//! authentication, and how their starts are staggered; every case runs against a fresh
//! user, and the outcome must be exact whatever the interleaving:
//!
//! - one TOTP code sent by N requests (over several logins): exactly one 200, and every
//!   other request is a failed code (10 refusals, then `too_many_attempts`);
//! - one `oob_code` with its binding code, raced with wrong binding codes: exactly one
//!   success, and the wrong codes counted are exactly the attempts the user has lost;
//! - one recovery code sent by N requests: exactly one success and one new code (which
//!   then works once);
//! - K wrong codes at once, across OTP, binding and recovery codes: exactly min(K, 10)
//!   403 and K - 10 429, and exactly 10 - K attempts left;
//! - the same authenticator deleted by N requests: exactly one 204, the rest 404;
//! - lists racing deletes: a list that starts after a delete returned 204 never shows the
//!   id, a list that ended before the delete started always does;
//! - N enrollments at once: one recovery code in all, and never more authenticators than
//!   the limit.
//!
//! The extension of tests/server_security.rs (a fixed 16 racers) to varied concurrency.
//! `SERVER_CONCURRENCY_CASES` multiplies the number of cases (default 1).

use crate::support::server::*;
use mfa_conform::server::ServeOptions;
use mfa_conform::server::config::ServerConfig;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Connections the racers are spread over (each client has its own pool).
const CLIENTS: usize = 6;

// --- the harness ---------------------------------------------------------------------------

/// How one racer sends its request.
#[derive(Debug, Clone)]
struct Racer {
    /// Which of the shared clients (connection pools) it uses.
    client: usize,
    /// Form (false) or JSON (true) body.
    json: bool,
    /// Client credentials in HTTP Basic rather than the body.
    basic: bool,
    /// Extra scheduling after the common start: task yields, then a sleep.
    yields: u8,
    delay_ms: u8,
}

fn racer() -> impl Strategy<Value = Racer> {
    (0..CLIENTS, any::<bool>(), any::<bool>(), 0u8..12, 0u8..4).prop_map(
        |(client, json, basic, yields, delay_ms)| Racer {
            client,
            json,
            basic,
            yields,
            delay_ms: if delay_ms == 3 { 0 } else { delay_ms },
        },
    )
}

fn racers(count: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<Racer>> {
    prop::collection::vec(racer(), count)
}

/// One request of a race.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    bearer: Option<String>,
    /// Body parameters; `client_id`/`client_secret` go to Basic when the racer says so.
    params: Vec<(String, String)>,
}

impl Call {
    fn grant(grant_type: &str, mfa_token: &str, extra: &[(&str, &str)]) -> Call {
        let mut params = vec![
            ("grant_type".to_owned(), grant_type.to_owned()),
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            ("client_secret".to_owned(), CLIENT_SECRET.to_owned()),
            ("mfa_token".to_owned(), mfa_token.to_owned()),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Call {
            method: Method::POST,
            path: "/oauth/token".to_owned(),
            bearer: None,
            params,
        }
    }

    fn bearer(method: Method, path: &str, bearer: &str) -> Call {
        Call {
            method,
            path: path.to_owned(),
            bearer: Some(bearer.to_owned()),
            params: Vec::new(),
        }
    }

    fn request(
        &self,
        base: &str,
        client: &reqwest::Client,
        racer: &Racer,
    ) -> reqwest::RequestBuilder {
        let mut request = client.request(self.method.clone(), format!("{base}{}", self.path));
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer);
        }
        let mut params = self.params.clone();
        if racer.basic && params.iter().any(|(k, _)| k == "client_secret") {
            params.retain(|(k, _)| k != "client_id" && k != "client_secret");
            request = request.basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
        }
        if params.is_empty() && self.method != Method::POST {
            return request;
        }
        if racer.json {
            let object: serde_json::Map<String, Value> = params
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            request.json(&object)
        } else {
            request.form(&params)
        }
    }
}

/// A reply and when its request started and ended.
#[derive(Debug)]
struct Timed {
    reply: Reply,
    started: Instant,
    ended: Instant,
    /// Which call of the race it answers.
    index: usize,
}

struct Harness {
    server: TestServer,
    clients: Vec<reqwest::Client>,
}

impl Harness {
    async fn start(options: ServeOptions) -> Harness {
        let server = TestServer::start_with(options).await;
        let clients = (0..CLIENTS)
            .map(|_| reqwest::Client::builder().no_proxy().build().unwrap())
            .collect();
        Harness { server, clients }
    }

    /// Sends every call at once (released together, then staggered by its racer) and
    /// returns the replies in the order of the calls.
    async fn race(&self, calls: &[(Call, Racer)]) -> Vec<Timed> {
        let barrier = Arc::new(Barrier::new(calls.len()));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (call, racer)) in calls.iter().enumerate() {
            let request = call.request(&self.server.base, &self.clients[racer.client], racer);
            let barrier = barrier.clone();
            let racer = racer.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                for _ in 0..racer.yields {
                    tokio::task::yield_now().await;
                }
                if racer.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(racer.delay_ms.into())).await;
                }
                let started = Instant::now();
                let response = request.send().await.expect("request sent");
                let reply = Reply::read(response).await;
                Timed {
                    reply,
                    started,
                    ended: Instant::now(),
                    index,
                }
            });
        }
        let mut replies = Vec::with_capacity(calls.len());
        while let Some(timed) = tasks.join_next().await {
            replies.push(timed.expect("racer task"));
        }
        replies.sort_by_key(|t| t.index);
        replies
    }
}

fn count(replies: &[Timed], status: u16, error: Option<&str>) -> usize {
    replies
        .iter()
        .filter(|t| t.reply.status == status && error.is_none_or(|e| t.reply.body["error"] == e))
        .count()
}

fn summary(replies: &[Timed]) -> String {
    replies
        .iter()
        .map(|t| {
            format!(
                "#{} {} {} {}",
                t.index,
                t.reply.status,
                t.reply.body["error"].as_str().unwrap_or(""),
                t.reply.body["error_description"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every non-2xx reply is the JSON error envelope.
fn envelopes(replies: &[Timed]) -> Result<(), TestCaseError> {
    for t in replies.iter().filter(|t| t.reply.status >= 300) {
        prop_assert!(
            t.reply
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json"))
                && t.reply.body["error"].is_string()
                && t.reply.body["error_description"].is_string(),
            "not the error envelope: {:?}",
            t.reply
        );
    }
    Ok(())
}

/// Runs `cases` cases of a property on a server of its own (cases run one after another;
/// the races inside them are what is concurrent).
fn check<S, F, Fut>(name: &str, cases: u32, options: ServeOptions, strategy: S, body: F)
where
    S: Strategy,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(Arc<Harness>, S::Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), TestCaseError>>,
{
    let scale: u32 = std::env::var("SERVER_CONCURRENCY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let harness = Arc::new(runtime.block_on(Harness::start(options)));
    let config = Config {
        cases: cases * scale,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let started = Instant::now();
    let result = runner.run(&strategy, |value| {
        runtime.block_on(body(harness.clone(), value))
    });
    eprintln!(
        "{name}: {} cases in {:.1} s",
        cases * scale,
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn default_options() -> ServeOptions {
    ServeOptions {
        config: ServerConfig::default(),
        control: true,
        tls: None,
    }
}

/// A 6-digit code that none of the user's OTP authenticators accepts around now.
fn wrong_totp(server: &TestServer, secret: &str) -> String {
    let now = server.now();
    let near: Vec<String> = (0..5)
        .map(|i| mfa_conform::totp::code_at(secret, now + 60 - 30 * i).unwrap())
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// A binding code other than `right`.
fn wrong_binding(right: &str) -> String {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
    .to_owned()
}

// --- TOTP ----------------------------------------------------------------------------------

#[test]
fn one_totp_code_raced_over_logins_is_accepted_once() {
    let strategy = (racers(2..=24), 1usize..=4);
    check(
        "totp",
        96,
        default_options(),
        strategy,
        |h, (racers, logins)| async move {
            let server = &h.server;
            let enrolled = server.enrolled_otp_user().await;
            let mut tokens = Vec::new();
            for _ in 0..logins {
                tokens.push(server.login(&enrolled.user).await);
            }
            let code = server.fresh_totp(enrolled.secret()).await;
            let calls: Vec<(Call, Racer)> = racers
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        Call::grant(OTP, &tokens[i % logins], &[("otp", &code)]),
                        r.clone(),
                    )
                })
                .collect();
            let replies = h.race(&calls).await;
            let n = replies.len();
            let s = summary(&replies);
            prop_assert_eq!(count(&replies, 200, None), 1, "{}", s);
            // Every other request is a failed code, each one counted: 10 refusals, then locked.
            let refused = (n - 1).min(10);
            prop_assert_eq!(
                count(&replies, 403, Some("invalid_grant")),
                refused,
                "{}",
                s
            );
            prop_assert_eq!(
                count(&replies, 429, Some("too_many_attempts")),
                n - 1 - refused,
                "{}",
                s
            );
            envelopes(&replies)?;
            // The code stays spent: a new login cannot use it either.
            let again = server
                .verify_otp(&server.login(&enrolled.user).await, &code)
                .await;
            prop_assert!(again.status == 403 || again.status == 429, "{:?}", again);
            Ok(())
        },
    );
}

// --- OOB -------------------------------------------------------------------------------------

#[test]
fn one_oob_code_raced_with_wrong_binding_codes_is_accepted_once() {
    // Up to 9 wrong binding codes: the right one always finds an attempt left.
    let strategy = (racers(1..=16), racers(0..=9), 0usize..3);
    check(
        "oob",
        96,
        default_options(),
        strategy,
        |h, (right, wrong, channel)| async move {
            let server = &h.server;
            let user = server.new_user().await;
            let mfa_token = server.login_for_mfa_api(&user).await;
            let channel = ["email", "sms", "voice"][channel];
            let to = if channel == "email" {
                email_for(&user)
            } else {
                phone_for(&user)
            };
            let enrolled = server.enroll_oob(&user, &mfa_token, channel, &to).await;
            let login = server.login(&enrolled.user).await;
            let challenge = server
                .challenge(&login, json!({"challenge_type": "oob"}))
                .await;
            let oob_code = challenge.str("oob_code");
            let code = server.last_code(&to).await;
            let bad = wrong_binding(&code);
            let mut calls: Vec<(Call, Racer)> = Vec::new();
            // Interleave right and wrong racers so neither group is sent first.
            let (mut r, mut w) = (right.iter(), wrong.iter());
            loop {
                match (r.next(), w.next()) {
                    (None, None) => break,
                    (a, b) => {
                        if let Some(a) = a {
                            let call = Call::grant(
                                OOB,
                                &login,
                                &[("oob_code", &oob_code), ("binding_code", &code)],
                            );
                            calls.push((call, a.clone()));
                        }
                        if let Some(b) = b {
                            let call = Call::grant(
                                OOB,
                                &login,
                                &[("oob_code", &oob_code), ("binding_code", &bad)],
                            );
                            calls.push((call, b.clone()));
                        }
                    }
                }
            }
            let replies = h.race(&calls).await;
            let s = summary(&replies);
            prop_assert_eq!(count(&replies, 200, None), 1, "{}", s);
            prop_assert_eq!(
                count(&replies, 403, Some("invalid_grant")),
                calls.len() - 1,
                "{}",
                s
            );
            envelopes(&replies)?;
            // Only wrong binding codes checked before the success cost an attempt; once the
            // code is used, requests are refused without looking at the binding code.
            let counted = replies
                .iter()
                .filter(|t| t.reply.body["error_description"] == "Invalid binding_code.")
                .count();
            prop_assert!(counted <= wrong.len(), "{}", s);
            let used = replies
                .iter()
                .filter(|t| t.reply.body["error_description"] == "Invalid oob_code.")
                .count();
            prop_assert_eq!(counted + used + 1, calls.len(), "{}", s);
            // The attempts left are exactly 10 - counted: that many wrong codes are refused
            // as wrong, and the next one is locked out.
            let login = server.login(&enrolled.user).await;
            let challenge = server
                .challenge(&login, json!({"challenge_type": "oob"}))
                .await;
            let oob_code = challenge.str("oob_code");
            let bad = wrong_binding(&server.last_code(&to).await);
            for attempt in 0..=(10 - counted) {
                let reply = server.verify_oob(&login, &oob_code, &bad).await;
                let expected = if attempt < 10 - counted { 403 } else { 429 };
                prop_assert_eq!(
                    reply.status,
                    expected,
                    "attempt {} after {} counted: {:?}",
                    attempt,
                    counted,
                    reply
                );
            }
            Ok(())
        },
    );
}

// --- recovery codes ------------------------------------------------------------------------

#[test]
fn one_recovery_code_raced_is_accepted_once_and_rotated_once() {
    // Each racer writes the code its own way (case, dashes, spaces): one code all the same.
    let strategy = (racers(2..=24), prop::collection::vec(0u8..3, 24));
    check(
        "recovery",
        80,
        default_options(),
        strategy,
        |h, (racers, styles)| async move {
            let server = &h.server;
            let enrolled = server.enrolled_otp_user().await;
            let code = enrolled.recovery_code.clone().unwrap();
            let login = server.login(&enrolled.user).await;
            let calls: Vec<(Call, Racer)> = racers
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let written = match styles[i] {
                        0 => code.clone(),
                        1 => code.to_lowercase(),
                        _ => code
                            .as_bytes()
                            .chunks(4)
                            .map(|c| std::str::from_utf8(c).unwrap())
                            .collect::<Vec<_>>()
                            .join("-"),
                    };
                    (
                        Call::grant(RECOVERY, &login, &[("recovery_code", &written)]),
                        r.clone(),
                    )
                })
                .collect();
            let replies = h.race(&calls).await;
            let n = replies.len();
            let s = summary(&replies);
            let winners: Vec<&Timed> = replies.iter().filter(|t| t.reply.status == 200).collect();
            prop_assert_eq!(winners.len(), 1, "{}", s);
            let fresh = winners[0].reply.str("recovery_code");
            prop_assert_ne!(&fresh, &code);
            let new_codes = replies
                .iter()
                .filter(|t| t.reply.body["recovery_code"].is_string())
                .count();
            prop_assert_eq!(new_codes, 1, "{}", s);
            let refused = (n - 1).min(10);
            prop_assert_eq!(
                count(&replies, 403, Some("invalid_grant")),
                refused,
                "{}",
                s
            );
            prop_assert_eq!(
                count(&replies, 429, Some("too_many_attempts")),
                n - 1 - refused,
                "{}",
                s
            );
            envelopes(&replies)?;
            // An hour later every attempt is back: the new code works once, the old one never.
            server.advance(3600).await;
            let login = server.login(&enrolled.user).await;
            server
                .verify_recovery_code(&login, &code)
                .await
                .assert_error(403, "invalid_grant");
            let next = server.verify_recovery_code(&login, &fresh).await;
            prop_assert_eq!(next.status, 200, "{:?}", next);
            server
                .verify_recovery_code(&login, &fresh)
                .await
                .assert_error(403, "invalid_grant");
            Ok(())
        },
    );
}

// --- lockout -------------------------------------------------------------------------------

/// A user with OTP (active), an active email authenticator and a recovery code: the three
/// kinds of code that share one failed-attempt bucket.
async fn user_with_every_factor(server: &TestServer) -> (Enrolled, String) {
    let enrolled = server.enrolled_otp_user().await;
    let access = enrolled.access_token();
    let to = email_for(&enrolled.user);
    let association = server
        .associate(
            &access,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["email"], "email": to}),
        )
        .await;
    let oob_code = association.str("oob_code");
    let code = server.last_code(&to).await;
    let login = server.login(&enrolled.user).await;
    server.verify_oob(&login, &oob_code, &code).await.ok();
    (enrolled, to)
}

#[test]
fn concurrent_wrong_codes_of_every_kind_are_counted_exactly() {
    let strategy = prop::collection::vec((racer(), 0u8..3), 1..=30);
    check(
        "lockout",
        96,
        default_options(),
        strategy,
        |h, wrong| async move {
            let server = &h.server;
            let (enrolled, to) = user_with_every_factor(server).await;
            // The code of the current step stays unused (enrollment used the previous one).
            server.settle_totp_step().await;
            let secret = enrolled.secret().to_owned();
            let bad_otp = wrong_totp(server, &secret);
            let login = server.login(&enrolled.user).await;
            let challenge = server
                .challenge(&login, json!({"challenge_type": "oob"}))
                .await;
            let oob_code = challenge.str("oob_code");
            let bad_binding = wrong_binding(&server.last_code(&to).await);
            let calls: Vec<(Call, Racer)> = wrong
                .iter()
                .map(|(r, kind)| {
                    let call = match kind {
                        0 => Call::grant(OTP, &login, &[("otp", &bad_otp)]),
                        1 => Call::grant(
                            OOB,
                            &login,
                            &[("oob_code", &oob_code), ("binding_code", &bad_binding)],
                        ),
                        _ => Call::grant(
                            RECOVERY,
                            &login,
                            &[("recovery_code", "WRONGWRONGWRONGWRONGWRON")],
                        ),
                    };
                    (call, r.clone())
                })
                .collect();
            let replies = h.race(&calls).await;
            let k = replies.len();
            let s = summary(&replies);
            prop_assert_eq!(
                count(&replies, 403, Some("invalid_grant")),
                k.min(10),
                "{}",
                s
            );
            prop_assert_eq!(
                count(&replies, 429, Some("too_many_attempts")),
                k.saturating_sub(10),
                "{}",
                s
            );
            envelopes(&replies)?;
            // Exactly 10 - K attempts are left: that many more wrong codes are refused as
            // wrong, then even the right code is locked out.
            for attempt in 0..10usize.saturating_sub(k) {
                let reply = server.verify_otp(&login, &bad_otp).await;
                prop_assert_eq!(
                    reply.status,
                    403,
                    "attempt {} after {}: {:?}",
                    attempt,
                    k,
                    reply
                );
            }
            let right = server.totp(&secret, 0);
            server
                .verify_otp(&login, &right)
                .await
                .assert_error(429, "too_many_attempts");
            Ok(())
        },
    );
}

// --- deletes -------------------------------------------------------------------------------

/// A user with an active OTP authenticator, a pending email and a pending phone pair
/// (`sms|dev_X` and `voice|dev_X`), and an access token that may delete them.
async fn user_with_authenticators(server: &TestServer) -> (String, Vec<String>) {
    let enrolled = server.enrolled_otp_user().await;
    let access = enrolled.access_token();
    server
        .associate(
            &access,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["email"], "email": email_for(&enrolled.user)}),
        )
        .await
        .ok();
    server
        .associate(
            &access,
            &json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone_for(&enrolled.user)}),
        )
        .await
        .ok();
    let ids = ids_of(&server.list(&access).await);
    (access, ids)
}

fn ids_of(reply: &Reply) -> Vec<String> {
    reply
        .ok()
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn percent(id: &str) -> String {
    id.replace('|', "%7C")
}

#[test]
fn one_authenticator_deleted_concurrently_is_deleted_once() {
    // target: 0 totp, 1 email, 2 the phone pair (racers split over both halves), 3 the
    // recovery code; per racer whether its id is percent-encoded.
    let strategy = (
        racers(2..=20),
        0usize..4,
        prop::collection::vec(any::<bool>(), 20),
    );
    check(
        "delete",
        96,
        default_options(),
        strategy,
        |h, (racers, target, encoded)| async move {
            let server = &h.server;
            let (access, ids) = user_with_authenticators(server).await;
            let find = |prefix: &str| {
                ids.iter()
                    .find(|id| id.starts_with(prefix))
                    .unwrap()
                    .clone()
            };
            let targets: Vec<String> = match target {
                0 => vec![find("totp|")],
                1 => vec![find("email|")],
                2 => vec![find("sms|"), find("voice|")],
                _ => vec![find("recovery-code|")],
            };
            let calls: Vec<(Call, Racer)> = racers
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let id = &targets[i % targets.len()];
                    let id = if encoded[i] { percent(id) } else { id.clone() };
                    (
                        Call::bearer(
                            Method::DELETE,
                            &format!("/mfa/authenticators/{id}"),
                            &access,
                        ),
                        r.clone(),
                    )
                })
                .collect();
            let replies = h.race(&calls).await;
            let s = summary(&replies);
            prop_assert_eq!(count(&replies, 204, None), 1, "{}", s);
            prop_assert_eq!(
                count(&replies, 404, Some("not_found")),
                replies.len() - 1,
                "{}",
                s
            );
            envelopes(&replies)?;
            let left = ids_of(&server.list(&access).await);
            let expected: Vec<String> = ids
                .iter()
                .filter(|id| !targets.contains(id))
                .cloned()
                .collect();
            prop_assert_eq!(left, expected);
            Ok(())
        },
    );
}

#[test]
fn lists_racing_deletes_never_show_a_deleted_authenticator() {
    // Pending authenticators to make, which of them to delete, how many lists race, and
    // the racers of the deletes and the lists.
    let strategy = (
        2usize..=8,
        prop::collection::vec(any::<bool>(), 8),
        racers(4..=24),
        racers(8..=8),
    );
    check(
        "list-vs-delete",
        96,
        default_options(),
        strategy,
        |h, (made, doomed, list_racers, delete_racers)| async move {
            let server = &h.server;
            let enrolled = server.enrolled_otp_user().await;
            let access = enrolled.access_token();
            for _ in 0..made {
                server
                    .associate(&access, &json!({"authenticator_types": ["otp"]}))
                    .await
                    .ok();
            }
            let before = ids_of(&server.list(&access).await);
            let pending: Vec<String> = before
                .iter()
                .filter(|id| id.starts_with("totp|"))
                .skip(1)
                .cloned()
                .collect();
            prop_assert_eq!(pending.len(), made);
            let deleted: Vec<String> = pending
                .iter()
                .zip(&doomed)
                .filter(|(_, d)| **d)
                .map(|(id, _)| id.clone())
                .collect();
            let mut calls: Vec<(Call, Racer)> = deleted
                .iter()
                .zip(&delete_racers)
                .map(|(id, r)| {
                    (
                        Call::bearer(
                            Method::DELETE,
                            &format!("/mfa/authenticators/{}", percent(id)),
                            &access,
                        ),
                        r.clone(),
                    )
                })
                .collect();
            let deletes = calls.len();
            calls.extend(list_racers.iter().map(|r| {
                (
                    Call::bearer(Method::GET, "/mfa/authenticators", &access),
                    r.clone(),
                )
            }));
            let replies = h.race(&calls).await;
            let s = summary(&replies);
            envelopes(&replies)?;
            for t in &replies[..deletes] {
                prop_assert_eq!(t.reply.status, 204, "{}", s);
            }
            for list in &replies[deletes..] {
                let shown: BTreeSet<String> = ids_of(&list.reply).into_iter().collect();
                // Nothing appears from nowhere, and what nobody deletes is always there.
                for id in &shown {
                    prop_assert!(before.contains(id), "unknown id {} in a list", id);
                }
                for id in before.iter().filter(|id| !deleted.contains(id)) {
                    prop_assert!(shown.contains(id), "{} missing from a list", id);
                }
                for (delete, id) in replies[..deletes].iter().zip(&deleted) {
                    if list.started > delete.ended {
                        prop_assert!(
                            !shown.contains(id),
                            "a list started after the 204 of {} shows it",
                            id
                        );
                    }
                    if list.ended < delete.started {
                        prop_assert!(
                            shown.contains(id),
                            "a list ended before the delete of {} misses it",
                            id
                        );
                    }
                }
            }
            let after: BTreeSet<String> = ids_of(&server.list(&access).await).into_iter().collect();
            for id in &deleted {
                prop_assert!(!after.contains(id));
            }
            Ok(())
        },
    );
}

// --- enrollment ----------------------------------------------------------------------------

#[test]
fn concurrent_enrollments_issue_one_recovery_code_and_respect_the_limit() {
    const MAX: usize = 6;
    let mut config = ServerConfig::default();
    config.limits.max_authenticators = MAX;
    let options = ServeOptions {
        config,
        control: true,
        tls: None,
    };
    // Enrollments at once, each OTP or email.
    let strategy = prop::collection::vec((racer(), any::<bool>()), 2..=16);
    check("enroll", 96, options, strategy, |h, racers| async move {
        let server = &h.server;
        let user = server.new_user().await;
        let mfa_token = server.login_for_mfa_api(&user).await;
        let calls: Vec<(Call, Racer)> = racers
            .iter()
            .map(|(r, otp)| {
                let mut call = Call::bearer(Method::POST, "/mfa/associate", &mfa_token);
                call.params = if *otp {
                    vec![("authenticator_types".to_owned(), "otp".to_owned())]
                } else {
                    vec![
                        ("authenticator_types".to_owned(), "oob".to_owned()),
                        ("oob_channels".to_owned(), "email".to_owned()),
                        ("email".to_owned(), email_for(&user)),
                    ]
                };
                (call, r.clone())
            })
            .collect();
        let replies = h.race(&calls).await;
        let n = replies.len();
        let s = summary(&replies);
        // Every pending enrollment holds a slot: exactly MAX succeed, the rest are refused.
        prop_assert_eq!(count(&replies, 200, None), n.min(MAX), "{}", s);
        prop_assert_eq!(
            count(&replies, 400, Some("invalid_request")),
            n.saturating_sub(MAX),
            "{}",
            s
        );
        envelopes(&replies)?;
        let codes = replies
            .iter()
            .filter(|t| t.reply.body["recovery_codes"].is_array())
            .count();
        prop_assert_eq!(codes, 1, "{}", s);
        let listed = server.list(&mfa_token).await;
        let kinds: Vec<&str> = listed
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["authenticator_type"].as_str().unwrap())
            .collect();
        prop_assert_eq!(
            kinds.iter().filter(|k| **k != "recovery-code").count(),
            n.min(MAX)
        );
        prop_assert_eq!(kinds.iter().filter(|k| **k == "recovery-code").count(), 1);
        Ok(())
    });
}

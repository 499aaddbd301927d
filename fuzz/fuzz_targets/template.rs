//! The template engine on arbitrary text: `render` and `render_json` (as a string, inside
//! an object and a list, and the input itself when it is JSON) against a small context
//! shaped like a scenario's. Never a panic; every error is a non-empty message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_conform::engine::control::ControlClient;
use mfa_conform::engine::template::{Builtins, TemplateError, Templates};
use serde_json::{Value, json};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

fn templates() -> &'static Templates {
    static CELL: OnceLock<Templates> = OnceLock::new();
    CELL.get_or_init(|| {
        Templates::new(Builtins {
            clock_offset: Arc::new(AtomicI64::new(0)),
            control: ControlClient {
                http: reqwest::Client::new(),
                timeout: Duration::from_millis(10),
            },
            messages_hook: None,
        })
    })
}

fn context() -> Value {
    json!({
        "target": {"base_url": "http://127.0.0.1:9", "client_id": "cid", "client_secret": "cs",
                   "realm": "Username-Password-Authentication", "audience": "http://127.0.0.1:9/mfa/"},
        "user": {"username": "u1@example.com", "password": "p4ss!"},
        "vars": {"phone": "+15550100001", "n": 3, "list": ["otp", "oob"], "nothing": null},
        "matrix": {"param": "username"},
        "mfa_token": "eyJ.abc.def",
        "otp_secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "count": 2,
        "flag": true,
    })
}

fn check(result: Result<impl std::fmt::Debug, TemplateError>) {
    if let Err(message) = result {
        assert!(!message.to_string().trim().is_empty(), "an error without a message");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t = templates();
    let ctx = context();
    check(t.render(text, &ctx));
    check(t.render_json(&Value::String(text.to_owned()), &ctx));
    check(t.render_json(&json!({"k": text, "list": [text, 1]}), &ctx));
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check(t.render_json(&value, &ctx));
    }
});

//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), as functions of this library: the
//! targets call them with libFuzzer's inputs and the corpus replay test with the committed
//! corpora, so both hold the parsers to the same properties. Each panics when a property
//! fails: no input may panic the parser, and every rejection is a non-empty error located
//! inside the input (`name:line:column: message`).

use crate::engine::template::Templates;
use crate::scenario::Catalogue;
use crate::scenario::load::{LoadError, load_catalogue, load_scenario, normalize_line_breaks};
use crate::target::Target;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not UTF-8: the harness reads its files as UTF-8 and rejects anything else before
    /// parsing, so the input is skipped.
    NotText,
    /// Parsed (or rendered, for templates).
    Accepted,
    /// Refused with located errors.
    Rejected,
}

/// The committed catalogue, `scenarios/requirements.yaml`.
const CATALOGUE: &str = include_str!("../scenarios/requirements.yaml");

fn catalogue() -> &'static Catalogue {
    static CELL: OnceLock<Catalogue> = OnceLock::new();
    CELL.get_or_init(|| {
        load_catalogue(Path::new("requirements.yaml"), CATALOGUE)
            .expect("the committed catalogue loads")
    })
}

/// A rejection of a file called `name` with `text`: a message, a line and column inside the
/// text, and a display that starts with `name:line:column: `.
fn assert_located(error: &LoadError, name: &str, text: &str) {
    assert!(!error.message.trim().is_empty(), "empty message: {error:?}");
    // YAML counts a lone CR as a line break too.
    let lines = normalize_line_breaks(text).lines().count() as u64 + 1;
    assert!(
        (1..=lines).contains(&error.line) && error.column >= 1,
        "location {}:{} outside the input ({lines} lines): {error}",
        error.line,
        error.column
    );
    let prefix = format!("{name}:{}:{}: ", error.line, error.column);
    assert!(error.to_string().starts_with(&prefix), "{error}");
}

/// One scenario file's text through the same parse and validation as `Suite::load`,
/// against the committed catalogue: a loaded scenario has steps, a rejection carries at
/// least one located error.
pub fn scenario(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::NotText;
    };
    match load_scenario(Path::new("fuzz.yaml"), text, catalogue()) {
        Ok(scenario) => {
            assert!(
                !scenario.scenario.steps.is_empty(),
                "a loaded scenario has steps"
            );
            Outcome::Accepted
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a rejection carries at least one error");
            for error in &errors {
                assert_located(error, "fuzz.yaml", text);
            }
            Outcome::Rejected
        }
    }
}

/// The `${VAR}` values a fuzzed profile can use.
fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("s3cr3t".to_owned()),
        "URL" => Some("http://127.0.0.1:9".to_owned()),
        "MULTI" => Some("a\nb: c".to_owned()),
        _ => None,
    }
}

/// A target profile's text through `Target::parse` (the file loader minus the read), with
/// `${VAR}` resolved for a few names.
pub fn profile(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::NotText;
    };
    match Target::parse(Path::new("profile.yaml"), text, env) {
        Ok(target) => {
            assert_eq!(target.name, "profile");
            let _ = target.audience();
            assert!(!target.base_url().is_empty() || target.profile.base_url.is_empty());
            Outcome::Accepted
        }
        Err(error) => {
            assert_located(&error, "profile.yaml", text);
            Outcome::Rejected
        }
    }
}

fn templates() -> &'static Templates {
    static CELL: OnceLock<Templates> = OnceLock::new();
    CELL.get_or_init(|| Templates::offline(Duration::from_millis(10)))
}

/// A small context shaped like a scenario's.
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

fn check<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(message) = result {
        assert!(
            !message.to_string().trim().is_empty(),
            "an error without a message"
        );
    }
}

/// The template engine on arbitrary text: `render` and `render_json` (as a string, inside
/// an object and a list, and the input itself when it is JSON); every error is a non-empty
/// message. Accepted when `render` succeeds.
pub fn template(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::NotText;
    };
    let t = templates();
    let ctx = context();
    let rendered = t.render(text, &ctx);
    let outcome = if rendered.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    };
    check(rendered);
    check(t.render_json(&Value::String(text.to_owned()), &ctx));
    check(t.render_json(&json!({"k": text, "list": [text, 1]}), &ctx));
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check(t.render_json(&value, &ctx));
    }
    outcome
}

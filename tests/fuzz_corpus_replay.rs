//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and crash regressions
//! (`fuzz/regressions/<target>/`) through the same library functions the fuzz targets call:
//! no input panics, and every rejection is an error with a message and a location inside
//! the input.

use mfa_conform::engine::control::ControlClient;
use mfa_conform::engine::template::{Builtins, TemplateError, Templates};
use mfa_conform::scenario::load::{
    LoadError, load_catalogue, load_scenario, normalize_line_breaks,
};
use mfa_conform::target::Target;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, with its bytes.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let dir = Path::new(ROOT).join("fuzz").join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Runs `f` on each input, reporting which file panicked.
fn replay(target: &str, minimum: usize, f: impl Fn(&Path, &str)) {
    let files = inputs(target);
    assert!(
        files.len() >= minimum,
        "fuzz/corpus/{target} holds {} files; expected at least {minimum}",
        files.len()
    );
    let mut failures = Vec::new();
    for (path, bytes) in &files {
        // The harness reads its files as UTF-8 and rejects anything else before parsing;
        // the fuzz targets skip such inputs the same way.
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(path, text)))
        {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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

#[test]
fn scenario_corpus() {
    let catalogue_path = Path::new(ROOT).join("scenarios/requirements.yaml");
    let catalogue = load_catalogue(
        &catalogue_path,
        &std::fs::read_to_string(&catalogue_path).unwrap(),
    )
    .unwrap();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let rejected = std::sync::atomic::AtomicUsize::new(0);
    replay("scenario", 20, |_, text| {
        match load_scenario(Path::new("fuzz.yaml"), text, &catalogue) {
            Ok(scenario) => {
                assert!(!scenario.scenario.steps.is_empty());
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(errors) => {
                assert!(!errors.is_empty(), "a rejection without errors");
                for error in &errors {
                    assert_located(error, "fuzz.yaml", text);
                }
                rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    // The corpus exercises both sides: files that load and files that are refused.
    assert!(accepted.into_inner() > 0, "no corpus scenario loads");
    assert!(rejected.into_inner() > 0, "no corpus scenario is refused");
}

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("s3cr3t".to_owned()),
        "URL" => Some("http://127.0.0.1:9".to_owned()),
        "MULTI" => Some("a\nb: c".to_owned()),
        _ => None,
    }
}

#[test]
fn profile_corpus() {
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    replay("profile", 5, |_, text| {
        match Target::parse(Path::new("profile.yaml"), text, env) {
            Ok(target) => {
                assert_eq!(target.name, "profile");
                let _ = target.audience();
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => assert_located(&error, "profile.yaml", text),
        }
    });
    assert!(accepted.into_inner() > 0, "no corpus profile loads");
}

fn templates() -> Templates {
    Templates::new(Builtins {
        clock_offset: Arc::new(AtomicI64::new(0)),
        control: ControlClient {
            http: reqwest::Client::new(),
            timeout: Duration::from_millis(10),
        },
        messages_hook: None,
    })
}

/// The fuzz target's context: shaped like a scenario's.
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

#[test]
fn template_corpus() {
    let t = templates();
    let ctx = context();
    let check = |result: Result<String, TemplateError>| {
        if let Err(message) = result {
            assert!(
                !message.to_string().trim().is_empty(),
                "an error without a message"
            );
        }
    };
    let check_json = |result: Result<Value, TemplateError>| {
        if let Err(message) = result {
            assert!(
                !message.to_string().trim().is_empty(),
                "an error without a message"
            );
        }
    };
    let rendered = std::sync::atomic::AtomicUsize::new(0);
    replay("template", 20, |_, text| {
        let result = t.render(text, &ctx);
        if result.is_ok() {
            rendered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        check(result);
        check_json(t.render_json(&Value::String(text.to_owned()), &ctx));
        check_json(t.render_json(&json!({"k": text, "list": [text, 1]}), &ctx));
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            check_json(t.render_json(&value, &ctx));
        }
    });
    assert!(rendered.into_inner() > 0, "no corpus template renders");
}

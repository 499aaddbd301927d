//! `{{ ... }}` templates (minijinja) with the MFA built-ins scenarios need:
//! `totp(secret[, offset_seconds])`, `latest_code(to)`, `unique_phone()`, `unique_email()`,
//! `random_string([len])`, `now()`. Undefined names are errors, not empty strings.

use super::control::ControlClient;
use crate::target::Hook;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value as TplValue};
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the built-ins need from the run.
#[derive(Clone)]
pub struct Builtins {
    /// Seconds the run has moved the target's clock forward.
    pub clock_offset: Arc<AtomicI64>,
    pub control: ControlClient,
    pub messages_hook: Option<Hook>,
}

pub struct Templates {
    env: Environment<'static>,
}

/// A template that cannot be rendered (an undefined name, a syntax error, a failed
/// built-in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template {template:?}: {kind}{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Engine {
        template: String,
        kind: String,
        detail: Option<String>,
    },
    /// A `{{ expr }}` kept as a JSON value that evaluates to nothing.
    #[error("{template}: undefined value")]
    Undefined { template: String },
    /// A `{{ expr }}` kept as a JSON value that has no JSON form.
    #[error("{template}: {reason}")]
    NotJson { template: String, reason: String },
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn fail(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

impl Templates {
    /// Templates with no target behind them (local clock, no control hooks): for checking
    /// templates without running them, and for tests.
    pub fn offline(timeout: std::time::Duration) -> Templates {
        Templates::new(Builtins {
            clock_offset: Arc::new(AtomicI64::new(0)),
            control: ControlClient {
                http: reqwest::Client::new(),
                timeout,
            },
            messages_hook: None,
        })
    }

    pub fn new(builtins: Builtins) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let offset = builtins.clock_offset.clone();
        env.add_function(
            "totp",
            move |secret: String, shift: Option<i64>| -> Result<String, Error> {
                let at = unix_now() + offset.load(Ordering::SeqCst) + shift.unwrap_or(0);
                crate::totp::code_at(&secret, at.max(0) as u64).map_err(|e| fail(e.to_string()))
            },
        );
        let offset = builtins.clock_offset.clone();
        env.add_function("now", move || unix_now() + offset.load(Ordering::SeqCst));
        let control = builtins.control.clone();
        let hook = builtins.messages_hook.clone();
        env.add_function("latest_code", move |to: String| -> Result<String, Error> {
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|_| fail("latest_code() needs a Tokio runtime"))?;
            if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                return Err(fail("latest_code() needs a multi-threaded Tokio runtime"));
            }
            let messages = tokio::task::block_in_place(|| {
                handle.block_on(control.messages(hook.as_ref(), &to))
            })
            .map_err(|e| fail(e.to_string()))?;
            messages
                .last()
                .map(|m| m.code.clone())
                .ok_or_else(|| fail(format!("no message was delivered to {to}")))
        });
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        env.add_function("unique_phone", || {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let r: u64 = rand::rng().random_range(0..10_000);
            // +1 555 01xx xxxx: a fictional-number range, unique within a run.
            format!("+1555{:03}{:04}", n % 1000, r)
        });
        env.add_function("unique_email", || {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            format!(
                "mfa-conform-{n}-{}@example.com",
                random_alnum(8).to_lowercase()
            )
        });
        env.add_function("random_string", |len: Option<usize>| {
            random_alnum(len.unwrap_or(16).min(4096))
        });
        Templates { env }
    }

    /// Renders a string template.
    pub fn render(&self, template: &str, ctx: &Value) -> Result<String, TemplateError> {
        // (memchr: a long literal, such as a token, is scanned in a few instructions.)
        if memchr::memchr(b'{', template.as_bytes()).is_none()
            || (!template.contains("{{") && !template.contains("{%"))
        {
            return Ok(template.to_owned());
        }
        // Fast path for the common `{{ name.field }}`: a plain lookup, no template engine
        // (converting the context for minijinja costs more than the rest of a step).
        if let Some(found) = single_expression(template).and_then(|e| lookup(ctx, e)) {
            match found {
                Value::String(s) => return Ok(s.clone()),
                Value::Number(n) => return Ok(n.to_string()),
                Value::Bool(b) => return Ok(b.to_string()),
                _ => {}
            }
        }
        self.env
            .render_str(template, TplValue::from(minijinja::value::Serde(ctx)))
            .map_err(|e| describe(&e, template))
    }

    /// Renders every string inside a JSON value. A string that is exactly one `{{ expr }}`
    /// keeps the expression's type (a list stays a list, a number a number).
    pub fn render_json(&self, value: &Value, ctx: &Value) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => {
                if let Some(found) = single_expression(s).and_then(|e| lookup(ctx, e)) {
                    return Ok(found.clone());
                }
                if let Some(expr) = single_expression(s) {
                    let compiled = self
                        .env
                        .compile_expression(expr)
                        .map_err(|e| describe(&e, s))?;
                    let result = compiled
                        .eval(TplValue::from(minijinja::value::Serde(ctx)))
                        .map_err(|e| describe(&e, s))?;
                    if result.is_undefined() {
                        return Err(TemplateError::Undefined {
                            template: s.clone(),
                        });
                    }
                    serde_json::to_value(&result).map_err(|e| TemplateError::NotJson {
                        template: s.clone(),
                        reason: e.to_string(),
                    })?
                } else {
                    Value::String(self.render(s, ctx)?)
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v, ctx)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }
}

fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Resolves a dotted name (`target.client_id`, `mfa_token`) in the JSON context; `None`
/// for anything else (functions, filters, indexing) or a name that is not there, which the
/// template engine then handles (and reports).
fn lookup<'v>(ctx: &'v Value, expr: &str) -> Option<&'v Value> {
    let mut value = ctx;
    for part in expr.split('.') {
        let plain = !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !part.as_bytes()[0].is_ascii_digit();
        if !plain {
            return None;
        }
        value = value.as_object()?.get(part)?;
    }
    (!value.is_null()).then_some(value)
}

fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

fn describe(error: &Error, template: &str) -> TemplateError {
    TemplateError::Engine {
        template: template.to_owned(),
        kind: error.kind().to_string(),
        detail: error.detail().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn templates() -> Templates {
        Templates::offline(Duration::from_secs(1))
    }

    #[test]
    fn renders_values_and_keeps_types() {
        let t = templates();
        let ctx = json!({"user": {"name": "ann"}, "types": ["otp"], "n": 3});
        assert_eq!(t.render("hi {{ user.name }}", &ctx).unwrap(), "hi ann");
        let out = t
            .render_json(
                &json!({"a": "{{ types }}", "b": "{{ n }}", "c": "x{{ n }}"}),
                &ctx,
            )
            .unwrap();
        assert_eq!(out, json!({"a": ["otp"], "b": 3, "c": "x3"}));
    }

    #[test]
    fn plain_names_take_the_fast_path_with_the_same_result() {
        let t = templates();
        let ctx = json!({"a": {"b": "x", "n": 3, "list": [1]}, "z": null});
        assert_eq!(t.render("{{ a.b }}", &ctx).unwrap(), "x");
        assert_eq!(t.render("{{a.n}}", &ctx).unwrap(), "3");
        assert_eq!(
            t.render_json(&json!("{{ a.list }}"), &ctx).unwrap(),
            json!([1])
        );
        assert_eq!(lookup(&ctx, "a.b"), Some(&json!("x")));
        assert_eq!(lookup(&ctx, "a.b | upper"), None);
        assert_eq!(lookup(&ctx, "a.missing"), None);
        assert_eq!(lookup(&ctx, "z"), None, "null goes to the engine");
        assert!(t.render("{{ a.missing }}", &ctx).is_err());
    }

    #[test]
    fn undefined_is_an_error() {
        let t = templates();
        let err = t.render("{{ mfa_token }}", &json!({})).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
        assert!(matches!(err, TemplateError::Engine { .. }));
        assert!(t.render_json(&json!("{{ nope.x }}"), &json!({})).is_err());
    }

    #[test]
    fn builtins() {
        let t = templates();
        let ctx = json!({"s": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"});
        let code = t.render("{{ totp(s) }}", &ctx).unwrap();
        assert_eq!(code.len(), 6);
        let phone = t.render("{{ unique_phone() }}", &ctx).unwrap();
        assert!(crate::server::store::is_e164(&phone), "{phone}");
        assert_ne!(
            t.render("{{ unique_email() }}", &ctx).unwrap(),
            t.render("{{ unique_email() }}", &ctx).unwrap()
        );
        assert_eq!(t.render("{{ random_string(5) }}", &ctx).unwrap().len(), 5);
        assert_eq!(t.render("{{ 'a|b' | urlencode }}", &ctx).unwrap(), "a%7Cb");
    }
}

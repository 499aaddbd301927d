//! Evaluating checks and captures against a response.

use super::redact::Redactor;
use super::response::{Cache, Observed, SelectError, with_cached};
use super::result::{CheckOrigin, CheckResult, CheckStatus};
use crate::scenario::model::{
    self, BodyExpect, Capture, Check, JsonType, Predicate, Severity, StatusExpect, Subject,
};
use serde_json::Value;

thread_local! {
    /// Compiled regexes by source text (see [`with_cached`]).
    static REGEXES: Cache<regex::Regex, regex::Error> = Default::default();
}

/// Why a check did not pass: what was found instead, or why nothing could be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The value found, described (`got "mfa_required"`, `status was 200`).
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("{0}")]
    InvalidRegex(String),
}

/// Why a capture found no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("the request sent no body field {0}")]
    NotSent(String),
    #[error("{0} matched nothing in the response")]
    NoMatch(String),
    #[error("the response has no {0} header")]
    NoHeader(String),
    #[error(transparent)]
    Select(#[from] SelectError),
}

/// A check with its templated values already rendered.
pub struct Rendered<'a> {
    pub check: &'a Check,
    pub path: Option<String>,
    pub equals: Option<Value>,
    pub not_equals: Option<Value>,
    pub one_of: Option<Vec<Value>>,
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Evaluates one check; `severity` is already resolved against the catalogue.
pub fn evaluate(
    rendered: &Rendered<'_>,
    severity: Severity,
    observed: &Observed,
    redactor: &Redactor,
) -> CheckResult {
    let check = rendered.check;
    let mismatch = |text: String| Err(CheckError::Mismatch(text));
    let (description, outcome): (String, Result<(), CheckError>) = match check.subject() {
        Subject::Status(status) => {
            let expected = match status {
                StatusExpect::One(s) => s.to_string(),
                StatusExpect::AnyOf(l) => format!(
                    "one of {}",
                    l.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ),
            };
            (
                format!("status is {expected}"),
                if status.accepts(observed.status) {
                    Ok(())
                } else {
                    mismatch(format!("status was {}", observed.status))
                },
            )
        }
        Subject::Body(BodyExpect::Json) => (
            "body is JSON".into(),
            match observed.json {
                Some(_) => Ok(()),
                None => mismatch("body is not JSON".to_owned()),
            },
        ),
        Subject::Body(BodyExpect::Empty) => (
            "body is empty".into(),
            if observed.body.trim().is_empty() {
                Ok(())
            } else {
                mismatch(format!("body has {} bytes", observed.body.len()))
            },
        ),
        Subject::Header(name) => {
            let value = observed.header(name).map(|v| Value::String(v.to_owned()));
            let subject = format!("header {name}");
            (
                describe_predicates(&subject, rendered),
                predicates(&subject, value.as_ref(), rendered),
            )
        }
        Subject::Path(_) => {
            let path = rendered.path.as_deref().unwrap_or("$");
            let outcome = match observed.select(path) {
                Ok(value) => predicates(path, value, rendered),
                Err(e) => Err(e.into()),
            };
            (describe_predicates(path, rendered), outcome)
        }
    };
    let (status, actual, message) = match outcome {
        Ok(()) => (
            CheckStatus::Passed,
            String::new(),
            format!("{description}: ok"),
        ),
        Err(actual) => {
            let actual = redactor.text(&actual.to_string());
            let message = format!("expected {description}; {actual}");
            (CheckStatus::Failed, actual, message)
        }
    };
    CheckResult {
        requirement: check.req.value.clone(),
        origin: CheckOrigin::Requirement,
        severity,
        status,
        check: redactor.text(&description),
        actual,
        message: redactor.text(&message),
        expected_failure_reason: None,
    }
}

/// Whether a check passes, without describing it (load mode describes only failures).
/// Agrees with [`evaluate`]'s status.
pub fn passes(rendered: &Rendered<'_>, observed: &Observed) -> bool {
    match rendered.check.subject() {
        Subject::Status(status) => status.accepts(observed.status),
        Subject::Body(BodyExpect::Json) => observed.json.is_some(),
        Subject::Body(BodyExpect::Empty) => observed.body.trim().is_empty(),
        Subject::Header(name) => {
            let value = observed.header(name).map(|v| Value::String(v.to_owned()));
            predicates("", value.as_ref(), rendered).is_ok()
        }
        Subject::Path(_) => {
            let path = rendered.path.as_deref().unwrap_or("$");
            match observed.select(path) {
                Ok(value) => predicates("", value, rendered).is_ok(),
                Err(_) => false,
            }
        }
    }
}

impl<'a> Rendered<'a> {
    /// The check's predicates, with the rendered values.
    fn predicates(&self) -> impl Iterator<Item = Predicate<'_>> {
        model::predicates(
            self.check,
            self.equals.as_ref(),
            self.not_equals.as_ref(),
            self.one_of.as_deref(),
        )
    }
}

fn describe_predicates(subject: &str, r: &Rendered<'_>) -> String {
    let parts: Vec<String> = r
        .predicates()
        .map(|p| match p {
            Predicate::Equals(v) => format!("equals {}", short(v)),
            Predicate::NotEquals(v) => format!("differs from {}", short(v)),
            Predicate::OneOf(list) => format!(
                "is one of {}",
                list.iter().map(short).collect::<Vec<_>>().join(", ")
            ),
            Predicate::Type(t) => format!("is of type {}", t.as_str()),
            Predicate::Matches(m) => format!("matches /{m}/"),
            Predicate::Exists(true) => "exists".into(),
            Predicate::Exists(false) => "is absent".into(),
            Predicate::Length(n) => format!("has length {n}"),
        })
        .collect();
    format!("{subject} {}", parts.join(" and "))
}

fn predicates(subject: &str, value: Option<&Value>, r: &Rendered<'_>) -> Result<(), CheckError> {
    let mismatch = |text: String| Err(CheckError::Mismatch(text));
    let mut reads_value = false;
    for predicate in r.predicates() {
        match (predicate, value) {
            (Predicate::Exists(true), None) => return mismatch(format!("{subject} is absent")),
            (Predicate::Exists(false), Some(v)) => {
                return mismatch(format!("{subject} is present: {}", short(v)));
            }
            (p, _) => reads_value |= p.reads_value(),
        }
    }
    if !reads_value {
        return Ok(());
    }
    let Some(value) = value else {
        return mismatch(format!("{subject} is absent"));
    };
    for predicate in r.predicates() {
        holds(predicate, value)?;
    }
    Ok(())
}

/// Whether one predicate holds for a value that is there.
fn holds(predicate: Predicate<'_>, value: &Value) -> Result<(), CheckError> {
    let got = || Err(CheckError::Mismatch(format!("got {}", short(value))));
    let kind = || JsonType::of(value).as_str();
    match predicate {
        Predicate::Equals(expected) if !json_eq(value, expected) => got(),
        Predicate::NotEquals(unwanted) if json_eq(value, unwanted) => got(),
        Predicate::OneOf(list) if !list.iter().any(|v| json_eq(value, v)) => got(),
        Predicate::Type(t) if !t.accepts(value) => Err(CheckError::Mismatch(format!(
            "got a {} ({})",
            kind(),
            short(value)
        ))),
        Predicate::Matches(pattern) => {
            let Value::String(text) = value else {
                return Err(CheckError::Mismatch(format!(
                    "got a {}, not a string",
                    kind()
                )));
            };
            let matched = with_cached(&REGEXES, pattern, regex::Regex::new, |regex| {
                regex
                    .map(|r| r.is_match(text))
                    .map_err(|e| CheckError::InvalidRegex(e.to_string()))
            })?;
            if matched { Ok(()) } else { got() }
        }
        Predicate::Length(n) => {
            let len = match value {
                Value::Array(a) => a.len(),
                Value::String(s) => s.chars().count(),
                Value::Object(o) => o.len(),
                _ => {
                    return Err(CheckError::Mismatch(format!(
                        "got a {}, which has no length",
                        kind()
                    )));
                }
            };
            if len == n {
                Ok(())
            } else {
                Err(CheckError::Mismatch(format!("length was {len}")))
            }
        }
        _ => Ok(()),
    }
}

/// Extracts a capture: the first node of a JSONPath (strings as is, other values as JSON),
/// a header, or a field of the body the step sent.
pub fn capture(
    capture: &Capture,
    observed: &Observed,
    sent: Option<&Value>,
) -> Result<Value, CaptureError> {
    match capture {
        Capture::Sent { sent: field } => sent
            .and_then(|body| body.get(field))
            .cloned()
            .ok_or_else(|| CaptureError::NotSent(field.clone())),
        Capture::Path(path) => observed
            .select(path)?
            .cloned()
            .ok_or_else(|| CaptureError::NoMatch(path.clone())),
        Capture::Header { header } => observed
            .header(header)
            .map(|v| Value::String(v.to_owned()))
            .ok_or_else(|| CaptureError::NoHeader(header.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(yaml: &str) -> Check {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn observed() -> Observed {
        Observed {
            status: 403,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: String::new(),
            json: Some(json!({"error": "mfa_required", "mfa_token": "tok123456", "list": [1, 2]})),
        }
    }

    fn run(yaml: &str) -> CheckResult {
        let c = check(yaml);
        let r = Rendered {
            check: &c,
            path: c.path.clone(),
            equals: c.equals.clone(),
            not_equals: c.not_equals.clone(),
            one_of: c.one_of.clone(),
        };
        let redactor = Redactor::default();
        redactor.add("tok123456");
        let result = evaluate(&r, Severity::Must, &observed(), &redactor);
        // Load mode's shortcut must agree with the full evaluation, pass or fail.
        assert_eq!(
            passes(&r, &observed()),
            result.status == CheckStatus::Passed,
            "passes() disagrees with evaluate() on {yaml}"
        );
        result
    }

    #[test]
    fn predicates_pass_and_fail() {
        assert_eq!(run("{req: X, status: 403}").status, CheckStatus::Passed);
        assert_eq!(
            run("{req: X, status: [400, 401]}").status,
            CheckStatus::Failed
        );
        assert_eq!(
            run("{req: X, path: $.error, equals: mfa_required}").status,
            CheckStatus::Passed
        );
        let failed = run("{req: X, path: $.error, one_of: [a, b]}");
        assert_eq!(failed.status, CheckStatus::Failed);
        assert_eq!(failed.actual, "got \"mfa_required\"");
        assert_eq!(
            run("{req: X, path: $.list, length: 2, type: array}").status,
            CheckStatus::Passed
        );
        assert_eq!(
            run("{req: X, path: $.nope, exists: false}").status,
            CheckStatus::Passed
        );
        assert_eq!(
            run("{req: X, path: $.nope, type: string}").status,
            CheckStatus::Failed
        );
        assert_eq!(
            run("{req: X, header: Content-Type, matches: '^application/json'}").status,
            CheckStatus::Passed
        );
    }

    #[test]
    fn shortcut_agrees_on_every_subject() {
        for yaml in [
            "{req: X, body: json}",
            "{req: X, body: empty}",
            "{req: X, header: x-missing, exists: false}",
            "{req: X, header: content-type, equals: text/plain}",
            "{req: X, path: $.error, not_equals: mfa_required}",
            "{req: X, path: $.error, matches: '^mfa_'}",
            "{req: X, path: $.error, matches: '^nope'}",
            "{req: X, path: '$[', exists: true}",
        ] {
            run(yaml);
        }
    }

    #[test]
    fn failures_never_show_secrets() {
        let failed = run("{req: X, path: $.mfa_token, equals: other}");
        assert_eq!(failed.status, CheckStatus::Failed);
        assert!(!failed.message.contains("tok123456"), "{}", failed.message);
    }
}

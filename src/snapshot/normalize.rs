//! What goes into a snapshot: the status, selected headers and the body, normalised (keys
//! sorted, numbers as written) with every value that changes from run to run redacted.
//!
//! Redaction keeps types and shapes, so a snapshot still shows a changed type, a missing
//! field or a longer array: a string becomes a placeholder (`"[mfa_token]"`), a number
//! `0`, an array keeps its length, an object its keys; fixed-length secrets keep their
//! length (`"[recovery_code_________]"` is 24 characters, like the code it stands for).
//!
//! Built in, by key anywhere in the body: the secret keys of the run's redaction
//! ([`is_secret_key`]: `*_token`, `oob_code`, `binding_code`, `otp`, `recovery_code(s)`,
//! secrets and passwords), tickets, the TOTP secret and
//! account inside `barcode_uri`, ids (`id`, `*_id` but `client_id`, `sub`, `jti`; a
//! `type|` prefix is kept), dates (`*_at`, `iat`, `exp`, `nbf`, `auth_time`), user
//! identities (`username`, `email`, `phone_number`), the digits of masked authenticator
//! names, and the key material of a JWKS. By value anywhere: JWTs, RFC 3339 dates, the
//! target's base URL, audience and client secret, and every redacted value of the scenario
//! wherever else it shows up (an id echoed in an error, a path). Scenarios add JSONPaths
//! (`snapshot_redact`).

use super::json::{self, Node};
use crate::engine::redact::is_secret_key;
use crate::engine::response::Observed;
use crate::scenario::model::RedactRule;
use regex::Regex;
use serde_json::Value;
use serde_json_path::{JsonPath, PathElement};
use std::sync::LazyLock;

/// Headers every snapshot keeps when the response has them.
pub const DEFAULT_HEADERS: [&str; 5] = [
    "content-type",
    "cache-control",
    "pragma",
    "www-authenticate",
    "location",
];

/// Shortest value replaced wherever it appears as text (shorter ones would hit ordinary
/// words and numbers).
const MIN_DYNAMIC_LEN: usize = 6;

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
        .expect("valid regex")
});
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*").expect("valid regex")
});

/// How a value under a known key is redacted.
#[derive(Debug, Clone, PartialEq)]
enum KeyRule {
    /// Every string becomes the placeholder (optionally of the value's length).
    Mask {
        placeholder: String,
        keep_length: bool,
    },
    /// `[id]`, keeping a `type|` prefix (`totp|[id]`).
    Id,
    /// `[date]` for strings, 0 for numbers.
    Date,
    /// `otpauth://totp/issuer:[account]?secret=[secret...]&issuer=...`
    Barcode,
    /// A masked phone number or e-mail (`XXXXXXXX1234`): digits become `#`.
    MaskedName,
}

fn mask(placeholder: &str, keep_length: bool) -> Option<KeyRule> {
    Some(KeyRule::Mask {
        placeholder: format!("[{placeholder}]"),
        keep_length,
    })
}

/// Context of an object that changes what its keys mean.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    /// A JSON Web Key (has `kty`).
    jwk: bool,
    /// An authenticator (has `authenticator_type`).
    authenticator: bool,
}

impl Context {
    fn of<'a>(mut keys: impl Iterator<Item = &'a str>) -> Context {
        let mut ctx = Context::default();
        keys.all(|k| {
            ctx.jwk |= k == "kty";
            ctx.authenticator |= k == "authenticator_type";
            true
        });
        ctx
    }
}

fn classify(key: &str, ctx: Context) -> Option<KeyRule> {
    let key = key.to_ascii_lowercase();
    let k = key.as_str();
    if ctx.jwk && ["n", "kid", "x5c", "x5t", "x5t#s256", "x", "y", "d"].contains(&k) {
        return mask(k, false);
    }
    if ctx.authenticator && k == "name" {
        return Some(KeyRule::MaskedName);
    }
    match k {
        "barcode_uri" => Some(KeyRule::Barcode),
        // Fixed-length secrets keep their length.
        "recovery_code" | "recovery_codes" => mask("recovery_code", true),
        "secret" | "otp" | "binding_code" => mask(k, true),
        // Values that change from run to run without being secrets.
        "ticket" | "login_ticket" | "jti" | "nonce" => mask(k, false),
        "username" | "email" | "phone_number" => mask(k, false),
        "id" | "sub" => Some(KeyRule::Id),
        "iat" | "exp" | "nbf" | "auth_time" => Some(KeyRule::Date),
        _ if k.ends_with("_id") && k != "client_id" => Some(KeyRule::Id),
        _ if k.ends_with("_at") => Some(KeyRule::Date),
        // Every other secret key, as the run's redaction knows them (tokens, codes,
        // passwords, client credentials).
        _ if is_secret_key(k) => mask(k, false),
        _ => None,
    }
}

/// `placeholder` fitted to `len` characters: `[recovery_code_________]`.
pub fn fit(placeholder: &str, len: usize) -> String {
    let plen = placeholder.chars().count();
    let inner = placeholder
        .strip_prefix('[')
        .and_then(|p| p.strip_suffix(']'))
        .unwrap_or(placeholder);
    if len == plen {
        placeholder.to_owned()
    } else if len > plen {
        format!("[{inner}{}]", "_".repeat(len - plen))
    } else if len >= 2 {
        format!("[{}]", inner.chars().take(len - 2).collect::<String>())
    } else {
        "_".repeat(len)
    }
}

fn placeholder_for(placeholder: &str, keep_length: bool, value: &str) -> String {
    if keep_length {
        fit(placeholder, value.chars().count())
    } else {
        placeholder.to_owned()
    }
}

/// Values of one scenario that change from run to run, each with its placeholder; replaced
/// wherever they appear as text. Also the target's base URL, audience and client secret.
#[derive(Debug, Clone, Default)]
pub struct Dynamic {
    /// (value, placeholder), longest value first.
    values: Vec<(String, String)>,
}

impl Dynamic {
    /// Starts with values fixed for a run (the base URL, the client secret...).
    pub fn new(globals: &[(String, String)]) -> Dynamic {
        let mut dynamic = Dynamic::default();
        for (value, placeholder) in globals {
            dynamic.add(value, placeholder);
        }
        dynamic
    }

    pub fn add(&mut self, value: &str, placeholder: &str) {
        if value.chars().count() < MIN_DYNAMIC_LEN {
            return;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        for v in [value.to_owned(), encoded] {
            if !self.values.iter().any(|(known, _)| *known == v) {
                self.values.push((v, placeholder.to_owned()));
            }
        }
        self.values
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    }

    /// Collects the values under redacted keys of a response (any step of the scenario).
    pub fn harvest(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                let ctx = Context::of(map.keys().map(String::as_str));
                for (key, v) in map {
                    match classify(key, ctx) {
                        Some(KeyRule::Mask {
                            placeholder,
                            keep_length,
                        }) => self.harvest_strings(v, &mut |d, s| {
                            d.add(s, &placeholder_for(&placeholder, keep_length, s))
                        }),
                        Some(KeyRule::Id) => self.harvest_strings(v, &mut |d, s| {
                            d.add(s, &redact_id(s));
                            if let Some((_, rest)) = s.rsplit_once('|') {
                                d.add(rest, "[id]");
                            }
                        }),
                        Some(KeyRule::Barcode) => self.harvest_strings(v, &mut |d, s| {
                            if let Some((secret, account)) = barcode_parts(s) {
                                d.add(&secret, &fit("[secret]", secret.chars().count()));
                                let decoded = percent_decode(&account);
                                d.add(&decoded, "[account]");
                                d.add(&account, "[account]");
                            }
                        }),
                        Some(KeyRule::Date | KeyRule::MaskedName) => {}
                        None => self.harvest(v),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.harvest(v)),
            _ => {}
        }
    }

    fn harvest_strings(&mut self, value: &Value, add: &mut dyn FnMut(&mut Dynamic, &str)) {
        match value {
            Value::String(s) => add(self, s),
            Value::Array(items) => items.iter().for_each(|v| self.harvest_strings(v, add)),
            Value::Object(map) => map.values().for_each(|v| self.harvest_strings(v, add)),
            _ => {}
        }
    }

    /// `text` with JWTs, dates and every known dynamic value replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = JWT.replace_all(text, "[jwt]").into_owned();
        out = DATE.replace_all(&out, "[date]").into_owned();
        for (value, placeholder) in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), placeholder);
            }
        }
        out
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// `totp|dev_abc` -> `totp|[id]`; `abc` -> `[id]`.
fn redact_id(id: &str) -> String {
    match id.rsplit_once('|') {
        Some((prefix, _)) => format!("{prefix}|[id]"),
        None => "[id]".to_owned(),
    }
}

/// The TOTP secret and the account name of an `otpauth://` URI.
fn barcode_parts(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("otpauth://")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let label = path.split_once('/').map(|(_, l)| l).unwrap_or("");
    let account = split_label(label).1.to_owned();
    let secret = query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap_or("")
        .to_owned();
    Some((secret, account))
}

/// `issuer:account` (the colon may be percent-encoded) -> (`issuer:`, `account`).
fn split_label(label: &str) -> (&str, &str) {
    if let Some(i) = label.find(':') {
        return (&label[..=i], &label[i + 1..]);
    }
    let lower = label.to_ascii_lowercase();
    if let Some(i) = lower.find("%3a") {
        return (&label[..i + 3], &label[i + 3..]);
    }
    ("", label)
}

fn redact_barcode(uri: &str, dynamic: &Dynamic) -> String {
    let Some(rest) = uri.strip_prefix("otpauth://") else {
        return "[barcode_uri]".to_owned();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (kind, label) = path.split_once('/').unwrap_or((path, ""));
    let (issuer, _) = split_label(label);
    let params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some(("secret", v)) => format!("secret={}", fit("[secret]", v.chars().count())),
            _ => dynamic.text(p),
        })
        .collect();
    let mut out = format!("otpauth://{kind}/{}[account]", dynamic.text(issuer));
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Replaces a value by a placeholder of the same JSON type and shape.
fn mask_node(node: &mut Node, placeholder: &str, keep_length: bool) {
    match node {
        Node::String(s) => *s = placeholder_for(placeholder, keep_length, s),
        Node::Number(n) => {
            let integer = !n.contains(['.', 'e', 'E']);
            *n = if integer { "0" } else { "0.0" }.into();
        }
        Node::Array(items) => items
            .iter_mut()
            .for_each(|i| mask_node(i, placeholder, keep_length)),
        Node::Object(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| mask_node(v, placeholder, keep_length)),
        Node::Null | Node::Bool(_) => {}
    }
}

fn map_strings(node: &mut Node, f: &dyn Fn(&str) -> String) {
    match node {
        Node::String(s) => *s = f(s),
        Node::Array(items) => items.iter_mut().for_each(|i| map_strings(i, f)),
        Node::Object(entries) => entries.iter_mut().for_each(|(_, v)| map_strings(v, f)),
        _ => {}
    }
}

/// Applies the built-in rules to a body.
fn redact_defaults(node: &mut Node, dynamic: &Dynamic) {
    match node {
        Node::Object(entries) => {
            let ctx = Context::of(entries.iter().map(|(k, _)| k.as_str()));
            for (key, value) in entries.iter_mut() {
                match classify(key, ctx) {
                    Some(KeyRule::Mask {
                        placeholder,
                        keep_length,
                    }) => mask_node(value, &placeholder, keep_length),
                    Some(KeyRule::Id) => {
                        map_strings(value, &redact_id);
                        mask_numbers(value);
                    }
                    Some(KeyRule::Date) => mask_node(value, "[date]", false),
                    Some(KeyRule::Barcode) => map_strings(value, &|s| redact_barcode(s, dynamic)),
                    Some(KeyRule::MaskedName) => map_strings(value, &|s| {
                        dynamic
                            .text(s)
                            .chars()
                            .map(|c| if c.is_ascii_digit() { '#' } else { c })
                            .collect()
                    }),
                    None => redact_defaults(value, dynamic),
                }
            }
        }
        Node::Array(items) => items.iter_mut().for_each(|i| redact_defaults(i, dynamic)),
        Node::String(s) => *s = dynamic.text(s),
        _ => {}
    }
}

fn mask_numbers(node: &mut Node) {
    match node {
        Node::Number(n) => *n = "0".into(),
        Node::Array(items) => items.iter_mut().for_each(mask_numbers),
        Node::Object(entries) => entries.iter_mut().for_each(|(_, v)| mask_numbers(v)),
        _ => {}
    }
}

/// The node at a normalised JSONPath location.
fn locate<'n>(
    root: &'n mut Node,
    path: &serde_json_path::NormalizedPath<'_>,
) -> Option<&'n mut Node> {
    let mut node = root;
    for element in path.iter() {
        node = match (node, element) {
            (Node::Object(entries), PathElement::Name(name)) => {
                &mut entries.iter_mut().find(|(k, _)| k == name)?.1
            }
            (Node::Array(items), PathElement::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// A scenario's redaction rule, parsed.
#[derive(Debug, Clone)]
pub struct PathRule {
    path: JsonPath,
    placeholder: Option<String>,
    keep_length: bool,
}

impl PathRule {
    /// `None` for a path the loader would have refused.
    pub fn new(rule: &RedactRule) -> Option<PathRule> {
        Some(PathRule {
            path: JsonPath::parse(rule.path()).ok()?,
            placeholder: rule.placeholder().map(str::to_owned),
            keep_length: rule.keep_length(),
        })
    }

    fn apply(&self, root: &mut Node, json: &Value) {
        for located in self.path.query_located(json).iter() {
            let location = located.location();
            let placeholder = self.placeholder.clone().unwrap_or_else(|| {
                let name = location
                    .iter()
                    .rev()
                    .find_map(|e| e.as_name())
                    .unwrap_or("redacted");
                format!("[{name}]")
            });
            if let Some(node) = locate(root, location) {
                mask_node(node, &placeholder, self.keep_length);
            }
        }
    }
}

/// The snapshot text of a response: `status: N`, the kept headers (sorted), a blank line,
/// then the body (pretty JSON, text, or `(empty body)`).
pub fn contents(
    observed: &Observed,
    rules: &[PathRule],
    extra_headers: &[String],
    dynamic: &Dynamic,
) -> String {
    let mut out = format!("status: {}\n", observed.status);
    let mut headers: Vec<&(String, String)> = observed
        .headers
        .iter()
        .filter(|(name, _)| {
            DEFAULT_HEADERS.contains(&name.as_str()) || extra_headers.iter().any(|h| h == name)
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {}\n", dynamic.text(value)));
    }
    out.push('\n');
    if observed.body.trim().is_empty() {
        out.push_str("(empty body)");
    } else if let Some(mut node) = json::parse(&observed.body) {
        redact_defaults(&mut node, dynamic);
        if let Some(value) = observed
            .json
            .clone()
            .or_else(|| serde_json::from_str(&observed.body).ok())
        {
            for rule in rules {
                rule.apply(&mut node, &value);
            }
        }
        out.push_str(&node.render());
    } else {
        let text = dynamic.text(&observed.body);
        out.push_str(text.trim_end());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(status: u16, body: &str) -> Observed {
        Observed {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("date".into(), "Mon, 01 Jan 2024 00:00:00 GMT".into()),
                ("x-trace".into(), "abc".into()),
            ],
            body: body.to_owned(),
            json: serde_json::from_str(body).ok(),
        }
    }

    fn snapshot(body: &str, rules: &[RedactRule]) -> String {
        let obs = observed(200, body);
        let mut dynamic = Dynamic::new(&[("http://127.0.0.1:4321".into(), "[base_url]".into())]);
        dynamic.harvest(obs.json.as_ref().unwrap());
        let rules: Vec<PathRule> = rules.iter().filter_map(PathRule::new).collect();
        contents(&obs, &rules, &[], &dynamic)
    }

    #[test]
    fn association_secrets_keep_type_and_length() {
        let text = snapshot(
            r#"{"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "barcode_uri":
                "otpauth://totp/mfa-conform:user-1a2b3c4d%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=mfa-conform",
                "authenticator_type": "otp",
                "recovery_codes": ["ABCDEFGHIJKLMNOPQRSTUVWX"]}"#,
            &[],
        );
        insta::assert_snapshot!(text, @r#"
        status: 200
        content-type: application/json

        {
          "authenticator_type": "otp",
          "barcode_uri": "otpauth://totp/mfa-conform:[account]?secret=[secret________________________]&issuer=mfa-conform",
          "recovery_codes": [
            "[recovery_code_________]"
          ],
          "secret": "[secret________________________]"
        }
        "#);
        assert_eq!("[recovery_code_________]".len(), 24);
    }

    #[test]
    fn tokens_ids_dates_and_echoes_are_redacted() {
        let text = snapshot(
            r#"{"access_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                "mfa_token": "tok_1234567890", "token_type": "Bearer", "expires_in": 600,
                "authenticators": [{"id": "sms|dev_AbCdEf123456", "authenticator_type": "oob",
                  "name": "XXXXXXXX4821", "created_at": "2024-05-01T10:00:00.000Z", "active": true}],
                "issuer": "http://127.0.0.1:4321/",
                "error_description": "token tok_1234567890 for sms|dev_AbCdEf123456",
                "iat": 1700000000, "note": "issued 2024-05-01T10:00:00Z", "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}"#,
            &[],
        );
        insta::assert_snapshot!(text, @r#"
        status: 200
        content-type: application/json

        {
          "access_token": "[access_token]",
          "authenticators": [
            {
              "active": true,
              "authenticator_type": "oob",
              "created_at": "[date]",
              "id": "sms|[id]",
              "name": "XXXXXXXX####"
            }
          ],
          "error_description": "token [mfa_token] for sms|[id]",
          "expires_in": 600,
          "iat": 0,
          "issuer": "[base_url]/",
          "jwt": "[jwt]",
          "mfa_token": "[mfa_token]",
          "note": "issued [date]",
          "token_type": "Bearer"
        }
        "#);
    }

    #[test]
    fn scenario_paths_redact_with_type_and_shape_kept() {
        let text = snapshot(
            r#"{"ticket_no": "T-99812", "list": [{"v": 1.5}, {"v": 2}], "n": [1, 2, 3], "flag": true}"#,
            &[
                RedactRule::Path("$.ticket_no".into()),
                RedactRule::Path("$.list[*].v".into()),
                RedactRule::Path("$.n".into()),
                RedactRule::Path("$.flag".into()),
                RedactRule::Path("$.absent".into()),
            ],
        );
        insta::assert_snapshot!(text, @r#"
        status: 200
        content-type: application/json

        {
          "flag": true,
          "list": [
            {
              "v": 0.0
            },
            {
              "v": 0
            }
          ],
          "n": [
            0,
            0,
            0
          ],
          "ticket_no": "[ticket_no]"
        }
        "#);
        let custom = snapshot(
            r#"{"code": "123456789"}"#,
            &[serde_json::from_value(
                json!({"path": "$.code", "placeholder": "[c]", "keep_length": true}),
            )
            .unwrap()],
        );
        assert!(custom.contains("\"code\": \"[c______]\""), "{custom}");
    }

    #[test]
    fn jwks_key_material_is_redacted() {
        let text = snapshot(
            r#"{"keys": [{"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl",
                "e": "AQAB", "kid": "key-1a2b3c4d", "alg": "RS256", "use": "sig"}]}"#,
            &[],
        );
        assert!(text.contains("\"n\": \"[n]\""), "{text}");
        assert!(text.contains("\"kid\": \"[kid]\""), "{text}");
        assert!(text.contains("\"e\": \"AQAB\""), "{text}");
    }

    #[test]
    fn text_and_empty_bodies() {
        let mut obs = observed(204, "");
        obs.json = None;
        assert_eq!(
            contents(&obs, &[], &[], &Dynamic::default()),
            "status: 204\ncontent-type: application/json\n\n(empty body)\n"
        );
        obs.body = "<html>2024-01-01T00:00:00Z</html>\n\n".into();
        obs.headers.push(("x-trace".into(), "t".into()));
        assert_eq!(
            contents(&obs, &[], &["x-trace".into()], &Dynamic::default()),
            "status: 204\ncontent-type: application/json\nx-trace: abc\nx-trace: t\n\n<html>[date]</html>\n"
        );
    }

    #[test]
    fn placeholders_fit_lengths() {
        assert_eq!(fit("[otp]", 6), "[otp_]");
        assert_eq!(fit("[binding_code]", 6), "[bind]");
        assert_eq!(fit("[x]", 1), "_");
        assert_eq!(fit("[secret]", 8), "[secret]");
    }
}

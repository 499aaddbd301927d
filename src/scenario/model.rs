//! The scenario format: plain serde types, no I/O. The JSON Schema editors use
//! (`mfa-conform schema`) is generated from these types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

/// One scenario file: an MFA flow, step by step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; defaults to the file name without `.yaml`.
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows, in a sentence or two.
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form labels for `--tag` / `--skip-tag` filtering.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Capabilities the target must claim; otherwise the scenario is skipped.
    #[serde(default)]
    pub requires: Vec<Capability>,
    /// Provision a fresh user (`user.username`, `user.password`) before setup. Default true.
    #[serde(default = "yes")]
    pub user: bool,
    /// Scenario-level values, available to templates as `vars.<name>`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Value>")]
    pub vars: IndexMap<String, Value>,
    /// Steps that prepare the flow; they always run, and a failure in them fails the scenario.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// The flow under test. Stops at the first step whose `must` check fails.
    pub steps: Vec<Step>,
    /// Steps that always run at the end, even after a failure.
    #[serde(default)]
    pub teardown: Vec<Step>,
    /// Snapshot the response of every request step (`false`: never, even with
    /// `run --snapshot`); a step's own `snapshot` wins.
    #[serde(default)]
    pub snapshot: Option<bool>,
    /// Response values that change from run to run, redacted in this scenario's snapshots
    /// on top of the built-in rules (tokens, codes, secrets, ids, dates).
    #[serde(default)]
    #[schemars(with = "Vec<RedactRule>")]
    pub snapshot_redact: Vec<Spanned<RedactRule>>,
    /// Response headers kept in snapshots besides content-type, cache-control, pragma,
    /// www-authenticate and location.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub snapshot_headers: Vec<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// The three lists of steps of a scenario, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Setup,
    Steps,
    Teardown,
}

impl Scenario {
    /// Each phase with its steps, in the order they run.
    pub fn phases(&self) -> [(Phase, &[Step]); 3] {
        [
            (Phase::Setup, &self.setup),
            (Phase::Steps, &self.steps),
            (Phase::Teardown, &self.teardown),
        ]
    }

    /// The steps of one phase.
    pub fn phase(&self, phase: Phase) -> &[Step] {
        match phase {
            Phase::Setup => &self.setup,
            Phase::Steps => &self.steps,
            Phase::Teardown => &self.teardown,
        }
    }
}

/// Something a target can do that some scenarios need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Otp,
    Sms,
    Voice,
    Email,
    RecoveryCode,
    /// The control API can move the target's clock forward.
    Clock,
}

impl Capability {
    pub const ALL: [Capability; 6] = [
        Capability::Otp,
        Capability::Sms,
        Capability::Voice,
        Capability::Email,
        Capability::RecoveryCode,
        Capability::Clock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Otp => "otp",
            Capability::Sms => "sms",
            Capability::Voice => "voice",
            Capability::Email => "email",
            Capability::RecoveryCode => "recovery-code",
            Capability::Clock => "clock",
        }
    }
}

/// One step: exactly one action (`request`, `advance_clock`, `new_user`), then checks and
/// captures on its result.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Shown in reports; may use `{{ ... }}` (e.g. matrix values).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Runs the step once per combination of these values (`{{ matrix.<key> }}`).
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Vec<Value>>")]
    pub matrix: IndexMap<String, Vec<Value>>,
    /// An HTTP request to the target.
    #[serde(default)]
    pub request: Option<Request>,
    /// Moves the target's clock forward this many seconds (needs the `clock` capability).
    #[serde(default)]
    pub advance_clock: Option<u64>,
    /// Provisions another user, available to templates as `<name>.username` / `.password`.
    #[serde(default)]
    pub new_user: Option<String>,
    /// Expectations on the result.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Values to keep for later steps: `name: "$.json.path"` or `name: {header: x}`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Capture>")]
    pub capture: IndexMap<String, Capture>,
    /// Snapshot this step's response (`false`: never, whatever the scenario or the run say).
    #[serde(default)]
    pub snapshot: Option<bool>,
    /// Response values of this step to redact in its snapshot, on top of the scenario's.
    #[serde(default)]
    #[schemars(with = "Vec<RedactRule>")]
    pub snapshot_redact: Vec<Spanned<RedactRule>>,
}

/// What a step does: its one action (loading a scenario checks there is exactly one).
#[derive(Debug, Clone, Copy)]
pub enum Action<'s> {
    Request(&'s Request),
    AdvanceClock(u64),
    /// Provisions a user under this name.
    NewUser(&'s str),
}

impl Step {
    /// The step's action; `None` unless it has exactly one (never for a loaded scenario).
    pub fn action(&self) -> Option<Action<'_>> {
        match (&self.request, self.advance_clock, &self.new_user) {
            (Some(request), None, None) => Some(Action::Request(request)),
            (None, Some(seconds), None) => Some(Action::AdvanceClock(seconds)),
            (None, None, Some(name)) => Some(Action::NewUser(name)),
            _ => None,
        }
    }

    /// The variable names the step assigns: its captures and a new user's name.
    pub fn assigns(&self) -> impl Iterator<Item = &String> {
        self.capture.keys().chain(self.new_user.as_ref())
    }
}

/// A response value to redact in snapshots: a JSONPath (`"$.ticket"`; the placeholder is
/// `"[ticket]"`), or `{path, placeholder, keep_length}`. A redacted value keeps its JSON
/// type and shape: strings become the placeholder, numbers 0, arrays keep their length.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RedactRule {
    /// An RFC 9535 JSONPath into the response body.
    Path(String),
    Detailed(RedactDetail),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactDetail {
    /// An RFC 9535 JSONPath into the response body.
    pub path: String,
    /// Replacement for string values (default `[<last key>]`).
    #[serde(default)]
    pub placeholder: Option<String>,
    /// Pad or cut the placeholder to the value's length, so a change of length shows.
    #[serde(default)]
    pub keep_length: bool,
}

impl RedactRule {
    pub fn path(&self) -> &str {
        match self {
            RedactRule::Path(path) => path,
            RedactRule::Detailed(detail) => &detail.path,
        }
    }

    pub fn placeholder(&self) -> Option<&str> {
        match self {
            RedactRule::Path(_) => None,
            RedactRule::Detailed(detail) => detail.placeholder.as_deref(),
        }
    }

    pub fn keep_length(&self) -> bool {
        matches!(self, RedactRule::Detailed(detail) if detail.keep_length)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// An HTTP request; every string in it is a template.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: Method,
    /// Path relative to the target's `base_url` (or an absolute URL).
    pub path: String,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: IndexMap<String, String>,
    /// Shorthand for `Authorization: Bearer <value>`.
    #[serde(default)]
    pub bearer: Option<String>,
    /// A JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// A form-urlencoded body (values: strings, numbers, or lists for repeated keys).
    #[serde(default)]
    #[schemars(with = "Option<IndexMap<String, Value>>")]
    pub form: Option<IndexMap<String, Value>>,
    /// A raw body, sent as is (set `Content-Type` in `headers`).
    #[serde(default)]
    pub body: Option<String>,
    /// Top-level body keys to remove after templating (for "missing parameter" checks).
    #[serde(default)]
    pub omit: Vec<String>,
}

/// Where a captured value comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Capture {
    /// An RFC 9535 JSONPath into the response body (first match).
    Path(String),
    /// A response header.
    Header { header: String },
    /// A field of the body this step sent, as rendered (e.g. the TOTP code it computed, to
    /// present exactly that code again later).
    Sent { sent: String },
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure is a warning.
    Should,
    /// A failure fails the scenario.
    Must,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Must => "must",
            Severity::Should => "should",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::String(_) => JsonType::String,
            Value::Number(n) if n.is_i64() || n.is_u64() => JsonType::Integer,
            Value::Number(_) => JsonType::Number,
            Value::Bool(_) => JsonType::Boolean,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
            Value::Null => JsonType::Null,
        }
    }

    pub fn accepts(self, value: &Value) -> bool {
        let actual = JsonType::of(value);
        actual == self || (self == JsonType::Number && actual == JsonType::Integer)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
        }
    }
}

/// `status: 403` or `status: [400, 401]` (one of).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusExpect {
    One(u16),
    AnyOf(Vec<u16>),
}

impl StatusExpect {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusExpect::One(s) => *s == status,
            StatusExpect::AnyOf(list) => list.contains(&status),
        }
    }
}

/// One expectation, tied to a requirement of the catalogue.
///
/// Subject: `status`, `header: <name>`, `path: <JSONPath>` or `body: json|empty`.
/// Predicates (for header and path): `equals`, `not_equals`, `one_of`, `type`, `matches`,
/// `exists`, `length`; several may be combined (all must hold).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Requirement id from the catalogue (`scenarios/requirements.yaml`).
    #[schemars(with = "String")]
    pub req: Spanned<String>,
    /// Defaults to the requirement's level; can lower `must` to `should`, never raise it.
    #[serde(default)]
    #[schemars(with = "Option<Severity>")]
    pub severity: Option<Spanned<Severity>>,
    #[serde(default)]
    pub status: Option<StatusExpect>,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<BodyExpect>,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub not_equals: Option<Value>,
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    #[serde(default, rename = "type")]
    pub type_: Option<JsonType>,
    /// A regular expression the (string) value must match.
    #[serde(default)]
    pub matches: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
    /// Length of an array, string or object.
    #[serde(default)]
    pub length: Option<usize>,
}

/// `check`'s predicates with these values for the templated ones: in the order a
/// description lists them.
pub fn predicates<'v>(
    check: &'v Check,
    equals: Option<&'v Value>,
    not_equals: Option<&'v Value>,
    one_of: Option<&'v [Value]>,
) -> impl Iterator<Item = Predicate<'v>> {
    [
        equals.map(Predicate::Equals),
        not_equals.map(Predicate::NotEquals),
        one_of.map(Predicate::OneOf),
        check.type_.map(Predicate::Type),
        check.matches.as_deref().map(Predicate::Matches),
        check.exists.map(Predicate::Exists),
        check.length.map(Predicate::Length),
    ]
    .into_iter()
    .flatten()
}

/// What a check looks at (loading a scenario checks there is exactly one).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'c> {
    Status(&'c StatusExpect),
    Body(BodyExpect),
    /// A response header, by name.
    Header(&'c str),
    /// A JSONPath into the body (as written: it may be a template).
    Path(&'c str),
}

/// One condition of a header or path check (a check may combine several; all must hold).
#[derive(Debug, Clone, Copy)]
pub enum Predicate<'v> {
    Equals(&'v Value),
    NotEquals(&'v Value),
    OneOf(&'v [Value]),
    Type(JsonType),
    /// A regular expression the (string) value must match.
    Matches(&'v str),
    /// `true`: the value is there; `false`: it is not.
    Exists(bool),
    /// Length of an array, string or object.
    Length(usize),
}

impl Predicate<'_> {
    /// Whether the predicate compares a value (all but [`Predicate::Exists`]).
    pub fn reads_value(&self) -> bool {
        !matches!(self, Predicate::Exists(_))
    }
}

impl Check {
    /// The check's predicates as written (values not rendered), in the order a
    /// description lists them.
    pub fn predicates(&self) -> impl Iterator<Item = Predicate<'_>> {
        predicates(
            self,
            self.equals.as_ref(),
            self.not_equals.as_ref(),
            self.one_of.as_deref(),
        )
    }
    /// The check's subject: `status`, else `body`, else `header`, else `path` (`$` if
    /// none is given).
    pub fn subject(&self) -> Subject<'_> {
        if let Some(status) = &self.status {
            Subject::Status(status)
        } else if let Some(body) = self.body {
            Subject::Body(body)
        } else if let Some(name) = &self.header {
            Subject::Header(name)
        } else {
            Subject::Path(self.path.as_deref().unwrap_or("$"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyExpect {
    /// The body parses as JSON.
    Json,
    /// The body is empty.
    Empty,
}

/// An entry of the requirements catalogue.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    pub area: Area,
    /// What an implementation must (or should) do.
    pub text: String,
    /// Where it comes from: the public documentation, RFC or SDK source, or the observed
    /// behaviour, with how sure it is (documented, observed, SDK behaviour, inferred, open).
    pub source: String,
    /// `should` where the source is inferred or open.
    pub level: Severity,
}

/// Areas of the compatibility report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    Login,
    Otp,
    Oob,
    RecoveryCodes,
    Management,
    Errors,
    Security,
    Discovery,
}

impl Area {
    pub fn title(self) -> &'static str {
        match self {
            Area::Login => "Login (mfa_required)",
            Area::Otp => "OTP",
            Area::Oob => "SMS, voice and email",
            Area::RecoveryCodes => "Recovery codes",
            Area::Management => "Authenticator management",
            Area::Errors => "Errors",
            Area::Security => "Security",
            Area::Discovery => "Discovery and tokens",
        }
    }
}

/// The catalogue file: `requirements: [...]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Suite version, shown in reports.
    pub version: String,
    pub requirements: Vec<Requirement>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_has_one_action_and_a_check_one_subject() {
        let step: Step = serde_saphyr::from_str("{name: s, advance_clock: 30}").unwrap();
        assert!(matches!(step.action(), Some(Action::AdvanceClock(30))));
        let step: Step =
            serde_saphyr::from_str("{name: s, new_user: other, request: {method: GET, path: /}}")
                .unwrap();
        assert!(step.action().is_none(), "two actions are none");

        let check: Check =
            serde_saphyr::from_str("{req: X, header: Location, exists: true}").unwrap();
        assert!(matches!(check.subject(), Subject::Header("Location")));
        let check: Check = serde_saphyr::from_str("{req: X, equals: 3}").unwrap();
        assert!(
            matches!(check.subject(), Subject::Path("$")),
            "the body root by default"
        );
    }

    #[test]
    fn predicates_come_in_description_order() {
        let check: Check = serde_saphyr::from_str(
            "{req: X, path: $.a, length: 2, exists: true, type: array, equals: [1, 2]}",
        )
        .unwrap();
        let kinds: Vec<_> = check
            .predicates()
            .map(|p| match p {
                Predicate::Equals(_) => "equals",
                Predicate::Type(_) => "type",
                Predicate::Exists(_) => "exists",
                Predicate::Length(_) => "length",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["equals", "type", "exists", "length"]);
        assert!(!Predicate::Exists(true).reads_value());
    }
}

//! Loading a suite: the requirements catalogue and every `*.yaml` scenario in a directory,
//! parsed strictly (unknown keys are errors) and validated against the catalogue. Errors
//! carry file, line and column, and a rendered snippet with the spot underlined.

use super::model::*;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};
use serde_saphyr::Location;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The catalogue's file name inside a scenarios directory.
pub const CATALOGUE_FILE: &str = "requirements.yaml";

/// A mistake in a user's file.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The source snippet with the spot underlined (no colours).
    pub snippet: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

fn render(report: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let _ = handler.render_report(&mut out, report);
    out
}

impl LoadError {
    fn at(file: &Path, source: &str, location: Option<Location>, message: String) -> LoadError {
        // `Location::UNKNOWN` (line 0) means "somewhere in the file": point at its start.
        let location = location.filter(|l| l.line() > 0);
        let (line, column) = location.map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        let offset = location
            .and_then(|l| l.span().byte_offset())
            .map(|o| o as usize)
            .unwrap_or_else(|| byte_offset(source, line, column))
            .min(source.len());
        let len = location
            .and_then(|l| l.span().byte_len())
            .map(|l| l as usize)
            .filter(|l| *l > 0)
            .unwrap_or(1)
            .min(source.len().saturating_sub(offset).max(1));
        let diagnostic = MietteDiagnostic::new(message.clone())
            .with_label(LabeledSpan::at(offset..offset + len, "here"));
        let report = miette::Report::new(diagnostic).with_source_code(NamedSource::new(
            file.display().to_string(),
            source.to_owned(),
        ));
        LoadError {
            file: file.to_owned(),
            line,
            column,
            message,
            snippet: render(report.as_ref()),
        }
    }

    pub(crate) fn whole_file(file: &Path, message: String) -> LoadError {
        LoadError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message,
            snippet: String::new(),
        }
    }
}

fn byte_offset(source: &str, line: u64, column: u64) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            return (offset + column.saturating_sub(1) as usize)
                .min(source.len().saturating_sub(1));
        }
        offset += l.len();
    }
    source.len().saturating_sub(1)
}

/// Parses YAML into `T`, turning a serde error into a located [`LoadError`].
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    source: &str,
) -> Result<T, LoadError> {
    let source = normalize_line_breaks(source);
    serde_saphyr::from_str::<T>(&source)
        .map_err(|e| LoadError::at(file, &source, e.location(), clean_message(&e.to_string())))
}

/// YAML line breaks are LF, CRLF and a lone CR, and the parser counts lines that way, while
/// the snippet renderer counts only LF. Both see the text with every break written as LF,
/// so the line in a message, its snippet and an editor agree (YAML itself reads every break
/// as LF, so the values do not change).
pub fn normalize_line_breaks(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains('\r') {
        return std::borrow::Cow::Borrowed(source);
    }
    std::borrow::Cow::Owned(source.replace("\r\n", "\n").replace('\r', "\n"))
}

/// serde-saphyr prefixes messages with the position (shown separately here), and a few
/// serde messages name Rust types; say what the user should write instead.
fn clean_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    let prefix = regex::Regex::new(r"^(error: )?line \d+ column \d+: ").expect("valid regex");
    let message = prefix.replace(first, "").into_owned();
    if message.contains("untagged enum StatusExpect") {
        return "expected a status code (403) or a list of them ([400, 401])".to_owned();
    }
    if message.contains("untagged enum Capture") {
        return "expected a JSONPath string (\"$.mfa_token\") or {header: name}".to_owned();
    }
    if message.contains("untagged enum RedactRule") {
        return "expected a JSONPath string (\"$.ticket\") or {path, placeholder, keep_length}"
            .to_owned();
    }
    if message.contains("untagged enum Hook") {
        return "expected a URL string or {command: [program, args...]}".to_owned();
    }
    message
}

/// A scenario ready to run: matrix steps expanded, name settled.
#[derive(Debug, Clone)]
pub struct SuiteScenario {
    pub name: String,
    pub file: PathBuf,
    pub scenario: Scenario,
}

/// A loaded suite.
#[derive(Debug, Clone)]
pub struct Suite {
    pub dir: PathBuf,
    pub catalogue: Catalogue,
    pub scenarios: Vec<SuiteScenario>,
    /// `sha256:<hex>` of the catalogue and every scenario file, in name order.
    pub content_hash: String,
}

impl Suite {
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.catalogue.requirements.iter().find(|r| r.id == id)
    }

    /// Loads a suite directory: its catalogue and every scenario below it, all checked
    /// (every error found is returned, not only the first). See [`crate::suite::load`].
    pub fn load(dir: &Path) -> Result<Suite, Vec<LoadError>> {
        crate::suite::load(&[dir.to_owned()])
    }
}

/// Parses a requirements catalogue (`requirements.yaml`) from its text; requirement ids
/// must be unique.
pub fn load_catalogue(file: &Path, text: &str) -> Result<Catalogue, Vec<LoadError>> {
    let catalogue: Catalogue = parse_yaml(file, text).map_err(|e| vec![e])?;
    let mut seen_ids = HashSet::new();
    let errors: Vec<LoadError> = catalogue
        .requirements
        .iter()
        .filter(|r| !seen_ids.insert(r.id.as_str()))
        .map(|r| LoadError::whole_file(file, format!("requirement id {:?} appears twice", r.id)))
        .collect();
    if errors.is_empty() {
        Ok(catalogue)
    } else {
        Err(errors)
    }
}

fn levels(catalogue: &Catalogue) -> HashMap<&str, Severity> {
    catalogue
        .requirements
        .iter()
        .map(|r| (r.id.as_str(), r.level))
        .collect()
}

/// Parses and validates one scenario file's text against a catalogue, exactly as
/// [`Suite::load`] does for each file of a suite: `file` names the scenario (its stem is
/// the default name) and every error. Returns the scenario with matrix steps expanded, or
/// every mistake found in it. Only names shared with other files are left to `Suite::load`.
pub fn load_scenario(
    file: &Path,
    text: &str,
    catalogue: &Catalogue,
) -> Result<SuiteScenario, Vec<LoadError>> {
    load_one(file, text, &levels(catalogue))
}

fn load_one(
    file: &Path,
    text: &str,
    levels: &HashMap<&str, Severity>,
) -> Result<SuiteScenario, Vec<LoadError>> {
    let text = normalize_line_breaks(text);
    let scenario: Scenario = parse_yaml(file, &text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    validate(file, &text, &scenario, levels, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let name = scenario.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(SuiteScenario {
        name,
        file: file.to_owned(),
        scenario: expand(scenario),
    })
}

/// The most runs one matrix step may expand to: far above any real use, and low enough
/// that a few keys with long (or aliased) value lists cannot exhaust memory at load.
pub const MAX_MATRIX_COMBINATIONS: usize = 1000;

/// The most steps a scenario may expand to (setup, steps and teardown, matrix runs included).
pub const MAX_EXPANDED_STEPS: usize = 10_000;

/// Checks what serde cannot: requirement ids, severities, one action per step, one subject
/// per check, valid regexes and JSONPaths.
fn validate(
    file: &Path,
    source: &str,
    scenario: &Scenario,
    levels: &HashMap<&str, Severity>,
    errors: &mut Vec<LoadError>,
) {
    let mut error = |location: Location, message: String| {
        errors.push(LoadError::at(file, source, Some(location), message));
    };
    if scenario.steps.is_empty() {
        errors_push_whole(
            file,
            "a scenario needs at least one step in `steps`",
            &mut error,
        );
    }
    validate_snapshot_options(scenario, &mut error);
    let expanded = all_steps(scenario)
        .map(combinations)
        .fold(0usize, usize::saturating_add);
    if expanded > MAX_EXPANDED_STEPS {
        errors_push_whole(
            file,
            &format!(
                "the scenario expands to more than {MAX_EXPANDED_STEPS} steps (matrix runs included)"
            ),
            &mut error,
        );
    }
    for step in all_steps(scenario) {
        validate_action(step, scenario, &mut error);
        validate_matrix(step, &mut error);
        for (name, capture) in &step.capture {
            if let Capture::Path(path) = capture
                && let Err(e) = serde_json_path::JsonPath::parse(path)
            {
                error(
                    step.name.referenced,
                    format!("capture {name:?}: invalid JSONPath {path:?}: {e}"),
                );
            }
        }
        for check in &step.checks {
            validate_check(check, levels, &mut error);
        }
    }
}

/// Setup, steps and teardown, in order.
fn all_steps(scenario: &Scenario) -> impl Iterator<Item = &Step> {
    scenario
        .setup
        .iter()
        .chain(&scenario.steps)
        .chain(&scenario.teardown)
}

/// The runs a matrix step expands to (saturating).
fn combinations(step: &Step) -> usize {
    step.matrix
        .values()
        .fold(1usize, |n, values| n.saturating_mul(values.len()))
}

/// One action per step, the `clock` capability for `advance_clock`, one body per request.
fn validate_action(step: &Step, scenario: &Scenario, error: &mut impl FnMut(Location, String)) {
    let at = step.name.referenced;
    let actions = [
        step.request.is_some(),
        step.advance_clock.is_some(),
        step.new_user.is_some(),
    ]
    .iter()
    .filter(|a| **a)
    .count();
    if actions != 1 {
        error(
            at,
            format!(
                "step {:?} must have exactly one action (request, advance_clock or new_user); it has {actions}",
                step.name.value
            ),
        );
    }
    if step.advance_clock.is_some() && !scenario.requires.contains(&Capability::Clock) {
        error(
            at,
            format!(
                "step {:?} advances the clock, so the scenario must list `clock` in `requires`",
                step.name.value
            ),
        );
    }
    if let Some(request) = &step.request {
        let bodies = [
            request.json.is_some(),
            request.form.is_some(),
            request.body.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if bodies > 1 {
            error(
                at,
                format!(
                    "step {:?}: use only one of json, form and body",
                    step.name.value
                ),
            );
        }
    }
}

/// Every matrix key has values, and the combinations stay under
/// [`MAX_MATRIX_COMBINATIONS`].
fn validate_matrix(step: &Step, error: &mut impl FnMut(Location, String)) {
    let at = step.name.referenced;
    for (key, values) in &step.matrix {
        if values.is_empty() {
            error(
                at,
                format!(
                    "step {:?}: matrix key {key:?} has no values",
                    step.name.value
                ),
            );
        }
    }
    let combinations = combinations(step);
    if combinations > MAX_MATRIX_COMBINATIONS {
        error(
            at,
            format!(
                "step {:?}: the matrix gives {} combinations; at most {MAX_MATRIX_COMBINATIONS} are allowed",
                step.name.value,
                if combinations == usize::MAX {
                    "too many".to_owned()
                } else {
                    combinations.to_string()
                }
            ),
        );
    }
}

/// `snapshot_redact` paths parse as JSONPaths with a usable placeholder, and
/// `snapshot_headers` are header names.
fn validate_snapshot_options(scenario: &Scenario, error: &mut impl FnMut(Location, String)) {
    let rules = scenario
        .snapshot_redact
        .iter()
        .chain(all_steps(scenario).flat_map(|s| &s.snapshot_redact));
    for rule in rules {
        let path = rule.value.path();
        if let Err(e) = serde_json_path::JsonPath::parse(path) {
            error(
                rule.referenced,
                format!("snapshot_redact: invalid JSONPath {path:?}: {e}"),
            );
        }
        if rule.value.placeholder().is_some_and(str::is_empty) {
            error(
                rule.referenced,
                "snapshot_redact: the placeholder cannot be empty".to_owned(),
            );
        }
    }
    for header in &scenario.snapshot_headers {
        let name = header.value.as_str();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            error(
                header.referenced,
                format!("snapshot_headers: {name:?} is not a header name"),
            );
        }
    }
}

fn errors_push_whole(file: &Path, message: &str, error: &mut impl FnMut(Location, String)) {
    let _ = file;
    error(Location::UNKNOWN, message.to_owned());
}

fn validate_check(
    check: &Check,
    levels: &HashMap<&str, Severity>,
    error: &mut impl FnMut(Location, String),
) {
    let at = check.req.referenced;
    let id = check.req.value.as_str();
    match levels.get(id) {
        None => error(
            at,
            format!("unknown requirement {id:?} (not in {CATALOGUE_FILE})"),
        ),
        Some(level) => {
            if let Some(severity) = &check.severity
                && severity.value > *level
            {
                error(
                    severity.referenced,
                    format!(
                        "requirement {id} is a `should` (its source is inferred or open), so its checks cannot be `must`"
                    ),
                );
            }
        }
    }
    let subjects = [
        check.status.is_some(),
        check.header.is_some(),
        check.path.is_some(),
        check.body.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if subjects != 1 {
        error(
            at,
            format!(
                "a check needs exactly one subject (status, header, path or body); this one has {subjects}"
            ),
        );
    }
    let predicates = check.predicates().count();
    if (check.header.is_some() || check.path.is_some()) && predicates == 0 {
        error(
            at,
            "a header or path check needs a predicate: equals, not_equals, one_of, type, matches, exists or length"
                .to_owned(),
        );
    }
    if (check.status.is_some() || check.body.is_some()) && predicates > 0 {
        error(
            at,
            "status and body checks take no predicate (write `status: [400, 401]` for one of)"
                .to_owned(),
        );
    }
    if let Some(path) = &check.path
        && let Err(e) = serde_json_path::JsonPath::parse(path)
    {
        error(at, format!("invalid JSONPath {path:?}: {e}"));
    }
    if let Some(pattern) = &check.matches
        && let Err(e) = regex::Regex::new(pattern)
    {
        let detail = e.to_string();
        let detail = detail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        error(
            at,
            format!("invalid regular expression {pattern:?}: {detail}"),
        );
    }
}

/// Expands matrix steps into one step per combination, with `matrix` values kept in a
/// one-entry-per-key form the engine exposes as `matrix.<key>`.
fn expand(mut scenario: Scenario) -> Scenario {
    let expand_steps = |steps: Vec<Step>| -> Vec<Step> {
        steps
            .into_iter()
            .flat_map(|step| {
                if step.matrix.is_empty() {
                    return vec![step];
                }
                let mut combos: Vec<indexmap::IndexMap<String, serde_json::Value>> =
                    vec![Default::default()];
                for (key, values) in &step.matrix {
                    combos = combos
                        .into_iter()
                        .flat_map(|combo| {
                            values.iter().map(move |v| {
                                let mut c = combo.clone();
                                c.insert(key.clone(), v.clone());
                                c
                            })
                        })
                        .collect();
                }
                combos
                    .into_iter()
                    .map(|combo| {
                        let mut s = step.clone();
                        s.matrix = combo.into_iter().map(|(k, v)| (k, vec![v])).collect();
                        s
                    })
                    .collect()
            })
            .collect()
    };
    scenario.setup = expand_steps(std::mem::take(&mut scenario.setup));
    scenario.steps = expand_steps(std::mem::take(&mut scenario.steps));
    scenario.teardown = expand_steps(std::mem::take(&mut scenario.teardown));
    scenario
}

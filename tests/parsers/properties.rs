//! Property tests of the harness's parsers on malformed input: mutated copies of every
//! scenario in `scenarios/`, arbitrary and template-like strings through the template
//! engine, mutated target profiles. Nothing panics; every rejection is an error with a
//! message and a location inside the input. A few cases go through the built binary.
//!
//! The seed is fixed (set `PROPTEST_RNG_SEED` to explore others) and failures are not
//! persisted, so CI runs are reproducible.

use crate::support::{BIN, tempdir};
use mfa_conform::engine::template::Templates;
use mfa_conform::scenario::Catalogue;
use mfa_conform::scenario::load::{
    LoadError, Suite, load_catalogue, load_scenario, normalize_line_breaks,
};
use mfa_conform::target::{Target, parse_duration};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn config(cases: u32) -> Config {
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x6d66_615f_636f_6e66);
    }
    config
}

fn scenarios_dir() -> PathBuf {
    Path::new(ROOT).join("scenarios")
}

fn catalogue() -> &'static Catalogue {
    static CELL: OnceLock<Catalogue> = OnceLock::new();
    CELL.get_or_init(|| {
        let path = scenarios_dir().join("requirements.yaml");
        load_catalogue(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
    })
}

/// `(file name, text)` of every scenario in `scenarios/`, by name.
fn scenario_files() -> &'static [(String, String)] {
    static CELL: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut files: Vec<(String, String)> = std::fs::read_dir(scenarios_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml")
                    && p.file_name().is_some_and(|n| n != "requirements.yaml")
            })
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        assert!(files.len() >= 10, "scenarios/ holds {} files", files.len());
        files
    })
}

/// A rejection of a file called `name` with `text`: a message, a line and column inside the
/// text, and a display that starts with `name:line:column: `.
fn assert_located(error: &LoadError, name: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!error.message.trim().is_empty(), "empty message: {error:?}");
    // YAML counts a lone CR as a line break too.
    let lines = normalize_line_breaks(text).lines().count() as u64 + 1;
    prop_assert!(
        (1..=lines).contains(&error.line) && error.column >= 1,
        "location {}:{} outside the input ({lines} lines): {error}\n---\n{text}",
        error.line,
        error.column
    );
    let prefix = format!("{name}:{}:{}: ", error.line, error.column);
    prop_assert!(error.to_string().starts_with(&prefix), "{error}");
    Ok(())
}

/// One edit of a YAML text. Positions are fractions of the text (`0..1_000_000`) so one
/// strategy serves files of any length.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the character at a position.
    ReplaceChar(u32, char),
    /// Insert text at a position.
    Insert(u32, String),
    DeleteLine(u32),
    DuplicateLine(u32),
    /// Indent a line more (positive) or less.
    Reindent(u32, i8),
    /// Rename the key of the n-th `key:` line.
    RenameKey(u32, String),
    /// Replace the value of the n-th `key: value` line.
    ReplaceValue(u32, String),
    /// Cut the text at a position.
    Truncate(u32),
}

fn yaml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            ':', '-', '{', '}', '[', ']', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
            ',', '?', ' ', '\t', '\n', '\r', '\\', '$', '.', '0', 'x', '\u{0}', '\u{feff}', 'é',
            '😀',
        ]),
        any::<char>(),
    ]
}

fn yaml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "[1, 2]",
            "{a: 1}",
            "{}",
            "[]",
            "42",
            "-1",
            "18446744073709551616",
            "1.5e400",
            ".nan",
            "true",
            "null",
            "~",
            "\"\"",
            "'unterminated",
            "\"unterminated",
            "*alias",
            "&anchor x",
            "!!binary aGk=",
            "|\n  block",
            "{{ not_a_map }}",
            "[[[[[[[[[[[[[[[[",
            "$.",
            "(?P<",
        ])
        .prop_map(str::to_owned),
        "[a-z_$.{}\\[\\]()*+?^ ]{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = 0u32..1_000_000;
    prop_oneof![
        (pos.clone(), yaml_char()).prop_map(|(p, c)| Mutation::ReplaceChar(p, c)),
        (pos.clone(), prop::collection::vec(yaml_char(), 1..6))
            .prop_map(|(p, cs)| Mutation::Insert(p, cs.into_iter().collect())),
        pos.clone().prop_map(Mutation::DeleteLine),
        pos.clone().prop_map(Mutation::DuplicateLine),
        (pos.clone(), -4i8..=4).prop_map(|(p, d)| Mutation::Reindent(p, d)),
        (pos.clone(), "[a-z_]{1,12}").prop_map(|(p, k)| Mutation::RenameKey(p, k)),
        (pos.clone(), yaml_value()).prop_map(|(p, v)| Mutation::ReplaceValue(p, v)),
        pos.prop_map(Mutation::Truncate),
    ]
}

fn at(fraction: u32, len: usize) -> usize {
    (fraction as u64 * len as u64 / 1_000_000) as usize
}

fn char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Lines with a `key:` (after indentation and an optional `- `).
fn key_lines(lines: &[String]) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let body_start = line.len() - body.len();
        let (key_start, rest) = match body.strip_prefix("- ") {
            Some(rest) => (body_start + 2, rest),
            None => (body_start, body),
        };
        let key_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if key_len > 0 && rest[key_len..].starts_with(':') {
            found.push((i, key_start, key_start + key_len));
        }
    }
    found
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let join = |lines: Vec<String>| lines.join("\n") + "\n";
    match mutation {
        Mutation::ReplaceChar(p, c) => {
            let i = char_boundary(text, at(*p, text.len()));
            let mut out = text.to_owned();
            if let Some(old) = text[i..].chars().next() {
                out.replace_range(i..i + old.len_utf8(), &c.to_string());
            }
            out
        }
        Mutation::Insert(p, s) => {
            let i = char_boundary(text, at(*p, text.len()));
            let mut out = text.to_owned();
            out.insert_str(i, s);
            out
        }
        Mutation::DeleteLine(p) if !lines.is_empty() => {
            lines.remove(at(*p, lines.len()));
            join(lines)
        }
        Mutation::DuplicateLine(p) if !lines.is_empty() => {
            let i = at(*p, lines.len());
            lines.insert(i, lines[i].clone());
            join(lines)
        }
        Mutation::Reindent(p, d) if !lines.is_empty() => {
            let i = at(*p, lines.len());
            let line = &lines[i];
            lines[i] = if *d >= 0 {
                " ".repeat(*d as usize) + line
            } else {
                let strip = line
                    .bytes()
                    .take(d.unsigned_abs() as usize)
                    .take_while(|b| *b == b' ')
                    .count();
                line[strip..].to_owned()
            };
            join(lines)
        }
        Mutation::RenameKey(p, key) => {
            let keys = key_lines(&lines);
            if keys.is_empty() {
                return text.to_owned();
            }
            let (i, start, end) = keys[at(*p, keys.len())];
            lines[i].replace_range(start..end, key);
            join(lines)
        }
        Mutation::ReplaceValue(p, value) => {
            let keys = key_lines(&lines);
            if keys.is_empty() {
                return text.to_owned();
            }
            let (i, _, end) = keys[at(*p, keys.len())];
            lines[i].replace_range(end + 1.., &format!(" {value}"));
            join(lines)
        }
        Mutation::Truncate(p) => text[..char_boundary(text, at(*p, text.len()))].to_owned(),
        _ => text.to_owned(),
    }
}

#[test]
fn every_committed_scenario_loads_on_its_own_as_in_the_suite() {
    let suite = Suite::load(&scenarios_dir()).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let files = scenario_files();
    assert_eq!(suite.scenarios.len(), files.len());
    for ((name, text), in_suite) in files.iter().zip(&suite.scenarios) {
        let alone = load_scenario(Path::new(name), text, catalogue())
            .unwrap_or_else(|e| panic!("{name}: {}", e[0]));
        assert_eq!(alone.name, in_suite.name);
        assert_eq!(
            alone.scenario.steps.len(),
            in_suite.scenario.steps.len(),
            "{name}: matrix expansion differs"
        );
    }
}

/// A matrix whose combinations would exhaust memory (aliases make it a few lines) is
/// refused at its step instead of being expanded.
#[test]
fn an_exploding_matrix_is_refused_at_its_step() {
    let text = "steps:
  - name: many
    matrix: {a: &v [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: *v, c: *v, d: *v, e: *v, f: *v, g: *v, h: *v, i: *v, j: *v}
    request: {method: GET, path: /}
    checks:
      - {req: LOGIN-MFA-REQUIRED, status: 403}
";
    let errors = load_scenario(Path::new("m.yaml"), text, catalogue()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.line == 2 && e.message.contains("at most 1000")),
        "{errors:?}"
    );
    let many_steps = format!(
        "steps:\n  - &s\n    name: s\n    matrix: {{a: [{}]}}\n    request: {{method: GET, path: /}}\n{}",
        vec!["1"; 1000].join(", "),
        "  - *s\n".repeat(10)
    );
    let errors = load_scenario(Path::new("m.yaml"), &many_steps, catalogue()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.line == 1 && e.message.contains("more than 10000 steps")),
        "{errors:?}"
    );
}

/// Lone CRs are YAML line breaks: the error's line, its snippet and the text agree
/// (found by the `scenario` fuzz target: the snippet counted only LFs).
#[test]
fn lone_carriage_returns_count_as_line_breaks() {
    for newline in ["\r", "\r\n", "\n"] {
        let text = ["steps:", "  - name: a", "    reqest: {}", ""].join(newline);
        let errors = load_scenario(Path::new("cr.yaml"), &text, catalogue()).unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (3, 5), "{}", errors[0]);
        assert!(
            errors[0].snippet.contains("3 │     reqest"),
            "{newline:?}: {}",
            errors[0].snippet
        );
        let profile = ["base_url: http://x", "client: a", ""].join(newline);
        let error = Target::parse(Path::new("p.yaml"), &profile, env).unwrap_err();
        assert_eq!(error.line, 2, "{error}");
        let unset = ["base_url: http://x", "realm: ${NOPE}", ""].join(newline);
        let error = Target::parse(Path::new("p.yaml"), &unset, env).unwrap_err();
        assert_eq!((error.line, error.column), (2, 8), "{error}");
    }
}

/// A mistake about the whole file (no steps) points at its start, not at line 0.
#[test]
fn whole_file_errors_point_at_line_one() {
    let errors = load_scenario(Path::new("e.yaml"), "steps: []\n", catalogue()).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (1, 1), "{}", errors[0]);
    assert!(
        errors[0]
            .to_string()
            .starts_with("e.yaml:1:1: a scenario needs")
    );
}

proptest! {
    #![proptest_config(config(256))]

    /// One to three edits of a committed scenario: it loads or is refused with located errors.
    #[test]
    fn mutated_scenarios_load_or_fail_with_a_location(
        index in 0usize..1000,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let files = scenario_files();
        let (name, original) = &files[index % files.len()];
        let mut text = original.clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        match load_scenario(Path::new(name), &text, catalogue()) {
            Ok(scenario) => prop_assert!(!scenario.scenario.steps.is_empty()),
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in &errors {
                    assert_located(error, name, &text)?;
                }
            }
        }
    }
}

/// Top-level keys of the scenario format; anything else at the top level is refused.
const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "tags",
    "requires",
    "user",
    "vars",
    "setup",
    "steps",
    "teardown",
    "snapshot",
    "snapshot_redact",
    "snapshot_headers",
];

proptest! {
    #![proptest_config(config(64))]

    /// Renaming a top-level key to an unknown one is refused at that key's line.
    #[test]
    fn an_unknown_top_level_key_is_refused_at_its_line(
        index in 0usize..1000,
        which in 0usize..1000,
        key in "[a-z][a-z_]{0,10}",
    ) {
        prop_assume!(!TOP_LEVEL_KEYS.contains(&key.as_str()));
        let files = scenario_files();
        let (name, original) = &files[index % files.len()];
        let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
        let top: Vec<usize> = key_lines(&lines)
            .into_iter()
            .filter(|(i, start, _)| *start == 0 && !lines[*i].starts_with('-'))
            .map(|(i, _, _)| i)
            .collect();
        let line = top[which % top.len()];
        let colon = lines[line].find(':').unwrap();
        lines[line].replace_range(..colon, &key);
        let text = lines.join("\n") + "\n";
        let errors = load_scenario(Path::new(name), &text, catalogue())
            .expect_err("an unknown key is refused");
        prop_assert_eq!(errors.len(), 1);
        prop_assert_eq!(errors[0].line, line as u64 + 1, "{}", errors[0]);
        prop_assert!(errors[0].message.contains(&key), "{}", errors[0]);
        assert_located(&errors[0], name, &text)?;
    }
}

fn templates() -> &'static Templates {
    static CELL: OnceLock<Templates> = OnceLock::new();
    CELL.get_or_init(|| Templates::offline(Duration::from_millis(10)))
}

fn context() -> Value {
    json!({
        "target": {"base_url": "http://127.0.0.1:9", "client_id": "cid", "client_secret": "cs"},
        "user": {"username": "u1@example.com", "password": "p4ss!"},
        "vars": {"phone": "+15550100001", "n": 3, "list": ["otp", "oob"], "nothing": null},
        "matrix": {"param": "username"},
        "mfa_token": "eyJ.abc.def",
        "otp_secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    })
}

/// Strings made of template syntax: delimiters, names from the context, built-ins,
/// operators, literals.
fn template_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            " ",
            ".",
            "|",
            "(",
            ")",
            "[",
            "]",
            ",",
            "'",
            "\"",
            "+",
            "-",
            "*",
            "/",
            "~",
            "==",
            "not ",
            " and ",
            " in ",
            "if ",
            "else",
            "endif",
            "for x in ",
            "endfor",
            "set a = ",
            "target",
            "user",
            "vars",
            "list",
            "matrix",
            "param",
            "mfa_token",
            "otp_secret",
            "nothing",
            "missing",
            "client_id",
            "totp",
            "latest_code",
            "unique_phone",
            "unique_email",
            "random_string",
            "now",
            "urlencode",
            "upper",
            "length",
            "tojson",
            "0",
            "1",
            "-30",
            "99999999999999999999",
            "x",
            "\n",
            "\u{0}",
            "é",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,4}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config(384))]

    /// Template-like strings: `render` and `render_json` never panic; errors say something.
    #[test]
    fn template_like_strings_render_or_fail_with_a_message(text in template_like()) {
        let t = templates();
        let ctx = context();
        if let Err(message) = t.render(&text, &ctx) {
            prop_assert!(!message.to_string().trim().is_empty());
        }
        if let Err(message) = t.render_json(&json!({"k": text, "l": [text]}), &ctx) {
            prop_assert!(!message.to_string().trim().is_empty());
        }
    }

    /// Arbitrary strings; without `{{` or `{%` a string renders to itself.
    #[test]
    fn arbitrary_strings_never_panic_and_plain_text_is_kept(text in any::<String>()) {
        let t = templates();
        let ctx = context();
        let rendered = t.render(&text, &ctx);
        if !text.contains("{{") && !text.contains("{%") {
            prop_assert_eq!(rendered.as_deref(), Ok(text.as_str()));
        } else if let Err(message) = rendered {
            prop_assert!(!message.to_string().trim().is_empty());
        }
        if let Err(message) = t.render_json(&Value::String(text.clone()), &ctx) {
            prop_assert!(!message.to_string().trim().is_empty());
        }
    }

    /// A plain `{{ vars.x }}` (looked up without the engine) and the same value through the
    /// engine (`{{ vars.x | string }}`) agree, whatever the string.
    #[test]
    fn plain_lookups_agree_with_the_engine(value in any::<String>(), spaces in 0usize..3) {
        let t = templates();
        let ctx = json!({"vars": {"x": value}});
        let pad = " ".repeat(spaces);
        let plain = t.render(&format!("{{{{{pad}vars.x{pad}}}}}"), &ctx);
        prop_assert_eq!(plain.as_deref(), Ok(value.as_str()));
        let engine = t.render("{{ vars.x | string }}", &ctx);
        prop_assert_eq!(engine.as_deref(), Ok(value.as_str()));
        prop_assert_eq!(
            t.render_json(&json!("{{ vars.x }}"), &ctx),
            Ok(Value::String(value.clone()))
        );
    }
}

const PROFILE: &str = "base_url: https://tenant.example.com
client_id: abc
client_secret: ${SECRET}
realm: Username-Password-Authentication
audience: https://tenant.example.com/mfa/
capabilities: [otp, sms, voice, email, recovery-code, clock]
control:
  users: https://tenant.example.com/__control/users
  messages: {command: [./messages, '{to}']}
  clock: https://tenant.example.com/__control/clock
tls: {ca_cert: path/to/ca.pem, insecure: false}
timeout: 10s
";

fn env(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "s3cr3t".to_owned())
}

proptest! {
    #![proptest_config(config(256))]

    /// Edits of a full profile: it loads or is refused with a located error.
    #[test]
    fn mutated_profiles_load_or_fail_with_a_location(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = PROFILE.to_owned();
        for m in &mutations {
            text = apply(&text, m);
        }
        match Target::parse(Path::new("vendor.yaml"), &text, env) {
            Ok(target) => prop_assert_eq!(target.name, "vendor"),
            Err(error) => assert_located(&error, "vendor.yaml", &text)?,
        }
    }

    /// Arbitrary text as a profile never panics.
    #[test]
    fn arbitrary_profiles_never_panic(text in any::<String>()) {
        if let Err(error) = Target::parse(Path::new("vendor.yaml"), &text, env) {
            assert_located(&error, "vendor.yaml", &text)?;
        }
    }

    /// An unset `${VAR}` is refused at its own line and column.
    #[test]
    fn an_unset_variable_is_refused_where_it_is(
        line in 0usize..12,
        name in "[A-Z_][A-Z0-9_]{0,8}",
    ) {
        prop_assume!(name != "SECRET");
        let mut lines: Vec<String> = PROFILE.lines().map(str::to_owned).collect();
        let column = lines[line].len() + 2;
        lines[line].push_str(&format!(" ${{{name}}}"));
        let text = lines.join("\n") + "\n";
        let error = Target::parse(Path::new("vendor.yaml"), &text, env)
            .expect_err("an unset variable is refused");
        prop_assert_eq!((error.line, error.column), (line as u64 + 1, column as u64));
        prop_assert!(error.message.contains(&name), "{}", error);
    }

    /// Duration strings never panic; whole seconds and milliseconds read back exactly.
    #[test]
    fn durations_parse_or_are_refused(text in "[0-9a-z .:-]{0,12}", n in 0u64..100_000) {
        let _ = parse_duration(&text);
        prop_assert_eq!(parse_duration(&format!("{n}s")), Some(Duration::from_secs(n)));
        prop_assert_eq!(parse_duration(&format!("{n}ms")), Some(Duration::from_millis(n)));
    }
}

proptest! {
    #![proptest_config(config(6))]

    /// `mfa-conform run` on a copy of `scenarios/` with one file broken: exit 2, and the
    /// message names that file at the line the library reports.
    #[test]
    fn run_refuses_a_suite_with_a_broken_file(
        index in 0usize..1000,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let files = scenario_files();
        let (name, original) = &files[index % files.len()];
        let mut text = original.clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let errors = load_scenario(Path::new(name), &text, catalogue());
        prop_assume!(errors.is_err());
        let first = &errors.unwrap_err()[0];

        let dir = tempdir("run");
        let suite = dir.join("scenarios");
        std::fs::create_dir_all(&suite).unwrap();
        for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, suite.join(path.file_name().unwrap())).unwrap();
            }
        }
        std::fs::write(suite.join(name), &text).unwrap();
        let output = std::process::Command::new(BIN)
            .arg("run")
            .arg("--scenarios")
            .arg(&suite)
            .arg("--report-dir")
            .arg(dir.join("reports"))
            .args(["--name", "no-scenario-has-this-name", "--quiet"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        prop_assert_eq!(output.status.code(), Some(2), "{}", stderr);
        let location = format!(
            "{}:{}:{}: ",
            suite.join(name).display(),
            first.line,
            first.column
        );
        prop_assert!(stderr.contains(&location), "expected {location} in:\n{stderr}");
        for (other, _) in files.iter().filter(|(other, _)| other != name) {
            let other = suite.join(other).display().to_string();
            prop_assert!(!stderr.contains(&other), "{other} named in:\n{stderr}");
        }
    }
}

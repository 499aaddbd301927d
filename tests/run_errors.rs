//! Scenario-format and profile mistakes: each gives exit 2 and a message that names file,
//! line and column, with the spot underlined. The messages are pinned with insta.

use std::path::Path;
use std::process::Command;

const CATALOGUE: &str = r#"version: "test"
requirements:
  - {id: R-MUST, area: login, text: a must, source: test, level: must}
  - {id: R-SHOULD, area: login, text: a should, source: test, level: should}
"#;

const GOOD_STEP: &str = r#"steps:
  - name: ping
    request: {method: GET, path: /.well-known/jwks.json}
    checks:
      - {req: R-MUST, status: 200}
"#;

/// Runs `mfa-conform run` on a suite holding `scenario.yaml` with `text`.
fn run_with(scenario: &str) -> (i32, String) {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
    run_in(&dir, &[])
}

fn run_in(dir: &Path, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-conform"))
        .arg("run")
        .arg("--scenarios")
        .arg(dir)
        .arg("--report-dir")
        .arg(dir.join("reports"))
        .args(extra)
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&dir.display().to_string(), "<suite>");
    (output.status.code().unwrap_or(-1), stderr)
}

fn tempdir() -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("mfa-conform-errors-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts exit 2 and a `<suite>/scenario.yaml:LINE:COL:` location, and pins the message.
macro_rules! bad_scenario {
    ($name:ident, $yaml:expr, $line:expr) => {
        #[test]
        fn $name() {
            let (code, stderr) = run_with($yaml);
            assert_eq!(code, 2, "{stderr}");
            let location = format!("<suite>/scenario.yaml:{}:", $line);
            assert!(
                stderr.contains(&location),
                "expected {location} in:\n{stderr}"
            );
            insta::assert_snapshot!(stderr);
        }
    };
}

bad_scenario!(yaml_syntax_error, "steps:\n  - name: a\n   request: {\n", 3);

bad_scenario!(
    unknown_step_key,
    "steps:\n  - name: ping\n    reqest: {method: GET, path: /}\n",
    3
);

bad_scenario!(
    unknown_check_key,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, path: $.a, equal: 1}\n",
    5
);

bad_scenario!(
    unknown_requirement,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-NOPE, status: 200}\n",
    5
);

bad_scenario!(
    must_on_a_should_requirement,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-SHOULD, severity: must, status: 200}\n",
    5
);

bad_scenario!(
    check_with_two_subjects,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, status: 200, path: $.a, exists: true}\n",
    5
);

bad_scenario!(
    path_check_without_predicate,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, path: $.a}\n",
    5
);

bad_scenario!(
    invalid_regex,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, path: $.a, matches: '(unclosed'}\n",
    5
);

bad_scenario!(
    invalid_jsonpath,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, path: '$[?', exists: true}\n",
    5
);

bad_scenario!(
    step_with_two_actions,
    "requires: [clock]\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n    advance_clock: 30\n",
    3
);

bad_scenario!(
    clock_step_without_capability,
    "steps:\n  - name: later\n    advance_clock: 30\n",
    2
);

bad_scenario!(
    wrong_type_for_status,
    "steps:\n  - name: ping\n    request: {method: GET, path: /}\n    checks:\n      - {req: R-MUST, status: two hundred}\n",
    5
);

bad_scenario!(
    unknown_capability,
    "requires: [push]\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n",
    1
);

bad_scenario!(
    unknown_method,
    "steps:\n  - name: ping\n    request: {method: FETCH, path: /}\n",
    3
);

bad_scenario!(missing_steps, "description: nothing to do\n", 1);

#[test]
fn every_bad_file_is_reported_in_one_run() {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.join("a.yaml"), "steps:\n  - name: x\n    bogus: 1\n").unwrap();
    std::fs::write(dir.join("b.yaml"), "stepz: []\n").unwrap();
    std::fs::write(dir.join("c.yaml"), GOOD_STEP).unwrap();
    let (code, stderr) = run_in(&dir, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("<suite>/a.yaml:3:"), "{stderr}");
    assert!(stderr.contains("<suite>/b.yaml:1:"), "{stderr}");
    assert!(!stderr.contains("c.yaml"), "{stderr}");
}

#[test]
fn profile_mistakes_are_located() {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.join("ok.yaml"), GOOD_STEP).unwrap();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let profile = dir.join("profiles/profile.yaml");
    std::fs::write(&profile, "base_url: http://127.0.0.1:9\nclient_sekret: x\n").unwrap();
    let (code, stderr) = run_in(&dir, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("<suite>/profiles/profile.yaml:2:"),
        "{stderr}"
    );
    assert!(stderr.contains("client_sekret"), "{stderr}");

    std::fs::write(
        &profile,
        "base_url: http://127.0.0.1:9\nclient_secret: ${MFA_CONFORM_TEST_UNSET_VARIABLE}\n",
    )
    .unwrap();
    let (code, stderr) = run_in(&dir, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("<suite>/profiles/profile.yaml:2:16: environment variable MFA_CONFORM_TEST_UNSET_VARIABLE is not set"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_target_exits_3() {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.join("ok.yaml"), format!("user: false\n{GOOD_STEP}")).unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let profile = dir.join("profiles/profile.yaml");
    std::fs::write(&profile, "base_url: http://127.0.0.1:9\ntimeout: 2s\n").unwrap();
    let (code, stderr) = run_in(&dir, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    let report = std::fs::read_to_string(dir.join("reports/report.json")).unwrap();
    assert!(report.contains("\"kind\": \"transport\""), "{report}");
}

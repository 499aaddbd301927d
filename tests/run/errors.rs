//! Scenario-format and profile mistakes: each gives exit 2 and a message that names file,
//! line and column, with the spot underlined. The messages are pinned with insta.

use crate::support::{fixture, fixture_text, run_suite_in, tempdir};

macro_rules! bad_scenario {
    ($name:ident, $yaml:expr, $line:expr) => {
        crate::bad_scenario!(
            "bad-input/requirements.yaml",
            "run_errors__",
            $name,
            $yaml,
            $line
        );
    };
}

/// A suite directory with the catalogue of R-MUST and R-SHOULD.
fn suite_dir(tag: &str) -> crate::support::TempDir {
    let dir = tempdir(tag);
    std::fs::copy(
        fixture("bad-input/requirements.yaml"),
        dir.join("requirements.yaml"),
    )
    .unwrap();
    dir
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
    let dir = suite_dir("bad-files");
    std::fs::write(dir.join("a.yaml"), "steps:\n  - name: x\n    bogus: 1\n").unwrap();
    std::fs::write(dir.join("b.yaml"), "stepz: []\n").unwrap();
    std::fs::copy(fixture("bad-input/ping.yaml"), dir.join("c.yaml")).unwrap();
    let (code, stderr) = run_suite_in(&dir, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("<suite>/a.yaml:3:"), "{stderr}");
    assert!(stderr.contains("<suite>/b.yaml:1:"), "{stderr}");
    assert!(!stderr.contains("c.yaml"), "{stderr}");
}

#[test]
fn profile_mistakes_are_located() {
    let dir = suite_dir("profile-mistakes");
    std::fs::copy(fixture("bad-input/ping.yaml"), dir.join("ok.yaml")).unwrap();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let profile = dir.join("profiles/profile.yaml");
    std::fs::write(&profile, "base_url: http://127.0.0.1:9\nclient_sekret: x\n").unwrap();
    let (code, stderr) = run_suite_in(&dir, &["--profile", profile.to_str().unwrap()]);
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
    let (code, stderr) = run_suite_in(&dir, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("<suite>/profiles/profile.yaml:2:16: environment variable MFA_CONFORM_TEST_UNSET_VARIABLE is not set"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_target_exits_3() {
    let dir = suite_dir("unreachable");
    std::fs::write(
        dir.join("ok.yaml"),
        format!("user: false\n{}", fixture_text("bad-input/ping.yaml")),
    )
    .unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let profile = dir.join("profiles/profile.yaml");
    std::fs::write(&profile, "base_url: http://127.0.0.1:9\ntimeout: 2s\n").unwrap();
    let (code, stderr) = run_suite_in(&dir, &["--profile", profile.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    // Found by the preflight request, before any scenario: one message, no report.
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert!(!dir.join("reports/report.json").exists());
}

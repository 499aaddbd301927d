//! Outside the repository, as a user meets the tool: the binary copied alone into an
//! empty directory, a user's own scenario directory, bad input refused up front with its
//! location, and runs that never overwrite each other's reports.

use crate::support::{BIN, ServeProcess, describe, read_json, tempdir};
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary copied into `dir` (alone, as an installed binary would be), in `dir`.
fn installed(dir: &Path, args: &[&str]) -> Output {
    let bin = dir.join("mfa-conform");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
    }
    Command::new(&bin)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_binary_alone_carries_its_suite() {
    let dir = tempdir("installed");
    let output = installed(&dir, &["run", "-q"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stdout(&output).contains("47 passed, 0 failed"),
        "{}",
        describe(&output)
    );
    // Compared with the embedded reference snapshots, with no snapshots/ directory here.
    assert!(
        stdout(&output).contains("snapshots (reference, compare): 263 match, 0 differ"),
        "{}",
        describe(&output)
    );
    assert!(
        !dir.join("snapshots").exists(),
        "nothing is written for the comparison"
    );
    // Against a profile, shape comparison with the reference, from the binary alone.
    let server = ServeProcess::start(&[]);
    let profile = crate::support::control_profile(
        &dir,
        "vendor",
        &server.base_url,
        "[otp, sms, voice, email, recovery-code, clock]",
    );
    let shape = installed(
        &dir,
        &[
            "run",
            "-q",
            "--profile",
            &profile.display().to_string(),
            "--snapshot-compare",
            "shape",
            "--snapshot-profile",
            "reference",
        ],
    );
    assert_eq!(shape.status.code(), Some(0), "{}", describe(&shape));
    assert!(stdout(&shape).contains("0 differ"), "{}", describe(&shape));
    // Exported, the suite is the same suite, and runs from the directory.
    let export = installed(&dir, &["scenarios", "export", "suite"]);
    assert_eq!(export.status.code(), Some(0), "{}", describe(&export));
    assert!(dir.join("suite/requirements.yaml").is_file());
    assert!(dir.join("suite/snapshots/reference").is_dir());
    let again = installed(&dir, &["scenarios", "export", "suite"]);
    assert_eq!(again.status.code(), Some(2), "never overwrites unasked");
    assert!(stderr(&again).contains("--force"), "{}", describe(&again));
    let from_copy = installed(
        &dir,
        &["run", "-q", "--scenarios", "suite", "--json", "r.json"],
    );
    assert_eq!(from_copy.status.code(), Some(0), "{}", describe(&from_copy));
    assert_eq!(read_json(&dir.join("r.json"))["summary"]["passed"], 47);
}

#[test]
fn a_users_own_scenario_uses_the_built_in_catalogue() {
    let dir = tempdir("own-scenario");
    let mine = dir.join("checks/auth");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("list-needs-a-token.yaml"),
        "description: The list refuses a request without a token.\nsteps:\n  - name: list without a token\n    request: {method: GET, path: /mfa/authenticators}\n    checks:\n      - {req: ERR-BEARER-MISSING, status: 401}\n      - {req: ACME-JSON-ERRORS, path: $.error, exists: true}\n",
    )
    .unwrap();
    // Their own requirement, in an area of its own, beside a profile that is not a scenario.
    std::fs::write(
        dir.join("checks/acme.yaml"),
        "requirements:\n  - id: ACME-JSON-ERRORS\n    area: errors\n    text: Every error is a JSON object with an error code.\n    source: ACME API guide, errors chapter\n    level: must\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("checks/staging.yaml"),
        "base_url: https://staging.example.com\n",
    )
    .unwrap();
    let output = installed(&dir, &["run", "--scenarios", "checks", "--json", "r.json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = read_json(&dir.join("r.json"));
    assert_eq!(report["summary"]["scenarios"], 1, "{report:#}");
    assert_eq!(report["summary"]["passed"], 1);
    // Named by an absolute path, JUnit still shows the file relative to the working directory.
    let absolute = dir.join("checks").display().to_string();
    let output = installed(
        &dir,
        &["run", "--scenarios", &absolute, "--report-dir", "out"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let junit = std::fs::read_to_string(dir.join("out/junit.xml")).unwrap();
    assert!(
        junit.contains(r#"classname="checks/auth/list-needs-a-token.yaml""#),
        "{junit}"
    );
    // A single file runs too.
    let single = installed(
        &dir,
        &[
            "run",
            "--scenarios",
            "checks/auth/list-needs-a-token.yaml",
            "--scenarios",
            "checks/acme.yaml",
            "--json",
            "s.json",
        ],
    );
    assert_eq!(single.status.code(), Some(0), "{}", describe(&single));
}

/// Asserts that `args` (run in `dir`) exit 2 with `message` on stderr.
fn refused(dir: &Path, args: &[&str], message: &str) {
    let output = installed(dir, args);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr(&output).contains(message), "{}", describe(&output));
}

#[test]
fn bad_input_is_refused_up_front_with_its_location() {
    let dir = tempdir("bad-input");
    // A capability claimed without the hook it needs.
    std::fs::write(
        dir.join("vendor.yaml"),
        "base_url: http://127.0.0.1:9\nclient_id: a\nclient_secret: b\ncapabilities:\n  - otp\n  - sms\ncontrol:\n  users: http://127.0.0.1:9/users\n",
    )
    .unwrap();
    refused(
        &dir,
        &["run", "--profile", "vendor.yaml"],
        "vendor.yaml:6:5: capability sms needs the control.messages hook",
    );
    // An unknown requirement in the expected failures, with its line.
    std::fs::write(
        dir.join("known.yaml"),
        "- requirement: VERIFY-OTP\n  reason: clock skew on staging\n- requirement: VERIFY-OPT\n  reason: typo\n",
    )
    .unwrap();
    refused(
        &dir,
        &["run", "--expected-failures", "known.yaml"],
        "known.yaml:3:16: unknown requirement \"VERIFY-OPT\"",
    );
    // A bad name glob is one error, not a silent empty selection.
    refused(&dir, &["run", "--name", "otp-["], "--name \"otp-[\"");
    // Nothing was run, so nothing was written.
    assert!(!dir.join("reports").exists());
}

#[test]
fn init_writes_a_profile_that_loads() {
    let dir = tempdir("init");
    let output = installed(&dir, &["init", "--base-url", "http://127.0.0.1:9"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let text = std::fs::read_to_string(dir.join("mfa-conform.yaml")).unwrap();
    assert!(
        text.contains("control:") && text.contains("users:"),
        "{text}"
    );
    let again = installed(&dir, &["init"]);
    assert_eq!(again.status.code(), Some(2), "an existing profile is kept");
}

#[test]
fn runs_in_the_same_second_keep_both_reports() {
    let dir = tempdir("two-runs");
    let first = installed(&dir, &["run", "-q", "--name", "discovery*"]);
    let second = installed(&dir, &["run", "-q", "--name", "discovery*"]);
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let dirs: Vec<_> = std::fs::read_dir(dir.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in dirs {
        assert!(d.join("report.json").is_file(), "{}", d.display());
        let compatibility = std::fs::read_to_string(d.join("compatibility.md")).unwrap();
        assert!(
            compatibility.contains("**Verdict: PASSED**"),
            "{compatibility}"
        );
    }
}

/// The clock scenarios move the target's clock half an hour ahead each run; the harness
/// follows the target's clock, so the same verdict comes every time, and `load` after them
/// has no failed flow.
#[test]
fn a_long_lived_target_gives_the_same_verdict_every_run() {
    let server = ServeProcess::start(&[]);
    let dir = tempdir("long-lived");
    let profile = crate::support::control_profile(
        &dir,
        "staging",
        &server.base_url,
        "[otp, sms, voice, email, recovery-code, clock]",
    );
    let profile = profile.display().to_string();
    for round in 1..=3 {
        let json = format!("round-{round}.json");
        let output = installed(&dir, &["run", "-q", "--profile", &profile, "--json", &json]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "round {round}: {}",
            describe(&output)
        );
        let report = read_json(&dir.join(&json));
        assert_eq!(report["summary"]["passed"], 47, "round {round}");
        assert!(
            report["target"]["clock"]
                .as_str()
                .is_some_and(|c| c.starts_with("the target's clock")),
            "{:#}",
            report["target"]
        );
    }
    let output = installed(
        &dir,
        &[
            "load",
            "--profile",
            &profile,
            "--scenario",
            "otp-login",
            "--rate",
            "10/s",
            "--duration",
            "2s",
            "--report-dir",
            "load",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = read_json(&dir.join("load/load.json"));
    assert!(
        report["flows"]["count"].as_u64().unwrap() >= 15,
        "{report:#}"
    );
    assert_eq!(report["flows"]["failed"], 0, "{report:#}");
}

/// An unreachable target is found by one request before any scenario: one message, exit 3,
/// within seconds.
#[test]
fn an_unreachable_target_is_one_message() {
    let dir = tempdir("unreachable");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let profile =
        crate::support::control_profile(&dir, "down", &format!("http://127.0.0.1:{port}"), "[otp]");
    let started = std::time::Instant::now();
    let output = installed(&dir, &["run", "--profile", &profile.display().to_string()]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let stderr = stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    assert!(
        stdout(&output).is_empty(),
        "no scenario ran: {}",
        describe(&output)
    );
}

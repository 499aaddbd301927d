//! Snapshot settings in a scenario are checked when the suite loads: a bad JSONPath in
//! `snapshot_redact`, an empty placeholder, a wrong entry shape or a bad header name stops
//! the run with exit 2 and a message naming file, line and column (pinned with insta).
//! Bad snapshot options on the command line are exit 2 too.

use std::path::{Path, PathBuf};
use std::process::Command;

const CATALOGUE: &str = r#"version: "test"
requirements:
  - {id: R-MUST, area: login, text: a must, source: test, level: must}
"#;

fn tempdir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "mfa-conform-snapshot-scenario-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_in(dir: &Path, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-conform"))
        .current_dir(dir)
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

fn run_with(scenario: &str) -> (i32, String) {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
    run_in(&dir, &[])
}

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

bad_scenario!(
    invalid_redaction_path,
    "snapshot: true\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n    snapshot_redact:\n      - $.ok\n      - $.[bad\n",
    7
);

bad_scenario!(
    empty_placeholder,
    "snapshot_redact:\n  - {path: $.ticket, placeholder: \"\"}\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n",
    2
);

bad_scenario!(
    redaction_entry_of_the_wrong_shape,
    "snapshot_redact:\n  - {path: $.ticket, keep: true}\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n",
    2
);

bad_scenario!(
    bad_header_name,
    "snapshot_headers: [x-ok, \"bad header\"]\nsteps:\n  - name: ping\n    request: {method: GET, path: /}\n",
    1
);

#[test]
fn bad_snapshot_options_are_bad_input() {
    let dir = tempdir();
    std::fs::write(dir.join("requirements.yaml"), CATALOGUE).unwrap();
    std::fs::write(
        dir.join("scenario.yaml"),
        "user: false\nsteps:\n  - name: ping\n    request: {method: GET, path: /.well-known/jwks.json}\n",
    )
    .unwrap();
    let (code, stderr) = run_in(&dir, &["--snapshot-compare", "shape"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no snapshots of profile \"reference\" in snapshots"),
        "{stderr}"
    );
    let (code, stderr) = run_in(&dir, &["--snapshot-severity", "may"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected must or should"), "{stderr}");
    // Nothing recorded and no `--snapshot`: snapshots are off, the run passes.
    let (code, stderr) = run_in(&dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!dir.join("snapshots").exists());
}

//! Snapshot settings in a scenario are checked when the suite loads: a bad JSONPath in
//! `snapshot_redact`, an empty placeholder, a wrong entry shape or a bad header name stops
//! the run with exit 2 and a message naming file, line and column (pinned with insta).
//! Bad snapshot options on the command line are exit 2 too.

use crate::support::{fixture, run_suite_in, tempdir};

macro_rules! bad_scenario {
    ($name:ident, $yaml:expr, $line:expr) => {
        crate::bad_scenario!(
            "bad-snapshot-settings/requirements.yaml",
            "snapshots_scenario__",
            $name,
            $yaml,
            $line
        );
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
    let dir = tempdir("snapshot-options");
    std::fs::copy(
        fixture("bad-snapshot-settings/requirements.yaml"),
        dir.join("requirements.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("scenario.yaml"),
        "user: false\nsteps:\n  - name: ping\n    request: {method: GET, path: /.well-known/jwks.json}\n",
    )
    .unwrap();
    let (code, stderr) = run_suite_in(&dir, &["--snapshot-compare", "shape"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no snapshots of profile \"reference\" in snapshots"),
        "{stderr}"
    );
    let (code, stderr) = run_suite_in(&dir, &["--snapshot-severity", "may"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected must or should"), "{stderr}");
    // Nothing recorded and no `--snapshot`: snapshots are off, the run passes.
    let (code, stderr) = run_suite_in(&dir, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!dir.join("snapshots").exists());
}

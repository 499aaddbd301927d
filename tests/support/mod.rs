//! What the end-to-end test binaries share: the binary under test, temporary directories
//! that clean up after themselves, the committed fixtures (`tests/fixtures/`), running the
//! binary, reading its reports, and pinned outputs (`tests/snapshots/`).
//!
//! Each binary includes this module as `pub mod support`: it is the binaries' common
//! library, so a helper one binary does not call is not dead code.

pub mod hostile;
pub mod load;
pub mod server;
pub mod snapshots;

use serde_json::Value;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mfa-conform");

/// The repository's own scenario suite and reference snapshots.
pub const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
pub const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// Scenario suites, catalogues and other inputs of the tests.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Where pinned outputs live, whatever module pins them.
pub const PINNED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");

/// A temporary directory of one test, removed when it goes out of scope; it reads as the
/// `Path` it is.
pub struct TempDir(tempfile::TempDir);

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh, empty temporary directory whose name starts with `mfa-conform-test-<tag>-`.
pub fn tempdir(tag: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("mfa-conform-test-{tag}-"))
        .tempdir()
        .expect("temporary directory");
    TempDir(dir)
}

/// A `serve` process of the test's own (an application's CI, a long-lived staging
/// target), killed when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub base_url: String,
}

impl ServeProcess {
    /// `mfa-conform serve --addr 127.0.0.1:0 ARGS...`, once it listens.
    pub fn start(args: &[&std::ffi::OsStr]) -> ServeProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("serve prints its address");
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        ServeProcess { child, base_url }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file below `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(FIXTURES).join(path)
}

/// The text of a file below `tests/fixtures/`.
pub fn fixture_text(path: &str) -> String {
    let path = fixture(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Copies the files `names` of the fixture directory `from` into `to` (created).
pub fn copy_fixtures<S: AsRef<str>>(from: &str, names: impl IntoIterator<Item = S>, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in names {
        let name = name.as_ref();
        std::fs::copy(fixture(&format!("{from}/{name}")), to.join(name))
            .unwrap_or_else(|e| panic!("cannot copy fixture {from}/{name}: {e}"));
    }
}

/// Writes `<dir>/<name>.yaml`, a profile for a target at `base_url` with the reference
/// server's client, the `capabilities` given (a YAML list) and its control API.
pub fn control_profile(dir: &Path, name: &str, base_url: &str, capabilities: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "base_url: {base_url}\nclient_id: mfa-conform-client\nclient_secret: mfa-conform-secret\nrealm: Username-Password-Authentication\ncapabilities: {capabilities}\ncontrol:\n  users: {base_url}/__control/users\n  messages: {base_url}/__control/messages\n  clock: {base_url}/__control/clock\n"
        ),
    )
    .unwrap();
    path
}

/// Runs the binary with `args` to completion on a blocking thread (so the test's own
/// servers keep serving).
pub async fn run_bin(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The exit code, stdout and stderr of a finished run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every file below `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Runs `mfa-conform run` in `dir` on the suite `dir` (reports in `dir/reports`) with
/// `extra` arguments; returns the exit code and stderr, `dir` shown as `<suite>`.
pub fn run_suite_in(dir: &Path, extra: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(BIN)
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

/// Runs `mfa-conform run` on a suite of the catalogue `catalogue` (a fixture) and
/// `scenario.yaml` holding `scenario`; see [`run_suite_in`].
pub fn run_scenario_text(catalogue: &str, scenario: &str) -> (i32, String) {
    let dir = tempdir("suite");
    std::fs::copy(fixture(catalogue), dir.join("requirements.yaml")).unwrap();
    std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
    run_suite_in(&dir, &[])
}

/// A test that a scenario file holding `$yaml`, beside the catalogue fixture `$catalogue`,
/// stops the run with exit 2 and a message located at `<suite>/scenario.yaml:$line:`; the
/// message is pinned as `$prefix$name`.
#[macro_export]
macro_rules! bad_scenario {
    ($catalogue:expr, $prefix:literal, $name:ident, $yaml:expr, $line:expr) => {
        #[test]
        fn $name() {
            let (code, stderr) = $crate::support::run_scenario_text($catalogue, $yaml);
            assert_eq!(code, 2, "{stderr}");
            let location = format!("<suite>/scenario.yaml:{}:", $line);
            assert!(
                stderr.contains(&location),
                "expected {location} in:\n{stderr}"
            );
            $crate::assert_pinned!(concat!($prefix, stringify!($name)), stderr);
        }
    };
}

/// Pins `$value` as `tests/snapshots/<$name>.snap` with insta, so a snapshot keeps its
/// file when its test moves to another module.
#[macro_export]
macro_rules! assert_pinned {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => $crate::support::PINNED,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

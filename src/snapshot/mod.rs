//! Response snapshots: a sink of the result model that records what a target answered at
//! each step (status, selected headers, the normalised body with dynamic values redacted)
//! in `snapshots/<profile>/<scenario>/<step>.snap`, insta's format, and compares later runs
//! with them: exactly, or by shape against another profile's snapshots.
//!
//! A mismatch writes `<step>.snap.new` beside the snapshot and adds a failed check of the
//! synthetic requirement [`REQUIREMENT`] to the step, with a unified diff as its `actual`,
//! so every report shows it. `mfa-conform snapshots review|accept|reject` settles the
//! pending files ([`review`]).

pub mod args;
pub mod diff;
pub mod file;
pub mod json;
pub mod normalize;
pub mod review;

pub use args::{RunSnapshotArgs, SnapshotsArgs};

use crate::engine::result::{
    CheckOrigin, CheckResult, CheckStatus, Phase, ScenarioResult, ScenarioStatus, StepResult,
};
use crate::scenario::model::{Action, Severity, Step};
use crate::scenario::{Suite, SuiteScenario};
use crate::target::Target;
use file::{Meta, SnapFile, new_path, slug};
use normalize::{Dynamic, PathRule};
use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The requirement id of snapshot checks (not in the catalogue; its severity is
/// `--snapshot-severity`).
pub const REQUIREMENT: &str = "snapshot";

/// What a run does with snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Compare with the snapshots; a mismatch or a missing one is written as `.snap.new`
    /// and fails a check.
    Compare,
    /// Write (overwrite) the snapshots; remove those of steps that no longer exist.
    Record,
    /// Write the missing snapshots, compare the others.
    NewOnly,
    /// No snapshots.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Compare => "compare",
            Mode::Record => "record",
            Mode::NewOnly => "new-only",
            Mode::Off => "off",
        }
    }
}

/// How responses are compared with snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Comparison {
    /// The whole normalised text.
    #[default]
    Exact,
    /// Only the structure: status, media type, keys and value types. Fields the reference
    /// lacks and other list lengths are legitimate (reported as information); every item of
    /// a list must have the shape of some item of the reference's.
    Shape,
    /// `shape`, where extra fields and list lengths differ too.
    ShapeStrict,
}

/// Snapshot settings of a run.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Where snapshots live (`snapshots`); `None` turns snapshots off entirely.
    pub dir: Option<PathBuf>,
    /// `None`: `compare` when the profile has snapshots (or for a shape comparison),
    /// `new-only` when `all` is set and it has none, otherwise off.
    pub mode: Option<Mode>,
    /// Snapshot every request step (`run --snapshot`).
    pub all: bool,
    pub compare: Comparison,
    /// Whose snapshots (default: the target profile's file stem; `reference` for the
    /// embedded server).
    pub profile: Option<String>,
    pub severity: Severity,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            dir: None,
            mode: None,
            all: false,
            compare: Comparison::Exact,
            profile: None,
            severity: Severity::Must,
        }
    }
}

/// What a run did with snapshots, for the terminal.
#[derive(Debug, Clone)]
pub struct SnapshotSummary {
    pub profile: String,
    pub root: PathBuf,
    pub mode: Mode,
    pub compare: Comparison,
    /// Snapshots (or shapes) that matched.
    pub matched: usize,
    /// Snapshots (or shapes) that differed.
    pub differed: usize,
    /// Steps without a snapshot in `compare` mode (written as `.snap.new`).
    pub missing: usize,
    /// Steps without a reference snapshot in shape comparison.
    pub no_reference: usize,
    /// Snapshots written (`record`, `new-only`).
    pub written: usize,
    pub unchanged: usize,
    /// `.snap.new` files this run wrote.
    pub pending: Vec<PathBuf>,
    /// Snapshots of steps that no longer exist, removed by `record`.
    pub removed: Vec<PathBuf>,
    /// Snapshots no step of the suite writes (left in place outside `record`).
    pub unreferenced: Vec<PathBuf>,
    pub errors: Vec<String>,
}

impl SnapshotSummary {
    /// Lines for the terminal, after the run's totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.compare == Comparison::Shape {
            let _ = write!(
                out,
                "snapshots (shape): {} step(s) same shape as {}, {} differ, {} without a snapshot of {}",
                self.matched, self.profile, self.differed, self.no_reference, self.profile
            );
        } else {
            let _ = write!(
                out,
                "snapshots ({}, {}): {} match, {} differ",
                self.profile,
                self.mode.as_str(),
                self.matched,
                self.differed
            );
            if self.mode == Mode::Compare {
                let _ = write!(out, ", {} new", self.missing);
            }
            if matches!(self.mode, Mode::Record | Mode::NewOnly) {
                let _ = write!(out, ", {} written", self.written);
            }
            if self.mode == Mode::Record {
                let _ = write!(
                    out,
                    ", {} unchanged, {} removed",
                    self.unchanged,
                    self.removed.len()
                );
            }
        }
        out.push('\n');
        if !self.pending.is_empty() {
            let _ = writeln!(
                out,
                "{} pending snapshot(s) written as .snap.new: review them with `mfa-conform snapshots review` (or `snapshots accept --all` / `reject --all`)",
                self.pending.len()
            );
        }
        for path in &self.removed {
            let _ = writeln!(out, "removed {}", path.display());
        }
        if !self.unreferenced.is_empty() {
            let _ = writeln!(
                out,
                "{} snapshot(s) match no step of the suite (`--snapshots record` removes those of scenarios that ran):",
                self.unreferenced.len()
            );
            for path in &self.unreferenced {
                let _ = writeln!(out, "  {}", path.display());
            }
        }
        for error in &self.errors {
            let _ = writeln!(out, "snapshot error: {error}");
        }
        out
    }
}

/// The snapshot sink of one run: fed each scenario's result as it settles.
pub struct SnapshotSink {
    summary: SnapshotSummary,
    /// Shape comparison counts extra fields and list lengths as differences.
    strict: bool,
    all: bool,
    severity: Severity,
    base_url: String,
    globals: Vec<(String, String)>,
    /// Slugs of every scenario in the suite.
    suite_dirs: HashSet<String>,
}

impl SnapshotSink {
    /// `Ok(None)` when snapshots are off; `Err` for contradictory options.
    pub fn new(
        options: &SnapshotOptions,
        target: &Target,
        suite: &Suite,
    ) -> Result<Option<SnapshotSink>, String> {
        let Some(dir) = &options.dir else {
            return Ok(None);
        };
        let profile = options
            .profile
            .clone()
            .unwrap_or_else(|| target.name.clone());
        if profile.is_empty() || profile == "." || profile == ".." || profile.contains(['/', '\\'])
        {
            return Err(format!(
                "--snapshot-profile {profile:?}: expected a profile name, not a path"
            ));
        }
        let mut owners: std::collections::HashMap<String, &str> = Default::default();
        for scenario in &suite.scenarios {
            if let Some(other) = owners.insert(slug(&scenario.name), &scenario.name) {
                return Err(format!(
                    "scenarios {other:?} and {:?} would share the snapshot directory {:?}; rename one",
                    scenario.name,
                    slug(&scenario.name)
                ));
            }
        }
        let root = dir.join(&profile);
        let exists = root.is_dir();
        let strict = options.compare == Comparison::ShapeStrict;
        let compare = if strict {
            Comparison::Shape
        } else {
            options.compare
        };
        let mode = match options.mode {
            Some(mode) => mode,
            None if exists || compare == Comparison::Shape => Mode::Compare,
            None if options.all && compare == Comparison::Exact => Mode::NewOnly,
            None => Mode::Off,
        };
        if mode == Mode::Off {
            return Ok(None);
        }
        if compare == Comparison::Shape {
            if matches!(mode, Mode::Record | Mode::NewOnly) {
                return Err(format!(
                    "--snapshot-compare shape only reads snapshots; it cannot be combined with --snapshots {}",
                    mode.as_str()
                ));
            }
            if !exists {
                return Err(format!(
                    "--snapshot-compare shape: there are no snapshots of profile {profile:?} in {} (record them with `mfa-conform run --snapshot --snapshots record` against that target)",
                    dir.display()
                ));
            }
        }
        let mut globals = vec![(target.base_url().to_owned(), "[base_url]".to_owned())];
        if let Some(audience) = &target.profile.audience {
            globals.push((audience.clone(), "[audience]".to_owned()));
        }
        if let Some(secret) = &target.profile.client_secret {
            globals.push((secret.clone(), "[client_secret]".to_owned()));
        }
        Ok(Some(SnapshotSink {
            summary: SnapshotSummary {
                profile,
                root,
                mode,
                compare,
                matched: 0,
                differed: 0,
                missing: 0,
                no_reference: 0,
                written: 0,
                unchanged: 0,
                pending: Vec::new(),
                removed: Vec::new(),
                unreferenced: Vec::new(),
                errors: Vec::new(),
            },
            strict,
            all: options.all,
            severity: options.severity,
            base_url: target.base_url().to_owned(),
            globals,
            suite_dirs: suite.scenarios.iter().map(|s| slug(&s.name)).collect(),
        }))
    }

    fn check(
        &self,
        status: CheckStatus,
        check: String,
        actual: String,
        message: String,
    ) -> CheckResult {
        let origin = match self.summary.compare {
            Comparison::Exact => CheckOrigin::Snapshot,
            Comparison::Shape | Comparison::ShapeStrict => CheckOrigin::Shape {
                profile: self.summary.profile.clone(),
            },
        };
        CheckResult {
            requirement: REQUIREMENT.to_owned(),
            origin,
            severity: self.severity,
            status,
            check,
            actual,
            message,
            expected_failure_reason: None,
        }
    }

    /// Snapshots the selected steps of one scenario's result, adding a check per compared
    /// step. Call before the result is settled.
    pub fn apply(&mut self, suite_scenario: &SuiteScenario, result: &mut ScenarioResult) {
        if result.status == ScenarioStatus::Skipped {
            return;
        }
        let scenario = &suite_scenario.scenario;
        let mut dynamic = Dynamic::new(&self.globals);
        for json in result
            .steps
            .iter()
            .filter_map(|s| s.observed.as_ref()?.json.as_ref())
        {
            dynamic.harvest(json);
        }
        let scenario_dir = self.summary.root.join(slug(&result.name));
        let context = StepContext {
            scenario: &result.name,
            source: source_of(&suite_scenario.file),
            rules: scenario
                .snapshot_redact
                .iter()
                .filter_map(|r| PathRule::new(&r.value))
                .collect(),
            headers: scenario
                .snapshot_headers
                .iter()
                .map(|h| h.value.to_ascii_lowercase())
                .collect(),
            dynamic,
        };
        let mut used: HashSet<String> = HashSet::new();
        let mut checks = Vec::new();
        for (index, step) in result.steps.iter().enumerate() {
            let name = unique_name(&mut used, step.phase, &step.name);
            let Some(def) = scenario.phase(step.phase).get(step.position) else {
                continue;
            };
            let path = scenario_dir.join(format!("{name}.snap"));
            let selected = def
                .snapshot
                .or(scenario.snapshot)
                .unwrap_or_else(|| self.all || path.is_file());
            if !selected || !matches!(def.action(), Some(Action::Request(_))) {
                continue;
            }
            if let Some(snap) = self.snapshot_of(&context, def, step)
                && let Some(check) = self.settle_step(&path, snap)
            {
                checks.push((index, check));
            }
        }
        for (index, check) in checks {
            result.steps[index].checks.push(check);
        }
        let complete = scenario.phases().iter().all(|(phase, defs)| {
            result.steps.iter().filter(|s| s.phase == *phase).count() == defs.len()
        });
        if complete && self.summary.compare == Comparison::Exact {
            self.unreferenced_steps(&scenario_dir, &used);
        }
    }

    /// The snapshot of one step's response (`None` if it has none).
    fn snapshot_of(
        &self,
        context: &StepContext<'_>,
        def: &Step,
        step: &StepResult,
    ) -> Option<SnapFile> {
        let (Some(observed), Some(exchange)) = (&step.observed, &step.exchange) else {
            return None;
        };
        let mut rules = context.rules.clone();
        rules.extend(
            def.snapshot_redact
                .iter()
                .filter_map(|r| PathRule::new(&r.value)),
        );
        let url = exchange
            .url
            .strip_prefix(&self.base_url)
            .unwrap_or(&exchange.url);
        Some(SnapFile {
            meta: Meta {
                source: Some(context.source.clone()),
                description: Some(step.name.clone()),
                expression: Some(format!("{} {}", exchange.method, context.dynamic.text(url))),
                info: vec![
                    ("profile".into(), self.summary.profile.clone()),
                    ("scenario".into(), context.scenario.to_owned()),
                    ("step".into(), step.name.clone()),
                ],
            },
            contents: file::normalise(&normalize::contents(
                observed,
                &rules,
                &context.headers,
                &context.dynamic,
            )),
        })
    }

    /// Records or compares one step's snapshot; the check to add, if any.
    fn settle_step(&mut self, path: &Path, snap: SnapFile) -> Option<CheckResult> {
        let old = path.is_file().then(|| SnapFile::read(path));
        match (self.summary.compare, self.summary.mode, old) {
            (Comparison::Shape | Comparison::ShapeStrict, _, None) => {
                self.summary.no_reference += 1;
                None
            }
            (Comparison::Shape | Comparison::ShapeStrict, _, Some(old)) => {
                Some(self.compare_shape(path, old, &snap))
            }
            (Comparison::Exact, Mode::Record, old) => {
                if old
                    .and_then(Result::ok)
                    .is_some_and(|o| o.render() == snap.render())
                {
                    self.summary.unchanged += 1;
                } else {
                    self.write(&snap, path);
                    self.summary.written += 1;
                }
                self.remove_pending(path);
                None
            }
            (Comparison::Exact, Mode::NewOnly, None) => {
                self.write(&snap, path);
                self.summary.written += 1;
                self.remove_pending(path);
                None
            }
            (Comparison::Exact, _, None) => Some(self.first_snapshot(path, &snap)),
            (Comparison::Exact, _, Some(old)) => Some(self.compare_exact(path, old, &snap)),
        }
    }

    /// A step's shape against the reference profile's snapshot.
    fn compare_shape(
        &mut self,
        path: &Path,
        old: Result<SnapFile, file::SnapFileError>,
        snap: &SnapFile,
    ) -> CheckResult {
        let shown = path.display().to_string();
        let profile = self.summary.profile.clone();
        let check = format!("same shape as {profile} ({shown})");
        let old = match old {
            Ok(old) => old,
            Err(e) => {
                self.summary.differed += 1;
                return self.check(CheckStatus::Failed, check, e.to_string(), e.to_string());
            }
        };
        let reference = diff::parse(&old.contents);
        let actual = diff::parse(&snap.contents);
        let diff::ShapeComparison {
            differences,
            allowed,
        } = diff::compare_shapes(&reference, &actual, self.strict);
        if differences.is_empty() {
            self.summary.matched += 1;
            let message = if allowed.is_empty() {
                format!("same shape as {profile}")
            } else {
                format!(
                    "same shape as {profile} (legitimate: {})",
                    allowed.join("; ")
                )
            };
            return self.check(CheckStatus::Passed, check, "same shape".into(), message);
        }
        self.summary.differed += 1;
        let text = diff::unified(
            &reference.shape_text(),
            &actual.shape_text(),
            &format!("{shown} (shape)"),
            "this response (shape)",
        );
        self.check(
            CheckStatus::Failed,
            check,
            text,
            format!(
                "not the same shape as {profile}: {}",
                differences.join("; ")
            ),
        )
    }

    /// A step without a snapshot in `compare` mode: its response becomes pending.
    fn first_snapshot(&mut self, path: &Path, snap: &SnapFile) -> CheckResult {
        let shown = path.display().to_string();
        let pending = new_path(path);
        self.write(snap, &pending);
        self.summary.missing += 1;
        self.summary.pending.push(pending.clone());
        let shown_new = pending.display().to_string();
        self.check(
            CheckStatus::Failed,
            format!("response matches {shown}"),
            diff::unified("", &snap.contents, "no snapshot", &shown_new),
            format!(
                "no snapshot yet; this response is in {shown_new} (keep it: `mfa-conform snapshots accept {shown_new}`)"
            ),
        )
    }

    /// A step's response against its snapshot; a difference becomes pending.
    fn compare_exact(
        &mut self,
        path: &Path,
        old: Result<SnapFile, file::SnapFileError>,
        snap: &SnapFile,
    ) -> CheckResult {
        let shown = path.display().to_string();
        let (old_text, read_error) = match old {
            Ok(o) => (o.contents, None),
            Err(e) => (String::new(), Some(e)),
        };
        if read_error.is_none() && old_text == snap.contents {
            self.summary.matched += 1;
            self.remove_pending(path);
            return self.check(
                CheckStatus::Passed,
                format!("response matches {shown}"),
                "matches".into(),
                String::new(),
            );
        }
        let pending = new_path(path);
        self.write(snap, &pending);
        self.summary.differed += 1;
        self.summary.pending.push(pending.clone());
        let shown_new = pending.display().to_string();
        let message = match read_error {
            Some(e) => format!("{e}; this response is in {shown_new}"),
            None => format!(
                "the response differs from the snapshot; this one is in {shown_new} (`mfa-conform snapshots review` accepts or rejects it)"
            ),
        };
        self.check(
            CheckStatus::Failed,
            format!("response matches {shown}"),
            diff::unified(&old_text, &snap.contents, &shown, &shown_new),
            message,
        )
    }

    fn write(&mut self, file: &SnapFile, to: &Path) {
        if let Err(e) = file.write(to) {
            self.summary.errors.push(e.to_string());
        }
    }

    /// Removes the `.snap.new` beside `path`, if any.
    fn remove_pending(&mut self, path: &Path) {
        let pending = new_path(path);
        if pending.is_file()
            && let Err(e) = std::fs::remove_file(&pending)
        {
            self.summary
                .errors
                .push(format!("cannot remove {}: {e}", pending.display()));
        }
    }

    /// Snapshots in a scenario's directory that no step of it writes (renamed or removed
    /// steps): removed by `record`, listed otherwise.
    fn unreferenced_steps(&mut self, scenario_dir: &Path, used: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(scenario_dir) else {
            return;
        };
        let mut stale: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "snap")
                    && p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| !used.contains(s))
            })
            .collect();
        stale.sort();
        for path in stale {
            if self.summary.mode == Mode::Record {
                let _ = std::fs::remove_file(new_path(&path));
                match std::fs::remove_file(&path) {
                    Ok(()) => self.summary.removed.push(path),
                    Err(e) => self
                        .summary
                        .errors
                        .push(format!("cannot remove {}: {e}", path.display())),
                }
            } else {
                self.summary.unreferenced.push(path);
            }
        }
    }

    /// The summary, with scenario directories no scenario of the suite owns.
    pub fn finish(mut self) -> SnapshotSummary {
        if self.summary.compare == Comparison::Exact
            && let Ok(entries) = std::fs::read_dir(&self.summary.root)
        {
            let mut orphans: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| !self.suite_dirs.contains(n))
                })
                .collect();
            orphans.sort();
            self.summary.unreferenced.extend(orphans);
        }
        self.summary
    }
}

/// What every step snapshot of one scenario shares.
struct StepContext<'r> {
    scenario: &'r str,
    source: String,
    /// The scenario's `snapshot_redact`.
    rules: Vec<PathRule>,
    /// Headers kept besides the default ones.
    headers: Vec<String>,
    dynamic: Dynamic,
}

/// The file stem of a step's snapshot: its name's slug, prefixed by its phase outside
/// `steps`, and numbered if an earlier step of the scenario has the same.
fn unique_name(used: &mut HashSet<String>, phase: Phase, step: &str) -> String {
    let prefix = match phase {
        Phase::Setup => "setup-",
        Phase::Steps => "",
        Phase::Teardown => "teardown-",
    };
    let base = format!("{prefix}{}", slug(step));
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// `scenarios/otp-enrollment.yaml`: the suite directory's name and the file's, so the
/// header does not depend on where the suite was checked out.
fn source_of(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy())
    {
        Some(dir) => format!("{dir}/{name}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_summary_says_what_to_do() {
        let mut summary = SnapshotSummary {
            profile: "vendor".into(),
            root: "snapshots/vendor".into(),
            mode: Mode::Compare,
            compare: Comparison::Exact,
            matched: 40,
            differed: 2,
            missing: 1,
            no_reference: 0,
            written: 0,
            unchanged: 0,
            pending: vec![
                "a.snap.new".into(),
                "b.snap.new".into(),
                "c.snap.new".into(),
            ],
            removed: Vec::new(),
            unreferenced: vec!["snapshots/vendor/flow/old-step.snap".into()],
            errors: Vec::new(),
        };
        insta::assert_snapshot!(summary.render(), @r"
        snapshots (vendor, compare): 40 match, 2 differ, 1 new
        3 pending snapshot(s) written as .snap.new: review them with `mfa-conform snapshots review` (or `snapshots accept --all` / `reject --all`)
        1 snapshot(s) match no step of the suite (`--snapshots record` removes those of scenarios that ran):
          snapshots/vendor/flow/old-step.snap
        ");
        summary.compare = Comparison::Shape;
        summary.profile = "reference".into();
        summary.pending.clear();
        summary.unreferenced.clear();
        summary.no_reference = 3;
        insta::assert_snapshot!(summary.render(), @"snapshots (shape): 40 step(s) same shape as reference, 2 differ, 3 without a snapshot of reference");
    }
}

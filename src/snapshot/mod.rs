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
    CheckOrigin, CheckResult, CheckStatus, Phase, ScenarioResult, ScenarioStatus,
};
use crate::scenario::model::Severity;
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
    /// Only the structure: status, media type, keys, value types, array lengths.
    Shape,
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
        let mode = match options.mode {
            Some(mode) => mode,
            None if exists || options.compare == Comparison::Shape => Mode::Compare,
            None if options.all && options.compare == Comparison::Exact => Mode::NewOnly,
            None => Mode::Off,
        };
        if mode == Mode::Off {
            return Ok(None);
        }
        if options.compare == Comparison::Shape {
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
                compare: options.compare,
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
            Comparison::Shape => CheckOrigin::Shape {
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
        let scenario_rules: Vec<PathRule> = scenario
            .snapshot_redact
            .iter()
            .filter_map(|r| PathRule::new(&r.value))
            .collect();
        let headers: Vec<String> = scenario
            .snapshot_headers
            .iter()
            .map(|h| h.value.to_ascii_lowercase())
            .collect();
        let scenario_dir = self.summary.root.join(slug(&result.name));
        let source = source_of(&suite_scenario.file);
        let phases = [
            (Phase::Setup, &scenario.setup, "setup-"),
            (Phase::Steps, &scenario.steps, ""),
            (Phase::Teardown, &scenario.teardown, "teardown-"),
        ];
        let mut used: HashSet<String> = HashSet::new();
        let mut counts = [0usize; 3];
        for step in result.steps.iter_mut() {
            let Some(p) = phases.iter().position(|(phase, ..)| *phase == step.phase) else {
                continue;
            };
            let (_, defs, prefix) = phases[p];
            let index = counts[p];
            counts[p] += 1;
            let base = format!("{prefix}{}", slug(&step.name));
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            let Some(def) = defs.get(index) else {
                continue;
            };
            let (Some(_), Some(observed), Some(exchange)) =
                (&def.request, &step.observed, &step.exchange)
            else {
                continue;
            };
            let path = scenario_dir.join(format!("{name}.snap"));
            let selected = def
                .snapshot
                .or(scenario.snapshot)
                .unwrap_or_else(|| self.all || path.is_file());
            if !selected {
                continue;
            }
            let mut rules = scenario_rules.clone();
            rules.extend(
                def.snapshot_redact
                    .iter()
                    .filter_map(|r| PathRule::new(&r.value)),
            );
            let url = exchange
                .url
                .strip_prefix(&self.base_url)
                .unwrap_or(&exchange.url);
            let snap = SnapFile {
                meta: Meta {
                    source: Some(source.clone()),
                    description: Some(step.name.clone()),
                    expression: Some(format!("{} {}", exchange.method, dynamic.text(url))),
                    info: vec![
                        ("profile".into(), self.summary.profile.clone()),
                        ("scenario".into(), result.name.clone()),
                        ("step".into(), step.name.clone()),
                    ],
                },
                contents: file::normalise(&normalize::contents(
                    observed, &rules, &headers, &dynamic,
                )),
            };
            if let Some(check) = self.settle_step(&path, snap) {
                step.checks.push(check);
            }
        }
        let complete = phases
            .iter()
            .zip(counts)
            .all(|((_, defs, _), ran)| defs.len() == ran);
        if complete && self.summary.compare == Comparison::Exact {
            self.unreferenced_steps(&scenario_dir, &used);
        }
    }

    /// Records or compares one step's snapshot; the check to add, if any.
    fn settle_step(&mut self, path: &Path, snap: SnapFile) -> Option<CheckResult> {
        let shown = path.display().to_string();
        let pending = new_path(path);
        let old = path.is_file().then(|| SnapFile::read(path));
        if self.summary.compare == Comparison::Shape {
            let Some(old) = old else {
                self.summary.no_reference += 1;
                return None;
            };
            let profile = self.summary.profile.clone();
            let check = format!("same shape as {profile} ({shown})");
            return Some(match old {
                Err(e) => {
                    self.summary.differed += 1;
                    self.check(CheckStatus::Failed, check, e.to_string(), e.to_string())
                }
                Ok(old) => {
                    let reference = diff::parse(&old.contents);
                    let actual = diff::parse(&snap.contents);
                    let differences = diff::shape_differences(&reference, &actual);
                    if differences.is_empty() {
                        self.summary.matched += 1;
                        self.check(
                            CheckStatus::Passed,
                            check,
                            "same shape".into(),
                            format!("same shape as {profile}"),
                        )
                    } else {
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
                }
            });
        }
        let write = |file: &SnapFile, to: &Path, errors: &mut Vec<String>| {
            if let Err(e) = file.write(to) {
                errors.push(e.to_string());
            }
        };
        let remove_pending = |errors: &mut Vec<String>| {
            if pending.is_file()
                && let Err(e) = std::fs::remove_file(&pending)
            {
                errors.push(format!("cannot remove {}: {e}", pending.display()));
            }
        };
        match (self.summary.mode, old) {
            (Mode::Record, old) => {
                if old
                    .and_then(Result::ok)
                    .is_some_and(|o| o.render() == snap.render())
                {
                    self.summary.unchanged += 1;
                } else {
                    write(&snap, path, &mut self.summary.errors);
                    self.summary.written += 1;
                }
                remove_pending(&mut self.summary.errors);
                None
            }
            (Mode::NewOnly, None) => {
                write(&snap, path, &mut self.summary.errors);
                self.summary.written += 1;
                remove_pending(&mut self.summary.errors);
                None
            }
            (_, None) => {
                write(&snap, &pending, &mut self.summary.errors);
                self.summary.missing += 1;
                self.summary.pending.push(pending.clone());
                let shown_new = pending.display().to_string();
                Some(self.check(
                    CheckStatus::Failed,
                    format!("response matches {shown}"),
                    diff::unified("", &snap.contents, "no snapshot", &shown_new),
                    format!(
                        "no snapshot yet; this response is in {shown_new} (keep it: `mfa-conform snapshots accept {shown_new}`)"
                    ),
                ))
            }
            (_, Some(old)) => {
                let (old_text, read_error) = match old {
                    Ok(o) => (o.contents, None),
                    Err(e) => (String::new(), Some(e)),
                };
                if read_error.is_none() && old_text == snap.contents {
                    self.summary.matched += 1;
                    remove_pending(&mut self.summary.errors);
                    return Some(self.check(
                        CheckStatus::Passed,
                        format!("response matches {shown}"),
                        "matches".into(),
                        String::new(),
                    ));
                }
                write(&snap, &pending, &mut self.summary.errors);
                self.summary.differed += 1;
                self.summary.pending.push(pending.clone());
                let shown_new = pending.display().to_string();
                let message = match read_error {
                    Some(e) => format!("{e}; this response is in {shown_new}"),
                    None => format!(
                        "the response differs from the snapshot; this one is in {shown_new} (`mfa-conform snapshots review` accepts or rejects it)"
                    ),
                };
                Some(self.check(
                    CheckStatus::Failed,
                    format!("response matches {shown}"),
                    diff::unified(&old_text, &snap.contents, &shown, &shown_new),
                    message,
                ))
            }
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

/// Whether a check is a snapshot comparison, and of which kind (for the reports).
pub fn is_snapshot_check(check: &CheckResult) -> bool {
    check.requirement == REQUIREMENT
}

pub fn is_shape_check(check: &CheckResult) -> bool {
    shape_profile(check).is_some()
}

/// The profile a shape check compared with.
pub fn shape_profile(check: &CheckResult) -> Option<&str> {
    if !is_snapshot_check(check) {
        return None;
    }
    let rest = check.check.strip_prefix("same shape as ")?;
    Some(rest.split_once(" (").map_or(rest, |(profile, _)| profile))
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

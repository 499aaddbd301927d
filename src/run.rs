//! `mfa-conform run`: the conformance driver. Loads the suite, picks the scenarios, runs
//! them in parallel against the target (the embedded reference server when no profile is
//! given), settles known deviations, and hands the results to the report sinks.

use crate::engine::redact::Redactor;
use crate::engine::result::{CheckStatus, ErrorKind, ScenarioResult, ScenarioStatus};
use crate::engine::{Detail, RunContext};
use crate::exit::{Exit, Stop};
use crate::report::{self, RunReport, TargetInfo};
use crate::scenario::load::{LoadError, parse_yaml};
use crate::scenario::model::Capability;
use crate::scenario::{Suite, SuiteScenario};
use crate::select::Filters;
use crate::snapshot::{SnapshotOptions, SnapshotSink, SnapshotSummary};
use crate::target::Resolved;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;
use tracing::Instrument;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: Option<PathBuf>,
    /// Replaces the profile's base_url.
    pub base_url: Option<String>,
    /// Scenario files and directories; empty: the built-in suite.
    pub scenarios: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub names: Vec<String>,
    pub jobs: usize,
    pub fail_fast: bool,
    pub strict: bool,
    pub expected_failures: Option<PathBuf>,
    pub report_dir: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub quiet: bool,
    /// Response snapshots (off unless `snapshots.dir` is set).
    pub snapshots: SnapshotOptions,
}

/// A known deviation: a requirement whose failures are expected, and why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    pub requirement: String,
    pub reason: String,
}

/// The outcome of a run: the report and the exit code.
pub struct RunOutcome {
    pub report: RunReport,
    pub exit: Exit,
    pub report_dir: Option<PathBuf>,
    /// What happened to snapshots, when they were on.
    pub snapshots: Option<SnapshotSummary>,
}

fn load_expected(path: &Path, suite: &Suite) -> Result<Vec<ExpectedFailure>, Stop> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Stop::bad(format!("{}: cannot read: {e}", path.display())))?;
    let list: Vec<ExpectedFailure> =
        parse_yaml(path, &text).map_err(|e| Stop::bad(e.to_string()))?;
    let unknown: Vec<String> = list
        .iter()
        .filter(|e| suite.requirement(&e.requirement).is_none())
        .map(|e| {
            let (line, column) = position_of(&text, &e.requirement);
            LoadError {
                file: path.to_owned(),
                line,
                column,
                message: format!(
                    "unknown requirement {:?} in the expected failures",
                    e.requirement
                ),
                snippet: String::new(),
            }
            .to_string()
        })
        .collect();
    if unknown.is_empty() {
        Ok(list)
    } else {
        Err(Stop::BadInput(unknown))
    }
}

/// The 1-based line and column of the first `requirement:` entry naming `id` in `text`.
fn position_of(text: &str, id: &str) -> (u64, u64) {
    text.lines()
        .enumerate()
        .find_map(|(index, line)| {
            let key = line.find("requirement")?;
            let at = key + line[key..].find(id)?;
            Some((index as u64 + 1, at as u64 + 1))
        })
        .unwrap_or((1, 1))
}

/// What a run needs before its first request: every input read and checked.
struct Prepared {
    suite: Suite,
    expected: Vec<ExpectedFailure>,
    selected: Vec<SuiteScenario>,
}

fn prepare(options: &RunOptions) -> Result<Prepared, Stop> {
    let suite = crate::suite::load(&options.scenarios)
        .map_err(|errors| Stop::BadInput(errors.iter().map(LoadError::to_string).collect()))?;
    let expected = match &options.expected_failures {
        Some(path) => load_expected(path, &suite)?,
        None => Vec::new(),
    };
    let selector = Filters {
        tags: options.tags.clone(),
        skip_tags: options.skip_tags.clone(),
        names: options.names.clone(),
        ..Filters::default()
    }
    .compile("--name")?;
    let selected = selector.select(&suite).into_iter().cloned().collect();
    Ok(Prepared {
        suite,
        expected,
        selected,
    })
}

/// Runs the conformance suite.
pub async fn run(options: RunOptions) -> Result<RunOutcome, Stop> {
    let started_at = jiff::Timestamp::now();
    let started = Instant::now();
    let Prepared {
        suite,
        expected,
        selected,
    } = prepare(&options)?;
    let resolved = Resolved::new(&crate::target::TargetArgs {
        profile: options.profile.clone(),
        base_url: options.base_url.clone(),
        scenarios: options.scenarios.clone(),
    })
    .await?;
    let target = resolved.target.clone();
    let (snapshot_options, _embedded_reference) =
        match with_embedded_reference(&options, &target.name) {
            Ok(found) => found,
            Err(e) => {
                resolved.shutdown().await;
                return Err(e);
            }
        };
    let context = RunContext::new(target.clone(), &suite, Redactor::default(), Detail::Full)
        .map_err(|e| Stop::bad(e.to_string()));
    let sink =
        SnapshotSink::new(&snapshot_options, &target, &suite).map_err(|e| Stop::bad(e.to_string()));
    let (context, mut snapshots) = match (context, sink) {
        (Ok(context), Ok(sink)) => (Arc::new(context), sink),
        (Err(e), _) | (_, Err(e)) => {
            resolved.shutdown().await;
            return Err(e);
        }
    };
    if let Err(message) = context.preflight().await {
        resolved.shutdown().await;
        return Err(Stop::Target(message));
    }
    // Time-based values follow the target's clock, which earlier runs may have moved.
    let clock = match context.sync_clock().await {
        Ok(clock) => clock,
        Err(e) => {
            resolved.shutdown().await;
            return Err(Stop::Target(format!("reading the target's clock: {e}")));
        }
    };
    // SIGINT or SIGTERM: no new scenario starts, the running ones finish, the reports
    // cover what ran (`interrupted: true`) and the exit code is 130. A second signal quits.
    let (interrupts, stop) = crate::signals::Interrupts::stopping(
        "no new scenarios; waiting for the running ones, then writing the reports for what ran",
    );
    let selected: Vec<&SuiteScenario> = selected.iter().collect();
    let mut results = execute(&context, &selected, &options, stop, snapshots.as_mut()).await;
    // Reports are written next: from here a signal quits at once.
    interrupts.abort();
    let snapshots = snapshots.map(SnapshotSink::finish);
    resolved.shutdown().await;

    settle_expected(&mut results, &expected, options.strict);
    let report = RunReport::summarise(
        &suite,
        report::RunMeta {
            target: TargetInfo {
                name: target.name.clone(),
                base_url: target.base_url().to_owned(),
                capabilities: target
                    .profile
                    .capabilities
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                clock: clock.to_string(),
            },
            started_at: started_at.to_string(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            interrupted: interrupts.interrupted(),
            strict: options.strict,
            expected: expected.iter().map(|e| e.requirement.clone()).collect(),
        },
        results,
    );
    let exit = exit_code(&report);
    let report_dir = write_reports(&report, &options, started_at);
    Ok(RunOutcome {
        report,
        exit,
        report_dir,
        snapshots,
    })
}

/// Comparing the built-in suite with the reference server's snapshots where the snapshot
/// directory has none (an installed binary, another working directory): the embedded ones are written to a
/// temporary directory, removed when the run ends, and read from there. Recording never
/// goes there.
fn with_embedded_reference(
    run: &RunOptions,
    target: &str,
) -> Result<(SnapshotOptions, Option<tempfile::TempDir>), Stop> {
    use crate::snapshot::Mode;
    let options = &run.snapshots;
    // The embedded snapshots are those of the built-in suite's steps.
    let reads_reference = run.scenarios.is_empty()
        && options.profile.as_deref().unwrap_or(target) == "reference"
        && matches!(options.mode, None | Some(Mode::Compare));
    match &options.dir {
        Some(dir) if reads_reference && !dir.join("reference").is_dir() => {
            let temp = tempfile::Builder::new()
                .prefix("mfa-conform-reference-")
                .tempdir()
                .and_then(|temp| crate::suite::write_reference_snapshots(temp.path()).map(|_| temp))
                .map_err(|e| Stop::bad(format!("cannot write the reference snapshots out: {e}")))?;
            let options = SnapshotOptions {
                dir: Some(temp.path().to_owned()),
                ..options.clone()
            };
            Ok((options, Some(temp)))
        }
        _ => Ok((options.clone(), None)),
    }
}

/// Failed checks of a listed requirement become expected failures, with the list's reason.
fn settle_expected(results: &mut [ScenarioResult], expected: &[ExpectedFailure], strict: bool) {
    let reasons: HashMap<&str, &str> = expected
        .iter()
        .map(|e| (e.requirement.as_str(), e.reason.as_str()))
        .collect();
    for result in results {
        for step in &mut result.steps {
            for check in &mut step.checks {
                if check.status == CheckStatus::Failed
                    && let Some(reason) = reasons.get(check.requirement.as_str())
                {
                    check.status = CheckStatus::ExpectedFailure;
                    check.expected_failure_reason = Some((*reason).to_owned());
                }
            }
        }
        result.settle(strict);
    }
}

/// Writes `report.json` alone (`--json`), or every report into the report directory.
fn write_reports(
    report: &RunReport,
    options: &RunOptions,
    started_at: jiff::Timestamp,
) -> Option<PathBuf> {
    if let Some(path) = &options.json {
        write_json_only(report, path);
        return None;
    }
    let written = crate::output::report_dir(options.report_dir.as_deref(), started_at)
        .and_then(|dir| report::write_all(report, &dir).map(|()| dir));
    match written {
        Ok(dir) => Some(dir),
        Err(e) => {
            eprintln!("error: cannot write the reports: {e}");
            options.report_dir.clone()
        }
    }
}

fn write_json_only(report: &RunReport, path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(path, report::json::render(report)) {
        eprintln!("error: cannot write {}: {e}", path.display());
    }
}

/// 130 interrupted; 3 target or control unreachable; 1 a check failed; 0 passed.
pub fn exit_code(report: &RunReport) -> Exit {
    if report.interrupted {
        return Exit::Interrupted;
    }
    let unreachable = report.scenarios.iter().any(|s| {
        s.error
            .as_ref()
            .is_some_and(|e| e.kind != ErrorKind::Scenario)
            || s.steps.iter().any(|st| {
                st.error
                    .as_ref()
                    .is_some_and(|e| matches!(e.kind, ErrorKind::Transport | ErrorKind::Control))
            })
    });
    if unreachable {
        Exit::Target
    } else if report.summary.failed > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// Runs scenarios `jobs` at a time; scenarios that move the clock run afterwards, alone,
/// because a clock jump would expire the tokens of scenarios running beside them. Once
/// `stop` is set (a signal, or `--fail-fast`) no scenario starts; running ones finish.
async fn execute(
    context: &Arc<RunContext>,
    selected: &[&SuiteScenario],
    options: &RunOptions,
    stop: Arc<AtomicBool>,
    mut snapshots: Option<&mut SnapshotSink>,
) -> Vec<ScenarioResult> {
    let (clocked, parallel): (Vec<&SuiteScenario>, Vec<&SuiteScenario>) =
        selected.iter().partition(|s| {
            s.scenario.requires.contains(&Capability::Clock)
                && context.target.has(Capability::Clock)
        });
    let mut results: Vec<(usize, ScenarioResult)> = Vec::new();
    let batches = [(parallel, options.jobs.max(1)), (clocked, 1)];
    for (batch, jobs) in batches {
        let semaphore = Arc::new(Semaphore::new(jobs));
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        // Scenarios start in suite order: a spawner takes a permit, then starts the next
        // one, while this task collects results as they finish.
        let queued: Vec<(usize, SuiteScenario)> = batch
            .iter()
            .map(|scenario| {
                let index = selected
                    .iter()
                    .position(|s| s.name == scenario.name)
                    .unwrap_or(usize::MAX);
                (index, (*scenario).clone())
            })
            .collect();
        {
            let (context, stop, sender) = (context.clone(), stop.clone(), sender.clone());
            tokio::spawn(async move {
                for (index, scenario) in queued {
                    let Ok(permit) = semaphore.clone().acquire_owned().await else {
                        return;
                    };
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let (context, sender) = (context.clone(), sender.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        // `-v` log lines of the scenario's exchanges name it.
                        let span = tracing::info_span!("scenario", name = %scenario.name);
                        let result = context.run_scenario(&scenario).instrument(span).await;
                        let _ = sender.send((index, result));
                    });
                }
            });
        }
        drop(sender);
        while let Some((index, mut result)) = receiver.recv().await {
            if let (Some(sink), Some(scenario)) = (snapshots.as_deref_mut(), selected.get(index)) {
                sink.apply(scenario, &mut result);
            }
            result.settle(options.strict);
            if !options.quiet {
                println!("{}", report::console::scenario_line(&result));
            }
            if options.fail_fast && result.status == ScenarioStatus::Failed {
                stop.store(true, Ordering::SeqCst);
            }
            results.push((index, result));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_expected_failures_are_located() {
        let suite = Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap();
        let dir = std::env::temp_dir().join(format!("mfa-conform-expected-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("expected.yaml");
        std::fs::write(
            &path,
            "- {requirement: VERIFY-OTP, reason: known}\n- requirement: NO-SUCH-REQ\n  reason: typo\n",
        )
        .unwrap();
        let Err(Stop::BadInput(errors)) = load_expected(&path, &suite) else {
            panic!("refused");
        };
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "{}:2:16: unknown requirement \"NO-SUCH-REQ\"",
                path.display()
            )),
            "{errors:?}"
        );
    }
}

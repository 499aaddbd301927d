//! `mfa-conform run`: the conformance driver. Loads the suite, picks the scenarios, runs
//! them in parallel against the target (the embedded reference server when no profile is
//! given), settles known deviations, and hands the results to the report sinks.

use crate::engine::redact::Redactor;
use crate::engine::result::{CheckStatus, ErrorKind, ScenarioResult, ScenarioStatus};
use crate::engine::{Detail, RunContext};
use crate::report::{self, RunReport, TargetInfo};
use crate::scenario::load::{LoadError, parse_yaml};
use crate::scenario::model::Capability;
use crate::scenario::{Suite, SuiteScenario};
use crate::server::{self, RunningServer, ServeOptions, config};
use crate::snapshot::{SnapshotOptions, SnapshotSink, SnapshotSummary};
use crate::target::{Control, Hook, Target, TargetProfile, Tls};
use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Exit codes of `run` (README, "Exit codes").
pub mod exit {
    pub const PASSED: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const TARGET: u8 = 3;
    pub const INTERRUPTED: u8 = crate::signals::INTERRUPTED;
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: Option<PathBuf>,
    pub scenarios: PathBuf,
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
    pub exit_code: u8,
    pub report_dir: Option<PathBuf>,
    /// What happened to snapshots, when they were on.
    pub snapshots: Option<SnapshotSummary>,
}

/// Bad input: every error found, each naming file, line and column.
#[derive(Debug)]
pub struct BadInput(pub Vec<String>);

/// The profile of the embedded reference server, on the given base URL.
pub fn reference_target(base_url: &str) -> Target {
    let hook = |path: &str| Some(Hook::Url(format!("{base_url}/__control/{path}")));
    Target::new(
        "reference".into(),
        TargetProfile {
            base_url: base_url.to_owned(),
            client_id: Some(config::DEFAULT_CLIENT_ID.into()),
            client_secret: Some(config::DEFAULT_CLIENT_SECRET.into()),
            realm: Some(config::DEFAULT_REALM.into()),
            audience: None,
            capabilities: Capability::ALL.to_vec(),
            control: Control {
                users: hook("users"),
                messages: hook("messages"),
                clock: hook("clock"),
            },
            tls: Tls::default(),
            timeout: None,
        },
    )
    .expect("the reference profile is valid")
}

fn load_expected(path: &Path, suite: &Suite) -> Result<Vec<ExpectedFailure>, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let list: Vec<ExpectedFailure> = parse_yaml(path, &text).map_err(|e| vec![e.to_string()])?;
    let unknown: Vec<String> = list
        .iter()
        .filter(|e| suite.requirement(&e.requirement).is_none())
        .map(|e| {
            format!(
                "{}: unknown requirement {:?} in the expected failures",
                path.display(),
                e.requirement
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(list)
    } else {
        Err(unknown)
    }
}

fn matchers(names: &[String]) -> Result<Vec<GlobMatcher>, Vec<String>> {
    names
        .iter()
        .map(|n| {
            Glob::new(n)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("--name {n:?}: {e}"))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| vec![e])
}

/// Which scenarios the filters select, in suite order.
pub fn select<'a>(
    suite: &'a Suite,
    tags: &[String],
    skip_tags: &[String],
    names: &[GlobMatcher],
) -> Vec<&'a SuiteScenario> {
    suite
        .scenarios
        .iter()
        .filter(|s| tags.is_empty() || s.scenario.tags.iter().any(|t| tags.contains(t)))
        .filter(|s| !s.scenario.tags.iter().any(|t| skip_tags.contains(t)))
        .filter(|s| names.is_empty() || names.iter().any(|m| m.is_match(&s.name)))
        .collect()
}

/// Runs the conformance suite.
pub async fn run(options: RunOptions) -> Result<RunOutcome, BadInput> {
    let started_at = jiff::Timestamp::now();
    let started = Instant::now();
    let suite = Suite::load(&options.scenarios)
        .map_err(|errors| BadInput(errors.iter().map(LoadError::to_string).collect()))?;
    let expected = match &options.expected_failures {
        Some(path) => load_expected(path, &suite).map_err(BadInput)?,
        None => Vec::new(),
    };
    let names = matchers(&options.names).map_err(BadInput)?;
    let selected = select(&suite, &options.tags, &options.skip_tags, &names);

    let mut embedded: Option<RunningServer> = None;
    let target = match &options.profile {
        Some(path) => Target::load(path).map_err(|e| BadInput(vec![e.to_string()]))?,
        None => {
            let running = server::start(
                "127.0.0.1:0".parse().expect("valid address"),
                ServeOptions {
                    config: config::ServerConfig::default(),
                    control: true,
                    tls: None,
                },
            )
            .await
            .map_err(|e| {
                BadInput(vec![format!(
                    "starting the embedded reference server: {e:#}"
                )])
            })?;
            let target = reference_target(&running.base_url);
            embedded = Some(running);
            target
        }
    };
    let redactor = Redactor::default();
    let context = Arc::new(
        RunContext::new(target.clone(), &suite, redactor.clone(), Detail::Full)
            .map_err(|e| BadInput(vec![e.to_string()]))?,
    );
    let mut snapshots = match SnapshotSink::new(&options.snapshots, &target, &suite) {
        Ok(sink) => sink,
        Err(e) => {
            if let Some(server) = embedded {
                server.shutdown().await;
            }
            return Err(BadInput(vec![e]));
        }
    };
    // SIGINT or SIGTERM: no new scenario starts, the running ones finish, the reports
    // cover what ran (`interrupted: true`) and the exit code is 130. A second signal quits.
    let interrupted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let interrupts = crate::signals::Interrupts::listen(
        interrupted.clone(),
        vec![stop.clone()],
        "no new scenarios; waiting for the running ones, then writing the reports for what ran",
    );
    let results = execute(&context, &selected, &options, stop, snapshots.as_mut()).await;
    // Reports are written next: from here a signal quits at once.
    interrupts.abort();
    let snapshots = snapshots.map(SnapshotSink::finish);
    if let Some(server) = embedded {
        server.shutdown().await;
    }

    let mut results = results;
    let expected_reasons: HashMap<&str, &str> = expected
        .iter()
        .map(|e| (e.requirement.as_str(), e.reason.as_str()))
        .collect();
    for result in &mut results {
        for step in &mut result.steps {
            for check in &mut step.checks {
                if check.status == CheckStatus::Failed
                    && let Some(reason) = expected_reasons.get(check.requirement.as_str())
                {
                    check.status = CheckStatus::ExpectedFailure;
                    check.expected_failure_reason = Some((*reason).to_owned());
                }
            }
        }
        result.settle(options.strict);
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    let expected_ids: Vec<String> = expected.iter().map(|e| e.requirement.clone()).collect();
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
            },
            started_at: started_at.to_string(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            interrupted: was_interrupted,
            strict: options.strict,
            expected: expected_ids,
        },
        results,
    );
    let exit_code = exit_code(&report);
    let report_dir = if let Some(path) = &options.json {
        write_json_only(&report, path);
        None
    } else {
        let dir = options.report_dir.clone().unwrap_or_else(|| {
            PathBuf::from("reports").join(started_at.strftime("%Y%m%dT%H%M%SZ").to_string())
        });
        if let Err(e) = report::write_all(&report, &dir) {
            eprintln!("error: cannot write reports to {}: {e}", dir.display());
        }
        Some(dir)
    };
    Ok(RunOutcome {
        report,
        exit_code,
        report_dir,
        snapshots,
    })
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
pub fn exit_code(report: &RunReport) -> u8 {
    if report.interrupted {
        return exit::INTERRUPTED;
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
        exit::TARGET
    } else if report.summary.failed > 0 {
        exit::FAILED
    } else {
        exit::PASSED
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

//! `mfa-conform load`: replays the same YAML scenarios concurrently and measures latency
//! like wrk2: in the open model every flow is timed from its intended start, so a slow
//! target cannot hide its queueing (no coordinated omission). Setup (a pool of provisioned,
//! enrolled users) happens before the clock starts; checks keep running under load.

mod args;
pub mod conn;
pub mod driver;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod thresholds;

pub use args::LoadArgs;

use crate::engine::redact::Redactor;
use crate::engine::{Detail, RunContext};
use crate::run::reference_target;
use crate::scenario::Suite;
use crate::scenario::load::parse_yaml;
use crate::server::{self, ServeOptions};
use crate::target::{Target, parse_duration};
use driver::{FlowDef, Pool, Shared};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use metrics::Recorder;
use plan::{Model, PlanFile, PlanInput};
use report::{LoadReport, Options, RunFacts};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use thresholds::Threshold;

/// Exit codes of `load` (README, "load").
pub mod exit {
    pub const OK: u8 = 0;
    pub const BAD_INPUT: u8 = 2;
    pub const TARGET: u8 = 3;
    pub const THRESHOLD: u8 = 4;
    pub const REGRESSION: u8 = 5;
    pub const INTERRUPTED: u8 = 130;
}

enum Failure {
    BadInput(String),
    Target(String),
}

pub async fn main(args: LoadArgs) -> u8 {
    match load(args).await {
        Ok(code) => code,
        Err(Failure::BadInput(message)) => {
            eprintln!("error: {message}");
            exit::BAD_INPUT
        }
        Err(Failure::Target(message)) => {
            eprintln!("error: {message}");
            exit::TARGET
        }
    }
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::BadInput(message.into())
}

fn percent(text: &str) -> Result<f64, Failure> {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<f64>()
        .map_err(|_| {
            bad(format!(
                "--max-regression {text:?} is not a percentage (e.g. 10%)"
            ))
        })
}

async fn load(args: LoadArgs) -> Result<u8, Failure> {
    let file: PlanFile = match &args.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("{}: cannot read: {e}", path.display())))?;
            parse_yaml(path, &text).map_err(|e| bad(e.to_string()))?
        }
        None => PlanFile::default(),
    };
    let input = PlanInput {
        vus: args
            .vus
            .or(if args.rate.is_none() { file.vus } else { None }),
        rate: args.rate.clone().or(if args.vus.is_none() {
            file.rate.clone()
        } else {
            None
        }),
        duration: args.duration.clone().or(file.duration.clone()),
        iterations: args.iterations.or(file.iterations),
        warmup: args.warmup.clone().or(file.warmup.clone()),
        stages: args.stages.clone(),
        stage_list: if args.stages.is_none() {
            file.stages.clone()
        } else {
            None
        },
    };
    let plan = input.build().map_err(bad)?;
    let threshold_exprs: Vec<String> = args
        .thresholds
        .iter()
        .chain(&file.thresholds)
        .cloned()
        .collect();
    let thresholds: Vec<Threshold> = threshold_exprs
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let max_regression = args.max_regression.as_deref().map(percent).transpose()?;
    let baseline = match &args.baseline {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| bad(format!("--baseline {}: {e}", path.display())))
                .and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(&t)
                        .map_err(|e| bad(format!("--baseline {}: not JSON: {e}", path.display())))
                })?,
        ),
        None => None,
    };
    let progress_every = parse_duration(&args.progress_every).ok_or_else(|| {
        bad(format!(
            "--progress-every {:?} is not a duration",
            args.progress_every
        ))
    })?;

    let suite = Suite::load(&args.scenarios).map_err(|errors| {
        bad(errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"))
    })?;
    let selected: Vec<_> = suite
        .scenarios
        .iter()
        .filter(|s| {
            args.scenario.iter().any(|n| {
                globset::Glob::new(n)
                    .map(|g| g.compile_matcher().is_match(&s.name))
                    .unwrap_or(false)
            }) || s.scenario.tags.iter().any(|t| args.tags.contains(t))
        })
        .cloned()
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = suite.scenarios.iter().map(|s| s.name.as_str()).collect();
        return Err(bad(format!(
            "choose the flows to replay with --scenario NAME or --tag T (scenarios: {})",
            names.join(", ")
        )));
    }
    if let Some(clocked) = selected
        .iter()
        .find(|s| s.scenario.steps.iter().any(|st| st.advance_clock.is_some()))
    {
        return Err(bad(format!(
            "scenario {} moves the clock in its steps; a clock jump under load would expire every other flow's tokens",
            clocked.name
        )));
    }

    // The target: a profile, or an embedded reference server.
    let mut embedded = None;
    let target = match &args.profile {
        Some(path) => Target::load(path).map_err(|e| bad(e.to_string()))?,
        None => {
            let running = server::start(
                "127.0.0.1:0".parse().expect("valid address"),
                ServeOptions {
                    control: true,
                    ..ServeOptions::default()
                },
            )
            .await
            .map_err(|e| bad(format!("starting the embedded reference server: {e:#}")))?;
            let target = reference_target(&running.base_url);
            embedded = Some(running);
            target
        }
    };
    let mut warnings = Vec::new();
    let flows: Vec<Arc<FlowDef>> = selected
        .into_iter()
        .filter(|s| {
            let missing: Vec<_> = s
                .scenario
                .requires
                .iter()
                .filter(|c| !target.has(**c))
                .map(|c| c.as_str())
                .collect();
            if !missing.is_empty() {
                warnings.push(format!(
                    "{} skipped: the target does not claim {}",
                    s.name,
                    missing.join(", ")
                ));
            }
            missing.is_empty()
        })
        .map(|s| Arc::new(FlowDef::new(s)))
        .collect();
    if flows.is_empty() {
        return Err(bad(format!("no flow to replay: {}", warnings.join("; "))));
    }
    let ctx = RunContext::new(target.clone(), &suite, Redactor::default(), Detail::Measure)
        .map_err(|e| bad(e.to_string()))?;
    let ctx = Arc::new(ctx);
    let endpoint = Arc::new(
        conn::Endpoint::new(&target)
            .await
            .map_err(|e| Failure::Target(format!("target {}: {e}", target.base_url())))?,
    );

    // Calibrate: one unmeasured flow per scenario, to size the pool and to refuse a flow
    // that does not work at all.
    let mut flow_times = Vec::new();
    for flow in &flows {
        let pool = Arc::new(
            driver::provision(&ctx, flow, 1, 1)
                .await
                .map_err(Failure::Target)?,
        );
        let started = Instant::now();
        let calibration = Arc::new(Mutex::new(Recorder::default()));
        let shared = Arc::new(Shared {
            ctx: ctx.clone(),
            endpoint: endpoint.clone(),
            flows: vec![flow.clone()],
            pools: vec![pool],
            recorder: calibration.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicU64::new(0)),
            max_in_flight: 1,
        });
        let one = plan::Plan {
            iterations: Some(1),
            ..plan_for_one()
        };
        driver::run_phase(
            shared,
            &one,
            Duration::from_secs(60),
            calibration.clone(),
            false,
        )
        .await;
        let recorder = calibration.lock().unwrap_or_else(|e| e.into_inner());
        if recorder.flows_failed > 0 {
            let why = recorder
                .checks
                .values()
                .next()
                .map(|c| c.sample.clone())
                .or_else(|| recorder.errors.keys().next().cloned())
                .unwrap_or_default();
            warnings.push(format!("{}: a single flow failed before the load started ({why}); results will count it as failures", flow.scenario.name));
        }
        flow_times.push(started.elapsed());
    }

    let peak_rate = match plan.model {
        Model::Open => plan.peak(),
        Model::Closed => {
            let slowest = flow_times
                .iter()
                .max()
                .copied()
                .unwrap_or(Duration::from_millis(10))
                .max(Duration::from_millis(1));
            plan.peak() / slowest.as_secs_f64()
        }
    };
    let total_time = (plan.duration() + plan.warmup).as_secs_f64();
    let total_flows = plan
        .iterations
        .map(|i| i as f64)
        .unwrap_or(peak_rate * total_time);
    let per_flow_rate = peak_rate / flows.len() as f64;
    let needed: Vec<usize> = flows
        .iter()
        .zip(&flow_times)
        .map(|(f, t)| driver::pool_needed(f, per_flow_rate, *t, total_flows / flows.len() as f64))
        .collect();
    let needed_total: usize = needed.iter().sum();
    const AUTO_CAP: usize = 100_000;
    let sizes: Vec<usize> = match args.pool.or(file.pool) {
        Some(n) => {
            if n < needed_total {
                warnings.push(format!(
                    "the pool of {n} users is smaller than the {needed_total} this plan needs ({:.0} flows/s; TOTP and recovery codes are one-time, so a user runs a TOTP flow once per 30-s step, and a flow without setup uses up its user): starts will be dropped or virtual users will wait",
                    peak_rate
                ));
            }
            needed
                .iter()
                .map(|x| (n * x).div_ceil(needed_total.max(1)).max(1))
                .collect()
        }
        None => {
            if needed_total > AUTO_CAP {
                warnings.push(format!("this plan needs {needed_total} pool users; capped at {AUTO_CAP} (pass --pool to choose)"));
            }
            needed
                .iter()
                .map(|x| (*x).min(AUTO_CAP / flows.len()))
                .collect()
        }
    };
    let pool_size: usize = sizes.iter().sum();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "provisioning {pool_size} users ({} needed for {:.0} flows/s)...",
        needed_total, peak_rate
    );
    let provision_started = Instant::now();
    let mut pools: Vec<Arc<Pool>> = Vec::new();
    for (flow, size) in flows.iter().zip(&sizes) {
        pools.push(Arc::new(
            driver::provision(&ctx, flow, *size, 32)
                .await
                .map_err(Failure::Target)?,
        ));
    }
    eprintln!(
        "provisioned in {:.1}s",
        provision_started.elapsed().as_secs_f64()
    );

    let report_dir = args.report_dir.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(
            jiff::Timestamp::now()
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string(),
        )
    });
    std::fs::create_dir_all(&report_dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", report_dir.display())))?;

    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    // SIGINT or SIGTERM: stop starting flows, wait for the running ones, write the report
    // for the time that ran; a second signal (or one after `signal.abort()`) quits at once.
    let signal = crate::signals::Interrupts::listen(
        interrupted.clone(),
        vec![stop.clone()],
        "no new flows; waiting for the running ones, then writing the report for the time that ran",
    );
    let shared_with = |recorder: Arc<Mutex<Recorder>>| {
        Arc::new(Shared {
            ctx: ctx.clone(),
            endpoint: endpoint.clone(),
            flows: flows.clone(),
            pools: pools.clone(),
            recorder,
            stop: stop.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicU64::new(0)),
            max_in_flight: args.max_in_flight.max(1),
        })
    };
    if !plan.warmup.is_zero() {
        eprintln!("warming up for {:?}...", plan.warmup);
        let warm = Arc::new(Mutex::new(Recorder::default()));
        let warm_plan = plan::Plan {
            iterations: None,
            ..plan.clone()
        };
        driver::run_phase(
            shared_with(warm.clone()),
            &warm_plan,
            plan.warmup,
            warm,
            false,
        )
        .await;
    }
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let started_at = jiff::Timestamp::now();
    let measure_start = Instant::now();
    let ticking = Arc::new(AtomicBool::new(true));
    let ticker = spawn_ticker(
        recorder.clone(),
        ticking.clone(),
        report_dir.join("load.hlog"),
        progress_every,
    );
    let explicit_stages = args.stages.is_some() || file.stages.is_some();
    driver::run_phase(
        shared_with(recorder.clone()),
        &plan,
        plan.duration(),
        recorder.clone(),
        explicit_stages,
    )
    .await;
    let measured = measure_start.elapsed();
    ticking.store(false, Ordering::SeqCst);
    let _ = ticker.await;
    signal.abort();
    if let Some(server) = embedded {
        server.shutdown().await;
    }

    let recorder = recorder.lock().unwrap_or_else(|e| e.into_inner());
    if recorder.starts.dropped_in_flight > 0 {
        warnings.push(format!(
            "{} starts were dropped at --max-in-flight {}: the slowest flows are missing from the percentiles; raise the limit",
            recorder.starts.dropped_in_flight, args.max_in_flight
        ));
    }
    let exhausted: Vec<&str> = flows
        .iter()
        .zip(&pools)
        .filter(|(f, p)| f.single_use && p.is_empty())
        .map(|(f, _)| f.scenario.name.as_str())
        .collect();
    if plan.model == Model::Closed && !exhausted.is_empty() {
        warnings.push(format!(
            "the pool ran out for {} (each flow without setup uses up a user) and virtual users stopped early after {} flows: give a bigger --pool",
            exhausted.join(", "),
            recorder.flows
        ));
    } else if recorder.starts.pool_waits > 0 && plan.model == Model::Closed {
        warnings.push(format!(
            "virtual users waited {} times for a pool user (one-time TOTP codes: a user runs a TOTP flow once per 30-s step): give a bigger --pool",
            recorder.starts.pool_waits
        ));
    }
    if recorder.starts.dropped_pool > 0 {
        warnings.push(format!(
            "{} starts were dropped because no pool user was free: give a bigger --pool",
            recorder.starts.dropped_pool
        ));
    }
    let mut report = LoadReport::build(
        &recorder,
        RunFacts {
            started_at: started_at.to_string(),
            duration_s: measured.as_secs_f64(),
            interrupted: interrupted.load(Ordering::SeqCst),
            target: target.name.clone(),
            base_url: target.base_url().to_owned(),
            scenarios: flows.iter().map(|f| f.scenario.name.clone()).collect(),
            options: Options {
                plan: plan.clone(),
                pool_size,
                pool_needed: needed_total,
                max_in_flight: args.max_in_flight,
                thresholds: threshold_exprs.clone(),
            },
            warnings,
        },
    );
    report.thresholds = thresholds.iter().map(|t| t.evaluate(&report)).collect();
    if let (Some(baseline), Some(path)) = (&baseline, &args.baseline) {
        report.compare(&path.display().to_string(), baseline, max_regression);
    }
    write_reports(&report, &report_dir).map_err(|e| bad(format!("cannot write reports: {e}")))?;
    print!("{}", report::markdown(&report));
    println!("reports: {}", report_dir.display());
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if report.thresholds_failed() {
        exit::THRESHOLD
    } else if report.regressed() {
        exit::REGRESSION
    } else {
        exit::OK
    })
}

/// A plan that runs exactly one flow with one virtual user.
fn plan_for_one() -> plan::Plan {
    plan::Plan {
        model: Model::Closed,
        stages: vec![plan::Stage {
            duration: Duration::from_secs(60),
            target: 1.0,
        }],
        warmup: Duration::ZERO,
        iterations: Some(1),
    }
}

fn write_reports(report: &LoadReport, dir: &Path) -> std::io::Result<()> {
    let mut json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    json.push('\n');
    std::fs::write(dir.join("load.json"), json)?;
    std::fs::write(dir.join("load.md"), report::markdown(report))?;
    std::fs::write(dir.join("load.html"), report::html(report))?;
    Ok(())
}

/// Once a second: closes the interval (timeline point, `.hlog` entry) and shows progress
/// (a live line on a terminal, a plain line every `every` otherwise).
fn spawn_ticker(
    recorder: Arc<Mutex<Recorder>>,
    running: Arc<AtomicBool>,
    hlog: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let file = std::fs::File::create(&hlog);
        let mut file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warning: cannot write {}: {e}", hlog.display());
                None
            }
        };
        let mut serializer = V2Serializer::new();
        let mut writer = file.as_mut().and_then(|f| {
            IntervalLogWriterBuilder::new()
                .add_comment("mfa-conform load: latency in microseconds; tag flow = whole flows from the intended start, step:<name> = each step")
                .with_start_time(SystemTime::now())
                .with_base_time(SystemTime::now())
                .with_max_value_divisor(1000.0)
                .begin_log_with(f, &mut serializer)
                .ok()
        });
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            );
            bar
        });
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.tick().await;
        let mut last_print = Instant::now();
        loop {
            interval.tick().await;
            let done = !running.load(Ordering::SeqCst);
            let elapsed = start.elapsed().as_secs_f64();
            let (h_all, line) = {
                let mut r = recorder.lock().unwrap_or_else(|e| e.into_inner());
                let h = r.tick(elapsed);
                let point = r.timeline.last().cloned();
                let p = metrics::Percentiles::of(&r.flow_corrected);
                let line = format!(
                    "{elapsed:>5.0}s  flows {} ({:.0}/s)  requests {} ({:.0}/s)  p50 {:.1} ms  p99 {:.1} ms  errors {}  failed flows {}",
                    r.flows,
                    point.as_ref().map(|p| p.flows).unwrap_or(0),
                    r.requests,
                    point.as_ref().map(|p| p.requests).unwrap_or(0),
                    p.p50,
                    p.p99,
                    r.request_errors,
                    r.flows_failed
                );
                (h, line)
            };
            if let Some(w) = writer.as_mut() {
                let offset = Duration::from_secs_f64((elapsed - 1.0).max(0.0));
                for (name, histogram) in &h_all {
                    // Tags may not hold spaces or commas.
                    let tag: String = name
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || "-_:.".contains(c) {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let _ = w.write_histogram(
                        histogram,
                        offset,
                        Duration::from_secs(1),
                        Tag::new(&tag),
                    );
                }
            }
            match &bar {
                Some(bar) => bar.set_message(line),
                None if last_print.elapsed() >= every || done => {
                    eprintln!("{line}");
                    last_print = Instant::now();
                }
                None => {}
            }
            if done {
                if let Some(bar) = bar {
                    bar.finish();
                }
                return;
            }
        }
    })
}

//! `mfa-conform load`: replays the same YAML scenarios concurrently and measures latency
//! like wrk2: in the open model every flow is timed from its intended start, so a slow
//! target cannot hide its queueing (no coordinated omission). Setup (a pool of provisioned,
//! enrolled users) happens before the clock starts; checks keep running under load.

mod args;
mod calibrate;
pub mod conn;
pub mod driver;
mod measure;
pub mod metrics;
mod options;
pub mod plan;
mod progress;
pub mod report;
pub mod thresholds;

pub use args::LoadArgs;

use crate::engine::redact::Redactor;
use crate::engine::{Detail, RunContext};
use crate::exit::{Exit, Stop};
use crate::scenario::Suite;
use crate::select::{Combine, Filters, missing_capabilities};
use crate::target::{Resolved, Target};
use driver::FlowDef;
use measure::Bench;
use options::Settings;
use report::{LoadReport, Options, RunFacts};
use std::sync::Arc;

pub async fn main(args: LoadArgs) -> Exit {
    match load(args).await {
        Ok(exit) => exit,
        Err(stop) => stop.report(),
    }
}

/// Options -> flows -> target -> calibrate and provision -> measure -> report -> exit code.
async fn load(args: LoadArgs) -> Result<Exit, Stop> {
    let settings = Settings::new(&args)?;
    let suite = crate::suite::load(&args.target.scenarios)
        .map_err(|errors| Stop::BadInput(errors.iter().map(|e| e.to_string()).collect()))?;
    let selected = choose_flows(&args, &suite)?;
    check_threshold_steps(&settings, &selected)?;
    let resolved = Resolved::new(&args.target).await?;
    let result = drive(&args, &settings, &suite, selected, &resolved.target).await;
    resolved.shutdown().await;
    let report = result?;
    print!("{}", report::markdown(&report.0));
    println!("reports: {}", report.1.display());
    let report = report.0;
    Ok(if report.interrupted {
        Exit::Interrupted
    } else if report.mostly_failed() {
        eprintln!(
            "error: {} of {} flows failed",
            report.flows.failed, report.flows.count
        );
        Exit::Failed
    } else if report.thresholds_failed() {
        Exit::Threshold
    } else if report.regressed() {
        Exit::Regression
    } else {
        Exit::Ok
    })
}

/// The scenarios named by `--scenario` or tagged by `--tag`, none of which moves the clock.
fn choose_flows(
    args: &LoadArgs,
    suite: &Suite,
) -> Result<Vec<crate::scenario::SuiteScenario>, Stop> {
    let selector = Filters {
        tags: args.tags.clone(),
        names: args.scenario.clone(),
        combine: Combine::Any,
        ..Filters::default()
    }
    .compile("--scenario")?;
    let selected: Vec<_> = selector.select(suite).into_iter().cloned().collect();
    if selected.is_empty() {
        let names: Vec<&str> = suite.scenarios.iter().map(|s| s.name.as_str()).collect();
        return Err(Stop::bad(format!(
            "choose the flows to replay with --scenario NAME or --tag T (scenarios: {})",
            names.join(", ")
        )));
    }
    if let Some(clocked) = selected
        .iter()
        .find(|s| s.scenario.steps.iter().any(|st| st.advance_clock.is_some()))
    {
        return Err(Stop::bad(format!(
            "scenario {} moves the clock in its steps; a clock jump under load would expire every other flow's tokens",
            clocked.name
        )));
    }
    Ok(selected)
}

/// A threshold on a step that none of the selected flows has can never be evaluated.
fn check_threshold_steps(
    settings: &Settings,
    selected: &[crate::scenario::SuiteScenario],
) -> Result<(), Stop> {
    let steps: std::collections::BTreeSet<&str> = selected
        .iter()
        .flat_map(|s| s.scenario.steps.iter().map(|st| st.name.value.as_str()))
        .collect();
    let unknown: Vec<String> = settings
        .thresholds
        .iter()
        .filter_map(|t| {
            t.step()
                .filter(|name| !steps.contains(name))
                .map(|name| (t, name))
        })
        .map(|(t, name)| {
            format!(
                "threshold {:?}: no step {name:?} in the selected flows (steps: {})",
                t.expr,
                steps.iter().copied().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Stop::BadInput(unknown))
    }
}

/// Runs the load against `target` and writes the reports; gives them and their directory.
async fn drive(
    args: &LoadArgs,
    settings: &Settings,
    suite: &Suite,
    selected: Vec<crate::scenario::SuiteScenario>,
    target: &Target,
) -> Result<(LoadReport, std::path::PathBuf), Stop> {
    let mut warnings = Vec::new();
    let flows: Vec<Arc<FlowDef>> = selected
        .into_iter()
        .filter(|s| match missing_capabilities(target, s) {
            Some(why) => {
                warnings.push(format!("{} skipped: {why}", s.name));
                false
            }
            None => true,
        })
        .map(|s| Arc::new(FlowDef::new(s)))
        .collect();
    if flows.is_empty() {
        return Err(Stop::bad(format!(
            "no flow to replay: {}",
            warnings.join("; ")
        )));
    }
    let ctx = RunContext::new(target.clone(), suite, Redactor::default(), Detail::Measure)
        .map_err(|e| Stop::bad(e.to_string()))?;
    ctx.preflight().await.map_err(Stop::Target)?;
    // TOTP codes follow the target's clock, which earlier runs may have moved.
    let clock = ctx
        .sync_clock()
        .await
        .map_err(|e| Stop::Target(format!("reading the target's clock: {e}")))?;
    eprintln!("clock: {clock}");
    let ctx = Arc::new(ctx);
    let endpoint = Arc::new(
        conn::Endpoint::new(target)
            .await
            .map_err(|e| Stop::Target(format!("target {}: {e}", target.base_url())))?,
    );
    let calibration = calibrate::calibrate(&ctx, &endpoint, &flows).await?;
    let sizing = calibrate::size_pools(
        &settings.plan,
        &flows,
        &calibration,
        settings.pool,
        &mut warnings,
    );
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let pools = calibrate::provision(&ctx, &flows, &sizing).await?;
    let report_dir = crate::output::report_dir(args.report_dir.as_deref(), jiff::Timestamp::now())
        .map_err(|e| Stop::bad(format!("cannot create the report directory: {e}")))?;
    let bench = Bench {
        ctx,
        endpoint,
        flows,
        pools,
    };
    let measured = bench.measure(settings, &report_dir).await;
    warnings.extend(bench.warnings(&measured.recorder, &settings.plan, settings.max_in_flight));
    let mut report = LoadReport::build(
        &measured.recorder,
        RunFacts {
            started_at: measured.started_at.to_string(),
            duration_s: measured.duration.as_secs_f64(),
            interrupted: measured.interrupted,
            target: target.name.clone(),
            base_url: target.base_url().to_owned(),
            scenarios: bench
                .flows
                .iter()
                .map(|f| f.scenario.name.clone())
                .collect(),
            options: Options {
                plan: settings.plan.clone(),
                pool_size: sizing.total(),
                pool_needed: sizing.needed,
                max_in_flight: settings.max_in_flight,
                thresholds: settings.threshold_exprs(),
            },
            warnings,
        },
    );
    report.thresholds = settings
        .thresholds
        .iter()
        .map(|t| t.evaluate(&report))
        .collect();
    if let Some((path, baseline)) = &settings.baseline {
        report.compare(
            &path.display().to_string(),
            baseline,
            settings.max_regression,
        );
    }
    report::write_all(&report, &report_dir)
        .map_err(|e| Stop::bad(format!("cannot write reports: {e}")))?;
    Ok((report, report_dir))
}

//! Before the clock starts: one unmeasured flow per scenario (to refuse a flow that does not
//! work and to learn how long one takes), the pool size that follows from the plan, and the
//! provisioned pools.

use super::driver::{self, FlowDef, Pool, Shared};
use super::metrics::Recorder;
use super::plan::{self, Model, Plan};
use crate::engine::RunContext;
use crate::exit::Stop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What calibration learnt.
pub struct Calibration {
    /// How long one flow of each scenario took, in flow order.
    pub flow_times: Vec<Duration>,
}

/// Runs one flow of each scenario on a pool of one. A flow that fails stops the run before
/// it starts (the target, the profile or the scenario is wrong: measuring it would only
/// time failures).
pub async fn calibrate(
    ctx: &Arc<RunContext>,
    endpoint: &Arc<super::conn::Endpoint>,
    flows: &[Arc<FlowDef>],
) -> Result<Calibration, Stop> {
    let mut flow_times = Vec::new();
    for flow in flows {
        let pool = Arc::new(
            driver::provision(ctx, flow, 1, 1)
                .await
                .map_err(Stop::Target)?,
        );
        let started = Instant::now();
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let shared = Arc::new(Shared {
            ctx: ctx.clone(),
            endpoint: endpoint.clone(),
            flows: vec![flow.clone()],
            pools: vec![pool],
            recorder: recorder.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicU64::new(0)),
            max_in_flight: 1,
        });
        driver::run_phase(
            shared,
            &one_flow(),
            Duration::from_secs(60),
            recorder.clone(),
            false,
        )
        .await;
        let recorder = recorder.lock().unwrap_or_else(|e| e.into_inner());
        if recorder.flows_failed > 0 {
            let why = recorder
                .checks
                .values()
                .next()
                .map(|c| c.sample.clone())
                .or_else(|| recorder.errors.keys().next().map(|kind| explain(kind)))
                .unwrap_or_default();
            return Err(Stop::Target(format!(
                "{}: the calibration flow failed before the load started: {why}",
                flow.scenario.name
            )));
        }
        flow_times.push(started.elapsed());
    }
    Ok(Calibration { flow_times })
}

/// A request error of the calibration flow, by kind, with what to check.
fn explain(kind: &str) -> String {
    let hint = match kind {
        "tls" => {
            "the TLS handshake failed: is the certificate trusted? (tls.ca_cert, or tls.insecure for a test target)"
        }
        "connect" => "cannot connect: is base_url right and the target up?",
        "timeout" => "no answer within the profile's timeout",
        "connection_reset" => "the target closed the connection before answering",
        "body_too_large" => "the answer is larger than any MFA API answer should be",
        _ => return kind.to_owned(),
    };
    format!("{kind}: {hint}")
}

/// A plan that runs exactly one flow with one virtual user.
fn one_flow() -> Plan {
    Plan {
        model: Model::Closed,
        stages: vec![plan::Stage {
            duration: Duration::from_secs(60),
            target: 1.0,
        }],
        warmup: Duration::ZERO,
        iterations: Some(1),
    }
}

/// How many pool users each flow gets.
pub struct Sizing {
    pub sizes: Vec<usize>,
    /// What the plan needs in all (before a `--pool` or the cap).
    pub needed: usize,
    /// Flows/s at the plan's peak.
    pub peak_rate: f64,
}

impl Sizing {
    pub fn total(&self) -> usize {
        self.sizes.iter().sum()
    }
}

/// More pool users than this are not provisioned without an explicit `--pool`.
const AUTO_CAP: usize = 100_000;

/// Sizes the pools from the plan's peak rate (the closed model's from its VUs and the
/// slowest calibration flow) and the flows' needs; `pool` overrides, spread pro rata.
pub fn size_pools(
    plan: &Plan,
    flows: &[Arc<FlowDef>],
    calibration: &Calibration,
    pool: Option<usize>,
    warnings: &mut Vec<String>,
) -> Sizing {
    let peak_rate = match plan.model {
        Model::Open => plan.peak(),
        Model::Closed => {
            let slowest = calibration
                .flow_times
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
        .zip(&calibration.flow_times)
        .map(|(f, t)| driver::pool_needed(f, per_flow_rate, *t, total_flows / flows.len() as f64))
        .collect();
    let needed_total: usize = needed.iter().sum();
    let sizes = match pool {
        Some(n) => {
            if n < needed_total {
                warnings.push(format!(
                    "the pool of {n} users is smaller than the {needed_total} this plan needs ({peak_rate:.0} flows/s; TOTP and recovery codes are one-time, so a user runs a TOTP flow once per 30-s step, and a flow without setup uses up its user): starts will be dropped or virtual users will wait"
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
    Sizing {
        sizes,
        needed: needed_total,
        peak_rate,
    }
}

/// Provisions each flow's pool (32 users at a time), printing what it does.
pub async fn provision(
    ctx: &Arc<RunContext>,
    flows: &[Arc<FlowDef>],
    sizing: &Sizing,
) -> Result<Vec<Arc<Pool>>, Stop> {
    eprintln!(
        "provisioning {} users ({} needed for {:.0} flows/s)...",
        sizing.total(),
        sizing.needed,
        sizing.peak_rate
    );
    let started = Instant::now();
    let mut pools = Vec::new();
    for (flow, size) in flows.iter().zip(&sizing.sizes) {
        pools.push(Arc::new(
            driver::provision(ctx, flow, *size, 32)
                .await
                .map_err(Stop::Target)?,
        ));
    }
    eprintln!("provisioned in {:.1}s", started.elapsed().as_secs_f64());
    Ok(pools)
}

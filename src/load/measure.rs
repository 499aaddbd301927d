//! The timed part of a run: the warm-up (recorded apart and discarded), then the measured
//! phase with the ticker, under the signal handlers; and the warnings its counters call for.

use super::driver::{self, FlowDef, Pool, Shared};
use super::metrics::Recorder;
use super::options::Settings;
use super::plan::{Model, Plan};
use super::progress::spawn_ticker;
use crate::engine::RunContext;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything the flows share, before the recorder is chosen.
pub struct Bench {
    pub ctx: Arc<RunContext>,
    pub endpoint: Arc<super::conn::Endpoint>,
    pub flows: Vec<Arc<FlowDef>>,
    pub pools: Vec<Arc<Pool>>,
}

/// What the measured phase produced.
pub struct Measured {
    pub recorder: Recorder,
    pub started_at: jiff::Timestamp,
    pub duration: Duration,
    pub interrupted: bool,
}

impl Bench {
    fn shared(
        &self,
        recorder: Arc<Mutex<Recorder>>,
        stop: &Arc<AtomicBool>,
        max: usize,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            ctx: self.ctx.clone(),
            endpoint: self.endpoint.clone(),
            flows: self.flows.clone(),
            pools: self.pools.clone(),
            recorder,
            stop: stop.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(AtomicU64::new(0)),
            max_in_flight: max.max(1),
        })
    }

    /// Warms up, then measures; `load.hlog` goes into `report_dir`.
    pub async fn measure(&self, settings: &Settings, report_dir: &Path) -> Measured {
        let plan = &settings.plan;
        // SIGINT or SIGTERM: stop starting flows, wait for the running ones, write the report
        // for the time that ran; a second signal (or one after `abort()`) quits at once.
        let (signal, stop) = crate::signals::Interrupts::stopping(
            "no new flows; waiting for the running ones, then writing the report for the time that ran",
        );
        if !plan.warmup.is_zero() {
            eprintln!("warming up for {:?}...", plan.warmup);
            let warm = Arc::new(Mutex::new(Recorder::default()));
            let warm_plan = Plan {
                iterations: None,
                ..plan.clone()
            };
            let shared = self.shared(warm.clone(), &stop, settings.max_in_flight);
            driver::run_phase(shared, &warm_plan, plan.warmup, warm, false).await;
        }
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let started_at = jiff::Timestamp::now();
        let measure_start = Instant::now();
        let ticking = Arc::new(AtomicBool::new(true));
        let ticker = spawn_ticker(
            recorder.clone(),
            ticking.clone(),
            report_dir.join("load.hlog"),
            settings.progress_every,
        );
        let shared = self.shared(recorder.clone(), &stop, settings.max_in_flight);
        let ramp = settings.explicit_stages;
        driver::run_phase(shared, plan, plan.duration(), recorder.clone(), ramp).await;
        let duration = measure_start.elapsed();
        ticking.store(false, Ordering::SeqCst);
        let _ = ticker.await;
        signal.abort();
        let recorder = std::mem::take(&mut *recorder.lock().unwrap_or_else(|e| e.into_inner()));
        Measured {
            recorder,
            started_at,
            duration,
            interrupted: signal.interrupted(),
        }
    }

    /// What the counters say went wrong with the plan itself: dropped starts, an exhausted
    /// or too small pool.
    pub fn warnings(&self, recorder: &Recorder, plan: &Plan, max_in_flight: usize) -> Vec<String> {
        let mut warnings = Vec::new();
        if recorder.starts.dropped_in_flight > 0 {
            warnings.push(format!(
                "{} starts were dropped at --max-in-flight {max_in_flight}: the slowest flows are missing from the percentiles; raise the limit",
                recorder.starts.dropped_in_flight
            ));
        }
        let exhausted: Vec<&str> = self
            .flows
            .iter()
            .zip(&self.pools)
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
        warnings
    }
}

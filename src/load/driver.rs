//! The request loops: a user pool provisioned before the clock starts, then flows started
//! by virtual users (closed model) or on a fixed schedule (open model), each recorded from
//! its intended start. The hot loop only records into histograms; it never prints.

use super::conn::{Endpoint, LoadTransport};
use super::metrics::Recorder;
use super::plan::{Model, Plan};
use crate::engine::RunContext;
use crate::engine::result::{CheckStatus, Phase};
use crate::scenario::SuiteScenario;
use crate::totp;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A flow to replay: a scenario whose `setup` prepares a pool user and whose `steps` are
/// measured.
pub struct FlowDef {
    pub scenario: SuiteScenario,
    /// No user: every flow can start from the same prepared variables, concurrently.
    pub shared: bool,
    /// The flow computes TOTP codes: a user can run it once per 30-s step.
    pub uses_totp: bool,
    /// A provisioned user and no setup: each flow needs a user nobody has used
    /// (enrollment flows).
    pub single_use: bool,
}

impl FlowDef {
    pub fn new(scenario: SuiteScenario) -> FlowDef {
        let text = std::fs::read_to_string(&scenario.file).unwrap_or_default();
        FlowDef {
            shared: !scenario.scenario.user,
            uses_totp: text.contains("totp("),
            // Without a user there is nothing to use up.
            single_use: scenario.scenario.user && scenario.scenario.setup.is_empty(),
            scenario,
        }
    }
}

#[derive(Clone)]
pub struct PoolUser {
    vars: Value,
    /// TOTP step of the user's last flow.
    last_step: Option<u64>,
}

/// The users of one flow, least recently used first.
pub struct Pool {
    users: Mutex<VecDeque<PoolUser>>,
    /// Flows without a user: each start gets a copy of this one prepared entry. Copies are
    /// recycled: a finished flow's copy is reset to the entry (its captures dropped) and
    /// kept for a later start, so a start costs no deep copy.
    shared: Option<PoolUser>,
    spare: Mutex<Vec<PoolUser>>,
    /// Variables the measured steps assign (captures, new users): what a recycled copy
    /// must have reset.
    assigned: Vec<String>,
    single_use: bool,
    uses_totp: bool,
}

impl Pool {
    pub fn len(&self) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A user ready to run the flow now (for TOTP flows: not used in the current step).
    fn take(&self, current_step: impl FnOnce() -> u64) -> Option<PoolUser> {
        if let Some(entry) = &self.shared {
            let recycled = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
            return Some(recycled.unwrap_or_else(|| entry.clone()));
        }
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let ready = users
            .front()
            .is_some_and(|u| !self.uses_totp || u.last_step.is_none_or(|s| current_step() > s));
        if ready { users.pop_front() } else { None }
    }

    fn give_back(&self, mut user: PoolUser) {
        if let Some(entry) = &self.shared {
            reset_to(&mut user.vars, &entry.vars, &self.assigned);
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < MAX_SPARE {
                spare.push(user);
            }
            return;
        }
        if !self.single_use {
            self.users
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(user);
        }
    }
}

/// Recycled copies of a shared entry kept at most.
const MAX_SPARE: usize = 4096;

/// Makes `copy` (a flow's variables, started as a copy of `entry`) equal to `entry` again,
/// given the names the flow may have assigned: those are dropped, or restored from the
/// entry. Nothing else is compared or copied.
fn reset_to(copy: &mut Value, entry: &Value, assigned: &[String]) {
    let (Value::Object(copy), Value::Object(entry)) = (&mut *copy, entry) else {
        *copy = entry.clone();
        return;
    };
    for name in assigned {
        match entry.get(name) {
            Some(original) => {
                copy.insert(name.clone(), original.clone());
            }
            None => {
                copy.shift_remove(name);
            }
        }
    }
}

/// Provisions `size` users for a flow: a fresh user each, then the scenario's setup steps,
/// all outside the measurement. `Err` names the step that failed.
pub async fn provision(
    ctx: &Arc<RunContext>,
    flow: &Arc<FlowDef>,
    size: usize,
    concurrency: usize,
) -> Result<Pool, String> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..size {
        let (ctx, flow, semaphore) = (ctx.clone(), flow.clone(), semaphore.clone());
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await.map_err(|e| e.to_string())?;
            let scenario = &flow.scenario.scenario;
            let mut session = ctx
                .session(&scenario.vars, scenario.user)
                .await
                .map_err(|e| e.message)?;
            for (position, step) in scenario.setup.iter().enumerate() {
                let result = session.run_step(Phase::Setup, position, step).await;
                if result.is_blocking() {
                    let why = result
                        .error
                        .map(|e| e.message)
                        .or_else(|| {
                            result
                                .checks
                                .iter()
                                .find(|c| c.status == CheckStatus::Failed)
                                .map(|c| format!("[{}] {}", c.requirement, c.message))
                        })
                        .unwrap_or_default();
                    return Err(format!("setup step {:?} failed: {why}", result.name));
                }
            }
            Ok(PoolUser {
                vars: session.vars,
                last_step: None,
            })
        });
    }
    let mut users = VecDeque::with_capacity(size);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(user)) => users.push_back(user),
            Ok(Err(e)) => {
                set.abort_all();
                return Err(format!(
                    "provisioning a user for {}: {e}",
                    flow.scenario.name
                ));
            }
            Err(e) => return Err(format!("provisioning task failed: {e}")),
        }
    }
    let shared = if flow.shared {
        users.front().cloned()
    } else {
        None
    };
    Ok(Pool {
        users: Mutex::new(users),
        shared,
        spare: Mutex::new(Vec::new()),
        assigned: flow
            .scenario
            .scenario
            .steps
            .iter()
            .flat_map(|step| step.assigns())
            .cloned()
            .collect(),
        single_use: flow.single_use,
        uses_totp: flow.uses_totp,
    })
}

/// Shared state of the loops.
pub struct Shared {
    pub ctx: Arc<RunContext>,
    /// The target's keep-alive connections.
    pub endpoint: Arc<Endpoint>,
    pub flows: Vec<Arc<FlowDef>>,
    pub pools: Vec<Arc<Pool>>,
    pub recorder: Arc<Mutex<Recorder>>,
    pub stop: Arc<AtomicBool>,
    pub in_flight: Arc<AtomicUsize>,
    pub started: Arc<AtomicU64>,
    pub max_in_flight: usize,
}

impl Shared {
    fn current_step(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        totp::step_of((wall + self.ctx.clock_offset.load(Ordering::SeqCst)).max(0) as u64)
    }

    /// Every flow the run may start has been started.
    fn exhausted(&self, limit: Option<u64>) -> bool {
        limit.is_some_and(|l| self.started.load(Ordering::SeqCst) >= l)
    }

    /// Claims one of the `limit` flows a run may start.
    fn claim(&self, limit: Option<u64>) -> bool {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        limit.is_none_or(|l| n < l)
    }
}

/// Runs one flow with `user`, recording every step and the flow.
async fn run_flow(
    shared: &Shared,
    index: usize,
    user: &mut PoolUser,
    intended: Instant,
    recorder: &Mutex<Recorder>,
) {
    let flow = &shared.flows[index];
    let actual = Instant::now();
    let mut session = shared
        .ctx
        .resume(std::mem::take(&mut user.vars), shared.ctx.redactor.child());
    let mut transport = LoadTransport::new(&shared.endpoint, &shared.ctx.http);
    let (mut failed, mut check_failed) = (false, false);
    for (i, step) in flow.scenario.scenario.steps.iter().enumerate() {
        let t0 = Instant::now();
        let result = session
            .run_step_via(Phase::Steps, i, step, &mut transport)
            .await;
        let end = Instant::now();
        // Only the first request can wait on the schedule; later ones start when the
        // previous answer arrives, so their own time is their latency.
        let latency = if i == 0 { end - intended } else { end - t0 };
        check_failed |= result
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Failed);
        let blocking = result.is_blocking();
        recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .step(&step.name.value, &result, latency);
        if blocking {
            failed = true;
            break;
        }
    }
    let end = Instant::now();
    user.vars = std::mem::take(&mut session.vars);
    if flow.uses_totp {
        user.last_step = Some(shared.current_step());
    }
    recorder.lock().unwrap_or_else(|e| e.into_inner()).flow(
        end - intended,
        end - actual,
        failed,
        check_failed,
    );
}

/// One phase (warmup or measurement) of `length`, recording into `recorder`.
pub async fn run_phase(
    shared: Arc<Shared>,
    plan: &Plan,
    length: Duration,
    recorder: Arc<Mutex<Recorder>>,
    ramp: bool,
) {
    match plan.model {
        Model::Closed => closed(shared, plan, length, recorder, ramp).await,
        Model::Open => open(shared, plan, length, recorder, ramp).await,
    }
}

async fn closed(
    shared: Arc<Shared>,
    plan: &Plan,
    length: Duration,
    recorder: Arc<Mutex<Recorder>>,
    ramp: bool,
) {
    let start = Instant::now();
    let peak = plan.peak().ceil() as usize;
    let plan = Arc::new(plan.clone());
    let mut set = tokio::task::JoinSet::new();
    for vu in 0..peak {
        let (shared, plan, recorder) = (shared.clone(), plan.clone(), recorder.clone());
        set.spawn(async move {
            let index = vu % shared.flows.len();
            loop {
                let elapsed = start.elapsed();
                if elapsed >= length
                    || shared.stop.load(Ordering::SeqCst)
                    || shared.exhausted(plan.iterations)
                {
                    return;
                }
                let active = if ramp {
                    plan.level_at(elapsed, true)
                } else {
                    plan.level_at(Duration::ZERO, false)
                };
                if (vu as f64) >= active.round() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let Some(mut user) = shared.pools[index].take(|| shared.current_step()) else {
                    // Every user of the pool is cooling down (one-time codes) or used up.
                    recorder
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .starts
                        .pool_waits += 1;
                    if shared.pools[index].single_use && shared.pools[index].is_empty() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if !shared.claim(plan.iterations) {
                    shared.pools[index].give_back(user);
                    shared.stop.store(true, Ordering::SeqCst);
                    return;
                }
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                run_flow(&shared, index, &mut user, Instant::now(), &recorder).await;
                shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                shared.pools[index].give_back(user);
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open(
    shared: Arc<Shared>,
    plan: &Plan,
    length: Duration,
    recorder: Arc<Mutex<Recorder>>,
    ramp: bool,
) {
    let start = tokio::time::Instant::now();
    let mut offset = Duration::ZERO;
    let mut next_flow = 0usize;
    // Starts fall where the integral of the rate reaches the next whole flow, so a ramp
    // from zero starts on time instead of waiting 1/rate at its first tiny rate.
    let mut credit = if ramp { 0.0_f64 } else { 1.0 };
    let mut starts = super::metrics::Starts::default();
    let level = |t: Duration| {
        if ramp {
            plan.level_at(t, true)
        } else {
            plan.level_at(Duration::ZERO, false)
        }
    };
    while offset < length
        && !shared.stop.load(Ordering::SeqCst)
        && !shared.exhausted(plan.iterations)
    {
        // (The epsilon absorbs the rounding of many small increments.)
        if credit < 1.0 - 1e-9 {
            let rate = level(offset);
            let dt = if rate <= 0.0 {
                0.01
            } else {
                ((1.0 - credit) / rate).min(0.01)
            };
            offset += Duration::from_secs_f64(dt);
            credit += rate.max(0.0) * dt;
            continue;
        }
        credit = (credit - 1.0).max(0.0);
        let intended = start + offset;
        // Only a start still ahead waits on a timer: at thousands of starts a second the
        // timer wakes once a millisecond and the starts already due go at once.
        let now = tokio::time::Instant::now();
        if intended > now {
            tokio::time::sleep_until(intended).await;
        }
        // (Counted here, added to the recorder when the phase ends: no lock per start.)
        starts.scheduled += 1;
        if intended.elapsed() > Duration::from_millis(10) {
            starts.late += 1;
        }
        if shared.in_flight.load(Ordering::SeqCst) >= shared.max_in_flight {
            starts.dropped_in_flight += 1;
            continue;
        }
        let index = next_flow % shared.flows.len();
        next_flow += 1;
        let Some(mut user) = shared.pools[index].take(|| shared.current_step()) else {
            starts.dropped_pool += 1;
            continue;
        };
        if !shared.claim(plan.iterations) {
            shared.pools[index].give_back(user);
            shared.stop.store(true, Ordering::SeqCst);
            break;
        }
        // Detached tasks (no JoinSet: its bookkeeping takes a lock per start and per end);
        // the phase ends when the in-flight count, kept by a guard that also runs if a
        // flow panics, is back to zero.
        let guard = InFlight::enter(&shared);
        let recorder = recorder.clone();
        let intended = intended.into_std();
        tokio::spawn(async move {
            let shared = &guard.0;
            run_flow(shared, index, &mut user, intended, &recorder).await;
            shared.pools[index].give_back(user);
            drop(guard);
        });
    }
    {
        let mut r = recorder.lock().unwrap_or_else(|e| e.into_inner());
        r.starts.scheduled += starts.scheduled;
        r.starts.late += starts.late;
        r.starts.dropped_in_flight += starts.dropped_in_flight;
        r.starts.dropped_pool += starts.dropped_pool;
    }
    while shared.in_flight.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One flow in flight (open model): counted in `Shared::in_flight` until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Users a flow needs to sustain `rate` flows/s when one flow takes `flow_time`: a TOTP
/// flow can reuse a user only in a later 30-s step; a flow without setup uses each user
/// once (`total_flows`).
pub fn pool_needed(flow: &FlowDef, rate: f64, flow_time: Duration, total_flows: f64) -> usize {
    if flow.shared {
        return 1;
    }
    if flow.single_use {
        return (total_flows * 1.05).ceil() as usize + 2;
    }
    let busy = flow_time.as_secs_f64()
        + if flow.uses_totp {
            totp::STEP_SECONDS as f64
        } else {
            0.0
        };
    (rate * busy * 1.1).ceil() as usize + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_recycled_copy_is_the_entry_again() {
        let entry = json!({"target": {"client_id": "c"}, "vars": {"token": "t"}});
        let assigned = ["mfa_token".to_owned(), "vars".to_owned()];
        let mut copy = entry.clone();
        copy["mfa_token"] = json!("captured");
        copy["vars"] = json!({"token": "overwritten"});
        reset_to(&mut copy, &entry, &assigned);
        assert_eq!(copy, entry);
        let mut odd = json!("not an object");
        reset_to(&mut odd, &entry, &assigned);
        assert_eq!(odd, entry);
    }
}

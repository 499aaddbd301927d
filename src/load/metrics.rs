//! What a load run measures, in bounded memory: HdrHistograms (microseconds, 3 significant
//! digits) per step and per flow, corrected (from the intended start) and uncorrected,
//! error counts by kind, check failures by requirement, and a per-second timeline.

use crate::engine::result::{CheckStatus, ErrorKind, StepResult};
use crate::scenario::model::Severity;
use crate::transport::TransportError;
use hdrhistogram::Histogram;
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency recorded: one hour, in microseconds.
const HIGHEST_US: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

fn record(h: &mut Histogram<u64>, latency: Duration) {
    let us = (latency.as_micros() as u64).clamp(1, HIGHEST_US);
    h.record(us).expect("value within bounds");
}

#[derive(Debug)]
pub struct StepStats {
    pub latency: Histogram<u64>,
    pub count: u64,
    pub errors: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Starts {
    /// Flows the schedule called for.
    pub scheduled: u64,
    /// Started more than 10 ms after their intended time (the generator fell behind).
    pub late: u64,
    /// Not started: no pool user was free.
    pub dropped_pool: u64,
    /// Not started: too many flows in flight.
    pub dropped_in_flight: u64,
    /// Closed model: times a virtual user found no pool user ready and had to wait.
    pub pool_waits: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckFailure {
    pub requirement: String,
    pub severity: Severity,
    pub count: u64,
    /// One failure message (redacted), to see what went wrong.
    pub sample: String,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since measurement started (end of the interval).
    pub t: f64,
    pub flows: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub struct Recorder {
    /// Flows that succeeded, from their intended start: the latency users saw.
    pub flow_corrected: Histogram<u64>,
    pub flow_uncorrected: Histogram<u64>,
    /// Failed flows (an error or a failed check), apart: a failure is often faster (or,
    /// timing out, slower) than the flow it cut short.
    pub flow_failed: Histogram<u64>,
    pub flows: u64,
    pub flows_failed: u64,
    pub flows_with_check_failures: u64,
    pub requests: u64,
    pub request_errors: u64,
    pub steps: IndexMap<String, StepStats>,
    pub errors: BTreeMap<String, u64>,
    pub checks: BTreeMap<(String, Severity), CheckFailure>,
    pub starts: Starts,
    pub timeline: Vec<TimelinePoint>,
    interval: Histogram<u64>,
    interval_steps: IndexMap<String, Histogram<u64>>,
    interval_flows: u64,
    interval_requests: u64,
    interval_errors: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            flow_corrected: histogram(),
            flow_uncorrected: histogram(),
            flow_failed: histogram(),
            flows: 0,
            flows_failed: 0,
            flows_with_check_failures: 0,
            requests: 0,
            request_errors: 0,
            steps: IndexMap::new(),
            errors: BTreeMap::new(),
            checks: BTreeMap::new(),
            starts: Starts::default(),
            timeline: Vec::new(),
            interval: histogram(),
            interval_steps: IndexMap::new(),
            interval_flows: 0,
            interval_requests: 0,
            interval_errors: 0,
        }
    }
}

/// The error kind a step's failure is counted under.
pub fn error_kind(step: &StepResult) -> Option<String> {
    if let Some(error) = &step.error {
        let kind = match (error.kind, &error.transport) {
            (ErrorKind::Control, _) => "control",
            (ErrorKind::Scenario, _) => "scenario",
            (ErrorKind::Transport, Some(TransportError::Timeout { .. })) => "timeout",
            (ErrorKind::Transport, Some(TransportError::Tls(_))) => "tls",
            (ErrorKind::Transport, Some(TransportError::BodyTooLarge)) => "body_too_large",
            (ErrorKind::Transport, Some(TransportError::Reset(_))) => "connection_reset",
            (ErrorKind::Transport, Some(TransportError::Connect(_))) => "connect",
            (
                ErrorKind::Transport,
                Some(
                    TransportError::InvalidResponse(_)
                    | TransportError::InvalidRequest(_)
                    | TransportError::Other(_),
                )
                | None,
            ) => "transport",
        };
        return Some(kind.to_owned());
    }
    match step.exchange.as_ref().and_then(|x| x.status) {
        Some(status) if status >= 500 => Some(format!("http_{status}")),
        _ => None,
    }
}

impl Recorder {
    /// One step of a flow: `latency` is the request's own time, `corrected` the time from
    /// the flow's intended start for the first step (the same otherwise).
    pub fn step(&mut self, name: &str, step: &StepResult, corrected: Duration) {
        // (Looked up before inserting: no key allocated for a step already seen.)
        if !self.steps.contains_key(name) {
            self.steps.insert(
                name.to_owned(),
                StepStats {
                    latency: histogram(),
                    count: 0,
                    errors: 0,
                },
            );
        }
        if !self.interval_steps.contains_key(name) {
            self.interval_steps.insert(name.to_owned(), histogram());
        }
        record(&mut self.interval_steps[name], corrected);
        let stats = &mut self.steps[name];
        stats.count += 1;
        record(&mut stats.latency, corrected);
        self.requests += 1;
        self.interval_requests += 1;
        if let Some(kind) = error_kind(step) {
            stats.errors += 1;
            self.request_errors += 1;
            self.interval_errors += 1;
            *self.errors.entry(kind).or_default() += 1;
        }
        for check in step
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failed)
        {
            let entry = self
                .checks
                .entry((check.requirement.clone(), check.severity))
                .or_insert_with(|| CheckFailure {
                    requirement: check.requirement.clone(),
                    severity: check.severity,
                    count: 0,
                    sample: format!("{}: {}", name, check.message),
                });
            entry.count += 1;
        }
    }

    pub fn flow(
        &mut self,
        corrected: Duration,
        uncorrected: Duration,
        failed: bool,
        check_failed: bool,
    ) {
        if failed {
            record(&mut self.flow_failed, corrected);
            self.flows_failed += 1;
        } else {
            record(&mut self.flow_corrected, corrected);
            record(&mut self.flow_uncorrected, uncorrected);
            record(&mut self.interval, corrected);
        }
        self.flows += 1;
        self.interval_flows += 1;
        if check_failed {
            self.flows_with_check_failures += 1;
        }
    }

    /// Closes the current one-second interval: its timeline point, and the interval
    /// histograms for the log: `("flow", h)` first, then one per step.
    pub fn tick(&mut self, t: f64) -> Vec<(String, Histogram<u64>)> {
        let interval = std::mem::replace(&mut self.interval, histogram());
        let steps: Vec<(String, Histogram<u64>)> = self
            .interval_steps
            .iter_mut()
            .map(|(name, h)| (format!("step:{name}"), std::mem::replace(h, histogram())))
            .collect();
        let ms = |q: f64| {
            if interval.is_empty() {
                0.0
            } else {
                interval.value_at_quantile(q) as f64 / 1000.0
            }
        };
        self.timeline.push(TimelinePoint {
            t,
            flows: self.interval_flows,
            requests: self.interval_requests,
            errors: self.interval_errors,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        });
        self.interval_flows = 0;
        self.interval_requests = 0;
        self.interval_errors = 0;
        let mut all = vec![("flow".to_owned(), interval)];
        all.extend(steps);
        all
    }
}

/// Percentiles of a histogram in milliseconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                p50: 0.0,
                p90: 0.0,
                p95: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }

    /// The named percentile (`p50`, `p90`, `p95`, `p99`, `p99.9`, `max`, `mean`).
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" | "median" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p99.9" | "p999" => self.p999,
            "max" => self.max,
            "mean" | "avg" => self.mean,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 100);
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(p.get("p99.9"), Some(p.p999));
        assert_eq!(p.get("p42"), None);
    }

    #[test]
    fn intervals_reset() {
        let mut r = Recorder::default();
        r.flow(
            Duration::from_millis(5),
            Duration::from_millis(4),
            false,
            false,
        );
        let interval = r.tick(1.0);
        assert_eq!(interval[0].0, "flow");
        assert_eq!(interval[0].1.len(), 1);
        assert_eq!(r.timeline[0].flows, 1);
        assert_eq!(r.tick(2.0)[0].1.len(), 0);
        assert_eq!(r.timeline[1].flows, 0);
        assert_eq!(r.flows, 1);
    }
}

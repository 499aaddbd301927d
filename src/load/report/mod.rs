//! Load reports: the model (written as `load.json`) and its renderings, `load.md` and a
//! self-contained `load.html`.

mod html;
mod markdown;

pub use html::html;
pub use markdown::markdown;

use crate::load::metrics::{CheckFailure, Percentiles, Recorder, Starts, TimelinePoint};
use crate::load::plan::Plan;
use crate::load::thresholds::{Measured, ThresholdResult};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub schema_version: u32,
    pub tool: &'static str,
    pub version: &'static str,
    pub started_at: String,
    /// Measured seconds (warmup excluded).
    pub duration_s: f64,
    pub interrupted: bool,
    pub target: String,
    pub base_url: String,
    pub scenarios: Vec<String>,
    pub options: Options,
    pub flows: Flows,
    pub requests: Requests,
    pub steps: Vec<StepReport>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub check_failures: Vec<CheckFailure>,
    pub starts: Starts,
    pub timeline: Vec<TimelinePoint>,
    pub thresholds: Vec<ThresholdResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    pub warnings: Vec<String>,
    /// Percentile distribution of flow latency (corrected and uncorrected) for plotting.
    pub distribution: Distribution,
}

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub plan: Plan,
    pub pool_size: usize,
    pub pool_needed: usize,
    pub max_in_flight: usize,
    pub thresholds: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flows {
    pub count: u64,
    pub failed: u64,
    pub with_check_failures: u64,
    pub throughput_per_s: f64,
    /// Of the flows that succeeded, from the intended start (open model: the schedule), as
    /// users would see it.
    pub latency: Percentiles,
    /// The same from the actual start, as a coordinated-omission-prone tool would report it.
    pub latency_uncorrected: Percentiles,
    /// Of the failed flows, apart (from the intended start).
    pub failed_latency: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Requests {
    pub count: u64,
    pub errors: u64,
    pub throughput_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub latency: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub file: String,
    pub deltas: Vec<Delta>,
    pub max_regression_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    pub metric: String,
    pub before: f64,
    pub after: f64,
    pub change_percent: f64,
    pub regressed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// (percentile, corrected ms, uncorrected ms)
    pub points: Vec<(f64, f64, f64)>,
}

fn distribution(corrected: &Histogram<u64>, uncorrected: &Histogram<u64>) -> Distribution {
    let qs = [
        0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0,
    ];
    let at = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        }
    };
    Distribution {
        points: qs
            .iter()
            .map(|q| (q * 100.0, at(corrected, *q), at(uncorrected, *q)))
            .collect(),
    }
}

impl Measured for LoadReport {
    fn flow(&self) -> &Percentiles {
        &self.flows.latency
    }
    fn step(&self, name: &str) -> Option<&Percentiles> {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.latency)
    }
    fn error_rate(&self) -> f64 {
        if self.requests.count == 0 {
            0.0
        } else {
            self.requests.errors as f64 / self.requests.count as f64
        }
    }
    fn check_failure_rate(&self) -> f64 {
        if self.flows.count == 0 {
            0.0
        } else {
            self.flows.with_check_failures as f64 / self.flows.count as f64
        }
    }
    fn throughput(&self) -> f64 {
        self.flows.throughput_per_s
    }
}

/// Facts about the run that the recorder does not hold.
pub struct RunFacts {
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub target: String,
    pub base_url: String,
    pub scenarios: Vec<String>,
    pub options: Options,
    pub warnings: Vec<String>,
}

impl LoadReport {
    pub fn build(recorder: &Recorder, facts: RunFacts) -> LoadReport {
        let seconds = facts.duration_s.max(1e-9);
        LoadReport {
            schema_version: 1,
            tool: "mfa-conform",
            version: env!("CARGO_PKG_VERSION"),
            started_at: facts.started_at,
            duration_s: facts.duration_s,
            interrupted: facts.interrupted,
            target: facts.target,
            base_url: facts.base_url,
            scenarios: facts.scenarios,
            options: facts.options,
            flows: Flows {
                count: recorder.flows,
                failed: recorder.flows_failed,
                with_check_failures: recorder.flows_with_check_failures,
                throughput_per_s: recorder.flows as f64 / seconds,
                latency: Percentiles::of(&recorder.flow_corrected),
                latency_uncorrected: Percentiles::of(&recorder.flow_uncorrected),
                failed_latency: Percentiles::of(&recorder.flow_failed),
            },
            requests: Requests {
                count: recorder.requests,
                errors: recorder.request_errors,
                throughput_per_s: recorder.requests as f64 / seconds,
            },
            steps: recorder
                .steps
                .iter()
                .map(|(name, s)| StepReport {
                    name: name.clone(),
                    count: s.count,
                    errors: s.errors,
                    latency: Percentiles::of(&s.latency),
                })
                .collect(),
            errors_by_kind: recorder.errors.clone(),
            check_failures: recorder.checks.values().cloned().collect(),
            starts: recorder.starts.clone(),
            timeline: recorder.timeline.clone(),
            thresholds: Vec::new(),
            baseline: None,
            warnings: facts.warnings,
            distribution: distribution(&recorder.flow_corrected, &recorder.flow_uncorrected),
        }
    }

    /// Compares with an earlier `load.json`: flow p50/p95/p99 and each step's p99.
    pub fn compare(
        &mut self,
        file: &str,
        baseline: &serde_json::Value,
        max_regression: Option<f64>,
    ) {
        let mut deltas = Vec::new();
        let mut push = |metric: String, before: Option<f64>, after: f64| {
            let Some(before) = before.filter(|b| *b > 0.0) else {
                return;
            };
            let change = (after - before) / before * 100.0;
            deltas.push(Delta {
                regressed: max_regression.is_some_and(|m| change > m),
                metric,
                before,
                after,
                change_percent: change,
            });
        };
        for p in ["p50", "p95", "p99"] {
            push(
                format!("flow:{p}"),
                baseline["flows"]["latency"][p].as_f64(),
                self.flows.latency.get(p).unwrap_or(0.0),
            );
        }
        for step in &self.steps {
            let before = baseline["steps"]
                .as_array()
                .and_then(|steps| steps.iter().find(|s| s["name"] == step.name.as_str()))
                .and_then(|s| s["latency"]["p99"].as_f64());
            push(format!("step:{}:p99", step.name), before, step.latency.p99);
        }
        let before = baseline["flows"]["throughput_per_s"].as_f64();
        if let Some(before) = before.filter(|b| *b > 0.0) {
            let after = self.flows.throughput_per_s;
            let change = (after - before) / before * 100.0;
            deltas.push(Delta {
                metric: "throughput".into(),
                before,
                after,
                change_percent: change,
                // Throughput regresses when it drops.
                regressed: max_regression.is_some_and(|m| -change > m),
            });
        }
        self.baseline = Some(Baseline {
            file: file.to_owned(),
            deltas,
            max_regression_percent: max_regression,
        });
    }

    pub fn regressed(&self) -> bool {
        self.baseline
            .as_ref()
            .is_some_and(|b| b.deltas.iter().any(|d| d.regressed))
    }

    /// More than half the flows failed (a check or an error): whatever the thresholds say,
    /// the run did not measure a working flow.
    pub fn mostly_failed(&self) -> bool {
        self.flows.failed * 2 > self.flows.count
    }

    pub fn thresholds_failed(&self) -> bool {
        self.thresholds.iter().any(|t| !t.passed)
    }
}

/// Writes `load.json`, `load.md` and `load.html` into `dir`.
pub fn write_all(report: &LoadReport, dir: &std::path::Path) -> std::io::Result<()> {
    let mut json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    json.push('\n');
    std::fs::write(dir.join("load.json"), json)?;
    std::fs::write(dir.join("load.md"), markdown(report))?;
    std::fs::write(dir.join("load.html"), html(report))?;
    Ok(())
}

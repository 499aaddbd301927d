//! Load reports: `load.json` (the model), `load.md`, and a self-contained `load.html` with
//! an SVG latency-percentile plot and a throughput/latency-over-time chart.

use super::metrics::{CheckFailure, Percentiles, Recorder, Starts, TimelinePoint};
use super::plan::Plan;
use super::thresholds::{Measured, ThresholdResult};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

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
    /// From the intended start (open model: the schedule), as users would see it.
    pub latency: Percentiles,
    /// From the actual start, as a coordinated-omission-prone tool would report it.
    pub latency_uncorrected: Percentiles,
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

    pub fn thresholds_failed(&self) -> bool {
        self.thresholds.iter().any(|t| !t.passed)
    }
}

fn row(p: &Percentiles) -> String {
    format!(
        "{:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}",
        p.p50, p.p90, p.p95, p.p99, p.p999, p.max
    )
}

pub fn markdown(r: &LoadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# mfa-conform load: {} against `{}`\n",
        r.scenarios.join(", "),
        r.target
    );
    if r.interrupted {
        let _ = writeln!(
            out,
            "**Interrupted**: the figures cover the time that ran.\n"
        );
    }
    let _ = writeln!(
        out,
        "{:?} model, {:.1} s measured, pool {} users (needed {}). {} flows ({:.1}/s), {} requests ({:.1}/s), {} failed flows, {} request errors.\n",
        r.options.plan.model,
        r.duration_s,
        r.options.pool_size,
        r.options.pool_needed,
        r.flows.count,
        r.flows.throughput_per_s,
        r.requests.count,
        r.requests.throughput_per_s,
        r.flows.failed,
        r.requests.errors
    );
    let _ = writeln!(
        out,
        "## Latency (ms)\n\n| | p50 | p90 | p95 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| flow (from intended start) | {} |",
        row(&r.flows.latency)
    );
    let _ = writeln!(
        out,
        "| flow (uncorrected) | {} |",
        row(&r.flows.latency_uncorrected)
    );
    for s in &r.steps {
        let _ = writeln!(out, "| step `{}` | {} |", s.name, row(&s.latency));
    }
    let _ = writeln!(
        out,
        "\nStarts: {} scheduled, {} late, {} dropped (pool), {} dropped (in flight).\n",
        r.starts.scheduled, r.starts.late, r.starts.dropped_pool, r.starts.dropped_in_flight
    );
    if !r.errors_by_kind.is_empty() {
        let _ = writeln!(out, "## Errors by kind\n\n| kind | count |\n|---|---|");
        for (k, v) in &r.errors_by_kind {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        out.push('\n');
    }
    if !r.check_failures.is_empty() {
        let _ = writeln!(
            out,
            "## Check failures under load\n\n| requirement | severity | count | example |\n|---|---|---|---|"
        );
        for c in &r.check_failures {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                c.requirement,
                c.severity.as_str(),
                c.count,
                c.sample.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(
            out,
            "## Thresholds\n\n| threshold | actual | result |\n|---|---|---|"
        );
        for t in &r.thresholds {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                t.threshold,
                t.actual
                    .map(|a| format!("{a:.3}"))
                    .unwrap_or_else(|| "not measured".into()),
                if t.passed { "pass" } else { "FAIL" }
            );
        }
        out.push('\n');
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            out,
            "## Against baseline `{}`\n\n| metric | before | after | change | |\n|---|---|---|---|---|",
            b.file
        );
        for d in &b.deltas {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.2} | {:+.1}% | {} |",
                d.metric,
                d.before,
                d.after,
                d.change_percent,
                if d.regressed { "REGRESSED" } else { "" }
            );
        }
        out.push('\n');
    }
    for w in &r.warnings {
        let _ = writeln!(out, "> warning: {w}");
    }
    out
}

/// Maps a value range onto pixels.
fn scale(v: f64, lo: f64, hi: f64, px_lo: f64, px_hi: f64) -> f64 {
    if hi <= lo {
        return px_lo;
    }
    px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo)
}

fn polyline(points: &[(f64, f64)], color: &str) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
        coords.join(" ")
    )
}

/// Latency by percentile, x on the usual "nines" scale (-log10(1 - p)).
fn percentile_svg(r: &LoadReport) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 320.0, 60.0, 280.0, 20.0, 700.0);
    let nines = |p: f64| -((1.0 - p / 100.0).max(1e-5)).log10();
    let max_y = r
        .distribution
        .points
        .iter()
        .map(|p| p.1.max(p.2))
        .fold(1.0, f64::max);
    let pts = |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        r.distribution
            .points
            .iter()
            .map(|p| {
                (
                    scale(nines(p.0), 0.0, 5.0, left, right),
                    scale(pick(p), 0.0, max_y, bottom, top),
                )
            })
            .collect()
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#888\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#888\"/>"
    );
    for (label, p) in [
        ("0%", 0.0),
        ("90%", 90.0),
        ("99%", 99.0),
        ("99.9%", 99.9),
        ("99.99%", 99.99),
        ("99.999%", 99.999),
    ] {
        let x = scale(nines(p), 0.0, 5.0, left, right);
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            bottom + 15.0
        );
    }
    for i in 0..=4 {
        let v = max_y * i as f64 / 4.0;
        let y = scale(v, 0.0, max_y, bottom, top);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{y:.1}\" text-anchor=\"end\">{v:.1} ms</text>",
            left - 4.0
        );
    }
    svg.push_str(&polyline(&pts(|p| p.1), "#c0392b"));
    svg.push_str(&polyline(&pts(|p| p.2), "#2980b9"));
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"14\" fill=\"#c0392b\">from intended start</text><text x=\"{}\" y=\"14\" fill=\"#2980b9\">uncorrected</text></svg>",
        left + 10.0,
        left + 170.0
    );
    svg
}

/// Throughput (flows/s) and p99 (ms) per second.
fn timeline_svg(r: &LoadReport) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 260.0, 60.0, 230.0, 20.0, 660.0);
    let t_max = r.timeline.last().map(|p| p.t).unwrap_or(1.0).max(1.0);
    let flows_max = r
        .timeline
        .iter()
        .map(|p| p.flows as f64)
        .fold(1.0, f64::max);
    let p99_max = r.timeline.iter().map(|p| p.p99_ms).fold(1.0, f64::max);
    let flows: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .map(|p| {
            (
                scale(p.t, 0.0, t_max, left, right),
                scale(p.flows as f64, 0.0, flows_max, bottom, top),
            )
        })
        .collect();
    let p99: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .map(|p| {
            (
                scale(p.t, 0.0, t_max, left, right),
                scale(p.p99_ms, 0.0, p99_max, bottom, top),
            )
        })
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#888\"/>"
    );
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{}\">0 s</text><text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{t_max:.0} s</text>",
        bottom + 15.0,
        bottom + 15.0
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{top}\" text-anchor=\"end\" fill=\"#27ae60\">{flows_max:.0}/s</text>",
        left - 4.0
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{top}\" fill=\"#8e44ad\">{p99_max:.1} ms</text>",
        right + 4.0
    );
    svg.push_str(&polyline(&flows, "#27ae60"));
    svg.push_str(&polyline(&p99, "#8e44ad"));
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"14\" fill=\"#27ae60\">flows/s</text><text x=\"{}\" y=\"14\" fill=\"#8e44ad\">p99 latency</text></svg>",
        left + 10.0,
        left + 90.0
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn html(r: &LoadReport) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mfa-conform load report</title><style>body{font-family:sans-serif;max-width:780px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>Load: {}</h1><p>Target <code>{}</code> ({}), started {}, {:.1} s measured{}.</p>",
        escape(&r.scenarios.join(", ")),
        escape(&r.target),
        escape(&r.base_url),
        escape(&r.started_at),
        r.duration_s,
        if r.interrupted {
            ", <b>interrupted</b>"
        } else {
            ""
        }
    );
    let _ = write!(
        out,
        "<p>{} flows ({:.1}/s), {} requests ({:.1}/s), {} failed flows, {} request errors; starts: {} scheduled, {} late, {} dropped.</p>",
        r.flows.count,
        r.flows.throughput_per_s,
        r.requests.count,
        r.requests.throughput_per_s,
        r.flows.failed,
        r.requests.errors,
        r.starts.scheduled,
        r.starts.late,
        r.starts.dropped_pool + r.starts.dropped_in_flight
    );
    out.push_str("<h2>Latency by percentile</h2>");
    out.push_str(&percentile_svg(r));
    out.push_str("<h2>Over time</h2>");
    out.push_str(&timeline_svg(r));
    out.push_str("<h2>Percentiles (ms)</h2><table><tr><th></th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    let mut tr = |name: &str, p: &Percentiles| {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(name),
            p.p50,
            p.p90,
            p.p95,
            p.p99,
            p.p999,
            p.max
        );
    };
    tr("flow (from intended start)", &r.flows.latency);
    tr("flow (uncorrected)", &r.flows.latency_uncorrected);
    for s in &r.steps {
        tr(&format!("step {}", s.name), &s.latency);
    }
    out.push_str("</table>");
    if !r.thresholds.is_empty() {
        out.push_str("<h2>Thresholds</h2><ul>");
        for t in &r.thresholds {
            let _ = write!(
                out,
                "<li><code>{}</code>: {}</li>",
                escape(&t.threshold),
                if t.passed { "pass" } else { "<b>FAIL</b>" }
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

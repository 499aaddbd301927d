//! `load.html`: self-contained, with an SVG latency-percentile plot and a
//! throughput/latency-over-time chart.

use super::LoadReport;
use crate::load::metrics::Percentiles;
use std::fmt::Write;

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
    tr("successful flow (from intended start)", &r.flows.latency);
    tr(
        "successful flow (uncorrected)",
        &r.flows.latency_uncorrected,
    );
    if r.flows.failed > 0 {
        tr("failed flow (apart)", &r.flows.failed_latency);
    }
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

//! `load.md`: the report as Markdown tables (also printed at the end of a run).

use super::LoadReport;
use crate::load::metrics::Percentiles;
use std::fmt::Write;

/// The latency table: successful flows (corrected, uncorrected), failed flows, each step.
fn latency_table(r: &LoadReport, out: &mut String) {
    let _ = writeln!(
        out,
        "## Latency (ms)\n\n| | p50 | p90 | p95 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| successful flow (from intended start) | {} |",
        row(&r.flows.latency)
    );
    let _ = writeln!(
        out,
        "| successful flow (uncorrected) | {} |",
        row(&r.flows.latency_uncorrected)
    );
    if r.flows.failed > 0 {
        let _ = writeln!(
            out,
            "| failed flow ({}, apart) | {} |",
            r.flows.failed,
            row(&r.flows.failed_latency)
        );
    }
    for s in &r.steps {
        let _ = writeln!(out, "| step `{}` | {} |", s.name, row(&s.latency));
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
    latency_table(r, &mut out);
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

//! Command-line options of `mfa-conform load`.

use super::thresholds::Threshold;
use crate::units::{Percent, Rate, Span};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: crate::target::TargetArgs,
    /// Scenario to replay (repeatable; flows are mixed round-robin).
    #[arg(long = "scenario")]
    pub scenario: Vec<String>,
    /// Replay every scenario with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Closed model: this many virtual users, each looping its flow.
    #[arg(long, conflicts_with = "rate")]
    pub vus: Option<usize>,
    /// Open model: flows started per second on a fixed schedule (`200` or `200/s`).
    #[arg(long)]
    pub rate: Option<Rate>,
    /// How long to measure (`30s`, `2m`). Default 10s unless --iterations or --stages.
    #[arg(long)]
    pub duration: Option<Span>,
    /// Stop after this many flows.
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Run this long before measuring; its results are discarded.
    #[arg(long)]
    pub warmup: Option<Span>,
    /// Ramping stages, `DURATION:TARGET,...`: `30s:100/s,2m:500/s,30s:0/s` (open model)
    /// or `30s:10,1m:50` (closed model, virtual users).
    #[arg(long)]
    pub stages: Option<String>,
    /// A YAML plan file with the same settings (command-line options win).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Users in the pool (default: sized from the rate and the flow).
    #[arg(long)]
    pub pool: Option<usize>,
    /// Flows in flight at most (open model); starts beyond it are dropped and counted.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Release gate, repeatable: `flow:p99<250ms`, `step:verify-otp:p95<100ms`,
    /// `errors<0.1%`, `checks<1%`, `throughput>100`.
    #[arg(long = "threshold")]
    pub thresholds: Vec<Threshold>,
    /// An earlier `load.json` to compare with.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// With --baseline: fail if flow p50/p95/p99 or step p99 got worse by more than this (`10%`).
    #[arg(long)]
    pub max_regression: Option<Percent>,
    /// Where to write load.json, load.md, load.html and load.hlog (default reports/<timestamp>/).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Progress line period when stderr is not a terminal.
    #[arg(long, default_value = "5s")]
    pub progress_every: Span,
    /// Generator threads (default: one per CPU core), as wrk's `-t`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

//! What a `load` run was asked to do: the command line merged over the plan file (the
//! command line wins), read and checked before anything starts.

use super::args::LoadArgs;
use super::plan::{Plan, PlanFile, PlanInput};
use super::thresholds::Threshold;
use crate::exit::Stop;
use crate::scenario::load::parse_yaml;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of one run.
pub struct Settings {
    pub plan: Plan,
    /// Stages given explicitly ramp from zero; a constant plan starts at its level.
    pub explicit_stages: bool,
    pub thresholds: Vec<Threshold>,
    /// An earlier `load.json` and where it came from.
    pub baseline: Option<(PathBuf, serde_json::Value)>,
    /// In percent.
    pub max_regression: Option<f64>,
    pub pool: Option<usize>,
    pub max_in_flight: usize,
    pub progress_every: Duration,
}

impl Settings {
    pub fn new(args: &LoadArgs) -> Result<Settings, Stop> {
        let file: PlanFile = match &args.plan {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Stop::bad(format!("{}: cannot read: {e}", path.display())))?;
                parse_yaml(path, &text).map_err(|e| Stop::bad(e.to_string()))?
            }
            None => PlanFile::default(),
        };
        // One model: --vus on the command line rules out the file's rate, and --rate its VUs.
        let input = PlanInput {
            vus: args.vus.or(file.vus.filter(|_| args.rate.is_none())),
            rate: args.rate.or(file.rate.filter(|_| args.vus.is_none())),
            duration: args.duration.or(file.duration).map(|d| d.0),
            iterations: args.iterations.or(file.iterations),
            warmup: args.warmup.or(file.warmup).map(|d| d.0),
            stages: args.stages.clone(),
            stage_list: file.stages.clone().filter(|_| args.stages.is_none()),
        };
        let plan = input.build().map_err(Stop::bad)?;
        let from_file = file
            .thresholds
            .iter()
            .map(|t| Threshold::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Stop::bad)?;
        let baseline = match &args.baseline {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Stop::bad(format!("--baseline {}: {e}", path.display())))?;
                let json = serde_json::from_str(&text).map_err(|e| {
                    Stop::bad(format!("--baseline {}: not JSON: {e}", path.display()))
                })?;
                Some((path.clone(), json))
            }
            None => None,
        };
        Ok(Settings {
            plan,
            explicit_stages: args.stages.is_some() || file.stages.is_some(),
            thresholds: args.thresholds.iter().cloned().chain(from_file).collect(),
            baseline,
            max_regression: args.max_regression.map(|p| p.0),
            pool: args.pool.or(file.pool),
            max_in_flight: args.max_in_flight,
            progress_every: args.progress_every.0,
        })
    }

    /// The threshold expressions, as written.
    pub fn threshold_exprs(&self) -> Vec<String> {
        self.thresholds.iter().map(|t| t.expr.clone()).collect()
    }
}

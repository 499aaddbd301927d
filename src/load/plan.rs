//! The load plan: model (closed VUs or open arrival rate), stages, duration, iterations,
//! warmup, thresholds. From the command line or a YAML plan file.

use crate::units::{Rate, Span};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How flows are started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// N virtual users, each looping its flow as soon as the previous one ends.
    Closed,
    /// Flows start on a fixed schedule (flows per second), however slow the target is.
    Open,
}

/// A ramp to `target` (VUs or flows/s) over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stage {
    #[serde(with = "secs")]
    pub duration: Duration,
    pub target: f64,
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub model: Model,
    /// Without stages: a constant level (VUs or flows/s) for `duration`.
    pub stages: Vec<Stage>,
    #[serde(with = "secs")]
    pub warmup: Duration,
    pub iterations: Option<u64>,
}

impl Plan {
    /// Total measured time of the stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The highest level any stage reaches.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// The level `t` into the measured run: linear ramps between stage targets; a plan
    /// without explicit stages holds its level from the start.
    pub fn level_at(&self, t: Duration, ramp_from_zero: bool) -> f64 {
        let mut start = Duration::ZERO;
        let mut from = if ramp_from_zero {
            0.0
        } else {
            self.stages.first().map(|s| s.target).unwrap_or(0.0)
        };
        for stage in &self.stages {
            let end = start + stage.duration;
            if t < end {
                let fraction = (t - start).as_secs_f64() / stage.duration.as_secs_f64().max(1e-9);
                return from + (stage.target - from) * fraction;
            }
            from = stage.target;
            start = end;
        }
        self.stages.last().map(|s| s.target).unwrap_or(0.0)
    }
}

/// A plan file: the same settings as the command line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub vus: Option<usize>,
    pub rate: Option<Rate>,
    pub duration: Option<Span>,
    pub iterations: Option<u64>,
    pub warmup: Option<Span>,
    pub stages: Option<Vec<StageSpec>>,
    #[serde(default)]
    pub thresholds: Vec<String>,
    pub pool: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Span,
    pub target: String,
}

/// `30s:100/s,2m:500/s,30s:0/s` (open) or `30s:10,1m:50` (closed).
pub fn parse_stages(text: &str, model: Model) -> Result<Vec<Stage>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|part| {
            let (d, target) = part
                .split_once(':')
                .ok_or_else(|| format!("stage {part:?}: write DURATION:TARGET, e.g. 30s:100/s"))?;
            let d = d
                .parse::<Span>()
                .map_err(|e| format!("stage duration {e}"))?;
            stage(d.0, target, model)
        })
        .collect()
}

fn stage(duration: Duration, target: &str, model: Model) -> Result<Stage, String> {
    let target = match model {
        Model::Open => target.parse::<Rate>().map_err(|e| e.to_string())?.0,
        Model::Closed => target
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("stage target {target:?}: a number of virtual users"))?
            as f64,
    };
    Ok(Stage { duration, target })
}

/// The settings as given (command line over plan file), before they become a [`Plan`].
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub vus: Option<usize>,
    pub rate: Option<Rate>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub warmup: Option<Duration>,
    pub stages: Option<String>,
    pub stage_list: Option<Vec<StageSpec>>,
}

impl PlanInput {
    pub fn build(&self) -> Result<Plan, String> {
        let model = if self.rate.is_some() {
            Model::Open
        } else if self.vus.is_some() {
            Model::Closed
        } else if let Some(text) = &self.stages {
            if text.contains("/") {
                Model::Open
            } else {
                Model::Closed
            }
        } else if let Some(list) = &self.stage_list {
            if list.iter().any(|s| s.target.contains('/')) {
                Model::Open
            } else {
                Model::Closed
            }
        } else {
            Model::Closed
        };
        let stages = if let Some(text) = &self.stages {
            parse_stages(text, model)?
        } else if let Some(list) = &self.stage_list {
            list.iter()
                .map(|s| stage(s.duration.0, &s.target, model))
                .collect::<Result<_, _>>()?
        } else {
            let level = match model {
                Model::Open => self.rate.map_or(10.0, |r| r.0),
                Model::Closed => self.vus.unwrap_or(1) as f64,
            };
            let length = match (self.duration, self.iterations) {
                (Some(d), _) => d,
                // Iterations alone: run until they are done (a day is the safety net).
                (None, Some(_)) => Duration::from_secs(86_400),
                (None, None) => Duration::from_secs(10),
            };
            vec![Stage {
                duration: length,
                target: level,
            }]
        };
        if stages.is_empty() {
            return Err("--stages has no stage".into());
        }
        if model == Model::Closed && stages.iter().all(|s| s.target < 1.0) {
            return Err("the closed model needs at least one virtual user".into());
        }
        let warmup = self.warmup.unwrap_or(Duration::ZERO);
        Ok(Plan {
            model,
            stages,
            warmup,
            iterations: self.iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_stages() {
        let stages = parse_stages("30s:100/s,2m:500/s,30s:0/s", Model::Open).unwrap();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[1].duration, Duration::from_secs(120));
        assert_eq!(stages[1].target, 500.0);
        assert!(parse_stages("30s", Model::Open).is_err());
    }

    #[test]
    fn ramps_are_linear() {
        let plan = PlanInput {
            stages: Some("10s:100/s,10s:100/s,10s:0/s".into()),
            ..PlanInput::default()
        }
        .build()
        .unwrap();
        assert_eq!(plan.model, Model::Open);
        assert_eq!(plan.level_at(Duration::from_secs(5), true), 50.0);
        assert_eq!(plan.level_at(Duration::from_secs(15), true), 100.0);
        assert_eq!(plan.level_at(Duration::from_secs(25), true), 50.0);
        assert_eq!(plan.duration(), Duration::from_secs(30));
        assert_eq!(plan.peak(), 100.0);
    }

    #[test]
    fn constant_plans() {
        let plan = PlanInput {
            vus: Some(8),
            duration: Some(Duration::from_secs(3)),
            ..PlanInput::default()
        }
        .build()
        .unwrap();
        assert_eq!(plan.model, Model::Closed);
        assert_eq!(plan.level_at(Duration::ZERO, false), 8.0);
        let plan = PlanInput {
            rate: Some(Rate(25.0)),
            ..PlanInput::default()
        }
        .build()
        .unwrap();
        assert_eq!(plan.model, Model::Open);
        assert_eq!(plan.duration(), Duration::from_secs(10));
    }
}

//! The load plan: model (closed VUs or open arrival rate), stages, duration, iterations,
//! warmup, thresholds. From the command line or a YAML plan file.

use crate::target::parse_duration;
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
    pub rate: Option<String>,
    pub duration: Option<String>,
    pub iterations: Option<u64>,
    pub warmup: Option<String>,
    pub stages: Option<Vec<StageSpec>>,
    #[serde(default)]
    pub thresholds: Vec<String>,
    pub pool: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: String,
    pub target: String,
}

/// `200`, `200/s`, `12000/m`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, per) = match text.split_once('/') {
        Some((n, unit)) => (n.trim(), unit.trim()),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (write e.g. 200/s)"))?;
    let seconds = match per {
        "s" | "sec" | "1s" => 1.0,
        "m" | "min" | "1m" => 60.0,
        other => {
            return Err(format!(
                "{text:?}: unknown rate unit {other:?} (use /s or /m)"
            ));
        }
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?}: a rate must be zero or more"));
    }
    Ok(value / seconds)
}

fn duration(text: &str, what: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("{what} {text:?} is not a duration (e.g. 30s, 2m)"))
}

/// `30s:100/s,2m:500/s,30s:0/s` (open) or `30s:10,1m:50` (closed).
pub fn parse_stages(text: &str, model: Model) -> Result<Vec<Stage>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|part| {
            let (d, target) = part
                .split_once(':')
                .ok_or_else(|| format!("stage {part:?}: write DURATION:TARGET, e.g. 30s:100/s"))?;
            stage(d, target, model)
        })
        .collect()
}

fn stage(d: &str, target: &str, model: Model) -> Result<Stage, String> {
    let target = match model {
        Model::Open => parse_rate(target)?,
        Model::Closed => target
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("stage target {target:?}: a number of virtual users"))?
            as f64,
    };
    Ok(Stage {
        duration: duration(d.trim(), "stage duration")?,
        target,
    })
}

/// The settings as given (command line over plan file), before they become a [`Plan`].
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub vus: Option<usize>,
    pub rate: Option<String>,
    pub duration: Option<String>,
    pub iterations: Option<u64>,
    pub warmup: Option<String>,
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
                .map(|s| stage(&s.duration, &s.target, model))
                .collect::<Result<_, _>>()?
        } else {
            let level = match model {
                Model::Open => parse_rate(self.rate.as_deref().unwrap_or("10"))?,
                Model::Closed => self.vus.unwrap_or(1) as f64,
            };
            let length = match (&self.duration, self.iterations) {
                (Some(d), _) => duration(d, "--duration")?,
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
        let warmup = match &self.warmup {
            Some(w) => duration(w, "--warmup")?,
            None => Duration::ZERO,
        };
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
        assert_eq!(parse_rate("200/s").unwrap(), 200.0);
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert!(parse_rate("fast").is_err());
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
            duration: Some("3s".into()),
            ..PlanInput::default()
        }
        .build()
        .unwrap();
        assert_eq!(plan.model, Model::Closed);
        assert_eq!(plan.level_at(Duration::ZERO, false), 8.0);
        let plan = PlanInput {
            rate: Some("25/s".into()),
            ..PlanInput::default()
        }
        .build()
        .unwrap();
        assert_eq!(plan.model, Model::Open);
        assert_eq!(plan.duration(), Duration::from_secs(10));
    }
}

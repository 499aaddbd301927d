//! Release gates: `flow:p99<250ms`, `step:verify-otp:p95<100ms`, `errors<0.1%`,
//! `checks<1%`, `throughput>100`; and the comparison with a baseline run.

use super::metrics::Percentiles;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    Flow(String),
    Step(String, String),
    /// Requests that failed (transport error or 5xx), as a fraction of requests.
    Errors,
    /// Flows with a failed check, as a fraction of flows.
    Checks,
    /// Completed flows per second.
    Throughput,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: String,
    metric: Metric,
    op: Op,
    /// Milliseconds for latencies, a fraction for errors/checks, flows/s for throughput.
    limit: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    pub threshold: String,
    /// In the threshold's unit (ms, %, flows/s); `null` when the metric was not measured.
    pub actual: Option<f64>,
    pub passed: bool,
}

/// What thresholds look at.
pub trait Measured {
    fn flow(&self) -> &Percentiles;
    fn step(&self, name: &str) -> Option<&Percentiles>;
    fn error_rate(&self) -> f64;
    fn check_failure_rate(&self) -> f64;
    fn throughput(&self) -> f64;
}

fn parse_latency(value: &str) -> Option<f64> {
    let value = value.trim();
    let (number, factor) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    number.trim().parse::<f64>().ok().map(|n| n * factor)
}

fn parse_fraction(value: &str) -> Option<f64> {
    let value = value.trim();
    match value.strip_suffix('%') {
        Some(n) => n.trim().parse::<f64>().ok().map(|n| n / 100.0),
        None => value.parse::<f64>().ok(),
    }
}

impl std::str::FromStr for Threshold {
    type Err = String;
    fn from_str(expr: &str) -> Result<Threshold, String> {
        Threshold::parse(expr)
    }
}

impl Threshold {
    /// The step a `step:NAME:pN` threshold looks at.
    pub fn step(&self) -> Option<&str> {
        match &self.metric {
            Metric::Step(name, _) => Some(name),
            _ => None,
        }
    }

    pub fn parse(expr: &str) -> Result<Threshold, String> {
        let bad = |why: &str| {
            format!(
                "threshold {expr:?}: {why} (examples: flow:p99<250ms, step:verify-otp:p95<100ms, errors<0.1%, checks<1%, throughput>100)"
            )
        };
        let (at, op, width) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| expr.find(op).map(|i| (i, *op, op.len())))
            .ok_or_else(|| bad("no comparison"))?;
        let (left, right) = (expr[..at].trim(), expr[at + width..].trim());
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            _ => Op::Ge,
        };
        let percentile_ok = |p: &str| {
            Percentiles::of(&super::metrics::histogram())
                .get(p)
                .is_some()
        };
        let (metric, limit) = if let Some(p) = left.strip_prefix("flow:") {
            if !percentile_ok(p) {
                return Err(bad(
                    "unknown percentile (p50, p90, p95, p99, p99.9, max, mean)",
                ));
            }
            (
                Metric::Flow(p.to_owned()),
                parse_latency(right).ok_or_else(|| bad("not a latency"))?,
            )
        } else if let Some(rest) = left.strip_prefix("step:") {
            let (name, p) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("write step:NAME:pNN"))?;
            if !percentile_ok(p) {
                return Err(bad(
                    "unknown percentile (p50, p90, p95, p99, p99.9, max, mean)",
                ));
            }
            (
                Metric::Step(name.to_owned(), p.to_owned()),
                parse_latency(right).ok_or_else(|| bad("not a latency"))?,
            )
        } else if left == "errors" {
            (
                Metric::Errors,
                parse_fraction(right).ok_or_else(|| bad("not a percentage"))?,
            )
        } else if left == "checks" {
            (
                Metric::Checks,
                parse_fraction(right).ok_or_else(|| bad("not a percentage"))?,
            )
        } else if left == "throughput" {
            let r = right.trim_end_matches("/s").trim();
            (
                Metric::Throughput,
                r.parse().map_err(|_| bad("not a number of flows/s"))?,
            )
        } else {
            return Err(bad("unknown metric"));
        };
        Ok(Threshold {
            expr: expr.to_owned(),
            metric,
            op,
            limit,
        })
    }

    pub fn evaluate(&self, m: &dyn Measured) -> ThresholdResult {
        let actual = match &self.metric {
            Metric::Flow(p) => m.flow().get(p),
            Metric::Step(name, p) => m.step(name).and_then(|s| s.get(p)),
            Metric::Errors => Some(m.error_rate()),
            Metric::Checks => Some(m.check_failure_rate()),
            Metric::Throughput => Some(m.throughput()),
        };
        let passed = actual.is_some_and(|a| match self.op {
            Op::Lt => a < self.limit,
            Op::Le => a <= self.limit,
            Op::Gt => a > self.limit,
            Op::Ge => a >= self.limit,
        });
        let shown = match self.metric {
            Metric::Errors | Metric::Checks => actual.map(|a| a * 100.0),
            _ => actual,
        };
        ThresholdResult {
            threshold: self.expr.clone(),
            actual: shown,
            passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    fn p(v: f64) -> Percentiles {
        Percentiles {
            count: 1,
            p50: v,
            p90: v,
            p95: v,
            p99: v,
            p999: v,
            max: v,
            mean: v,
        }
    }
    impl Measured for Fake {
        fn flow(&self) -> &Percentiles {
            Box::leak(Box::new(p(200.0)))
        }
        fn step(&self, name: &str) -> Option<&Percentiles> {
            (name == "verify-otp").then(|| &*Box::leak(Box::new(p(120.0))))
        }
        fn error_rate(&self) -> f64 {
            0.0005
        }
        fn check_failure_rate(&self) -> f64 {
            0.02
        }
        fn throughput(&self) -> f64 {
            150.0
        }
    }

    fn eval(expr: &str) -> bool {
        Threshold::parse(expr).unwrap().evaluate(&Fake).passed
    }

    #[test]
    fn thresholds_evaluate() {
        assert!(eval("flow:p99<250ms"));
        assert!(!eval("flow:p99<0.1s"));
        assert!(!eval("step:verify-otp:p95<100ms"));
        assert!(
            !eval("step:other:p95<100ms"),
            "an unmeasured step fails its gate"
        );
        assert!(eval("errors<0.1%"));
        assert!(!eval("checks<1%"));
        assert!(eval("throughput>=100"));
        let r = Threshold::parse("checks<1%").unwrap().evaluate(&Fake);
        assert_eq!(r.actual, Some(2.0));
    }

    #[test]
    fn bad_thresholds_are_explained() {
        for bad in [
            "flow:p99",
            "flow:p42<1ms",
            "latency<1ms",
            "errors<lots",
            "step:p99<1ms",
        ] {
            let err = Threshold::parse(bad).unwrap_err();
            assert!(err.contains("examples"), "{err}");
        }
    }
}

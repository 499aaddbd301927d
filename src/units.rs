//! Quantities written by people: durations (`500ms`, `30s`, `1m30s`), rates (`200/s`,
//! `12000/m`) and percentages (`10%`). Each parses from the command line (clap uses
//! `FromStr`) and from YAML (`try_from = "String"`), with the same message.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A quantity that does not parse, with what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

/// `500ms`, `10s`, `2m`, `1h` (also combined: `1m30s`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let span: jiff::Span = text.trim().parse().ok()?;
    let signed = jiff::SignedDuration::try_from(span).ok()?;
    Duration::try_from(signed).ok()
}

/// YAML reads a quantity from its text, as the command line does (`try_from = "String"`).
macro_rules! from_text {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = Invalid;
            fn try_from(text: String) -> Result<$t, Invalid> {
                text.parse()
            }
        }
    )*};
}
from_text!(Span, Rate);

/// A non-negative duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Span, Invalid> {
        parse_duration(text)
            .map(Span)
            .ok_or_else(|| Invalid(format!("{text:?} is not a duration (e.g. 500ms, 30s, 2m)")))
    }
}

/// Flows per second: `200`, `200/s`, `12000/m`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Rate, Invalid> {
        let text = text.trim();
        let (number, per) = match text.split_once('/') {
            Some((n, unit)) => (n.trim(), unit.trim()),
            None => (text, "s"),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| Invalid(format!("{text:?} is not a rate (write e.g. 200/s)")))?;
        let seconds = match per {
            "s" | "sec" | "1s" => 1.0,
            "m" | "min" | "1m" => 60.0,
            other => {
                return Err(Invalid(format!(
                    "{text:?}: unknown rate unit {other:?} (use /s or /m)"
                )));
            }
        };
        if !(value.is_finite() && value >= 0.0) {
            return Err(Invalid(format!("{text:?}: a rate must be zero or more")));
        }
        Ok(Rate(value / seconds))
    }
}

/// A percentage, `10%` or `10`; holds the number of percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Percent, Invalid> {
        text.trim()
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Percent)
            .ok_or_else(|| Invalid(format!("{text:?} is not a percentage (e.g. 10%)")))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of a value that does not parse.
    fn refusal<T: FromStr<Err = Invalid> + std::fmt::Debug>(text: &str) -> String {
        text.parse::<T>().unwrap_err().to_string()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!("2m".parse::<Span>(), Ok(Span(Duration::from_secs(120))));
        assert!(refusal::<Span>("soon").contains("not a duration"));
    }

    #[test]
    fn rates() {
        assert_eq!("200/s".parse::<Rate>(), Ok(Rate(200.0)));
        assert_eq!("120/m".parse::<Rate>(), Ok(Rate(2.0)));
        assert_eq!("50".parse::<Rate>(), Ok(Rate(50.0)));
        assert!("fast".parse::<Rate>().is_err());
        assert!(refusal::<Rate>("5/h").contains("unknown rate unit"));
        assert!(refusal::<Rate>("-1/s").contains("zero or more"));
    }

    #[test]
    fn percentages() {
        assert_eq!("10%".parse::<Percent>(), Ok(Percent(10.0)));
        assert_eq!(" 2.5 ".parse::<Percent>(), Ok(Percent(2.5)));
        assert!("ten".parse::<Percent>().is_err());
        assert!("NaN%".parse::<Percent>().is_err());
    }

    #[test]
    fn yaml_values_parse_like_the_command_line() {
        #[derive(Deserialize)]
        struct Doc {
            rate: Rate,
            every: Span,
        }
        let doc: Doc = serde_json::from_str(r#"{"rate": "60/m", "every": "1m"}"#).unwrap();
        assert_eq!(doc.rate, Rate(1.0));
        assert_eq!(doc.every, Span(Duration::from_secs(60)));
        let err = serde_json::from_str::<Doc>(r#"{"rate": "quick", "every": "1m"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("is not a rate"), "{err}");
    }
}

//! Which scenarios a command takes: the tag and name filters of `run` and `load`, with one
//! error for a bad glob, and the capability gate (a scenario needing what the target does
//! not claim is skipped, with the reason).

use crate::exit::Stop;
use crate::scenario::{Suite, SuiteScenario};
use crate::target::Target;
use globset::{Glob, GlobMatcher};

/// How `tags` and `names` combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combine {
    /// `run`: a scenario must pass every filter given (tags, names), none of the skip tags.
    #[default]
    All,
    /// `load`: a scenario named by any `--scenario` glob or carrying any `--tag`.
    Any,
}

/// The filters as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    /// Globs on scenario names.
    pub names: Vec<String>,
    pub combine: Combine,
}

/// Compiled filters.
#[derive(Debug, Clone)]
pub struct Selector {
    filters: Filters,
    names: Vec<GlobMatcher>,
}

impl Filters {
    /// Compiles the name globs; `option` names the flag in the error (`--name`, `--scenario`).
    pub fn compile(self, option: &str) -> Result<Selector, Stop> {
        let names = self
            .names
            .iter()
            .map(|n| {
                Glob::new(n)
                    .map(|g| g.compile_matcher())
                    .map_err(|e| Stop::bad(format!("{option} {n:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Selector {
            filters: self,
            names,
        })
    }

    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.skip_tags.is_empty() && self.names.is_empty()
    }
}

impl Selector {
    pub fn matches(&self, scenario: &SuiteScenario) -> bool {
        let tags = &scenario.scenario.tags;
        let tagged = tags.iter().any(|t| self.filters.tags.contains(t));
        let named = self.names.iter().any(|m| m.is_match(&scenario.name));
        if tags.iter().any(|t| self.filters.skip_tags.contains(t)) {
            return false;
        }
        match self.filters.combine {
            Combine::All => {
                (self.filters.tags.is_empty() || tagged) && (self.names.is_empty() || named)
            }
            Combine::Any => tagged || named,
        }
    }

    /// The selected scenarios, in suite order.
    pub fn select<'a>(&self, suite: &'a Suite) -> Vec<&'a SuiteScenario> {
        suite.scenarios.iter().filter(|s| self.matches(s)).collect()
    }
}

/// Why `target` cannot run `scenario` (the capabilities it requires and the target does
/// not claim), or `None` when it can.
pub fn missing_capabilities(target: &Target, scenario: &SuiteScenario) -> Option<String> {
    let missing: Vec<&str> = scenario
        .scenario
        .requires
        .iter()
        .filter(|c| !target.has(**c))
        .map(|c| c.as_str())
        .collect();
    (!missing.is_empty()).then(|| format!("the target does not claim {}", missing.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Suite;
    use std::path::Path;

    fn suite() -> Suite {
        Suite::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).expect("suite")
    }

    fn names(selector: &Selector, suite: &Suite) -> Vec<String> {
        selector
            .select(suite)
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn no_filter_selects_everything_in_order() {
        let suite = suite();
        let all = names(&Filters::default().compile("--name").unwrap(), &suite);
        let expected: Vec<String> = suite.scenarios.iter().map(|s| s.name.clone()).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn all_intersects_and_any_unites() {
        let suite = suite();
        let both = |combine| Filters {
            tags: vec!["otp".into()],
            names: vec!["recovery*".into()],
            combine,
            ..Filters::default()
        };
        let all = names(&both(Combine::All).compile("--name").unwrap(), &suite);
        let any = names(&both(Combine::Any).compile("--scenario").unwrap(), &suite);
        assert!(all.len() < any.len(), "{all:?} vs {any:?}");
        assert!(all.iter().all(|n| n.starts_with("recovery")));
        assert!(any.iter().any(|n| !n.starts_with("recovery")));
        assert!(any.iter().any(|n| n.starts_with("recovery")));
    }

    #[test]
    fn skip_tags_win() {
        let suite = suite();
        let selector = Filters {
            skip_tags: vec!["otp".into()],
            ..Filters::default()
        }
        .compile("--name")
        .unwrap();
        for s in selector.select(&suite) {
            assert!(!s.scenario.tags.iter().any(|t| t == "otp"), "{}", s.name);
        }
    }

    #[test]
    fn a_bad_glob_is_bad_input_naming_the_option() {
        let error = Filters {
            names: vec!["[".into()],
            ..Filters::default()
        }
        .compile("--scenario")
        .unwrap_err();
        assert_eq!(error.exit(), crate::exit::Exit::BadInput);
        assert!(error.to_string().starts_with("--scenario \"[\""), "{error}");
    }
}

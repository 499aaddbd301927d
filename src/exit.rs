//! The exit codes of every command (README, "Exit codes"), in one type.

/// How a command ended, as the process reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything selected passed (or the server shut down cleanly).
    Ok,
    /// `run`: a check failed.
    Failed,
    /// Bad input: a file, an option or an argument; nothing was run.
    BadInput,
    /// The target could not be reached, or a control hook failed.
    Target,
    /// `load`: a threshold failed.
    Threshold,
    /// `load`: worse than the baseline by more than `--max-regression`.
    Regression,
    /// SIGINT or SIGTERM (128 + SIGINT, as shells report it).
    Interrupted,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::BadInput => 2,
            Exit::Target => 3,
            Exit::Threshold => 4,
            Exit::Regression => 5,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// A failure that ends a command before or instead of its normal outcome: bad input (every
/// error found, each naming file, line and column where it has one) or an unreachable target.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    #[error("{}", .0.join("\n"))]
    BadInput(Vec<String>),
    #[error("{0}")]
    Target(String),
}

impl Stop {
    pub fn bad(message: impl Into<String>) -> Stop {
        Stop::BadInput(vec![message.into()])
    }

    pub fn exit(&self) -> Exit {
        match self {
            Stop::BadInput(_) => Exit::BadInput,
            Stop::Target(_) => Exit::Target,
        }
    }

    /// Prints every message as `error: ...` on stderr and gives the exit code.
    pub fn report(&self) -> Exit {
        match self {
            Stop::BadInput(errors) => errors.iter().for_each(|e| eprintln!("error: {e}")),
            Stop::Target(message) => eprintln!("error: {message}"),
        }
        self.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            (Exit::Ok, 0),
            (Exit::Failed, 1),
            (Exit::BadInput, 2),
            (Exit::Target, 3),
            (Exit::Threshold, 4),
            (Exit::Regression, 5),
            (Exit::Interrupted, 130),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
        assert_eq!(Exit::Interrupted.code(), crate::signals::INTERRUPTED);
    }

    #[test]
    fn stops_map_to_their_codes() {
        assert_eq!(Stop::bad("x").exit(), Exit::BadInput);
        assert_eq!(Stop::Target("down".into()).exit(), Exit::Target);
        assert_eq!(
            Stop::BadInput(vec!["a".into(), "b".into()]).to_string(),
            "a\nb"
        );
    }
}

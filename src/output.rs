//! Where `run` and `load` write their reports: the directory given, or a new
//! `reports/<timestamp>/` for every run (a second run in the same second gets `-2`, `-3`...,
//! never the first one's directory).

use std::io;
use std::path::{Path, PathBuf};

/// The report directory of a run started at `started`, created. A directory given
/// explicitly is used as it is (created when missing); the default is a new directory under
/// `reports/` that no earlier run wrote.
pub fn report_dir(given: Option<&Path>, started: jiff::Timestamp) -> io::Result<PathBuf> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok(dir.to_owned())
        }
        None => new_dir_under(Path::new("reports"), started),
    }
}

/// Creates `<parent>/<UTC timestamp>`, or `<timestamp>-N` with the smallest free N.
/// `create_dir` fails when the directory exists, so two processes cannot both take one.
fn new_dir_under(parent: &Path, started: jiff::Timestamp) -> io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    let stamp = started.strftime("%Y%m%dT%H%M%SZ").to_string();
    for n in 1u32.. {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 suffixes exhausted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_the_same_second_get_their_own_directories() {
        let parent = std::env::temp_dir().join(format!("mfa-conform-out-{}", std::process::id()));
        let at: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let first = new_dir_under(&parent, at).unwrap();
        let second = new_dir_under(&parent, at).unwrap();
        let third = new_dir_under(&parent, at).unwrap();
        assert_eq!(first.file_name().unwrap(), "20261205T100000Z");
        assert_eq!(second.file_name().unwrap(), "20261205T100000Z-2");
        assert_eq!(third.file_name().unwrap(), "20261205T100000Z-3");
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_given_directory_is_used_and_created() {
        let dir = std::env::temp_dir()
            .join(format!("mfa-conform-given-{}", std::process::id()))
            .join("nested");
        let at = jiff::Timestamp::now();
        assert_eq!(report_dir(Some(&dir), at).unwrap(), dir);
        assert!(dir.is_dir());
        assert_eq!(
            report_dir(Some(&dir), at).unwrap(),
            dir,
            "reuse is the user's choice"
        );
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}

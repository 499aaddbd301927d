//! Snapshot files in insta's `.snap` format, so `cargo insta` and editors that know it can
//! read them: a YAML header between two `---` lines (`source`, `description`,
//! `expression`, `info`), then the snapshot text.
//!
//! ```text
//! ---
//! source: scenarios/otp-enrollment.yaml
//! description: log in
//! expression: POST /oauth/token
//! info:
//!   profile: reference
//!   scenario: otp-enrollment
//!   step: log in
//! ---
//! status: 403
//! content-type: application/json
//!
//! {
//!   "error": "mfa_required",
//!   ...
//! }
//! ```

use std::path::{Path, PathBuf};

/// Suffix of a pending snapshot (a mismatch or a new one), beside the `.snap`.
pub const NEW_SUFFIX: &str = ".snap.new";

/// The header of a snapshot file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// The scenario file.
    pub source: Option<String>,
    /// The step's name.
    pub description: Option<String>,
    /// The request: `POST /oauth/token`.
    pub expression: Option<String>,
    /// `profile`, `scenario`, `step`, `phase`.
    pub info: Vec<(String, String)>,
}

impl Meta {
    pub fn info(&self, key: &str) -> Option<&str> {
        self.info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A snapshot file: header and text.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapFile {
    pub meta: Meta,
    pub contents: String,
}

/// A YAML scalar: plain when that is unambiguous, otherwise double-quoted (JSON string
/// escapes are valid YAML).
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && !text.ends_with(' ')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _./()-".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serialises")
    }
}

fn unscalar(text: &str) -> String {
    let text = text.trim();
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(text) {
            return s;
        }
    } else if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    text.to_owned()
}

impl SnapFile {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from("---\n");
        let mut field = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!("{key}: {}\n", scalar(v)));
            }
        };
        field("source", &self.meta.source);
        field("description", &self.meta.description);
        field("expression", &self.meta.expression);
        if !self.meta.info.is_empty() {
            out.push_str("info:\n");
            for (k, v) in &self.meta.info {
                out.push_str(&format!("  {k}: {}\n", scalar(v)));
            }
        }
        out.push_str("---\n");
        out.push_str(self.contents.trim_end());
        out.push('\n');
        out
    }

    /// Reads a `.snap` file's text (ours or insta's). Keys we do not know are ignored.
    pub fn parse(text: &str) -> Result<SnapFile, NotASnapshot> {
        let mut lines = text.split_inclusive('\n');
        if lines.next().map(str::trim_end) != Some("---") {
            return Err(NotASnapshot::NoHeader);
        }
        let mut meta = Meta::default();
        let mut in_info = false;
        let mut closed = false;
        let mut consumed = 4;
        for line in lines.by_ref() {
            consumed += line.len();
            let trimmed = line.trim_end();
            if trimmed == "---" {
                closed = true;
                break;
            }
            if let Some(nested) = trimmed.strip_prefix("  ") {
                if in_info && let Some((k, v)) = nested.split_once(':') {
                    meta.info.push((k.trim().to_owned(), unscalar(v)));
                }
                continue;
            }
            in_info = false;
            let Some((key, value)) = trimmed.split_once(':') else {
                continue;
            };
            match key {
                "source" => meta.source = Some(unscalar(value)),
                "description" => meta.description = Some(unscalar(value)),
                "expression" => meta.expression = Some(unscalar(value)),
                "info" => in_info = value.trim().is_empty(),
                _ => {}
            }
        }
        if !closed {
            return Err(NotASnapshot::Unclosed);
        }
        let contents = text.get(consumed.min(text.len())..).unwrap_or("");
        Ok(SnapFile {
            meta,
            contents: normalise(contents),
        })
    }

    pub fn read(path: &Path) -> Result<SnapFile, SnapFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| SnapFileError::Io {
            doing: "read",
            path: path.to_owned(),
            error,
        })?;
        SnapFile::parse(&text).map_err(|error| SnapFileError::Invalid {
            path: path.to_owned(),
            error,
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), SnapFileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| SnapFileError::Io {
                doing: "create",
                path: dir.to_owned(),
                error,
            })?;
        }
        std::fs::write(path, self.render()).map_err(|error| SnapFileError::Io {
            doing: "write",
            path: path.to_owned(),
            error,
        })
    }
}

/// Text that is not a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotASnapshot {
    #[error("not a snapshot file: it does not start with `---`")]
    NoHeader,
    #[error("not a snapshot file: its header is not closed by `---`")]
    Unclosed,
}

/// A snapshot file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapFileError {
    #[error("cannot {doing} {}: {error}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {error}", path.display())]
    Invalid { path: PathBuf, error: NotASnapshot },
}

/// Snapshot text as compared: no leading blank lines, no trailing whitespace on lines, one
/// final newline (what insta compares too).
pub fn normalise(text: &str) -> String {
    let mut out: String = text
        .trim_start_matches(['\n', '\r'])
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// `a/b.snap` -> `a/b.snap.new`.
pub fn new_path(snap: &Path) -> PathBuf {
    let mut name = snap.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// `a/b.snap.new` -> `a/b.snap`.
pub fn snap_path(new: &Path) -> Option<PathBuf> {
    let text = new.to_str()?;
    text.strip_suffix(".new")
        .filter(|t| t.ends_with(".snap"))
        .map(PathBuf::from)
}

/// A file-name-safe form of a scenario or step name: lower case, ASCII letters and digits,
/// runs of anything else as one `-`, at most 80 characters.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_owned();
    if out.len() > 80 {
        out.truncate(80);
        out = out.trim_end_matches('-').to_owned();
    }
    if out.is_empty() {
        "step".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapFile {
        SnapFile {
            meta: Meta {
                source: Some("scenarios/otp-enrollment.yaml".into()),
                description: Some("confirm: the code (mfa-otp) #1".into()),
                expression: Some("POST /oauth/token".into()),
                info: vec![
                    ("profile".into(), "reference".into()),
                    ("step".into(), "yes".into()),
                ],
            },
            contents: "status: 200\ncontent-type: application/json\n\n{\n  \"a\": 1\n}\n".into(),
        }
    }

    #[test]
    fn renders_and_reads_back() {
        let file = sample();
        let text = file.render();
        insta::assert_snapshot!(text, @r#"
        ---
        source: scenarios/otp-enrollment.yaml
        description: "confirm: the code (mfa-otp) #1"
        expression: POST /oauth/token
        info:
          profile: reference
          step: "yes"
        ---
        status: 200
        content-type: application/json

        {
          "a": 1
        }
        "#);
        assert_eq!(SnapFile::parse(&text).unwrap(), file);
    }

    /// insta itself reads our files: same metadata, same contents.
    #[test]
    fn insta_reads_our_files() {
        let dir = std::env::temp_dir().join(format!("mfa-conform-snapfile-{}", std::process::id()));
        let path = dir.join("sample.snap");
        let file = sample();
        file.write(&path).unwrap();
        let parsed = insta::Snapshot::from_file(&path).unwrap();
        assert_eq!(
            parsed.metadata().description(),
            file.meta.description.as_deref()
        );
        assert_eq!(
            parsed.metadata().expression(),
            file.meta.expression.as_deref()
        );
        assert_eq!(
            parsed.contents().as_text().unwrap().to_string(),
            file.contents.trim_end()
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn reads_insta_files_and_refuses_others() {
        let insta_file = "---\nsource: tests/x.rs\nassertion_line: 12\nexpression: out\n---\nhello\n  world  \n\n";
        let parsed = SnapFile::parse(insta_file).unwrap();
        assert_eq!(parsed.meta.source.as_deref(), Some("tests/x.rs"));
        assert_eq!(parsed.contents, "hello\n  world\n");
        assert!(SnapFile::parse("hello").is_err());
        assert!(SnapFile::parse("---\nsource: x\n").is_err());
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            slug("associate OTP with the mfa_token"),
            "associate-otp-with-the-mfa-token"
        );
        assert_eq!(slug("  missing {{ param }} -> 400 "), "missing-param-400");
        assert_eq!(slug("é"), "step");
        assert_eq!(slug(&"ab ".repeat(50)).len(), 80);
        let snap = Path::new("snapshots/reference/x/log-in.snap");
        assert_eq!(
            new_path(snap),
            Path::new("snapshots/reference/x/log-in.snap.new")
        );
        assert_eq!(snap_path(&new_path(snap)).unwrap(), snap);
        assert_eq!(snap_path(Path::new("a/b.txt.new")), None);
    }
}
